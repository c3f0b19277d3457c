//! `/api/v1/notificationChannels` and `/api/v1/notificationDeliveries`. Channel changes are
//! tenant configuration, so they go through the MAA gate like any other change; secrets (webhook
//! URLs and signing secrets) are only ever shown redacted.

use super::resources::{current, propose_outcome, JustificationBody};
use super::{gate, object_json, Outcome, Page};
use crate::error::{ApiError, ApiResult};
use crate::extract::{justification, parse_id, ApiJson, ApiQuery, OptionalJson, Principal};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Json;
use countersign_core::profile::{Operation, ResourceType};
use countersign_core::validate;
use countersign_store::{redact_webhook_url, Proposal};
use serde::Deserialize;
use serde_json::{json, Value};

const KINDS: [&str; 4] = ["webhook", "slack", "teams", "email"];

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ChannelBody {
    pub display_name: String,
    pub kind: Option<String>,
    pub url: Option<String>,
    pub signing_secret: Option<String>,
    pub enabled: Option<bool>,
    pub justification: Option<String>,
}

/// The secret part of a channel, checked: an http(s) URL for webhooks and chat, and a signing
/// secret of at least 16 characters for webhooks.
fn secret_of(kind: &str, body: &ChannelBody) -> ApiResult<Option<String>> {
    if kind == "email" {
        return Ok(None);
    }
    let url = body.url.as_deref().map(str::trim).unwrap_or_default();
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return Err(ApiError::validation("url must be an http:// or https:// address"));
    }
    let signing_secret = body.signing_secret.as_deref().unwrap_or_default();
    if kind == "webhook" && signing_secret.chars().count() < 16 {
        return Err(ApiError::validation("a webhook needs a signingSecret of at least 16 characters"));
    }
    Ok(Some(json!({"url": url, "signingSecret": signing_secret}).to_string()))
}

fn shown(kind: &str, display_name: &str, enabled: bool, url: Option<&str>, signed: bool) -> Value {
    json!({"displayName": display_name, "kind": kind, "enabled": enabled, "target": url.map(redact_webhook_url), "signed": signed})
}

/// `GET /api/v1/notificationChannels`
pub async fn list(State(app): State<AppState>, principal: Principal) -> ApiResult<Json<Page>> {
    principal.require("tenantConfiguration.read")?;
    let mut value = Vec::new();
    for id in app.store.notification_channel_ids().await? {
        if let Some((state, version)) = app.store.object_state(ResourceType::NotificationChannel, &id).await? {
            value.push(object_json(&id, ResourceType::NotificationChannel, state, version));
        }
    }
    Ok(Json(Page { value, next_cursor: None }))
}

/// `GET /api/v1/notificationChannels/{id}`
pub async fn get(State(app): State<AppState>, principal: Principal, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    principal.require("tenantConfiguration.read")?;
    let (id, state, version) = current(&app, ResourceType::NotificationChannel, &id).await?;
    Ok(Json(object_json(&id, ResourceType::NotificationChannel, state, version)))
}

/// Adds a channel: tenant configuration, so held when that profile type is protected.
pub async fn create_channel(
    app: &AppState,
    principal: &Principal,
    body: &ChannelBody,
    justification: Option<String>,
) -> ApiResult<Outcome> {
    principal.require("tenantConfiguration.write")?;
    let kind = body.kind.clone().unwrap_or_default();
    if !KINDS.contains(&kind.as_str()) {
        return Err(ApiError::validation("kind must be webhook, slack, teams or email"));
    }
    let name = validate::display_name("displayName", &body.display_name)?;
    let secret = secret_of(&kind, body)?;
    let after = shown(&kind, &name, body.enabled.unwrap_or(true), body.url.as_deref(), kind == "webhook");
    let proposal = Proposal { secret, ..Proposal::create(ResourceType::NotificationChannel, &name, after) };
    gate(app, principal, proposal, justification).await
}

/// `POST /api/v1/notificationChannels`
pub async fn create(
    State(app): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    ApiJson(body): ApiJson<ChannelBody>,
) -> ApiResult<Response> {
    let justification = justification(body.justification.clone(), &headers);
    create_channel(&app, &principal, &body, justification).await?.respond(&app, &principal).await
}

/// `PUT /api/v1/notificationChannels/{id}`: a new `url` (and `signingSecret`) replaces the secret.
pub async fn update(
    State(app): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<ChannelBody>,
) -> ApiResult<Response> {
    principal.require("tenantConfiguration.write")?;
    let (id, before, version) = current(&app, ResourceType::NotificationChannel, &id).await?;
    let kind = before["kind"].as_str().unwrap_or_default().to_owned();
    if body.kind.as_deref().is_some_and(|k| k != kind) {
        return Err(ApiError::validation("a channel's kind cannot change; create a new channel"));
    }
    let mut after = before.clone();
    after["displayName"] = json!(validate::display_name("displayName", &body.display_name)?);
    if let Some(enabled) = body.enabled {
        after["enabled"] = json!(enabled);
    }
    let secret = if body.url.is_some() || body.signing_secret.is_some() {
        let secret = secret_of(&kind, &body)?;
        after["target"] = json!(body.url.as_deref().map(redact_webhook_url));
        // The diff must show a secret change even when the redacted URL looks the same.
        after["secretChanged"] = json!(true);
        secret
    } else {
        None
    };
    let justification = justification(body.justification.clone(), &headers);
    if secret.is_none() {
        return propose_outcome(
            &app,
            &principal,
            ResourceType::NotificationChannel,
            Operation::Update,
            id,
            before,
            version,
            after,
            justification,
        )
        .await?
        .respond(&app, &principal)
        .await;
    }
    let change = Proposal::change(ResourceType::NotificationChannel, Operation::Update, id, before, version, after);
    let proposal = Proposal { secret, ..change };
    gate(&app, &principal, proposal, justification).await?.respond(&app, &principal).await
}

/// `DELETE /api/v1/notificationChannels/{id}`
pub async fn delete(
    State(app): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    headers: HeaderMap,
    OptionalJson(body): OptionalJson<JustificationBody>,
) -> ApiResult<Response> {
    principal.require("tenantConfiguration.write")?;
    let (id, before, version) = current(&app, ResourceType::NotificationChannel, &id).await?;
    let justification = justification(body.justification, &headers);
    propose_outcome(
        &app,
        &principal,
        ResourceType::NotificationChannel,
        Operation::Delete,
        id,
        before,
        version,
        Value::Null,
        justification,
    )
    .await?
    .respond(&app, &principal)
    .await
}

/// Queues a test message on a channel (e-mail goes to the caller); returns the event id.
pub async fn test_channel(app: &AppState, principal: &Principal, id: &str) -> ApiResult<String> {
    principal.require("tenantConfiguration.write")?;
    let (id, state, _) = current(app, ResourceType::NotificationChannel, id).await?;
    let recipient = if state["kind"] == "email" {
        Some(principal.account.email.clone().ok_or_else(|| ApiError::validation("set your e-mail address first"))?)
    } else {
        None
    };
    Ok(app.store.enqueue_test(&id, recipient.as_deref(), app.now()).await?)
}

/// `POST /api/v1/notificationChannels/{id}/test`: queues a test message (e-mail goes to you).
pub async fn test(
    State(app): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let event_id = test_channel(&app, &principal, &id).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({"eventId": event_id}))))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct DeliveryQuery {
    pub status: Option<String>,
    pub limit: Option<i64>,
}

/// Deliveries, newest first, optionally of one status.
pub async fn delivery_records(
    app: &AppState,
    principal: &Principal,
    q: &DeliveryQuery,
) -> ApiResult<Vec<countersign_store::DeliveryRecord>> {
    principal.require("tenantConfiguration.read")?;
    if let Some(status) = q.status.as_deref().filter(|s| !s.is_empty() && !["pending", "delivered", "dead"].contains(s))
    {
        return Err(ApiError::validation(format!("status must be pending, delivered or dead, not '{status}'")));
    }
    Ok(app.store.deliveries(q.status.as_deref().filter(|s| !s.is_empty()), q.limit.unwrap_or(100)).await?)
}

/// `GET /api/v1/notificationDeliveries?status=pending|delivered|dead`
pub async fn deliveries(
    State(app): State<AppState>,
    principal: Principal,
    ApiQuery(q): ApiQuery<DeliveryQuery>,
) -> ApiResult<Json<Page>> {
    let records = delivery_records(&app, &principal, &q).await?;
    let value = records
        .iter()
        .map(|d| {
            let mut v = json!(d);
            v["createdAt"] = json!(crate::time::format(d.created_at));
            v["nextAttemptAt"] = json!(crate::time::format(d.next_attempt_at));
            v["deliveredAt"] = json!(d.delivered_at.map(crate::time::format));
            v
        })
        .collect();
    Ok(Json(Page { value, next_cursor: None }))
}

/// Sends an undelivered message again, now.
pub async fn retry_delivery(app: &AppState, principal: &Principal, id: &str) -> ApiResult<()> {
    principal.require("tenantConfiguration.write")?;
    Ok(app.store.retry_delivery(&parse_id(id)?, app.now()).await?)
}

/// `POST /api/v1/notificationDeliveries/{id}/retry`
pub async fn retry(State(app): State<AppState>, principal: Principal, Path(id): Path<String>) -> ApiResult<StatusCode> {
    retry_delivery(&app, &principal, &id).await?;
    Ok(StatusCode::ACCEPTED)
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SettingsBody {
    pub email: Option<String>,
    pub opt_outs: Vec<String>,
}

/// The notification kinds a person may turn off; applied and failed changes are always told.
pub fn optional_kinds() -> Vec<&'static str> {
    use countersign_core::notify::EventKind;
    EventKind::ALL
        .into_iter()
        .filter(|k| !matches!(k, EventKind::Completed | EventKind::Failed))
        .map(EventKind::as_str)
        .collect()
}

/// Sets the caller's own e-mail address and opt-outs.
pub async fn set_settings(app: &AppState, principal: &Principal, body: &SettingsBody) -> ApiResult<()> {
    let email = super::directory::email(body.email.as_deref())?;
    let allowed = optional_kinds();
    if let Some(kind) = body.opt_outs.iter().find(|k| !allowed.contains(&k.as_str())) {
        return Err(ApiError::validation(format!(
            "'{kind}' cannot be turned off; choose among {}",
            allowed.join(", ")
        )));
    }
    let mut opt_outs = body.opt_outs.clone();
    opt_outs.sort();
    opt_outs.dedup();
    app.store.set_notification_settings(&principal.actor(), email.as_deref(), &opt_outs, app.now()).await?;
    Ok(())
}

/// `GET /api/v1/me/notifications`: my e-mail address and opt-outs, and what may be turned off.
pub async fn my_settings(State(app): State<AppState>, principal: Principal) -> ApiResult<Json<Value>> {
    let (email, opt_outs) = app.store.notification_settings(&principal.account.id).await?;
    Ok(Json(json!({"email": email, "optOuts": opt_outs, "optional": optional_kinds()})))
}

/// `PUT /api/v1/me/notifications` `{email?, optOuts: [...]}`
pub async fn put_my_settings(
    State(app): State<AppState>,
    principal: Principal,
    ApiJson(body): ApiJson<SettingsBody>,
) -> ApiResult<StatusCode> {
    set_settings(&app, &principal, &body).await?;
    Ok(StatusCode::NO_CONTENT)
}
