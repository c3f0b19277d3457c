//! Races: R4 and R8 are kept by the database, not by luck.

use crate::harness::*;
use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::json;

backend_tests!(r4_fifty_concurrent_submissions_for_one_object_give_exactly_one_202, worker_threads = 4);
async fn r4_fifty_concurrent_submissions_for_one_object_give_exactly_one_202(backend: TestBackend) {
    with_app(backend, Setup::protected(), |app| async move {
        let id = app.create_app("Zoom").await;
        let users = [&app.alice, &app.dave, &app.admin, &app.svc];
        let versions: Vec<String> = (0..50).map(|i| format!("v{i}")).collect();
        let answers =
            join_all(versions.iter().enumerate().map(|(i, v)| app.update_app(users[i % users.len()], &id, v))).await;
        let accepted: Vec<_> = answers.iter().filter(|(s, _)| *s == StatusCode::ACCEPTED).collect();
        assert_eq!(accepted.len(), 1, "{answers:?}");
        let open_id = accepted[0].1["id"].clone();
        for (status, body) in answers.iter().filter(|(s, _)| *s != StatusCode::ACCEPTED) {
            assert_problem(*status, body, 409, "request_open_for_object");
            assert_eq!(body["requestId"], open_id);
        }
        let (_, mine) =
            app.get(&app.admin, &format!("/api/v1/requests?view=all&objectId={id}&status=needsApproval")).await;
        assert_eq!(mine["value"].as_array().unwrap().len(), 1);
    })
    .await;
}

backend_tests!(r8_twenty_concurrent_completes_apply_once, worker_threads = 4);
async fn r8_twenty_concurrent_completes_apply_once(backend: TestBackend) {
    with_app(backend, Setup::protected(), |app| async move {
        let id = app.create_app("Zoom").await;
        let (_, request) = app.update_app(&app.alice, &id, "2.0").await;
        let rid = request["id"].as_str().unwrap().to_owned();
        app.approve(&app.bob, &rid).await;
        let applied_before = app.audit_actions("applied", &id).await;
        let path = format!("/api/v1/requests/{rid}/complete");
        let answers = join_all((0..20).map(|_| app.post(&app.alice, &path, json!({})))).await;
        let ok = answers.iter().filter(|(s, _)| *s == StatusCode::OK).count();
        assert_eq!(ok, 1, "{answers:?}");
        for (status, body) in answers.iter().filter(|(s, _)| *s != StatusCode::OK) {
            assert_problem(*status, body, 409, "invalid_transition");
        }
        let (_, current) = app.get(&app.alice, &format!("/api/v1/resources/app/{id}")).await;
        assert_eq!(current["version"], 2, "version up by exactly one");
        assert_eq!(app.audit_actions("applied", &id).await, applied_before + 1, "one applied entry");
        assert_eq!(app.audit_actions("completed", &rid).await, 1);
        let (_, verify) = app.get(&app.admin, "/api/v1/audit/verify").await;
        assert_eq!(verify["valid"], true, "{verify}");
    })
    .await;
}
