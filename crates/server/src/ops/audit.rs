//! The audit log and its chain check (R13).

use super::{limit_of, next_cursor, Paged};
use crate::error::ApiResult;
use crate::extract::Principal;
use crate::AppState;
use countersign_core::audit::AuditRecord;
use countersign_core::permission::Permission;
use countersign_core::Millis;
use countersign_store::{AuditFilter, VerifyReport};

/// Which entries to list; every field is optional.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub category: Option<String>,
    /// An account id or username.
    pub actor: Option<String>,
    pub action: Option<String>,
    pub target: Option<String>,
    pub since: Option<Millis>,
    pub until: Option<Millis>,
    /// The `seq` of the last entry of the previous page.
    pub cursor: Option<i64>,
    pub limit: Option<i64>,
}

/// One page of entries, newest first.
pub async fn entries(app: &AppState, principal: &Principal, q: AuditQuery) -> ApiResult<Paged<AuditRecord>> {
    principal.require(Permission::AuditRead)?;
    let limit = limit_of(q.limit)?;
    let actor_id = match q.actor {
        Some(actor) if uuid::Uuid::parse_str(&actor).is_ok() => Some(actor),
        Some(username) => match app.store.account_by_username(&username).await? {
            Some(account) => Some(account.id),
            None => return Ok(Paged { items: vec![], next_cursor: None }),
        },
        None => None,
    };
    let filter = AuditFilter {
        category: q.category,
        actor_id,
        action: q.action,
        target_id: q.target,
        since: q.since,
        until: q.until,
        before_seq: q.cursor,
        limit,
    };
    let items = app.store.audit_entries(&filter).await?;
    let next_cursor = next_cursor(&items, limit, |e| e.seq.to_string());
    Ok(Paged { items, next_cursor })
}

/// The latest request events, for the home page's activity list; empty without `audit.read`.
pub async fn recent_request_activity(app: &AppState, principal: &Principal) -> ApiResult<Vec<AuditRecord>> {
    if !principal.has(Permission::AuditRead) {
        return Ok(vec![]);
    }
    let filter = AuditFilter { category: Some("request".into()), limit: 10, ..Default::default() };
    Ok(app.store.audit_entries(&filter).await?)
}

/// Walks the chain; names the first broken entry.
pub async fn verify(app: &AppState, principal: &Principal) -> ApiResult<VerifyReport> {
    principal.require(Permission::AuditRead)?;
    Ok(app.store.verify_audit().await?)
}
