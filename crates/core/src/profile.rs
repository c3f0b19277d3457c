//! Resource types, operations and the profile types that access policies protect (DESIGN §2).

crate::named_enum! {
    /// What kind of object a change touches.
    pub enum ResourceType: "resource type" {
        App = "app",
        Script = "script",
        CompliancePolicy = "compliancePolicy",
        ConfigurationPolicy = "configurationPolicy",
        DeviceCategory = "deviceCategory",
        Device = "device",
        Role = "role",
        RoleAssignment = "roleAssignment",
        Group = "group",
        Account = "account",
        AccessPolicy = "accessPolicy",
        NotificationChannel = "notificationChannel",
    }
}

impl ResourceType {
    /// The types served by the generic `/resources/{type}` endpoints.
    pub const DOCUMENT_TYPES: [ResourceType; 5] = [
        ResourceType::App,
        ResourceType::Script,
        ResourceType::CompliancePolicy,
        ResourceType::ConfigurationPolicy,
        ResourceType::DeviceCategory,
    ];

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

crate::named_enum! {
    /// What a change does.
    pub enum Operation: "operation" {
        Create = "create",
        Update = "update",
        Delete = "delete",
        Assign = "assign",
        Wipe = "wipe",
        Retire = "retire",
    }
}

crate::named_enum! {
    /// What an access policy protects; names follow Graph's `operationApprovalPolicyType`.
    pub enum ProfileType: "profile type" {
        App = "app",
        Script = "script",
        CompliancePolicy = "compliancePolicy",
        ConfigurationPolicy = "configurationPolicy",
        DeviceWipe = "deviceWipe",
        DeviceRetire = "deviceRetire",
        DeviceDelete = "deviceDelete",
        Role = "role",
        OperationApprovalPolicy = "operationApprovalPolicy",
        TenantConfiguration = "tenantConfiguration",
    }
}

impl ProfileType {
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
