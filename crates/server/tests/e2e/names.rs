//! R20: who is who. Display names are unique under confusable matching, refuse characters a
//! screen hides, and every surface names an actor by display name and username.

use crate::harness::*;
use reqwest::redirect::Policy;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

async fn create_person(app: &TestApp, username: &str, display_name: &str) -> (StatusCode, Value) {
    app.post(
        &app.admin,
        "/api/v1/accounts",
        json!({"username": username, "displayName": display_name, "kind": "human", "password": PASSWORD}),
    )
    .await
}

async fn rename(app: &TestApp, id: &str, name: &str) -> (StatusCode, Value) {
    let body = json!({"displayName": name, "justification": "new name"});
    app.call(&app.admin, Method::PATCH, &format!("/api/v1/accounts/{id}"), Some(body)).await
}

fn detail(body: &Value) -> &str {
    body["detail"].as_str().unwrap_or_default()
}

backend_tests!(r20_a_look_alike_display_name_is_refused_at_create_and_at_update);
async fn r20_a_look_alike_display_name_is_refused_at_create_and_at_update(backend: TestBackend) {
    with_app(backend, Setup::protected(), |app| async move {
        let (s, erin) = create_person(&app, "erin", "Erin Example").await;
        assert_eq!(s, StatusCode::CREATED, "{erin}");
        let before = app.audit_len().await;

        // The Cyrillic "Е" (U+0415) looks like the Latin "E".
        let (s, body) = create_person(&app, "mallory", "\u{415}rin Example").await;
        assert_problem(s, &body, 409, "display_name_taken");
        assert!(detail(&body).contains("display name of account 'erin'"), "names whom it is too like: {body}");
        // A display name may not pose as another account's username either (Cyrillic "о").
        let (s, body) = create_person(&app, "mallory", "\u{435}rin").await;
        assert_problem(s, &body, 409, "display_name_taken");
        assert!(detail(&body).contains("username of account 'erin'"), "{body}");
        // Case, spacing and "rn" for "m" make no difference.
        for alike in ["ERIN  EXAMPLE", "Erin Exarnple"] {
            let (s, body) = create_person(&app, "mallory", alike).await;
            assert_problem(s, &body, 409, "display_name_taken");
        }
        // Characters a screen does not show are refused outright.
        for hidden in ["Mallory\u{202e}yrollaM", "Mal\u{200d}lory", "Mallory\u{a0}Q"] {
            let (s, body) = create_person(&app, "mallory", hidden).await;
            assert_problem(s, &body, 400, "validation_failed");
            assert!(!detail(&body).chars().any(countersign_core::text::is_hidden), "escaped: {body}");
        }
        assert_eq!(app.audit_len().await, before, "nothing was created");

        let (s, mallory) = create_person(&app, "mallory", "Mallory").await;
        assert_eq!(s, StatusCode::CREATED, "{mallory}");
        let path = format!("/api/v1/accounts/{}", mallory["id"].as_str().unwrap());
        // mallory is in no approver group, so her changes apply at once: refused at once.
        let (s, body) =
            app.call(&app.admin, Method::PATCH, &path, Some(json!({"displayName": "\u{415}rin Example"}))).await;
        assert_problem(s, &body, 409, "display_name_taken");
        let (s, body) =
            app.call(&app.admin, Method::PATCH, &path, Some(json!({"displayName": "Mallory\u{202e}"}))).await;
        assert_problem(s, &body, 400, "validation_failed");
        let (_, account) = app.get(&app.admin, &path).await;
        assert_eq!((account["displayName"].as_str(), account["displayNameFlag"].is_null()), (Some("Mallory"), true));
        // Her own name in another case is hers to take.
        let (s, body) = app.call(&app.admin, Method::PATCH, &path, Some(json!({"displayName": "MALLORY"}))).await;
        assert_eq!(s, StatusCode::OK, "{body}");
    })
    .await;
}

backend_tests!(r20_two_held_renames_that_pass_at_submission_cannot_both_apply);
async fn r20_two_held_renames_that_pass_at_submission_cannot_both_apply(backend: TestBackend) {
    with_app(backend, Setup::protected(), |app| async move {
        // bob and carol are approvers: renaming either is held (R9). Each name is free when
        // proposed; they collide only with each other.
        let (s, first) = rename(&app, &app.bob.id, "Robert Example").await;
        assert_eq!(s, StatusCode::ACCEPTED, "{first}");
        let (s, second) = rename(&app, &app.carol.id, "R\u{43e}bert Example").await;
        assert_eq!(s, StatusCode::ACCEPTED, "the collision is not visible yet: {second}");
        let (first, second) = (first["id"].as_str().unwrap(), second["id"].as_str().unwrap());
        app.approve(&app.carol, first).await;
        app.approve(&app.dave, second).await;

        let (s, done) = app.post(&app.admin, &format!("/api/v1/requests/{first}/complete"), json!({})).await;
        assert_eq!((s, done["status"].as_str()), (StatusCode::OK, Some("completed")), "{done}");
        let (s, failed) = app.post(&app.admin, &format!("/api/v1/requests/{second}/complete"), json!({})).await;
        assert_eq!(s, StatusCode::OK, "a lost race is an outcome, not an error: {failed}");
        assert_eq!(failed["status"], "failed", "{failed}");
        let reason = failed["failureReason"].as_str().unwrap_or_default();
        assert!(reason.contains("display name of account 'bob'"), "{reason}");
        let (_, carol) = app.get(&app.admin, &format!("/api/v1/accounts/{}", app.carol.id)).await;
        assert_eq!(carol["displayName"], "carol", "nothing of the failed change was applied: {carol}");
        assert_eq!(app.audit_actions("failed", second).await, 1);

        // A rename whose name is taken by then is refused when proposed, not held.
        let (s, body) = rename(&app, &app.dave.id, "ROBERT EXAMPLE").await;
        assert_problem(s, &body, 409, "display_name_taken");
    })
    .await;
}

backend_tests!(r20_requests_approvals_and_the_audit_log_name_actors_by_username);
async fn r20_requests_approvals_and_the_audit_log_name_actors_by_username(backend: TestBackend) {
    with_app(backend, Setup::protected(), |app| async move {
        // alice takes a display name that is not her username.
        let alice = format!("/api/v1/accounts/{}", app.alice.id);
        let (s, body) = app.call(&app.admin, Method::PATCH, &alice, Some(json!({"displayName": "Alice Adams"}))).await;
        assert_eq!(s, StatusCode::OK, "{body}");
        let id = app.create_app("Zoom").await;
        let (s, held) = app.update_app(&app.alice, &id, "2").await;
        assert_eq!(s, StatusCode::ACCEPTED, "{held}");
        let request = held["id"].as_str().unwrap().to_owned();
        assert_eq!(held["requestedBy"]["username"], "alice", "{held}");
        assert_eq!(held["requestedBy"]["displayName"], "Alice Adams", "{held}");
        let decided = app.approve(&app.bob, &request).await;
        assert_eq!(decided["approvals"][0]["approver"]["username"], "bob", "{decided}");
        let (_, read) = app.get(&app.carol, &format!("/api/v1/requests/{request}")).await;
        assert_eq!(
            (read["requestedBy"]["username"].as_str(), read["approvals"][0]["approver"]["username"].as_str()),
            (Some("alice"), Some("bob")),
            "{read}"
        );
        let (_, listed) = app.get(&app.alice, "/api/v1/requests?view=mine").await;
        assert!(
            listed["value"].as_array().unwrap().iter().all(|r| r["requestedBy"]["username"] == "alice"),
            "{listed}"
        );

        let (_, audit) = app.get(&app.admin, &format!("/api/v1/audit?target={request}")).await;
        let entries = audit["value"].as_array().unwrap();
        let created = entries.iter().find(|e| e["action"] == "created").expect("the request's creation");
        assert_eq!(
            (created["actor"]["displayName"].as_str(), created["actor"]["username"].as_str()),
            (Some("Alice Adams"), Some("alice")),
            "{created}"
        );

        // The web admin center names the requester with her username too.
        let client = reqwest::Client::builder().cookie_store(true).redirect(Policy::none()).build().unwrap();
        let signed_in = app.web_sign_in(&client, "bob", PASSWORD).await;
        assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
        let page = client.get(format!("{}/requests/{request}", app.base)).send().await.unwrap().text().await.unwrap();
        assert!(page.contains("Alice Adams <span class=\"muted username\">(alice)</span>"), "{page}");
        assert!(page.contains("(bob)</span>"), "the approver too: {page}");
    })
    .await;
}
