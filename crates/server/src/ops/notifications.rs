//! Notification channels and deliveries, and each person's own notification settings. Channel
//! changes are tenant configuration, so they go through the MAA gate like any other change;
//! secrets (webhook URLs and signing secrets) are only ever shown redacted.

use super::{current, gate, propose, propose_with_secret, wrong_state, Current, Outcome};
use crate::error::{ApiError, ApiResult};
use crate::extract::{parse_id, Principal};
use crate::{outbound, AppState};
use countersign_core::error::ErrorCode;
use countersign_core::notify::{DeliveryStatus, EventKind};
use countersign_core::permission::Permission;
use countersign_core::profile::{Operation, ResourceType};
use countersign_core::state::{ChannelKind, ChannelSecret, NotificationChannelState, ObjectState};
use countersign_core::validate;
use countersign_store::{redact_webhook_url, DeliveryRecord, Proposal};

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
fn secret_of(kind: ChannelKind, input: &ChannelInput) -> ApiResult<Option<String>> {
    if kind == ChannelKind::Email {
        return Ok(None);
    }
    let url = input.url.as_deref().map(str::trim).unwrap_or_default();
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return Err(ApiError::validation("url must be an http:// or https:// address"));
    }
    let signing_secret = input.signing_secret.as_deref().unwrap_or_default();
    if kind == ChannelKind::Webhook && signing_secret.chars().count() < 16 {
        return Err(ApiError::validation("a webhook needs a signingSecret of at least 16 characters"));
    }
    let secret = ChannelSecret { url: Some(url.to_owned()), signing_secret: signing_secret.to_owned() };
    Ok(Some(serde_json::to_string(&secret).map_err(|e| ApiError::validation(format!("the channel's secret: {e}")))?))
}

/// The save-time half of the address check (`outbound`); sending checks again after DNS.
async fn check_address(app: &AppState, input: &ChannelInput) -> ApiResult<()> {
    let Some(url) = input.url.as_deref().map(str::trim) else { return Ok(()) };
    let allow = outbound::Allow::new(&app.config.notify_allow_networks);
    outbound::check_when_saved(url, &allow).await.map_err(|why| ApiError::new(ErrorCode::AddressNotAllowed, why))
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
    let kind: ChannelKind = input
        .kind
        .as_deref()
        .unwrap_or_default()
        .parse()
        .map_err(|_| ApiError::validation("kind must be webhook, slack, teams or email"))?;
    let display_name = validate::display_name("displayName", &input.display_name)?;
    let secret = secret_of(kind, input)?;
    if secret.is_some() {
        check_address(app, input).await?;
    }
    let after = ObjectState::NotificationChannel(NotificationChannelState {
        display_name,
        kind,
        enabled: input.enabled.unwrap_or(true),
        target: input.url.as_deref().map(redact_webhook_url),
        signed: kind == ChannelKind::Webhook,
        secret_changed: false,
    });
    let proposal = Proposal { secret, ..Proposal::create(ResourceType::NotificationChannel, after) };
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
    let ObjectState::NotificationChannel(channel) = &before.state else { return Err(wrong_state(&before)) };
    let kind = channel.kind;
    if input.kind.as_deref().is_some_and(|k| k != kind.as_str()) {
        return Err(ApiError::validation("a channel's kind cannot change; create a new channel"));
    }
    let mut after = channel.clone();
    after.display_name = validate::display_name("displayName", &input.display_name)?;
    if let Some(enabled) = input.enabled {
        after.enabled = enabled;
    }
    let secret = if input.url.is_some() || input.signing_secret.is_some() {
        let secret = secret_of(kind, input)?;
        if secret.is_some() {
            check_address(app, input).await?;
        }
        after.target = input.url.as_deref().map(redact_webhook_url);
        // The diff must show a secret change even when the redacted URL looks the same.
        after.secret_changed = true;
        secret
    } else {
        None
    };
    let after = Some(ObjectState::NotificationChannel(after));
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
    propose(app, principal, ResourceType::NotificationChannel, Operation::Delete, before, None, justification).await
}

/// Queues a test message on a channel (e-mail goes to the caller); returns the event id.
pub async fn test_channel(app: &AppState, principal: &Principal, id: &str) -> ApiResult<String> {
    principal.require(Permission::TenantConfigurationWrite)?;
    let channel = current(app, ResourceType::NotificationChannel, id).await?;
    let is_email = matches!(&channel.state, ObjectState::NotificationChannel(c) if c.kind == ChannelKind::Email);
    let recipient = if is_email {
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
    let status = q
        .status
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<DeliveryStatus>()
                .map_err(|_| ApiError::validation(format!("status must be pending, delivered or dead, not '{s}'")))
        })
        .transpose()?;
    let mut found = app.store.deliveries(status, q.limit.unwrap_or(100)).await?;
    // What a receiver answered says something about the network it sits in: those who may
    // change channels see it; readers see only whether it failed, and how broadly.
    if !principal.has(Permission::TenantConfigurationWrite) {
        for delivery in &mut found {
            delivery.last_error = delivery.last_error.as_deref().map(|e| crate::notify::failure_class(e).to_owned());
        }
    }
    Ok(found)
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
