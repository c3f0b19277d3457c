//! Apps, scripts, compliance and configuration policies, device categories (the "documents"),
//! and devices.

use super::{current, ensure_groups, gate, limit_of, propose, wrong_state, Current, Outcome, PageRequest, Paged};
use crate::error::{ApiError, ApiResult};
use crate::extract::{parse_id, Principal};
use crate::AppState;
use countersign_core::error::ErrorCode;
use countersign_core::permission::read_permission;
use countersign_core::profile::{Operation, ResourceType};
use countersign_core::state::{AssignableState, DeviceCategoryState, DeviceLifecycle, DeviceState, ObjectState};
use countersign_core::validate;
use countersign_store::{Proposal, ResourceRecord};
use serde_json::Value;

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
    let page = app.store.resources(resource_type, after.as_deref(), limit).await?;
    Ok(Paged { items: page.records, next_cursor: page.next_after })
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

/// The state `input` proposes; an assignable type keeps the groups it is assigned to (the web
/// shows it for review before saving).
pub fn proposed_document(
    resource_type: ResourceType,
    input: &DocumentInput,
    assigned: Vec<String>,
) -> ApiResult<ObjectState> {
    let name = validate::display_name("name", &input.name)?;
    let description = validate::description(input.description.as_deref())?;
    let Value::Object(document) = input.document.clone() else {
        return Err(ApiError::validation("document must be a JSON object"));
    };
    Ok(if resource_type.is_assignable() {
        ObjectState::Assignable(AssignableState { name, description, document, assigned_group_ids: assigned })
    } else {
        ObjectState::DeviceCategory(DeviceCategoryState { name, description, document })
    })
}

/// The groups an object is assigned to; none for a type that is never assigned.
pub fn assigned_groups(state: &ObjectState) -> Vec<String> {
    match state {
        ObjectState::Assignable(state) => state.assigned_group_ids.clone(),
        _ => vec![],
    }
}

pub async fn create_document(
    app: &AppState,
    principal: &Principal,
    resource_type: ResourceType,
    input: &DocumentInput,
    justification: Option<String>,
) -> ApiResult<Outcome> {
    principal.require_may_propose(resource_type, Operation::Create)?;
    let after = proposed_document(resource_type, input, vec![])?;
    gate(app, principal, Proposal::create(resource_type, after), justification).await
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
    let assigned = assigned_groups(&before.state);
    let after = proposed_document(resource_type, input, assigned)?;
    propose(app, principal, resource_type, Operation::Update, before, Some(after), justification).await
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
    propose(app, principal, resource_type, Operation::Delete, before, None, justification).await
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
    let ObjectState::Assignable(state) = &before.state else {
        return Err(ApiError::validation(format!("{resource_type} cannot be assigned to groups")));
    };
    let after = AssignableState { assigned_group_ids: ensure_groups(app, group_ids).await?, ..state.clone() };
    let after = Some(ObjectState::Assignable(after));
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
    let after = DeviceState { name, os, owner, state: DeviceLifecycle::Active, keep_enrollment_data: None };
    gate(app, principal, Proposal::create(ResourceType::Device, ObjectState::Device(after)), None).await
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
    let ObjectState::Device(device) = &before.state else { return Err(wrong_state(&before)) };
    let after = match device.state.after(operation).map_err(ApiError::from)? {
        None => None,
        Some(state) => {
            let keep = (operation == Operation::Wipe).then_some(keep_enrollment_data);
            Some(ObjectState::Device(DeviceState { state, keep_enrollment_data: keep, ..device.clone() }))
        }
    };
    propose(app, principal, ResourceType::Device, operation, before, after, justification).await
}
