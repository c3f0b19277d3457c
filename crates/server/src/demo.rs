//! `serve --demo`: a demo tenant for walking the whole flow in a minute (DESIGN §5).
//! alice proposes; bob and carol approve; every profile type has an access policy.

use countersign_core::permission::BUILT_IN_ROLES;
use countersign_core::profile::{ProfileType, ResourceType};
use countersign_core::Millis;
use countersign_store::{PolicyPlan, Store, StoreError, TenantPlan};
use serde_json::{json, Map, Value};

pub const DEMO_PASSWORD: &str = "countersign-demo";

fn role_id(name: &str) -> &'static str {
    BUILT_IN_ROLES.iter().find(|r| r.display_name == name).map(|r| r.id).unwrap_or_default()
}

/// A document's settings, written as JSON for readability.
fn settings(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// Seeds the demo tenant unless it is already there. Runs only before any access policy
/// exists (see `Store::seed`), so it can never be used to slip a change past the gate.
pub async fn seed(store: &Store, password_hash: &str, now: Millis) -> Result<bool, StoreError> {
    if store.account_by_username("alice").await?.is_some() {
        return Ok(false);
    }
    let mut plan = TenantPlan::new();
    let mut person = |username: &str, display_name: &str| {
        plan.human(username, display_name, Some(&format!("{username}@example.test")), Some(password_hash))
    };
    let alice = person("alice", "Alice Requester");
    let bob = person("bob", "Bob Approver");
    let carol = person("carol", "Carol Approver");
    let operators = plan.group("IT Operators", "Administrators who propose changes.", &[&alice]);
    let approvers = plan.group("MAA Approvers", "Second pair of eyes for every protected change.", &[&bob, &carol]);
    plan.role_assignment("IT Operators", role_id("Administrator"), &[&operators]);
    plan.role_assignment("MAA Approvers", role_id("Approver"), &[&approvers]);

    let documents = [
        (
            ResourceType::App,
            "Contoso VPN",
            "Company VPN client",
            json!({"publisher": "Contoso", "version": "4.2.1", "installBehavior": "system"}),
        ),
        (
            ResourceType::App,
            "Zoom Workplace",
            "Meetings",
            json!({"publisher": "Zoom", "version": "6.1.0", "installBehavior": "user"}),
        ),
        (
            ResourceType::Script,
            "Set time zone",
            "Windows PowerShell",
            json!({"platform": "windows", "runAs": "system", "content": "Set-TimeZone -Id 'W. Europe Standard Time'"}),
        ),
        (
            ResourceType::Script,
            "Enable FileVault",
            "macOS shell",
            json!({"platform": "macOS", "runAs": "root", "content": "fdesetup enable"}),
        ),
        (
            ResourceType::CompliancePolicy,
            "Require BitLocker",
            "Windows 11 baseline",
            json!({"platform": "windows", "bitLockerEnabled": true, "minimumOsVersion": "10.0.22631"}),
        ),
        (
            ResourceType::ConfigurationPolicy,
            "Edge security baseline",
            "Settings catalog",
            json!({"settings": {"SmartScreenEnabled": true, "PasswordManagerEnabled": false}}),
        ),
        (ResourceType::DeviceCategory, "Kiosk", "Shared kiosk devices", json!({})),
    ];
    for (resource_type, name, description, document) in documents {
        plan.document(resource_type, name, description, settings(document));
    }
    for (name, os, owner) in [
        ("LAPTOP-ALICE", "Windows 11", Some("alice")),
        ("MBP-BOB", "macOS 15", Some("bob")),
        ("KIOSK-01", "Windows 11", None),
    ] {
        plan.device(name, os, owner);
    }
    for profile_type in ProfileType::ALL {
        let name = format!("{} approval", profile_type.display_name());
        plan.policy(PolicyPlan {
            description: "Demo policy".into(),
            ..PolicyPlan::new(&name, profile_type, &[&approvers])
        });
    }
    store.seed(plan.into_proposals(), now).await
}
