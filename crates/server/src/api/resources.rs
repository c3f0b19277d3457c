//! `/api/v1/resources/{type}` (apps, scripts, compliance and configuration policies, device
//! categories) and `/api/v1/devices`. Each operation is a function returning an [`Outcome`]
//! that the JSON handlers here and the web pages both call, so there is one permission check
//! and one trip through the MAA gate per operation.

use super::{gate, limit_of, next_cursor, object_json, Outcome, Page};
use crate::error::{ApiError, ApiResult};
use crate::extract::{justification, parse_id, ApiJson, ApiQuery, OptionalJson, Principal};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Json;
use countersign_core::permission::{read_permission, write_permission};
use countersign_core::profile::{Operation, ResourceType};
use countersign_core::validate;
use countersign_store::{Proposal, ResourceRecord};
use serde::Deserialize;
use serde_json::{json, Value};

/// A document type from a path segment, or 404 `unknown_type`.
pub fn document_type(raw: &str) -> ApiResult<ResourceType> {
    match raw.parse::<ResourceType>() {
        Ok(t) if t.is_document_type() => Ok(t),
        _ => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_type",
            format!(
                "'{raw}' is not a resource type; use app, script, compliancePolicy, configurationPolicy or deviceCategory"
            ),
        )),
    }
}

pub fn render(record: &ResourceRecord) -> Value {
    let mut body = object_json(&record.id, record.resource_type, record.state.clone(), record.version);
    body["createdAt"] = json!(crate::time::format(record.created_at));
    body["lastModifiedAt"] = json!(crate::time::format(record.updated_at));
    body
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    pub cursor: Option<String>,
    pub limit: Option<i64>,
}

/// One page of live objects of a type the caller may read.
pub async fn page_of(
    app: &AppState,
    principal: &Principal,
    resource_type: ResourceType,
    q: PageQuery,
) -> ApiResult<(Vec<ResourceRecord>, Option<String>)> {
    principal.require(read_permission(resource_type))?;
    let limit = limit_of(q.limit)?;
    let after = q.cursor.as_deref().map(parse_id).transpose()?;
    let records = app.store.resources(resource_type, after.as_deref(), limit).await?;
    let cursor = next_cursor(&records, limit, |r| r.id.clone());
    Ok((records, cursor))
}

/// An object's id, state and version, or 404.
pub(crate) async fn current(app: &AppState, resource_type: ResourceType, id: &str) -> ApiResult<(String, Value, i64)> {
    let id = parse_id(id)?;
    let (state, version) = app
        .store
        .object_state(resource_type, &id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("{resource_type} {id} does not exist")))?;
    Ok((id, state, version))
}

/// One object the caller may read: its id, state and version.
pub async fn readable(
    app: &AppState,
    principal: &Principal,
    resource_type: ResourceType,
    id: &str,
) -> ApiResult<(String, Value, i64)> {
    principal.require(read_permission(resource_type))?;
    current(app, resource_type, id).await
}

pub(crate) async fn ensure_groups(app: &AppState, group_ids: &[String]) -> ApiResult<Vec<String>> {
    let mut ids = Vec::with_capacity(group_ids.len());
    for raw in group_ids {
        let id = parse_id(raw)?;
        if app.store.group(&id).await?.is_none() {
            return Err(ApiError::validation(format!("group {id} does not exist")));
        }
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    ids.sort();
    Ok(ids)
}

/// A change to an existing object; one that changes nothing is not submitted.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn propose_outcome(
    app: &AppState,
    principal: &Principal,
    resource_type: ResourceType,
    operation: Operation,
    id: String,
    before: Value,
    version: i64,
    after: Value,
    justification: Option<String>,
) -> ApiResult<Outcome> {
    if before == after {
        return Ok(Outcome::Unchanged { id, resource_type, state: before, version });
    }
    let proposal = Proposal::change(resource_type, operation, id, before, version, after);
    gate(app, principal, proposal, justification).await
}

/// [`propose_outcome`], answered as JSON.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn propose(
    app: &AppState,
    principal: &Principal,
    resource_type: ResourceType,
    operation: Operation,
    id: String,
    before: Value,
    version: i64,
    after: Value,
    justification: Option<String>,
) -> ApiResult<Response> {
    propose_outcome(app, principal, resource_type, operation, id, before, version, after, justification)
        .await?
        .respond(app, principal)
        .await
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
    principal.require(write_permission(resource_type, Operation::Create))?;
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
    principal.require(write_permission(resource_type, Operation::Update))?;
    let (id, before, version) = current(app, resource_type, id).await?;
    let after = proposed_state(resource_type, input, before.get("assignedGroupIds"))?;
    propose_outcome(app, principal, resource_type, Operation::Update, id, before, version, after, justification).await
}

pub async fn delete_document(
    app: &AppState,
    principal: &Principal,
    resource_type: ResourceType,
    id: &str,
    justification: Option<String>,
) -> ApiResult<Outcome> {
    principal.require(write_permission(resource_type, Operation::Delete))?;
    let (id, before, version) = current(app, resource_type, id).await?;
    propose_outcome(app, principal, resource_type, Operation::Delete, id, before, version, Value::Null, justification)
        .await
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
    principal.require(write_permission(resource_type, Operation::Assign))?;
    let (id, before, version) = current(app, resource_type, id).await?;
    let mut after = before.clone();
    after["assignedGroupIds"] = json!(ensure_groups(app, group_ids).await?);
    propose_outcome(app, principal, resource_type, Operation::Assign, id, before, version, after, justification).await
}

/// Enrolling a device is not protected.
pub async fn enroll(
    app: &AppState,
    principal: &Principal,
    name: &str,
    os: &str,
    owner: Option<&str>,
) -> ApiResult<Outcome> {
    // There is no enrolment permission; any device-management permission will do.
    if !["devices.wipe", "devices.retire", "devices.delete"].iter().any(|p| principal.has(p)) {
        return Err(ApiError::forbidden(
            "enrolling a device needs a device-management permission (devices.wipe, devices.retire or devices.delete)",
        ));
    }
    let name = validate::display_name("name", name)?;
    let os = validate::display_name("os", os)?;
    let owner = owner.map(|o| validate::display_name("owner", o)).transpose()?;
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
    principal.require(write_permission(ResourceType::Device, operation))?;
    let (id, before, version) = current(app, ResourceType::Device, id).await?;
    let after = match operation {
        Operation::Delete => Value::Null,
        _ => {
            if before["state"] != "active" {
                return Err(ApiError::conflict(
                    "invalid_device_state",
                    format!(
                        "the device is {}; only an active device can be wiped or retired",
                        before["state"].as_str().unwrap_or("unknown")
                    ),
                ));
            }
            let mut after = before.clone();
            after["state"] = json!(if operation == Operation::Wipe { "wiped" } else { "retired" });
            if operation == Operation::Wipe {
                after["keepEnrollmentData"] = json!(keep_enrollment_data);
            }
            after
        }
    };
    propose_outcome(app, principal, ResourceType::Device, operation, id, before, version, after, justification).await
}

// ---- JSON handlers ----

/// `GET /api/v1/resources/{type}`
pub async fn list(
    State(app): State<AppState>,
    principal: Principal,
    Path(raw_type): Path<String>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page>> {
    let (records, next_cursor) = page_of(&app, &principal, document_type(&raw_type)?, q).await?;
    Ok(Json(Page { value: records.iter().map(render).collect(), next_cursor }))
}

/// `GET /api/v1/resources/{type}/{id}`
pub async fn get(
    State(app): State<AppState>,
    principal: Principal,
    Path((raw_type, id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let resource_type = document_type(&raw_type)?;
    let (id, state, version) = readable(&app, &principal, resource_type, &id).await?;
    Ok(Json(object_json(&id, resource_type, state, version)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceBody {
    name: String,
    description: Option<String>,
    document: Value,
    justification: Option<String>,
}

impl ResourceBody {
    fn split(self, headers: &HeaderMap) -> (DocumentInput, Option<String>) {
        let input = DocumentInput { name: self.name, description: self.description, document: self.document };
        (input, justification(self.justification, headers))
    }
}

/// `POST /api/v1/resources/{type}`
pub async fn create(
    State(app): State<AppState>,
    principal: Principal,
    Path(raw_type): Path<String>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<ResourceBody>,
) -> ApiResult<Response> {
    let resource_type = document_type(&raw_type)?;
    let (input, justification) = body.split(&headers);
    create_document(&app, &principal, resource_type, &input, justification).await?.respond(&app, &principal).await
}

/// `PUT /api/v1/resources/{type}/{id}`
pub async fn update(
    State(app): State<AppState>,
    principal: Principal,
    Path((raw_type, id)): Path<(String, String)>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<ResourceBody>,
) -> ApiResult<Response> {
    let resource_type = document_type(&raw_type)?;
    let (input, justification) = body.split(&headers);
    update_document(&app, &principal, resource_type, &id, &input, justification).await?.respond(&app, &principal).await
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct JustificationBody {
    pub justification: Option<String>,
}

/// `DELETE /api/v1/resources/{type}/{id}`
pub async fn delete(
    State(app): State<AppState>,
    principal: Principal,
    Path((raw_type, id)): Path<(String, String)>,
    headers: HeaderMap,
    OptionalJson(body): OptionalJson<JustificationBody>,
) -> ApiResult<Response> {
    let resource_type = document_type(&raw_type)?;
    let justification = justification(body.justification, &headers);
    delete_document(&app, &principal, resource_type, &id, justification).await?.respond(&app, &principal).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AssignBody {
    group_ids: Vec<String>,
    justification: Option<String>,
}

/// `POST /api/v1/resources/{type}/{id}/assign` `{groupIds}` (the full new set)
pub async fn assign(
    State(app): State<AppState>,
    principal: Principal,
    Path((raw_type, id)): Path<(String, String)>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<AssignBody>,
) -> ApiResult<Response> {
    let resource_type = document_type(&raw_type)?;
    let justification = justification(body.justification, &headers);
    assign_document(&app, &principal, resource_type, &id, &body.group_ids, justification)
        .await?
        .respond(&app, &principal)
        .await
}

/// `GET /api/v1/devices`
pub async fn list_devices(
    State(app): State<AppState>,
    principal: Principal,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page>> {
    let (records, next_cursor) = page_of(&app, &principal, ResourceType::Device, q).await?;
    Ok(Json(Page { value: records.iter().map(render).collect(), next_cursor }))
}

/// `GET /api/v1/devices/{id}`
pub async fn get_device(
    State(app): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let (id, state, version) = readable(&app, &principal, ResourceType::Device, &id).await?;
    Ok(Json(object_json(&id, ResourceType::Device, state, version)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrollBody {
    name: String,
    os: String,
    owner: Option<String>,
}

/// `POST /api/v1/devices` `{name, os, owner?}`: enrolment is not protected.
pub async fn enroll_device(
    State(app): State<AppState>,
    principal: Principal,
    ApiJson(body): ApiJson<EnrollBody>,
) -> ApiResult<Response> {
    enroll(&app, &principal, &body.name, &body.os, body.owner.as_deref()).await?.respond(&app, &principal).await
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DeviceActionBody {
    justification: Option<String>,
    keep_enrollment_data: Option<bool>,
}

/// `POST /api/v1/devices/{id}/wipe|retire|delete`
pub async fn device_action(
    State(app): State<AppState>,
    principal: Principal,
    Path((id, action)): Path<(String, String)>,
    headers: HeaderMap,
    OptionalJson(body): OptionalJson<DeviceActionBody>,
) -> ApiResult<Response> {
    let operation = device_operation(&action)?;
    let justification = justification(body.justification, &headers);
    act_on_device(&app, &principal, &id, operation, body.keep_enrollment_data.unwrap_or(false), justification)
        .await?
        .respond(&app, &principal)
        .await
}
