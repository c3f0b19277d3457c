//! Roles and role assignments.

use serde::{Deserialize, Serialize};

/// A named set of permissions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RoleState {
    pub display_name: String,
    pub description: String,
    #[serde(with = "super::set")]
    pub permissions: Vec<String>,
    pub built_in: bool,
}

/// A role granted to the members of some groups.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RoleAssignmentState {
    pub display_name: String,
    pub role_id: String,
    #[serde(with = "super::set")]
    pub group_ids: Vec<String>,
}
