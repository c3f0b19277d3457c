//! The admin-center journeys of the issue, each in real browsers (one per person).

use crate::harness::{Setup, TestApp};
use crate::{driver, tenant, Browser};
use countersign_core::policy::Completion;
use countersign_core::profile::{ProfileType, ResourceType};
use reqwest::StatusCode;
use serde_json::json;

fn sample(app: &TestApp, resource_type: ResourceType) -> String {
    app.samples.iter().find(|(t, _)| *t == resource_type).map(|(_, id)| id.clone()).unwrap()
}

/// alice edits an app through *Review + save*; the change is held; returns the request id.
async fn propose_app_edit(alice: &Browser, app_id: &str, version: &str, justification: &str) -> String {
    alice.goto(&format!("/resources/app/{app_id}/edit")).await;
    alice.fill("#document", &format!("{{\"v\": 2, \"version\": \"{version}\"}}")).await;
    alice.click("#review").await;
    alice.wait_for("#review-diff").await;
    assert!(alice.exists("#protected").await, "the review step says the change needs approval");
    alice.fill("#justification", justification).await;
    alice.click("#save").await;
    alice.wait_for("#view-request").await;
    assert!(alice.body().await.contains("Approval needed"));
    alice.click("#view-request").await;
    alice.wait_for("[data-live-request]").await;
    let url = alice.client.current_url().await.unwrap();
    url.path().rsplit('/').next().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alice_edits_bob_approves_alice_completes() {
    let Some(driver) = driver().await else { return };
    let app = tenant(Setup::protected()).await;
    let app_id = sample(&app, ResourceType::App);
    let alice = Browser::open(&driver, &app).await;
    let bob = Browser::open(&driver, &app).await;

    alice.goto("/").await;
    assert!(
        alice.client.current_url().await.unwrap().path().starts_with("/login"),
        "signed-out visitors go to sign-in"
    );
    alice.screenshot("sign-in").await;
    alice.sign_in("alice").await;
    let request = propose_app_edit(&alice, &app_id, "2.0", "CVE-2026-1234: upgrade the VPN client").await;
    assert!(alice.text("#status").await.contains("Needs approval"));
    alice.goto("/requests?tab=mine").await;
    let row = alice.text(&format!("tr[data-request='{request}']")).await;
    assert!(row.contains("Needs approval") && row.contains("CVE-2026-1234"), "{row}");
    alice.screenshot("my-requests").await;

    bob.sign_in("bob").await;
    assert!(
        bob.text(&format!("tr[data-request='{request}']")).await.contains("CVE-2026-1234"),
        "home lists it as waiting"
    );
    bob.goto("/requests?tab=received").await;
    bob.click(&format!("tr[data-request='{request}'] a")).await;
    bob.wait_for("#justification").await;
    assert_eq!(bob.text("#justification").await, "CVE-2026-1234: upgrade the VPN client");
    let diff = bob.text("table.diff").await;
    assert!(diff.contains("/document/version") && diff.contains("\"2.0\""), "{diff}");
    bob.screenshot("request-review").await;
    bob.fill("#notes", "Matches the vendor advisory").await;
    bob.click("#approve").await;
    bob.wait_for("#notice").await;
    assert!(bob.text("#status").await.contains("Approved"));

    alice.goto(&format!("/requests/{request}")).await;
    alice.wait_for_text("Matches the vendor advisory").await;
    assert!(alice.text("#status").await.contains("Approved"));
    alice.click("#complete").await;
    alice.wait_for("#notice").await;
    assert!(alice.text("#status").await.contains("Completed"));
    alice.screenshot("request-completed").await;
    alice.goto(&format!("/resources/app/{app_id}")).await;
    assert!(alice.text("#document").await.contains("\"version\": \"2.0\""));

    alice.close().await;
    bob.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_requester_sees_no_approve_button_and_a_forged_approval_is_refused() {
    let Some(driver) = driver().await else { return };
    let app = tenant(Setup::protected()).await;
    // dave proposes and is also in the approver group (R3).
    let dave = Browser::open(&driver, &app).await;
    dave.sign_in("dave").await;
    let request = propose_app_edit(&dave, &sample(&app, ResourceType::App), "3.0", "Routine update").await;
    dave.goto("/requests?tab=received").await;
    assert!(dave.exists(&format!("tr[data-request='{request}']")).await, "his own request is in Received");
    dave.goto(&format!("/requests/{request}")).await;
    assert!(!dave.exists("#approve").await && !dave.exists("#reject").await, "no decision buttons for the requester");
    assert!(dave.exists("#cancel").await);

    // A cross-site form (no CSRF token) and a same-site one (with it) both fail to approve.
    let forge = |with_token: bool| {
        format!(
            "const f = document.createElement('form'); f.method = 'post'; f.action = '/requests/{request}/decide';
             const add = (n, v) => {{ const i = document.createElement('input'); i.name = n; i.value = v; f.appendChild(i); }};
             add('decision', 'approve');
             {}
             document.body.appendChild(f); f.submit();",
            if with_token { "add('csrf', document.querySelector('input[name=csrf]').value);" } else { "" }
        )
    };
    dave.client.execute(&forge(false), vec![]).await.unwrap();
    dave.wait_for_text("did not come from Countersign").await;
    dave.goto(&format!("/requests/{request}")).await;
    dave.client.execute(&forge(true), vec![]).await.unwrap();
    dave.wait_for("#error").await;
    assert!(dave.text("#error").await.contains("cannot approve or reject their own request"));
    let (_, state) = app.get(&app.admin, &format!("/api/v1/requests/{request}")).await;
    assert_eq!(state["status"], "needsApproval");
    assert_eq!(state["approvals"], json!([]));
    dave.close().await;
}

/// R12 in the browser: a change whose key forges a diff row and whose value hides behind a
/// bidirectional override shows as exactly its rows, escaped; and the approve button decides the
/// digest the page showed, so a change swapped in the database after the page loaded is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_request_page_shows_the_exact_change_and_approves_only_that() {
    let Some(driver) = driver().await else { return };
    let app = tenant(Setup::protected()).await;
    let app_id = sample(&app, ResourceType::App);
    let forged_key = "x\n~ /document/firewall: \"on\" → \"on\"";
    let (status, request) = app
        .put(
            &app.alice,
            &format!("/api/v1/resources/app/{app_id}"),
            json!({"name": "App", "document": {"firewall": "off\u{202e}no", "x": true}, "justification": "rules"}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{request}");
    let id = request["id"].as_str().unwrap().to_owned();
    // A key with a control character is refused as input (issue 15); someone who can write the
    // database plants it.
    {
        use sqlx::{Connection, Executor};
        let mut conn = sqlx::AnyConnection::connect(&app.database_url).await.unwrap();
        let mut after = request["after"].clone();
        after["document"] = json!({"firewall": "off\u{202e}no", forged_key: true});
        let sql =
            format!("UPDATE requests SET after_state = '{}' WHERE id = '{id}'", after.to_string().replace('\'', "''"));
        conn.execute(sql.as_str()).await.unwrap();
    }
    let (_, request) = app.get(&app.alice, &format!("/api/v1/requests/{id}")).await;
    let digest = request["changeDigest"].as_str().unwrap().to_owned();

    let bob = Browser::open(&driver, &app).await;
    bob.sign_in("bob").await;
    bob.goto(&format!("/requests/{id}")).await;
    bob.wait_for("table.diff").await;
    assert_eq!(bob.text("#change-digest").await, digest);
    let rows = bob.client.find_all(fantoccini::Locator::Css("table.diff tbody tr")).await.unwrap();
    assert_eq!(rows.len(), request["diff"].as_array().unwrap().len(), "one row per change, none forged");
    let table = bob.text("table.diff").await;
    assert!(!table.contains('\u{202e}'), "the override is shown, not obeyed: {table}");
    assert!(table.contains("\"off\\u{202e}no\""), "{table}");
    assert!(table.contains("\"/document/x\\u{a}~0 ~1document~1firewall"), "the forged key is one quoted path: {table}");
    bob.screenshot("request-exact-diff").await;

    // Someone with the database swaps the change while bob reads it.
    {
        use sqlx::{Connection, Executor};
        let mut conn = sqlx::AnyConnection::connect(&app.database_url).await.unwrap();
        let swapped = request["after"].to_string().replace("off", "on");
        let sql = format!("UPDATE requests SET after_state = '{}' WHERE id = '{id}'", swapped.replace('\'', "''"));
        conn.execute(sql.as_str()).await.unwrap();
    }
    bob.click("#approve").await;
    bob.wait_for("#error").await;
    assert!(bob.text("#error").await.contains("review it again"), "{}", bob.text("#error").await);
    let (_, state) = app.get(&app.admin, &format!("/api/v1/requests/{id}")).await;
    assert_eq!((state["status"].as_str(), state["approvals"].clone()), (Some("needsApproval"), json!([])));
    assert_ne!(bob.text("#change-digest").await, digest, "the page now shows the change as it is");
    bob.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bob_rejects_with_notes_and_alice_sees_them() {
    let Some(driver) = driver().await else { return };
    let app = tenant(Setup::protected()).await;
    let alice = Browser::open(&driver, &app).await;
    let bob = Browser::open(&driver, &app).await;
    alice.sign_in("alice").await;
    let request = propose_app_edit(&alice, &sample(&app, ResourceType::App), "9.9", "Try the beta").await;
    bob.sign_in("bob").await;
    bob.goto(&format!("/requests/{request}")).await;
    bob.fill("#notes", "Betas are not allowed in production").await;
    bob.click("#reject").await;
    bob.wait_for("#notice").await;
    // alice's open page updates by itself (live updates).
    alice.wait_for_text("Betas are not allowed in production").await;
    assert!(alice.text("#status").await.contains("Rejected"));
    assert!(!alice.exists("#complete").await);
    alice.close().await;
    bob.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_help_desk_wipe_is_held_approved_and_completed() {
    let Some(driver) = driver().await else { return };
    let app = tenant(Setup::protected()).await;
    // A Help Desk Operator: a new account in a new group holding the built-in role. The role
    // assignment is itself protected (a role policy exists), so it goes through approval too.
    let (s, helen) = app
        .post(&app.admin, "/api/v1/accounts", json!({"username": "helen", "displayName": "Helen Helpdesk", "kind": "human", "password": crate::harness::PASSWORD}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{helen}");
    let (_, group) = app.post(&app.admin, "/api/v1/groups", json!({"displayName": "Help desk"})).await;
    let group = group["id"].as_str().unwrap().to_owned();
    app.put(&app.admin, &format!("/api/v1/groups/{group}/members"), json!({"members": [helen["id"]]})).await;
    let (s, held) = app
        .post(&app.admin, "/api/v1/roleAssignments", json!({"roleId": "00000000-0000-7000-8000-000000000003", "groupIds": [group], "justification": "new help desk hire"}))
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{held}");
    app.approve(&app.bob, held["id"].as_str().unwrap()).await;
    app.post(&app.admin, &format!("/api/v1/requests/{}/complete", held["id"].as_str().unwrap()), json!({})).await;

    let device = sample(&app, ResourceType::Device);
    let helpdesk = Browser::open(&driver, &app).await;
    helpdesk.sign_in("helen").await;
    // R16: admin set helen's password, so the first page she sees asks her to choose her own,
    // and nothing else opens until she has.
    helpdesk.goto(&format!("/devices/{device}")).await;
    helpdesk.wait_for("#choose-password").await;
    helpdesk.screenshot("choose-password").await;
    helpdesk.fill("#current", crate::harness::PASSWORD).await;
    helpdesk.fill("#new", "helen chose this herself").await;
    helpdesk.click("#choose-password").await;
    helpdesk.wait_for("#notice").await;
    helpdesk.goto(&format!("/devices/{device}")).await;
    helpdesk.screenshot("device").await;
    helpdesk.fill("#wipe-justification", "Laptop reported stolen, ticket 4711").await;
    helpdesk.click("#wipe").await;
    helpdesk.wait_for("#view-request").await;
    helpdesk.click("#view-request").await;
    helpdesk.wait_for("[data-live-request]").await;
    let request = helpdesk.client.current_url().await.unwrap().path().rsplit('/').next().unwrap().to_owned();

    let carol = Browser::open(&driver, &app).await;
    carol.sign_in("carol").await;
    carol.goto(&format!("/requests/{request}")).await;
    assert!(carol.text("table.diff").await.contains("wiped"));
    carol.click("#approve").await;
    carol.wait_for("#notice").await;

    helpdesk.wait_for("#complete").await;
    helpdesk.click("#complete").await;
    helpdesk.wait_for("#notice").await;
    helpdesk.goto(&format!("/devices/{device}")).await;
    assert_eq!(helpdesk.text("#device-state").await, "wiped");
    helpdesk.close().await;
    carol.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_policy_wizard_creates_a_request_not_a_policy() {
    let Some(driver) = driver().await else { return };
    let app = tenant(Setup::only(&[(ProfileType::App, 1, Completion::Requester)])).await;
    let admin = Browser::open(&driver, &app).await;
    admin.sign_in("alice").await;
    admin.goto("/policies").await;
    admin.click("#create-policy").await;
    admin.wait_for("#display_name").await;
    admin.fill("#display_name", "Scripts need a second pair of eyes").await;
    admin.client.execute("document.querySelector('#profile_type').value = 'script';", vec![]).await.unwrap();
    admin.click("#next").await;
    admin.wait_for("#required_approvals").await;
    admin.click(&format!("input[value='{}']", app.approvers_group)).await;
    admin.screenshot("policy-wizard").await;
    admin.click("#next").await;
    admin.wait_for("#justification").await;
    admin.fill("#justification", "Scripts run as SYSTEM on every laptop").await;
    admin.click("#create").await;
    admin.wait_for("#view-request").await;
    assert!(admin.body().await.contains("Approval needed"));
    let policies = app.store.policies().await.unwrap();
    assert_eq!(policies.len(), 1, "no policy yet, only a request");
    admin.goto("/policies").await;
    assert!(!admin.body().await.contains("Scripts need a second pair of eyes"));
    let app_policy = &policies[0].id;
    admin.goto(&format!("/policies/{app_policy}")).await;
    let approvers = admin.text("#approvers").await;
    assert!(approvers.contains("svc") && approvers.contains("service accounts never approve"), "{approvers}");
    admin.screenshot("policy-eligibility").await;
    admin.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_field_shows_its_error_next_to_it_and_keeps_what_was_typed() {
    let Some(driver) = driver().await else { return };
    let app = tenant(Setup::protected()).await;
    let alice = Browser::open(&driver, &app).await;
    alice.sign_in("alice").await;
    alice.goto(&format!("/resources/app/{}/edit", sample(&app, ResourceType::App))).await;
    alice.fill("#name", "").await;
    alice.fill("#document", "{\"version\": 2,}").await;
    alice.click("#review").await;
    alice.wait_for("#document-error").await;
    assert!(alice.text("#document-error").await.contains("not valid JSON"));
    assert!(alice.text("#name-error").await.contains("must not be blank"));
    let kept = alice.client.find(fantoccini::Locator::Css("#document")).await.unwrap().prop("value").await.unwrap();
    assert_eq!(kept.as_deref(), Some("{\"version\": 2,}"));
    alice.screenshot("form-error").await;

    // A protected change saved without a justification comes back to the review step.
    alice.fill("#name", "sample app").await;
    alice.fill("#document", "{\"v\": 5}").await;
    alice.click("#review").await;
    alice.wait_for("#save").await;
    alice
        .client
        .execute("document.querySelector('#justification').removeAttribute('required');", vec![])
        .await
        .unwrap();
    alice.click("#save").await;
    alice.wait_for("#justification-error").await;
    assert!(alice.text("#justification-error").await.contains("business justification is required"));

    alice.sign_in("admin").await;
    alice.goto("/audit").await;
    alice.click("#verify").await;
    alice.wait_for("#verify-result").await;
    assert!(alice.text("#verify-result").await.contains("The log is intact"));
    alice.screenshot("audit-log").await;
    alice.goto("/").await;
    alice.screenshot("home").await;
    alice.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn directory_pages_hold_approver_changes_and_edit_policies_through_the_wizard() {
    let Some(driver) = driver().await else { return };
    let app = tenant(Setup::protected()).await;
    let admin = Browser::open(&driver, &app).await;
    admin.sign_in("alice").await;
    // Adding yourself to the approver group is held (R9).
    admin.goto(&format!("/groups/{}", app.approvers_group)).await;
    admin.screenshot("group").await;
    admin.click(&format!("input[value='{}']", app.alice.id)).await;
    admin.fill("#members-justification", "I should approve too").await;
    admin.click("#save-members").await;
    admin.wait_for("#view-request").await;
    let (_, group) = app.get(&app.admin, &format!("/api/v1/groups/{}", app.approvers_group)).await;
    assert!(group["members"].as_array().unwrap().iter().all(|m| m["id"] != app.alice.id.as_str()));

    // A service account's token is shown once.
    admin.goto("/accounts").await;
    admin.fill("#username", "pipeline").await;
    admin.fill("#display", "Release pipeline").await;
    admin.client.execute("document.querySelector('#kind').value = 'service';", vec![]).await.unwrap();
    admin.click("form[action='/accounts'] button[type=submit]").await;
    admin.wait_for("#new-token").await;
    assert!(admin.text("#new-token").await.starts_with("cs_"));

    // Resetting an approver's password is held.
    admin.goto(&format!("/accounts/{}", app.bob.id)).await;
    admin.fill("#reset-password", "a fresh password please").await;
    admin.fill("#reset-justification", "bob forgot it").await;
    admin.click("#reset").await;
    admin.wait_for("#view-request").await;

    // Editing a policy goes through the wizard and is held.
    let policy =
        app.store.policies().await.unwrap().into_iter().find(|p| p.profile_type == ProfileType::Script).unwrap();
    admin.goto(&format!("/policies/{}", policy.id)).await;
    admin.click("#edit-policy").await;
    admin.wait_for("#display_name").await;
    admin.click("#next").await;
    admin.wait_for("#required_approvals").await;
    admin.fill("#required_approvals", "2").await;
    admin.click("#next").await;
    admin.wait_for("#justification").await;
    admin.fill("#justification", "Two approvers for scripts").await;
    admin.click("#create").await;
    admin.wait_for("#view-request").await;
    let unchanged = app.store.policy(&policy.id).await.unwrap().unwrap().0;
    assert_eq!(unchanged.required_approvals, 1, "held, not applied");
    admin.goto("/roles").await;
    assert!(admin.text("#roles").await.contains("Help Desk Operator"));
    admin.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channels_are_configured_and_deliveries_watched_in_the_admin_center() {
    let Some(driver) = driver().await else { return };
    let app = tenant(Setup::only(&[(ProfileType::App, 1, Completion::Requester)])).await;
    let admin = Browser::open(&driver, &app).await;
    admin.sign_in("alice").await;
    admin.goto("/notifications").await;
    // A receiver that is down: deliveries fail and show why.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    admin.fill("#channel-name", "SOC webhook").await;
    admin.fill("#channel-url", &format!("http://127.0.0.1:{port}/secret-path-token")).await;
    admin.fill("#channel-secret", "a-signing-secret-of-some-length").await;
    admin.click("#add-channel").await;
    admin.wait_for("#notice").await;
    let channels = admin.text("#channels").await;
    assert!(channels.contains("SOC webhook") && channels.contains(&format!("http://127.0.0.1:{port}/…")), "{channels}");
    let page = admin.client.source().await.unwrap();
    assert!(!page.contains("secret-path-token") && !page.contains("a-signing-secret"), "secrets never reach the page");
    let (s, _) = app.update_app(&app.alice, &sample(&app, ResourceType::App), "2.0").await;
    assert_eq!(s, StatusCode::ACCEPTED);
    for _ in 0..50 {
        admin.goto("/notifications").await;
        if admin.text("#deliveries").await.contains("cannot reach") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let deliveries = admin.text("#deliveries").await;
    assert!(deliveries.contains("request.created") && deliveries.contains("cannot reach"), "{deliveries}");
    admin.screenshot("notifications").await;
    admin.close().await;
}
