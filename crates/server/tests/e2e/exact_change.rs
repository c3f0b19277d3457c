//! R12, exactly what was approved: each test is a red-team finding, played over HTTP. What an
//! approver reads (the API's `diff` and `diffText`, the digest) must show every change, never
//! two changes alike, and completion must apply the change that was approved or nothing.

use crate::harness::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

impl TestApp {
    async fn put_document(&self, user: &User, app: &str, document: Value) -> (StatusCode, Value) {
        self.put(
            user,
            &format!("/api/v1/resources/app/{app}"),
            json!({"name": "Firewall", "document": document, "justification": "rules"}),
        )
        .await
    }

    /// Protects apps from now on: one approval, the requester completes.
    async fn protect_apps(&self) {
        let (status, body) = self
            .post(
                &self.admin,
                "/api/v1/accessPolicies",
                // R12 is tested here, not R21: the approvers decide with tokens (new policies ask
                // for a passkey unless told otherwise).
                json!({"displayName": "apps", "profileType": "app", "approverGroupIds": [self.approvers_group],
                       "requiredApprovals": 1, "stepUp": "none", "justification": "protect apps"}),
            )
            .await;
        // A new policy is itself held (R9), decided by its proposed approvers.
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        let id = body["id"].as_str().unwrap();
        self.approve(&self.bob, id).await;
        let (status, done) = self.post(&self.admin, &format!("/api/v1/requests/{id}/complete"), json!({})).await;
        assert_eq!((status, done["status"].as_str()), (StatusCode::OK, Some("completed")), "{done}");
    }

    /// For each pair, an app with `before` as its document; then apps are protected, and alice
    /// proposes each `after`: the requests as an approver reads them.
    async fn held_changes(&self, changes: &[(Value, Value)]) -> Vec<Value> {
        let mut apps = Vec::new();
        for (before, _) in changes {
            let app_id = self.create_app("Firewall").await;
            let (status, body) = self.put_document(&self.admin, &app_id, before.clone()).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            apps.push(app_id);
        }
        self.protect_apps().await;
        let mut requests = Vec::new();
        for (app_id, (_, after)) in apps.iter().zip(changes) {
            let (status, request) = self.put_document(&self.alice, app_id, after.clone()).await;
            assert_eq!(status, StatusCode::ACCEPTED, "{request}");
            let id = request["id"].as_str().unwrap();
            let (status, request) = self.get(&self.bob, &format!("/api/v1/requests/{id}")).await;
            assert_eq!(status, StatusCode::OK, "{request}");
            requests.push(request);
        }
        requests
    }

    async fn held_change(&self, before: Value, after: Value) -> Value {
        self.held_changes(&[(before, after)]).await.remove(0)
    }
}

fn diff_lines(request: &Value) -> Vec<String> {
    request["diffText"].as_str().unwrap().lines().map(str::to_owned).collect()
}

backend_tests!(r12_a_reordered_rule_list_is_shown_and_applied_as_approved);
async fn r12_a_reordered_rule_list_is_shown_and_applied_as_approved(backend: TestBackend) {
    with_app(backend, Setup::unprotected(), |app| async move {
        let deny_first = json!({"rules": [{"action": "deny", "port": 22}, {"action": "allow", "port": 22}]});
        let allow_first = json!({"rules": [{"action": "allow", "port": 22}, {"action": "deny", "port": 22}]});
        let request = app.held_change(deny_first, allow_first.clone()).await;
        assert_eq!(
            diff_lines(&request),
            [
                r#"- /document/rules/0: {"action": "deny", "port": 22}"#,
                r#"+ /document/rules/1: {"action": "deny", "port": 22}"#
            ],
            "the deny rule moves from first to last: {request}"
        );
        assert_eq!(request["diff"][0]["path"], "/document/rules/0");
        let id = request["id"].as_str().unwrap();
        app.approve(&app.bob, id).await;
        let (status, done) = app.post(&app.alice, &format!("/api/v1/requests/{id}/complete"), json!({})).await;
        assert_eq!((status, done["status"].as_str()), (StatusCode::OK, Some("completed")), "{done}");
        let (_, object) =
            app.get(&app.admin, &format!("/api/v1/resources/app/{}", done["objectId"].as_str().unwrap())).await;
        assert_eq!(object["document"], allow_first, "applied in the order approved");
    })
    .await;
}

backend_tests!(r12_a_duplicated_element_is_a_change);
async fn r12_a_duplicated_element_is_a_change(backend: TestBackend) {
    with_app(backend, Setup::unprotected(), |app| async move {
        let request = app.held_change(json!({"ports": [443]}), json!({"ports": [443, 443]})).await;
        assert_eq!(diff_lines(&request), ["+ /document/ports/1: 443"], "{request}");
    })
    .await;
}

backend_tests!(r12_dotted_and_nested_keys_never_render_alike);
async fn r12_dotted_and_nested_keys_never_render_alike(backend: TestBackend) {
    with_app(backend, Setup::unprotected(), |app| async move {
        let requests =
            app.held_changes(&[(json!({}), json!({"a.b": 0})), (json!({"a": {}}), json!({"a": {"b": 0}}))]).await;
        assert_eq!(diff_lines(&requests[0]), ["+ /document/a.b: 0"]);
        assert_eq!(diff_lines(&requests[1]), ["+ /document/a/b: 0"]);
        assert_ne!(requests[0]["changeDigest"], requests[1]["changeDigest"]);
    })
    .await;
}

backend_tests!(r12_keys_and_values_cannot_forge_diff_lines);
async fn r12_keys_and_values_cannot_forge_diff_lines(backend: TestBackend) {
    with_app(backend, Setup::unprotected(), |app| async move {
        // The attack: a key that ends the real line and draws a harmless one, and a value that
        // moves the terminal's cursor up and erases the line above.
        let forged_key = "x\n~ /document/firewall: \"on\" → \"on\"";
        let forged_value = "off\u{1b}[1A\u{1b}[2K\r~ /document/firewall: \"on\" → \"on\"";
        let request = app.held_change(json!({"firewall": "on"}), json!({"firewall": forged_value, "x": true})).await;
        let id = request["id"].as_str().unwrap();
        // A key with a control character is refused as input (issue 15); someone who can write
        // the database plants it instead, and the diff must still show it as one escaped line.
        let (status, refused) =
            app.put_document(&app.alice, request["objectId"].as_str().unwrap(), json!({forged_key: true})).await;
        assert_eq!((status.as_u16(), refused["code"].as_str()), (400, Some("input_limit")), "{refused}");
        {
            use sqlx::{Connection, Executor};
            let mut conn = sqlx::AnyConnection::connect(&app.database_url).await.unwrap();
            let mut after = request["after"].clone();
            after["document"] = json!({"firewall": forged_value, forged_key: true});
            let sql = format!(
                "UPDATE requests SET after_state = '{}' WHERE id = '{id}'",
                after.to_string().replace('\'', "''")
            );
            conn.execute(sql.as_str()).await.unwrap();
        }
        let (_, request) = app.get(&app.bob, &format!("/api/v1/requests/{id}")).await;
        let text = request["diffText"].as_str().unwrap();
        assert_eq!(text.lines().count(), 2, "one line per change: {text}");
        assert!(!text.chars().any(|c| c != '\n' && countersign_core::text::is_hidden(c)), "{text:?}");
        assert!(text.contains(r#"~ /document/firewall: "on" → "off\u{1b}[1A\u{1b}[2K\u{d}~ "#), "{text}");
        assert!(text.contains(r#"+ "/document/x\u{a}~0 ~1document~1firewall: \"on\" → \"on\"": true"#), "{text}");
        // The structured diff keeps the exact key, as an RFC 6901 pointer.
        let pointer = format!("/document/{}", forged_key.replace('~', "~0").replace('/', "~1"));
        assert!(request["diff"].as_array().unwrap().iter().any(|e| e["path"] == pointer), "{request}");
    })
    .await;
}

backend_tests!(r12_set_valued_fields_are_sets_and_ids_show_their_names);
async fn r12_set_valued_fields_are_sets_and_ids_show_their_names(backend: TestBackend) {
    with_app(backend, Setup::unprotected(), |app| async move {
        let app_id = app.create_app("Zoom").await;
        let path = format!("/api/v1/resources/app/{app_id}/assign");
        let assign =
            |groups: Vec<String>| app.post(&app.alice, &path, json!({"groupIds": groups, "justification": "deploy"}));
        let (ops, approvers, empty) =
            (app.operators_group.clone(), app.approvers_group.clone(), app.empty_group.clone());
        let (status, assigned) = assign(vec![approvers.clone(), ops.clone(), approvers.clone()]).await;
        assert_eq!(status, StatusCode::OK, "{assigned}");
        let mut set = vec![ops.clone(), approvers.clone()];
        set.sort();
        assert_eq!(assigned["assignedGroupIds"], json!(set), "stored as a set: sorted, once each");
        app.protect_apps().await;
        let (status, same) = assign(set.iter().rev().cloned().collect()).await;
        assert_eq!(status, StatusCode::OK, "the same set in another order changes nothing, so nothing is held: {same}");
        let (status, request) = assign(vec![empty.clone(), ops.clone(), approvers.clone()]).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{request}");
        let mut grown = [ops, approvers, empty.clone()];
        grown.sort();
        let at = grown.iter().position(|g| *g == empty).unwrap();
        assert_eq!(
            diff_lines(&request),
            [format!(r#"+ /assignedGroupIds/{at}: "{empty}" ("Empty")"#)],
            "one addition, the group named"
        );
    })
    .await;
}

backend_tests!(r12_an_approval_of_another_digest_is_refused_and_the_digest_is_recorded);
async fn r12_an_approval_of_another_digest_is_refused_and_the_digest_is_recorded(backend: TestBackend) {
    with_app(backend, Setup::protected(), |app| async move {
        let app_id = app.create_app("Zoom").await;
        let (status, request) = app.update_app(&app.alice, &app_id, "2.0").await;
        assert_eq!(status, StatusCode::ACCEPTED, "{request}");
        let id = request["id"].as_str().unwrap();
        let digest = request["changeDigest"].as_str().unwrap().to_owned();
        assert!(digest.len() == 64 && digest.chars().all(|c| c.is_ascii_hexdigit()), "{digest}");
        let (_, shown) = app.get(&app.bob, &format!("/api/v1/requests/{id}")).await;
        assert_eq!(shown["changeDigest"], digest, "every read shows the same digest");

        let other = "0".repeat(64);
        let (status, refused) =
            app.post(&app.bob, &format!("/api/v1/requests/{id}/approve"), json!({"changeDigest": other})).await;
        assert_problem(status, &refused, 409, "change_digest_mismatch");
        let (_, unchanged) = app.get(&app.bob, &format!("/api/v1/requests/{id}")).await;
        assert_eq!(unchanged["approvals"], json!([]), "nothing was recorded");

        let (status, approved) =
            app.post(&app.bob, &format!("/api/v1/requests/{id}/approve"), json!({"changeDigest": digest})).await;
        assert_eq!((status, approved["status"].as_str()), (StatusCode::OK, Some("approved")), "{approved}");
        assert_eq!(approved["approvals"][0]["changeDigest"], digest);
        let (_, entries) = app.get(&app.admin, &format!("/api/v1/audit?action=approved&target={id}")).await;
        assert_eq!(entries["value"][0]["details"]["changeDigest"], digest, "{entries}");
    })
    .await;
}

backend_tests!(r12_a_change_altered_in_the_database_after_approval_is_not_applied);
async fn r12_a_change_altered_in_the_database_after_approval_is_not_applied(backend: TestBackend) {
    with_app(backend, Setup::protected(), |app| async move {
        let app_id = app.create_app("Zoom").await;
        let (status, request) = app.update_app(&app.alice, &app_id, "2.0").await;
        assert_eq!(status, StatusCode::ACCEPTED, "{request}");
        let id = request["id"].as_str().unwrap().to_owned();
        app.approve(&app.bob, &id).await;
        // The attack: someone with write access to the database swaps the approved change for
        // another before the requester completes it.
        {
            use sqlx::{Connection, Executor};
            let mut conn = sqlx::AnyConnection::connect(&app.database_url).await.unwrap();
            let swapped = request["after"].to_string().replace("2.0", "6.6.6-backdoor");
            let sql = format!("UPDATE requests SET after_state = '{}' WHERE id = '{id}'", swapped.replace('\'', "''"));
            conn.execute(sql.as_str()).await.unwrap();
        }
        let (status, done) = app.post(&app.alice, &format!("/api/v1/requests/{id}/complete"), json!({})).await;
        assert_eq!(status, StatusCode::OK, "{done}");
        assert_eq!(done["status"], "failed", "{done}");
        let reason = done["failureReason"].as_str().unwrap();
        assert!(reason.contains("no longer matches what") && reason.contains("approved"), "{reason}");
        let (_, object) = app.get(&app.admin, &format!("/api/v1/resources/app/{app_id}")).await;
        assert_eq!(object["document"]["version"], "1.0", "nothing was applied");
        assert_eq!(app.audit_actions("applied", &app_id).await, 1, "only the create");
    })
    .await;
}

backend_tests!(r12_graph_shows_the_digest_and_refuses_a_decision_on_another);
async fn r12_graph_shows_the_digest_and_refuses_a_decision_on_another(backend: TestBackend) {
    with_app(backend, Setup::protected(), |app| async move {
        let app_id = app.create_app("Zoom").await;
        let (_, request) = app.update_app(&app.alice, &app_id, "2.0").await;
        let id = request["id"].as_str().unwrap();
        let path = format!("/beta/deviceManagement/operationApprovalRequests/{id}");
        let (status, graph) = app.get(&app.bob, &path).await;
        assert_eq!(status, StatusCode::OK, "{graph}");
        assert_eq!(graph["countersign_changeDigest"], request["changeDigest"], "{graph}");
        let (status, refused) = app
            .call(
                &app.bob,
                Method::POST,
                &format!("{path}/approve"),
                Some(json!({"justification": "ok", "countersign_changeDigest": "f".repeat(64)})),
            )
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "{refused}");
        let (status, approved) = app
            .call(
                &app.bob,
                Method::POST,
                &format!("{path}/approve"),
                Some(json!({"justification": "ok", "countersign_changeDigest": request["changeDigest"]})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{approved}");
    })
    .await;
}
