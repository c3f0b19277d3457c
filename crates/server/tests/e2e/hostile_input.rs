//! Issue 15, findings 1 and 10, as the attacks: a document nested too deep, a row nobody can
//! read, and NUL in text. Each is refused with `input_limit` (or skipped), and no list of any
//! user ever answers 500 because of it.

use crate::harness::*;
use reqwest::redirect::Policy;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// A JSON object nested `levels` deep, as text (`{"a":{"a":…{}…}}`).
fn nested_text(levels: usize) -> String {
    format!("{}{{}}{}", "{\"a\":".repeat(levels - 1), "}".repeat(levels - 1))
}

fn nested(levels: usize) -> Value {
    serde_json::from_str(&nested_text(levels)).unwrap()
}

/// A signed-in browser: its client and the session's CSRF token (from a form on `/account`).
async fn browser(app: &TestApp, username: &str) -> (reqwest::Client, String) {
    let client = reqwest::Client::builder().cookie_store(true).redirect(Policy::none()).build().unwrap();
    let signed_in = app.web_sign_in(&client, username, PASSWORD).await;
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
    let page = client.get(format!("{}/account", app.base)).send().await.unwrap().text().await.unwrap();
    let field = r#"name="csrf" value=""#;
    let start = page.find(field).map(|at| at + field.len()).expect("a page with a form");
    let csrf = page[start..].split('"').next().unwrap_or_default().to_owned();
    (client, csrf)
}

/// Every request list of every user answers 200, on the API, the web pages and Graph.
async fn every_list_answers(app: &TestApp) {
    for user in [&app.admin, &app.alice, &app.bob, &app.carol, &app.dave, &app.svc] {
        for view in ["mine", "received", "all"] {
            let (status, body) = app.get(user, &format!("/api/v1/requests?view={view}")).await;
            assert_eq!(status, StatusCode::OK, "{view}: {body}");
        }
        let (status, body) = app.get(user, "/beta/deviceManagement/operationApprovalRequests").await;
        assert_eq!(status, StatusCode::OK, "Graph: {body}");
    }
    for username in ["alice", "bob"] {
        let (client, _) = browser(app, username).await;
        for tab in ["mine", "received", "all"] {
            let page = client.get(format!("{}/requests?tab={tab}", app.base)).send().await.unwrap();
            assert_eq!(page.status(), StatusCode::OK, "{username}'s /requests?tab={tab}");
        }
        let home = client.get(format!("{}/", app.base)).send().await.unwrap();
        assert_eq!(home.status(), StatusCode::OK, "{username}'s home page");
    }
}

fn assert_limit(status: StatusCode, body: &Value, limit: &str) {
    assert_problem(status, body, 400, "input_limit");
    assert_eq!(body["limit"], limit, "{body}");
}

backend_tests!(finding_1_a_document_nested_127_deep_is_refused_on_every_path);
async fn finding_1_a_document_nested_127_deep_is_refused_on_every_path(backend: TestBackend) {
    with_app(backend, Setup::protected(), |app| async move {
        let id = app.create_app("Zoom").await;
        let before = app.audit_len().await;

        let (status, body) = app
            .put(
                &app.alice,
                &format!("/api/v1/resources/app/{id}"),
                json!({"name": "Zoom", "document": nested(127), "justification": "deep"}),
            )
            .await;
        assert_limit(status, &body, "depth");
        let (status, body) = app
            .post(
                &app.alice,
                "/api/v1/resources/app",
                json!({"name": "Deep", "document": {"settings": nested(40)}, "justification": "deep"}),
            )
            .await;
        assert_limit(status, &body, "depth");
        let (status, body) = app
            .put(
                &app.alice,
                &format!("/api/v1/resources/app/{id}"),
                json!({"name": "Zoom", "document": {"settings": nested(20)}, "justification": "within the limit"}),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "a document within the limit is held as usual: {body}");
        let open = body["id"].as_str().unwrap().to_owned();
        let (status, body) = app.post(&app.alice, &format!("/api/v1/requests/{open}/cancel"), json!({})).await;
        assert_eq!(status, StatusCode::OK, "{body}");

        // The web editor: review and save refuse it, and the form comes back with what was typed.
        let (client, csrf) = browser(&app, "alice").await;
        let held = app.audit_len().await;
        let deep = nested_text(127);
        for step in ["edit", "save"] {
            let response = client
                .post(format!("{}/resources/app/{id}/{step}", app.base))
                .form(&[
                    ("csrf", csrf.as_str()),
                    ("name", "Zoom"),
                    ("description", ""),
                    ("document", deep.as_str()),
                    ("justification", "deep"),
                ])
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY, "{step}");
            let page = response.text().await.unwrap();
            assert!(page.contains("input limit (depth)"), "{step}: {page}");
            assert!(page.contains(&deep.replace('"', "&quot;")), "{step}: the typed document is shown again");
        }

        // Graph bodies pass the same limit.
        let (status, body) = app
            .post(
                &app.alice,
                "/beta/deviceManagement/operationApprovalPolicies",
                json!({"displayName": "Deep", "policyType": "apps", "approverGroupIds": [], "description": nested(127)}),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(body["error"]["innerError"]["code"], "input_limit", "{body}");

        assert_eq!(app.audit_len().await, held, "nothing refused was written");
        assert!(held > before);
        every_list_answers(&app).await;
    })
    .await;
}

backend_tests!(bodies_past_the_other_limits_are_refused_with_the_limit_named);
async fn bodies_past_the_other_limits_are_refused_with_the_limit_named(backend: TestBackend) {
    with_app(backend, Setup::protected(), |app| async move {
        let id = app.create_app("Zoom").await;
        let put = format!("/api/v1/resources/app/{id}");
        let cases = [
            (json!({"name": "Zoom", "document": {"k\u{1b}[2J": 1}, "justification": "j"}), "character"),
            (json!({"name": "Zoom", "document": {"k".repeat(300): 1}, "justification": "j"}), "keyLength"),
            (json!({"name": "Zoom", "document": {"list": vec![0; 10_001]}, "justification": "j"}), "items"),
        ];
        for (body, limit) in cases {
            let (status, answer) = app.put(&app.alice, &put, body).await;
            assert_limit(status, &answer, limit);
        }
        let (_, current) = app.get(&app.alice, &put).await;
        assert_eq!(current["version"], 1);
    })
    .await;
}

backend_tests!(finding_10_nul_in_text_is_refused_with_a_4xx);
async fn finding_10_nul_in_text_is_refused_with_a_4xx(backend: TestBackend) {
    with_app(backend, Setup::protected(), |app| async move {
        let id = app.create_app("Zoom").await;
        let put = format!("/api/v1/resources/app/{id}");
        let before = app.audit_len().await;
        let (status, body) =
            app.put(&app.alice, &put, json!({"name": "Zoom", "document": {}, "justification": "fix\u{0}"})).await;
        assert_limit(status, &body, "character");
        let (status, body) = app
            .put(&app.alice, &put, json!({"name": "Zoom", "document": {"v": "a\u{0}b"}, "justification": "j"}))
            .await;
        assert_limit(status, &body, "character");
        let (status, body) = app
            .call(
                &app.alice,
                Method::PATCH,
                &format!("/api/v1/accounts/{}", app.alice.id),
                Some(json!({"displayName": "al\u{0}ice"})),
            )
            .await;
        assert_limit(status, &body, "character");
        let (status, body) = app.get(&app.admin, "/api/v1/audit?actor=a%00b").await;
        assert_limit(status, &body, "character");
        let (status, body) = app.get(&app.alice, "/api/v1/requests?status=%00").await;
        assert_limit(status, &body, "character");
        assert_eq!(app.audit_len().await, before);

        // The web's forms carry text outside JSON: the same rule holds there.
        let (status, open) = app.update_app(&app.alice, &id, "2").await;
        assert_eq!(status, StatusCode::ACCEPTED, "{open}");
        let open = open["id"].as_str().unwrap().to_owned();
        let (client, csrf) = browser(&app, "bob").await;
        let response = client
            .post(format!("{}/requests/{open}/decide", app.base))
            .form(&[("csrf", csrf.as_str()), ("decision", "approve"), ("notes", "ok\u{0}")])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let page = response.text().await.unwrap();
        assert!(page.contains("input limit (character)"), "{page}");
        let (client, csrf) = browser(&app, "alice").await;
        // A page's filter reaches the database too: PostgreSQL's refusal is the caller's 4xx.
        let page = client.get(format!("{}/audit?actor=a%00b", app.base)).send().await.unwrap();
        assert!(!page.status().is_server_error(), "{}", page.status());
        let response = client
            .post(format!("{}/resources/app/{id}/delete", app.base))
            .form(&[("csrf", csrf.as_str()), ("justification", "gone\u{0}")])
            .send()
            .await
            .unwrap();
        assert!(response.status().is_client_error(), "{}", response.status());
        let (_, request) = app.get(&app.alice, &format!("/api/v1/requests/{open}")).await;
        assert_eq!(request["status"], "needsApproval", "{request}");
        assert!(request["approvals"].as_array().unwrap().is_empty());
    })
    .await;
}

/// Writes `column` of request `id` directly, as someone with the database could.
async fn corrupt(app: &TestApp, id: &str, column: &str, value: &str) {
    use sqlx::{Connection, Executor};
    let mut conn = sqlx::AnyConnection::connect(&app.database_url).await.unwrap();
    let sql = format!("UPDATE requests SET {column} = '{}' WHERE id = '{id}'", value.replace('\'', "''"));
    let done = conn.execute(sql.as_str()).await.unwrap();
    assert_eq!(done.rows_affected(), 1);
}

backend_tests!(a_request_nobody_can_read_is_left_out_of_lists_and_sweeps_and_expires_from_its_columns);
async fn a_request_nobody_can_read_is_left_out_of_lists_and_sweeps_and_expires_from_its_columns(backend: TestBackend) {
    with_app(backend, Setup::protected(), |app| async move {
        let zoom = app.create_app("Zoom").await;
        let teams = app.create_app("Teams").await;
        let slack = app.create_app("Slack").await;
        let mut requests = Vec::new();
        for object in [&zoom, &teams, &slack] {
            let (status, body) = app.update_app(&app.alice, object, "2").await;
            assert_eq!(status, StatusCode::ACCEPTED, "{body}");
            requests.push(body["id"].as_str().unwrap().to_owned());
        }
        let [deep, garbled, readable] = [&requests[0], &requests[1], &requests[2]];
        // Finding 1's row: a state nested past what the JSON reader reads back.
        corrupt(&app, deep, "after_state", &format!("{{\"name\":\"Zoom\",\"document\":{}}}", nested_text(130))).await;
        corrupt(&app, garbled, "dependencies", "not json").await;
        every_list_answers(&app).await;
        let (_, mine) = app.get(&app.alice, "/api/v1/requests?view=mine").await;
        let listed: Vec<&str> = mine["value"].as_array().unwrap().iter().filter_map(|r| r["id"].as_str()).collect();
        assert!(listed.contains(&readable.as_str()) && !listed.contains(&deep.as_str()), "{listed:?}");

        let (status, body) = app.get(&app.alice, &format!("/api/v1/requests/{deep}")).await;
        assert_problem(status, &body, 409, "request_unreadable");
        let (status, body) = app.post(&app.bob, &format!("/api/v1/requests/{deep}/approve"), json!({})).await;
        assert_problem(status, &body, 409, "request_unreadable");
        let (client, _) = browser(&app, "bob").await;
        let page = client.get(format!("{}/requests/{deep}", app.base)).send().await.unwrap();
        assert_eq!(page.status(), StatusCode::CONFLICT);

        // Past their time, the sweep expires every request, the unreadable one from its columns,
        // so R4 lets the object be changed again.
        app.clock.advance(31 * DAY);
        every_list_answers(&app).await;
        let (_, expired) = app.get(&app.alice, &format!("/api/v1/requests/{readable}")).await;
        assert_eq!(expired["status"], "expired", "{expired}");
        for (unreadable, object) in [(deep, &zoom), (garbled, &teams)] {
            let (_, audit) = app.get(&app.admin, &format!("/api/v1/audit?action=expired&target={unreadable}")).await;
            let entries = audit["value"].as_array().unwrap();
            assert_eq!(entries.len(), 1, "an unreadable request's expiry is audited: {audit}");
            assert_eq!(entries[0]["details"]["objectId"], object.as_str(), "naming its object: {audit}");
            assert!(entries[0]["details"]["unreadable"].as_str().is_some_and(|r| !r.is_empty()), "{audit}");
        }
        let (status, body) = app.update_app(&app.alice, &zoom, "3").await;
        assert_eq!(status, StatusCode::ACCEPTED, "the object is no longer locked: {body}");
    })
    .await;
}

backend_tests!(an_object_nobody_can_read_is_left_out_of_its_list);
async fn an_object_nobody_can_read_is_left_out_of_its_list(backend: TestBackend) {
    with_app(backend, Setup::protected(), |app| async move {
        let zoom = app.create_app("Zoom").await;
        let teams = app.create_app("Teams").await;
        {
            use sqlx::{Connection, Executor};
            let mut conn = sqlx::AnyConnection::connect(&app.database_url).await.unwrap();
            let sql = format!("UPDATE resources SET document = '{}' WHERE id = '{zoom}'", nested_text(130));
            conn.execute(sql.as_str()).await.unwrap();
        }
        let (status, page) = app.get(&app.alice, "/api/v1/resources/app?limit=1").await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let mut listed: Vec<String> = page["value"].as_array().unwrap().iter().map(|r| r["id"].to_string()).collect();
        let mut cursor = page["nextCursor"].as_str().map(str::to_owned);
        while let Some(after) = cursor {
            let (status, page) = app.get(&app.alice, &format!("/api/v1/resources/app?limit=1&cursor={after}")).await;
            assert_eq!(status, StatusCode::OK, "{page}");
            listed.extend(page["value"].as_array().unwrap().iter().map(|r| r["id"].to_string()));
            cursor = page["nextCursor"].as_str().map(str::to_owned);
        }
        assert!(listed.contains(&format!("\"{teams}\"")), "paging leads past the unreadable row: {listed:?}");
        assert!(!listed.contains(&format!("\"{zoom}\"")), "{listed:?}");
        let (client, _) = browser(&app, "alice").await;
        let page = client.get(format!("{}/resources/app", app.base)).send().await.unwrap();
        assert_eq!(page.status(), StatusCode::OK);
    })
    .await;
}
