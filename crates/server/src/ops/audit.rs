//! The audit log and its chain check (R13).

use super::{limit_of, next_cursor, Paged};
use crate::error::ApiResult;
use crate::extract::Principal;
use crate::AppState;
use countersign_core::audit::{AuditRecord, Checkpoint, PublicKey};
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

/// An audit entry and (R20) the username of the account that acted, which entries do not
/// record: usernames never change, so it is read from the account.
#[derive(Debug, Clone)]
pub struct AuditItem {
    pub entry: AuditRecord,
    /// `None` for the system, or an account id that names no account.
    pub actor_username: Option<String>,
}

impl AuditItem {
    /// The actor as a screen names it: display name and username (R20).
    pub fn actor(&self) -> String {
        let name = countersign_core::text::shown(&self.entry.actor_name);
        match &self.actor_username {
            Some(username) => format!("{name} ({})", countersign_core::text::shown(username)),
            None => name.into_owned(),
        }
    }
}

async fn with_usernames(app: &AppState, entries: Vec<AuditRecord>) -> ApiResult<Vec<AuditItem>> {
    let ids: Vec<String> = entries.iter().filter_map(|e| e.actor_id.clone()).collect();
    let usernames = app.store.usernames(&ids).await?;
    Ok(entries
        .into_iter()
        .map(|entry| {
            let actor_username = entry.actor_id.as_ref().and_then(|id| usernames.get(id).cloned());
            AuditItem { entry, actor_username }
        })
        .collect())
}

/// One page of entries, newest first.
pub async fn entries(app: &AppState, principal: &Principal, q: AuditQuery) -> ApiResult<Paged<AuditItem>> {
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
    let items = with_usernames(app, app.store.audit_entries(&filter).await?).await?;
    let next_cursor = next_cursor(&items, limit, |e| e.entry.seq.to_string());
    Ok(Paged { items, next_cursor })
}

/// The latest request events, for the home page's activity list; empty without `audit.read`.
pub async fn recent_request_activity(app: &AppState, principal: &Principal) -> ApiResult<Vec<AuditItem>> {
    if !principal.has(Permission::AuditRead) {
        return Ok(vec![]);
    }
    let filter = AuditFilter { category: Some("request".into()), limit: 10, ..Default::default() };
    with_usernames(app, app.store.audit_entries(&filter).await?).await
}

/// Walks the chain; names the first broken entry.
pub async fn verify(app: &AppState, principal: &Principal) -> ApiResult<VerifyReport> {
    principal.require(Permission::AuditRead)?;
    Ok(crate::audit::verify(&app.store, app.config.audit.as_ref()).await?)
}

/// The signed checkpoints kept in the database (made after `after`, oldest first) and the public
/// key that verifies them: what an auditor takes away. A stored row that does not read as a
/// checkpoint is left out here and reported by verification.
pub async fn checkpoints(
    app: &AppState,
    principal: &Principal,
    after: Option<Millis>,
    limit: Option<i64>,
) -> ApiResult<(Option<PublicKey>, Vec<Checkpoint>)> {
    principal.require(Permission::AuditRead)?;
    let limit = limit_of(limit.or(Some(500)))?;
    let kept = app.store.checkpoints_after(after.unwrap_or(Millis::MIN), limit).await?;
    let checkpoints = kept
        .into_iter()
        .filter_map(|checkpoint| {
            checkpoint.map_err(|reason| tracing::warn!(%reason, "a stored audit checkpoint does not read")).ok()
        })
        .collect();
    Ok((app.config.audit.as_ref().map(|audit| audit.signer.public_key()), checkpoints))
}
