//! Permissions (`<area>.<verb>`) and the built-in roles of DESIGN §4.
//!
//! A [`Permission`] is one of a fixed set, named by [`crate::named_enum!`] like every other enum
//! on the wire. Roles store permissions as strings: [`PermissionSet`] parses them where they are
//! read, and keeps aside any it does not know.

use crate::profile::{Operation, ResourceType};
use std::collections::BTreeSet;

crate::named_enum! {
    /// Every permission Countersign knows. Custom roles may hold only these.
    pub enum Permission: "permission" {
        AppsRead = "apps.read",
        AppsWrite = "apps.write",
        AppsAssign = "apps.assign",
        ScriptsRead = "scripts.read",
        ScriptsWrite = "scripts.write",
        ScriptsAssign = "scripts.assign",
        CompliancePoliciesRead = "compliancePolicies.read",
        CompliancePoliciesWrite = "compliancePolicies.write",
        CompliancePoliciesAssign = "compliancePolicies.assign",
        ConfigurationPoliciesRead = "configurationPolicies.read",
        ConfigurationPoliciesWrite = "configurationPolicies.write",
        ConfigurationPoliciesAssign = "configurationPolicies.assign",
        DevicesRead = "devices.read",
        DevicesWipe = "devices.wipe",
        DevicesRetire = "devices.retire",
        DevicesDelete = "devices.delete",
        RolesRead = "roles.read",
        RolesWrite = "roles.write",
        GroupsRead = "groups.read",
        GroupsWrite = "groups.write",
        AccountsRead = "accounts.read",
        AccountsWrite = "accounts.write",
        AccessPoliciesCreate = "accessPolicies.create",
        AccessPoliciesRead = "accessPolicies.read",
        AccessPoliciesUpdate = "accessPolicies.update",
        AccessPoliciesDelete = "accessPolicies.delete",
        /// "Approval for Multi Admin Approval": without it nobody approves anything (R2).
        MaaApprove = "maa.approve",
        TenantConfigurationRead = "tenantConfiguration.read",
        TenantConfigurationWrite = "tenantConfiguration.write",
        AuditRead = "audit.read",
    }
}

impl Permission {
    /// Whether this permission only reads.
    pub fn is_read(self) -> bool {
        self.as_str().ends_with(".read")
    }

    /// Whether this permission is in the area named by `prefix` (such as `devices.`).
    fn is_in(self, prefix: &str) -> bool {
        self.as_str().starts_with(prefix)
    }
}

/// "Approval for Multi Admin Approval": without it nobody approves anything (R2).
pub const MAA_APPROVE: Permission = Permission::MaaApprove;

/// A built-in role: fixed id, name and permissions; listed by `GET /roles` with `builtIn: true`.
pub struct BuiltInRole {
    pub id: &'static str,
    pub display_name: &'static str,
    pub description: &'static str,
    pub permissions: fn() -> Vec<Permission>,
}

fn in_areas(prefixes: &[&str]) -> Vec<Permission> {
    Permission::ALL.into_iter().filter(|p| prefixes.iter().any(|x| p.is_in(x))).collect()
}

fn every_read() -> Vec<Permission> {
    Permission::ALL.into_iter().filter(|p| p.is_read()).collect()
}

pub const BUILT_IN_ROLES: &[BuiltInRole] = &[
    BuiltInRole {
        id: "00000000-0000-7000-8000-000000000001",
        display_name: "Administrator",
        description: "Every permission.",
        permissions: || Permission::ALL.to_vec(),
    },
    BuiltInRole {
        id: "00000000-0000-7000-8000-000000000002",
        display_name: "Read Only Operator",
        description: "Reads everything, including the audit log; changes nothing.",
        permissions: || {
            let mut p = every_read();
            p.push(Permission::AuditRead);
            p
        },
    },
    BuiltInRole {
        id: "00000000-0000-7000-8000-000000000003",
        display_name: "Help Desk Operator",
        description: "Device actions; reads apps and scripts.",
        permissions: || {
            let mut p = in_areas(&["devices."]);
            p.extend([Permission::AppsRead, Permission::ScriptsRead]);
            p
        },
    },
    BuiltInRole {
        id: "00000000-0000-7000-8000-000000000004",
        display_name: "Application Manager",
        description: "Manages apps.",
        permissions: || in_areas(&["apps."]),
    },
    BuiltInRole {
        id: "00000000-0000-7000-8000-000000000005",
        display_name: "Policy and Profile Manager",
        description: "Manages compliance and configuration policies and scripts.",
        permissions: || in_areas(&["compliancePolicies.", "configurationPolicies.", "scripts."]),
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
///
/// Roles store permissions as strings. One this version does not know (a role written by a
/// newer version, or a permission since removed) grants nothing and is kept aside in
/// [`PermissionSet::unknown`], for the caller to warn about.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PermissionSet {
    known: BTreeSet<Permission>,
    unknown: BTreeSet<String>,
}

impl PermissionSet {
    /// The set named by stored permission strings.
    pub fn new<I, S>(stored: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut set = PermissionSet::default();
        set.extend(stored);
        set
    }

    /// Adds stored permission strings.
    pub fn extend<I, S>(&mut self, stored: I)
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        for raw in stored {
            let raw = raw.as_ref();
            match raw.parse::<Permission>() {
                Ok(permission) => {
                    self.known.insert(permission);
                }
                Err(_) => {
                    self.unknown.insert(raw.to_owned());
                }
            }
        }
    }

    pub fn has(&self, permission: Permission) -> bool {
        self.known.contains(&permission)
    }

    /// `Ok` when the set holds `permission`.
    pub fn require(&self, permission: Permission) -> Result<(), MissingPermission> {
        if self.has(permission) {
            Ok(())
        } else {
            Err(MissingPermission::Permission(permission))
        }
    }

    /// The permissions held, in the order of their names (as `GET /me` has always listed them).
    pub fn iter(&self) -> impl Iterator<Item = Permission> {
        let mut held: Vec<Permission> = self.known.iter().copied().collect();
        held.sort_by_key(|p| p.as_str());
        held.into_iter()
    }

    /// Stored permission strings that named no known permission.
    pub fn unknown(&self) -> impl Iterator<Item = &str> {
        self.unknown.iter().map(String::as_str)
    }
}

impl FromIterator<Permission> for PermissionSet {
    fn from_iter<I: IntoIterator<Item = Permission>>(permissions: I) -> Self {
        PermissionSet { known: permissions.into_iter().collect(), unknown: BTreeSet::new() }
    }
}

/// What a caller lacked. Checked before MAA: a caller without it gets 403, not an approval
/// request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MissingPermission {
    #[error("this needs the permission {0}")]
    Permission(Permission),
    /// Enrolling a device has no permission of its own: any of [`DEVICE_MANAGEMENT`] will do.
    #[error(
        "enrolling a device needs a device-management permission (devices.wipe, devices.retire or devices.delete)"
    )]
    DeviceManagement,
}

/// The permissions that manage devices; enrolling one needs any of them.
pub const DEVICE_MANAGEMENT: [Permission; 3] =
    [Permission::DevicesWipe, Permission::DevicesRetire, Permission::DevicesDelete];

/// Whether `permissions` may propose `operation` on `resource_type`: the type's write
/// permission, except that enrolling a device needs any device-management permission.
pub fn may_propose(
    permissions: &PermissionSet,
    resource_type: ResourceType,
    operation: Operation,
) -> Result<(), MissingPermission> {
    if (resource_type, operation) == (ResourceType::Device, Operation::Create) {
        return if DEVICE_MANAGEMENT.iter().any(|p| permissions.has(*p)) {
            Ok(())
        } else {
            Err(MissingPermission::DeviceManagement)
        };
    }
    permissions.require(write_permission(resource_type, operation))
}

/// The permission that lets an account see objects of this type; approvers need it (R2).
pub fn read_permission(resource_type: ResourceType) -> Permission {
    use Permission::*;
    match resource_type {
        ResourceType::App => AppsRead,
        ResourceType::Script => ScriptsRead,
        ResourceType::CompliancePolicy => CompliancePoliciesRead,
        ResourceType::ConfigurationPolicy => ConfigurationPoliciesRead,
        ResourceType::DeviceCategory | ResourceType::NotificationChannel => TenantConfigurationRead,
        ResourceType::Device => DevicesRead,
        ResourceType::Role | ResourceType::RoleAssignment => RolesRead,
        ResourceType::Group => GroupsRead,
        ResourceType::Account => AccountsRead,
        ResourceType::AccessPolicy => AccessPoliciesRead,
    }
}

/// The permission needed to propose `operation` on `resource_type`. Checked before MAA: a
/// caller without it gets 403, not an approval request.
pub fn write_permission(resource_type: ResourceType, operation: Operation) -> Permission {
    use Operation::*;
    use Permission::*;
    use ResourceType::*;
    match (resource_type, operation) {
        (App, Assign) => AppsAssign,
        (App, _) => AppsWrite,
        (Script, Assign) => ScriptsAssign,
        (Script, _) => ScriptsWrite,
        (CompliancePolicy, Assign) => CompliancePoliciesAssign,
        (CompliancePolicy, _) => CompliancePoliciesWrite,
        (ConfigurationPolicy, Assign) => ConfigurationPoliciesAssign,
        (ConfigurationPolicy, _) => ConfigurationPoliciesWrite,
        (DeviceCategory | NotificationChannel, _) => TenantConfigurationWrite,
        (Device, Wipe) => DevicesWipe,
        (Device, Retire) => DevicesRetire,
        (Device, _) => DevicesDelete,
        (Role | RoleAssignment, _) => RolesWrite,
        (Group, _) => GroupsWrite,
        (Account, _) => AccountsWrite,
        (AccessPolicy, Create) => AccessPoliciesCreate,
        (AccessPolicy, Delete) => AccessPoliciesDelete,
        (AccessPolicy, _) => AccessPoliciesUpdate,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role(name: &str) -> Vec<Permission> {
        let r = BUILT_IN_ROLES.iter().find(|r| r.display_name == name).unwrap();
        (r.permissions)()
    }

    /// The string forms of DESIGN §4, as stored in every existing database.
    const DESIGN_NAMES: &[&str] = &[
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

    #[test]
    fn string_forms_are_those_of_design_and_serde_agrees() {
        let names = Permission::ALL.map(Permission::as_str);
        assert_eq!(names, DESIGN_NAMES);
        for p in Permission::ALL {
            assert_eq!(p.as_str().parse::<Permission>(), Ok(p));
            assert_eq!(serde_json::to_value(p).unwrap(), serde_json::json!(p.to_string()));
            assert_eq!(serde_json::from_value::<Permission>(serde_json::json!(p.as_str())).unwrap(), p);
        }
        assert!(serde_json::from_value::<Permission>(serde_json::json!("apps.fly")).is_err());
    }

    #[test]
    fn an_unknown_stored_permission_grants_nothing_and_is_kept_aside() {
        let set = PermissionSet::new(["apps.read", "apps.fly"]);
        assert!(set.has(Permission::AppsRead));
        assert_eq!(set.iter().collect::<Vec<_>>(), [Permission::AppsRead]);
        assert_eq!(set.unknown().collect::<Vec<_>>(), ["apps.fly"]);
    }

    #[test]
    fn administrator_holds_everything_and_approver_can_approve_and_read() {
        assert_eq!(role("Administrator").len(), DESIGN_NAMES.len());
        let approver = role("Approver");
        assert!(approver.contains(&MAA_APPROVE));
        assert!(approver.contains(&Permission::AppsRead));
        assert!(!approver.contains(&Permission::AppsWrite));
    }

    #[test]
    fn read_only_operator_cannot_write_or_approve() {
        let ro = role("Read Only Operator");
        assert!(ro.iter().all(|p| p.is_read()));
        assert!(ro.contains(&Permission::AuditRead));
        assert!(!ro.contains(&MAA_APPROVE));
    }

    #[test]
    fn help_desk_gets_device_actions_only() {
        let hd = role("Help Desk Operator");
        assert!(hd.contains(&Permission::DevicesWipe));
        assert!(!hd.contains(&Permission::AppsWrite));
        assert!(hd.contains(&Permission::AppsRead));
    }

    #[test]
    fn proposing_needs_the_write_permission_and_enrolling_any_device_permission() {
        let help_desk: PermissionSet = [Permission::DevicesRetire, Permission::AppsRead].into_iter().collect();
        assert_eq!(may_propose(&help_desk, ResourceType::Device, Operation::Create), Ok(()));
        assert_eq!(may_propose(&help_desk, ResourceType::Device, Operation::Retire), Ok(()));
        assert_eq!(
            may_propose(&help_desk, ResourceType::Device, Operation::Wipe),
            Err(MissingPermission::Permission(Permission::DevicesWipe))
        );
        assert_eq!(
            may_propose(&help_desk, ResourceType::App, Operation::Create),
            Err(MissingPermission::Permission(Permission::AppsWrite))
        );
        let reader: PermissionSet = [Permission::DevicesRead].into_iter().collect();
        assert_eq!(
            may_propose(&reader, ResourceType::Device, Operation::Create),
            Err(MissingPermission::DeviceManagement)
        );
        for t in ResourceType::ALL {
            for o in Operation::ALL {
                let holder: PermissionSet = [write_permission(t, o)].into_iter().collect();
                assert_eq!(may_propose(&holder, t, o), Ok(()), "{t} {o}");
            }
        }
    }
}
