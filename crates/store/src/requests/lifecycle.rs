//! What happens to a request after the gate held it: decisions (R2, R3, R6, R7), completion
//! (R8, R12), cancellation (R10), expiry (R11) and reminders.

use super::events::enqueue;
use super::{applied_audit, lock_request, request_audit, save_state, ApprovalRecord, RequestRecord};
use crate::approvers::approver_groups;
use crate::audit::{append, NewAudit};
use crate::control::request_control;
use crate::dependencies::current_versions;
use crate::directory::{account_by_id, candidate, Actor};
use crate::error::{broken_unique_rule, UniqueRule};
use crate::objects::apply;
use crate::rows::text;
use crate::step_up::{check_step_up, required_step_up, StepUpInput};
use crate::{Backend, Result, Store, StoreError, WriteTx};
use countersign_core::dependency::first_changed;
use countersign_core::diff::{approved_as_is, ensure_digest_seen};
use countersign_core::eligibility::ineligibility;
use countersign_core::notify::EventKind;
use countersign_core::request::{Decision, DecisionOutcome, RequestState, RequestStatus};
use countersign_core::step_up::StepUp;
use countersign_core::visibility::Viewer;
use countersign_core::{validate, DomainError, Millis};
use serde_json::json;

pub(super) async fn expire_one(tx: &mut WriteTx, request_id: &str, now: Millis) -> Result<bool> {
    let mut record = match lock_request(tx, request_id).await {
        Err(StoreError::Unreadable { reason, .. }) => return expire_unreadable(tx, request_id, &reason, now).await,
        read => read?,
    };
    let mut state = record.state();
    if !state.expire_if_due(now) {
        return Ok(false);
    }
    save_state(tx, &mut record, &state, now, None, None).await?;
    append(tx, request_audit(&record, "expired", None), now);
    enqueue(tx, &record, state.status, EventKind::Expired, None, now).await?;
    Ok(true)
}

/// R11 for a request that cannot be read (issue 15): it expires from its plain columns, so R4
/// frees its object when its time comes instead of never. Its channels are not told: the
/// notice needs the parts that cannot be read. The audit entry says why.
async fn expire_unreadable(tx: &mut WriteTx, request_id: &str, reason: &str, now: Millis) -> Result<bool> {
    let expired = sqlx::query(
        "UPDATE requests SET status = 'expired', last_modified_at = $1, secret = NULL \
         WHERE id = $2 AND status IN ('needsApproval', 'approved') AND expires_at <= $1 \
         RETURNING resource_type, object_id, object_name, operation",
    )
    .bind(now)
    .bind(request_id)
    .fetch_optional(tx.conn())
    .await?;
    let Some(row) = expired else { return Ok(false) };
    let entry = NewAudit::new("request", "expired").on("request", request_id).details(json!({
        "resourceType": text(&row, "resource_type")?,
        "objectId": text(&row, "object_id")?,
        "objectName": text(&row, "object_name")?,
        "operation": text(&row, "operation")?,
        "unreadable": reason,
        "notified": false,
    }));
    append(tx, entry, now);
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

/// Applies an approved request in `tx`: R17's frozen dependencies and R12's stale check, then
/// the change, then the status. If either check fails, nothing is applied and the request is
/// `failed` with the reason.
async fn finish(
    tx: &mut WriteTx,
    record: &mut RequestRecord,
    state: &mut RequestState,
    actor: &Actor,
    now: Millis,
) -> Result<()> {
    let proposal = record.proposal()?;
    let current = current_versions(tx, &record.dependencies).await?;
    let digest = record.change_digest();
    let approvals = record
        .approvals
        .iter()
        .filter(|a| a.decision == Decision::Approve)
        .map(|a| (a.approver_username.as_str(), a.change_digest.as_deref()));
    let applied = match (approved_as_is(&digest, approvals), first_changed(&record.dependencies, &current)) {
        (Err(altered), _) => Err(altered),
        (Ok(()), Some(changed)) => Err(changed.to_string()),
        (Ok(()), None) => match apply(tx, &proposal, now).await {
            Ok(()) => Ok(()),
            Err(StoreError::Stale(reason) | StoreError::Conflict(reason)) => Err(reason),
            // R20: the name was taken (or refused) after the change was proposed.
            Err(StoreError::Domain(refused @ (DomainError::NameTaken { .. } | DomainError::Validation(_)))) => {
                Err(refused.to_string())
            }
            Err(other) => return Err(other),
        },
    };
    match applied {
        Ok(()) => {
            state.finish(true)?;
            save_state(tx, record, state, now, Some(now), None).await?;
            append(tx, request_audit(record, "completed", Some(actor)), now);
            append(tx, applied_audit(&proposal, actor, Some(&record.id)), now);
            enqueue(tx, record, state.status, EventKind::Completed, None, now).await?;
        }
        Err(reason) => {
            state.finish(false)?;
            let reason = format!("Nothing was applied: {reason}. Submit the change again.");
            save_state(tx, record, state, now, None, Some(&reason)).await?;
            append(tx, request_audit(record, "failed", Some(actor)).details(json!({"reason": reason})), now);
            enqueue(tx, record, state.status, EventKind::Failed, Some(&reason), now).await?;
        }
    }
    Ok(())
}

/// A request locked for an action by someone who may see it.
struct Locked {
    tx: WriteTx,
    record: RequestRecord,
    /// The groups that decide the request, when seeing it needed them.
    approver_groups: Option<Vec<String>>,
}

impl Store {
    /// Locks a request for an action by `viewer` that would move it to `to`. A request the
    /// viewer may not see is not found; one past its time is expired instead (committed,
    /// audited) and the action refused (R11).
    async fn lock_for_action(
        &self,
        viewer: Viewer<'_>,
        request_id: &str,
        to: RequestStatus,
        now: Millis,
    ) -> Result<Locked> {
        let mut tx = self.begin_write().await?;
        let record = match lock_request(&mut tx, request_id).await {
            // R11 holds for it too: past its time, it is expired rather than left open.
            Err(unreadable @ StoreError::Unreadable { .. }) => {
                if expire_one(&mut tx, request_id, now).await? {
                    tx.commit().await?;
                    return Err(DomainError::InvalidTransition { from: RequestStatus::Expired, to }.into());
                }
                tx.rollback().await?;
                return Err(unreadable);
            }
            read => read?,
        };
        // Visibility is decided here, under the lock, rather than by a read of its own first.
        let approver_groups = if viewer.sees_directly(&record.requested_by, record.resource_type) {
            None
        } else {
            let groups = approver_groups(tx.conn(), record.policy_id.as_deref(), &record.id).await?;
            if !viewer.sees_as_approver(&groups) {
                tx.rollback().await?;
                return Err(StoreError::NotFound(format!("request {request_id} does not exist")));
            }
            Some(groups)
        };
        if record.state().is_due(now) {
            expire_one(&mut tx, request_id, now).await?;
            tx.commit().await?;
            return Err(DomainError::InvalidTransition { from: RequestStatus::Expired, to }.into());
        }
        Ok(Locked { tx, record, approver_groups })
    }

    /// R2, R3, R6, R7 (and R8 automatic): `actor` approves or rejects. R12: the decision is
    /// recorded with the digest of the change as stored; `seen_digest`, when the approver says
    /// which change they reviewed, must be that one.
    #[allow(clippy::too_many_arguments)]
    pub async fn decide(
        &self,
        actor: &Actor,
        viewer: Viewer<'_>,
        request_id: &str,
        decision: Decision,
        notes: Option<&str>,
        seen_digest: Option<&str>,
        now: Millis,
    ) -> Result<RequestRecord> {
        self.decide_with_step_up(actor, viewer, request_id, decision, notes, seen_digest, None, now).await
    }

    /// [`Store::decide`] with R21's step-up: when the request's policy asks for a passkey, the
    /// decision is refused (`step_up_required`) without `step_up`, and (`step_up_rejected`) with
    /// one that is not a fresh, user-verified assertion by one of the approver's passkeys over
    /// this request, its digest as stored, this decision and an unused nonce issued to them.
    #[allow(clippy::too_many_arguments)]
    pub async fn decide_with_step_up(
        &self,
        actor: &Actor,
        viewer: Viewer<'_>,
        request_id: &str,
        decision: Decision,
        notes: Option<&str>,
        seen_digest: Option<&str>,
        step_up: Option<StepUpInput<'_>>,
        now: Millis,
    ) -> Result<RequestRecord> {
        let notes = validate::notes(notes)?;
        let Locked { mut tx, mut record, approver_groups: known_groups } =
            self.lock_for_action(viewer, request_id, decision.target(), now).await?;
        let digest = record.change_digest();
        if let Err(mismatch) = ensure_digest_seen(seen_digest, &digest) {
            tx.rollback().await?;
            return Err(mismatch.into());
        }
        let mut state = record.state();
        let approver = account_by_id(tx.conn(), &actor.id)
            .await?
            .ok_or_else(|| StoreError::NotFound("your account no longer exists".into()))?;
        let facts = candidate(tx.conn(), &approver).await?;
        let groups = match known_groups {
            Some(groups) => groups,
            None => approver_groups(tx.conn(), record.policy_id.as_deref(), &record.id).await?,
        };
        let ineligible = ineligibility(&facts, &groups, record.resource_type);
        // R16: the control relation around the approver, the requester and the approvals
        // already counted, read in this transaction, with the control each recorded.
        let control = request_control(tx.conn(), &record, &[actor.id.as_str()], now).await?;
        // Recorded with the approval: the credential it was given with is among the approver's.
        let controllers = control.controllers_of(&actor.id);
        let outcome = state.decide(&actor.id, &ineligible, &control, decision, notes.clone(), now)?;
        // R21, once the decision would otherwise count: the step-up the policy asks for.
        let required = required_step_up(&mut tx, record.policy_id.as_deref()).await?;
        let proof = match step_up {
            Some(input) => Some(check_step_up(&mut tx, &actor.id, &record.id, &digest, decision, &input, now).await?),
            None if required == StepUp::Passkey => return Err(DomainError::StepUpRequired.into()),
            None => None,
        };
        let stored_proof = proof.as_ref().map(|p| json!(p).to_string());
        sqlx::query(
            "INSERT INTO approvals (request_id, approver_id, approver_name, decision, notes, at, controllers, change_digest, \
             step_up, passkey_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&record.id)
        .bind(&actor.id)
        .bind(&actor.name)
        .bind(decision.as_str())
        .bind(&notes)
        .bind(now)
        .bind(json!(controllers).to_string())
        .bind(&digest)
        .bind(&stored_proof)
        .bind(proof.as_ref().map(|p| p.passkey_id.as_str()))
        .execute(tx.conn())
        .await
        .map_err(|e| {
            if broken_unique_rule(&e) == Some(UniqueRule::OneDecisionPerApprover) {
                DomainError::AlreadyApproved.into()
            } else {
                StoreError::from(e)
            }
        })?;
        record.approvals.push(ApprovalRecord {
            approver_id: actor.id.clone(),
            approver_name: actor.name.clone(),
            approver_username: actor.username.clone(),
            decision,
            notes: notes.clone(),
            at: now,
            controllers,
            change_digest: Some(digest.clone()),
            passkey_id: proof.as_ref().map(|p| p.passkey_id.clone()),
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
                "changeDigest": digest,
                // R21: the keyed chain attests which passkey signed and what it signed.
                "stepUp": proof.as_ref().map(|p| json!({
                    "passkeyId": p.passkey_id,
                    "assertionSha256": crate::step_up::assertion_hash(&p.assertion),
                })),
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
    pub async fn cancel(
        &self,
        actor: &Actor,
        viewer: Viewer<'_>,
        request_id: &str,
        now: Millis,
    ) -> Result<RequestRecord> {
        let Locked { mut tx, mut record, .. } =
            self.lock_for_action(viewer, request_id, RequestStatus::Cancelled, now).await?;
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
    pub async fn complete(
        &self,
        actor: &Actor,
        viewer: Viewer<'_>,
        request_id: &str,
        now: Millis,
    ) -> Result<RequestRecord> {
        let Locked { mut tx, mut record, .. } =
            self.lock_for_action(viewer, request_id, RequestStatus::Completed, now).await?;
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
            match self.expire_claimed(&id, now).await {
                Ok(true) => expired += 1,
                Ok(false) => {}
                Err(unavailable @ StoreError::Unavailable(_)) => return Err(unavailable),
                // One request that cannot be expired does not stop the sweep for the others.
                Err(e) => tracing::warn!(request = %id, error = %e, "the expiry sweep passes over a request"),
            }
        }
        Ok(expired)
    }

    async fn expire_claimed(&self, id: &str, now: Millis) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        if self.backend() == Backend::Postgres && !claim_due(&mut tx, id, now).await? {
            tx.rollback().await?;
            return Ok(false);
        }
        let expired = expire_one(&mut tx, id, now).await?;
        tx.commit().await?;
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
            let record = match lock_request(&mut tx, &id).await {
                // Its approvers cannot be told what it holds; it is marked so that the sweep
                // passes over it once, and it expires in its time.
                Err(StoreError::Unreadable { .. }) => {
                    sqlx::query("UPDATE requests SET reminded_at = $1 WHERE id = $2")
                        .bind(now)
                        .bind(&id)
                        .execute(tx.conn())
                        .await?;
                    tx.commit().await?;
                    continue;
                }
                read => read?,
            };
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
}
