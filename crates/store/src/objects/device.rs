//! Devices: a name and the device's OS, owner and state, in the `resources` table. Enrolling
//! one is never protected; each later action has its own profile type.

use super::document::{delete_resource, resource_row, write_resource, ResourceColumns};
use super::{Current, Proposal};
use crate::rows::{int, json, text};
use crate::{Result, Row, WriteTx};
use countersign_core::gate::{gate as decide, Gate, Subject};
use countersign_core::policy::AccessPolicy;
use countersign_core::profile::{profile_type_for, Operation, ResourceType};
use countersign_core::state::{DeviceLifecycle, DeviceState, ObjectState};
use countersign_core::Millis;
use serde::{Deserialize, Serialize};
use serde_json::json;

/// What a device keeps in its row's `document` column.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeviceColumns {
    os: String,
    owner: Option<String>,
    state: DeviceLifecycle,
}

pub(super) fn state_of_row(row: &Row) -> Result<ObjectState> {
    let DeviceColumns { os, owner, state } = json(row, "document")?;
    Ok(ObjectState::Device(DeviceState { name: text(row, "name")?, os, owner, state, keep_enrollment_data: None }))
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
    let after = match &proposal.after {
        None => return delete_resource(tx, &proposal.object_id, now).await,
        Some(ObjectState::Device(after)) => after,
        Some(_) => return Err(proposal.malformed()),
    };
    let document = DeviceColumns { os: after.os.clone(), owner: after.owner.clone(), state: after.state };
    let columns = ResourceColumns {
        name: &after.name,
        description: "",
        document: json!(document),
        assigned_group_ids: json!([]),
    };
    write_resource(tx, proposal, columns, now).await
}
