//! Directory groups: a display name, a description and member accounts. A membership change is
//! protected when the group approves for a policy (R9), carries a role, or is an assignment
//! target of an object whose profile type is protected (R18).

use super::{Current, Proposal};
use crate::policies::all_policies;
use crate::rows::{int, json, parsed, text};
use crate::{Result, StoreError, WriteTx};
use countersign_core::gate::{gate as decide, Gate, Subject};
use countersign_core::policy::AccessPolicy;
use countersign_core::profile::{Operation, ProfileType, ResourceType};
use countersign_core::state::{GroupMember, GroupState, ObjectState};
use countersign_core::Millis;

pub(super) async fn load(tx: &mut WriteTx, id: &str) -> Result<Option<Current>> {
    let sql =
        format!("SELECT display_name, description, version FROM directory_groups WHERE id = $1{}", tx.for_update());
    let Some(row) = sqlx::query(&sql).bind(id).fetch_optional(tx.conn()).await? else { return Ok(None) };
    let members = sqlx::query(
        "SELECT a.id AS id, a.username AS username FROM group_members m \
         JOIN accounts a ON a.id = m.account_id WHERE m.group_id = $1 ORDER BY a.username",
    )
    .bind(id)
    .fetch_all(tx.conn())
    .await?;
    let members = members
        .iter()
        .map(|m| Ok(GroupMember { id: text(m, "id")?, username: text(m, "username")? }))
        .collect::<Result<Vec<_>>>()?;
    let state =
        GroupState { display_name: text(&row, "display_name")?, description: text(&row, "description")?, members };
    Ok(Some(Current { state: ObjectState::Group(state), version: int(&row, "version")? }))
}

pub(super) async fn gate(tx: &mut WriteTx, proposal: &Proposal, policies: &[AccessPolicy]) -> Result<Gate> {
    if proposal.operation == Operation::Create {
        return Ok(decide(Subject::Unprotected, policies));
    }
    let assignments = sqlx::query("SELECT group_ids FROM role_assignments").fetch_all(tx.conn()).await?;
    let mut is_role_member_group = false;
    for row in &assignments {
        let ids: Vec<String> = json(row, "group_ids")?;
        is_role_member_group |= ids.contains(&proposal.object_id);
    }
    let assigned_to = assigned_profile_types(tx, &proposal.object_id).await?;
    let subject =
        Subject::GroupMembership { group_id: &proposal.object_id, is_role_member_group, assigned_to: &assigned_to };
    Ok(decide(subject, policies))
}

/// R18: the profile types of the live objects assigned to group `id`, each once.
async fn assigned_profile_types(tx: &mut WriteTx, id: &str) -> Result<Vec<ProfileType>> {
    // The id as it appears in the stored JSON array, found with LIKE (its wildcards escaped)
    // as a pre-filter; the exact check reads the array.
    let quoted = serde_json::Value::from(id).to_string();
    let escaped = quoted.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
    let rows = sqlx::query(
        "SELECT type, assigned_group_ids FROM resources \
         WHERE deleted_at IS NULL AND assigned_group_ids LIKE $1 ESCAPE '\\'",
    )
    .bind(format!("%{escaped}%"))
    .fetch_all(tx.conn())
    .await?;
    let mut types = Vec::new();
    for row in &rows {
        let resource_type: ResourceType = parsed(row, "type")?;
        let profile_type = resource_type.profile_type();
        if resource_type.is_assignable()
            && !types.contains(&profile_type)
            && json::<Vec<String>>(row, "assigned_group_ids")?.iter().any(|g| g == id)
        {
            types.push(profile_type);
        }
    }
    Ok(types)
}

pub(super) async fn apply(tx: &mut WriteTx, proposal: &Proposal, now: Millis) -> Result<()> {
    let id = proposal.object_id.as_str();
    let after = match &proposal.after {
        None => return delete(tx, proposal).await,
        Some(ObjectState::Group(after)) => after,
        Some(_) => return Err(proposal.malformed()),
    };
    match proposal.operation {
        Operation::Create => {
            sqlx::query(
                "INSERT INTO directory_groups (id, display_name, description, version, created_at, updated_at) \
                 VALUES ($1, $2, $3, 1, $4, $4)",
            )
            .bind(id)
            .bind(&after.display_name)
            .bind(&after.description)
            .bind(now)
            .execute(tx.conn())
            .await?;
        }
        _ => {
            sqlx::query(
                "UPDATE directory_groups SET display_name = $1, description = $2, version = version + 1, updated_at = $3 WHERE id = $4",
            )
            .bind(&after.display_name)
            .bind(&after.description)
            .bind(now)
            .bind(id)
            .execute(tx.conn())
            .await?;
        }
    }
    sqlx::query("DELETE FROM group_members WHERE group_id = $1").bind(id).execute(tx.conn()).await?;
    for member in &after.members {
        let account_id = member.id.as_str();
        let exists = sqlx::query("SELECT id FROM accounts WHERE id = $1 AND deleted_at IS NULL")
            .bind(account_id)
            .fetch_optional(tx.conn())
            .await?;
        if exists.is_none() {
            return Err(StoreError::Conflict(format!("account {account_id} no longer exists")));
        }
        sqlx::query("INSERT INTO group_members (group_id, account_id) VALUES ($1, $2)")
            .bind(id)
            .bind(account_id)
            .execute(tx.conn())
            .await?;
    }
    Ok(())
}

/// A group still named by an access policy or a role assignment is kept.
async fn delete(tx: &mut WriteTx, proposal: &Proposal) -> Result<()> {
    let id = proposal.object_id.as_str();
    let policies = all_policies(tx.conn()).await?;
    if let Some(p) = policies.iter().find(|p| p.approver_group_ids.iter().any(|g| g == id)) {
        return Err(StoreError::Conflict(format!(
            "group '{}' is an approver group of access policy '{}'; remove it there first",
            proposal.object_name, p.display_name
        )));
    }
    let assignments = sqlx::query("SELECT display_name, group_ids FROM role_assignments").fetch_all(tx.conn()).await?;
    for row in &assignments {
        if json::<Vec<String>>(row, "group_ids")?.iter().any(|g| g == id) {
            return Err(StoreError::Conflict(format!(
                "group '{}' is a member group of role assignment '{}'; remove it there first",
                proposal.object_name,
                text(row, "display_name")?
            )));
        }
    }
    sqlx::query("DELETE FROM group_members WHERE group_id = $1").bind(id).execute(tx.conn()).await?;
    sqlx::query("DELETE FROM directory_groups WHERE id = $1").bind(id).execute(tx.conn()).await?;
    Ok(())
}
