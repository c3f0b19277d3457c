//! A PostgreSQL connection killed mid-request (`pg_terminate_backend`): the caller gets a clean
//! 503 problem+json, nothing is half-done, and the replica carries on without a restart.

use crate::cluster::{with_cluster, Answer, Cluster, REPLICAS};
use crate::harness::Setup;
use countersign_core::profile::ResourceType;
use reqwest::{Method, StatusCode};
use serde_json::json;
use sqlx::{Connection, Executor, PgConnection};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Terminates every other connection to the test database (every replica's, busy or idle) but
/// `spare`; returns how many.
async fn kill_every_other_connection(admin: &mut PgConnection, spare: i32) -> usize {
    // In the select list, not the WHERE clause: there PostgreSQL may call it before filtering
    // out this very connection.
    let killed: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid() AND pid <> $1",
    )
    .bind(spare)
    .fetch_all(admin)
    .await
    .unwrap();
    killed.into_iter().filter(|k| *k).count()
}

fn assert_unavailable(a: &Answer) {
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE, "{:?}", a.body);
    assert_eq!(a.content_type.as_deref(), Some("application/problem+json"), "{a:?}");
    assert_eq!(a.body["code"], "unavailable", "{a:?}");
    assert_eq!(a.body["status"], 503, "{a:?}");
    assert!(a.body["type"].is_string() && a.body["title"].is_string() && a.body["detail"].is_string(), "{a:?}");
    assert!(a.retry_after.is_some(), "a 503 says when to retry: {a:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_connection_killed_mid_request_gives_a_clean_503_and_the_replica_recovers() {
    let name = "a_connection_killed_mid_request_gives_a_clean_503_and_the_replica_recovers";
    with_cluster(name, Setup::protected(), |c| async move {
        let c = Arc::new(c);
        let app = c.sample(ResourceType::App);
        let (status, request) = c.update_app(0, &c.app.alice, &app, "2.0").await;
        assert_eq!(status, StatusCode::ACCEPTED, "{request}");
        let rid = request["id"].as_str().unwrap().to_owned();
        let (status, approved) = c.post(1, &c.app.bob, &format!("/api/v1/requests/{rid}/approve"), json!({})).await;
        assert_eq!(status, StatusCode::OK, "{approved}");
        let version = c.app_version(1, &app).await;
        let entries = c.verify_everywhere().await;

        // Hold the audit chain's head, so that the completion on replica 2 stops mid-transaction:
        // it has updated the app and waits to append the audit entry.
        let mut holder = c.admin_connection().await;
        let holder_pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()").fetch_one(&mut holder).await.unwrap();
        holder.execute("BEGIN").await.unwrap();
        holder.execute("SELECT seq FROM audit_head WHERE id = 1 FOR UPDATE").await.unwrap();
        let completing = {
            let (c, rid) = (c.clone(), rid.clone());
            tokio::spawn(async move {
                c.call(1, &c.app.alice, Method::POST, &format!("/api/v1/requests/{rid}/complete"), None).await
            })
        };
        // Watched from another connection outside any transaction: within one, PostgreSQL shows
        // the same snapshot of pg_stat_activity throughout.
        let mut watcher = c.admin_connection().await;
        let mut blocked = false;
        for _ in 0..1000 {
            let waiting: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() \
                 AND wait_event_type = 'Lock' AND query LIKE '%key_id FROM audit_head%'",
            )
            .fetch_one(&mut watcher)
            .await
            .unwrap();
            if waiting > 0 {
                blocked = true;
                break;
            }
            assert!(!completing.is_finished(), "the completion finished without the audit head");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(blocked, "the completion never reached the audit head");
        let killed = kill_every_other_connection(&mut watcher, holder_pid).await;
        assert!(killed >= 1, "{killed}");
        holder.execute("ROLLBACK").await.unwrap();
        holder.close().await.unwrap();
        watcher.close().await.unwrap();

        let answer = completing.await.unwrap();
        assert_unavailable(&answer);

        // Nothing of it happened. Replica 2, whose connections were all killed, answers these.
        assert_eq!(c.app_version(1, &app).await, version, "the app is as it was");
        let (status, now) = c.get(1, &c.app.alice, &format!("/api/v1/requests/{rid}")).await;
        assert_eq!((status, now["status"].as_str()), (StatusCode::OK, Some("approved")), "{now}");
        assert_eq!(c.audit_actions("completed", &rid).await, 0);
        assert_eq!(c.verify_everywhere().await, entries, "no audit entry was written");

        // Every replica serves again, and the completion goes through where it failed.
        for node in 0..REPLICAS {
            let (status, me) = c.get(node, &c.app.carol, "/api/v1/me").await;
            assert_eq!(status, StatusCode::OK, "replica {}: {me}", node + 1);
        }
        let (status, done) = c.post(1, &c.app.alice, &format!("/api/v1/requests/{rid}/complete"), json!({})).await;
        assert_eq!((status, done["status"].as_str()), (StatusCode::OK, Some("completed")), "{done}");
        assert_eq!(c.app_version(2, &app).await, version + 1);
        assert_eq!(c.audit_actions("applied", &app).await, 1);
        assert_eq!(c.verify_everywhere().await, entries + 2, "completed and applied");
    })
    .await;
}

/// Requests that each worker makes: propose a new script, then cancel the proposal.
async fn churn(c: Arc<Cluster>, worker: usize, stop: Arc<AtomicBool>, done: Arc<AtomicUsize>) -> Vec<Answer> {
    let mut answers = Vec::new();
    for round in 0..500 {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let node = worker + round;
        let body = json!({"name": format!("w{worker} r{round}"), "document": {}, "justification": "churn"});
        let proposed = c.call(node, &c.app.alice, Method::POST, "/api/v1/resources/script", Some(body)).await;
        if proposed.status == StatusCode::ACCEPTED {
            let path = format!("/api/v1/requests/{}/cancel", proposed.body["id"].as_str().unwrap());
            answers.push(c.call(node + 1, &c.app.alice, Method::POST, &path, None).await);
        }
        answers.push(proposed);
        done.fetch_add(1, Ordering::SeqCst);
    }
    answers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killing_every_connection_under_load_gives_503s_never_500s() {
    with_cluster("killing_every_connection_under_load_gives_503s_never_500s", Setup::protected(), |c| async move {
        let c = Arc::new(c);
        let (stop, done) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicUsize::new(0)));
        let workers: Vec<_> = (0..6).map(|w| tokio::spawn(churn(c.clone(), w, stop.clone(), done.clone()))).collect();
        let mut admin = c.admin_connection().await;
        for _ in 0..3 {
            // Let some work through between the kills.
            let target = done.load(Ordering::SeqCst) + 20;
            for _ in 0..2000 {
                if done.load(Ordering::SeqCst) >= target {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            kill_every_other_connection(&mut admin, 0).await;
        }
        stop.store(true, Ordering::SeqCst);
        let answers: Vec<Answer> =
            futures::future::join_all(workers).await.into_iter().flat_map(|w| w.unwrap()).collect();
        let unavailable = answers.iter().filter(|a| a.status == StatusCode::SERVICE_UNAVAILABLE).count();
        eprintln!("{} answers, {unavailable} of them 503", answers.len());
        for a in &answers {
            match a.status {
                StatusCode::ACCEPTED | StatusCode::OK => {}
                StatusCode::SERVICE_UNAVAILABLE => assert_unavailable(a),
                _ => panic!("only success or a clean 503: {a:?}"),
            }
        }

        // Each request row came with its audit entries, or not at all.
        let orphans = c
            .count(
                "SELECT COUNT(*) FROM requests r WHERE \
                 (SELECT COUNT(*) FROM audit_log a WHERE a.target_id = r.id AND a.action = 'created') <> 1 \
                 OR (SELECT COUNT(*) FROM audit_log a WHERE a.target_id = r.id AND a.action = 'cancelled') \
                    <> CASE WHEN r.status = 'cancelled' THEN 1 ELSE 0 END",
            )
            .await;
        assert_eq!(orphans, 0, "a request and its audit entries commit together");
        admin.close().await.unwrap();
        for node in 0..REPLICAS {
            let (status, me) = c.get(node, &c.app.alice, "/api/v1/me").await;
            assert_eq!(status, StatusCode::OK, "replica {}: {me}", node + 1);
        }
        c.verify_everywhere().await;
    })
    .await;
}
