//! Groups and accounts.

use crate::eligibility::AccountKind;
use serde::{Deserialize, Serialize};

/// A group member as approvers see it: the id, and the username that names it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GroupMember {
    pub id: String,
    pub username: String,
}

/// A security group: approver groups and role-assignment member groups are groups.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GroupState {
    pub display_name: String,
    pub description: String,
    /// Every member, always: a state without members is not an empty group by default.
    #[serde(with = "super::set")]
    pub members: Vec<GroupMember>,
}

crate::named_enum! {
    /// What a proposed account state says of its password: only that it changes, never the
    /// password or its hash.
    pub enum PasswordChange: "password change" {
        Changed = "changed",
    }
}

crate::named_enum! {
    /// What a proposed account state says of its sessions: that every one of them ends.
    pub enum SessionsChange: "sessions change" {
        Ended = "ended",
    }
}

crate::named_enum! {
    /// What happens to a passkey in a proposed account state (R9, issue 17).
    pub enum PasskeyAction: "passkey action" {
        Added = "added",
        Removed = "removed",
    }
}

/// What a proposed account state says of a passkey: added or removed, which one (its id) and
/// its name. Never the credential: what is registered travels beside the state, like a password
/// hash, and approvers see only that a passkey is added, named so.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PasskeyChange {
    pub action: PasskeyAction,
    pub id: String,
    pub name: String,
}

/// Someone, or some automation, that signs in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AccountState {
    pub username: String,
    pub display_name: String,
    pub email: Option<String>,
    pub kind: AccountKind,
    /// Always stated: a state without it is not an enabled account by default.
    pub enabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<PasswordChange>,
    /// R9: ending an approver's sessions is held like any other change to it, for an attacker
    /// could end them to keep the approver from reviewing while a change waits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sessions: Option<SessionsChange>,
    /// R9: registering or removing a passkey of an approver is held like a password change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passkey: Option<PasskeyChange>,
}
