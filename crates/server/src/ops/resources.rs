//! Apps, scripts, compliance and configuration policies, device categories (the "documents"),
//! and devices.

use super::{current, ensure_groups, gate, limit_of, next_cursor, propose, Current, Outcome, PageRequest, Paged};
use crate::error::{ApiError, ApiResult};
use crate::extract::{parse_id, Principal};
use crate::AppState;
use countersign_core::error::ErrorCode;
use countersign_core::permission::read_permission;
use countersign_core::profile::{Operation, ResourceType};
use countersign_core::state::DeviceLifecycle;
use countersign_core::validate;
use countersign_store::{Proposal, ResourceRecord, StoreError};
use serde_json::{json, Value};

/// A document type from a path segment, or 404 `unknown_type`.
pub fn document_type(raw: &str) -> ApiResult<ResourceType> {
    match raw.parse::<ResourceType>() {
        Ok(t) if t.is_document_type() => Ok(t),
        _ => Err(ApiError::new(
            ErrorCode::UnknownType,
            format!(
                "'{raw}' is not a resource type; use app, script, compliancePolicy, configurationPolicy or deviceCategory"
            ),
        )),
    }
}

/// One page of live objects of a type the caller may read.
pub async fn page_of(
    app: &AppState,
    principal: &Principal,
    resource_type: ResourceType,
    page: &PageRequest,
) -> ApiResult<Paged<ResourceRecord>> {
    principal.require(read_permission(resource_type))?;
    let limit = limit_of(page.limit)?;
    let after = page.cursor.as_deref().map(parse_id).transpose()?;
    let items = app.store.resources(resource_type, after.as_deref(), limit).await?;
    let next_cursor = next_cursor(&items, limit, |r| r.id.clone());
    Ok(Paged { items, next_cursor })
}

/// One object the caller may read.
pub async fn readable(
    app: &AppState,
    principal: &Principal,
    resource_type: ResourceType,
    id: &str,
) -> ApiResult<Current> {
    principal.require(read_permission(resource_type))?;
    current(app, resource_type, id).await
}

/// The editable part of an app, script, policy or device category.
#[derive(Debug, Clone)]
pub struct DocumentInput {
    pub name: String,
    pub description: Option<String>,
    pub document: Value,
}

fn proposed_state(resource_type: ResourceType, input: &DocumentInput, assigned: Option<&Value>) -> ApiResult<Value> {
    let name = validate::display_name("name", &input.name)?;
    let description = validate::description(input.description.as_deref())?;
    if !input.document.is_object() {
        return Err(ApiError::validation("document must be a JSON object"));
    }
    let mut state = json!({"name": name, "description": description, "document": input.document});
    if resource_type.is_assignable() {
        state["assignedGroupIds"] = assigned.cloned().unwrap_or_else(|| json!([]));
    }
    Ok(state)
}

pub async fn create_document(
    app: &AppState,
    principal: &Principal,
    resource_type: ResourceType,
    input: &DocumentInput,
    justification: Option<String>,
) -> ApiResult<Outcome> {
    principal.require_may_propose(resource_type, Operation::Create)?;
    let after = proposed_state(resource_type, input, None)?;
    let name = after["name"].as_str().unwrap_or_default().to_owned();
    gate(app, principal, Proposal::create(resource_type, &name, after), justification).await
}

pub async fn update_document(
    app: &AppState,
    principal: &Principal,
    resource_type: ResourceType,
    id: &str,
    input: &DocumentInput,
    justification: Option<String>,
) -> ApiResult<Outcome> {
    principal.require_may_propose(resource_type, Operation::Update)?;
    let before = current(app, resource_type, id).await?;
    let after = proposed_state(resource_type, input, before.state.get("assignedGroupIds"))?;
    propose(app, principal, resource_type, Operation::Update, before, after, justification).await
}

pub async fn delete_document(
    app: &AppState,
    principal: &Principal,
    resource_type: ResourceType,
    id: &str,
    justification: Option<String>,
) -> ApiResult<Outcome> {
    principal.require_may_propose(resource_type, Operation::Delete)?;
    let before = current(app, resource_type, id).await?;
    propose(app, principal, resource_type, Operation::Delete, before, Value::Null, justification).await
}

pub async fn assign_document(
    app: &AppState,
    principal: &Principal,
    resource_type: ResourceType,
    id: &str,
    group_ids: &[String],
    justification: Option<String>,
) -> ApiResult<Outcome> {
    if !resource_type.is_assignable() {
        return Err(ApiError::validation(format!("{resource_type} cannot be assigned to groups")));
    }
    principal.require_may_propose(resource_type, Operation::Assign)?;
    let before = current(app, resource_type, id).await?;
    let mut after = before.state.clone();
    after["assignedGroupIds"] = json!(ensure_groups(app, group_ids).await?);
    propose(app, principal, resource_type, Operation::Assign, before, after, justification).await
}

/// A device to enrol.
#[derive(Debug, Clone)]
pub struct NewDevice {
    pub name: String,
    pub os: String,
    pub owner: Option<String>,
}

/// Enrolling a device is not protected.
pub async fn enroll(app: &AppState, principal: &Principal, device: &NewDevice) -> ApiResult<Outcome> {
    principal.require_may_propose(ResourceType::Device, Operation::Create)?;
    let name = validate::display_name("name", &device.name)?;
    let os = validate::display_name("os", &device.os)?;
    let owner = device.owner.as_deref().map(|o| validate::display_name("owner", o)).transpose()?;
    let after = json!({"name": name, "os": os, "owner": owner, "state": "active"});
    gate(app, principal, Proposal::create(ResourceType::Device, &name, after), None).await
}

/// `wipe`, `retire` or `delete` from a path segment.
pub fn device_operation(action: &str) -> ApiResult<Operation> {
    match action {
        "wipe" => Ok(Operation::Wipe),
        "retire" => Ok(Operation::Retire),
        "delete" => Ok(Operation::Delete),
        other => Err(ApiError::not_found(format!("'{other}' is not a device action; use wipe, retire or delete"))),
    }
}

pub async fn act_on_device(
    app: &AppState,
    principal: &Principal,
    id: &str,
    operation: Operation,
    keep_enrollment_data: bool,
    justification: Option<String>,
) -> ApiResult<Outcome> {
    principal.require_may_propose(ResourceType::Device, operation)?;
    let before = current(app, ResourceType::Device, id).await?;
    let lifecycle: DeviceLifecycle = serde_json::from_value(before.state["state"].clone())
        .map_err(|e| StoreError::Corrupt(format!("device {}: {e}", before.id)))?;
    let after = match lifecycle.after(operation).map_err(ApiError::from)? {
        None => Value::Null,
        Some(next) => {
            let mut after = before.state.clone();
            after["state"] = json!(next);
            if operation == Operation::Wipe {
                after["keepEnrollmentData"] = json!(keep_enrollment_data);
            }
            after
        }
    };
    propose(app, principal, ResourceType::Device, operation, before, after, justification).await
}
