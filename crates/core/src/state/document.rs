//! Apps, scripts, compliance and configuration policies, device categories and devices.

use crate::profile::Operation;
use crate::DomainError;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// An app, script, compliance or configuration policy: a free-form document, deployed to the
/// groups it is assigned to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AssignableState {
    pub name: String,
    pub description: String,
    /// The settings themselves; always a JSON object.
    pub document: Map<String, Value>,
    #[serde(with = "super::set")]
    pub assigned_group_ids: Vec<String>,
}

/// A device category: tenant configuration, never assigned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeviceCategoryState {
    pub name: String,
    pub description: String,
    pub document: Map<String, Value>,
}

crate::named_enum! {
    /// Where a device is in its life: only an active device can be wiped or retired.
    pub enum DeviceLifecycle: "device state" {
        Active = "active",
        Wiped = "wiped",
        Retired = "retired",
    }
}

impl DeviceLifecycle {
    /// The state a device action leaves the device in; `None` once it is deleted. Deleting is
    /// allowed in any state; wiping and retiring only an active device.
    pub fn after(self, action: Operation) -> Result<Option<DeviceLifecycle>, DomainError> {
        match (self, action) {
            (_, Operation::Delete) => Ok(None),
            (DeviceLifecycle::Active, Operation::Wipe) => Ok(Some(DeviceLifecycle::Wiped)),
            (DeviceLifecycle::Active, Operation::Retire) => Ok(Some(DeviceLifecycle::Retired)),
            (state, Operation::Wipe | Operation::Retire) => Err(DomainError::InvalidDeviceState(state)),
            (_, other) => Err(DomainError::Validation(format!("{other} is not a device action"))),
        }
    }
}

/// An enrolled device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeviceState {
    pub name: String,
    pub os: String,
    pub owner: Option<String>,
    pub state: DeviceLifecycle,
    /// Only in a proposed wipe: whether the device keeps its enrolment data. Shown to approvers,
    /// never stored on the device.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_enrollment_data: Option<bool>,
}

#[cfg(test)]
mod lifecycle_tests {
    use super::*;

    #[test]
    fn only_an_active_device_is_wiped_or_retired_and_any_device_is_deleted() {
        use DeviceLifecycle::*;
        assert_eq!(Active.after(Operation::Wipe), Ok(Some(Wiped)));
        assert_eq!(Active.after(Operation::Retire), Ok(Some(Retired)));
        for state in DeviceLifecycle::ALL {
            assert_eq!(state.after(Operation::Delete), Ok(None), "{state}");
        }
        for state in [Wiped, Retired] {
            for action in [Operation::Wipe, Operation::Retire] {
                assert_eq!(state.after(action), Err(DomainError::InvalidDeviceState(state)), "{state} {action}");
            }
        }
        assert_eq!(
            Wiped.after(Operation::Retire).unwrap_err().to_string(),
            "the device is wiped; only an active device can be wiped or retired"
        );
        assert!(Active.after(Operation::Update).is_err(), "not a device action");
    }
}
