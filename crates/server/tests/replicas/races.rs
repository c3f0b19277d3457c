//! R4, R8 and the request state machine across replicas: the database decides every race, so
//! which replica a caller reaches makes no difference.

use crate::cluster::{with_cluster, REPLICAS};
use crate::harness::{assert_problem, Setup};
use countersign_core::policy::Completion;
use countersign_core::profile::{ProfileType, ResourceType};
use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_submissions_for_one_object_over_three_replicas_hold_exactly_one() {
    let name = "a_hundred_submissions_for_one_object_over_three_replicas_hold_exactly_one";
    with_cluster(name, Setup::protected(), |c| async move {
        let app = c.sample(ResourceType::App);
        let users = [&c.app.alice, &c.app.dave, &c.app.admin, &c.app.svc];
        let answers = join_all((0..100).map(|i| {
            let (c, app) = (&c, &app);
            async move { c.update_app(i % REPLICAS, users[i % users.len()], app, &format!("v{i}")).await }
        }))
        .await;
        let accepted: Vec<_> = answers.iter().filter(|(s, _)| *s == StatusCode::ACCEPTED).collect();
        assert_eq!(accepted.len(), 1, "{answers:?}");
        let open = accepted[0].1["id"].as_str().unwrap().to_owned();
        for (status, body) in answers.iter().filter(|(s, _)| *s != StatusCode::ACCEPTED) {
            assert_problem(*status, body, 409, "request_open_for_object");
            assert_eq!(body["requestId"], open.as_str(), "the refusal names the open request");
        }
        // Nothing of the 99 losers is left behind: one request for the object, one "created".
        let (_, all) = c.get(2, &c.app.admin, &format!("/api/v1/requests?view=all&objectId={app}")).await;
        let ids: Vec<_> = all["value"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap()).collect();
        assert_eq!(ids, [open.as_str()], "{all}");
        assert_eq!(c.audit_actions("created", &open).await, 1);
        c.verify_everywhere().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_completes_on_every_replica_apply_once() {
    with_cluster("concurrent_completes_on_every_replica_apply_once", Setup::protected(), |c| async move {
        let app = c.sample(ResourceType::App);
        let (status, request) = c.update_app(0, &c.app.alice, &app, "2.0").await;
        assert_eq!(status, StatusCode::ACCEPTED, "{request}");
        let rid = request["id"].as_str().unwrap().to_owned();
        let (status, approved) =
            c.post(1, &c.app.bob, &format!("/api/v1/requests/{rid}/approve"), json!({"notes": "ok"})).await;
        assert_eq!((status, approved["status"].as_str()), (StatusCode::OK, Some("approved")), "{approved}");
        let version_before = c.app_version(2, &app).await;
        let applied_before = c.audit_actions("applied", &app).await;

        let path = format!("/api/v1/requests/{rid}/complete");
        let answers = join_all((0..30).map(|i| c.post(i % REPLICAS, &c.app.alice, &path, json!({})))).await;
        let done: Vec<_> = answers.iter().filter(|(s, _)| *s == StatusCode::OK).collect();
        assert_eq!(done.len(), 1, "{answers:?}");
        assert_eq!(done[0].1["status"], "completed");
        for (status, body) in answers.iter().filter(|(s, _)| *s != StatusCode::OK) {
            assert_problem(*status, body, 409, "invalid_transition");
        }
        for node in 0..REPLICAS {
            assert_eq!(c.app_version(node, &app).await, version_before + 1, "applied exactly once");
        }
        assert_eq!(c.audit_actions("applied", &app).await, applied_before + 1, "one applied entry");
        assert_eq!(c.audit_actions("completed", &rid).await, 1);
        c.verify_everywhere().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn approve_on_one_replica_against_cancel_on_another_ends_in_one_outcome() {
    // Automatic completion makes approval final (applied at once), so approve and cancel exclude
    // each other: with requester completion an approved request may still be cancelled.
    let setup = Setup::only(&[(ProfileType::App, 1, Completion::Automatic)]);
    with_cluster("approve_on_one_replica_against_cancel_on_another_ends_in_one_outcome", setup, |c| async move {
        let mut outcomes = [0, 0];
        for round in 0..20 {
            // A fresh object each round: the request to create it.
            let body = json!({"name": format!("race {round}"), "document": {}, "justification": "new app"});
            let (status, request) = c.post(round % REPLICAS, &c.app.alice, "/api/v1/resources/app", body).await;
            assert_eq!(status, StatusCode::ACCEPTED, "{request}");
            let rid = request["id"].as_str().unwrap().to_owned();
            let object = request["objectId"].as_str().unwrap().to_owned();
            let (approve_on, cancel_on) = (round % REPLICAS, (round + 1) % REPLICAS);
            let approve_path = format!("/api/v1/requests/{rid}/approve");
            let cancel_path = format!("/api/v1/requests/{rid}/cancel");
            let approve = c.post(approve_on, &c.app.bob, &approve_path, json!({"notes": "fine"}));
            let cancel = c.post(cancel_on, &c.app.alice, &cancel_path, json!({}));
            let ((approve_status, approved), (cancel_status, cancelled)) = tokio::join!(approve, cancel);

            let approve_won = approve_status == StatusCode::OK;
            assert_ne!(approve_won, cancel_status == StatusCode::OK, "round {round}: {approved} / {cancelled}");
            let third = (round + 2) % REPLICAS;
            let (_, now) = c.get(third, &c.app.admin, &format!("/api/v1/requests/{rid}")).await;
            let (object_status, _) = c.get(third, &c.app.admin, &format!("/api/v1/resources/app/{object}")).await;
            if approve_won {
                outcomes[0] += 1;
                assert_eq!(approved["status"], "completed", "{approved}");
                assert_problem(cancel_status, &cancelled, 409, "invalid_transition");
                assert_eq!(now["status"], "completed", "{now}");
                assert_eq!(object_status, StatusCode::OK, "the approved app exists");
            } else {
                outcomes[1] += 1;
                assert_eq!(cancelled["status"], "cancelled", "{cancelled}");
                assert_problem(approve_status, &approved, 409, "invalid_transition");
                assert_eq!(now["status"], "cancelled", "{now}");
                assert_eq!(object_status, StatusCode::NOT_FOUND, "a cancelled creation applies nothing");
            }
            // The audit log records the winner only.
            let expected = usize::from(approve_won);
            assert_eq!(c.audit_actions("approved", &rid).await, expected, "round {round}");
            assert_eq!(c.audit_actions("completed", &rid).await, expected, "round {round}");
            assert_eq!(c.audit_actions("applied", &object).await, expected, "round {round}");
            assert_eq!(c.audit_actions("cancelled", &rid).await, 1 - expected, "round {round}");
        }
        eprintln!("approve won {} rounds, cancel won {}", outcomes[0], outcomes[1]);
        c.verify_everywhere().await;
    })
    .await;
}
