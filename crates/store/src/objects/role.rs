//! Custom roles: a display name, a description and permissions (R6's RBAC). Built-in roles
//! cannot be changed.

use super::{Current, Proposal};
use crate::rows::{int, json, text};
use crate::{Result, StoreError, WriteTx};
use countersign_core::gate::{gate as decide, Gate, Subject};
use countersign_core::policy::AccessPolicy;
use countersign_core::profile::Operation;
use countersign_core::state::{ObjectState, RoleState};
use countersign_core::Millis;
use serde_json::json;

pub(super) async fn load(tx: &mut WriteTx, id: &str) -> Result<Option<Current>> {
    let sql = format!(
        "SELECT display_name, description, permissions, built_in, version FROM roles WHERE id = $1{}",
        tx.for_update()
    );
    let Some(row) = sqlx::query(&sql).bind(id).fetch_optional(tx.conn()).await? else { return Ok(None) };
    let state = RoleState {
        display_name: text(&row, "display_name")?,
        description: text(&row, "description")?,
        permissions: json(&row, "permissions")?,
        built_in: int(&row, "built_in")? != 0,
    };
    Ok(Some(Current { state: ObjectState::Role(state), version: int(&row, "version")? }))
}

pub(super) async fn gate(_tx: &mut WriteTx, _proposal: &Proposal, policies: &[AccessPolicy]) -> Result<Gate> {
    Ok(decide(Subject::Rbac, policies))
}

pub(super) async fn apply(tx: &mut WriteTx, proposal: &Proposal, now: Millis) -> Result<()> {
    let id = proposal.object_id.as_str();
    let after = match &proposal.after {
        None => return delete(tx, proposal).await,
        Some(ObjectState::Role(after)) => after,
        Some(_) => return Err(proposal.malformed()),
    };
    match proposal.operation {
        Operation::Create => {
            sqlx::query(
                "INSERT INTO roles (id, display_name, description, permissions, built_in, version, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, 0, 1, $5, $5)",
            )
            .bind(id)
            .bind(&after.display_name)
            .bind(&after.description)
            .bind(json!(after.permissions).to_string())
            .bind(now)
            .execute(tx.conn())
            .await?;
        }
        _ => {
            sqlx::query(
                "UPDATE roles SET display_name = $1, description = $2, permissions = $3, version = version + 1, \
                 updated_at = $4 WHERE id = $5 AND built_in = 0",
            )
            .bind(&after.display_name)
            .bind(&after.description)
            .bind(json!(after.permissions).to_string())
            .bind(now)
            .bind(id)
            .execute(tx.conn())
            .await?;
        }
    }
    Ok(())
}

/// A role still assigned is kept; built-in roles are never deleted.
async fn delete(tx: &mut WriteTx, proposal: &Proposal) -> Result<()> {
    let id = proposal.object_id.as_str();
    let used = sqlx::query("SELECT id FROM role_assignments WHERE role_id = $1 LIMIT 1")
        .bind(id)
        .fetch_optional(tx.conn())
        .await?;
    if used.is_some() {
        return Err(StoreError::Conflict(format!(
            "role '{}' is still assigned; delete its role assignments first",
            proposal.object_name
        )));
    }
    sqlx::query("DELETE FROM roles WHERE id = $1 AND built_in = 0").bind(id).execute(tx.conn()).await?;
    Ok(())
}
