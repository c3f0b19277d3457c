//! A mixed load of a few thousand actions spread over the three replicas: every action that
//! writes appends to one audit chain, which stays valid, and `GET /audit/verify` counts every
//! entry the actions wrote.

use crate::cluster::{answer, with_cluster, Cluster, REPLICAS};
use crate::harness::{assert_problem, Setup, User, PASSWORD};
use countersign_core::profile::ResourceType;
use reqwest::header::{COOKIE, SET_COOKIE};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Instant;

const WORKERS: usize = 15;
const CYCLES: usize = 30;

/// What one worker did: HTTP actions, and the audit entries its successful actions wrote.
#[derive(Default)]
struct Tally {
    actions: usize,
    entries: i64,
}

struct Worker {
    c: Arc<Cluster>,
    id: usize,
    calls: usize,
    tally: Tally,
}

impl Worker {
    /// Every call goes to the next replica, so one flow's steps land on different replicas.
    fn node(&mut self) -> usize {
        self.calls += 1;
        (self.id + self.calls) % REPLICAS
    }

    /// One action that must answer `expected`; `entries` audit entries if it does.
    async fn act(
        &mut self,
        user: &User,
        method: &str,
        path: &str,
        body: Option<Value>,
        expected: u16,
        entries: i64,
    ) -> Value {
        let node = self.node();
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let a = self.c.call(node, user, method, path, body).await;
        assert_eq!(a.status.as_u16(), expected, "worker {} on replica {}: {path}: {}", self.id, node + 1, a.body);
        self.tally.actions += 1;
        self.tally.entries += entries;
        a.body
    }

    async fn decide(&mut self, user: &User, request: &str, action: &str, status: &str) {
        let body =
            self.act(user, "POST", &format!("/api/v1/requests/{request}/{action}"), Some(json!({})), 200, 1).await;
        assert_eq!(body["status"], status, "{body}");
    }

    async fn complete(&mut self, user: &User, request: &str) {
        // "completed" and "applied"
        let body = self.act(user, "POST", &format!("/api/v1/requests/{request}/complete"), None, 200, 2).await;
        assert_eq!(body["status"], "completed", "{body}");
    }

    async fn sign_in(&mut self, username: &str) {
        let node = self.node();
        let response = self
            .c
            .http
            .post(self.c.url(node, "/api/v1/auth/login"))
            .json(&json!({"username": username, "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        let cookie =
            response.headers().get(SET_COOKIE).map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned());
        let signed_in = answer(response).await;
        assert_eq!(signed_in.status, StatusCode::OK, "{:?}", signed_in.body);
        // "signIn"
        self.tally.actions += 1;
        self.tally.entries += 1;
        let other = self.node();
        let me = self.c.http.get(self.c.url(other, "/api/v1/me")).header(COOKIE, cookie.unwrap());
        let me = answer(me.send().await.unwrap()).await;
        assert_eq!(me.body["account"]["username"], username, "{:?}", me.body);
        self.tally.actions += 1;
    }

    async fn run(mut self, hot_app: String) -> Tally {
        let c = self.c.clone();
        let requester = [&c.app.alice, &c.app.dave, &c.app.admin, &c.app.svc][self.id % 4];
        let (bob, carol) = (&c.app.bob, &c.app.carol);
        // An app of this worker's own, so its versions are known exactly.
        let body = json!({"name": format!("load {}", self.id), "document": {"v": 0}, "justification": "load"});
        let created = self.act(requester, "POST", "/api/v1/resources/app", Some(body), 202, 1).await;
        let (request, app) =
            (created["id"].as_str().unwrap().to_owned(), created["objectId"].as_str().unwrap().to_owned());
        self.decide(bob, &request, "approve", "approved").await;
        self.complete(requester, &request).await;
        let mut version = self.act(requester, "GET", &format!("/api/v1/resources/app/{app}"), None, 200, 0).await
            ["version"]
            .as_i64()
            .unwrap();

        for cycle in 0..CYCLES {
            let body = json!({"name": "App", "document": {"v": cycle + 1}, "justification": "load"});
            let held = self.act(requester, "PUT", &format!("/api/v1/resources/app/{app}"), Some(body), 202, 1).await;
            let request = held["id"].as_str().unwrap().to_owned();
            let read = self.act(bob, "GET", &format!("/api/v1/requests/{request}"), None, 200, 0).await;
            assert_eq!(read["status"], "needsApproval", "{read}");
            match cycle % 4 {
                0 => {
                    self.decide(bob, &request, "approve", "approved").await;
                    self.complete(requester, &request).await;
                    version += 1;
                }
                1 => self.decide(carol, &request, "reject", "rejected").await,
                2 => self.decide(requester, &request, "cancel", "cancelled").await,
                _ => {
                    self.decide(carol, &request, "approve", "approved").await;
                    self.decide(requester, &request, "cancel", "cancelled").await;
                }
            }
            let current = self.act(carol, "GET", &format!("/api/v1/resources/app/{app}"), None, 200, 0).await;
            assert_eq!(current["version"], version, "worker {}: applied exactly the completed changes", self.id);
            self.act(bob, "GET", "/api/v1/requests?view=received&status=needsApproval", None, 200, 0).await;

            // Now and then, everybody at once on one shared app: one holds, the rest are refused.
            if cycle % 5 == self.id % 5 {
                let node = self.node();
                let body = json!({"name": "App", "document": {"hot": cycle}, "justification": "hot"});
                let a = c
                    .call(
                        node,
                        requester,
                        reqwest::Method::PUT,
                        &format!("/api/v1/resources/app/{hot_app}"),
                        Some(body),
                    )
                    .await;
                self.tally.actions += 1;
                if a.status == StatusCode::ACCEPTED {
                    self.tally.entries += 1;
                    let request = a.body["id"].as_str().unwrap().to_owned();
                    self.decide(requester, &request, "cancel", "cancelled").await;
                } else {
                    assert_problem(a.status, &a.body, 409, "request_open_for_object");
                }
            }
            if cycle % 10 == self.id % 10 {
                self.sign_in(["alice", "bob", "carol", "dave", "admin"][(self.id + cycle) % 5]).await;
            }
        }
        self.tally
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_mixed_load_over_three_replicas_keeps_one_valid_audit_chain() {
    with_cluster("a_mixed_load_over_three_replicas_keeps_one_valid_audit_chain", Setup::protected(), |c| async move {
        let c = Arc::new(c);
        let hot_app = c.sample(ResourceType::App);
        let before = c.app.store.audit_count().await.unwrap();
        let started = Instant::now();
        let workers = (0..WORKERS).map(|id| {
            let worker = Worker { c: c.clone(), id, calls: 0, tally: Tally::default() };
            tokio::spawn(worker.run(hot_app.clone()))
        });
        let tallies: Vec<Tally> = futures::future::join_all(workers).await.into_iter().map(|t| t.unwrap()).collect();
        let actions: usize = tallies.iter().map(|t| t.actions).sum();
        let entries: i64 = tallies.iter().map(|t| t.entries).sum();
        eprintln!("{actions} actions over {REPLICAS} replicas in {:?}, {entries} audit entries", started.elapsed());
        assert!(actions >= 2000, "a few thousand actions: {actions}");

        let total = c.verify_everywhere().await;
        assert_eq!(total, before + entries, "every entry the actions wrote is in the chain, and nothing else");
    })
    .await;
}
