//! Resource types, operations and the profile types that access policies protect (DESIGN §2).

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// What kind of object a change touches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ResourceType {
    App,
    Script,
    CompliancePolicy,
    ConfigurationPolicy,
    DeviceCategory,
    Device,
    Role,
    RoleAssignment,
    Group,
    Account,
    AccessPolicy,
    NotificationChannel,
}

impl ResourceType {
    pub const ALL: [ResourceType; 12] = [
        ResourceType::App,
        ResourceType::Script,
        ResourceType::CompliancePolicy,
        ResourceType::ConfigurationPolicy,
        ResourceType::DeviceCategory,
        ResourceType::Device,
        ResourceType::Role,
        ResourceType::RoleAssignment,
        ResourceType::Group,
        ResourceType::Account,
        ResourceType::AccessPolicy,
        ResourceType::NotificationChannel,
    ];

    /// The types served by the generic `/resources/{type}` endpoints.
    pub const DOCUMENT_TYPES: [ResourceType; 5] = [
        ResourceType::App,
        ResourceType::Script,
        ResourceType::CompliancePolicy,
        ResourceType::ConfigurationPolicy,
        ResourceType::DeviceCategory,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ResourceType::App => "app",
            ResourceType::Script => "script",
            ResourceType::CompliancePolicy => "compliancePolicy",
            ResourceType::ConfigurationPolicy => "configurationPolicy",
            ResourceType::DeviceCategory => "deviceCategory",
            ResourceType::Device => "device",
            ResourceType::Role => "role",
            ResourceType::RoleAssignment => "roleAssignment",
            ResourceType::Group => "group",
            ResourceType::Account => "account",
            ResourceType::AccessPolicy => "accessPolicy",
            ResourceType::NotificationChannel => "notificationChannel",
        }
    }

    pub fn is_document_type(self) -> bool {
        Self::DOCUMENT_TYPES.contains(&self)
    }

    /// Document types can be assigned to groups.
    pub fn is_assignable(self) -> bool {
        self.is_document_type() && self != ResourceType::DeviceCategory
    }

    /// The profile type protecting ordinary changes (create, update, delete, assign) to this
    /// type. Devices have one profile type per action; see [`profile_type_for`].
    pub fn profile_type(self) -> ProfileType {
        match self {
            ResourceType::App => ProfileType::App,
            ResourceType::Script => ProfileType::Script,
            ResourceType::CompliancePolicy => ProfileType::CompliancePolicy,
            ResourceType::ConfigurationPolicy => ProfileType::ConfigurationPolicy,
            ResourceType::DeviceCategory | ResourceType::NotificationChannel => ProfileType::TenantConfiguration,
            ResourceType::Device => ProfileType::DeviceDelete,
            ResourceType::Role | ResourceType::RoleAssignment => ProfileType::Role,
            ResourceType::Group | ResourceType::Account | ResourceType::AccessPolicy => {
                ProfileType::OperationApprovalPolicy
            }
        }
    }
}

impl fmt::Display for ResourceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ResourceType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL.into_iter().find(|t| t.as_str() == s).ok_or_else(|| format!("unknown resource type '{s}'"))
    }
}

/// What a change does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Operation {
    Create,
    Update,
    Delete,
    Assign,
    Wipe,
    Retire,
}

impl Operation {
    pub const ALL: [Operation; 6] = [
        Operation::Create,
        Operation::Update,
        Operation::Delete,
        Operation::Assign,
        Operation::Wipe,
        Operation::Retire,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "create",
            Operation::Update => "update",
            Operation::Delete => "delete",
            Operation::Assign => "assign",
            Operation::Wipe => "wipe",
            Operation::Retire => "retire",
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Operation {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL.into_iter().find(|o| o.as_str() == s).ok_or_else(|| format!("unknown operation '{s}'"))
    }
}

/// What an access policy protects; names follow Graph's `operationApprovalPolicyType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ProfileType {
    App,
    Script,
    CompliancePolicy,
    ConfigurationPolicy,
    DeviceWipe,
    DeviceRetire,
    DeviceDelete,
    Role,
    OperationApprovalPolicy,
    TenantConfiguration,
}

impl ProfileType {
    pub const ALL: [ProfileType; 10] = [
        ProfileType::App,
        ProfileType::Script,
        ProfileType::CompliancePolicy,
        ProfileType::ConfigurationPolicy,
        ProfileType::DeviceWipe,
        ProfileType::DeviceRetire,
        ProfileType::DeviceDelete,
        ProfileType::Role,
        ProfileType::OperationApprovalPolicy,
        ProfileType::TenantConfiguration,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ProfileType::App => "app",
            ProfileType::Script => "script",
            ProfileType::CompliancePolicy => "compliancePolicy",
            ProfileType::ConfigurationPolicy => "configurationPolicy",
            ProfileType::DeviceWipe => "deviceWipe",
            ProfileType::DeviceRetire => "deviceRetire",
            ProfileType::DeviceDelete => "deviceDelete",
            ProfileType::Role => "role",
            ProfileType::OperationApprovalPolicy => "operationApprovalPolicy",
            ProfileType::TenantConfiguration => "tenantConfiguration",
        }
    }

    /// The resource type an approver must be able to read to decide requests under this
    /// profile type (R2); for `role` and `operationApprovalPolicy` the principal one.
    pub fn resource_type(self) -> ResourceType {
        match self {
            ProfileType::App => ResourceType::App,
            ProfileType::Script => ResourceType::Script,
            ProfileType::CompliancePolicy => ResourceType::CompliancePolicy,
            ProfileType::ConfigurationPolicy => ResourceType::ConfigurationPolicy,
            ProfileType::DeviceWipe | ProfileType::DeviceRetire | ProfileType::DeviceDelete => ResourceType::Device,
            ProfileType::Role => ResourceType::Role,
            ProfileType::OperationApprovalPolicy => ResourceType::AccessPolicy,
            ProfileType::TenantConfiguration => ResourceType::DeviceCategory,
        }
    }

    pub fn display_name(self) -> &'static str {
        match self {
            ProfileType::App => "Apps",
            ProfileType::Script => "Scripts",
            ProfileType::CompliancePolicy => "Compliance policies",
            ProfileType::ConfigurationPolicy => "Configuration policies",
            ProfileType::DeviceWipe => "Device wipe",
            ProfileType::DeviceRetire => "Device retire",
            ProfileType::DeviceDelete => "Device delete",
            ProfileType::Role => "Role-based access control",
            ProfileType::OperationApprovalPolicy => "Access policies",
            ProfileType::TenantConfiguration => "Tenant configuration",
        }
    }
}

impl fmt::Display for ProfileType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ProfileType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL.into_iter().find(|p| p.as_str() == s).ok_or_else(|| format!("unknown profile type '{s}'"))
    }
}

/// The profile type that decides whether `operation` on a `resource_type` is protected.
pub fn profile_type_for(resource_type: ResourceType, operation: Operation) -> ProfileType {
    match (resource_type, operation) {
        (ResourceType::Device, Operation::Wipe) => ProfileType::DeviceWipe,
        (ResourceType::Device, Operation::Retire) => ProfileType::DeviceRetire,
        (ResourceType::Device, _) => ProfileType::DeviceDelete,
        (other, _) => other.profile_type(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for t in ResourceType::ALL {
            assert_eq!(t.as_str().parse::<ResourceType>(), Ok(t));
        }
        for p in ProfileType::ALL {
            assert_eq!(p.as_str().parse::<ProfileType>(), Ok(p));
        }
        for o in Operation::ALL {
            assert_eq!(o.as_str().parse::<Operation>(), Ok(o));
        }
        assert!("widget".parse::<ResourceType>().is_err());
    }

    #[test]
    fn each_device_action_has_its_own_profile_type() {
        assert_eq!(profile_type_for(ResourceType::Device, Operation::Wipe), ProfileType::DeviceWipe);
        assert_eq!(profile_type_for(ResourceType::Device, Operation::Retire), ProfileType::DeviceRetire);
        assert_eq!(profile_type_for(ResourceType::Device, Operation::Delete), ProfileType::DeviceDelete);
    }

    #[test]
    fn device_categories_are_tenant_configuration_and_rbac_is_role() {
        assert_eq!(profile_type_for(ResourceType::DeviceCategory, Operation::Create), ProfileType::TenantConfiguration);
        assert_eq!(profile_type_for(ResourceType::RoleAssignment, Operation::Update), ProfileType::Role);
        assert_eq!(profile_type_for(ResourceType::App, Operation::Assign), ProfileType::App);
    }
}
