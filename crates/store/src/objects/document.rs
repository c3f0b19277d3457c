//! Apps, scripts, compliance and configuration policies, device categories: a name, a
//! description, a free-form document and (except device categories) assigned groups, in the
//! `resources` table.

use super::{Current, Proposal};
use crate::rows::{int, json, text};
use crate::{Result, Row, WriteTx};
use countersign_core::gate::{gate as decide, Gate, Subject};
use countersign_core::policy::AccessPolicy;
use countersign_core::profile::{profile_type_for, Operation, ResourceType};
use countersign_core::state::{AssignableState, DeviceCategoryState, ObjectState};
use countersign_core::Millis;
use serde_json::{json, Value};

pub(super) fn state_of_row(resource_type: ResourceType, row: &Row) -> Result<ObjectState> {
    let (name, description, document) = (text(row, "name")?, text(row, "description")?, json(row, "document")?);
    Ok(if resource_type.is_assignable() {
        ObjectState::Assignable(AssignableState {
            name,
            description,
            document,
            assigned_group_ids: json(row, "assigned_group_ids")?,
        })
    } else {
        ObjectState::DeviceCategory(DeviceCategoryState { name, description, document })
    })
}

pub(super) async fn load(tx: &mut WriteTx, resource_type: ResourceType, id: &str) -> Result<Option<Current>> {
    let Some(row) = resource_row(tx, resource_type, id).await? else { return Ok(None) };
    Ok(Some(Current { state: state_of_row(resource_type, &row)?, version: int(&row, "version")? }))
}

/// A live row of the `resources` table (documents and devices), locked for the change.
pub(super) async fn resource_row(tx: &mut WriteTx, resource_type: ResourceType, id: &str) -> Result<Option<Row>> {
    let sql = format!(
        "SELECT name, description, document, assigned_group_ids, version FROM resources \
         WHERE id = $1 AND type = $2 AND deleted_at IS NULL{}",
        tx.for_update()
    );
    Ok(sqlx::query(&sql).bind(id).bind(resource_type.as_str()).fetch_optional(tx.conn()).await?)
}

pub(super) async fn gate(_tx: &mut WriteTx, proposal: &Proposal, policies: &[AccessPolicy]) -> Result<Gate> {
    let profile_type = profile_type_for(proposal.resource_type, proposal.operation);
    Ok(decide(Subject::Protectable(profile_type), policies))
}

pub(super) async fn apply(tx: &mut WriteTx, proposal: &Proposal, now: Millis) -> Result<()> {
    let columns = match &proposal.after {
        None => return delete_resource(tx, &proposal.object_id, now).await,
        Some(ObjectState::Assignable(after)) => ResourceColumns {
            name: &after.name,
            description: &after.description,
            document: Value::Object(after.document.clone()),
            assigned_group_ids: json!(after.assigned_group_ids),
        },
        Some(ObjectState::DeviceCategory(after)) => ResourceColumns {
            name: &after.name,
            description: &after.description,
            document: Value::Object(after.document.clone()),
            assigned_group_ids: json!([]),
        },
        Some(_) => return Err(proposal.malformed()),
    };
    write_resource(tx, proposal, columns, now).await
}

/// What a document or device writes to its `resources` row.
pub(super) struct ResourceColumns<'a> {
    pub name: &'a str,
    pub description: &'a str,
    pub document: Value,
    pub assigned_group_ids: Value,
}

/// Deletes (softly) the `resources` row a document or device lives in.
pub(super) async fn delete_resource(tx: &mut WriteTx, id: &str, now: Millis) -> Result<()> {
    sqlx::query("UPDATE resources SET deleted_at = $1, updated_at = $1, version = version + 1 WHERE id = $2")
        .bind(now)
        .bind(id)
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// Creates or updates the `resources` row a document or device lives in.
pub(super) async fn write_resource(
    tx: &mut WriteTx,
    proposal: &Proposal,
    columns: ResourceColumns<'_>,
    now: Millis,
) -> Result<()> {
    let id = proposal.object_id.as_str();
    match proposal.operation {
        Operation::Create => {
            sqlx::query(
                "INSERT INTO resources (id, type, name, description, document, assigned_group_ids, version, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, 1, $7, $7)",
            )
            .bind(id)
            .bind(proposal.resource_type.as_str())
            .bind(columns.name)
            .bind(columns.description)
            .bind(columns.document.to_string())
            .bind(columns.assigned_group_ids.to_string())
            .bind(now)
            .execute(tx.conn())
            .await?;
        }
        _ => {
            sqlx::query(
                "UPDATE resources SET name = $1, description = $2, document = $3, assigned_group_ids = $4, \
                 version = version + 1, updated_at = $5 WHERE id = $6",
            )
            .bind(columns.name)
            .bind(columns.description)
            .bind(columns.document.to_string())
            .bind(columns.assigned_group_ids.to_string())
            .bind(now)
            .bind(id)
            .execute(tx.conn())
            .await?;
        }
    }
    Ok(())
}
