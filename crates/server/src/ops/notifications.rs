//! Notification channels and deliveries, and each person's own notification settings. Channel
//! changes are tenant configuration, so they go through the MAA gate like any other change;
//! secrets (webhook URLs and signing secrets) are only ever shown redacted.

use super::{current, gate, propose, propose_with_secret, Current, Outcome};
use crate::error::{ApiError, ApiResult};
use crate::extract::{parse_id, Principal};
use crate::AppState;
use countersign_core::notify::EventKind;
use countersign_core::permission::Permission;
use countersign_core::profile::{Operation, ResourceType};
use countersign_core::validate;
use countersign_store::{redact_webhook_url, DeliveryRecord, Proposal};
use serde_json::{json, Value};

const KINDS: [&str; 4] = ["webhook", "slack", "teams", "email"];

/// A channel as an administrator fills it in. On a change, `kind` must stay what it was and a
/// new `url` (or `signing_secret`) replaces the secret.
#[derive(Debug, Clone, Default)]
pub struct ChannelInput {
    pub display_name: String,
    pub kind: Option<String>,
    pub url: Option<String>,
    pub signing_secret: Option<String>,
    pub enabled: Option<bool>,
}

/// The secret part of a channel, checked: an http(s) URL for webhooks and chat, and a signing
/// secret of at least 16 characters for webhooks.
fn secret_of(kind: &str, input: &ChannelInput) -> ApiResult<Option<String>> {
    if kind == "email" {
        return Ok(None);
    }
    let url = input.url.as_deref().map(str::trim).unwrap_or_default();
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return Err(ApiError::validation("url must be an http:// or https:// address"));
    }
    let signing_secret = input.signing_secret.as_deref().unwrap_or_default();
    if kind == "webhook" && signing_secret.chars().count() < 16 {
        return Err(ApiError::validation("a webhook needs a signingSecret of at least 16 characters"));
    }
    Ok(Some(json!({"url": url, "signingSecret": signing_secret}).to_string()))
}

fn shown(kind: &str, display_name: &str, enabled: bool, url: Option<&str>, signed: bool) -> Value {
    json!({"displayName": display_name, "kind": kind, "enabled": enabled, "target": url.map(redact_webhook_url), "signed": signed})
}

/// Every channel, as shown (secrets redacted).
pub async fn list_channels(app: &AppState, principal: &Principal) -> ApiResult<Vec<Current>> {
    principal.require(Permission::TenantConfigurationRead)?;
    let mut channels = Vec::new();
    for id in app.store.notification_channel_ids().await? {
        if let Some((state, version)) = app.store.object_state(ResourceType::NotificationChannel, &id).await? {
            channels.push(Current { id, state, version });
        }
    }
    Ok(channels)
}

pub async fn get_channel(app: &AppState, principal: &Principal, id: &str) -> ApiResult<Current> {
    principal.require(Permission::TenantConfigurationRead)?;
    current(app, ResourceType::NotificationChannel, id).await
}

/// Adds a channel: tenant configuration, so held when that profile type is protected.
pub async fn create_channel(
    app: &AppState,
    principal: &Principal,
    input: &ChannelInput,
    justification: Option<String>,
) -> ApiResult<Outcome> {
    principal.require(Permission::TenantConfigurationWrite)?;
    let kind = input.kind.clone().unwrap_or_default();
    if !KINDS.contains(&kind.as_str()) {
        return Err(ApiError::validation("kind must be webhook, slack, teams or email"));
    }
    let name = validate::display_name("displayName", &input.display_name)?;
    let secret = secret_of(&kind, input)?;
    let after = shown(&kind, &name, input.enabled.unwrap_or(true), input.url.as_deref(), kind == "webhook");
    let proposal = Proposal { secret, ..Proposal::create(ResourceType::NotificationChannel, &name, after) };
    gate(app, principal, proposal, justification).await
}

pub async fn update_channel(
    app: &AppState,
    principal: &Principal,
    id: &str,
    input: &ChannelInput,
    justification: Option<String>,
) -> ApiResult<Outcome> {
    principal.require(Permission::TenantConfigurationWrite)?;
    let before = current(app, ResourceType::NotificationChannel, id).await?;
    let kind = before.state["kind"].as_str().unwrap_or_default().to_owned();
    if input.kind.as_deref().is_some_and(|k| k != kind) {
        return Err(ApiError::validation("a channel's kind cannot change; create a new channel"));
    }
    let mut after = before.state.clone();
    after["displayName"] = json!(validate::display_name("displayName", &input.display_name)?);
    if let Some(enabled) = input.enabled {
        after["enabled"] = json!(enabled);
    }
    let secret = if input.url.is_some() || input.signing_secret.is_some() {
        let secret = secret_of(&kind, input)?;
        after["target"] = json!(input.url.as_deref().map(redact_webhook_url));
        // The diff must show a secret change even when the redacted URL looks the same.
        after["secretChanged"] = json!(true);
        secret
    } else {
        None
    };
    let (resource_type, operation) = (ResourceType::NotificationChannel, Operation::Update);
    propose_with_secret(app, principal, resource_type, operation, before, after, secret, justification).await
}

pub async fn delete_channel(
    app: &AppState,
    principal: &Principal,
    id: &str,
    justification: Option<String>,
) -> ApiResult<Outcome> {
    principal.require(Permission::TenantConfigurationWrite)?;
    let before = current(app, ResourceType::NotificationChannel, id).await?;
    propose(app, principal, ResourceType::NotificationChannel, Operation::Delete, before, Value::Null, justification)
        .await
}

/// Queues a test message on a channel (e-mail goes to the caller); returns the event id.
pub async fn test_channel(app: &AppState, principal: &Principal, id: &str) -> ApiResult<String> {
    principal.require(Permission::TenantConfigurationWrite)?;
    let channel = current(app, ResourceType::NotificationChannel, id).await?;
    let recipient = if channel.state["kind"] == "email" {
        Some(principal.account.email.clone().ok_or_else(|| ApiError::validation("set your e-mail address first"))?)
    } else {
        None
    };
    Ok(app.store.enqueue_test(&channel.id, recipient.as_deref(), app.now()).await?)
}

/// Which deliveries to list.
#[derive(Debug, Clone, Default)]
pub struct DeliveryQuery {
    /// `pending`, `delivered` or `dead`; none or empty for all.
    pub status: Option<String>,
    pub limit: Option<i64>,
}

/// Deliveries, newest first, optionally of one status.
pub async fn deliveries(app: &AppState, principal: &Principal, q: &DeliveryQuery) -> ApiResult<Vec<DeliveryRecord>> {
    principal.require(Permission::TenantConfigurationRead)?;
    if let Some(status) = q.status.as_deref().filter(|s| !s.is_empty() && !["pending", "delivered", "dead"].contains(s))
    {
        return Err(ApiError::validation(format!("status must be pending, delivered or dead, not '{status}'")));
    }
    Ok(app.store.deliveries(q.status.as_deref().filter(|s| !s.is_empty()), q.limit.unwrap_or(100)).await?)
}

/// Sends an undelivered message again, now.
pub async fn retry_delivery(app: &AppState, principal: &Principal, id: &str) -> ApiResult<()> {
    principal.require(Permission::TenantConfigurationWrite)?;
    Ok(app.store.retry_delivery(&parse_id(id)?, app.now()).await?)
}

/// The notification kinds a person may turn off; applied and failed changes are always told.
pub fn optional_kinds() -> Vec<&'static str> {
    EventKind::ALL
        .into_iter()
        .filter(|k| !matches!(k, EventKind::Completed | EventKind::Failed))
        .map(EventKind::as_str)
        .collect()
}

/// A person's own notification settings.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub email: Option<String>,
    pub opt_outs: Vec<String>,
}

/// The caller's own e-mail address and opt-outs.
pub async fn my_settings(app: &AppState, principal: &Principal) -> ApiResult<Settings> {
    let (email, opt_outs) = app.store.notification_settings(&principal.account.id).await?;
    Ok(Settings { email, opt_outs })
}

/// Sets the caller's own e-mail address and opt-outs.
pub async fn set_my_settings(app: &AppState, principal: &Principal, settings: &Settings) -> ApiResult<()> {
    let email = super::directory::email(settings.email.as_deref())?;
    let allowed = optional_kinds();
    if let Some(kind) = settings.opt_outs.iter().find(|k| !allowed.contains(&k.as_str())) {
        return Err(ApiError::validation(format!(
            "'{kind}' cannot be turned off; choose among {}",
            allowed.join(", ")
        )));
    }
    let mut opt_outs = settings.opt_outs.clone();
    opt_outs.sort();
    opt_outs.dedup();
    app.store.set_notification_settings(&principal.actor(), email.as_deref(), &opt_outs, app.now()).await?;
    Ok(())
}
