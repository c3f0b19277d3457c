//! `/api/v1/resources/{type}` (apps, scripts, compliance and configuration policies, device
//! categories) and `/api/v1/devices`.

use super::answers::Request;
use super::{current_json, respond, JustificationBody, Page, PageQuery};
use crate::error::ApiResult;
use crate::extract::{justification, ApiJson, ApiQuery, OptionalJson, Principal};
use crate::ops::resources::{self as ops, document_type, DocumentInput, NewDevice};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::Json;
use countersign_core::profile::ResourceType;
use countersign_store::ResourceRecord;
use serde::Deserialize;
use serde_json::{json, Value};

pub fn render(record: &ResourceRecord) -> Value {
    let mut body = super::object_json(&record.id, record.resource_type, &record.state, record.version);
    body["createdAt"] = json!(crate::time::format(record.created_at));
    body["lastModifiedAt"] = json!(crate::time::format(record.updated_at));
    body
}

/// `GET /api/v1/resources/{type}`
#[utoipa::path(
    get,
    path = "/resources/{type}",
    tag = "resources",
    summary = "List apps, scripts, compliance or configuration policies, or device categories",
    params(("type" = String, Path, description = "app, script, compliancePolicy, configurationPolicy or deviceCategory"), PageQuery),
    responses(
        (status = 200, description = "a page of resources", body = ref("#/components/schemas/ResourcePage"))
    )
)]
pub async fn list(
    State(app): State<AppState>,
    principal: Principal,
    Path(raw_type): Path<String>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page>> {
    let paged = ops::page_of(&app, &principal, document_type(&raw_type)?, &q.into()).await?;
    Ok(Json(Page::of(paged, render)))
}

/// `GET /api/v1/resources/{type}/{id}`
#[utoipa::path(
    get,
    path = "/resources/{type}/{id}",
    tag = "resources",
    summary = "One resource",
    params(("type" = String, Path, description = "app, script, compliancePolicy, configurationPolicy or deviceCategory"), ("id" = String, Path, description = "the object's id")),
    responses(
        (status = 200, description = "the resource", body = ref("#/components/schemas/ObjectState"))
    )
)]
pub async fn get(
    State(app): State<AppState>,
    principal: Principal,
    Path((raw_type, id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let resource_type = document_type(&raw_type)?;
    let object = ops::readable(&app, &principal, resource_type, &id).await?;
    Ok(Json(current_json(resource_type, &object)))
}

#[derive(Deserialize, utoipa::ToSchema)]
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
#[utoipa::path(
    post,
    path = "/resources/{type}",
    tag = "resources",
    summary = "Create a resource (202 with the request when protected)",
    params(("type" = String, Path, description = "app, script, compliancePolicy, configurationPolicy or deviceCategory")),
    request_body = ResourceBody,
    responses(
        (status = 200, description = "applied (or nothing to change): the object", body = ref("#/components/schemas/ObjectState")),
        (status = 201, description = "created: the object", body = ref("#/components/schemas/ObjectState")),
        (status = 202, description = "held for approval (R1): the request", body = Request, headers(("Location" = String, description = "the request")))
    )
)]
pub async fn create(
    State(app): State<AppState>,
    principal: Principal,
    Path(raw_type): Path<String>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<ResourceBody>,
) -> ApiResult<Response> {
    let resource_type = document_type(&raw_type)?;
    let (input, justification) = body.split(&headers);
    let outcome = ops::create_document(&app, &principal, resource_type, &input, justification).await?;
    respond(&app, &principal, outcome).await
}

/// `PUT /api/v1/resources/{type}/{id}`
#[utoipa::path(
    put,
    path = "/resources/{type}/{id}",
    tag = "resources",
    summary = "Replace a resource (202 with the request when protected)",
    params(("type" = String, Path, description = "app, script, compliancePolicy, configurationPolicy or deviceCategory"), ("id" = String, Path, description = "the object's id")),
    request_body = ResourceBody,
    responses(
        (status = 200, description = "applied (or nothing to change): the object", body = ref("#/components/schemas/ObjectState")),
        (status = 202, description = "held for approval (R1): the request", body = Request, headers(("Location" = String, description = "the request")))
    )
)]
pub async fn update(
    State(app): State<AppState>,
    principal: Principal,
    Path((raw_type, id)): Path<(String, String)>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<ResourceBody>,
) -> ApiResult<Response> {
    let resource_type = document_type(&raw_type)?;
    let (input, justification) = body.split(&headers);
    let outcome = ops::update_document(&app, &principal, resource_type, &id, &input, justification).await?;
    respond(&app, &principal, outcome).await
}

/// `DELETE /api/v1/resources/{type}/{id}`
#[utoipa::path(
    delete,
    path = "/resources/{type}/{id}",
    tag = "resources",
    summary = "Delete a resource (202 with the request when protected)",
    params(("type" = String, Path, description = "app, script, compliancePolicy, configurationPolicy or deviceCategory"), ("id" = String, Path, description = "the object's id")),
    request_body = Option<JustificationBody>,
    responses(
        (status = 204, description = "deleted"),
        (status = 202, description = "held for approval (R1): the request", body = Request, headers(("Location" = String, description = "the request")))
    )
)]
pub async fn delete(
    State(app): State<AppState>,
    principal: Principal,
    Path((raw_type, id)): Path<(String, String)>,
    headers: HeaderMap,
    OptionalJson(body): OptionalJson<JustificationBody>,
) -> ApiResult<Response> {
    let resource_type = document_type(&raw_type)?;
    let justification = justification(body.justification, &headers);
    let outcome = ops::delete_document(&app, &principal, resource_type, &id, justification).await?;
    respond(&app, &principal, outcome).await
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AssignBody {
    group_ids: Vec<String>,
    justification: Option<String>,
}

/// `POST /api/v1/resources/{type}/{id}/assign` `{groupIds}` (the full new set)
#[utoipa::path(
    post,
    path = "/resources/{type}/{id}/assign",
    tag = "resources",
    summary = "Set the groups a resource is assigned to (the full new set)",
    params(("type" = String, Path, description = "app, script, compliancePolicy, configurationPolicy or deviceCategory"), ("id" = String, Path, description = "the object's id")),
    request_body = AssignBody,
    responses(
        (status = 200, description = "applied (or nothing to change): the object", body = ref("#/components/schemas/ObjectState")),
        (status = 202, description = "held for approval (R1): the request", body = Request, headers(("Location" = String, description = "the request")))
    )
)]
pub async fn assign(
    State(app): State<AppState>,
    principal: Principal,
    Path((raw_type, id)): Path<(String, String)>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<AssignBody>,
) -> ApiResult<Response> {
    let resource_type = document_type(&raw_type)?;
    let justification = justification(body.justification, &headers);
    let outcome = ops::assign_document(&app, &principal, resource_type, &id, &body.group_ids, justification).await?;
    respond(&app, &principal, outcome).await
}

/// `GET /api/v1/devices`
#[utoipa::path(
    get,
    path = "/devices",
    tag = "devices",
    summary = "List devices",
    params(PageQuery),
    responses(
        (status = 200, description = "a page of devices", body = ref("#/components/schemas/ResourcePage"))
    )
)]
pub async fn list_devices(
    State(app): State<AppState>,
    principal: Principal,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page>> {
    let paged = ops::page_of(&app, &principal, ResourceType::Device, &q.into()).await?;
    Ok(Json(Page::of(paged, render)))
}

/// `GET /api/v1/devices/{id}`
#[utoipa::path(
    get,
    path = "/devices/{id}",
    tag = "devices",
    summary = "One device",
    params(("id" = String, Path, description = "the object's id")),
    responses(
        (status = 200, description = "the device", body = ref("#/components/schemas/ObjectState"))
    )
)]
pub async fn get_device(
    State(app): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let device = ops::readable(&app, &principal, ResourceType::Device, &id).await?;
    Ok(Json(current_json(ResourceType::Device, &device)))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnrollBody {
    name: String,
    os: String,
    owner: Option<String>,
}

/// `POST /api/v1/devices` `{name, os, owner?}`: enrolment is not protected.
#[utoipa::path(
    post,
    path = "/devices",
    tag = "devices",
    summary = "Enrol a device (not protected)",
    request_body = EnrollBody,
    responses(
        (status = 200, description = "applied (or nothing to change): the object", body = ref("#/components/schemas/ObjectState")),
        (status = 201, description = "created: the object", body = ref("#/components/schemas/ObjectState")),
        (status = 202, description = "held for approval (R1): the request", body = Request, headers(("Location" = String, description = "the request")))
    )
)]
pub async fn enroll_device(
    State(app): State<AppState>,
    principal: Principal,
    ApiJson(body): ApiJson<EnrollBody>,
) -> ApiResult<Response> {
    let device = NewDevice { name: body.name, os: body.os, owner: body.owner };
    let outcome = ops::enroll(&app, &principal, &device).await?;
    respond(&app, &principal, outcome).await
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DeviceActionBody {
    justification: Option<String>,
    keep_enrollment_data: Option<bool>,
}

/// `POST /api/v1/devices/{id}/wipe|retire|delete`
#[utoipa::path(
    post,
    path = "/devices/{id}/{action}",
    tag = "devices",
    summary = "Wipe, retire or delete a device",
    params(("id" = String, Path, description = "the object's id"), ("action" = String, Path, description = "wipe, retire or delete")),
    request_body = Option<DeviceActionBody>,
    responses(
        (status = 200, description = "applied (or nothing to change): the object", body = ref("#/components/schemas/ObjectState")),
        (status = 204, description = "deleted"),
        (status = 202, description = "held for approval (R1): the request", body = Request, headers(("Location" = String, description = "the request")))
    )
)]
pub async fn device_action(
    State(app): State<AppState>,
    principal: Principal,
    Path((id, action)): Path<(String, String)>,
    headers: HeaderMap,
    OptionalJson(body): OptionalJson<DeviceActionBody>,
) -> ApiResult<Response> {
    let operation = ops::device_operation(&action)?;
    let justification = justification(body.justification, &headers);
    let keep = body.keep_enrollment_data.unwrap_or(false);
    let outcome = ops::act_on_device(&app, &principal, &id, operation, keep, justification).await?;
    respond(&app, &principal, outcome).await
}
