//! Devices: a name and the device's OS, owner and state, in the `resources` table. Enrolling
//! one is never protected; each later action has its own profile type.

use super::document::{delete_resource, resource_row, write_resource, ResourceColumns};
use super::{str_field, Current, Proposal};
use crate::rows::{int, json, text};
use crate::{Result, Row, WriteTx};
use countersign_core::gate::{gate as decide, Gate, Subject};
use countersign_core::policy::AccessPolicy;
use countersign_core::profile::{profile_type_for, Operation, ResourceType};
use countersign_core::Millis;
use serde_json::{json, Value};

pub(super) fn state_of_row(row: &Row) -> Result<Value> {
    let document: Value = json(row, "document")?;
    Ok(json!({
        "name": text(row, "name")?,
        "os": document["os"],
        "owner": document["owner"],
        "state": document["state"],
    }))
}

pub(super) async fn load(tx: &mut WriteTx, id: &str) -> Result<Option<Current>> {
    let Some(row) = resource_row(tx, ResourceType::Device, id).await? else { return Ok(None) };
    Ok(Some(Current { state: state_of_row(&row)?, version: int(&row, "version")? }))
}

pub(super) async fn gate(_tx: &mut WriteTx, proposal: &Proposal, policies: &[AccessPolicy]) -> Result<Gate> {
    let subject = match proposal.operation {
        Operation::Create => Subject::Unprotected,
        op => Subject::Protectable(profile_type_for(ResourceType::Device, op)),
    };
    Ok(decide(subject, policies))
}

pub(super) async fn apply(tx: &mut WriteTx, proposal: &Proposal, now: Millis) -> Result<()> {
    if proposal.operation == Operation::Delete {
        return delete_resource(tx, &proposal.object_id, now).await;
    }
    let after = &proposal.after;
    let columns = ResourceColumns {
        name: str_field(after, "name")?,
        description: "",
        document: json!({"os": after["os"], "owner": after["owner"], "state": after["state"]}),
        assigned_group_ids: json!([]),
    };
    write_resource(tx, proposal, columns, now).await
}
