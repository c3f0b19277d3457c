//! `/api/v1/audit`: the audit log and its chain check (R13).

use super::{next_cursor, Page};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiQuery, Principal};
use crate::AppState;
use axum::extract::State;
use axum::Json;
use countersign_store::{AuditFilter, VerifyReport};
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    category: Option<String>,
    /// An account id or username.
    actor: Option<String>,
    action: Option<String>,
    target: Option<String>,
    since: Option<String>,
    until: Option<String>,
    cursor: Option<i64>,
    limit: Option<i64>,
}

/// `GET /api/v1/audit?category=&actor=&action=&target=&since=&until=&cursor=&limit=`, newest first.
pub async fn list(
    State(app): State<AppState>,
    principal: Principal,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> ApiResult<Json<Page>> {
    principal.require("audit.read")?;
    let actor_id = match q.actor {
        Some(actor) if uuid::Uuid::parse_str(&actor).is_ok() => Some(actor),
        Some(username) => match app.store.account_by_username(&username).await? {
            Some(account) => Some(account.id),
            None => return Ok(Json(Page { value: vec![], next_cursor: None })),
        },
        None => None,
    };
    let limit = super::limit_of(q.limit)?;
    let filter = AuditFilter {
        category: q.category,
        actor_id,
        action: q.action,
        target_id: q.target,
        since: q.since.as_deref().map(crate::time::parse).transpose()?,
        until: q.until.as_deref().map(crate::time::parse).transpose()?,
        before_seq: q.cursor,
        limit,
    };
    let entries = app.store.audit_entries(&filter).await?;
    let value = entries
        .iter()
        .map(|e| {
            let details: Value = serde_json::from_str(&e.details).unwrap_or(Value::String(e.details.clone()));
            json!({
                "seq": e.seq,
                "id": e.id,
                "at": crate::time::format(e.at),
                "actor": {"id": e.actor_id, "displayName": e.actor_name},
                "category": e.category,
                "action": e.action,
                "targetType": e.target_type,
                "targetId": e.target_id,
                "details": details,
                "prevHash": e.prev_hash,
                "hash": e.hash,
            })
        })
        .collect();
    let cursor = next_cursor(&entries, limit, |e| e.seq.to_string());
    Ok(Json(Page { value, next_cursor: cursor }))
}

/// `GET /api/v1/audit/verify`: walks the chain; names the first broken entry.
pub async fn verify(State(app): State<AppState>, principal: Principal) -> ApiResult<Json<VerifyReport>> {
    principal.require("audit.read")?;
    app.store.verify_audit().await.map(Json).map_err(ApiError::from)
}
