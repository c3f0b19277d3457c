//! R11's sweep on every replica at once: each due request expires once, and a sweep passes over
//! a request another replica holds instead of queueing behind it (`FOR UPDATE SKIP LOCKED`).

use crate::cluster::{with_cluster, Cluster, REPLICAS};
use crate::harness::{Setup, DAY};
use countersign_core::Clock;
use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::json;
use sqlx::{Connection, Executor};
use std::sync::Arc;
use std::time::Duration;

/// `count` open requests, each creating a new script; every other one already approved (the
/// sweep expires both open states). Returns their ids.
async fn open_requests(c: &Cluster, count: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..count {
        let body = json!({"name": format!("script {i}"), "document": {}, "justification": "housekeeping"});
        let (status, request) = c.post(i % REPLICAS, &c.app.alice, "/api/v1/resources/script", body).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{request}");
        let id = request["id"].as_str().unwrap().to_owned();
        if i % 2 == 1 {
            let (status, approved) =
                c.post(i + 1, &c.app.bob, &format!("/api/v1/requests/{id}/approve"), json!({})).await;
            assert_eq!((status, approved["status"].as_str()), (StatusCode::OK, Some("approved")), "{approved}");
        }
        ids.push(id);
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sweeps_on_every_replica_at_once_expire_each_due_request_once() {
    with_cluster("sweeps_on_every_replica_at_once_expire_each_due_request_once", Setup::protected(), |c| async move {
        let ids = open_requests(&c, 24).await;
        c.app.clock.advance(31 * DAY);
        let now = c.app.clock.now();
        // Two sweeps per replica, released together.
        let start = Arc::new(tokio::sync::Barrier::new(2 * REPLICAS));
        let sweeps = (0..2 * REPLICAS).map(|i| {
            let (store, start) = (c.nodes[i % REPLICAS].store.clone(), start.clone());
            tokio::spawn(async move {
                start.wait().await;
                store.expire_due(now).await.unwrap()
            })
        });
        let expired: Vec<u64> = join_all(sweeps).await.into_iter().map(|r| r.unwrap()).collect();
        eprintln!("expired per sweep: {expired:?}");
        // Replica 1's own background sweep may also have run; what counts is that no request
        // was expired twice, nor missed.
        assert!(expired.iter().sum::<u64>() <= ids.len() as u64, "{expired:?}");
        for id in &ids {
            assert_eq!(c.audit_actions("expired", id).await, 1, "request {id}");
        }
        let (_, all) = c.get(0, &c.app.admin, "/api/v1/audit?action=expired&limit=500").await;
        assert_eq!(all["value"].as_array().unwrap().len(), ids.len());
        let stored = c.count("SELECT COUNT(*) FROM requests WHERE status = 'expired'").await;
        assert_eq!(stored, ids.len() as i64, "every due request is stored as expired");
        for node in 0..REPLICAS {
            assert_eq!(c.nodes[node].store.expire_due(now).await.unwrap(), 0, "nothing is left to expire");
        }
        c.verify_everywhere().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sweep_passes_over_a_request_another_replica_holds() {
    with_cluster("a_sweep_passes_over_a_request_another_replica_holds", Setup::protected(), |c| async move {
        let ids = open_requests(&c, 3).await;
        c.app.clock.advance(31 * DAY);
        let now = c.app.clock.now();
        // Another replica's transaction holds the first request's row, as a sweep or an action would.
        let mut holder = c.admin_connection().await;
        holder.execute("BEGIN").await.unwrap();
        sqlx::query("SELECT id FROM requests WHERE id = $1 FOR UPDATE")
            .bind(&ids[0])
            .fetch_one(&mut holder)
            .await
            .unwrap();
        // Without SKIP LOCKED this sweep would wait for the holder, which waits for the sweep.
        let sweep = tokio::time::timeout(Duration::from_secs(30), c.nodes[1].store.expire_due(now)).await;
        let expired = sweep.expect("the sweep waited for a row another replica holds").unwrap();
        // (Replica 1's background sweep could have taken some first; each expires once all the same.)
        assert!(expired <= 2, "the held request is not expired under its holder: {expired}");
        assert_eq!(c.audit_actions("expired", &ids[0]).await, 0, "the held one is left to its holder");
        for id in &ids[1..] {
            assert_eq!(c.audit_actions("expired", id).await, 1, "the free ones expire: {id}");
        }
        holder.execute("ROLLBACK").await.unwrap();
        holder.close().await.unwrap();
        // Once free, the next sweep (on any replica) takes it.
        assert!(c.nodes[2].store.expire_due(now).await.unwrap() <= 1);
        for id in &ids {
            assert_eq!(c.audit_actions("expired", id).await, 1, "request {id}");
        }
        c.verify_everywhere().await;
    })
    .await;
}
