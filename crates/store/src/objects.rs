//! The objects a change can touch: reading each one's state as JSON (what approvers see, R12)
//! and applying a proposed state to it. One function each, for every resource type.

use crate::directory::{group_ids_of, ACCOUNT_COLUMNS};
use crate::rows::{int, json, opt_text, text};
use crate::{Result, Row, StoreError, WriteTx};
use countersign_core::gate::Subject;
use countersign_core::policy::{format_duration, parse_duration, AccessPolicy, Completion};
use countersign_core::profile::{profile_type_for, Operation, ProfileType, ResourceType};
use countersign_core::Millis;
use serde_json::{json, Value};
use sqlx::AnyConnection;

/// A change as proposed: the object's state and version as the proposer saw them, and the
/// state they want. The store re-reads the object under lock and refuses the proposal if the
/// version moved (optimistic concurrency), so `before` is exactly what approvers are shown.
#[derive(Debug, Clone)]
pub struct Proposal {
    pub resource_type: ResourceType,
    pub operation: Operation,
    pub object_id: String,
    pub object_name: String,
    pub before: Value,
    /// 0 for a create.
    pub before_version: i64,
    /// `Null` for a delete.
    pub after: Value,
    /// A new password hash, never shown to approvers; `after` says only that it changes.
    pub secret: Option<String>,
}

impl Proposal {
    /// A change to an existing object, named after it (its name, display name or username).
    pub fn change(
        resource_type: ResourceType,
        operation: Operation,
        object_id: String,
        before: Value,
        before_version: i64,
        after: Value,
    ) -> Proposal {
        let object_name = ["name", "displayName", "username"]
            .iter()
            .find_map(|key| before[key].as_str())
            .unwrap_or_default()
            .to_owned();
        Proposal { resource_type, operation, object_id, object_name, before, before_version, after, secret: None }
    }

    /// A new object of `resource_type` with a fresh time-ordered id.
    pub fn create(resource_type: ResourceType, name: &str, after: Value) -> Proposal {
        Proposal {
            resource_type,
            operation: Operation::Create,
            object_id: crate::new_id(),
            object_name: name.to_owned(),
            before: Value::Null,
            before_version: 0,
            after,
            secret: None,
        }
    }
}

/// What `Store::submit` did with a proposal.
#[derive(Debug)]
pub enum Submitted {
    /// Not protected: applied at once; the object's new state.
    Applied { state: Value, version: i64 },
    /// R1: held as an approval request.
    Held(Box<crate::RequestRecord>),
}

/// An object's current state as approvers see it.
#[derive(Debug, Clone)]
pub(crate) struct Current {
    pub state: Value,
    pub version: i64,
}

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

fn device_state(name: &str, document: &Value) -> Value {
    json!({
        "name": name,
        "os": document["os"],
        "owner": document["owner"],
        "state": document["state"],
    })
}

fn resource_state(resource_type: ResourceType, row: &Row) -> Result<Value> {
    let name = text(row, "name")?;
    let document: Value = json(row, "document")?;
    if resource_type == ResourceType::Device {
        return Ok(device_state(&name, &document));
    }
    let mut state = json!({
        "name": name,
        "description": text(row, "description")?,
        "document": document,
    });
    if resource_type.is_assignable() {
        state["assignedGroupIds"] = json(row, "assigned_group_ids")?;
    }
    Ok(state)
}

/// An app, script, policy, device category or device as listed.
#[derive(Debug, Clone)]
pub struct ResourceRecord {
    pub id: String,
    pub resource_type: ResourceType,
    pub state: Value,
    pub version: i64,
    pub created_at: Millis,
    pub updated_at: Millis,
}

impl crate::Store {
    /// Live resources of one type in id order, after `after_id`.
    pub async fn resources(
        &self,
        resource_type: ResourceType,
        after_id: Option<&str>,
        limit: i64,
    ) -> Result<Vec<ResourceRecord>> {
        let rows = sqlx::query(
            "SELECT id, name, description, document, assigned_group_ids, version, created_at, updated_at FROM resources \
             WHERE type = $1 AND deleted_at IS NULL AND id > $2 ORDER BY id LIMIT $3",
        )
        .bind(resource_type.as_str())
        .bind(after_id.unwrap_or(""))
        .bind(limit.clamp(1, 500))
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(ResourceRecord {
                    id: text(row, "id")?,
                    resource_type,
                    state: resource_state(resource_type, row)?,
                    version: int(row, "version")?,
                    created_at: int(row, "created_at")?,
                    updated_at: int(row, "updated_at")?,
                })
            })
            .collect()
    }
}

/// A webhook URL as people may see it: scheme and host only, since the path is often the secret.
pub fn redact_webhook_url(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let host = rest.split(['/', '?']).next().unwrap_or_default();
            let host = host.rsplit('@').next().unwrap_or_default();
            format!("{scheme}://{host}/…")
        }
        None => "…".to_owned(),
    }
}

/// The current state of an object, or `None` if it does not exist.
pub(crate) async fn load(tx: &mut WriteTx, resource_type: ResourceType, id: &str) -> Result<Option<Current>> {
    let lock = tx.for_update();
    let conn = tx.conn();
    let current = match resource_type {
        t if t.is_document_type() || t == ResourceType::Device => {
            let row = sqlx::query(&format!(
                "SELECT name, description, document, assigned_group_ids, version FROM resources \
                 WHERE id = $1 AND type = $2 AND deleted_at IS NULL{lock}"
            ))
            .bind(id)
            .bind(resource_type.as_str())
            .fetch_optional(&mut *conn)
            .await?;
            match row {
                None => None,
                Some(row) => {
                    Some(Current { state: resource_state(resource_type, &row)?, version: int(&row, "version")? })
                }
            }
        }
        ResourceType::Role => {
            let row = sqlx::query(&format!(
                "SELECT display_name, description, permissions, built_in, version FROM roles WHERE id = $1{lock}"
            ))
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?;
            match row {
                None => None,
                Some(row) => Some(Current {
                    state: json!({
                        "displayName": text(&row, "display_name")?,
                        "description": text(&row, "description")?,
                        "permissions": json::<Value>(&row, "permissions")?,
                        "builtIn": int(&row, "built_in")? != 0,
                    }),
                    version: int(&row, "version")?,
                }),
            }
        }
        ResourceType::RoleAssignment => {
            let row = sqlx::query(&format!(
                "SELECT display_name, role_id, group_ids, version FROM role_assignments WHERE id = $1{lock}"
            ))
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?;
            match row {
                None => None,
                Some(row) => Some(Current {
                    state: json!({
                        "displayName": text(&row, "display_name")?,
                        "roleId": text(&row, "role_id")?,
                        "groupIds": json::<Value>(&row, "group_ids")?,
                    }),
                    version: int(&row, "version")?,
                }),
            }
        }
        ResourceType::Group => {
            let row = sqlx::query(&format!(
                "SELECT display_name, description, version FROM directory_groups WHERE id = $1{lock}"
            ))
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?;
            match row {
                None => None,
                Some(row) => {
                    let members = sqlx::query(
                        "SELECT a.id AS id, a.username AS username FROM group_members m \
                         JOIN accounts a ON a.id = m.account_id WHERE m.group_id = $1 ORDER BY a.username",
                    )
                    .bind(id)
                    .fetch_all(&mut *conn)
                    .await?;
                    let members = members
                        .iter()
                        .map(|m| Ok(json!({"id": text(m, "id")?, "username": text(m, "username")?})))
                        .collect::<Result<Vec<Value>>>()?;
                    Some(Current {
                        state: json!({
                            "displayName": text(&row, "display_name")?,
                            "description": text(&row, "description")?,
                            "members": members,
                        }),
                        version: int(&row, "version")?,
                    })
                }
            }
        }
        ResourceType::Account => {
            let row = sqlx::query(&format!(
                "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = $1 AND deleted_at IS NULL{lock}"
            ))
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?;
            match row {
                None => None,
                Some(row) => Some(Current {
                    state: json!({
                        "username": text(&row, "username")?,
                        "displayName": text(&row, "display_name")?,
                        "email": opt_text(&row, "email")?,
                        "kind": text(&row, "kind")?,
                        "enabled": int(&row, "enabled")? != 0,
                    }),
                    version: int(&row, "version")?,
                }),
            }
        }
        ResourceType::AccessPolicy => {
            let row = sqlx::query(&format!("SELECT {POLICY_COLUMNS} FROM access_policies WHERE id = $1{lock}"))
                .bind(id)
                .fetch_optional(&mut *conn)
                .await?;
            match row {
                None => None,
                Some(row) => {
                    Some(Current { state: state_of_policy(&policy_row(&row)?), version: int(&row, "version")? })
                }
            }
        }
        ResourceType::NotificationChannel => {
            let row = sqlx::query(&format!(
                "SELECT kind, display_name, enabled, secret, version FROM notification_channels WHERE id = $1{lock}"
            ))
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?;
            match row {
                None => None,
                Some(row) => {
                    let secret: Value = json(&row, "secret")?;
                    Some(Current {
                        state: json!({
                            "displayName": text(&row, "display_name")?,
                            "kind": text(&row, "kind")?,
                            "enabled": int(&row, "enabled")? != 0,
                            "target": secret["url"].as_str().map(redact_webhook_url),
                            "signed": secret["signingSecret"].as_str().is_some_and(|s| !s.is_empty()),
                        }),
                        version: int(&row, "version")?,
                    })
                }
            }
        }
        // Document types and devices are all handled by the first arm.
        _ => None,
    };
    Ok(current)
}

/// Decides which rule-relevant facts apply to a proposal, for the gate.
pub(crate) async fn gate_decision(
    tx: &mut WriteTx,
    proposal: &Proposal,
    policies: &[AccessPolicy],
) -> Result<countersign_core::gate::Gate> {
    use countersign_core::gate::gate;
    let conn = tx.conn();
    let op = proposal.operation;
    let decision = match proposal.resource_type {
        ResourceType::Device if op == Operation::Create => gate(Subject::Unprotected, policies),
        t if t.is_document_type() || t == ResourceType::Device => {
            gate(Subject::Protectable(profile_type_for(t, op)), policies)
        }
        ResourceType::Role | ResourceType::RoleAssignment => gate(Subject::Rbac, policies),
        ResourceType::NotificationChannel => gate(Subject::Protectable(ProfileType::TenantConfiguration), policies),
        ResourceType::Group if op == Operation::Create => gate(Subject::Unprotected, policies),
        ResourceType::Group => {
            let assignments = sqlx::query("SELECT group_ids FROM role_assignments").fetch_all(&mut *conn).await?;
            let mut is_role_member_group = false;
            for row in &assignments {
                let ids: Vec<String> = json(row, "group_ids")?;
                is_role_member_group |= ids.contains(&proposal.object_id);
            }
            gate(Subject::GroupMembership { group_id: &proposal.object_id, is_role_member_group }, policies)
        }
        ResourceType::Account if op == Operation::Create => gate(Subject::Unprotected, policies),
        ResourceType::Account => {
            let credentials_change = op == Operation::Delete
                || proposal.secret.is_some()
                || proposal.before.get("enabled") != proposal.after.get("enabled");
            if credentials_change {
                let group_ids = group_ids_of(conn, &proposal.object_id).await?;
                gate(Subject::AccountCredentials { account_group_ids: &group_ids }, policies)
            } else {
                gate(Subject::Unprotected, policies)
            }
        }
        ResourceType::AccessPolicy => {
            let existing = policies.iter().find(|p| p.id == proposal.object_id);
            let proposed = match op {
                Operation::Delete => None,
                _ => Some(policy_from_state(&proposal.object_id, &proposal.after)?),
            };
            gate(Subject::AccessPolicy { existing, proposed: proposed.as_ref() }, policies)
        }
        _ => gate(Subject::Protectable(ProfileType::OperationApprovalPolicy), policies),
    };
    Ok(decision)
}

fn str_field<'a>(state: &'a Value, field: &str) -> Result<&'a str> {
    state[field].as_str().ok_or_else(|| StoreError::Corrupt(format!("proposed state lacks '{field}'")))
}

fn json_text(value: &Value) -> String {
    value.to_string()
}

/// Applies `proposal` (already approved, or not protected) after checking the object's version
/// still matches (R12). `Err(StoreError::Stale | Conflict)` means nothing was changed.
pub(crate) async fn apply(tx: &mut WriteTx, proposal: &Proposal, now: Millis) -> Result<()> {
    let current = load(tx, proposal.resource_type, &proposal.object_id).await?;
    let found_version = current.as_ref().map(|c| c.version).unwrap_or(0);
    if found_version != proposal.before_version {
        return Err(StoreError::Stale(format!(
            "{} '{}' changed since the change was proposed (version {} then, {} now)",
            proposal.resource_type,
            proposal.object_name,
            proposal.before_version,
            if current.is_some() { found_version.to_string() } else { "deleted".to_owned() }
        )));
    }
    let conn = tx.conn();
    let id = proposal.object_id.as_str();
    let after = &proposal.after;
    let op = proposal.operation;
    match proposal.resource_type {
        t if t.is_document_type() || t == ResourceType::Device => {
            if op == Operation::Delete {
                sqlx::query(
                    "UPDATE resources SET deleted_at = $1, updated_at = $1, version = version + 1 WHERE id = $2",
                )
                .bind(now)
                .bind(id)
                .execute(&mut *conn)
                .await?;
                return Ok(());
            }
            let (description, document, assigned) = if t == ResourceType::Device {
                (String::new(), json!({"os": after["os"], "owner": after["owner"], "state": after["state"]}), json!([]))
            } else {
                (
                    after["description"].as_str().unwrap_or_default().to_owned(),
                    after["document"].clone(),
                    after.get("assignedGroupIds").cloned().unwrap_or_else(|| json!([])),
                )
            };
            if op == Operation::Create {
                sqlx::query(
                    "INSERT INTO resources (id, type, name, description, document, assigned_group_ids, version, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, 1, $7, $7)",
                )
                .bind(id)
                .bind(t.as_str())
                .bind(str_field(after, "name")?)
                .bind(description)
                .bind(json_text(&document))
                .bind(json_text(&assigned))
                .bind(now)
                .execute(&mut *conn)
                .await?;
            } else {
                sqlx::query(
                    "UPDATE resources SET name = $1, description = $2, document = $3, assigned_group_ids = $4, \
                     version = version + 1, updated_at = $5 WHERE id = $6",
                )
                .bind(str_field(after, "name")?)
                .bind(description)
                .bind(json_text(&document))
                .bind(json_text(&assigned))
                .bind(now)
                .bind(id)
                .execute(&mut *conn)
                .await?;
            }
        }
        ResourceType::Role => match op {
            Operation::Delete => {
                let used = sqlx::query("SELECT id FROM role_assignments WHERE role_id = $1 LIMIT 1")
                    .bind(id)
                    .fetch_optional(&mut *conn)
                    .await?;
                if used.is_some() {
                    return Err(StoreError::Conflict(format!(
                        "role '{}' is still assigned; delete its role assignments first",
                        proposal.object_name
                    )));
                }
                sqlx::query("DELETE FROM roles WHERE id = $1 AND built_in = 0").bind(id).execute(&mut *conn).await?;
            }
            Operation::Create => {
                sqlx::query(
                    "INSERT INTO roles (id, display_name, description, permissions, built_in, version, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, 0, 1, $5, $5)",
                )
                .bind(id)
                .bind(str_field(after, "displayName")?)
                .bind(after["description"].as_str().unwrap_or_default())
                .bind(json_text(&after["permissions"]))
                .bind(now)
                .execute(&mut *conn)
                .await?;
            }
            _ => {
                sqlx::query(
                    "UPDATE roles SET display_name = $1, description = $2, permissions = $3, version = version + 1, \
                     updated_at = $4 WHERE id = $5 AND built_in = 0",
                )
                .bind(str_field(after, "displayName")?)
                .bind(after["description"].as_str().unwrap_or_default())
                .bind(json_text(&after["permissions"]))
                .bind(now)
                .bind(id)
                .execute(&mut *conn)
                .await?;
            }
        },
        ResourceType::RoleAssignment => match op {
            Operation::Delete => {
                sqlx::query("DELETE FROM role_assignments WHERE id = $1").bind(id).execute(&mut *conn).await?;
            }
            Operation::Create => {
                sqlx::query(
                    "INSERT INTO role_assignments (id, display_name, role_id, group_ids, version, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, 1, $5, $5)",
                )
                .bind(id)
                .bind(str_field(after, "displayName")?)
                .bind(str_field(after, "roleId")?)
                .bind(json_text(&after["groupIds"]))
                .bind(now)
                .execute(&mut *conn)
                .await?;
            }
            _ => {
                sqlx::query(
                    "UPDATE role_assignments SET display_name = $1, role_id = $2, group_ids = $3, version = version + 1, \
                     updated_at = $4 WHERE id = $5",
                )
                .bind(str_field(after, "displayName")?)
                .bind(str_field(after, "roleId")?)
                .bind(json_text(&after["groupIds"]))
                .bind(now)
                .bind(id)
                .execute(&mut *conn)
                .await?;
            }
        },
        ResourceType::Group => {
            if op == Operation::Delete {
                let policies = all_policies(conn).await?;
                if let Some(p) = policies.iter().find(|p| p.approver_group_ids.iter().any(|g| g == id)) {
                    return Err(StoreError::Conflict(format!(
                        "group '{}' is an approver group of access policy '{}'; remove it there first",
                        proposal.object_name, p.display_name
                    )));
                }
                let assignments =
                    sqlx::query("SELECT display_name, group_ids FROM role_assignments").fetch_all(&mut *conn).await?;
                for row in &assignments {
                    if json::<Vec<String>>(row, "group_ids")?.iter().any(|g| g == id) {
                        return Err(StoreError::Conflict(format!(
                            "group '{}' is a member group of role assignment '{}'; remove it there first",
                            proposal.object_name,
                            text(row, "display_name")?
                        )));
                    }
                }
                sqlx::query("DELETE FROM group_members WHERE group_id = $1").bind(id).execute(&mut *conn).await?;
                sqlx::query("DELETE FROM directory_groups WHERE id = $1").bind(id).execute(&mut *conn).await?;
                return Ok(());
            }
            if op == Operation::Create {
                sqlx::query(
                    "INSERT INTO directory_groups (id, display_name, description, version, created_at, updated_at) \
                     VALUES ($1, $2, $3, 1, $4, $4)",
                )
                .bind(id)
                .bind(str_field(after, "displayName")?)
                .bind(after["description"].as_str().unwrap_or_default())
                .bind(now)
                .execute(&mut *conn)
                .await?;
            } else {
                sqlx::query(
                    "UPDATE directory_groups SET display_name = $1, description = $2, version = version + 1, updated_at = $3 WHERE id = $4",
                )
                .bind(str_field(after, "displayName")?)
                .bind(after["description"].as_str().unwrap_or_default())
                .bind(now)
                .bind(id)
                .execute(&mut *conn)
                .await?;
            }
            sqlx::query("DELETE FROM group_members WHERE group_id = $1").bind(id).execute(&mut *conn).await?;
            for member in after["members"].as_array().into_iter().flatten() {
                let account_id = member["id"].as_str().unwrap_or_default();
                let exists = sqlx::query("SELECT id FROM accounts WHERE id = $1 AND deleted_at IS NULL")
                    .bind(account_id)
                    .fetch_optional(&mut *conn)
                    .await?;
                if exists.is_none() {
                    return Err(StoreError::Conflict(format!("account {account_id} no longer exists")));
                }
                sqlx::query("INSERT INTO group_members (group_id, account_id) VALUES ($1, $2)")
                    .bind(id)
                    .bind(account_id)
                    .execute(&mut *conn)
                    .await?;
            }
        }
        ResourceType::Account => {
            if op == Operation::Delete {
                sqlx::query("UPDATE accounts SET deleted_at = $1, enabled = 0, version = version + 1, updated_at = $1 WHERE id = $2")
                    .bind(now)
                    .bind(id)
                    .execute(&mut *conn)
                    .await?;
                revoke_credentials(conn, id).await?;
                // Leaving its groups changes them: a pending membership change on one is now stale (R12).
                sqlx::query(
                    "UPDATE directory_groups SET version = version + 1, updated_at = $1 \
                     WHERE id IN (SELECT group_id FROM group_members WHERE account_id = $2)",
                )
                .bind(now)
                .bind(id)
                .execute(&mut *conn)
                .await?;
                sqlx::query("DELETE FROM group_members WHERE account_id = $1").bind(id).execute(&mut *conn).await?;
                return Ok(());
            }
            let enabled = after["enabled"].as_bool().unwrap_or(true);
            if op == Operation::Create {
                sqlx::query(
                    "INSERT INTO accounts (id, username, display_name, kind, email, password_hash, enabled, version, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, 1, $8, $8)",
                )
                .bind(id)
                .bind(str_field(after, "username")?)
                .bind(str_field(after, "displayName")?)
                .bind(str_field(after, "kind")?)
                .bind(after["email"].as_str())
                .bind(proposal.secret.as_deref())
                .bind(i64::from(enabled))
                .bind(now)
                .execute(&mut *conn)
                .await
                .map_err(|e| {
                    if crate::error::is_unique_violation(&e) {
                        StoreError::Conflict(format!("the username '{}' is taken", after["username"].as_str().unwrap_or_default()))
                    } else {
                        e.into()
                    }
                })?;
            } else {
                sqlx::query(
                    "UPDATE accounts SET display_name = $1, email = $2, enabled = $3, \
                     password_hash = COALESCE($4, password_hash), version = version + 1, updated_at = $5 WHERE id = $6",
                )
                .bind(str_field(after, "displayName")?)
                .bind(after["email"].as_str())
                .bind(i64::from(enabled))
                .bind(proposal.secret.as_deref())
                .bind(now)
                .bind(id)
                .execute(&mut *conn)
                .await?;
                if !enabled || proposal.secret.is_some() {
                    revoke_credentials(conn, id).await?;
                }
            }
        }
        ResourceType::AccessPolicy => {
            if op == Operation::Delete {
                sqlx::query("DELETE FROM access_policies WHERE id = $1").bind(id).execute(&mut *conn).await?;
                return Ok(());
            }
            let policy = policy_from_state(id, after)?;
            let groups = json_text(&json!(policy.approver_group_ids));
            if op == Operation::Create {
                sqlx::query(
                    "INSERT INTO access_policies (id, display_name, description, profile_type, approver_group_ids, \
                     required_approvals, completion, request_ttl_ms, version, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 1, $9, $9)",
                )
                .bind(id)
                .bind(&policy.display_name)
                .bind(&policy.description)
                .bind(policy.profile_type.as_str())
                .bind(&groups)
                .bind(policy.required_approvals)
                .bind(policy.completion.as_str())
                .bind(policy.request_ttl_ms)
                .bind(now)
                .execute(&mut *conn)
                .await
                .map_err(|e| {
                    if crate::error::is_unique_violation(&e) {
                        StoreError::Conflict(format!(
                            "an access policy for {} already exists",
                            policy.profile_type.display_name()
                        ))
                    } else {
                        e.into()
                    }
                })?;
            } else {
                sqlx::query(
                    "UPDATE access_policies SET display_name = $1, description = $2, approver_group_ids = $3, \
                     required_approvals = $4, completion = $5, request_ttl_ms = $6, version = version + 1, updated_at = $7 \
                     WHERE id = $8",
                )
                .bind(&policy.display_name)
                .bind(&policy.description)
                .bind(&groups)
                .bind(policy.required_approvals)
                .bind(policy.completion.as_str())
                .bind(policy.request_ttl_ms)
                .bind(now)
                .bind(id)
                .execute(&mut *conn)
                .await?;
                crate::requests::refresh_visibility(conn, id, &policy.approver_group_ids).await?;
            }
        }
        ResourceType::NotificationChannel => match op {
            Operation::Delete => {
                sqlx::query("DELETE FROM notification_channels WHERE id = $1").bind(id).execute(&mut *conn).await?;
                return Ok(());
            }
            Operation::Create => {
                sqlx::query(
                    "INSERT INTO notification_channels (id, kind, display_name, enabled, secret, version, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, 1, $6, $6)",
                )
                .bind(id)
                .bind(str_field(after, "kind")?)
                .bind(str_field(after, "displayName")?)
                .bind(i64::from(after["enabled"].as_bool().unwrap_or(true)))
                .bind(proposal.secret.as_deref().unwrap_or("{}"))
                .bind(now)
                .execute(&mut *conn)
                .await?;
            }
            _ => {
                sqlx::query(
                    "UPDATE notification_channels SET display_name = $1, enabled = $2, secret = COALESCE($3, secret), \
                     version = version + 1, updated_at = $4 WHERE id = $5",
                )
                .bind(str_field(after, "displayName")?)
                .bind(i64::from(after["enabled"].as_bool().unwrap_or(true)))
                .bind(proposal.secret.as_deref())
                .bind(now)
                .bind(id)
                .execute(&mut *conn)
                .await?;
            }
        },
        other => return Err(StoreError::Corrupt(format!("no way to apply a change to {other}"))),
    }
    Ok(())
}

/// Ends every session and API token of an account whose password or enabled state changed.
async fn revoke_credentials(conn: &mut AnyConnection, account_id: &str) -> Result<()> {
    sqlx::query("DELETE FROM sessions WHERE account_id = $1").bind(account_id).execute(&mut *conn).await?;
    sqlx::query("DELETE FROM api_tokens WHERE account_id = $1").bind(account_id).execute(&mut *conn).await?;
    Ok(())
}
