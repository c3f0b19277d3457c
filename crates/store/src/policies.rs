//! Access policies as stored: their rows, their state as approvers see it, and the reads.

use crate::rows::{int, json, text};
use crate::{Result, Row, Store, StoreError};
use countersign_core::policy::{format_duration, parse_duration, AccessPolicy, Completion};
use serde_json::{json, Value};
use sqlx::AnyConnection;

pub fn state_of_policy(policy: &AccessPolicy) -> Value {
    json!({
        "displayName": policy.display_name,
        "description": policy.description,
        "profileType": policy.profile_type,
        "approverGroupIds": policy.approver_group_ids,
        "requiredApprovals": policy.required_approvals,
        "completion": policy.completion,
        "requestTtl": format_duration(policy.request_ttl_ms),
    })
}

pub(crate) fn policy_from_state(id: &str, state: &Value) -> Result<AccessPolicy> {
    let bad = |what: &str| StoreError::Corrupt(format!("access policy state lacks {what}"));
    Ok(AccessPolicy {
        id: id.to_owned(),
        display_name: state["displayName"].as_str().ok_or_else(|| bad("displayName"))?.to_owned(),
        description: state["description"].as_str().unwrap_or_default().to_owned(),
        profile_type: state["profileType"]
            .as_str()
            .ok_or_else(|| bad("profileType"))?
            .parse()
            .map_err(StoreError::Corrupt)?,
        approver_group_ids: serde_json::from_value(state["approverGroupIds"].clone())
            .map_err(|_| bad("approverGroupIds"))?,
        required_approvals: state["requiredApprovals"].as_i64().ok_or_else(|| bad("requiredApprovals"))?,
        completion: Completion::parse(state["completion"].as_str().unwrap_or("requester"))?,
        request_ttl_ms: parse_duration(state["requestTtl"].as_str().ok_or_else(|| bad("requestTtl"))?)?,
    })
}

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
    })
}

pub(crate) const POLICY_COLUMNS: &str =
    "id, display_name, description, profile_type, approver_group_ids, required_approvals, completion, request_ttl_ms, version";

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
