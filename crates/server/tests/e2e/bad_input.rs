//! Bad input gets a clear problem+json with a stable code, and writes nothing.

use crate::harness::*;
use reqwest::{Method, StatusCode};
use serde_json::json;

async fn raw(app: &TestApp, method: Method, path: &str, body: &str) -> (StatusCode, serde_json::Value) {
    let response = app
        .http
        .request(method, format!("{}{path}", app.base))
        .bearer_auth(&app.alice.token)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let status = response.status();
    assert_eq!(response.headers()["content-type"], "application/problem+json", "{path}");
    (status, response.json().await.unwrap())
}

backend_tests!(bad_input_is_refused_with_a_stable_code_and_nothing_is_written);
async fn bad_input_is_refused_with_a_stable_code_and_nothing_is_written(backend: TestBackend) {
    with_app(backend, Setup::protected(), |app| async move {
        let id = app.create_app("Zoom").await;
        let other = app.create_app("Teams").await;
        let (_, open) = app.update_app(&app.alice, &other, "2").await;
        let open_id = open["id"].as_str().unwrap().to_owned();
        let before = app.audit_len().await;
        let put = format!("/api/v1/resources/app/{id}");
        let cases: Vec<(Method, String, String, u16, &str)> = vec![
            (Method::PUT, put.clone(), "{\"name\": \"x\", ".into(), 400, "malformed_json"),
            (Method::PUT, put.clone(), "not json".into(), 400, "malformed_json"),
            (
                Method::PUT,
                put.clone(),
                json!({"name": "x", "document": {}, "justification": "j", "sneaky": 1}).to_string(),
                400,
                "validation_failed",
            ),
            (
                Method::PUT,
                put.clone(),
                json!({"name": "x", "document": {}, "justification": "x".repeat(1025)}).to_string(),
                400,
                "justification_too_long",
            ),
            (
                Method::PUT,
                put.clone(),
                json!({"name": "x", "document": {}, "justification": "   "}).to_string(),
                400,
                "justification_required",
            ),
            (Method::PUT, put.clone(), json!({"name": "x", "document": {}}).to_string(), 400, "justification_required"),
            (
                Method::PUT,
                put.clone(),
                json!({"name": "", "document": {}, "justification": "j"}).to_string(),
                400,
                "validation_failed",
            ),
            (
                Method::PUT,
                put.clone(),
                json!({"name": "x", "document": [1], "justification": "j"}).to_string(),
                400,
                "validation_failed",
            ),
            (
                Method::PUT,
                put.clone(),
                json!({"name": "x", "document": {"big": "y".repeat(70 * 1024)}, "justification": "j"}).to_string(),
                413,
                "payload_too_large",
            ),
            (
                Method::POST,
                "/api/v1/resources/widget".into(),
                json!({"name": "x", "document": {}}).to_string(),
                404,
                "unknown_type",
            ),
            (
                Method::PUT,
                "/api/v1/resources/app/not-an-id".into(),
                json!({"name": "x", "document": {}, "justification": "j"}).to_string(),
                400,
                "invalid_id",
            ),
            (Method::GET, "/api/v1/requests/123".into(), String::new(), 400, "invalid_id"),
            (Method::GET, "/api/v1/requests?view=everything".into(), String::new(), 400, "validation_failed"),
            (Method::GET, "/api/v1/requests?colour=red".into(), String::new(), 400, "validation_failed"),
            (Method::GET, "/api/v1/requests?since=yesterday".into(), String::new(), 400, "validation_failed"),
            (
                Method::POST,
                format!("/api/v1/requests/{open_id}/approve"),
                "{\"notes\": 5}".into(),
                400,
                "validation_failed",
            ),
            (Method::GET, "/api/v1/nowhere".into(), String::new(), 404, "not_found"),
            (Method::PATCH, "/api/v1/requests".into(), String::new(), 405, "method_not_allowed"),
        ];
        for (method, path, body, status, code) in cases {
            let (s, problem) = raw(&app, method.clone(), &path, &body).await;
            assert_problem(s, &problem, status, code);
        }
        let (s, notes) = app
            .post(&app.bob, &format!("/api/v1/requests/{open_id}/approve"), json!({"notes": "x".repeat(1025)}))
            .await;
        assert_problem(s, &notes, 400, "notes_too_long");
        assert_eq!(app.audit_len().await, before, "the audit log's length is unchanged");
        let (_, current) = app.get(&app.alice, &put).await;
        assert_eq!(current["version"], 1);
    })
    .await;
}

backend_tests!(unauthenticated_calls_get_401_problem);
async fn unauthenticated_calls_get_401_problem(backend: TestBackend) {
    with_app(backend, Setup::protected(), |app| async move {
        let response = app.http.get(format!("{}/api/v1/requests", app.base)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert!(response.headers().contains_key("www-authenticate"));
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["code"], "unauthenticated");
        let response =
            app.http.get(format!("{}/api/v1/requests", app.base)).bearer_auth("cs_forged").send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    })
    .await;
}
