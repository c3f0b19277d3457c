//! Permissions (`<area>.<verb>`) and the built-in roles of DESIGN §4.

use crate::profile::{Operation, ResourceType};
use std::collections::BTreeSet;

/// Every permission Countersign knows. Custom roles may hold only these.
pub const ALL: &[&str] = &[
    "apps.read",
    "apps.write",
    "apps.assign",
    "scripts.read",
    "scripts.write",
    "scripts.assign",
    "compliancePolicies.read",
    "compliancePolicies.write",
    "compliancePolicies.assign",
    "configurationPolicies.read",
    "configurationPolicies.write",
    "configurationPolicies.assign",
    "devices.read",
    "devices.wipe",
    "devices.retire",
    "devices.delete",
    "roles.read",
    "roles.write",
    "groups.read",
    "groups.write",
    "accounts.read",
    "accounts.write",
    "accessPolicies.create",
    "accessPolicies.read",
    "accessPolicies.update",
    "accessPolicies.delete",
    "maa.approve",
    "tenantConfiguration.read",
    "tenantConfiguration.write",
    "audit.read",
];

/// "Approval for Multi Admin Approval": without it nobody approves anything (R2).
pub const MAA_APPROVE: &str = "maa.approve";

pub fn is_known(permission: &str) -> bool {
    ALL.contains(&permission)
}

/// A built-in role: fixed id, name and permissions; listed by `GET /roles` with `builtIn: true`.
pub struct BuiltInRole {
    pub id: &'static str,
    pub display_name: &'static str,
    pub description: &'static str,
    pub permissions: fn() -> Vec<&'static str>,
}

fn with_prefix(prefixes: &[&str]) -> Vec<&'static str> {
    ALL.iter().copied().filter(|p| prefixes.iter().any(|x| p.starts_with(x))).collect()
}

fn every_read() -> Vec<&'static str> {
    ALL.iter().copied().filter(|p| p.ends_with(".read")).collect()
}

pub const BUILT_IN_ROLES: &[BuiltInRole] = &[
    BuiltInRole {
        id: "00000000-0000-7000-8000-000000000001",
        display_name: "Administrator",
        description: "Every permission.",
        permissions: || ALL.to_vec(),
    },
    BuiltInRole {
        id: "00000000-0000-7000-8000-000000000002",
        display_name: "Read Only Operator",
        description: "Reads everything, including the audit log; changes nothing.",
        permissions: || {
            let mut p = every_read();
            p.push("audit.read");
            p
        },
    },
    BuiltInRole {
        id: "00000000-0000-7000-8000-000000000003",
        display_name: "Help Desk Operator",
        description: "Device actions; reads apps and scripts.",
        permissions: || {
            let mut p = with_prefix(&["devices."]);
            p.extend(["apps.read", "scripts.read"]);
            p
        },
    },
    BuiltInRole {
        id: "00000000-0000-7000-8000-000000000004",
        display_name: "Application Manager",
        description: "Manages apps.",
        permissions: || with_prefix(&["apps."]),
    },
    BuiltInRole {
        id: "00000000-0000-7000-8000-000000000005",
        display_name: "Policy and Profile Manager",
        description: "Manages compliance and configuration policies and scripts.",
        permissions: || with_prefix(&["compliancePolicies.", "configurationPolicies.", "scripts."]),
    },
    BuiltInRole {
        id: "00000000-0000-7000-8000-000000000006",
        display_name: "Approver",
        description: "Reads everything and approves Multi Admin Approval requests.",
        permissions: || {
            let mut p = every_read();
            p.push(MAA_APPROVE);
            p
        },
    },
];

pub fn built_in_role(id: &str) -> Option<&'static BuiltInRole> {
    BUILT_IN_ROLES.iter().find(|r| r.id == id)
}

/// The union of an account's permissions over its role assignments.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PermissionSet(BTreeSet<String>);

impl PermissionSet {
    pub fn new<I, S>(permissions: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        PermissionSet(permissions.into_iter().map(Into::into).collect())
    }

    pub fn has(&self, permission: &str) -> bool {
        self.0.contains(permission)
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    pub fn extend<I: IntoIterator<Item = String>>(&mut self, more: I) {
        self.0.extend(more);
    }
}

/// The permission that lets an account see objects of this type; approvers need it (R2).
pub fn read_permission(resource_type: ResourceType) -> &'static str {
    match resource_type {
        ResourceType::App => "apps.read",
        ResourceType::Script => "scripts.read",
        ResourceType::CompliancePolicy => "compliancePolicies.read",
        ResourceType::ConfigurationPolicy => "configurationPolicies.read",
        ResourceType::DeviceCategory | ResourceType::NotificationChannel => "tenantConfiguration.read",
        ResourceType::Device => "devices.read",
        ResourceType::Role | ResourceType::RoleAssignment => "roles.read",
        ResourceType::Group => "groups.read",
        ResourceType::Account => "accounts.read",
        ResourceType::AccessPolicy => "accessPolicies.read",
    }
}

/// The permission needed to propose `operation` on `resource_type`. Checked before MAA: a
/// caller without it gets 403, not an approval request.
pub fn write_permission(resource_type: ResourceType, operation: Operation) -> &'static str {
    use Operation::*;
    use ResourceType::*;
    match (resource_type, operation) {
        (App, Assign) => "apps.assign",
        (App, _) => "apps.write",
        (Script, Assign) => "scripts.assign",
        (Script, _) => "scripts.write",
        (CompliancePolicy, Assign) => "compliancePolicies.assign",
        (CompliancePolicy, _) => "compliancePolicies.write",
        (ConfigurationPolicy, Assign) => "configurationPolicies.assign",
        (ConfigurationPolicy, _) => "configurationPolicies.write",
        (DeviceCategory | NotificationChannel, _) => "tenantConfiguration.write",
        (Device, Wipe) => "devices.wipe",
        (Device, Retire) => "devices.retire",
        (Device, _) => "devices.delete",
        (Role | RoleAssignment, _) => "roles.write",
        (Group, _) => "groups.write",
        (Account, _) => "accounts.write",
        (AccessPolicy, Create) => "accessPolicies.create",
        (AccessPolicy, Delete) => "accessPolicies.delete",
        (AccessPolicy, _) => "accessPolicies.update",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role(name: &str) -> Vec<&'static str> {
        let r = BUILT_IN_ROLES.iter().find(|r| r.display_name == name).unwrap();
        (r.permissions)()
    }

    #[test]
    fn administrator_holds_everything_and_approver_can_approve_and_read() {
        assert_eq!(role("Administrator").len(), ALL.len());
        let approver = role("Approver");
        assert!(approver.contains(&MAA_APPROVE));
        assert!(approver.contains(&"apps.read"));
        assert!(!approver.contains(&"apps.write"));
    }

    #[test]
    fn read_only_operator_cannot_write_or_approve() {
        let ro = role("Read Only Operator");
        assert!(ro.iter().all(|p| p.ends_with(".read")));
        assert!(ro.contains(&"audit.read"));
        assert!(!ro.contains(&MAA_APPROVE));
    }

    #[test]
    fn help_desk_gets_device_actions_only() {
        let hd = role("Help Desk Operator");
        assert!(hd.contains(&"devices.wipe"));
        assert!(!hd.contains(&"apps.write"));
        assert!(hd.contains(&"apps.read"));
    }

    #[test]
    fn every_type_and_operation_maps_to_a_known_permission() {
        for t in ResourceType::ALL {
            assert!(is_known(read_permission(t)));
            for o in Operation::ALL {
                assert!(is_known(write_permission(t, o)), "{t} {o}");
            }
        }
    }
}
