//! Role assignments: a role given to the members of some groups.

use super::{Current, Proposal};
use crate::rows::{int, json, text};
use crate::{Result, WriteTx};
use countersign_core::gate::{gate as decide, Gate, Subject};
use countersign_core::policy::AccessPolicy;
use countersign_core::profile::Operation;
use countersign_core::state::{ObjectState, RoleAssignmentState};
use countersign_core::Millis;
use serde_json::json;

pub(super) async fn load(tx: &mut WriteTx, id: &str) -> Result<Option<Current>> {
    let sql = format!(
        "SELECT display_name, role_id, group_ids, version FROM role_assignments WHERE id = $1{}",
        tx.for_update()
    );
    let Some(row) = sqlx::query(&sql).bind(id).fetch_optional(tx.conn()).await? else { return Ok(None) };
    let state = RoleAssignmentState {
        display_name: text(&row, "display_name")?,
        role_id: text(&row, "role_id")?,
        group_ids: json(&row, "group_ids")?,
    };
    Ok(Some(Current { state: ObjectState::RoleAssignment(state), version: int(&row, "version")? }))
}

pub(super) async fn gate(_tx: &mut WriteTx, _proposal: &Proposal, policies: &[AccessPolicy]) -> Result<Gate> {
    Ok(decide(Subject::Rbac, policies))
}

pub(super) async fn apply(tx: &mut WriteTx, proposal: &Proposal, now: Millis) -> Result<()> {
    let id = proposal.object_id.as_str();
    let after = match &proposal.after {
        None => {
            sqlx::query("DELETE FROM role_assignments WHERE id = $1").bind(id).execute(tx.conn()).await?;
            return Ok(());
        }
        Some(ObjectState::RoleAssignment(after)) => after,
        Some(_) => return Err(proposal.malformed()),
    };
    match proposal.operation {
        Operation::Create => {
            sqlx::query(
                "INSERT INTO role_assignments (id, display_name, role_id, group_ids, version, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, 1, $5, $5)",
            )
            .bind(id)
            .bind(&after.display_name)
            .bind(&after.role_id)
            .bind(json!(after.group_ids).to_string())
            .bind(now)
            .execute(tx.conn())
            .await?;
        }
        _ => {
            sqlx::query(
                "UPDATE role_assignments SET display_name = $1, role_id = $2, group_ids = $3, version = version + 1, \
                 updated_at = $4 WHERE id = $5",
            )
            .bind(&after.display_name)
            .bind(&after.role_id)
            .bind(json!(after.group_ids).to_string())
            .bind(now)
            .bind(id)
            .execute(tx.conn())
            .await?;
        }
    }
    Ok(())
}
