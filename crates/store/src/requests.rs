//! Approval requests: the MAA gate (`submit`), decisions, completion, cancellation, expiry.

use crate::audit::{append, NewAudit};
use crate::directory::{account_by_id, candidate, members_as_candidates, Actor};
use crate::error::is_unique_violation;
use crate::notify::enqueue;
use crate::objects::{
    all_policies, apply, gate_decision, load, policy_from_state, policy_row, Proposal, Submitted, POLICY_COLUMNS,
};
use crate::rows::{int, opt_int, opt_text, parsed, text};
use crate::{new_id, Backend, Bind, Conditions, Result, Row, Store, StoreError, WriteTx};
use countersign_core::eligibility::{ensure_satisfiable, ineligibility};
use countersign_core::gate::{Gate, Governance};
use countersign_core::notify::EventKind;
use countersign_core::policy::{AccessPolicy, Completion};
use countersign_core::profile::{Operation, ProfileType, ResourceType};
use countersign_core::request::{Approval, Decision, DecisionOutcome, RequestState, RequestStatus};
use countersign_core::{validate, DomainError, Millis};
use serde_json::{json, Value};
use sqlx::AnyConnection;

#[derive(Debug, Clone)]
pub struct ApprovalRecord {
    pub approver_id: String,
    pub approver_name: String,
    pub decision: Decision,
    pub notes: Option<String>,
    pub at: Millis,
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
    secret: Option<String>,
}

impl RequestRecord {
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

    fn proposal(&self) -> Proposal {
        Proposal {
            resource_type: self.resource_type,
            operation: self.operation,
            object_id: self.object_id.clone(),
            object_name: self.object_name.clone(),
            before: self.before.clone(),
            before_version: self.before_version,
            after: self.after.clone(),
            secret: self.secret.clone(),
        }
    }
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

const REQUEST_COLUMNS: &str = "id, resource_type, object_id, object_name, operation, profile_type, policy_id, status, \
     justification, requested_by, requested_by_name, requested_at, last_modified_at, expires_at, ttl_ms, \
     required_approvals, completion, completed_at, failure_reason, before_state, before_version, after_state, secret";

/// `SELECT` of requests with their approvals in one statement (a JSON array per request), so a
/// request is one round trip, not two (countersign-bench, lifecycle profile).
fn select_requests(backend: Backend) -> String {
    let approvals = match backend {
        Backend::Postgres => {
            "(SELECT COALESCE(json_agg(json_build_object('approverId', a.approver_id, 'approverName', a.approver_name, \
             'decision', a.decision, 'notes', a.notes, 'at', a.at) ORDER BY a.at, a.approver_id), '[]'::json)::text \
             FROM approvals a WHERE a.request_id = requests.id)"
        }
        Backend::Sqlite => {
            "(SELECT COALESCE(json_group_array(json_object('approverId', a.approver_id, 'approverName', a.approver_name, \
             'decision', a.decision, 'notes', a.notes, 'at', a.at) ORDER BY a.at, a.approver_id), '[]') \
             FROM approvals a WHERE a.request_id = requests.id)"
        }
    };
    format!("SELECT {REQUEST_COLUMNS}, {approvals} AS approvals FROM requests")
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct ApprovalColumn {
    approver_id: String,
    approver_name: String,
    decision: String,
    notes: Option<String>,
    at: Millis,
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
                approver_name: a.approver_name,
                notes: a.notes,
                at: a.at,
            })
        })
        .collect()
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
        secret: opt_text(row, "secret")?,
    })
}

async fn lock_request(tx: &mut WriteTx, id: &str) -> Result<RequestRecord> {
    let sql = format!("{} WHERE id = $1{}", select_requests(tx.backend), tx.for_update());
    let row = sqlx::query(&sql)
        .bind(id)
        .fetch_optional(tx.conn())
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("request {id} does not exist")))?;
    request_row(&row)
}

/// Writes the mutable part of a request after a state change, and updates `record` to match,
/// so that callers answer with what was committed without reading it again.
async fn save_state(
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

fn request_audit(record: &RequestRecord, action: &str, actor: Option<&Actor>) -> NewAudit {
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

fn applied_audit(proposal: &Proposal, actor: &Actor, request_id: Option<&str>) -> NewAudit {
    NewAudit::new(category_of(proposal.resource_type), "applied")
        .by(&actor.id, &actor.name)
        .on(proposal.resource_type.as_str(), &proposal.object_id)
        .details(json!({
            "operation": proposal.operation,
            "objectName": proposal.object_name,
            "requestId": request_id,
            "diff": countersign_core::diff::render(&countersign_core::diff::diff(&proposal.before, &proposal.after)),
        }))
}

/// The approver groups that decide `record` now (R2 "at decision time"): its policy's current
/// groups, or the groups fixed at submission when it has no policy (R9 fall-backs).
pub(crate) async fn approver_groups(conn: &mut AnyConnection, record: &RequestRecord) -> Result<Vec<String>> {
    if let Some(policy_id) = &record.policy_id {
        let row = sqlx::query(&format!("SELECT {POLICY_COLUMNS} FROM access_policies WHERE id = $1"))
            .bind(policy_id)
            .fetch_optional(&mut *conn)
            .await?;
        if let Some(row) = row {
            return Ok(policy_row(&row)?.approver_group_ids);
        }
    }
    let rows = sqlx::query("SELECT group_id FROM request_approver_groups WHERE request_id = $1 ORDER BY group_id")
        .bind(&record.id)
        .fetch_all(&mut *conn)
        .await?;
    rows.iter().map(|r| text(r, "group_id")).collect()
}

/// After an access policy's approver groups change, its open requests are shown to the new
/// groups in "Received requests".
pub(crate) async fn refresh_visibility(conn: &mut AnyConnection, policy_id: &str, group_ids: &[String]) -> Result<()> {
    let open = sqlx::query("SELECT id FROM requests WHERE policy_id = $1 AND status IN ('needsApproval', 'approved')")
        .bind(policy_id)
        .fetch_all(&mut *conn)
        .await?;
    for row in &open {
        let request_id = text(row, "id")?;
        sqlx::query("DELETE FROM request_approver_groups WHERE request_id = $1")
            .bind(&request_id)
            .execute(&mut *conn)
            .await?;
        insert_visibility(conn, &request_id, group_ids).await?;
    }
    Ok(())
}

async fn insert_visibility(conn: &mut AnyConnection, request_id: &str, group_ids: &[String]) -> Result<()> {
    for group_id in group_ids {
        sqlx::query("INSERT INTO request_approver_groups (request_id, group_id) VALUES ($1, $2)")
            .bind(request_id)
            .bind(group_id)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// The object's open request (R4), after expiring, inside `tx`, one that is already past its
/// time: R4 never counts a request that can no longer be acted on.
async fn live_open_request(
    tx: &mut WriteTx,
    resource_type: ResourceType,
    object_id: &str,
    now: Millis,
) -> Result<Option<String>> {
    let open = sqlx::query(
        "SELECT id, expires_at FROM requests WHERE resource_type = $1 AND object_id = $2 \
         AND status IN ('needsApproval', 'approved')",
    )
    .bind(resource_type.as_str())
    .bind(object_id)
    .fetch_all(tx.conn())
    .await?;
    let mut live = None;
    for row in &open {
        let id = text(row, "id")?;
        if int(row, "expires_at")? <= now {
            expire_one(tx, &id, now).await?;
        } else {
            live = Some(id);
        }
    }
    Ok(live)
}

async fn expire_one(tx: &mut WriteTx, request_id: &str, now: Millis) -> Result<bool> {
    let mut record = lock_request(tx, request_id).await?;
    let mut state = record.state();
    if !state.expire_if_due(now) {
        return Ok(false);
    }
    save_state(tx, &mut record, &state, now, None, None).await?;
    append(tx, request_audit(&record, "expired", None), now);
    enqueue(tx, &record, state.status, EventKind::Expired, None, now).await?;
    Ok(true)
}

/// The expiry sweep's claim on PostgreSQL: `SKIP LOCKED` passes over a row that another
/// replica's sweep (or an action on the request, which expires it itself) holds, instead of
/// queueing behind it. False if the row is held, or no longer due.
async fn claim_due(tx: &mut WriteTx, request_id: &str, now: Millis) -> Result<bool> {
    let claimed = sqlx::query(
        "SELECT id FROM requests WHERE id = $1 AND status IN ('needsApproval', 'approved') AND expires_at <= $2 \
         FOR UPDATE SKIP LOCKED",
    )
    .bind(request_id)
    .bind(now)
    .fetch_optional(tx.conn())
    .await?;
    Ok(claimed.is_some())
}

async fn open_request_for(
    conn: &mut AnyConnection,
    resource_type: ResourceType,
    object_id: &str,
) -> Result<Option<String>> {
    let row = sqlx::query(
        "SELECT id FROM requests WHERE resource_type = $1 AND object_id = $2 AND status IN ('needsApproval', 'approved')",
    )
    .bind(resource_type.as_str())
    .bind(object_id)
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(|r| text(r, "id")).transpose()
}

/// R14: a policy that nobody but the saver could satisfy is refused, saying why.
async fn ensure_policy_satisfiable(tx: &mut WriteTx, actor: &Actor, policy: &AccessPolicy) -> Result<()> {
    let members = members_as_candidates(tx.conn(), &policy.approver_group_ids).await?;
    let mut seen = std::collections::HashSet::new();
    let members: Vec<_> = members
        .into_iter()
        .filter(|(c, _, _)| seen.insert(c.id.clone()))
        .map(|(c, record, _)| (c, record.username))
        .collect();
    ensure_satisfiable(
        &actor.id,
        &members,
        &policy.approver_group_ids,
        policy.profile_type.resource_type(),
        policy.required_approvals,
    )?;
    Ok(())
}

async fn ensure_groups_exist(tx: &mut WriteTx, group_ids: &[String]) -> Result<()> {
    for group_id in group_ids {
        let found = sqlx::query("SELECT id FROM directory_groups WHERE id = $1")
            .bind(group_id)
            .fetch_optional(tx.conn())
            .await?;
        if found.is_none() {
            return Err(DomainError::Validation(format!("group {group_id} does not exist")).into());
        }
    }
    Ok(())
}

/// Applies an approved request in `tx`: R12 stale check, then the change, then the status.
async fn finish(
    tx: &mut WriteTx,
    record: &mut RequestRecord,
    state: &mut RequestState,
    actor: &Actor,
    now: Millis,
) -> Result<()> {
    let proposal = record.proposal();
    match apply(tx, &proposal, now).await {
        Ok(()) => {
            state.finish(true)?;
            save_state(tx, record, state, now, Some(now), None).await?;
            append(tx, request_audit(record, "completed", Some(actor)), now);
            append(tx, applied_audit(&proposal, actor, Some(&record.id)), now);
            enqueue(tx, record, state.status, EventKind::Completed, None, now).await?;
        }
        Err(StoreError::Stale(reason) | StoreError::Conflict(reason)) => {
            state.finish(false)?;
            let reason = format!("Nothing was applied: {reason}. Submit the change again.");
            save_state(tx, record, state, now, None, Some(&reason)).await?;
            append(tx, request_audit(record, "failed", Some(actor)).details(json!({"reason": reason})), now);
            enqueue(tx, record, state.status, EventKind::Failed, Some(&reason), now).await?;
        }
        Err(other) => return Err(other),
    }
    Ok(())
}

impl Store {
    /// **The MAA gate.** Every change from every interface comes through here. Inside one write
    /// transaction it re-reads the object (refusing a stale proposal), asks the core gate whether
    /// the change is protected, and either applies it with its audit entry or holds it as an
    /// approval request (R1, R4, R5, R9, R14).
    pub async fn submit(
        &self,
        actor: &Actor,
        proposal: Proposal,
        justification: Option<&str>,
        now: Millis,
    ) -> Result<Submitted> {
        let mut tx = self.begin_write().await?;
        let current = load(&mut tx, proposal.resource_type, &proposal.object_id).await?;
        let current_version = current.as_ref().map(|c| c.version).unwrap_or(0);
        if current_version != proposal.before_version {
            return Err(StoreError::Stale(format!(
                "{} '{}' changed while you were editing it; reload it and try again",
                proposal.resource_type, proposal.object_name
            )));
        }
        if proposal.resource_type == ResourceType::AccessPolicy && proposal.operation != Operation::Delete {
            let policy = policy_from_state(&proposal.object_id, &proposal.after)?;
            policy.validate()?;
            ensure_groups_exist(&mut tx, &policy.approver_group_ids).await?;
        }
        let policies = all_policies(tx.conn()).await?;
        match gate_decision(&mut tx, &proposal, &policies).await? {
            Gate::Apply => {
                apply(&mut tx, &proposal, now).await?;
                append(&mut tx, applied_audit(&proposal, actor, None), now);
                // As stored (normalised), with its new version; nothing after a delete.
                let (state, version) = match load(&mut tx, proposal.resource_type, &proposal.object_id).await? {
                    Some(applied) => (applied.state, applied.version),
                    None => (Value::Null, 0),
                };
                tx.commit().await?;
                Ok(Submitted::Applied { state, version })
            }
            Gate::Hold(governance) => {
                let justification = validate::justification(justification)?;
                if proposal.resource_type == ResourceType::AccessPolicy && proposal.operation != Operation::Delete {
                    let policy = policy_from_state(&proposal.object_id, &proposal.after)?;
                    if proposal.operation == Operation::Create {
                        if let Some(existing) = policies.iter().find(|p| p.profile_type == policy.profile_type) {
                            return Err(StoreError::Conflict(format!(
                                "access policy '{}' already protects {}; edit it instead",
                                existing.display_name,
                                policy.profile_type.display_name()
                            )));
                        }
                    }
                    ensure_policy_satisfiable(&mut tx, actor, &policy).await?;
                }
                let record = self.hold(&mut tx, actor, proposal, governance, justification, now).await?;
                enqueue(&mut tx, &record, record.status, EventKind::Created, None, now).await?;
                tx.commit().await?;
                Ok(Submitted::Held(Box::new(record)))
            }
        }
    }

    /// First start only: applies `plan` without the gate, in one transaction, and only while no
    /// access policy exists (so nothing is protected yet and nothing can be bypassed). Returns
    /// false, changing nothing, once any policy exists.
    pub async fn seed(&self, plan: Vec<Proposal>, now: Millis) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        tx.serialise_on_chain_head().await?;
        if !all_policies(tx.conn()).await?.is_empty() {
            return Ok(false);
        }
        let system = Actor {
            id: String::new(),
            name: "system".into(),
            kind: countersign_core::eligibility::AccountKind::Service,
        };
        for proposal in &plan {
            apply(&mut tx, proposal, now).await?;
            let mut entry = applied_audit(proposal, &system, None);
            entry.actor_id = None;
            entry.action = "seeded".into();
            append(&mut tx, entry, now);
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn hold(
        &self,
        tx: &mut WriteTx,
        actor: &Actor,
        proposal: Proposal,
        governance: Governance,
        justification: String,
        now: Millis,
    ) -> Result<RequestRecord> {
        let object = format!("{} '{}'", proposal.resource_type, proposal.object_name);
        if let Some(open) = live_open_request(tx, proposal.resource_type, &proposal.object_id, now).await? {
            return Err(StoreError::RequestOpen { request_id: open, object });
        }
        let record = RequestRecord {
            id: new_id(),
            resource_type: proposal.resource_type,
            object_id: proposal.object_id,
            object_name: proposal.object_name,
            operation: proposal.operation,
            profile_type: governance.profile_type,
            policy_id: governance.policy_id,
            status: RequestStatus::NeedsApproval,
            justification,
            requested_by: actor.id.clone(),
            requested_by_name: actor.name.clone(),
            requested_at: now,
            last_modified_at: now,
            expires_at: now.saturating_add(governance.request_ttl_ms),
            ttl_ms: governance.request_ttl_ms,
            required_approvals: governance.required_approvals,
            completion: governance.completion,
            completed_at: None,
            failure_reason: None,
            before: proposal.before,
            before_version: proposal.before_version,
            after: proposal.after,
            approvals: vec![],
            secret: proposal.secret,
        };
        let inserted = sqlx::query(&format!(
            "INSERT INTO requests ({REQUEST_COLUMNS}) VALUES \
             ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23)"
        ))
        .bind(&record.id)
        .bind(record.resource_type.as_str())
        .bind(&record.object_id)
        .bind(&record.object_name)
        .bind(record.operation.as_str())
        .bind(record.profile_type.as_str())
        .bind(&record.policy_id)
        .bind(record.status.as_str())
        .bind(&record.justification)
        .bind(&record.requested_by)
        .bind(&record.requested_by_name)
        .bind(record.requested_at)
        .bind(record.last_modified_at)
        .bind(record.expires_at)
        .bind(record.ttl_ms)
        .bind(record.required_approvals)
        .bind(record.completion.as_str())
        .bind(record.completed_at)
        .bind(&record.failure_reason)
        .bind(record.before.to_string())
        .bind(record.before_version)
        .bind(record.after.to_string())
        .bind(&record.secret)
        .execute(tx.conn())
        .await;
        if let Err(e) = inserted {
            // R4 under a race on PostgreSQL: the partial unique index decides.
            if is_unique_violation(&e) {
                let open =
                    open_request_for(tx.conn(), record.resource_type, &record.object_id).await?.unwrap_or_default();
                return Err(StoreError::RequestOpen { request_id: open, object });
            }
            return Err(e.into());
        }
        insert_visibility(tx.conn(), &record.id, &governance.approver_group_ids).await?;
        append(
            tx,
            request_audit(&record, "created", Some(actor)).details(json!({
                "resourceType": record.resource_type,
                "objectId": record.object_id,
                "objectName": record.object_name,
                "operation": record.operation,
                "justification": record.justification,
            })),
            now,
        );
        Ok(record)
    }

    /// Locks a request for an action that would move it to `to`. A request past its time is
    /// expired instead (committed, audited) and the action refused (R11).
    async fn lock_for_action(
        &self,
        request_id: &str,
        to: RequestStatus,
        now: Millis,
    ) -> Result<(WriteTx, RequestRecord)> {
        let mut tx = self.begin_write().await?;
        let record = lock_request(&mut tx, request_id).await?;
        if record.state().is_due(now) {
            expire_one(&mut tx, request_id, now).await?;
            tx.commit().await?;
            return Err(DomainError::InvalidTransition { from: RequestStatus::Expired, to }.into());
        }
        Ok((tx, record))
    }

    /// R2, R3, R6, R7 (and R8 automatic): `actor` approves or rejects.
    pub async fn decide(
        &self,
        actor: &Actor,
        request_id: &str,
        decision: Decision,
        notes: Option<&str>,
        now: Millis,
    ) -> Result<RequestRecord> {
        let notes = validate::notes(notes)?;
        let (mut tx, mut record) = self.lock_for_action(request_id, decision.target(), now).await?;
        let mut state = record.state();
        let approver = account_by_id(tx.conn(), &actor.id)
            .await?
            .ok_or_else(|| StoreError::NotFound("your account no longer exists".into()))?;
        let facts = candidate(tx.conn(), &approver).await?;
        let groups = approver_groups(tx.conn(), &record).await?;
        let ineligible = ineligibility(&facts, &groups, record.resource_type);
        let outcome = state.decide(&actor.id, &ineligible, decision, notes.clone(), now)?;
        sqlx::query(
            "INSERT INTO approvals (request_id, approver_id, approver_name, decision, notes, at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&record.id)
        .bind(&actor.id)
        .bind(&actor.name)
        .bind(decision.as_str())
        .bind(&notes)
        .bind(now)
        .execute(tx.conn())
        .await
        .map_err(|e| if is_unique_violation(&e) { DomainError::AlreadyApproved.into() } else { StoreError::from(e) })?;
        record.approvals.push(ApprovalRecord {
            approver_id: actor.id.clone(),
            approver_name: actor.name.clone(),
            decision,
            notes: notes.clone(),
            at: now,
        });
        save_state(&mut tx, &mut record, &state, now, None, None).await?;
        let action = match outcome {
            DecisionOutcome::Rejected => "rejected",
            DecisionOutcome::Counted { .. } => "approvalRecorded",
            DecisionOutcome::Approved { .. } => "approved",
        };
        append(
            &mut tx,
            request_audit(&record, action, Some(actor)).details(json!({
                "objectName": record.object_name,
                "notes": notes,
                "approvals": state.approval_count(),
                "requiredApprovals": record.required_approvals,
            })),
            now,
        );
        let kind = match outcome {
            DecisionOutcome::Rejected => EventKind::Rejected,
            DecisionOutcome::Counted { .. } => EventKind::ApprovalRecorded,
            DecisionOutcome::Approved { .. } => EventKind::Approved,
        };
        enqueue(&mut tx, &record, state.status, kind, notes.as_deref(), now).await?;
        if outcome == (DecisionOutcome::Approved { apply_now: true }) {
            finish(&mut tx, &mut record, &mut state, actor, now).await?;
        }
        tx.commit().await?;
        Ok(record)
    }

    /// R10: the requester cancels.
    pub async fn cancel(&self, actor: &Actor, request_id: &str, now: Millis) -> Result<RequestRecord> {
        let (mut tx, mut record) = self.lock_for_action(request_id, RequestStatus::Cancelled, now).await?;
        let mut state = record.state();
        state.cancel(&actor.id, now)?;
        save_state(&mut tx, &mut record, &state, now, None, None).await?;
        append(&mut tx, request_audit(&record, "cancelled", Some(actor)), now);
        enqueue(&mut tx, &record, state.status, EventKind::Cancelled, None, now).await?;
        tx.commit().await?;
        Ok(record)
    }

    /// R8, R12: the requester completes an approved request; it is applied exactly once, or
    /// fails without changing anything when the object moved since submission.
    pub async fn complete(&self, actor: &Actor, request_id: &str, now: Millis) -> Result<RequestRecord> {
        let (mut tx, mut record) = self.lock_for_action(request_id, RequestStatus::Completed, now).await?;
        let mut state = record.state();
        state.check_completable(&actor.id, now)?;
        finish(&mut tx, &mut record, &mut state, actor, now).await?;
        tx.commit().await?;
        Ok(record)
    }

    /// R11: expires every due request; safe to run on every replica at once (each due row is
    /// claimed under a lock and re-checked, so each expires once). On PostgreSQL the claim skips
    /// rows another replica holds; SQLite's writer lock already serialises the sweeps. Returns
    /// how many this call expired.
    pub async fn expire_due(&self, now: Millis) -> Result<u64> {
        let probe = sqlx::query(
            "SELECT id FROM requests WHERE status IN ('needsApproval', 'approved') AND expires_at <= $1 ORDER BY expires_at LIMIT 200",
        )
        .bind(now)
        .fetch_all(self.pool())
        .await?;
        let mut expired = 0;
        for row in &probe {
            let id = text(row, "id")?;
            let mut tx = self.begin_write().await?;
            if self.backend() == Backend::Postgres && !claim_due(&mut tx, &id, now).await? {
                tx.rollback().await?;
                continue;
            }
            if expire_one(&mut tx, &id, now).await? {
                expired += 1;
            }
            tx.commit().await?;
        }
        Ok(expired)
    }

    /// Reminds approvers of open requests that expire within `lead`: once per request, on any
    /// replica (each is claimed under lock and re-checked). Returns how many were reminded.
    pub async fn send_reminders(&self, now: Millis, lead: Millis) -> Result<u64> {
        let due = sqlx::query(
            "SELECT id FROM requests WHERE status IN ('needsApproval', 'approved') AND reminded_at IS NULL \
             AND expires_at > $1 AND expires_at <= $2 ORDER BY expires_at LIMIT 200",
        )
        .bind(now)
        .bind(now.saturating_add(lead))
        .fetch_all(self.pool())
        .await?;
        let mut reminded = 0;
        for row in &due {
            let id = text(row, "id")?;
            let mut tx = self.begin_write().await?;
            let record = lock_request(&mut tx, &id).await?;
            let marked = sqlx::query("UPDATE requests SET reminded_at = $1 WHERE id = $2 AND reminded_at IS NULL")
                .bind(now)
                .bind(&id)
                .execute(tx.conn())
                .await?;
            let status = record.state().effective_status(now);
            if marked.rows_affected() == 1 && status.is_open() && record.expires_at <= now.saturating_add(lead) {
                enqueue(&mut tx, &record, status, EventKind::ExpiringSoon, None, now).await?;
                tx.commit().await?;
                reminded += 1;
            }
        }
        Ok(reminded)
    }

    pub async fn request(&self, id: &str) -> Result<RequestRecord> {
        let row = sqlx::query(&format!("{} WHERE id = $1", select_requests(self.backend)))
            .bind(id)
            .fetch_optional(self.pool())
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("request {id} does not exist")))?;
        request_row(&row)
    }

    /// Newest first.
    pub async fn requests(&self, filter: &RequestFilter) -> Result<Vec<RequestRecord>> {
        let mut conditions = Conditions::default();
        conditions.add("last_modified_at >= ?", Bind::Int(filter.since));
        match &filter.view {
            RequestView::Mine(account_id) => conditions.add("requested_by = ?", Bind::Text(account_id.clone())),
            RequestView::Received(group_ids) => {
                if group_ids.is_empty() {
                    return Ok(vec![]);
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
                return Ok(vec![]);
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
        let sql = format!(
            "{} {} ORDER BY id DESC LIMIT {}",
            select_requests(self.backend),
            conditions.where_clause(),
            filter.limit.clamp(1, 500)
        );
        let query = conditions.bind_to(sqlx::query(&sql));
        let rows = query.fetch_all(self.pool()).await?;
        rows.iter().map(request_row).collect()
    }

    /// The approver groups deciding `record` now; see R2.
    pub async fn approver_groups_of(&self, record: &RequestRecord) -> Result<Vec<String>> {
        let mut conn = self.pool().acquire().await?;
        approver_groups(&mut conn, record).await
    }

    /// Counts of requests by status and resource type, for `/metrics`.
    pub async fn request_counts(&self) -> Result<Vec<(String, String, i64)>> {
        let rows =
            sqlx::query("SELECT status, resource_type, COUNT(*) AS n FROM requests GROUP BY status, resource_type")
                .fetch_all(self.pool())
                .await?;
        rows.iter().map(|r| Ok((text(r, "status")?, text(r, "resource_type")?, int(r, "n")?))).collect()
    }

    pub async fn policies(&self) -> Result<Vec<AccessPolicy>> {
        let mut conn = self.pool().acquire().await?;
        all_policies(&mut conn).await
    }

    pub async fn policy(&self, id: &str) -> Result<Option<(AccessPolicy, i64)>> {
        let row = sqlx::query(&format!("SELECT {POLICY_COLUMNS} FROM access_policies WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        row.map(|r| Ok((policy_row(&r)?, int(&r, "version")?))).transpose()
    }

    /// The current state and version of an object, as a proposal's `before`.
    pub async fn object_state(&self, resource_type: ResourceType, id: &str) -> Result<Option<(Value, i64)>> {
        let mut tx = self.begin_read().await?;
        let current = load(&mut tx, resource_type, id).await?;
        tx.rollback().await?;
        Ok(current.map(|c| (c.state, c.version)))
    }
}
