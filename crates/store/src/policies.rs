//! Access policies as stored: their rows, their state as approvers see it, and the reads.

use crate::rows::{int, json, text};
use crate::{Result, Row, Store, StoreError};
use countersign_core::policy::{AccessPolicy, Completion};
use sqlx::AnyConnection;

pub(crate) fn policy_row(row: &Row) -> Result<AccessPolicy> {
    Ok(AccessPolicy {
        id: text(row, "id")?,
        display_name: text(row, "display_name")?,
        description: text(row, "description")?,
        profile_type: text(row, "profile_type")?.parse().map_err(StoreError::Corrupt)?,
        approver_group_ids: json(row, "approver_group_ids")?,
        required_approvals: int(row, "required_approvals")?,
        completion: Completion::parse(&text(row, "completion")?)?,
        request_ttl_ms: int(row, "request_ttl_ms")?,
        protect_assigned_groups: int(row, "protect_assigned_groups")? != 0,
        step_up: text(row, "step_up")?.parse().map_err(StoreError::Corrupt)?,
    })
}

pub(crate) const POLICY_COLUMNS: &str = "id, display_name, description, profile_type, approver_group_ids, \
     required_approvals, completion, request_ttl_ms, protect_assigned_groups, step_up, version";

pub(crate) async fn all_policies(conn: &mut AnyConnection) -> Result<Vec<AccessPolicy>> {
    let rows = sqlx::query(&format!("SELECT {POLICY_COLUMNS} FROM access_policies ORDER BY display_name, id"))
        .fetch_all(&mut *conn)
        .await?;
    rows.iter().map(policy_row).collect()
}

/// The policy with this id, or `None`.
pub(crate) async fn policy_by_id(conn: &mut AnyConnection, id: &str) -> Result<Option<(AccessPolicy, i64)>> {
    let row = sqlx::query(&format!("SELECT {POLICY_COLUMNS} FROM access_policies WHERE id = $1"))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    row.map(|r| Ok((policy_row(&r)?, int(&r, "version")?))).transpose()
}

impl Store {
    pub async fn policies(&self) -> Result<Vec<AccessPolicy>> {
        let mut conn = self.pool().acquire().await?;
        all_policies(&mut conn).await
    }

    pub async fn policy(&self, id: &str) -> Result<Option<(AccessPolicy, i64)>> {
        let mut conn = self.pool().acquire().await?;
        policy_by_id(&mut conn, id).await
    }
}
