//! R16 Independent people, as the attacks of issue #13 class 1: an approver who can take over
//! another account (reset its password, or make a service account and its token) submits as
//! that account and approves as themself. Countersign records who set each live credential, so
//! the approval is refused `not_independent`, naming the link, on every path that decides.

use crate::harness::*;
use countersign_core::policy::Completion;
use countersign_core::profile::ProfileType;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const TAKEN_OVER: &str = "mallory knows this one";
const CHOSEN: &str = "mallory chose this too";

fn app_only() -> Setup {
    Setup::only(&[(ProfileType::App, 1, Completion::Requester)])
}

/// dave (Administrator and approver) resets alice's password: alice is no approver, so it
/// applies at once, and dave holds every permission alice does (R19 is satisfied).
async fn dave_takes_over_alice(app: &TestApp) -> Session {
    let (status, body) = app
        .call(
            &app.dave,
            Method::PATCH,
            &format!("/api/v1/accounts/{}", app.alice.id),
            Some(json!({"password": TAKEN_OVER})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (alice, status, signed_in) = Session::sign_in_with(app, "alice", TAKEN_OVER).await;
    assert_eq!(status, StatusCode::OK, "{signed_in}");
    assert_eq!(signed_in["account"]["passwordChangeRequired"], true, "{signed_in}");
    alice
}

backend_tests!(r16_a_puppet_requester_whose_password_the_approver_set_is_not_independent);
async fn r16_a_puppet_requester_whose_password_the_approver_set_is_not_independent(backend: TestBackend) {
    with_app(backend, app_only(), |app| async move {
        let target = app.create_app("Payroll").await;
        let alice = dave_takes_over_alice(&app).await;
        // The first sign-in change does not launder it: it is made in a session dave controls.
        alice.choose_password(TAKEN_OVER, CHOSEN).await;
        let (status, request) = alice
            .call(
                Method::PUT,
                &format!("/api/v1/resources/app/{target}"),
                json!({"name": "Payroll", "document": {"version": "evil"}, "justification": "routine"}),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{request}");
        let id = request["id"].as_str().unwrap();

        let (status, refused) = app.post(&app.dave, &format!("/api/v1/requests/{id}/approve"), json!({})).await;
        assert_problem(status, &refused, 403, "not_independent");
        let detail = refused["detail"].as_str().unwrap();
        assert!(detail.contains("alice's password was set by dave"), "the refusal names the link: {detail}");

        // The account shows who controls it, over the API and on its page.
        let (_, account) = app.get(&app.admin, &format!("/api/v1/accounts/{}", app.alice.id)).await;
        assert_eq!(account["controlledBy"][0]["username"], "dave", "{account}");
        assert_eq!(account["controlledBy"][0]["how"], "alice's password was set by dave", "{account}");
        let (_, bob_account) = app.get(&app.admin, &format!("/api/v1/accounts/{}", app.bob.id)).await;
        assert_eq!(bob_account["controlledBy"], json!([]), "{bob_account}");

        // The request page shows each approver's independence of this requester.
        let (_, shown) = app.get(&app.bob, &format!("/api/v1/requests/{id}")).await;
        let standing = |name: &str| -> Value {
            shown["approvers"].as_array().unwrap().iter().find(|a| a["username"] == name).cloned().unwrap()
        };
        assert_eq!(standing("dave")["independent"], false, "{shown}");
        assert!(standing("dave")["link"].as_str().unwrap().contains("dave"), "{shown}");
        assert_eq!(standing("bob")["independent"], true, "{shown}");
        let (_, for_dave) = app.get(&app.dave, &format!("/api/v1/requests/{id}")).await;
        assert_eq!(for_dave["canApprove"], false, "no button for a decision that would not count");

        // Nothing was counted; an independent approver still can.
        let (_, still) = app.get(&app.admin, &format!("/api/v1/requests/{id}")).await;
        assert_eq!(still["status"], "needsApproval");
        assert!(still["approvals"].as_array().unwrap().is_empty());
        let approved = app.approve(&app.bob, id).await;
        assert_eq!(approved["status"], "approved", "{approved}");
    })
    .await;
}

backend_tests!(r16_a_token_minted_through_a_taken_over_account_stays_the_takers);
async fn r16_a_token_minted_through_a_taken_over_account_stays_the_takers(backend: TestBackend) {
    with_app(backend, app_only(), |app| async move {
        let target = app.create_app("Payroll").await;
        let alice = dave_takes_over_alice(&app).await;
        alice.choose_password(TAKEN_OVER, CHOSEN).await;
        let (status, minted) = alice.call(Method::POST, "/api/v1/tokens", json!({"displayName": "mine"})).await;
        assert_eq!(status, StatusCode::CREATED, "{minted}");
        let puppet = User { id: app.alice.id.clone(), token: minted["token"].as_str().unwrap().to_owned() };
        // Sign every session out, as if dave covered his tracks: the token alone remains.
        let (status, _) = alice.call(Method::POST, "/api/v1/auth/logout", json!({})).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let (status, request) = app.update_app(&puppet, &target, "evil").await;
        assert_eq!(status, StatusCode::ACCEPTED, "{request}");
        let id = request["id"].as_str().unwrap();
        let (status, refused) = app.post(&app.dave, &format!("/api/v1/requests/{id}/approve"), json!({})).await;
        assert_problem(status, &refused, 403, "not_independent");
    })
    .await;
}

backend_tests!(r16_a_service_account_is_controlled_by_whoever_made_its_token);
/// Without a `role` policy, role grants are not held: dave makes a service account, puts it in a
/// group with the Administrator role, submits as it and approves as himself.
async fn r16_a_service_account_is_controlled_by_whoever_made_its_token(backend: TestBackend) {
    with_app(backend, app_only(), |app| async move {
        let target = app.create_app("Payroll").await;
        let (status, created) = app
            .post(
                &app.dave,
                "/api/v1/accounts",
                json!({"username": "pipeline", "displayName": "Pipeline", "kind": "service"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        let pipeline = User {
            id: created["id"].as_str().unwrap().to_owned(),
            token: created["token"].as_str().unwrap().to_owned(),
        };
        let (status, group) = app
            .put(
                &app.dave,
                &format!("/api/v1/groups/{}/members", app.operators_group),
                json!({"members": [app.alice.id, app.dave.id, app.svc.id, pipeline.id]}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "no role policy: {group}");
        let (status, request) = app.update_app(&pipeline, &target, "evil").await;
        assert_eq!(status, StatusCode::ACCEPTED, "{request}");
        let id = request["id"].as_str().unwrap();
        let (status, refused) = app.post(&app.dave, &format!("/api/v1/requests/{id}/approve"), json!({})).await;
        assert_problem(status, &refused, 403, "not_independent");
        assert!(
            refused["detail"].as_str().unwrap().contains("an API token of pipeline's was made by dave"),
            "{refused}"
        );
        // Graph shows the same standing, as an instance annotation.
        let (status, graph) =
            app.get(&app.bob, &format!("/beta/deviceManagement/operationApprovalRequests/{id}")).await;
        assert_eq!(status, StatusCode::OK, "{graph}");
        let annotated = graph["@countersign.approvers"].as_array().unwrap();
        let dave = annotated.iter().find(|a| a["userPrincipalName"] == "dave").unwrap();
        assert_eq!(dave["independent"], false, "{graph}");
    })
    .await;
}

backend_tests!(r16_an_account_created_with_a_password_chooses_its_own_before_anything_else);
async fn r16_an_account_created_with_a_password_chooses_its_own_before_anything_else(backend: TestBackend) {
    with_app(backend, Setup::protected(), |app| async move {
        let (status, erin) = app
            .post(
                &app.admin,
                "/api/v1/accounts",
                json!({"username": "erin", "displayName": "Erin", "kind": "human", "password": TAKEN_OVER}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{erin}");
        let (_, listed) = app.get(&app.admin, &format!("/api/v1/accounts/{}", erin["id"].as_str().unwrap())).await;
        assert_eq!(listed["passwordChangeRequired"], true, "administrators see who has not chosen yet: {listed}");
        let (session, status, _) = Session::sign_in_with(&app, "erin", TAKEN_OVER).await;
        assert_eq!(status, StatusCode::OK);
        let (status, refused) = session.call(Method::GET, "/api/v1/requests", json!(null)).await;
        assert_problem(status, &refused, 403, "password_change_required");
        let (status, refused) = session.call(Method::POST, "/api/v1/tokens", json!({"displayName": "x"})).await;
        assert_problem(status, &refused, 403, "password_change_required");
        let (status, me) = session.call(Method::GET, "/api/v1/me", json!(null)).await;
        assert_eq!(status, StatusCode::OK, "{me}");
        // Replacing it with the same password is not replacing it.
        let (status, same) = session
            .call(
                Method::POST,
                "/api/v1/me/password",
                json!({"currentPassword": TAKEN_OVER, "newPassword": TAKEN_OVER}),
            )
            .await;
        assert_problem(status, &same, 400, "validation_failed");
        session.choose_password(TAKEN_OVER, CHOSEN).await;
        let (_, me) = session.call(Method::GET, "/api/v1/me", json!(null)).await;
        assert_eq!(me["account"]["passwordChangeRequired"], false, "{me}");
        let (status, _) = session.call(Method::GET, "/api/v1/requests", json!(null)).await;
        assert_eq!(status, StatusCode::OK);
        // Erin's password is her own now, but it was changed in a session opened with the one
        // admin set: admin could have done it, so erin stays admin's (README: the attacker model).
        let control = app.store.control_graph(&[erin["id"].as_str().unwrap()], START).await.unwrap();
        assert!(control.control_set(erin["id"].as_str().unwrap()).contains_key(&app.admin.id));
    })
    .await;
}

backend_tests!(r16_an_approver_on_a_password_someone_else_set_cannot_approve);
/// The web admin center sends such an account to choose its password; the store refuses its
/// decision even if a path forgot to (R2's eligibility carries the reason).
async fn r16_an_approver_on_a_password_someone_else_set_cannot_approve(backend: TestBackend) {
    with_app(backend, app_only(), |app| async move {
        let target = app.create_app("Payroll").await;
        // bob's password is reset through approval (R9): carol approves, admin completes.
        let (status, reset) = app
            .call(
                &app.admin,
                Method::PATCH,
                &format!("/api/v1/accounts/{}", app.bob.id),
                Some(json!({"password": TAKEN_OVER, "justification": "bob forgot it"})),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{reset}");
        let reset_id = reset["id"].as_str().unwrap();
        app.approve(&app.carol, reset_id).await;
        let (status, done) = app.post(&app.admin, &format!("/api/v1/requests/{reset_id}/complete"), json!({})).await;
        assert_eq!(done["status"], "completed", "{status} {done}");
        // bob's own token was revoked with the reset; he signs in with what admin set.
        let (bob, status, _) = Session::sign_in_with(&app, "bob", TAKEN_OVER).await;
        assert_eq!(status, StatusCode::OK);
        let (_, request) = app.update_app(&app.alice, &target, "2.0").await;
        let id = request["id"].as_str().unwrap();
        let (status, refused) = bob.call(Method::POST, &format!("/api/v1/requests/{id}/approve"), json!({})).await;
        assert_problem(status, &refused, 403, "password_change_required");
        // The web admin center sends him to choose a password first.
        let web =
            reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let signed_in = app.web_sign_in(&web, "bob", TAKEN_OVER).await;
        assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
        let page = web.get(format!("{}/requests/{id}", app.base)).send().await.unwrap();
        assert_eq!(page.headers()["location"], "/account/password", "{:?}", page.status());
        let choose = web.get(format!("{}/account/password", app.base)).send().await.unwrap();
        assert_eq!(choose.status(), StatusCode::OK);
        assert!(choose.text().await.unwrap().contains("Your password was set by someone else"));
    })
    .await;
}

backend_tests!(r16_quorum_counts_people_not_accounts);
/// Two approvals are required. dave approves; frank, whose password dave set when he made him an
/// approver, cannot be the second.
async fn r16_quorum_counts_people_not_accounts(backend: TestBackend) {
    with_app(backend, Setup::only(&[(ProfileType::App, 2, Completion::Requester)]), |app| async move {
        let target = app.create_app("Payroll").await;
        let (status, frank) = app
            .post(&app.dave, "/api/v1/accounts", json!({"username": "frank", "displayName": "Frank", "kind": "human", "password": TAKEN_OVER}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{frank}");
        let frank_id = frank["id"].as_str().unwrap();
        let (frank_session, _, _) = Session::sign_in_with(&app, "frank", TAKEN_OVER).await;
        frank_session.choose_password(TAKEN_OVER, CHOSEN).await;
        // frank joins the approver group: an R9 change, approved by two independent approvers.
        let members = json!({"members": [app.bob.id, app.carol.id, app.dave.id, app.svc.id, frank_id], "justification": "new approver"});
        let (status, join) = app.put(&app.admin, &format!("/api/v1/groups/{}/members", app.approvers_group), members).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{join}");
        let join_id = join["id"].as_str().unwrap();
        app.approve(&app.bob, join_id).await;
        app.approve(&app.carol, join_id).await;
        let (_, joined) = app.post(&app.admin, &format!("/api/v1/requests/{join_id}/complete"), json!({})).await;
        assert_eq!(joined["status"], "completed", "{joined}");

        let (_, request) = app.update_app(&app.alice, &target, "2.0").await;
        let id = request["id"].as_str().unwrap();
        let counted = app.approve(&app.dave, id).await;
        assert_eq!(counted["status"], "needsApproval");
        let (status, refused) = frank_session.call(Method::POST, &format!("/api/v1/requests/{id}/approve"), json!({})).await;
        assert_problem(status, &refused, 403, "not_independent");
        assert!(refused["detail"].as_str().unwrap().contains("already counted"), "{refused}");
        let approved = app.approve(&app.carol, id).await;
        assert_eq!(approved["status"], "approved", "an independent second approver completes the quorum");
    })
    .await;
}

backend_tests!(r16_the_seeded_tenant_is_made_of_independent_people);
/// First start and the demo set passwords as the system, not as an account: nobody controls
/// anybody, so the two-person flow works from the first minute.
async fn r16_the_seeded_tenant_is_made_of_independent_people(backend: TestBackend) {
    with_app(backend, Setup::protected(), |app| async move {
        let everyone = [&app.admin, &app.alice, &app.bob, &app.carol, &app.dave, &app.svc];
        let ids: Vec<&str> = everyone.iter().map(|u| u.id.as_str()).collect();
        let control = app.store.control_graph(&ids, START).await.unwrap();
        for id in &ids {
            assert_eq!(control.control_set(id).len(), 1, "{id} is controlled by nobody else");
        }
    })
    .await;
}

backend_tests!(r16_control_recorded_at_submission_cannot_be_shed_before_the_decision);
/// dave makes a service account, submits as it under a policy that applies on approval, then has
/// it revoke its only token: no live credential of it is dave's any more, but the control it had
/// when it submitted was recorded with the request.
async fn r16_control_recorded_at_submission_cannot_be_shed_before_the_decision(backend: TestBackend) {
    with_app(backend, Setup::only(&[(ProfileType::App, 1, Completion::Automatic)]), |app| async move {
        let target = app.create_app("Payroll").await;
        let (_, created) = app
            .post(
                &app.dave,
                "/api/v1/accounts",
                json!({"username": "pipeline", "displayName": "Pipeline", "kind": "service"}),
            )
            .await;
        let pipeline = User {
            id: created["id"].as_str().unwrap().to_owned(),
            token: created["token"].as_str().unwrap().to_owned(),
        };
        let members = json!({"members": [app.alice.id, app.dave.id, app.svc.id, pipeline.id]});
        let (status, _) = app.put(&app.dave, &format!("/api/v1/groups/{}/members", app.operators_group), members).await;
        assert_eq!(status, StatusCode::OK);
        let (status, request) = app.update_app(&pipeline, &target, "evil").await;
        assert_eq!(status, StatusCode::ACCEPTED, "{request}");
        let id = request["id"].as_str().unwrap();
        let (_, tokens) = app.get(&pipeline, "/api/v1/tokens").await;
        let token_id = tokens["value"][0]["id"].as_str().unwrap();
        let (status, _) = app.call(&pipeline, Method::DELETE, &format!("/api/v1/tokens/{token_id}"), None).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let (status, refused) = app.post(&app.dave, &format!("/api/v1/requests/{id}/approve"), json!({})).await;
        assert_problem(status, &refused, 403, "not_independent");
        assert!(
            refused["detail"].as_str().unwrap().contains("dave controlled pipeline when pipeline submitted it"),
            "{refused}"
        );
        let (_, unchanged) = app.get(&app.admin, &format!("/api/v1/resources/app/{target}")).await;
        assert_ne!(unchanged["document"]["version"], "evil", "nothing was applied");
    })
    .await;
}
