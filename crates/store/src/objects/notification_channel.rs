//! Notification channels (webhooks, e-mail): their secret part (URL, signing secret) is stored
//! apart and shown to approvers only redacted. Changing one is tenant configuration.

use super::{Current, Proposal};
use crate::rows::{int, json, parsed, text};
use crate::{Result, WriteTx};
use countersign_core::gate::{gate as decide, Gate, Subject};
use countersign_core::policy::AccessPolicy;
use countersign_core::profile::{Operation, ProfileType};
use countersign_core::state::{ChannelSecret, NotificationChannelState, ObjectState};
use countersign_core::Millis;

/// A webhook URL as people may see it: scheme and host only, since the path is often the secret.
pub fn redact_webhook_url(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let host = rest.split(['/', '?']).next().unwrap_or_default();
            let host = host.rsplit('@').next().unwrap_or_default();
            format!("{scheme}://{host}/…")
        }
        None => "…".to_owned(),
    }
}

pub(super) async fn load(tx: &mut WriteTx, id: &str) -> Result<Option<Current>> {
    let sql = format!(
        "SELECT kind, display_name, enabled, secret, version FROM notification_channels WHERE id = $1{}",
        tx.for_update()
    );
    let Some(row) = sqlx::query(&sql).bind(id).fetch_optional(tx.conn()).await? else { return Ok(None) };
    let secret: ChannelSecret = json(&row, "secret")?;
    let state = NotificationChannelState {
        display_name: text(&row, "display_name")?,
        kind: parsed(&row, "kind")?,
        enabled: int(&row, "enabled")? != 0,
        target: secret.url.as_deref().map(redact_webhook_url),
        signed: secret.signs(),
        secret_changed: false,
    };
    Ok(Some(Current { state: ObjectState::NotificationChannel(state), version: int(&row, "version")? }))
}

pub(super) async fn gate(_tx: &mut WriteTx, _proposal: &Proposal, policies: &[AccessPolicy]) -> Result<Gate> {
    Ok(decide(Subject::Protectable(ProfileType::TenantConfiguration), policies))
}

pub(super) async fn apply(tx: &mut WriteTx, proposal: &Proposal, now: Millis) -> Result<()> {
    let id = proposal.object_id.as_str();
    let after = match &proposal.after {
        None => {
            sqlx::query("DELETE FROM notification_channels WHERE id = $1").bind(id).execute(tx.conn()).await?;
            return Ok(());
        }
        Some(ObjectState::NotificationChannel(after)) => after,
        Some(_) => return Err(proposal.malformed()),
    };
    match proposal.operation {
        Operation::Create => {
            sqlx::query(
                "INSERT INTO notification_channels (id, kind, display_name, enabled, secret, version, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, 1, $6, $6)",
            )
            .bind(id)
            .bind(after.kind.as_str())
            .bind(&after.display_name)
            .bind(i64::from(after.enabled))
            .bind(proposal.secret.as_deref().unwrap_or("{}"))
            .bind(now)
            .execute(tx.conn())
            .await?;
        }
        _ => {
            sqlx::query(
                "UPDATE notification_channels SET display_name = $1, enabled = $2, secret = COALESCE($3, secret), \
                 version = version + 1, updated_at = $4 WHERE id = $5",
            )
            .bind(&after.display_name)
            .bind(i64::from(after.enabled))
            .bind(proposal.secret.as_deref())
            .bind(now)
            .bind(id)
            .execute(tx.conn())
            .await?;
        }
    }
    Ok(())
}
