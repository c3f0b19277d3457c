//! Approval requests: what is stored of each and how it is read. The gate that creates them is
//! in `gate`, what happens to them afterwards (decisions, completion, cancellation, expiry,
//! reminders) in `lifecycle`.

mod events;
mod gate;
mod lifecycle;

pub use gate::Submitted;

use crate::approvers::approver_groups;
use crate::audit::NewAudit;
use crate::directory::Actor;
use crate::objects::{stored_state, Proposal};
use crate::rows::{int, opt_int, opt_text, parsed, text};
use crate::{Backend, Bind, Conditions, Result, Row, Store, StoreError, WriteTx};
use countersign_core::dependency::Dependency;
use countersign_core::diff::Change;
use countersign_core::policy::Completion;
use countersign_core::profile::{Operation, ProfileType, ResourceType};
use countersign_core::request::{Approval, Decision, RequestState, RequestStatus};
use countersign_core::Millis;
use serde_json::{json, Value};

#[derive(Debug, Clone)]
pub struct ApprovalRecord {
    pub approver_id: String,
    pub approver_name: String,
    /// R20: the approver's immutable username, shown beside the display name.
    pub approver_username: String,
    pub decision: Decision,
    pub notes: Option<String>,
    pub at: Millis,
    /// R16: who controlled the approver when the decision was given.
    pub controllers: Vec<String>,
    /// R12: the change digest the decision was given on (none before migration 0008).
    pub change_digest: Option<String>,
    /// R21: the passkey that confirmed the decision (none without step-up).
    pub passkey_id: Option<String>,
}

/// A stored approval request.
#[derive(Debug, Clone)]
pub struct RequestRecord {
    pub id: String,
    pub resource_type: ResourceType,
    pub object_id: String,
    pub object_name: String,
    pub operation: Operation,
    pub profile_type: ProfileType,
    pub policy_id: Option<String>,
    pub status: RequestStatus,
    pub justification: String,
    pub requested_by: String,
    pub requested_by_name: String,
    /// R20: the requester's immutable username, shown beside the display name.
    pub requested_by_username: String,
    pub requested_at: Millis,
    pub last_modified_at: Millis,
    pub expires_at: Millis,
    pub ttl_ms: Millis,
    pub required_approvals: i64,
    pub completion: Completion,
    pub completed_at: Option<Millis>,
    pub failure_reason: Option<String>,
    pub before: Value,
    pub before_version: i64,
    pub after: Value,
    pub approvals: Vec<ApprovalRecord>,
    /// R17: what the change depends on besides its object, as it was at submission.
    pub dependencies: Vec<Dependency>,
    secret: Option<String>,
    /// R16: who will control the password in `secret`.
    secret_controllers: Vec<String>,
    /// R16: who controlled the requester when it submitted.
    pub requester_controllers: Vec<String>,
}

impl RequestRecord {
    /// R12: the change as completion would apply it, from the stored row.
    pub fn change(&self) -> Change<'_> {
        Change {
            object_id: &self.object_id,
            resource_type: self.resource_type,
            operation: self.operation,
            before_version: self.before_version,
            before: &self.before,
            after: &self.after,
        }
    }

    /// R12: the `changeDigest` approvers are shown and approve.
    pub fn change_digest(&self) -> String {
        self.change().digest()
    }

    /// The part the rules act on.
    pub fn state(&self) -> RequestState {
        RequestState {
            status: self.status,
            requested_by: self.requested_by.clone(),
            required_approvals: self.required_approvals,
            completion: self.completion,
            approvals: self
                .approvals
                .iter()
                .map(|a| Approval {
                    approver_id: a.approver_id.clone(),
                    decision: a.decision,
                    notes: a.notes.clone(),
                    at: a.at,
                })
                .collect(),
            expires_at: self.expires_at,
            ttl_ms: self.ttl_ms,
        }
    }

    /// The change this request holds, its states read back as their types.
    fn proposal(&self) -> Result<Proposal> {
        Ok(Proposal {
            resource_type: self.resource_type,
            operation: self.operation,
            object_id: self.object_id.clone(),
            object_name: self.object_name.clone(),
            before: stored_state(self.resource_type, &self.before)?,
            before_version: self.before_version,
            after: stored_state(self.resource_type, &self.after)?,
            secret: self.secret.clone(),
            // The requester proposed the password, whoever completes the request.
            secret_set_by: self.secret.as_ref().map(|_| self.requested_by.clone()),
            secret_controllers: self.secret_controllers.clone(),
            // A service account's first token is never kept in a request.
            service_token_hash: None,
        })
    }
}

/// One page of a request list.
#[derive(Debug, Clone, Default)]
pub struct RequestList {
    pub records: Vec<RequestRecord>,
    /// When the page is full: the id the next page starts before.
    pub next_before: Option<String>,
}

/// Which requests a list shows.
#[derive(Debug, Clone)]
pub enum RequestView {
    /// Requests the account made.
    Mine(String),
    /// Requests the account's groups may decide (including the account's own, R3).
    Received(Vec<String>),
    All,
}

#[derive(Debug, Clone)]
pub struct RequestFilter {
    pub view: RequestView,
    pub status: Option<RequestStatus>,
    pub resource_type: Option<ResourceType>,
    pub object_id: Option<String>,
    /// Only these resource types (those the caller may read); `None` for any.
    pub resource_types: Option<Vec<ResourceType>>,
    /// R15: only requests whose last status change is at or after this.
    pub since: Millis,
    pub until: Option<Millis>,
    /// Requests with a smaller id than this (keyset paging, newest first).
    pub before_id: Option<String>,
    pub limit: i64,
}

pub(super) const REQUEST_COLUMNS: &str =
    "id, resource_type, object_id, object_name, operation, profile_type, policy_id, status, \
     justification, requested_by, requested_by_name, requested_at, last_modified_at, expires_at, ttl_ms, \
     required_approvals, completion, completed_at, failure_reason, before_state, before_version, after_state, secret, secret_controllers, \
     requester_controllers, dependencies";

/// `SELECT` of requests with their approvals in one statement (a JSON array per request), so a
/// request is one round trip, not two (countersign-bench, lifecycle profile).
pub(super) fn select_requests(backend: Backend) -> String {
    let approvals = match backend {
        Backend::Postgres => {
            "(SELECT COALESCE(json_agg(json_build_object('approverId', a.approver_id, 'approverName', a.approver_name, \
             'approverUsername', (SELECT u.username FROM accounts u WHERE u.id = a.approver_id), \
             'decision', a.decision, 'notes', a.notes, 'at', a.at, 'controllers', a.controllers, 'changeDigest', a.change_digest, 'passkeyId', a.passkey_id) ORDER BY a.at, a.approver_id), '[]'::json)::text \
             FROM approvals a WHERE a.request_id = requests.id)"
        }
        Backend::Sqlite => {
            "(SELECT COALESCE(json_group_array(json_object('approverId', a.approver_id, 'approverName', a.approver_name, \
             'approverUsername', (SELECT u.username FROM accounts u WHERE u.id = a.approver_id), \
             'decision', a.decision, 'notes', a.notes, 'at', a.at, 'controllers', a.controllers, 'changeDigest', a.change_digest, 'passkeyId', a.passkey_id) ORDER BY a.at, a.approver_id), '[]') \
             FROM approvals a WHERE a.request_id = requests.id)"
        }
    };
    // R20: usernames never change and accounts are never removed (only marked deleted), so the
    // requester's and approvers' are read from their accounts rather than copied into requests.
    format!(
        "SELECT {REQUEST_COLUMNS}, {approvals} AS approvals, \
         (SELECT u.username FROM accounts u WHERE u.id = requests.requested_by) AS requested_by_username FROM requests"
    )
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct ApprovalColumn {
    approver_id: String,
    approver_name: String,
    approver_username: Option<String>,
    decision: String,
    notes: Option<String>,
    at: Millis,
    controllers: String,
    change_digest: Option<String>,
    #[serde(default)]
    passkey_id: Option<String>,
}

fn approvals_column(row: &Row) -> Result<Vec<ApprovalRecord>> {
    let approvals: Vec<ApprovalColumn> =
        serde_json::from_str(&text(row, "approvals")?).map_err(|e| StoreError::Corrupt(format!("approvals: {e}")))?;
    approvals
        .into_iter()
        .map(|a| {
            Ok(ApprovalRecord {
                decision: Decision::parse(&a.decision).ok_or_else(|| StoreError::Corrupt("unknown decision".into()))?,
                approver_id: a.approver_id,
                // An approver is an account; a missing one is shown by the name it had.
                approver_username: a.approver_username.unwrap_or_else(|| a.approver_name.clone()),
                approver_name: a.approver_name,
                notes: a.notes,
                at: a.at,
                controllers: serde_json::from_str(&a.controllers)
                    .map_err(|e| StoreError::Corrupt(format!("an approval's controllers: {e}")))?,
                change_digest: a.change_digest,
                passkey_id: a.passkey_id,
            })
        })
        .collect()
}

/// A request row read back. Reading does no I/O, so a failure is the row's own: it is
/// reported (a warning naming the row) as unreadable, for the caller to pass over (issue 15).
fn readable_row(row: &Row) -> Result<RequestRecord> {
    request_row(row).map_err(|e| {
        let id = text(row, "id").unwrap_or_else(|_| "(without an id)".into());
        tracing::warn!(request = %id, error = %e, "a stored request cannot be read; lists and sweeps pass over it");
        StoreError::Unreadable { id, reason: e.to_string() }
    })
}

fn request_row(row: &Row) -> Result<RequestRecord> {
    let json_column = |column: &str| -> Result<Value> {
        serde_json::from_str(&text(row, column)?).map_err(|e| StoreError::Corrupt(format!("{column}: {e}")))
    };
    Ok(RequestRecord {
        id: text(row, "id")?,
        resource_type: parsed(row, "resource_type")?,
        object_id: text(row, "object_id")?,
        object_name: text(row, "object_name")?,
        operation: parsed(row, "operation")?,
        profile_type: parsed(row, "profile_type")?,
        policy_id: opt_text(row, "policy_id")?,
        status: parsed(row, "status")?,
        justification: text(row, "justification")?,
        requested_by: text(row, "requested_by")?,
        requested_by_name: text(row, "requested_by_name")?,
        requested_by_username: match opt_text(row, "requested_by_username")? {
            Some(username) => username,
            None => text(row, "requested_by_name")?,
        },
        requested_at: int(row, "requested_at")?,
        last_modified_at: int(row, "last_modified_at")?,
        expires_at: int(row, "expires_at")?,
        ttl_ms: int(row, "ttl_ms")?,
        required_approvals: int(row, "required_approvals")?,
        completion: Completion::parse(&text(row, "completion")?)?,
        completed_at: opt_int(row, "completed_at")?,
        failure_reason: opt_text(row, "failure_reason")?,
        before: json_column("before_state")?,
        before_version: int(row, "before_version")?,
        after: json_column("after_state")?,
        approvals: approvals_column(row)?,
        dependencies: serde_json::from_str(&text(row, "dependencies")?)
            .map_err(|e| StoreError::Corrupt(format!("a request's dependencies: {e}")))?,
        secret: opt_text(row, "secret")?,
        secret_controllers: match opt_text(row, "secret_controllers")? {
            Some(ids) => serde_json::from_str(&ids)
                .map_err(|e| StoreError::Corrupt(format!("a request's secret_controllers: {e}")))?,
            None => vec![],
        },
        requester_controllers: serde_json::from_str(&text(row, "requester_controllers")?)
            .map_err(|e| StoreError::Corrupt(format!("a request's requester_controllers: {e}")))?,
    })
}

pub(super) async fn lock_request(tx: &mut WriteTx, id: &str) -> Result<RequestRecord> {
    let sql = format!("{} WHERE id = $1{}", select_requests(tx.backend), tx.for_update());
    let row = sqlx::query(&sql)
        .bind(id)
        .fetch_optional(tx.conn())
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("request {id} does not exist")))?;
    readable_row(&row)
}

/// Writes the mutable part of a request after a state change, and updates `record` to match,
/// so that callers answer with what was committed without reading it again.
pub(super) async fn save_state(
    tx: &mut WriteTx,
    record: &mut RequestRecord,
    state: &RequestState,
    now: Millis,
    completed_at: Option<Millis>,
    failure_reason: Option<&str>,
) -> Result<()> {
    // A pending password hash is kept only while the request can still apply it.
    let drop_secret = !state.status.is_open();
    sqlx::query(
        "UPDATE requests SET status = $1, expires_at = $2, last_modified_at = $3, completed_at = $4, \
         failure_reason = $5, secret = CASE WHEN $6 = 1 THEN NULL ELSE secret END WHERE id = $7",
    )
    .bind(state.status.as_str())
    .bind(state.expires_at)
    .bind(now)
    .bind(completed_at)
    .bind(failure_reason)
    .bind(i64::from(drop_secret))
    .bind(&record.id)
    .execute(tx.conn())
    .await?;
    record.status = state.status;
    record.expires_at = state.expires_at;
    record.last_modified_at = now;
    record.completed_at = completed_at;
    record.failure_reason = failure_reason.map(str::to_owned);
    if drop_secret {
        record.secret = None;
    }
    Ok(())
}

pub(super) fn request_audit(record: &RequestRecord, action: &str, actor: Option<&Actor>) -> NewAudit {
    let entry = NewAudit::new("request", action).on("request", &record.id).details(json!({
        "resourceType": record.resource_type,
        "objectId": record.object_id,
        "objectName": record.object_name,
        "operation": record.operation,
    }));
    match actor {
        Some(a) => entry.by(&a.id, &a.name),
        None => entry,
    }
}

fn category_of(resource_type: ResourceType) -> &'static str {
    match resource_type {
        ResourceType::Account | ResourceType::Group => "directory",
        ResourceType::Role | ResourceType::RoleAssignment => "rbac",
        ResourceType::AccessPolicy => "policy",
        _ => "change",
    }
}

pub(super) fn applied_audit(proposal: &Proposal, actor: &Actor, request_id: Option<&str>) -> NewAudit {
    NewAudit::new(category_of(proposal.resource_type), "applied")
        .by(&actor.id, &actor.name)
        .on(proposal.resource_type.as_str(), &proposal.object_id)
        .details(json!({
            "operation": proposal.operation,
            "objectName": proposal.object_name,
            "requestId": request_id,
            "diff": countersign_core::diff::render(
                &countersign_core::diff::diff(&proposal.before_json(), &proposal.after_json()),
                &countersign_core::diff::Names::new(),
            ),
        }))
}

impl Store {
    pub async fn request(&self, id: &str) -> Result<RequestRecord> {
        let row = sqlx::query(&format!("{} WHERE id = $1", select_requests(self.backend)))
            .bind(id)
            .fetch_optional(self.pool())
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("request {id} does not exist")))?;
        readable_row(&row)
    }

    /// Newest first. A row that cannot be read is passed over (and reported, see
    /// [`readable_row`]): one bad row must not take every list of every user down with it.
    pub async fn requests(&self, filter: &RequestFilter) -> Result<RequestList> {
        let mut conditions = Conditions::default();
        conditions.add("last_modified_at >= ?", Bind::Int(filter.since));
        match &filter.view {
            RequestView::Mine(account_id) => conditions.add("requested_by = ?", Bind::Text(account_id.clone())),
            RequestView::Received(group_ids) => {
                if group_ids.is_empty() {
                    return Ok(RequestList::default());
                }
                // EXISTS, not `id IN (…)`: the newest requests are read in id order and each is
                // probed for a group, instead of first listing every request the groups ever
                // received (which grows with history; countersign-bench, history).
                conditions.add_list(
                    "EXISTS (SELECT 1 FROM request_approver_groups g WHERE g.request_id = requests.id \
                     AND g.group_id IN ({}))",
                    group_ids,
                );
            }
            RequestView::All => {}
        }
        if let Some(status) = filter.status {
            conditions.add("status = ?", Bind::Text(status.as_str().to_owned()));
        }
        if let Some(t) = filter.resource_type {
            conditions.add("resource_type = ?", Bind::Text(t.as_str().to_owned()));
        }
        if let Some(object_id) = &filter.object_id {
            conditions.add("object_id = ?", Bind::Text(object_id.clone()));
        }
        if let Some(types) = &filter.resource_types {
            if types.is_empty() {
                return Ok(RequestList::default());
            }
            let names: Vec<String> = types.iter().map(|t| t.as_str().to_owned()).collect();
            conditions.add_list("resource_type IN ({})", &names);
        }
        if let Some(until) = filter.until {
            conditions.add("last_modified_at < ?", Bind::Int(until));
        }
        if let Some(before) = &filter.before_id {
            conditions.add("id < ?", Bind::Text(before.clone()));
        }
        let limit = filter.limit.clamp(1, 500);
        let sql =
            format!("{} {} ORDER BY id DESC LIMIT {limit}", select_requests(self.backend), conditions.where_clause());
        let query = conditions.bind_to(sqlx::query(&sql));
        let rows = query.fetch_all(self.pool()).await?;
        // The cursor is the last row read, readable or not, so a page short of a skipped row
        // still leads on to the next.
        let next_before = match rows.last() {
            Some(last) if i64::try_from(rows.len()).unwrap_or(i64::MAX) >= limit => Some(text(last, "id")?),
            _ => None,
        };
        let records = rows.iter().filter_map(|row| readable_row(row).ok()).collect();
        Ok(RequestList { records, next_before })
    }

    /// The approver groups deciding `record` now; see R2.
    pub async fn approver_groups_of(&self, record: &RequestRecord) -> Result<Vec<String>> {
        let mut conn = self.pool().acquire().await?;
        approver_groups(&mut conn, record.policy_id.as_deref(), &record.id).await
    }

    /// Counts of requests by status and resource type, for `/metrics`.
    pub async fn request_counts(&self) -> Result<Vec<(String, String, i64)>> {
        let rows =
            sqlx::query("SELECT status, resource_type, COUNT(*) AS n FROM requests GROUP BY status, resource_type")
                .fetch_all(self.pool())
                .await?;
        rows.iter().map(|r| Ok((text(r, "status")?, text(r, "resource_type")?, int(r, "n")?))).collect()
    }
}
