//! What the gate is told about a group or an account, read from the database (R9, R18), and
//! stored policy states from before R18's switch existed.

use super::{stored_state, Proposal};
use crate::testing::{TestBackend, TestDatabase};
use crate::{Actor, PolicyPlan, Store, StoreOptions, Submitted, TenantPlan};
use countersign_core::eligibility::AccountKind;
use countersign_core::permission::{Permission, PermissionSet};
use countersign_core::profile::{Operation, ProfileType, ResourceType};
use countersign_core::state::{AccessPolicyState, ObjectState};

const NOW: i64 = 1_800_000_000_000;

fn admin() -> Actor {
    Actor {
        id: "00000000-0000-7000-8000-0000000000aa".into(),
        name: "admin".into(),
        username: "admin".into(),
        kind: AccountKind::Human,
        via: vec![],
    }
}

fn every_permission() -> PermissionSet {
    PermissionSet::new(Permission::ALL.map(|p| p.as_str()))
}

/// Proposes `change` to the current state of `id` and says under which profile type it was
/// held, or `None` when it was applied.
async fn submit(
    store: &Store,
    resource_type: ResourceType,
    id: &str,
    change: impl FnOnce(&mut ObjectState),
) -> Option<ProfileType> {
    let (before, version) = store.object_state(resource_type, id).await.expect("read").expect("exists");
    let mut after = before.clone();
    change(&mut after);
    let proposal = Proposal::change(resource_type, Operation::Update, id.to_owned(), before, version, Some(after));
    match store.submit(&admin(), &every_permission(), proposal, Some("j"), NOW).await.expect("submit") {
        Submitted::Applied { .. } => None,
        Submitted::Held(request) => Some(request.profile_type),
    }
}

fn describe(state: &mut ObjectState) {
    if let ObjectState::Group(group) = state {
        group.description.push('!');
    }
}

crate::backend_tests!(r18_a_group_is_protected_while_a_live_object_of_a_protecting_policy_is_assigned_to_it);
async fn r18_a_group_is_protected_while_a_live_object_of_a_protecting_policy_is_assigned_to_it(backend: TestBackend) {
    let database = TestDatabase::create(backend).await;
    let store = Store::connect(&database.url, StoreOptions::default()).await.expect("store");
    let mut plan = TenantPlan::new();
    let approvers = plan.group("approvers", "", &[] as &[&str]);
    let reached = plan.group("reached", "", &[] as &[&str]);
    let by_apps = plan.group("by apps", "", &[] as &[&str]);
    let orphaned = plan.group("orphaned", "", &[] as &[&str]);
    let script = plan.document(ResourceType::Script, "Set-up", "", serde_json::Map::new());
    let retired = plan.document(ResourceType::Script, "Old set-up", "", serde_json::Map::new());
    let app = plan.document(ResourceType::App, "Zoom", "", serde_json::Map::new());
    plan.policy(PolicyPlan::new("scripts", ProfileType::Script, &[&approvers]));
    plan.policy(PolicyPlan {
        protect_assigned_groups: false,
        step_up: countersign_core::step_up::StepUp::None,
        ..PolicyPlan::new("apps", ProfileType::App, &[&approvers])
    });
    let mut proposals = plan.into_proposals();
    for proposal in &mut proposals {
        let groups = match &proposal.object_id {
            id if *id == script => vec![reached.clone()],
            id if *id == retired => vec![orphaned.clone()],
            id if *id == app => vec![by_apps.clone(), reached.clone()],
            _ => continue,
        };
        if let Some(ObjectState::Assignable(state)) = &mut proposal.after {
            state.assigned_group_ids = groups;
        }
    }
    assert!(store.seed(proposals, NOW).await.expect("seed"));
    sqlx::query("UPDATE resources SET deleted_at = $1 WHERE id = $2")
        .bind(NOW)
        .bind(&retired)
        .execute(store.pool())
        .await
        .expect("delete the old script");
    let policies = store.policies().await.expect("policies");
    let opted_out: Vec<bool> = policies.iter().map(|p| p.protect_assigned_groups).collect();
    assert_eq!(opted_out, vec![false, true], "{backend:?}: apps, scripts, as saved");

    assert_eq!(submit(&store, ResourceType::Group, &reached, describe).await, Some(ProfileType::Script), "{backend:?}");
    assert_eq!(submit(&store, ResourceType::Group, &by_apps, describe).await, None, "the apps policy opted out");
    assert_eq!(submit(&store, ResourceType::Group, &orphaned, describe).await, None, "a deleted script reaches no one");
    store.close().await;
    database.drop_database().await;
}

crate::backend_tests!(r9_an_approvers_email_address_and_display_name_are_held_and_a_non_approvers_are_not);
async fn r9_an_approvers_email_address_and_display_name_are_held_and_a_non_approvers_are_not(backend: TestBackend) {
    let database = TestDatabase::create(backend).await;
    let store = Store::connect(&database.url, StoreOptions::default()).await.expect("store");
    let mut plan = TenantPlan::new();
    let bob = plan.human("bob", "Bob", Some("bob@example.test"), None);
    let carol = plan.human("carol", "Carol", None, None);
    let alice = plan.human("alice", "Alice", None, None);
    let approvers = plan.group("approvers", "", &[&bob, &carol]);
    plan.policy(PolicyPlan::new("apps", ProfileType::App, &[&approvers]));
    assert!(store.seed(plan.into_proposals(), NOW).await.expect("seed"));
    let account = |change: fn(&mut countersign_core::state::AccountState)| {
        move |state: &mut ObjectState| {
            if let ObjectState::Account(account) = state {
                change(account);
            }
        }
    };
    let redirect = account(|a| a.email = Some("bob@attacker.test".into()));
    let rename = account(|a| a.display_name = "Robert".into());
    let held = Some(ProfileType::OperationApprovalPolicy);
    assert_eq!(submit(&store, ResourceType::Account, &bob, redirect).await, held, "{backend:?}");
    assert_eq!(submit(&store, ResourceType::Account, &carol, rename).await, held, "{backend:?}");
    assert_eq!(submit(&store, ResourceType::Account, &alice, redirect).await, None, "alice approves nothing");
    store.close().await;
    database.drop_database().await;
}

crate::backend_tests!(policy_states_requested_before_r18_read_back_with_its_switch_on);
async fn policy_states_requested_before_r18_read_back_with_its_switch_on(backend: TestBackend) {
    let database = TestDatabase::create(backend).await;
    let store = Store::connect(&database.url, StoreOptions::default()).await.expect("store");
    // Back to the schema before migration 0007, with a policy update and a create held then.
    for sql in [
        "ALTER TABLE access_policies DROP COLUMN protect_assigned_groups",
        "DELETE FROM _sqlx_migrations WHERE version = 7",
    ] {
        sqlx::query(sql).execute(store.pool()).await.expect(sql);
    }
    let old = r#"{"displayName":"Apps","description":"","profileType":"app","approverGroupIds":["g1"],"requiredApprovals":1,"completion":"requester","requestTtl":"P30D"}"#;
    for (id, operation, before) in [("held-update", "update", old), ("held-create", "create", "null")] {
        sqlx::query(
            "INSERT INTO requests (id, resource_type, object_id, object_name, operation, profile_type, status, \
             justification, requested_by, requested_by_name, requested_at, last_modified_at, expires_at, ttl_ms, \
             required_approvals, completion, before_state, before_version, after_state) \
             VALUES ($1, 'accessPolicy', $1, 'Apps', $2, 'operationApprovalPolicy', 'needsApproval', 'j', 'a', 'a', \
             0, 0, 1, 1, 1, 'requester', $3, 1, $4)",
        )
        .bind(id)
        .bind(operation)
        .bind(before)
        .bind(old)
        .execute(store.pool())
        .await
        .expect("an old request");
    }
    store.migrate().await.expect("migration 0007 again");
    for id in ["held-update", "held-create"] {
        let record = store.request(id).await.expect("request");
        let after = stored_state(ResourceType::AccessPolicy, &record.after).expect("a state of today's shape");
        let Some(ObjectState::AccessPolicy(AccessPolicyState { protect_assigned_groups, .. })) = after else {
            panic!("{backend:?}: {id} holds a policy");
        };
        assert!(protect_assigned_groups, "{backend:?}: as the policies themselves now say");
        let before = stored_state(ResourceType::AccessPolicy, &record.before).expect("before");
        assert_eq!(before.is_some(), id == "held-update", "{backend:?}: a create's before stays null");
    }
    store.close().await;
    database.drop_database().await;
}
