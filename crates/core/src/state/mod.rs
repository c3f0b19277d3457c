//! What each object *is*: the typed state of every resource type, exactly as approvers see it
//! (R12) and as the store keeps it.
//!
//! JSON appears only at the edges: [`ObjectState::from_json`] reads a stored or proposed state and
//! refuses any field a type does not have (`deny_unknown_fields`) or lacks, so a state cannot
//! silently lose or default a field on its way through; [`ObjectState::to_json`] gives the
//! shape the diff and the API show. Every state can say which groups, accounts and roles it
//! names ([`ObjectState::references`]): what a change depends on (R17) and what approvers need
//! to see by name.

mod directory;
mod document;
mod policy;
mod rbac;
mod set;

pub use directory::{
    AccountState, GroupMember, GroupState, PasskeyAction, PasskeyChange, PasswordChange, SessionsChange,
};
pub use document::{AssignableState, DeviceCategoryState, DeviceLifecycle, DeviceState};
pub use policy::{AccessPolicyState, ChannelKind, ChannelSecret, NotificationChannelState};
pub use rbac::{RoleAssignmentState, RoleState};

use crate::profile::ResourceType;
use crate::DomainError;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeSet;

/// The ids a state names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct References {
    pub groups: BTreeSet<String>,
    pub accounts: BTreeSet<String>,
    pub roles: BTreeSet<String>,
}

impl References {
    /// Everything `self` or `other` names: a change depends on what its before and after name.
    pub fn union(mut self, other: References) -> References {
        self.groups.extend(other.groups);
        self.accounts.extend(other.accounts);
        self.roles.extend(other.roles);
        self
    }
}

/// The state of one object of any type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum ObjectState {
    /// Apps, scripts, compliance and configuration policies.
    Assignable(AssignableState),
    DeviceCategory(DeviceCategoryState),
    Device(DeviceState),
    Role(RoleState),
    RoleAssignment(RoleAssignmentState),
    Group(GroupState),
    Account(AccountState),
    AccessPolicy(AccessPolicyState),
    NotificationChannel(NotificationChannelState),
}

impl ObjectState {
    /// Reads the state of an object of `resource_type`, refusing unknown and missing fields.
    pub fn from_json(resource_type: ResourceType, value: Value) -> Result<ObjectState, DomainError> {
        fn read<T: serde::de::DeserializeOwned>(resource_type: ResourceType, value: Value) -> Result<T, DomainError> {
            serde_json::from_value(value)
                .map_err(|e| DomainError::Validation(format!("not the state of a {resource_type}: {e}")))
        }
        use ResourceType as T;
        Ok(match resource_type {
            T::App | T::Script | T::CompliancePolicy | T::ConfigurationPolicy => {
                ObjectState::Assignable(read(resource_type, value)?)
            }
            T::DeviceCategory => ObjectState::DeviceCategory(read(resource_type, value)?),
            T::Device => ObjectState::Device(read(resource_type, value)?),
            T::Role => ObjectState::Role(read(resource_type, value)?),
            T::RoleAssignment => ObjectState::RoleAssignment(read(resource_type, value)?),
            T::Group => ObjectState::Group(read(resource_type, value)?),
            T::Account => ObjectState::Account(read(resource_type, value)?),
            T::AccessPolicy => ObjectState::AccessPolicy(read(resource_type, value)?),
            T::NotificationChannel => ObjectState::NotificationChannel(read(resource_type, value)?),
        })
    }

    /// The state as JSON, in the shape the diff and the API show.
    pub fn to_json(&self) -> Value {
        // Serialising these plain structs cannot fail: their keys are strings and they hold no
        // maps with non-string keys.
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// Whether this is the state of an object of `resource_type`.
    pub fn is_of(&self, resource_type: ResourceType) -> bool {
        use ResourceType as T;
        matches!(
            (self, resource_type),
            (ObjectState::Assignable(_), T::App | T::Script | T::CompliancePolicy | T::ConfigurationPolicy)
                | (ObjectState::DeviceCategory(_), T::DeviceCategory)
                | (ObjectState::Device(_), T::Device)
                | (ObjectState::Role(_), T::Role)
                | (ObjectState::RoleAssignment(_), T::RoleAssignment)
                | (ObjectState::Group(_), T::Group)
                | (ObjectState::Account(_), T::Account)
                | (ObjectState::AccessPolicy(_), T::AccessPolicy)
                | (ObjectState::NotificationChannel(_), T::NotificationChannel)
        )
    }

    /// What people call the object: its name, display name or (for accounts) username.
    pub fn name(&self) -> &str {
        match self {
            ObjectState::Assignable(s) => &s.name,
            ObjectState::DeviceCategory(s) => &s.name,
            ObjectState::Device(s) => &s.name,
            ObjectState::Role(s) => &s.display_name,
            ObjectState::RoleAssignment(s) => &s.display_name,
            ObjectState::Group(s) => &s.display_name,
            ObjectState::Account(s) => &s.username,
            ObjectState::AccessPolicy(s) => &s.display_name,
            ObjectState::NotificationChannel(s) => &s.display_name,
        }
    }

    /// The groups, accounts and roles this state names.
    pub fn references(&self) -> References {
        let mut refs = References::default();
        match self {
            ObjectState::Assignable(s) => refs.groups.extend(s.assigned_group_ids.iter().cloned()),
            ObjectState::RoleAssignment(s) => {
                refs.roles.insert(s.role_id.clone());
                refs.groups.extend(s.group_ids.iter().cloned());
            }
            ObjectState::Group(s) => refs.accounts.extend(s.members.iter().map(|m| m.id.clone())),
            ObjectState::AccessPolicy(s) => refs.groups.extend(s.approver_group_ids.iter().cloned()),
            ObjectState::DeviceCategory(_)
            | ObjectState::Device(_)
            | ObjectState::Role(_)
            | ObjectState::Account(_)
            | ObjectState::NotificationChannel(_) => {}
        }
        refs
    }
}

#[cfg(test)]
mod tests;
