//! Access policies: which profile type needs how many approvals from which groups (R5, R9),
//! and whether its objects' assigned groups are protected too (R18).

use super::{Current, Proposal};
use crate::approvers::refresh_visibility;
use crate::error::{broken_unique_rule, UniqueRule};
use crate::policies::{policy_row, POLICY_COLUMNS};
use crate::rows::int;
use crate::{Result, StoreError, WriteTx};
use countersign_core::gate::{gate as decide, Gate, Subject};
use countersign_core::policy::AccessPolicy;
use countersign_core::profile::Operation;
use countersign_core::state::{AccessPolicyState, ObjectState};
use countersign_core::Millis;
use serde_json::json;

pub(super) async fn load(tx: &mut WriteTx, id: &str) -> Result<Option<Current>> {
    let sql = format!("SELECT {POLICY_COLUMNS} FROM access_policies WHERE id = $1{}", tx.for_update());
    let Some(row) = sqlx::query(&sql).bind(id).fetch_optional(tx.conn()).await? else { return Ok(None) };
    let state = AccessPolicyState::of(&policy_row(&row)?);
    Ok(Some(Current { state: ObjectState::AccessPolicy(state), version: int(&row, "version")? }))
}

/// The policy a create or update of a policy proposes; `None` for a delete or another type.
pub(crate) fn proposed_policy(proposal: &Proposal) -> Result<Option<AccessPolicy>> {
    match &proposal.after {
        Some(ObjectState::AccessPolicy(after)) => Ok(Some(after.to_policy(&proposal.object_id)?)),
        _ => Ok(None),
    }
}

pub(super) async fn gate(_tx: &mut WriteTx, proposal: &Proposal, policies: &[AccessPolicy]) -> Result<Gate> {
    let existing = policies.iter().find(|p| p.id == proposal.object_id);
    let proposed = proposed_policy(proposal)?;
    Ok(decide(Subject::AccessPolicy { existing, proposed: proposed.as_ref() }, policies))
}

pub(super) async fn apply(tx: &mut WriteTx, proposal: &Proposal, now: Millis) -> Result<()> {
    let id = proposal.object_id.as_str();
    let Some(policy) = proposed_policy(proposal)? else {
        sqlx::query("DELETE FROM access_policies WHERE id = $1").bind(id).execute(tx.conn()).await?;
        return Ok(());
    };
    let groups = json!(policy.approver_group_ids).to_string();
    if proposal.operation == Operation::Create {
        sqlx::query(
            "INSERT INTO access_policies (id, display_name, description, profile_type, approver_group_ids, \
             required_approvals, completion, request_ttl_ms, protect_assigned_groups, version, created_at, updated_at, step_up) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 1, $10, $10, $11)",
        )
        .bind(id)
        .bind(&policy.display_name)
        .bind(&policy.description)
        .bind(policy.profile_type.as_str())
        .bind(&groups)
        .bind(policy.required_approvals)
        .bind(policy.completion.as_str())
        .bind(policy.request_ttl_ms)
        .bind(i64::from(policy.protect_assigned_groups))
        .bind(now)
        .bind(policy.step_up.as_str())
        .execute(tx.conn())
        .await
        .map_err(|e| {
            if broken_unique_rule(&e) == Some(UniqueRule::OnePolicyPerProfileType) {
                StoreError::Conflict(format!(
                    "an access policy for {} already exists",
                    policy.profile_type.display_name()
                ))
            } else {
                e.into()
            }
        })?;
        return Ok(());
    }
    sqlx::query(
        "UPDATE access_policies SET display_name = $1, description = $2, approver_group_ids = $3, \
         required_approvals = $4, completion = $5, request_ttl_ms = $6, protect_assigned_groups = $7, \
         version = version + 1, updated_at = $8, step_up = $10 WHERE id = $9",
    )
    .bind(&policy.display_name)
    .bind(&policy.description)
    .bind(&groups)
    .bind(policy.required_approvals)
    .bind(policy.completion.as_str())
    .bind(policy.request_ttl_ms)
    .bind(i64::from(policy.protect_assigned_groups))
    .bind(now)
    .bind(id)
    .bind(policy.step_up.as_str())
    .execute(tx.conn())
    .await?;
    refresh_visibility(tx.conn(), id, &policy.approver_group_ids).await
}
