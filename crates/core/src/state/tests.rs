use super::*;
use serde_json::json;

/// One state of every type, in the shape the store has always kept and the API has always shown.
fn samples() -> Vec<(ResourceType, Value)> {
    vec![
        (
            ResourceType::App,
            json!({"name": "VPN", "description": "", "document": {"version": "4.2"}, "assignedGroupIds": ["g1"]}),
        ),
        (ResourceType::DeviceCategory, json!({"name": "Kiosk", "description": "Shared", "document": {}})),
        (ResourceType::Device, json!({"name": "PC-0", "os": "Windows 11", "owner": null, "state": "active"})),
        (
            ResourceType::Device,
            json!({"name": "PC-0", "os": "Windows 11", "owner": "ann", "state": "wiped", "keepEnrollmentData": true}),
        ),
        (
            ResourceType::Role,
            json!({"displayName": "Helpers", "description": "", "permissions": ["apps.read"], "builtIn": false}),
        ),
        (ResourceType::RoleAssignment, json!({"displayName": "Ops", "roleId": "r1", "groupIds": ["g1", "g2"]})),
        (
            ResourceType::Group,
            json!({"displayName": "Approvers", "description": "", "members": [{"id": "a1", "username": "bob"}]}),
        ),
        (
            ResourceType::Account,
            json!({"username": "bob", "displayName": "Bob", "email": null, "kind": "human", "enabled": true}),
        ),
        (
            ResourceType::Account,
            json!({"username": "bob", "displayName": "Bob", "email": "b@x.test", "kind": "human", "enabled": false, "password": "changed"}),
        ),
        (
            ResourceType::AccessPolicy,
            json!({"displayName": "Apps", "description": "", "profileType": "app", "approverGroupIds": ["g1"],
                   "requiredApprovals": 2, "completion": "automatic", "requestTtl": "P30D",
                   "protectAssignedGroups": false}),
        ),
        (
            ResourceType::NotificationChannel,
            json!({"displayName": "SOC", "kind": "webhook", "enabled": true, "target": "https://soc.test/…", "signed": true}),
        ),
        (
            ResourceType::NotificationChannel,
            json!({"displayName": "SOC", "kind": "email", "enabled": true, "target": null, "signed": false, "secretChanged": true}),
        ),
    ]
}

#[test]
fn every_type_reads_and_writes_the_shape_it_has_always_had() {
    for (resource_type, value) in samples() {
        let state = ObjectState::from_json(resource_type, value.clone()).unwrap();
        assert!(state.is_of(resource_type), "{resource_type}");
        assert_eq!(state.to_json(), value, "{resource_type} round-trips unchanged");
    }
}

#[test]
fn an_unknown_field_is_refused_on_every_type() {
    for (resource_type, mut value) in samples() {
        value["smuggled"] = json!(1);
        let refused = ObjectState::from_json(resource_type, value).unwrap_err();
        assert!(refused.to_string().contains("smuggled"), "{resource_type}: {refused}");
    }
}

#[test]
fn fields_that_change_meaning_when_missing_are_required() {
    // A group update without members must not empty the group; an account update without
    // `enabled` must not enable the account.
    let group = json!({"displayName": "Approvers", "description": ""});
    assert!(ObjectState::from_json(ResourceType::Group, group).is_err());
    let account = json!({"username": "bob", "displayName": "Bob", "email": null, "kind": "human"});
    assert!(ObjectState::from_json(ResourceType::Account, account).is_err());
    let app = json!({"name": "VPN", "description": "", "document": {}});
    assert!(ObjectState::from_json(ResourceType::App, app).is_err(), "assigned groups are stated");
    // A policy without R18's switch must not quietly protect (or stop protecting) its groups.
    let policy = json!({"displayName": "Apps", "description": "", "profileType": "app", "approverGroupIds": ["g1"],
                        "requiredApprovals": 1, "completion": "requester", "requestTtl": "P30D"});
    assert!(ObjectState::from_json(ResourceType::AccessPolicy, policy).is_err());
}

#[test]
fn a_state_of_one_type_is_not_read_as_another() {
    let device = json!({"name": "PC-0", "os": "Windows 11", "owner": null, "state": "active"});
    assert!(ObjectState::from_json(ResourceType::App, device.clone()).is_err());
    assert!(ObjectState::from_json(
        ResourceType::Device,
        json!({"name": "PC-0", "os": "x", "owner": null, "state": "lost"})
    )
    .is_err());
    let app = ObjectState::from_json(ResourceType::Device, device).unwrap();
    assert!(!app.is_of(ResourceType::App));
    assert!(
        ObjectState::from_json(
            ResourceType::App,
            json!({"name": "x", "description": "", "document": [], "assignedGroupIds": []})
        )
        .is_err(),
        "a document is an object"
    );
}

#[test]
fn each_state_lists_the_groups_accounts_and_roles_it_names() {
    let read = |t, v| ObjectState::from_json(t, v).unwrap().references();
    let set = |ids: &[&str]| ids.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    let all: Vec<References> = samples().into_iter().map(|(t, v)| read(t, v)).collect();
    assert_eq!(all[0].groups, set(&["g1"]), "an app's assignment groups");
    assert_eq!(all[5].roles, set(&["r1"]), "a role assignment's role");
    assert_eq!(all[5].groups, set(&["g1", "g2"]), "and its member groups");
    assert_eq!(all[6].accounts, set(&["a1"]), "a group's members");
    assert_eq!(all[9].groups, set(&["g1"]), "a policy's approver groups");
    assert_eq!(all[7], References::default(), "an account names nothing");
    let both = all[5].clone().union(all[6].clone());
    assert_eq!((both.groups.len(), both.accounts.len(), both.roles.len()), (2, 1, 1));
}

#[test]
fn names_are_what_people_call_the_object() {
    let names: Vec<String> =
        samples().into_iter().map(|(t, v)| ObjectState::from_json(t, v).unwrap().name().to_owned()).collect();
    assert_eq!(names[0], "VPN");
    assert_eq!(names[6], "Approvers");
    assert_eq!(names[7], "bob", "accounts are named by their username");
}

#[test]
fn a_policy_state_and_the_policy_convert_both_ways() {
    let (_, value) = samples().remove(9);
    let ObjectState::AccessPolicy(state) = ObjectState::from_json(ResourceType::AccessPolicy, value).unwrap() else {
        panic!("a policy");
    };
    let policy = state.to_policy("p1").unwrap();
    assert_eq!(policy.request_ttl_ms, 30 * crate::MILLIS_PER_DAY);
    assert_eq!(AccessPolicyState::of(&policy), state);
    assert!(!policy.protect_assigned_groups);
    let bad = AccessPolicyState { request_ttl: "P1M".into(), ..state.clone() };
    assert!(bad.to_policy("p1").is_err(), "months have no fixed length");
    // R18's switch is part of what approvers of a policy change see.
    let protecting = AccessPolicyState { protect_assigned_groups: true, ..state.clone() };
    let shown = crate::diff::diff(
        &ObjectState::AccessPolicy(state).to_json(),
        &ObjectState::AccessPolicy(protecting).to_json(),
    );
    assert_eq!(shown.len(), 1, "{shown:?}");
    assert_eq!((shown[0].path.as_str(), shown[0].after.clone()), ("/protectAssignedGroups", Some(json!(true))));
}

#[test]
fn a_channel_secret_reads_what_is_stored_and_never_prints_itself() {
    let stored = json!({"url": "https://hooks.test/T0/B0/secret-path", "signingSecret": "sixteen-chars-key"});
    let secret: ChannelSecret = serde_json::from_value(stored).unwrap();
    assert!(secret.signs());
    let printed = format!("{secret:?}");
    assert!(!printed.contains("secret-path") && !printed.contains("sixteen"), "{printed}");
    let email: ChannelSecret = serde_json::from_str("{}").unwrap();
    assert_eq!((email.url.as_deref(), email.signs()), (None, false), "an e-mail channel keeps no secret");
}

#[test]
fn set_valued_fields_are_read_and_written_sorted_without_duplicates() {
    let app = json!({"name": "VPN", "description": "", "document": {}, "assignedGroupIds": ["g2", "g1", "g2"]});
    let state = ObjectState::from_json(ResourceType::App, app).unwrap();
    assert_eq!(state.to_json()["assignedGroupIds"], json!(["g1", "g2"]));
    let shuffled = ObjectState::Assignable(crate::state::AssignableState {
        name: "VPN".into(),
        description: String::new(),
        document: Default::default(),
        assigned_group_ids: vec!["g2".into(), "g1".into()],
    });
    assert_eq!(shuffled.to_json(), state.to_json(), "a state built in any order shows the same");
    assert!(crate::diff::diff(&shuffled.to_json(), &state.to_json()).is_empty(), "no spurious reorder");
}
