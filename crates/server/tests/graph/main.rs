//! The Microsoft Graph–compatible API (`/beta/deviceManagement/…`): its shapes, OData options and
//! errors over HTTP, its rules (nothing here gets around the gate), and a conformance run of the
//! real `msgraph-beta-sdk` (Python) against a live server. The SDK runs from the virtual
//! environment whose python `COUNTERSIGN_GRAPH_PYTHON` names (`.ci/run` makes it); without it
//! the conformance test prints one `skipped:` line on each backend, except under
//! `COUNTERSIGN_REQUIRE_ALL_TESTS=1`, where that is a failure.

#[allow(dead_code)]
#[path = "../e2e/harness.rs"]
mod harness;

use countersign_core::profile::ResourceType;
use countersign_store::testing::skip;
use harness::{backend_tests, with_app, Setup, TestApp, TestBackend, User};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

fn sample(app: &TestApp, resource_type: ResourceType) -> String {
    app.samples.iter().find(|(t, _)| *t == resource_type).map(|(_, id)| id.clone()).unwrap()
}

/// alice proposes an update of the sample of `resource_type`; returns the request id.
async fn propose(app: &TestApp, resource_type: ResourceType, version: u32) -> String {
    let id = sample(app, resource_type);
    let (status, body) = app
        .put(
            &app.alice,
            &format!("/api/v1/resources/{resource_type}/{id}"),
            json!({"name": format!("sample {resource_type}"), "document": {"v": version}, "justification": "routine update"}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

async fn graph(app: &TestApp, user: &User, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
    app.call(user, method, &format!("/beta/deviceManagement/{path}"), body).await
}

fn assert_graph_error(status: StatusCode, body: &Value, expected: u16, code: &str, inner: &str) {
    assert_eq!(status.as_u16(), expected, "{body}");
    let error = &body["error"];
    assert_eq!(error["code"], code, "{body}");
    assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    assert_eq!(error["innerError"]["code"], inner, "{body}");
    assert!(error["innerError"]["request-id"].is_string() && error["innerError"]["date"].is_string(), "{body}");
    assert!(body.get("type").is_none() && body.get("status").is_none(), "not problem+json: {body}");
}

backend_tests!(requests_have_graphs_shape_and_odata_options, flavor = "current_thread");
async fn requests_have_graphs_shape_and_odata_options(backend: TestBackend) {
    with_app(backend, Setup::protected(), |app| async move {
        let first = propose(&app, ResourceType::App, 2).await;
        let second = propose(&app, ResourceType::Script, 2).await;
        let third = propose(&app, ResourceType::CompliancePolicy, 2).await;

        let (status, one) = graph(&app, &app.bob, Method::GET, &format!("operationApprovalRequests/{first}"), None).await;
        assert_eq!(status, StatusCode::OK, "{one}");
        assert_eq!(one["@odata.type"], "#microsoft.graph.operationApprovalRequest");
        assert!(one["@odata.context"].as_str().unwrap().ends_with("/beta/$metadata#deviceManagement/operationApprovalRequests/$entity"));
        assert_eq!(one["status"], "needsApproval");
        assert_eq!(one["requestor"]["user"]["id"], app.alice.id.as_str());
        assert_eq!(one["requestJustification"], "routine update");
        assert_eq!(one["requiredOperationApprovalPolicyTypes"], json!(["app"]));
        assert_eq!(one["approver"], Value::Null);

        // $filter with `or`, $top and paging by @odata.nextLink, newest first.
        let mut seen = Vec::new();
        let mut url = format!(
            "{}/beta/deviceManagement/operationApprovalRequests?$filter=status%20eq%20'needsApproval'%20or%20status%20eq%20'approved'&$top=2&$orderby=requestDateTime%20desc",
            app.base
        );
        let mut pages = 0;
        loop {
            let response = app.http.get(&url).bearer_auth(&app.bob.token).send().await.unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            let page: Value = response.json().await.unwrap();
            let items = page["value"].as_array().unwrap();
            assert!(items.len() <= 2, "{page}");
            seen.extend(items.iter().map(|i| i["id"].as_str().unwrap().to_owned()));
            pages += 1;
            match page["@odata.nextLink"].as_str() {
                Some(next) => url = next.to_owned(),
                None => break,
            }
        }
        assert_eq!(seen, [third.clone(), second.clone(), first.clone()], "newest first, each once");
        assert!(pages >= 2, "$top=2 pages three requests");

        // A filter that selects nothing, and `completed` that covers `failed`.
        let (status, none) =
            graph(&app, &app.bob, Method::GET, "operationApprovalRequests?$filter=status%20eq%20'completed'", None).await;
        assert_eq!(status, StatusCode::OK, "{none}");
        assert_eq!(none["value"], json!([]));

        // $select keeps only the named properties.
        let (status, selected) =
            graph(&app, &app.bob, Method::GET, "operationApprovalRequests?$select=id,status&$top=1", None).await;
        assert_eq!(status, StatusCode::OK, "{selected}");
        let item = selected["value"][0].as_object().unwrap();
        let mut keys: Vec<_> = item.keys().cloned().collect();
        keys.sort();
        assert_eq!(keys, ["@odata.type", "id", "status"], "{selected}");
        assert!(selected["@odata.context"].as_str().unwrap().ends_with("operationApprovalRequests(id,status)"));
        assert!(selected["@odata.nextLink"].as_str().unwrap().contains("$select=id,status"));

        // Errors are Graph-shaped.
        let (status, body) =
            graph(&app, &app.bob, Method::GET, "operationApprovalRequests?$filter=status%20eq%20'failed'", None).await;
        assert_graph_error(status, &body, 400, "invalidRequest", "invalid_query");
        let (status, body) =
            graph(&app, &app.bob, Method::GET, "operationApprovalRequests?$filter=requestor%20eq%20'x'", None).await;
        assert_graph_error(status, &body, 400, "invalidRequest", "invalid_query");
        let (status, body) =
            graph(&app, &app.bob, Method::GET, "operationApprovalRequests?$orderby=requestDateTime%20asc", None).await;
        assert_graph_error(status, &body, 400, "invalidRequest", "invalid_query");
        let (status, body) = graph(&app, &app.bob, Method::GET, "operationApprovalRequests?$top=0", None).await;
        assert_graph_error(status, &body, 400, "invalidRequest", "invalid_query");
        let missing = "01890000-0000-7000-8000-000000000000";
        let (status, body) =
            graph(&app, &app.bob, Method::GET, &format!("operationApprovalRequests/{missing}"), None).await;
        assert_graph_error(status, &body, 404, "itemNotFound", "not_found");
        let (status, body) = graph(&app, &app.bob, Method::GET, "nothingHere", None).await;
        assert_graph_error(status, &body, 404, "itemNotFound", "not_found");
        let nobody = User { id: String::new(), token: "cs_not_a_token".into() };
        let (status, body) = graph(&app, &nobody, Method::GET, "operationApprovalRequests", None).await;
        assert_graph_error(status, &body, 401, "unauthenticated", "unauthenticated");
        let (status, body) = graph(
            &app,
            &app.bob,
            Method::POST,
            &format!("operationApprovalRequests/{first}/approve"),
            Some(json!({"justification": "x", "approvalSource": "carrierPigeon"})),
        )
        .await;
        assert_graph_error(status, &body, 400, "invalidRequest", "validation_failed");
    })
    .await;
}

/// Found by the `odata_filter` fuzz target: the `$filter` parser recursed once per `(`, so one
/// long enough filter overflowed the stack of the worker serving it and ended the process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filter_nested_past_any_sense_is_a_400_not_a_crash() {
    with_app(TestBackend::Sqlite, Setup::protected(), |app| async move {
        let deep = format!("{}status%20eq%20'approved'{}", "(".repeat(60_000), ")".repeat(10));
        let (status, body) =
            graph(&app, &app.bob, Method::GET, &format!("operationApprovalRequests?$filter={deep}"), None).await;
        assert_graph_error(status, &body, 400, "invalidRequest", "invalid_query");
        assert!(body["error"]["message"].as_str().unwrap().contains("nested"), "{body}");
        let nested = format!("{}status%20eq%20'approved'{}", "(".repeat(8), ")".repeat(8));
        let (status, body) =
            graph(&app, &app.bob, Method::GET, &format!("operationApprovalRequests?$filter={nested}"), None).await;
        assert_eq!(status, StatusCode::OK, "a few parentheses are fine: {body}");
    })
    .await;
}

backend_tests!(graph_is_no_way_around_the_rules, flavor = "current_thread");
async fn graph_is_no_way_around_the_rules(backend: TestBackend) {
    with_app(backend, Setup::protected(), |app| async move {
        let request = propose(&app, ResourceType::App, 3).await;
        let approve = |user: User| {
            let path = format!("operationApprovalRequests/{request}/approve");
            let app = &app;
            async move {
                graph(
                    app,
                    &user,
                    Method::POST,
                    &path,
                    Some(json!({"justification": "ok", "approvalSource": "adminConsole"})),
                )
                .await
            }
        };
        // R2: a service account never approves, even in the approver group with every permission.
        let (status, body) = approve(app.svc.clone()).await;
        assert_graph_error(status, &body, 403, "accessDenied", "not_an_approver");
        // R3: never your own.
        let (status, body) = approve(app.alice.clone()).await;
        assert_graph_error(status, &body, 403, "accessDenied", "self_approval_forbidden");
        // Only the requester cancels.
        let (status, body) = graph(
            &app,
            &app.bob,
            Method::POST,
            "operationApprovalRequests/cancelMyRequest",
            Some(json!({"id": request})),
        )
        .await;
        assert_graph_error(status, &body, 403, "accessDenied", "not_the_requester");
        let (status, body) = approve(app.bob.clone()).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["value"], "approved");
        let (_, one) = graph(&app, &app.bob, Method::GET, &format!("operationApprovalRequests/{request}"), None).await;
        assert_eq!(one["approver"]["user"]["id"], app.bob.id.as_str());
        assert_eq!(one["approvalJustification"], "ok");

        // Service accounts show as `application` identities.
        let id = sample(&app, ResourceType::Script);
        let (status, held) = app
            .put(
                &app.svc,
                &format!("/api/v1/resources/script/{id}"),
                json!({"name": "sample script", "document": {"v": 9}, "justification": "automation"}),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{held}");
        let (_, by_svc) = graph(
            &app,
            &app.bob,
            Method::GET,
            &format!("operationApprovalRequests/{}", held["id"].as_str().unwrap()),
            None,
        )
        .await;
        assert_eq!(by_svc["requestor"]["application"]["id"], app.svc.id.as_str(), "{by_svc}");
        assert!(by_svc["requestor"].get("user").is_none());

        // Policy changes are held (R9): 202 and a Location, never applied.
        let policies = app.store.policies().await.unwrap();
        let script_policy = policies.iter().find(|p| p.profile_type.as_str() == "script").unwrap();
        let (status, body) = graph(
            &app,
            &app.alice,
            Method::POST,
            "operationApprovalPolicies",
            Some(json!({
                "@odata.type": "#microsoft.graph.operationApprovalPolicy",
                "displayName": "Scripts again", "policyType": "script", "policyPlatform": "notApplicable",
                "approverGroupIds": [app.approvers_group], "justification": "cover scripts",
            })),
        )
        .await;
        assert_graph_error(status, &body, 409, "conflict", "conflict");
        let response = app
            .http
            .patch(format!("{}/beta/deviceManagement/operationApprovalPolicies/{}", app.base, script_policy.id))
            .bearer_auth(&app.alice.token)
            .header("X-Justification", "rename")
            .json(&json!({"displayName": "Scripts, renamed"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        let location = response.headers()["location"].to_str().unwrap().to_owned();
        assert!(location.starts_with(&format!("{}/beta/deviceManagement/operationApprovalRequests/", app.base)));
        let (status, held) =
            app.get(&app.bob, &format!("/api/v1/requests/{}", location.rsplit('/').next().unwrap())).await;
        assert_eq!(status, StatusCode::OK, "{held}");
        assert_eq!(
            (held["status"].as_str(), held["after"]["displayName"].as_str()),
            (Some("needsApproval"), Some("Scripts, renamed"))
        );
        assert_eq!(held["after"]["requiredApprovals"], held["before"]["requiredApprovals"], "PATCH keeps the rest");
        let now = app.store.policies().await.unwrap();
        assert_eq!(
            now.iter().find(|p| p.id == script_policy.id).unwrap().display_name,
            script_policy.display_name,
            "not applied"
        );
        let (status, body) = graph(
            &app,
            &app.alice,
            Method::POST,
            "operationApprovalPolicies",
            Some(json!({"displayName": "x", "policyType": "deviceLock", "approverGroupIds": [], "justification": "j"})),
        )
        .await;
        assert_graph_error(status, &body, 400, "invalidRequest", "validation_failed");
        let (status, body) =
            graph(&app, &app.alice, Method::POST, "operationApprovalPolicies", Some(json!({"bogus": 1}))).await;
        assert_graph_error(status, &body, 400, "invalidRequest", "validation_failed");
        let (status, policies) = graph(&app, &app.bob, Method::GET, "operationApprovalPolicies", None).await;
        assert_eq!(status, StatusCode::OK, "{policies}");
        let types: Vec<&str> =
            policies["value"].as_array().unwrap().iter().map(|p| p["policyType"].as_str().unwrap()).collect();
        assert!(types.contains(&"tenantConfiguration") && types.contains(&"operationApprovalPolicy"), "{types:?}");
    })
    .await;
}

/// The venv python that has `msgraph-beta-sdk`, or `None` after saying why not.
fn graph_python() -> Option<String> {
    let python = std::env::var("COUNTERSIGN_GRAPH_PYTHON").ok().filter(|p| std::path::Path::new(p).exists());
    if python.is_none() {
        skip(
            "Graph SDK conformance",
            "COUNTERSIGN_GRAPH_PYTHON does not name a python with msgraph-beta-sdk; .ci/run makes one",
        );
    }
    python
}

backend_tests!(the_real_graph_sdk_drives_countersign, flavor = "current_thread");
async fn the_real_graph_sdk_drives_countersign(backend: TestBackend) {
    let Some(python) = graph_python() else { return };
    with_app(backend, Setup::protected(), |app| {
        let python = python.clone();
        async move {
            let first = propose(&app, ResourceType::App, 4).await;
            let second = propose(&app, ResourceType::Script, 4).await;
            let third = propose(&app, ResourceType::CompliancePolicy, 4).await;
            let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/graph/conformance.py");
            let (base, alice, bob) = (app.base.clone(), app.alice.token.clone(), app.bob.token.clone());
            let (open, object) = (format!("{first},{second},{third}"), sample(&app, ResourceType::App));
            // The server runs on this runtime; wait for the script off it.
            let output = tokio::task::spawn_blocking(move || {
                std::process::Command::new(&python)
                    .arg(script)
                    .env("COUNTERSIGN_GRAPH_BASE", base)
                    .env("COUNTERSIGN_GRAPH_REQUESTER", alice)
                    .env("COUNTERSIGN_GRAPH_APPROVER", bob)
                    .env("COUNTERSIGN_GRAPH_OPEN", open)
                    .env("COUNTERSIGN_GRAPH_OBJECT", object)
                    .env("NO_PROXY", "127.0.0.1,localhost")
                    .output()
            })
            .await
            .unwrap()
            .expect("run the conformance script");
            let stdout = String::from_utf8_lossy(&output.stdout);
            let stderr = String::from_utf8_lossy(&output.stderr);
            println!("{stdout}");
            assert!(output.status.success(), "conformance failed ({:?}):\n{stdout}\n{stderr}", app.backend);
            assert!(stdout.contains("conformance: all checks passed"), "{stdout}");
        }
    })
    .await;
}
