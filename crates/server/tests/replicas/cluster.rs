//! A three-replica cluster over one fresh PostgreSQL database, on top of the end-to-end harness:
//! replica 1 is the harness's own server, replicas 2 and 3 are started beside it.

use crate::harness::{Setup, TestApp, User};
use countersign_core::profile::ResourceType;
use countersign_store::testing::{postgres_available, TestBackend};
use countersign_store::Store;
use reqwest::{header, Method, StatusCode};
use serde_json::Value;
use sqlx::Connection;
use std::future::Future;

pub const REPLICAS: usize = 3;
/// Each replica's pool; the harness gives replica 1 the same.
const POOL: u32 = 5;

/// One replica: where it listens, and its own store (pool).
pub struct Node {
    pub base: String,
    pub store: Store,
}

pub struct Cluster {
    /// The tenant (users, groups, samples), the shared clock, and replica 1.
    pub app: TestApp,
    pub nodes: Vec<Node>,
    /// No cookie store: a test hands each replica exactly the cookie it means to.
    pub http: reqwest::Client,
}

/// One HTTP answer.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub body: Value,
    pub content_type: Option<String>,
    pub retry_after: Option<String>,
}

/// Runs `test` on a fresh three-replica cluster, then drops its database. Without PostgreSQL it
/// prints one `skipped:` line and returns (or fails, under `COUNTERSIGN_REQUIRE_ALL_TESTS=1`).
pub async fn with_cluster<F, Fut>(test_name: &str, setup: Setup, test: F)
where
    F: FnOnce(Cluster) -> Fut,
    Fut: Future<Output = ()>,
{
    if !postgres_available(test_name) {
        return;
    }
    let mut app = TestApp::start(TestBackend::Postgres, &setup).await;
    let database = app.take_database().expect("database");
    let mut nodes = vec![Node { base: app.base.clone(), store: app.store.clone() }];
    for _ in 1..REPLICAS {
        let replica = app.start_replica(POOL).await;
        nodes.push(Node { base: replica.base, store: replica.store });
    }
    let http = reqwest::Client::builder().build().unwrap();
    test(Cluster { app, nodes, http }).await;
    database.drop_database().await;
}

impl Cluster {
    pub fn url(&self, node: usize, path: &str) -> String {
        format!("{}{path}", self.nodes[node % REPLICAS].base)
    }

    pub async fn call(&self, node: usize, user: &User, method: Method, path: &str, body: Option<Value>) -> Answer {
        let mut request = self.http.request(method, self.url(node, path)).bearer_auth(&user.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        answer(request.send().await.expect("request")).await
    }

    pub async fn get(&self, node: usize, user: &User, path: &str) -> (StatusCode, Value) {
        let a = self.call(node, user, Method::GET, path, None).await;
        (a.status, a.body)
    }

    pub async fn post(&self, node: usize, user: &User, path: &str, body: Value) -> (StatusCode, Value) {
        let a = self.call(node, user, Method::POST, path, Some(body)).await;
        (a.status, a.body)
    }

    pub async fn put(&self, node: usize, user: &User, path: &str, body: Value) -> (StatusCode, Value) {
        let a = self.call(node, user, Method::PUT, path, Some(body)).await;
        (a.status, a.body)
    }

    /// The seeded object of this type.
    pub fn sample(&self, resource_type: ResourceType) -> String {
        self.app.samples.iter().find(|(t, _)| *t == resource_type).map(|(_, id)| id.clone()).unwrap()
    }

    /// Proposes a new version of an app's document as `user` on `node`.
    pub async fn update_app(&self, node: usize, user: &User, app: &str, version: &str) -> (StatusCode, Value) {
        let body = serde_json::json!({"name": "App", "document": {"version": version}, "justification": "upgrade"});
        self.put(node, user, &format!("/api/v1/resources/app/{app}"), body).await
    }

    /// An app's current version, read on `node`.
    pub async fn app_version(&self, node: usize, app: &str) -> i64 {
        let (status, body) = self.get(node, &self.app.admin, &format!("/api/v1/resources/app/{app}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["version"].as_i64().unwrap()
    }

    /// How many audit entries have this action and target (read on replica 1).
    pub async fn audit_actions(&self, action: &str, target: &str) -> usize {
        self.app.audit_actions(action, target).await
    }

    /// `GET /audit/verify` on every replica: the chain is valid and every entry is counted.
    /// Returns the number of entries.
    pub async fn verify_everywhere(&self) -> i64 {
        let stored = self.app.store.audit_count().await.unwrap();
        for node in 0..REPLICAS {
            let (status, report) = self.get(node, &self.app.admin, "/api/v1/audit/verify").await;
            assert_eq!(status, StatusCode::OK, "{report}");
            assert_eq!(report["valid"], true, "replica {}: {report}", node + 1);
            assert_eq!(report["entriesChecked"].as_i64(), Some(stored), "replica {}: {report}", node + 1);
        }
        stored
    }

    /// A connection of the test's own, outside every replica's pool.
    pub async fn admin_connection(&self) -> sqlx::PgConnection {
        sqlx::PgConnection::connect(&self.app.database_url).await.expect("admin connection")
    }

    /// A count by plain SQL on a connection of the test's own.
    pub async fn count(&self, sql: &str) -> i64 {
        let mut conn = self.admin_connection().await;
        let n: i64 = sqlx::query_scalar(sql).fetch_one(&mut conn).await.unwrap();
        conn.close().await.unwrap();
        n
    }
}

pub async fn answer(response: reqwest::Response) -> Answer {
    let status = response.status();
    let header_text = |name: header::HeaderName| response.headers().get(name).map(|v| v.to_str().unwrap().to_owned());
    let (content_type, retry_after) = (header_text(header::CONTENT_TYPE), header_text(header::RETRY_AFTER));
    let text = response.text().await.unwrap();
    Answer { status, body: serde_json::from_str(&text).unwrap_or(Value::String(text)), content_type, retry_after }
}
