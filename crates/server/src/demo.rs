//! `serve --demo`: a demo tenant for walking the whole flow in a minute (DESIGN §5).
//! alice proposes; bob and carol approve; every profile type has an access policy.

use countersign_core::permission::BUILT_IN_ROLES;
use countersign_core::policy::{Completion, DEFAULT_REQUEST_TTL};
use countersign_core::profile::{ProfileType, ResourceType};
use countersign_core::Millis;
use countersign_store::{Proposal, Store, StoreError};
use serde_json::{json, Value};

pub const DEMO_PASSWORD: &str = "countersign-demo";

fn role_id(name: &str) -> &'static str {
    BUILT_IN_ROLES.iter().find(|r| r.display_name == name).map(|r| r.id).unwrap_or_default()
}

/// Seeds the demo tenant unless it is already there. Runs only before any access policy
/// exists (see `Store::seed`), so it can never be used to slip a change past the gate.
pub async fn seed(store: &Store, password_hash: &str, now: Millis) -> Result<bool, StoreError> {
    if store.account_by_username("alice").await?.is_some() {
        return Ok(false);
    }
    let mut plan = Vec::new();
    let account = |username: &str, display_name: &str| {
        let mut p = Proposal::create(
            ResourceType::Account,
            username,
            json!({"username": username, "displayName": display_name, "email": format!("{username}@example.test"), "kind": "human", "enabled": true}),
        );
        p.secret = Some(password_hash.to_owned());
        p
    };
    let alice = account("alice", "Alice Requester");
    let bob = account("bob", "Bob Approver");
    let carol = account("carol", "Carol Approver");
    let member = |p: &Proposal| json!({"id": p.object_id, "username": p.object_name});
    let operators = Proposal::create(
        ResourceType::Group,
        "IT Operators",
        json!({"displayName": "IT Operators", "description": "Administrators who propose changes.", "members": [member(&alice)]}),
    );
    let approvers = Proposal::create(
        ResourceType::Group,
        "MAA Approvers",
        json!({"displayName": "MAA Approvers", "description": "Second pair of eyes for every protected change.", "members": [member(&bob), member(&carol)]}),
    );
    let operators_role = Proposal::create(
        ResourceType::RoleAssignment,
        "IT Operators",
        json!({"displayName": "IT Operators", "roleId": role_id("Administrator"), "groupIds": [operators.object_id]}),
    );
    let approvers_role = Proposal::create(
        ResourceType::RoleAssignment,
        "MAA Approvers",
        json!({"displayName": "MAA Approvers", "roleId": role_id("Approver"), "groupIds": [approvers.object_id]}),
    );
    let approver_group = approvers.object_id.clone();
    plan.extend([alice, bob, carol, operators, approvers, operators_role, approvers_role]);

    let document = |t: ResourceType, name: &str, description: &str, doc: Value| {
        let mut after = json!({"name": name, "description": description, "document": doc});
        if t.is_assignable() {
            after["assignedGroupIds"] = json!([]);
        }
        Proposal::create(t, name, after)
    };
    plan.extend([
        document(
            ResourceType::App,
            "Contoso VPN",
            "Company VPN client",
            json!({"publisher": "Contoso", "version": "4.2.1", "installBehavior": "system"}),
        ),
        document(
            ResourceType::App,
            "Zoom Workplace",
            "Meetings",
            json!({"publisher": "Zoom", "version": "6.1.0", "installBehavior": "user"}),
        ),
        document(
            ResourceType::Script,
            "Set time zone",
            "Windows PowerShell",
            json!({"platform": "windows", "runAs": "system", "content": "Set-TimeZone -Id 'W. Europe Standard Time'"}),
        ),
        document(
            ResourceType::Script,
            "Enable FileVault",
            "macOS shell",
            json!({"platform": "macOS", "runAs": "root", "content": "fdesetup enable"}),
        ),
        document(
            ResourceType::CompliancePolicy,
            "Require BitLocker",
            "Windows 11 baseline",
            json!({"platform": "windows", "bitLockerEnabled": true, "minimumOsVersion": "10.0.22631"}),
        ),
        document(
            ResourceType::ConfigurationPolicy,
            "Edge security baseline",
            "Settings catalog",
            json!({"settings": {"SmartScreenEnabled": true, "PasswordManagerEnabled": false}}),
        ),
        document(ResourceType::DeviceCategory, "Kiosk", "Shared kiosk devices", json!({})),
    ]);
    for (name, os, owner) in
        [("LAPTOP-ALICE", "Windows 11", "alice"), ("MBP-BOB", "macOS 15", "bob"), ("KIOSK-01", "Windows 11", "")]
    {
        plan.push(Proposal::create(
            ResourceType::Device,
            name,
            json!({"name": name, "os": os, "owner": if owner.is_empty() { Value::Null } else { json!(owner) }, "state": "active"}),
        ));
    }
    for profile_type in ProfileType::ALL {
        let name = format!("{} approval", profile_type.display_name());
        plan.push(Proposal::create(
            ResourceType::AccessPolicy,
            &name,
            json!({
                "displayName": name,
                "description": "Demo policy",
                "profileType": profile_type,
                "approverGroupIds": [approver_group],
                "requiredApprovals": 1,
                "completion": Completion::Requester,
                "requestTtl": countersign_core::policy::format_duration(DEFAULT_REQUEST_TTL),
            }),
        ));
    }
    store.seed(plan, now).await
}
