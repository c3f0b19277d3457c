//! `GET /api/v1/openapi.json`: the document is valid OpenAPI 3.1 (checked by
//! `openapi-spec-validator` from the virtual environment whose python `COUNTERSIGN_OPENAPI_PYTHON`
//! names; `.ci/run` makes it, and without it the check prints one `skipped:` line, except under
//! `COUNTERSIGN_REQUIRE_ALL_TESTS=1`, where that is a failure), and real answers match the
//! schemas it gives them, so the document cannot drift from what is sent.

#[allow(dead_code)]
#[path = "../e2e/harness.rs"]
mod harness;

use harness::{backend_tests, with_app, Setup, TestApp, TestBackend, User};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::io::Write;
use std::process::{Command, Stdio};

async fn document(app: &TestApp) -> Value {
    let response = app.http.get(format!("{}/api/v1/openapi.json", app.base)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

/// The venv python that has `openapi-spec-validator`, or `None` after saying why not.
fn validator_python() -> Option<String> {
    let python = std::env::var("COUNTERSIGN_OPENAPI_PYTHON").ok().filter(|p| std::path::Path::new(p).exists());
    if python.is_none() {
        countersign_store::testing::skip(
            "OpenAPI 3.1 validation",
            "COUNTERSIGN_OPENAPI_PYTHON does not name a python with openapi-spec-validator (.ci/run makes one)",
        );
    }
    python
}

const VALIDATE: &str = "import json, sys
from openapi_spec_validator import validate
from openapi_spec_validator.validation.validators import OpenAPIV31SpecValidator
validate(json.load(sys.stdin), cls=OpenAPIV31SpecValidator)
print('valid OpenAPI 3.1')";

backend_tests!(the_document_is_valid_openapi_3_1);
async fn the_document_is_valid_openapi_3_1(backend: TestBackend) {
    let Some(python) = validator_python() else { return };
    with_app(backend, Setup::protected(), |app| {
        let python = python.clone();
        async move {
            let spec = document(&app).await;
            assert_eq!(spec["openapi"], "3.1.0");
            let text = serde_json::to_vec(&spec).unwrap();
            // The server runs on this runtime; wait for the validator off it.
            let output = tokio::task::spawn_blocking(move || {
                let mut child = Command::new(&python)
                    .args(["-c", VALIDATE])
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap();
                child.stdin.take().unwrap().write_all(&text).unwrap();
                child.wait_with_output().unwrap()
            })
            .await
            .unwrap();
            let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
            assert!(output.status.success() && stdout.contains("valid OpenAPI 3.1"), "{stdout}\n{stderr}");
        }
    })
    .await;
}

/// The schema the document gives the `status` answer of `method path` (a path as documented,
/// with `{id}` and the like).
fn answer_schema(spec: &Value, method: &str, path: &str, status: StatusCode) -> Value {
    let operation = &spec["paths"][path][method];
    assert!(operation.is_object(), "{method} {path} is documented");
    let responses = &operation["responses"];
    let code = status.as_str();
    let class = format!("{}XX", &code[..1]);
    let answer = if responses[code].is_object() { &responses[code] } else { &responses[class.as_str()] };
    let content = answer["content"].as_object().unwrap_or_else(|| panic!("{method} {path} {code} has a body"));
    let (_, media) = content.iter().next().unwrap();
    // The document is the root, so that `#/components/schemas/…` resolves.
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "components": spec["components"],
        "allOf": [media["schema"]],
    })
}

struct Checker {
    spec: Value,
    checked: usize,
}

impl Checker {
    /// Calls `method url` as `user` and checks the answer against the schema of `documented`.
    async fn check(
        &mut self,
        app: &TestApp,
        user: &User,
        method: Method,
        url: &str,
        documented: &str,
        body: Option<Value>,
    ) -> Value {
        let (status, answer) = app.call(user, method.clone(), url, body).await;
        let method = method.as_str().to_lowercase();
        let schema = answer_schema(&self.spec, &method, documented, status);
        let validator = jsonschema::draft202012::new(&schema).unwrap();
        let errors: Vec<String> =
            validator.iter_errors(&answer).map(|e| format!("{} at {}", e, e.instance_path)).collect();
        assert!(errors.is_empty(), "{method} {url} {status}: {errors:#?}\n{answer:#}");
        self.checked += 1;
        answer
    }
}

backend_tests!(real_answers_match_their_schemas);
async fn real_answers_match_their_schemas(backend: TestBackend) {
    with_app(backend, Setup::protected(), |app| async move {
        let mut c = Checker { spec: document(&app).await, checked: 0 };
        // Request bodies refuse unknown members (deny_unknown_fields), and their schemas say so.
        let schemas = c.spec["components"]["schemas"].as_object().unwrap();
        let bodies: Vec<_> = schemas.iter().filter(|(name, _)| name.ends_with("Body")).collect();
        assert!(bodies.len() >= 15, "{} body schemas", bodies.len());
        for (name, schema) in bodies.into_iter().filter(|(name, _)| !name.starts_with("Graph")) {
            assert_eq!(schema["additionalProperties"], false, "{name}: {schema}");
        }
        let (admin, alice, bob) = (&app.admin, &app.alice, &app.bob);
        c.check(&app, admin, Method::GET, "/api/v1/me", "/api/v1/me", None).await;
        c.check(&app, admin, Method::GET, "/api/v1/accounts", "/api/v1/accounts", None).await;
        let account = format!("/api/v1/accounts/{}", alice.id);
        c.check(&app, admin, Method::GET, &account, "/api/v1/accounts/{id}", None).await;
        c.check(&app, admin, Method::GET, "/api/v1/groups", "/api/v1/groups", None).await;
        let group = format!("/api/v1/groups/{}", app.approvers_group);
        c.check(&app, admin, Method::GET, &group, "/api/v1/groups/{id}", None).await;
        let created = json!({"displayName": "Field staff", "description": "phones"});
        c.check(&app, admin, Method::POST, "/api/v1/groups", "/api/v1/groups", Some(created)).await;
        let roles = c.check(&app, admin, Method::GET, "/api/v1/roles", "/api/v1/roles", None).await;
        let role = format!("/api/v1/roles/{}", roles["value"][0]["id"].as_str().unwrap());
        c.check(&app, admin, Method::GET, &role, "/api/v1/roles/{id}", None).await;
        c.check(&app, admin, Method::GET, "/api/v1/roleAssignments", "/api/v1/roleAssignments", None).await;
        c.check(&app, admin, Method::GET, "/api/v1/resources/app", "/api/v1/resources/{type}", None).await;
        c.check(&app, admin, Method::GET, "/api/v1/devices", "/api/v1/devices", None).await;
        let policies =
            c.check(&app, admin, Method::GET, "/api/v1/accessPolicies", "/api/v1/accessPolicies", None).await;
        let policy = format!("/api/v1/accessPolicies/{}", policies["value"][0]["id"].as_str().unwrap());
        c.check(&app, admin, Method::GET, &policy, "/api/v1/accessPolicies/{id}", None).await;

        // A protected change is held (202 with the request), then approved.
        let app_id = app.samples[0].1.clone();
        let (kind, _) = &app.samples[0];
        let update = json!({"name": "sample", "document": {"v": 2}, "justification": "routine update"});
        let held = c
            .check(
                &app,
                alice,
                Method::PUT,
                &format!("/api/v1/resources/{kind}/{app_id}"),
                "/api/v1/resources/{type}/{id}",
                Some(update),
            )
            .await;
        let request = format!("/api/v1/requests/{}", held["id"].as_str().unwrap());
        c.check(&app, bob, Method::GET, &request, "/api/v1/requests/{id}", None).await;
        c.check(&app, bob, Method::GET, "/api/v1/requests?view=received", "/api/v1/requests", None).await;
        let approve = format!("{request}/approve");
        c.check(&app, bob, Method::POST, &approve, "/api/v1/requests/{id}/approve", Some(json!({"notes": "ok"}))).await;

        c.check(&app, admin, Method::GET, "/api/v1/audit", "/api/v1/audit", None).await;
        c.check(&app, admin, Method::GET, "/api/v1/audit/verify", "/api/v1/audit/verify", None).await;
        let token = json!({"displayName": "laptop"});
        c.check(&app, admin, Method::POST, "/api/v1/tokens", "/api/v1/tokens", Some(token)).await;
        c.check(&app, admin, Method::GET, "/api/v1/tokens", "/api/v1/tokens", None).await;
        c.check(&app, admin, Method::GET, "/api/v1/me/notifications", "/api/v1/me/notifications", None).await;
        c.check(&app, admin, Method::GET, "/api/v1/notificationDeliveries", "/api/v1/notificationDeliveries", None)
            .await;

        // Errors: problem+json on the native API, Graph's shape under /beta.
        let missing = format!("/api/v1/groups/{}", uuid::Uuid::now_v7());
        c.check(&app, admin, Method::GET, &missing, "/api/v1/groups/{id}", None).await;
        let bad = Some(json!({"displayName": "x", "surprise": true}));
        c.check(&app, admin, Method::POST, "/api/v1/groups", "/api/v1/groups", bad).await;

        let graph = "/beta/deviceManagement";
        let requests = format!("{graph}/operationApprovalRequests");
        let list = c.check(&app, bob, Method::GET, &requests, &requests, None).await;
        let one = format!("{requests}/{}", list["value"][0]["id"].as_str().unwrap());
        c.check(&app, bob, Method::GET, &one, &format!("{requests}/{{segment}}"), None).await;
        let policies = format!("{graph}/operationApprovalPolicies");
        c.check(&app, admin, Method::GET, &policies, &policies, None).await;
        let approvable = format!("{policies}/retrieveApprovableOperations()");
        c.check(&app, bob, Method::GET, &approvable, &format!("{policies}/{{id}}"), None).await;
        let missing = format!("{requests}/{}", uuid::Uuid::now_v7());
        c.check(&app, bob, Method::GET, &missing, &format!("{requests}/{{segment}}"), None).await;
        assert!(c.checked >= 30, "{} answers checked", c.checked);
    })
    .await;
}
