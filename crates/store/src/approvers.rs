//! Who decides a request: its approver groups at decision time (R2), which requests each group
//! sees in "Received requests", and R14's check that a policy's groups can satisfy it.

use crate::control::control_graph;
use crate::directory::{members_as_candidates, Actor};
use crate::policies::policy_by_id;
use crate::rows::text;
use crate::{Result, WriteTx};
use countersign_core::eligibility::ensure_satisfiable;
use countersign_core::policy::AccessPolicy;
use countersign_core::{DomainError, Millis};
use sqlx::AnyConnection;

/// The approver groups that decide request `request_id` now (R2 "at decision time"): its
/// policy's current groups, or the groups fixed at submission when it has no policy (R9
/// fall-backs).
pub(crate) async fn approver_groups(
    conn: &mut AnyConnection,
    policy_id: Option<&str>,
    request_id: &str,
) -> Result<Vec<String>> {
    if let Some(policy_id) = policy_id {
        if let Some((policy, _)) = policy_by_id(conn, policy_id).await? {
            return Ok(policy.approver_group_ids);
        }
    }
    let rows = sqlx::query("SELECT group_id FROM request_approver_groups WHERE request_id = $1 ORDER BY group_id")
        .bind(request_id)
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

/// Shows request `request_id` to `group_ids` in "Received requests".
pub(crate) async fn insert_visibility(conn: &mut AnyConnection, request_id: &str, group_ids: &[String]) -> Result<()> {
    for group_id in group_ids {
        sqlx::query("INSERT INTO request_approver_groups (request_id, group_id) VALUES ($1, $2)")
            .bind(request_id)
            .bind(group_id)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// R14: a policy that nobody but the saver could satisfy is refused, saying why.
pub(crate) async fn ensure_policy_satisfiable(
    tx: &mut WriteTx,
    actor: &Actor,
    policy: &AccessPolicy,
    now: Millis,
) -> Result<()> {
    let members = members_as_candidates(tx.conn(), &policy.approver_group_ids).await?;
    let mut seen = std::collections::HashSet::new();
    let members: Vec<_> = members
        .into_iter()
        .filter(|(c, _, _)| seen.insert(c.id.clone()))
        .map(|(c, record, _)| (c, record.username))
        .collect();
    let involved: Vec<&str> = members.iter().map(|(c, _)| c.id.as_str()).chain([actor.id.as_str()]).collect();
    let control = control_graph(tx.conn(), &involved, vec![], now).await?;
    ensure_satisfiable(
        &actor.id,
        &members,
        &control,
        &policy.approver_group_ids,
        policy.profile_type.resource_type(),
        policy.required_approvals,
    )?;
    Ok(())
}

/// A policy's approver groups must exist.
pub(crate) async fn ensure_groups_exist(tx: &mut WriteTx, group_ids: &[String]) -> Result<()> {
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
