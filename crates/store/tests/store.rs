//! Store-level rules on every backend: what the database itself guarantees, below the HTTP layer.

use countersign_core::eligibility::AccountKind;
use countersign_core::permission::{Permission, PermissionSet};
use countersign_core::profile::{Operation, ProfileType, ResourceType};
use countersign_core::state::ObjectState;
use countersign_core::MILLIS_PER_DAY;
use countersign_store::backend_tests;
use countersign_store::testing::{postgres_available, skip, TestBackend, TestDatabase};
use countersign_store::{
    Actor, AuditFilter, PolicyPlan, Proposal, RequestFilter, RequestView, Store, StoreError, StoreOptions, Submitted,
    TenantPlan,
};
use futures::future::join_all;
use serde_json::json;

const NOW: i64 = 1_800_000_000_000;

/// A typed state from the JSON the API would show.
fn state(resource_type: ResourceType, value: serde_json::Value) -> ObjectState {
    ObjectState::from_json(resource_type, value).unwrap()
}

/// Every permission, as the Administrator role holds them.
fn administrator() -> PermissionSet {
    PermissionSet::new(Permission::ALL.map(|p| p.as_str()))
}

fn actor() -> Actor {
    Actor {
        id: "00000000-0000-7000-8000-0000000000aa".into(),
        name: "tester".into(),
        username: "tester".into(),
        kind: AccountKind::Human,
        via: vec![],
    }
}

/// The planned proposal that creates `id`.
fn planned(proposals: &[Proposal], id: &str) -> Proposal {
    proposals.iter().find(|p| p.object_id == id).cloned().unwrap()
}

fn new_app(name: &str) -> Proposal {
    let mut plan = TenantPlan::new();
    let id = plan.document(ResourceType::App, name, "", serde_json::Map::new());
    planned(&plan.into_proposals(), &id)
}

/// A store with one app, protected by an access policy whose requests live a day.
async fn protected_app(database: &TestDatabase) -> (Store, Proposal) {
    let store =
        Store::connect(&database.url, StoreOptions { max_connections: 5, ..StoreOptions::default() }).await.unwrap();
    let mut plan = TenantPlan::new();
    let approvers = plan.group("approvers", "", &[] as &[&str]);
    let app = plan.document(ResourceType::App, "Zoom", "", serde_json::Map::new());
    plan.policy(PolicyPlan {
        request_ttl_ms: MILLIS_PER_DAY,
        ..PolicyPlan::new("apps", ProfileType::App, &[&approvers])
    });
    let proposals = plan.into_proposals();
    let app = planned(&proposals, &app);
    assert!(store.seed(proposals, NOW).await.unwrap());
    (store, app)
}

fn update(app: &Proposal, version: &str) -> Proposal {
    let mut after = app.after_json();
    after["document"] = json!({"version": version});
    let after = Some(state(ResourceType::App, after));
    Proposal { operation: Operation::Update, before: app.after.clone(), before_version: 1, after, ..app.clone() }
}

backend_tests!(r4_the_partial_unique_index_refuses_a_second_open_request_even_bypassing_the_code, worker_threads = 4);
async fn r4_the_partial_unique_index_refuses_a_second_open_request_even_bypassing_the_code(backend: TestBackend) {
    let database = TestDatabase::create(backend).await;
    let (store, app) = protected_app(&database).await;
    let Submitted::Held(request) =
        store.submit(&actor(), &administrator(), update(&app, "2"), Some("j"), NOW).await.unwrap()
    else {
        panic!("an update of a protected app is held");
    };
    use sqlx::{Connection, Executor};
    let mut conn = sqlx::AnyConnection::connect(&database.url).await.unwrap();
    let copy = format!(
        "INSERT INTO requests (id, resource_type, object_id, object_name, operation, profile_type, policy_id, status, justification, requested_by, requested_by_name, requested_at, last_modified_at, expires_at, ttl_ms, required_approvals, completion, completed_at, failure_reason, before_state, before_version, after_state, secret) SELECT 'x-{id}', resource_type, object_id, object_name, operation, profile_type, policy_id, \
         status, justification, requested_by, requested_by_name, requested_at, last_modified_at, expires_at, ttl_ms, \
         required_approvals, completion, completed_at, failure_reason, before_state, before_version, after_state, secret \
         FROM requests WHERE id = '{id}'",
        id = request.id
    );
    let refused = conn.execute(copy.as_str()).await.unwrap_err();
    assert!(refused.as_database_error().is_some_and(|e| e.is_unique_violation()), "{refused}");
    database.drop_database().await;
}

backend_tests!(r4_r13_concurrent_submissions_hold_one_and_keep_one_audit_chain, worker_threads = 4);
async fn r4_r13_concurrent_submissions_hold_one_and_keep_one_audit_chain(backend: TestBackend) {
    let database = TestDatabase::create(backend).await;
    let (store, app) = protected_app(&database).await;
    let versions: Vec<String> = (0..30).map(|i| i.to_string()).collect();
    let (actor, administrator) = (actor(), administrator());
    let results =
        join_all(versions.iter().map(|v| store.submit(&actor, &administrator, update(&app, v), Some("j"), NOW))).await;
    let held = results.iter().filter(|r| matches!(r, Ok(Submitted::Held(_)))).count();
    let refused = results.iter().filter(|r| matches!(r, Err(StoreError::RequestOpen { .. }))).count();
    assert_eq!((held, refused), (1, 29), "{backend:?}");
    let report = store.verify_audit(countersign_store::VerifyInputs::default()).await.unwrap();
    assert!(report.valid, "{report:?}");
    assert_eq!(report.entries_checked as i64, store.audit_count().await.unwrap());
    database.drop_database().await;
}

backend_tests!(r11_concurrent_sweeps_expire_each_request_once, worker_threads = 4);
async fn r11_concurrent_sweeps_expire_each_request_once(backend: TestBackend) {
    let database = TestDatabase::create(backend).await;
    let (store, app) = protected_app(&database).await;
    store.submit(&actor(), &administrator(), update(&app, "2"), Some("j"), NOW).await.unwrap();
    let later = NOW + countersign_core::MILLIS_PER_DAY;
    let swept: u64 = join_all((0..6).map(|_| store.expire_due(later))).await.into_iter().map(Result::unwrap).sum();
    assert_eq!(swept, 1, "{backend:?}");
    let filter = AuditFilter { action: Some("expired".into()), limit: 10, ..Default::default() };
    assert_eq!(store.audit_entries(&filter).await.unwrap().len(), 1);
    database.drop_database().await;
}

backend_tests!(seeding_is_refused_once_any_policy_exists);
async fn seeding_is_refused_once_any_policy_exists(backend: TestBackend) {
    let database = TestDatabase::create(backend).await;
    let (store, _) = protected_app(&database).await;
    let before = store.audit_count().await.unwrap();
    assert!(!store.seed(vec![new_app("Sneaky")], NOW).await.unwrap(), "no way around the gate after first start");
    assert_eq!(store.audit_count().await.unwrap(), before);
    let apps = store.resources(ResourceType::App, None, 10).await.unwrap().records;
    assert!(apps.iter().all(|r| r.state.name() != "Sneaky"));
    database.drop_database().await;
}

backend_tests!(r12_a_proposal_from_a_stale_read_is_refused_before_it_is_held);
async fn r12_a_proposal_from_a_stale_read_is_refused_before_it_is_held(backend: TestBackend) {
    let database = TestDatabase::create(backend).await;
    let (store, app) = protected_app(&database).await;
    let mut stale = update(&app, "2");
    stale.before_version = 0;
    let refused = store.submit(&actor(), &administrator(), stale, Some("j"), NOW).await.unwrap_err();
    assert!(matches!(refused, StoreError::Stale(_)), "{refused}");
    database.drop_database().await;
}

backend_tests!(replicas_starting_together_create_one_administrator_and_one_set_of_roles, worker_threads = 4);
async fn replicas_starting_together_create_one_administrator_and_one_set_of_roles(backend: TestBackend) {
    let database = TestDatabase::create(backend).await;
    let mut replicas = Vec::new();
    for _ in 0..3 {
        let options = StoreOptions { max_connections: 3, ..StoreOptions::default() };
        replicas.push(Store::connect(&database.url, options).await.unwrap());
    }
    let first_start = replicas.iter().map(|store| async move {
        store.seed_built_in_roles(NOW).await?;
        store.bootstrap_admin("admin", "argon2-hash-stand-in", NOW).await
    });
    let created: Vec<bool> = join_all(first_start).await.into_iter().map(Result::unwrap).collect();
    assert_eq!(created.iter().filter(|c| **c).count(), 1, "{backend:?}: {created:?}");
    assert_eq!(replicas[0].account_count().await.unwrap(), 1);
    let built_in = replicas[0].roles().await.unwrap().into_iter().filter(|r| r.built_in).count();
    assert_eq!(built_in, countersign_core::permission::BUILT_IN_ROLES.len());
    assert!(replicas[0].verify_audit(countersign_store::VerifyInputs::default()).await.unwrap().valid);
    database.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_connections_can_require_tls() {
    if !postgres_available("postgres_connections_can_require_tls") {
        return;
    }
    let database = TestDatabase::create(TestBackend::Postgres).await;
    use sqlx::{Connection, Row};
    let mut plain = sqlx::PgConnection::connect(&database.url).await.unwrap();
    let ssl: String = sqlx::query("SHOW ssl").fetch_one(&mut plain).await.unwrap().get(0);
    if ssl != "on" {
        database.drop_database().await;
        skip("postgres_connections_can_require_tls", "the PostgreSQL server has ssl = off");
        return;
    }
    let separator = if database.url.contains('?') { '&' } else { '?' };
    let store =
        Store::connect(&format!("{}{separator}sslmode=require", database.url), StoreOptions::default()).await.unwrap();
    store.seed_built_in_roles(NOW).await.unwrap();
    let encrypted: bool = sqlx::query("SELECT ssl FROM pg_stat_ssl JOIN pg_stat_activity USING (pid) WHERE datname = current_database() AND application_name = '' AND pid <> pg_backend_pid() LIMIT 1")
        .fetch_one(&mut plain)
        .await
        .map(|r| r.get(0))
        .unwrap_or(false);
    assert!(encrypted, "the store's connections use TLS");
    store.close().await;
    database.drop_database().await;
}

backend_tests!(r13_entries_of_any_text_chain_and_verify_on_every_backend);
async fn r13_entries_of_any_text_chain_and_verify_on_every_backend(backend: TestBackend) {
    // Quotes, backslashes, control characters, non-ASCII and emoji: the bytes stored (through
    // each backend's text type) must be those `verify` hashes and links.
    let awkward = "Zoë \"the admin\" \\ tab\tnew\nline \u{1} ✓ 🚀 </script>";
    let database = TestDatabase::create(backend).await;
    let keys = countersign_core::audit::AuditKeys::new(vec![countersign_core::audit::AuditKey::new(&[3; 32])]).unwrap();
    let keyring = countersign_store::AuditKeyring::fixed(keys.clone());
    let store = Store::connect(&database.url, StoreOptions { audit_keys: Some(keyring), ..StoreOptions::default() })
        .await
        .unwrap();
    let entry = countersign_store::NewAudit::new("auth", awkward)
        .by("00000000-0000-7000-8000-0000000000aa", awkward)
        .on("account", awkward)
        .details(json!({"note": awkward, "n": -1, "nested": {"list": [awkward, null]}}));
    store.audit(entry.clone(), NOW).await.unwrap();
    store.audit(entry, NOW + 1).await.unwrap();
    let inputs = countersign_store::VerifyInputs { keys: Some(&keys), ..Default::default() };
    let report = store.verify_audit(inputs).await.unwrap();
    assert!(report.valid && report.entries_checked == 2 && report.links_checked == 2, "{backend:?}: {report:?}");
    let stored = store.audit_entries(&AuditFilter { limit: 10, ..AuditFilter::default() }).await.unwrap();
    assert_eq!(stored.len(), 2);
    for record in &stored {
        assert_eq!((record.action.as_str(), record.actor_name.as_str()), (awkward, awkward), "{backend:?}");
        assert_eq!(record.hash, record.compute_hash(), "{backend:?}: stored hash is the entry's own");
    }
    assert_eq!(stored[0].prev_hash, stored[1].hash, "newest first, chained");
    database.drop_database().await;
}

fn new_account(username: &str) -> Proposal {
    let mut plan = TenantPlan::new();
    let id = plan.human(username, username, None, None);
    planned(&plan.into_proposals(), &id)
}

backend_tests!(a_taken_username_is_refused_by_its_unique_index_as_a_conflict);
async fn a_taken_username_is_refused_by_its_unique_index_as_a_conflict(backend: TestBackend) {
    let database = TestDatabase::create(backend).await;
    let store = Store::connect(&database.url, StoreOptions::default()).await.unwrap();
    store.submit(&actor(), &administrator(), new_account("alice"), None, NOW).await.unwrap();
    let refused = store.submit(&actor(), &administrator(), new_account("alice"), None, NOW).await.unwrap_err();
    assert!(
        matches!(&refused, StoreError::Conflict(m) if m == "the username 'alice' is taken"),
        "{backend:?}: {refused:?}"
    );
    database.drop_database().await;
}

backend_tests!(a_second_policy_for_a_profile_type_is_refused_by_its_unique_index_as_a_conflict);
async fn a_second_policy_for_a_profile_type_is_refused_by_its_unique_index_as_a_conflict(backend: TestBackend) {
    let database = TestDatabase::create(backend).await;
    let store = Store::connect(&database.url, StoreOptions::default()).await.unwrap();
    let mut plan = TenantPlan::new();
    let approvers = plan.group("approvers", "", &[] as &[&str]);
    for name in ["first", "second"] {
        plan.policy(PolicyPlan::new(name, ProfileType::Script, &[&approvers]));
    }
    // Seeded without the gate, so only the index stands between the two.
    let refused = store.seed(plan.into_proposals(), NOW).await.unwrap_err();
    assert!(
        matches!(&refused, StoreError::Conflict(m) if m.starts_with("an access policy for") && m.ends_with("already exists")),
        "{backend:?}: {refused:?}"
    );
    database.drop_database().await;
}

backend_tests!(the_gate_itself_refuses_a_change_its_caller_may_not_propose);
async fn the_gate_itself_refuses_a_change_its_caller_may_not_propose(backend: TestBackend) {
    let database = TestDatabase::create(backend).await;
    let (store, app) = protected_app(&database).await;
    let audit_before = store.audit_count().await.unwrap();
    // A reader of apps, and an Application Manager of another kind of object: neither may write apps.
    for held in [PermissionSet::new(["apps.read"]), PermissionSet::new(["scripts.write", "devices.wipe"])] {
        let refused = store.submit(&actor(), &held, update(&app, "2"), Some("j"), NOW).await.unwrap_err();
        assert!(
            matches!(&refused, StoreError::Domain(countersign_core::DomainError::MissingPermission(_))),
            "{backend:?}: {refused:?}"
        );
    }
    let mut plan = TenantPlan::new();
    let device = plan.device("PC-9", "Windows 11", None);
    let enroll = planned(&plan.into_proposals(), &device);
    let refused = store.submit(&actor(), &PermissionSet::new(["devices.read"]), enroll.clone(), None, NOW).await;
    assert!(refused.is_err(), "{backend:?}: enrolling needs a device-management permission");
    assert_eq!(store.audit_count().await.unwrap(), audit_before, "{backend:?}: nothing was recorded, nothing held");
    let applied = store.submit(&actor(), &PermissionSet::new(["devices.retire"]), enroll, None, NOW).await.unwrap();
    assert!(matches!(applied, Submitted::Applied { .. }), "{backend:?}: any device action permission enrols");
    database.drop_database().await;
}

backend_tests!(a_proposal_whose_states_do_not_fit_its_type_and_operation_is_refused);
async fn a_proposal_whose_states_do_not_fit_its_type_and_operation_is_refused(backend: TestBackend) {
    let database = TestDatabase::create(backend).await;
    let (store, app) = protected_app(&database).await;
    let audit_before = store.audit_count().await.unwrap();
    let group = state(ResourceType::Group, json!({"displayName": "x", "description": "", "members": []}));
    let misfits = [
        ("an app update carrying a group's state", Proposal { after: Some(group), ..update(&app, "2") }),
        (
            "a delete that still carries a state after it",
            Proposal { operation: Operation::Delete, ..update(&app, "2") },
        ),
        ("an update without a state after it", Proposal { after: None, ..update(&app, "2") }),
        ("a create with a state before it", Proposal { operation: Operation::Create, ..update(&app, "2") }),
    ];
    for (what, proposal) in misfits {
        let refused = store.submit(&actor(), &administrator(), proposal, Some("j"), NOW).await.unwrap_err();
        assert!(
            matches!(&refused, StoreError::Domain(countersign_core::DomainError::Validation(_))),
            "{backend:?}: {what}: {refused:?}"
        );
    }
    assert_eq!(store.audit_count().await.unwrap(), audit_before, "{backend:?}: nothing held, nothing applied");
    database.drop_database().await;
}

backend_tests!(r16_credential_provenance_is_stored_and_holds_after_a_restart);
/// Who set a password, made a token, or opened a session is read from the database at every
/// decision, so another replica (or the same one after a restart) sees the same control.
async fn r16_credential_provenance_is_stored_and_holds_after_a_restart(backend: TestBackend) {
    let database = TestDatabase::create(backend).await;
    let store = Store::connect(&database.url, StoreOptions::default()).await.unwrap();
    let mut plan = TenantPlan::new();
    let mallory = plan.human("mallory", "Mallory", None, Some("$argon2id$seeded"));
    let honest = plan.human("honest", "Honest", None, Some("$argon2id$seeded"));
    assert!(store.seed(plan.into_proposals(), NOW).await.unwrap());
    // mallory, signed in with a session carl controls, creates a person with a password.
    let mallory_actor = Actor {
        id: mallory.clone(),
        name: "Mallory".into(),
        username: "mallory".into(),
        kind: AccountKind::Human,
        via: vec!["carl".into()],
    };
    let puppet = Proposal {
        secret: Some("$argon2id$set-by-mallory".into()),
        ..Proposal::create(
            ResourceType::Account,
            state(
                ResourceType::Account,
                json!({"username": "puppet", "displayName": "Puppet", "email": null, "kind": "human", "enabled": true}),
            ),
        )
    };
    let puppet_id = puppet.object_id.clone();
    store.submit(&mallory_actor, &administrator(), puppet, None, NOW).await.unwrap();
    store
        .create_session(
            &puppet_id,
            "session-hash",
            "csrf",
            &countersign_store::ClientInfo::default(),
            NOW,
            NOW + MILLIS_PER_DAY,
        )
        .await
        .unwrap();
    store.close().await;

    let replica = Store::connect(&database.url, StoreOptions::default()).await.unwrap();
    let session = replica.session("session-hash", NOW).await.unwrap().unwrap();
    let mut via = session.access.via.clone();
    via.sort();
    let mut expected = vec!["carl".to_owned(), mallory.clone()];
    expected.sort();
    assert_eq!(via, expected, "{backend:?}: a session is controlled as its password is");
    assert!(session.access.account.password_change_required, "{backend:?}: a password another set is temporary");
    let control = replica.control_graph(&[&puppet_id, &honest], NOW).await.unwrap();
    let controllers: Vec<String> = control.control_set(&puppet_id).into_keys().collect();
    assert!(controllers.contains(&mallory) && controllers.contains(&"carl".to_owned()), "{backend:?}: {controllers:?}");
    assert_eq!(control.control_set(&honest).len(), 1, "{backend:?}: a seeded account is nobody's");
    let link = control.link(&puppet_id, &mallory).unwrap();
    assert_eq!(control.describe(&link), "puppet's password was set by mallory", "{backend:?}");
    // Choosing their own password in that session keeps it mallory's (and carl's).
    let puppet_actor = Actor {
        id: puppet_id.clone(),
        name: "Puppet".into(),
        username: "puppet".into(),
        kind: AccountKind::Human,
        via: session.access.via.clone(),
    };
    replica.change_own_password(&puppet_actor, "$argon2id$chosen", Some("session-hash"), false, NOW).await.unwrap();
    let control = replica.control_graph(&[&puppet_id], NOW).await.unwrap();
    assert!(control.control_set(&puppet_id).contains_key(&mallory), "{backend:?}");
    let changed = replica.session("session-hash", NOW).await.unwrap().unwrap();
    assert!(!changed.access.account.password_change_required, "{backend:?}");
    replica.close().await;
    database.drop_database().await;
}

backend_tests!(a_flash_is_kept_with_its_session_and_taken_once, worker_threads = 4);
/// The admin center's notice after an action lives with the session in the database: another
/// replica shows it, exactly one page load takes it, and it never leaks to another session.
async fn a_flash_is_kept_with_its_session_and_taken_once(backend: TestBackend) {
    let database = TestDatabase::create(backend).await;
    let store = Store::connect(&database.url, StoreOptions::default()).await.unwrap();
    let mut plan = TenantPlan::new();
    let alice = plan.human("alice", "Alice", None, Some("$argon2id$seeded"));
    assert!(store.seed(plan.into_proposals(), NOW).await.unwrap());
    store
        .create_session(&alice, "mine", "csrf", &countersign_store::ClientInfo::default(), NOW, NOW + MILLIS_PER_DAY)
        .await
        .unwrap();
    store
        .create_session(&alice, "other", "csrf", &countersign_store::ClientInfo::default(), NOW, NOW + MILLIS_PER_DAY)
        .await
        .unwrap();
    assert_eq!(store.take_flash("mine").await.unwrap(), None, "{backend:?}");
    store.set_flash("mine", "Your notification settings were saved.").await.unwrap();

    let replica = Store::connect(&database.url, StoreOptions::default()).await.unwrap();
    assert_eq!(replica.take_flash("other").await.unwrap(), None, "{backend:?}: another session's");
    let takes = join_all((0..8).map(|i| {
        let store = if i % 2 == 0 { store.clone() } else { replica.clone() };
        async move { store.take_flash("mine").await.unwrap() }
    }))
    .await;
    let taken: Vec<_> = takes.into_iter().flatten().collect();
    assert_eq!(taken, vec!["Your notification settings were saved.".to_owned()], "{backend:?}: shown once");
    assert_eq!(store.take_flash("mine").await.unwrap(), None, "{backend:?}: and not again");
    replica.close().await;
    store.close().await;
    database.drop_database().await;
}

// ---- R20: display names unique under confusable matching ----

fn person(id: &str, username: &str) -> Actor {
    Actor { id: id.into(), name: username.into(), username: username.into(), kind: AccountKind::Human, via: vec![] }
}

fn named(username: &str, display_name: &str) -> Proposal {
    let mut plan = TenantPlan::new();
    let id = plan.human(username, display_name, None, None);
    planned(&plan.into_proposals(), &id)
}

/// A change of account `id`'s state by `edit`, as proposed now.
async fn account_change(store: &Store, id: &str, edit: impl FnOnce(&mut serde_json::Value)) -> Proposal {
    let (before, version) = store.object_state(ResourceType::Account, id).await.unwrap().unwrap();
    let mut after = before.to_json();
    edit(&mut after);
    let after = state(ResourceType::Account, after);
    Proposal::change(ResourceType::Account, Operation::Update, id.to_owned(), before, version, Some(after))
}

fn taken_by(result: Result<Submitted, StoreError>) -> String {
    match result {
        Err(StoreError::Domain(refused)) if refused.code() == "display_name_taken" => refused.to_string(),
        other => panic!("expected display_name_taken, got {other:?}"),
    }
}

backend_tests!(r20_a_look_alike_display_name_is_refused_at_create_and_at_change);
async fn r20_a_look_alike_display_name_is_refused_at_create_and_at_change(backend: TestBackend) {
    let database = TestDatabase::create(backend).await;
    let store = Store::connect(&database.url, StoreOptions::default()).await.unwrap();
    let (actor, administrator) = (actor(), administrator());
    store.submit(&actor, &administrator, named("alice", "Alice Smith"), None, NOW).await.unwrap();
    // Cyrillic А and о: the display name of another account, or its username.
    let refused =
        taken_by(store.submit(&actor, &administrator, named("mallory", "\u{410}lice Smith"), None, NOW).await);
    assert!(refused.contains("the display name of account 'alice'"), "{backend:?}: {refused}");
    let refused = taken_by(store.submit(&actor, &administrator, named("mallory", "\u{430}lice"), None, NOW).await);
    assert!(refused.contains("the username of account 'alice'"), "{backend:?}: {refused}");
    // A new username too like another's is refused too.
    let refused = taken_by(store.submit(&actor, &administrator, named("a1ice", "Somebody"), None, NOW).await);
    assert!(refused.contains("\"a1ice\" is too like the username of account 'alice'"), "{backend:?}: {refused}");
    let hidden = store.submit(&actor, &administrator, named("mallory", "Mallory\u{202e}"), None, NOW).await;
    assert!(
        matches!(&hidden, Err(StoreError::Domain(e)) if e.code() == "validation_failed"),
        "{backend:?}: {hidden:?}"
    );

    let mallory = named("mallory", "Mallory");
    let mallory_id = mallory.object_id.clone();
    store.submit(&actor, &administrator, mallory, None, NOW).await.unwrap();
    let rename = account_change(&store, &mallory_id, |s| s["displayName"] = json!("ALICE  SMITH")).await;
    taken_by(store.submit(&actor, &administrator, rename, None, NOW).await);
    // Bypassing the check, the unique index itself refuses a second skeleton.
    use sqlx::{Connection, Executor};
    let mut conn = sqlx::AnyConnection::connect(&database.url).await.unwrap();
    let copy = format!(
        "UPDATE accounts SET display_name_skeleton = (SELECT display_name_skeleton FROM accounts WHERE username = 'alice') \
         WHERE id = '{mallory_id}'"
    );
    let refused = conn.execute(copy.as_str()).await.unwrap_err();
    assert!(refused.as_database_error().is_some_and(|e| e.is_unique_violation()), "{backend:?}: {refused}");
    // A deleted account's name is free again.
    let alice = store.account_by_username("alice").await.unwrap().unwrap();
    let (before, version) = store.object_state(ResourceType::Account, &alice.id).await.unwrap().unwrap();
    let delete = Proposal::change(ResourceType::Account, Operation::Delete, alice.id.clone(), before, version, None);
    store.submit(&actor, &administrator, delete, None, NOW).await.unwrap();
    let rename = account_change(&store, &mallory_id, |s| s["displayName"] = json!("Alice Smith")).await;
    store.submit(&actor, &administrator, rename, None, NOW).await.unwrap();
    database.drop_database().await;
}

backend_tests!(r20_racing_completions_of_two_held_renames_apply_one_and_fail_the_other, worker_threads = 4);
async fn r20_racing_completions_of_two_held_renames_apply_one_and_fail_the_other(backend: TestBackend) {
    use countersign_core::request::{Decision, RequestStatus};
    use countersign_core::visibility::Viewer;
    let database = TestDatabase::create(backend).await;
    let store = Store::connect(&database.url, StoreOptions::default()).await.unwrap();
    store.seed_built_in_roles(NOW).await.unwrap();
    let mut plan = TenantPlan::new();
    let alice = plan.human("alice", "Alice", None, Some("$argon2id$seeded"));
    let bob = plan.human("bob", "Bob", None, Some("$argon2id$seeded"));
    let carol = plan.human("carol", "Carol", None, Some("$argon2id$seeded"));
    let approvers = plan.group("Approvers", "", &[&bob, &carol]);
    let approver_role =
        countersign_core::permission::BUILT_IN_ROLES.iter().find(|r| r.display_name == "Approver").unwrap().id;
    plan.role_assignment("Approvers", approver_role, &[&approvers]);
    plan.policy(PolicyPlan::new("guards", ProfileType::OperationApprovalPolicy, &[&approvers]));
    assert!(store.seed(plan.into_proposals(), NOW).await.unwrap());

    // alice proposes new names for bob and carol, each free when proposed (Cyrillic о in one).
    let mut requests = Vec::new();
    for (id, name, approver) in [(&bob, "Robert Example", &carol), (&carol, "R\u{43e}bert Example", &bob)] {
        let rename = account_change(&store, id, |s| s["displayName"] = json!(name)).await;
        let Submitted::Held(request) =
            store.submit(&person(&alice, "alice"), &administrator(), rename, Some("new name"), NOW).await.unwrap()
        else {
            panic!("{backend:?}: an approver's display name is held (R9)");
        };
        let permissions = PermissionSet::new(["accounts.read", "maa.approve"]);
        let groups = [approvers.clone()];
        let viewer = Viewer { id: approver, permissions: &permissions, group_ids: &groups };
        let username = if approver == &bob { "bob" } else { "carol" };
        let decided =
            store.decide(&person(approver, username), viewer, &request.id, Decision::Approve, None, None, NOW).await;
        assert_eq!(decided.unwrap().status, RequestStatus::Approved, "{backend:?}");
        requests.push(request.id);
    }
    let permissions = administrator();
    let requester = person(&alice, "alice");
    let completions = join_all(requests.iter().map(|id| {
        let viewer = Viewer { id: &alice, permissions: &permissions, group_ids: &[] };
        store.complete(&requester, viewer, id, NOW)
    }))
    .await;
    let mut outcomes: Vec<RequestStatus> =
        completions.iter().map(|c| c.as_ref().map(|r| r.status).expect("each completion answers")).collect();
    outcomes.sort_by_key(|s| s.as_str());
    assert_eq!(outcomes, [RequestStatus::Completed, RequestStatus::Failed], "{backend:?}");
    let failed = completions.iter().flatten().find(|r| r.status == RequestStatus::Failed).unwrap();
    let reason = failed.failure_reason.as_deref().unwrap_or_default();
    assert!(reason.contains("too like the display name of account"), "{backend:?}: {reason}");
    let mut names = Vec::new();
    for id in [&bob, &carol] {
        names.push(store.account(id).await.unwrap().unwrap().display_name);
    }
    assert!(
        names.contains(&"Bob".to_owned()) || names.contains(&"Carol".to_owned()),
        "{backend:?}: the failed rename left its account as it was: {names:?}"
    );
    // The requester and approvers are named by username with the records.
    let record = store.request(&requests[0]).await.unwrap();
    assert_eq!(record.requested_by_username, "alice", "{backend:?}");
    assert_eq!(record.approvals[0].approver_username, "carol", "{backend:?}");
    let report = store.verify_audit(countersign_store::VerifyInputs::default()).await.unwrap();
    assert!(report.valid, "{backend:?}: {report:?}");
    database.drop_database().await;
}

backend_tests!(r20_existing_look_alike_names_are_kept_for_the_oldest_and_flagged_for_the_rest);
async fn r20_existing_look_alike_names_are_kept_for_the_oldest_and_flagged_for_the_rest(backend: TestBackend) {
    let database = TestDatabase::create(backend).await;
    let store = Store::connect(&database.url, StoreOptions::default()).await.unwrap();
    // Accounts as a release before R20 wrote them: no skeletons.
    use sqlx::{Connection, Executor};
    let mut conn = sqlx::AnyConnection::connect(&database.url).await.unwrap();
    let accounts = [
        ("00000000-0000-7000-8000-000000000001", "alice", "Alice"),
        ("00000000-0000-7000-8000-000000000002", "alice2", "\u{410}lice"),
        ("00000000-0000-7000-8000-000000000003", "eve", "Eve\u{202e}evE"),
        ("00000000-0000-7000-8000-000000000004", "mallory", "b\u{43e}b"),
        ("00000000-0000-7000-8000-000000000005", "bob", "Robert"),
    ];
    for (n, (id, username, display_name)) in accounts.iter().enumerate() {
        let insert = format!(
            "INSERT INTO accounts (id, username, display_name, kind, enabled, version, created_at, updated_at) \
             VALUES ('{id}', '{username}', '{display_name}', 'human', 1, 1, {n}, {n})"
        );
        conn.execute(insert.as_str()).await.unwrap();
    }
    store.close().await;

    // Opening the store backfills the skeletons; nothing fails.
    let store = Store::connect(&database.url, StoreOptions::default()).await.unwrap();
    let flag = |username: &'static str| {
        let store = store.clone();
        async move { store.account_by_username(username).await.unwrap().unwrap().display_name_flag }
    };
    assert_eq!(flag("alice").await, None, "{backend:?}: the oldest keeps its name");
    assert_eq!(flag("bob").await, None, "{backend:?}");
    let alice2 = flag("alice2").await.unwrap_or_default();
    assert!(alice2.contains("display name of account 'alice'"), "{backend:?}: {alice2}");
    let eve = flag("eve").await.unwrap_or_default();
    assert!(eve.contains("\\u{202e}"), "{backend:?}: {eve}");
    let mallory = flag("mallory").await.unwrap_or_default();
    assert!(mallory.contains("username of account 'bob'"), "{backend:?}: {mallory}");
    assert_eq!(store.backfill_name_skeletons().await.unwrap(), 0, "{backend:?}: done once");

    // A flagged account's next change must give it a name that passes.
    let (actor, administrator) = (actor(), administrator());
    let alice2_id = accounts[1].0;
    let email = account_change(&store, alice2_id, |s| s["email"] = json!("a2@example.test")).await;
    taken_by(store.submit(&actor, &administrator, email, None, NOW).await);
    let rename = account_change(&store, alice2_id, |s| s["displayName"] = json!("Alice Two")).await;
    store.submit(&actor, &administrator, rename, None, NOW).await.unwrap();
    assert_eq!(flag("alice2").await, None, "{backend:?}: the new name clears the flag");
    let eve_id = accounts[2].0;
    let email = account_change(&store, eve_id, |s| s["email"] = json!("eve@example.test")).await;
    let refused = store.submit(&actor, &administrator, email, None, NOW).await;
    assert!(
        matches!(&refused, Err(StoreError::Domain(e)) if e.code() == "validation_failed"),
        "{backend:?}: {refused:?}"
    );
    database.drop_database().await;
}

backend_tests!(issue_15_a_request_row_nobody_can_read_is_passed_over_and_expires_from_its_columns);
async fn issue_15_a_request_row_nobody_can_read_is_passed_over_and_expires_from_its_columns(backend: TestBackend) {
    let database = TestDatabase::create(backend).await;
    let store =
        Store::connect(&database.url, StoreOptions { max_connections: 5, ..StoreOptions::default() }).await.unwrap();
    let mut plan = TenantPlan::new();
    let approvers = plan.group("approvers", "", &[] as &[&str]);
    let apps: Vec<String> = ["Zoom", "Teams", "Slack"]
        .iter()
        .map(|n| plan.document(ResourceType::App, n, "", serde_json::Map::new()))
        .collect();
    plan.policy(PolicyPlan {
        request_ttl_ms: MILLIS_PER_DAY,
        ..PolicyPlan::new("apps", ProfileType::App, &[&approvers])
    });
    let proposals = plan.into_proposals();
    assert!(store.seed(proposals.clone(), NOW).await.unwrap());
    let mut held = Vec::new();
    for app in &apps {
        let Submitted::Held(request) = store
            .submit(&actor(), &administrator(), update(&planned(&proposals, app), "2"), Some("j"), NOW)
            .await
            .unwrap()
        else {
            panic!("held");
        };
        held.push(request.id);
    }
    // Finding 1's row, and a row with a column that does not decode.
    use sqlx::{Connection, Executor, Row};
    let mut conn = sqlx::AnyConnection::connect(&database.url).await.unwrap();
    let deep = format!("{}{{}}{}", "{\"a\":".repeat(130), "}".repeat(130));
    conn.execute(format!("UPDATE requests SET before_state = '{deep}' WHERE id = '{}'", held[0]).as_str())
        .await
        .unwrap();
    conn.execute(format!("UPDATE requests SET dependencies = 'not json' WHERE id = '{}'", held[1]).as_str())
        .await
        .unwrap();

    let all = RequestFilter {
        view: RequestView::All,
        status: None,
        resource_type: None,
        object_id: None,
        resource_types: None,
        since: 0,
        until: None,
        before_id: None,
        limit: 2,
    };
    let page = store.requests(&all).await.unwrap();
    assert_eq!(page.records.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), [held[2].as_str()], "newest first");
    assert_eq!(
        page.next_before.as_deref(),
        Some(held[1].as_str()),
        "the page is full: paging goes on past the bad rows"
    );
    assert!(matches!(store.request(&held[0]).await, Err(StoreError::Unreadable { ref id, .. }) if *id == held[0]));

    let hour = MILLIS_PER_DAY / 24;
    assert_eq!(store.send_reminders(NOW + 23 * hour, 2 * hour).await.unwrap(), 1, "the readable one is reminded");
    assert_eq!(store.send_reminders(NOW + 23 * hour, 2 * hour).await.unwrap(), 0, "each once");
    assert_eq!(store.expire_due(NOW + MILLIS_PER_DAY).await.unwrap(), 3, "the sweep expires all three");
    assert_eq!(store.expire_due(NOW + MILLIS_PER_DAY).await.unwrap(), 0);
    for id in &held {
        let row = conn.fetch_one(format!("SELECT status FROM requests WHERE id = '{id}'").as_str()).await.unwrap();
        assert_eq!(row.get::<String, _>("status"), "expired", "{backend:?}");
    }
    let filter = AuditFilter { action: Some("expired".into()), limit: 10, ..Default::default() };
    assert_eq!(store.audit_entries(&filter).await.unwrap().len(), 3);
    assert!(store.verify_audit(countersign_store::VerifyInputs::default()).await.unwrap().valid);
    // R4: the objects are free again.
    let again = store
        .submit(
            &actor(),
            &administrator(),
            update(&planned(&proposals, &apps[0]), "3"),
            Some("j"),
            NOW + MILLIS_PER_DAY,
        )
        .await;
    assert!(matches!(again, Ok(Submitted::Held(_))), "{again:?}");
    database.drop_database().await;
}

backend_tests!(sign_in_budgets_let_through_exactly_the_limit_of_concurrent_attempts, worker_threads = 4);
async fn sign_in_budgets_let_through_exactly_the_limit_of_concurrent_attempts(backend: TestBackend) {
    use countersign_store::Budget;
    let database = TestDatabase::create(backend).await;
    let store =
        Store::connect(&database.url, StoreOptions { max_connections: 5, ..StoreOptions::default() }).await.unwrap();
    const WINDOW: i64 = 15 * 60 * 1000;
    let account = Budget { bucket: "account:carol".into(), limit: 5, reset_on_success: false };
    let address = Budget { bucket: "address:192.0.2.1".into(), limit: 20, reset_on_success: false };
    let budgets = [account.clone(), address.clone()];
    let results = join_all((0..40).map(|_| store.reserve_sign_in(&budgets, NOW, WINDOW))).await;
    let let_through = results.iter().filter(|r| matches!(r, Ok(None))).count();
    assert_eq!(let_through, 5, "{backend:?}: {results:?}");
    assert!(results.iter().all(|r| matches!(r, Ok(None) | Ok(Some(WINDOW)))), "{results:?}");
    // A refused attempt reserved nothing: the address bucket holds only the five.
    for i in 0..15 {
        let other_account = Budget { bucket: format!("account:user{i}"), limit: 5, reset_on_success: false };
        assert_eq!(store.reserve_sign_in(&[other_account, address.clone()], NOW, WINDOW).await.unwrap(), None, "{i}");
    }
    let after = Budget { bucket: "account:erin".into(), limit: 5, reset_on_success: false };
    assert!(store.reserve_sign_in(&[after.clone(), address.clone()], NOW, WINDOW).await.unwrap().is_some());
    // The window ends with its first attempt's time plus its length.
    assert_eq!(store.reserve_sign_in(std::slice::from_ref(&account), NOW + WINDOW - 1, WINDOW).await.unwrap(), Some(1));
    assert_eq!(store.reserve_sign_in(std::slice::from_ref(&account), NOW + WINDOW, WINDOW).await.unwrap(), None);
    // The server's key is made once and shared.
    let key = store.server_key("sign-in", "first", NOW).await.unwrap();
    assert_eq!((key.as_str(), store.server_key("sign-in", "second", NOW).await.unwrap().as_str()), ("first", "first"));
    database.drop_database().await;
}

backend_tests!(issue_17_each_credential_records_its_last_use_where_its_owner_can_see_it, worker_threads = 2);
/// A token's and a session's last use, address and user agent reach the owner's lists, and are
/// written at most once a minute (a request is not also a write).
async fn issue_17_each_credential_records_its_last_use_where_its_owner_can_see_it(backend: TestBackend) {
    let database = TestDatabase::create(backend).await;
    let store = Store::connect(&database.url, StoreOptions::default()).await.unwrap();
    let mut plan = TenantPlan::new();
    let alice = plan.human("alice", "Alice", None, Some("$argon2id$seeded"));
    assert!(store.seed(plan.into_proposals(), NOW).await.unwrap());
    let alice_actor = person(&alice, "alice");
    let token = store.create_token(&alice_actor, "laptop", "token-hash", None, NOW).await.unwrap();
    let laptop = countersign_store::ClientInfo::new("192.0.2.7", "curl/8.5");
    let used = store.account_for_token("token-hash", Some(&laptop), NOW + 1_000).await.unwrap();
    assert_eq!(used.map(|a| a.account.id), Some(alice.clone()), "{backend:?}");
    let elsewhere = countersign_store::ClientInfo::new("198.51.100.9", "other");
    store.account_for_token("token-hash", Some(&elsewhere), NOW + 2_000).await.unwrap().unwrap();
    let tokens = store.tokens_of(&alice).await.unwrap();
    let listed = tokens.iter().find(|t| t.id == token.id).unwrap();
    assert_eq!(listed.last_used_at, Some(NOW + 1_000), "{backend:?}: the first use is written, the next not yet");
    assert_eq!(listed.last_used_address.as_deref(), Some("192.0.2.7"), "{backend:?}");
    assert_eq!(listed.last_used_user_agent.as_deref(), Some("curl/8.5"), "{backend:?}");
    store.account_for_token("token-hash", Some(&elsewhere), NOW + 120_000).await.unwrap().unwrap();
    let tokens = store.tokens_of(&alice).await.unwrap();
    let listed = tokens.iter().find(|t| t.id == token.id).unwrap();
    assert_eq!(listed.last_used_at, Some(NOW + 120_000), "{backend:?}: a minute later it is");
    assert_eq!(listed.last_used_address.as_deref(), Some("198.51.100.9"), "{backend:?}");

    let browser = countersign_store::ClientInfo::new("203.0.113.5", &"Mozilla ".repeat(100));
    store.create_session(&alice, "session-hash", "csrf", &browser, NOW, NOW + MILLIS_PER_DAY).await.unwrap();
    store.session("session-hash", NOW + 90_000).await.unwrap().unwrap();
    let sessions = store.sessions_of(&alice, Some("session-hash"), NOW + 90_000).await.unwrap();
    assert_eq!(sessions.len(), 1, "{backend:?}");
    assert_eq!(sessions[0].last_used_at, Some(NOW + 90_000), "{backend:?}");
    assert_eq!(sessions[0].address, "203.0.113.5", "{backend:?}");
    assert_eq!(sessions[0].user_agent.chars().count(), countersign_store::MAX_CLIENT_TEXT, "{backend:?}: capped");
    assert!(sessions[0].current, "{backend:?}");
    store.close().await;
    database.drop_database().await;
}

backend_tests!(r9_r16_a_passkey_registered_for_an_approver_is_held_and_controlled_by_whoever_registered_it);
async fn r9_r16_a_passkey_registered_for_an_approver_is_held_and_controlled_by_whoever_registered_it(
    backend: TestBackend,
) {
    use countersign_core::request::{Decision, RequestStatus};
    use countersign_core::visibility::Viewer;
    let database = TestDatabase::create(backend).await;
    let store = Store::connect(&database.url, StoreOptions::default()).await.unwrap();
    store.seed_built_in_roles(NOW).await.unwrap();
    let mut plan = TenantPlan::new();
    let alice = plan.human("alice", "Alice", None, Some("$argon2id$seeded"));
    let bob = plan.human("bob", "Bob", None, Some("$argon2id$seeded"));
    let carol = plan.human("carol", "Carol", None, Some("$argon2id$seeded"));
    let dave = plan.human("dave", "Dave", None, Some("$argon2id$seeded"));
    let approvers = plan.group("Approvers", "", &[&bob, &carol]);
    let approver_role =
        countersign_core::permission::BUILT_IN_ROLES.iter().find(|r| r.display_name == "Approver").unwrap().id;
    plan.role_assignment("Approvers", approver_role, &[&approvers]);
    plan.policy(PolicyPlan::new("guards", ProfileType::OperationApprovalPolicy, &[&approvers]));
    assert!(store.seed(plan.into_proposals(), NOW).await.unwrap());

    let passkey_for = |n: u8| countersign_store::NewPasskey {
        id: format!("00000000-0000-7000-8000-00000000000{n}"),
        name: format!("key {n}"),
        credential_id: format!("credential-{n}"),
        credential: "{}".into(),
        public_key: "ed25519:".to_owned() + &"ab".repeat(32),
    };
    let addition = |account: String, new: countersign_store::NewPasskey| {
        let store = &store;
        async move {
            let change = json!({"action": "added", "id": new.id, "name": new.name});
            let mut proposal = account_change(store, &account, |s| s["passkey"] = change).await;
            proposal.secret = Some(serde_json::to_string(&new).unwrap());
            proposal
        }
    };
    // The attack: alice (an administrator) adds her own authenticator to bob, an approver, so
    // as to approve as him. Held (R9): nothing is registered before another approver agrees.
    let to_bob = addition(bob.clone(), passkey_for(1)).await;
    let Submitted::Held(request) =
        store.submit(&person(&alice, "alice"), &administrator(), to_bob, Some("enrolling bob"), NOW).await.unwrap()
    else {
        panic!("{backend:?}: a passkey for an approver is held (R9)");
    };
    assert!(store.passkeys_of(&bob).await.unwrap().is_empty(), "{backend:?}");
    assert_eq!(request.after["passkey"]["action"], "added", "{backend:?}");

    // dave is no approver: applied at once, and alice controls it (R16).
    let to_dave = addition(dave.clone(), passkey_for(2)).await;
    let applied = store.submit(&person(&alice, "alice"), &administrator(), to_dave, None, NOW).await.unwrap();
    assert!(matches!(applied, Submitted::Applied { .. }), "{backend:?}");
    let daves = store.passkeys_of(&dave).await.unwrap();
    assert_eq!(daves.len(), 1, "{backend:?}");
    assert_eq!(daves[0].record.controllers, std::slice::from_ref(&alice), "{backend:?}");
    assert_eq!(daves[0].record.created_by.as_deref(), Some(alice.as_str()), "{backend:?}");
    // R16: while that passkey is live, alice controls dave.
    let control = store.control_graph(&[dave.as_str()], NOW).await.unwrap();
    let controllers = control.control_set(&dave);
    assert!(controllers.contains_key(&alice), "{backend:?}: {controllers:?}");
    let how = control.describe_edge(&controllers[&alice][0]);
    assert!(how.contains("a passkey of dave's was registered by alice"), "{backend:?}: {how}");
    // A session opened with it ends when it is removed.
    let client = countersign_store::ClientInfo::new("127.0.0.1", "test");
    store
        .passkey_session(&daves[0].record.id, "{}", 1, "session-hash", "csrf", &client, NOW, NOW + 1000)
        .await
        .unwrap();
    assert!(store.session("session-hash", NOW).await.unwrap().is_some(), "{backend:?}");
    let still = store.session("session-hash", NOW).await.unwrap().unwrap();
    assert_eq!(still.access.via, std::slice::from_ref(&alice), "{backend:?}: R16, the session is alice's too");

    // carol approves; on completion bob's passkey exists, controlled by alice.
    let permissions = PermissionSet::new(["accounts.read", "maa.approve"]);
    let groups = [approvers.clone()];
    let viewer = Viewer { id: &carol, permissions: &permissions, group_ids: &groups };
    let decided =
        store.decide(&person(&carol, "carol"), viewer, &request.id, Decision::Approve, None, None, NOW).await.unwrap();
    assert_eq!(decided.status, RequestStatus::Approved, "{backend:?}");
    let admin = administrator();
    let viewer = Viewer { id: &alice, permissions: &admin, group_ids: &[] };
    let done = store.complete(&person(&alice, "alice"), viewer, &request.id, NOW).await.unwrap();
    assert_eq!(done.status, RequestStatus::Completed, "{backend:?}: {:?}", done.failure_reason);
    let bobs = store.passkeys_of(&bob).await.unwrap();
    assert_eq!(bobs.len(), 1, "{backend:?}");
    assert_eq!(bobs[0].record.controllers, std::slice::from_ref(&alice), "{backend:?}");

    // Removing dave's passkey (dave himself) ends the session opened with it.
    let dave_actor = person(&dave, "dave");
    store.remove_own_passkey(&dave_actor, &daves[0].record.id, NOW).await.unwrap();
    assert!(store.session("session-hash", NOW).await.unwrap().is_none(), "{backend:?}");

    // The same credential cannot be registered twice.
    let again = addition(dave.clone(), passkey_for(2)).await;
    let refused = store.submit(&person(&alice, "alice"), &administrator(), again, None, NOW).await;
    assert!(matches!(refused, Err(StoreError::Conflict(_))), "{backend:?}: {refused:?}");
    database.drop_database().await;
}
