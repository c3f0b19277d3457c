//! The notification outbox: rows written in the same transaction as the request event that
//! causes them (`requests::events`), then claimed and delivered here by a dispatcher on any
//! replica (`FOR UPDATE SKIP LOCKED` on PostgreSQL).

use crate::rows::{int, opt_int, opt_text, parsed, text};
use crate::{new_id, Result, Row, Store, StoreError};
use countersign_core::notify::{DeliveryStatus, Notice};
use countersign_core::state::{ChannelKind, ChannelSecret};
use countersign_core::Millis;
use serde::Serialize;
use serde_json::json;

/// One message to deliver on one channel (to one recipient, for e-mail).
#[derive(Debug, Clone)]
pub struct Delivery {
    pub id: String,
    pub event_id: String,
    pub event_type: String,
    pub channel_id: String,
    pub channel_kind: ChannelKind,
    pub channel_secret: ChannelSecret,
    pub recipient: Option<String>,
    pub payload: Notice,
    pub attempts: i64,
    pub created_at: Millis,
}

/// A delivery as the API lists it (no secrets).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryRecord {
    pub id: String,
    pub event_id: String,
    pub event_type: String,
    pub request_id: Option<String>,
    pub channel_id: String,
    pub recipient: Option<String>,
    pub status: DeliveryStatus,
    pub attempts: i64,
    pub next_attempt_at: Millis,
    pub last_error: Option<String>,
    pub created_at: Millis,
    pub delivered_at: Option<Millis>,
}

fn delivery_record(row: &Row) -> Result<DeliveryRecord> {
    Ok(DeliveryRecord {
        id: text(row, "id")?,
        event_id: text(row, "event_id")?,
        event_type: text(row, "event_type")?,
        request_id: opt_text(row, "request_id")?,
        channel_id: text(row, "channel_id")?,
        recipient: opt_text(row, "recipient")?,
        status: parsed(row, "status")?,
        attempts: int(row, "attempts")?,
        next_attempt_at: int(row, "next_attempt_at")?,
        last_error: opt_text(row, "last_error")?,
        created_at: int(row, "created_at")?,
        delivered_at: opt_int(row, "delivered_at")?,
    })
}

const DELIVERY_COLUMNS: &str = "id, event_id, event_type, request_id, channel_id, recipient, status, attempts, \
     next_attempt_at, last_error, created_at, delivered_at";

/// R20: an account's username for a notice, looked up by id (so also when the account was
/// deleted since); empty when there is no such account.
pub(crate) async fn username_of(conn: &mut sqlx::AnyConnection, account_id: &str) -> Result<String> {
    let row = sqlx::query("SELECT username FROM accounts WHERE id = $1").bind(account_id).fetch_optional(conn).await?;
    row.map_or(Ok(String::new()), |row| text(&row, "username"))
}

impl Store {
    /// The account's own notification settings: its e-mail address and the kinds it opted out of.
    pub async fn notification_settings(&self, account_id: &str) -> Result<(Option<String>, Vec<String>)> {
        let row = sqlx::query("SELECT email, notification_opt_outs FROM accounts WHERE id = $1")
            .bind(account_id)
            .fetch_one(self.pool())
            .await?;
        Ok((opt_text(&row, "email")?, crate::rows::json(&row, "notification_opt_outs")?))
    }

    /// Sets the caller's own e-mail address and opt-outs (not a credential: no approval needed).
    pub async fn set_notification_settings(
        &self,
        actor: &crate::Actor,
        email: Option<&str>,
        opt_outs: &[String],
        now: Millis,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query("UPDATE accounts SET email = $1, notification_opt_outs = $2, version = version + 1, updated_at = $3 WHERE id = $4")
            .bind(email)
            .bind(json!(opt_outs).to_string())
            .bind(now)
            .bind(&actor.id)
            .execute(tx.conn())
            .await?;
        let entry = crate::audit::NewAudit::new("directory", "notificationSettingsChanged")
            .by(&actor.id, &actor.name)
            .on("account", &actor.id)
            .details(json!({"email": email, "optOuts": opt_outs}));
        crate::audit::append(&mut tx, entry, now);
        tx.commit().await
    }

    /// Every notification channel's id, by name.
    pub async fn notification_channel_ids(&self) -> Result<Vec<String>> {
        let rows = sqlx::query("SELECT id FROM notification_channels ORDER BY display_name, id")
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(|r| text(r, "id")).collect()
    }

    /// Claims up to `limit` due deliveries for `lease_ms` (so another replica skips them), and
    /// returns them for delivery outside any transaction.
    pub async fn claim_deliveries(&self, now: Millis, lease_ms: Millis, limit: i64) -> Result<Vec<Delivery>> {
        let mut tx = self.begin_write().await?;
        let skip_locked = match self.backend() {
            crate::Backend::Postgres => " FOR UPDATE OF o SKIP LOCKED",
            crate::Backend::Sqlite => "",
        };
        let rows = sqlx::query(&format!(
            "SELECT o.id AS id, o.event_id AS event_id, o.event_type AS event_type, o.channel_id AS channel_id, \
             o.recipient AS recipient, o.payload AS payload, o.attempts AS attempts, o.created_at AS created_at, \
             c.kind AS kind, c.secret AS secret \
             FROM notification_outbox o JOIN notification_channels c ON c.id = o.channel_id \
             WHERE o.status = 'pending' AND o.next_attempt_at <= $1 ORDER BY o.next_attempt_at LIMIT $2{skip_locked}"
        ))
        .bind(now)
        .bind(limit)
        .fetch_all(tx.conn())
        .await?;
        let mut claimed = Vec::with_capacity(rows.len());
        for row in &rows {
            let id = text(row, "id")?;
            sqlx::query("UPDATE notification_outbox SET next_attempt_at = $1 WHERE id = $2")
                .bind(now + lease_ms)
                .bind(&id)
                .execute(tx.conn())
                .await?;
            claimed.push(Delivery {
                id,
                event_id: text(row, "event_id")?,
                event_type: text(row, "event_type")?,
                channel_id: text(row, "channel_id")?,
                channel_kind: parsed(row, "kind")?,
                channel_secret: serde_json::from_str(&text(row, "secret")?)
                    .map_err(|e| StoreError::Corrupt(format!("a channel's secret: {e}")))?,
                recipient: opt_text(row, "recipient")?,
                payload: serde_json::from_str(&text(row, "payload")?)
                    .map_err(|e| StoreError::Corrupt(format!("a notification's payload: {e}")))?,
                attempts: int(row, "attempts")?,
                created_at: int(row, "created_at")?,
            });
        }
        tx.commit().await?;
        Ok(claimed)
    }

    pub async fn delivery_succeeded(&self, id: &str, now: Millis) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "UPDATE notification_outbox SET status = 'delivered', attempts = attempts + 1, delivered_at = $1, last_error = NULL \
             WHERE id = $2",
        )
        .bind(now)
        .bind(id)
        .execute(tx.conn())
        .await?;
        tx.commit().await
    }

    /// Records a failed attempt: retried at `retry_at`, or dead when `None`.
    pub async fn delivery_failed(&self, id: &str, error: &str, retry_at: Option<Millis>) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let status = if retry_at.is_some() { DeliveryStatus::Pending } else { DeliveryStatus::Dead };
        sqlx::query(
            "UPDATE notification_outbox SET status = $1, attempts = attempts + 1, last_error = $2, \
             next_attempt_at = COALESCE($3, next_attempt_at) WHERE id = $4",
        )
        .bind(status.as_str())
        .bind(error.chars().take(500).collect::<String>())
        .bind(retry_at)
        .bind(id)
        .execute(tx.conn())
        .await?;
        tx.commit().await
    }

    /// Deliveries, newest first, optionally of one status (`pending`, `delivered`, `dead`).
    pub async fn deliveries(&self, status: Option<DeliveryStatus>, limit: i64) -> Result<Vec<DeliveryRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM notification_outbox WHERE ($1 = '' OR status = $1) ORDER BY id DESC LIMIT $2"
        ))
        .bind(status.map_or("", DeliveryStatus::as_str))
        .bind(limit.clamp(1, 500))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(delivery_record).collect()
    }

    /// Sends a dead (or pending) delivery again, now.
    pub async fn retry_delivery(&self, id: &str, now: Millis) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let updated = sqlx::query(
            "UPDATE notification_outbox SET status = 'pending', next_attempt_at = $1 WHERE id = $2 AND status <> 'delivered'",
        )
        .bind(now)
        .bind(id)
        .execute(tx.conn())
        .await?;
        if updated.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("no undelivered delivery {id}")));
        }
        tx.commit().await
    }

    /// Queues a test message on one channel.
    pub async fn enqueue_test(&self, channel_id: &str, recipient: Option<&str>, now: Millis) -> Result<String> {
        let mut tx = self.begin_write().await?;
        let event_id = new_id();
        let payload = json!(Notice {
            id: event_id.clone(),
            kind: "test".into(),
            headline: "Test message".into(),
            occurred_at: now,
            request: None,
        });
        sqlx::query(
            "INSERT INTO notification_outbox (id, event_id, event_type, request_id, channel_id, recipient, payload, \
             status, attempts, next_attempt_at, created_at) VALUES ($1, $2, 'test', NULL, $3, $4, $5, 'pending', 0, $6, $6)",
        )
        .bind(new_id())
        .bind(&event_id)
        .bind(channel_id)
        .bind(recipient)
        .bind(payload.to_string())
        .bind(now)
        .execute(tx.conn())
        .await?;
        tx.commit().await?;
        Ok(event_id)
    }
}
