//! `/api/v1/resources/{type}` (apps, scripts, compliance and configuration policies, device
//! categories) and `/api/v1/devices`. Every change is a `Proposal` through the MAA gate.

use super::{limit_of, next_cursor, submit, Page};
use crate::error::{ApiError, ApiResult};
use crate::extract::{justification, parse_id, ApiJson, ApiQuery, OptionalJson, Principal};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::Json;
use countersign_core::permission::{read_permission, write_permission};
use countersign_core::profile::{Operation, ResourceType};
use countersign_core::validate;
use countersign_store::{Proposal, ResourceRecord};
use serde::Deserialize;
use serde_json::{json, Value};

fn document_type(raw: &str) -> ApiResult<ResourceType> {
    match raw.parse::<ResourceType>() {
        Ok(t) if t.is_document_type() => Ok(t),
        _ => Err(ApiError::new(
            axum::http::StatusCode::NOT_FOUND,
            "unknown_type",
            format!("'{raw}' is not a resource type; use app, script, compliancePolicy, configurationPolicy or deviceCategory"),
        )),
    }
}

fn render(record: &ResourceRecord) -> Value {
    let mut body = record.state.clone();
    if let Value::Object(map) = &mut body {
        map.insert("id".into(), json!(record.id));
        map.insert("type".into(), json!(record.resource_type));
        map.insert("version".into(), json!(record.version));
        map.insert("createdAt".into(), json!(crate::time::format(record.created_at)));
        map.insert("lastModifiedAt".into(), json!(crate::time::format(record.updated_at)));
    }
    body
}

fn render_state(id: &str, resource_type: ResourceType, state: Value, version: i64) -> Value {
    let mut body = state;
    if let Value::Object(map) = &mut body {
        map.insert("id".into(), json!(id));
        map.insert("type".into(), json!(resource_type));
        map.insert("version".into(), json!(version));
    }
    body
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    pub cursor: Option<String>,
    pub limit: Option<i64>,
}

async fn list_of(app: &AppState, resource_type: ResourceType, q: PageQuery) -> ApiResult<Json<Page>> {
    let limit = limit_of(q.limit)?;
    let after = q.cursor.as_deref().map(parse_id).transpose()?;
    let records = app.store.resources(resource_type, after.as_deref(), limit).await?;
    let cursor = next_cursor(&records, limit, |r| r.id.clone());
    Ok(Json(Page { value: records.iter().map(render).collect(), next_cursor: cursor }))
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

/// `GET /api/v1/resources/{type}`
pub async fn list(
    State(app): State<AppState>,
    principal: Principal,
    Path(raw_type): Path<String>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page>> {
    let resource_type = document_type(&raw_type)?;
    principal.require(read_permission(resource_type))?;
    list_of(&app, resource_type, q).await
}

/// `GET /api/v1/resources/{type}/{id}`
pub async fn get(
    State(app): State<AppState>,
    principal: Principal,
    Path((raw_type, id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let resource_type = document_type(&raw_type)?;
    principal.require(read_permission(resource_type))?;
    let (id, state, version) = current(&app, resource_type, &id).await?;
    Ok(Json(render_state(&id, resource_type, state, version)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceBody {
    name: String,
    description: Option<String>,
    document: Value,
    justification: Option<String>,
}

fn proposed_state(resource_type: ResourceType, body: &ResourceBody, assigned: Option<&Value>) -> ApiResult<Value> {
    let name = validate::display_name("name", &body.name)?;
    let description = validate::description(body.description.as_deref())?;
    if !body.document.is_object() {
        return Err(ApiError::validation("document must be a JSON object"));
    }
    let mut state = json!({"name": name, "description": description, "document": body.document});
    if resource_type.is_assignable() {
        state["assignedGroupIds"] = assigned.cloned().unwrap_or_else(|| json!([]));
    }
    Ok(state)
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
    principal.require(write_permission(resource_type, Operation::Create))?;
    let after = proposed_state(resource_type, &body, None)?;
    let name = after["name"].as_str().unwrap_or_default().to_owned();
    let proposal = Proposal::create(resource_type, &name, after);
    submit(&app, &principal, proposal, justification(body.justification, &headers)).await
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
    principal.require(write_permission(resource_type, Operation::Update))?;
    let (id, before, version) = current(&app, resource_type, &id).await?;
    let after = proposed_state(resource_type, &body, before.get("assignedGroupIds"))?;
    propose(
        &app,
        &principal,
        resource_type,
        Operation::Update,
        id,
        before,
        version,
        after,
        justification(body.justification, &headers),
    )
    .await
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
    principal.require(write_permission(resource_type, Operation::Delete))?;
    let (id, before, version) = current(&app, resource_type, &id).await?;
    propose(
        &app,
        &principal,
        resource_type,
        Operation::Delete,
        id,
        before,
        version,
        Value::Null,
        justification(body.justification, &headers),
    )
    .await
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
    if !resource_type.is_assignable() {
        return Err(ApiError::validation(format!("{resource_type} cannot be assigned to groups")));
    }
    principal.require(write_permission(resource_type, Operation::Assign))?;
    let (id, before, version) = current(&app, resource_type, &id).await?;
    let mut after = before.clone();
    after["assignedGroupIds"] = json!(ensure_groups(&app, &body.group_ids).await?);
    propose(
        &app,
        &principal,
        resource_type,
        Operation::Assign,
        id,
        before,
        version,
        after,
        justification(body.justification, &headers),
    )
    .await
}

/// A change to an existing object; a change that changes nothing answers with the object.
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
    use axum::response::IntoResponse;
    if before == after {
        return Ok(Json(render_state(&id, resource_type, before, version)).into_response());
    }
    let object_name = before["name"]
        .as_str()
        .or(before["displayName"].as_str())
        .or(before["username"].as_str())
        .unwrap_or_default()
        .to_owned();
    let proposal = Proposal {
        resource_type,
        operation,
        object_id: id,
        object_name,
        before,
        before_version: version,
        after,
        secret: None,
    };
    submit(app, principal, proposal, justification).await
}

/// `GET /api/v1/devices`
pub async fn list_devices(
    State(app): State<AppState>,
    principal: Principal,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page>> {
    principal.require("devices.read")?;
    list_of(&app, ResourceType::Device, q).await
}

/// `GET /api/v1/devices/{id}`
pub async fn get_device(
    State(app): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    principal.require("devices.read")?;
    let (id, state, version) = current(&app, ResourceType::Device, &id).await?;
    Ok(Json(render_state(&id, ResourceType::Device, state, version)))
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
    // There is no enrolment permission; any device-management permission will do.
    if !["devices.wipe", "devices.retire", "devices.delete"].iter().any(|p| principal.has(p)) {
        return Err(ApiError::forbidden(
            "enrolling a device needs a device-management permission (devices.wipe, devices.retire or devices.delete)",
        ));
    }
    let name = validate::display_name("name", &body.name)?;
    let os = validate::display_name("os", &body.os)?;
    let owner = body.owner.as_deref().map(|o| validate::display_name("owner", o)).transpose()?;
    let proposal = Proposal::create(
        ResourceType::Device,
        &name,
        json!({"name": name, "os": os, "owner": owner, "state": "active"}),
    );
    submit(&app, &principal, proposal, None).await
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
    let operation = match action.as_str() {
        "wipe" => Operation::Wipe,
        "retire" => Operation::Retire,
        "delete" => Operation::Delete,
        other => {
            return Err(ApiError::not_found(format!("'{other}' is not a device action; use wipe, retire or delete")))
        }
    };
    principal.require(write_permission(ResourceType::Device, operation))?;
    let (id, before, version) = current(&app, ResourceType::Device, &id).await?;
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
                after["keepEnrollmentData"] = json!(body.keep_enrollment_data.unwrap_or(false));
            }
            after
        }
    };
    propose(
        &app,
        &principal,
        ResourceType::Device,
        operation,
        id,
        before,
        version,
        after,
        justification(body.justification, &headers),
    )
    .await
}
