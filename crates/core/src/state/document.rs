//! Apps, scripts, compliance and configuration policies, device categories and devices.

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
