//! `/api/v1/notificationChannels`, `/api/v1/notificationDeliveries` and
//! `/api/v1/me/notifications`.

use super::answers::{Delivery, NotificationSettings, Request, TestQueued};
use super::{current_json, respond, JustificationBody, Page};
use crate::error::ApiResult;
use crate::extract::{justification, ApiJson, ApiQuery, OptionalJson, Principal};
use crate::ops::notifications::{self as ops, ChannelInput, DeliveryQuery, Settings};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Json;
use countersign_core::profile::ResourceType;
use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ChannelBody {
    display_name: String,
    kind: Option<String>,
    url: Option<String>,
    signing_secret: Option<String>,
    enabled: Option<bool>,
    justification: Option<String>,
}

impl ChannelBody {
    fn split(self, headers: &HeaderMap) -> (ChannelInput, Option<String>) {
        let input = ChannelInput {
            display_name: self.display_name,
            kind: self.kind,
            url: self.url,
            signing_secret: self.signing_secret,
            enabled: self.enabled,
        };
        (input, justification(self.justification, headers))
    }
}

/// `GET /api/v1/notificationChannels`
#[utoipa::path(
    get,
    path = "/notificationChannels",
    tag = "notifications",
    summary = "List notification channels",
    responses(
        (status = 200, description = "every channel", body = ref("#/components/schemas/ObjectStatePage"))
    )
)]
pub async fn list(State(app): State<AppState>, principal: Principal) -> ApiResult<Json<Page>> {
    let channels = ops::list_channels(&app, &principal).await?;
    Ok(Json(Page::all(&channels, |c| current_json(ResourceType::NotificationChannel, c))))
}

/// `GET /api/v1/notificationChannels/{id}`
#[utoipa::path(
    get,
    path = "/notificationChannels/{id}",
    tag = "notifications",
    summary = "One notification channel",
    params(("id" = String, Path, description = "the object's id")),
    responses(
        (status = 200, description = "the channel", body = ref("#/components/schemas/ObjectState"))
    )
)]
pub async fn get(State(app): State<AppState>, principal: Principal, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let channel = ops::get_channel(&app, &principal, &id).await?;
    Ok(Json(current_json(ResourceType::NotificationChannel, &channel)))
}

/// `POST /api/v1/notificationChannels`
#[utoipa::path(
    post,
    path = "/notificationChannels",
    tag = "notifications",
    summary = "Create a notification channel",
    request_body = ChannelBody,
    responses(
        (status = 200, description = "applied (or nothing to change): the object", body = ref("#/components/schemas/ObjectState")),
        (status = 201, description = "created: the object", body = ref("#/components/schemas/ObjectState")),
        (status = 202, description = "held for approval (R1): the request", body = Request, headers(("Location" = String, description = "the request")))
    )
)]
pub async fn create(
    State(app): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    ApiJson(body): ApiJson<ChannelBody>,
) -> ApiResult<Response> {
    let (input, justification) = body.split(&headers);
    let outcome = ops::create_channel(&app, &principal, &input, justification).await?;
    respond(&app, &principal, outcome).await
}

/// `PUT /api/v1/notificationChannels/{id}`: a new `url` (and `signingSecret`) replaces the secret.
#[utoipa::path(
    put,
    path = "/notificationChannels/{id}",
    tag = "notifications",
    summary = "Change a notification channel (a new url replaces the secret)",
    params(("id" = String, Path, description = "the object's id")),
    request_body = ChannelBody,
    responses(
        (status = 200, description = "applied (or nothing to change): the object", body = ref("#/components/schemas/ObjectState")),
        (status = 202, description = "held for approval (R1): the request", body = Request, headers(("Location" = String, description = "the request")))
    )
)]
pub async fn update(
    State(app): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<ChannelBody>,
) -> ApiResult<Response> {
    let (input, justification) = body.split(&headers);
    let outcome = ops::update_channel(&app, &principal, &id, &input, justification).await?;
    respond(&app, &principal, outcome).await
}

/// `DELETE /api/v1/notificationChannels/{id}`
#[utoipa::path(
    delete,
    path = "/notificationChannels/{id}",
    tag = "notifications",
    summary = "Delete a notification channel",
    params(("id" = String, Path, description = "the object's id")),
    request_body = Option<JustificationBody>,
    responses(
        (status = 204, description = "deleted"),
        (status = 202, description = "held for approval (R1): the request", body = Request, headers(("Location" = String, description = "the request")))
    )
)]
pub async fn delete(
    State(app): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    headers: HeaderMap,
    OptionalJson(body): OptionalJson<JustificationBody>,
) -> ApiResult<Response> {
    let outcome = ops::delete_channel(&app, &principal, &id, justification(body.justification, &headers)).await?;
    respond(&app, &principal, outcome).await
}

/// `POST /api/v1/notificationChannels/{id}/test`: queues a test message (e-mail goes to you).
#[utoipa::path(
    post,
    path = "/notificationChannels/{id}/test",
    tag = "notifications",
    summary = "Queue a test message (e-mail goes to you)",
    params(("id" = String, Path, description = "the object's id")),
    responses(
        (status = 202, description = "queued", body = TestQueued)
    )
)]
pub async fn test(
    State(app): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<TestQueued>)> {
    let event_id = ops::test_channel(&app, &principal, &id).await?;
    Ok((StatusCode::ACCEPTED, Json(TestQueued { event_id })))
}

#[derive(Deserialize, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeliveryParams {
    status: Option<String>,
    limit: Option<i64>,
}

/// `GET /api/v1/notificationDeliveries?status=pending|delivered|dead`
#[utoipa::path(
    get,
    path = "/notificationDeliveries",
    tag = "notifications",
    summary = "Notification deliveries, newest first",
    params(DeliveryParams),
    responses(
        (status = 200, description = "deliveries", body = Page<Delivery>)
    )
)]
pub async fn deliveries(
    State(app): State<AppState>,
    principal: Principal,
    ApiQuery(q): ApiQuery<DeliveryParams>,
) -> ApiResult<Json<Page<Delivery>>> {
    let records = ops::deliveries(&app, &principal, &DeliveryQuery { status: q.status, limit: q.limit }).await?;
    Ok(Json(Page::all(&records, |d| Delivery::from(d))))
}

/// `POST /api/v1/notificationDeliveries/{id}/retry`
#[utoipa::path(
    post,
    path = "/notificationDeliveries/{id}/retry",
    tag = "notifications",
    summary = "Retry a dead delivery",
    params(("id" = String, Path, description = "the object's id")),
    responses(
        (status = 202, description = "queued again")
    )
)]
pub async fn retry(State(app): State<AppState>, principal: Principal, Path(id): Path<String>) -> ApiResult<StatusCode> {
    ops::retry_delivery(&app, &principal, &id).await?;
    Ok(StatusCode::ACCEPTED)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SettingsBody {
    email: Option<String>,
    opt_outs: Vec<String>,
}

/// `GET /api/v1/me/notifications`: my e-mail address and opt-outs, and what may be turned off.
#[utoipa::path(
    get,
    path = "/me/notifications",
    tag = "notifications",
    summary = "My e-mail address and notification opt-outs",
    responses(
        (status = 200, description = "my settings, and the kinds that may be turned off", body = NotificationSettings)
    )
)]
pub async fn my_settings(State(app): State<AppState>, principal: Principal) -> ApiResult<Json<NotificationSettings>> {
    let settings = ops::my_settings(&app, &principal).await?;
    Ok(Json(NotificationSettings {
        email: settings.email,
        opt_outs: settings.opt_outs,
        optional: ops::optional_kinds(),
    }))
}

/// `PUT /api/v1/me/notifications` `{email?, optOuts: [...]}`
#[utoipa::path(
    put,
    path = "/me/notifications",
    tag = "notifications",
    summary = "Set my e-mail address and opt-outs (applied and failed changes are always told)",
    request_body = SettingsBody,
    responses(
        (status = 204, description = "saved")
    )
)]
pub async fn put_my_settings(
    State(app): State<AppState>,
    principal: Principal,
    ApiJson(body): ApiJson<SettingsBody>,
) -> ApiResult<StatusCode> {
    ops::set_my_settings(&app, &principal, &Settings { email: body.email, opt_outs: body.opt_outs }).await?;
    Ok(StatusCode::NO_CONTENT)
}
