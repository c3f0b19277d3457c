//! Scenario 2: how the queries an administrator runs every day grow with history. The same
//! queries, over HTTP, on 1,000 rows and on the large history, in one run.

use crate::bulk;
use crate::raw::RawPool;
use crate::server::ServerProcess;
use crate::stats::Latency;
use crate::tenant::{self, Tenant};
use crate::Target;
use anyhow::{bail, Context, Result};
use countersign_core::Clock;
use countersign_server::SystemClock;
use countersign_store::testing::TestDatabase;
use countersign_store::Store;
use serde::Serialize;
use std::time::{Duration, Instant};

pub const SMALL: usize = 1_000;

#[derive(Debug, Clone, Serialize)]
pub struct QueryGrowth {
    pub query: String,
    pub small: Latency,
    pub large: Latency,
    /// p99 on the large history / p99 on the small one.
    pub growth: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct HistoryResult {
    pub backend: String,
    pub small_rows: usize,
    pub large_rows: usize,
    /// Seconds to write the large history's requests and audit entries.
    pub seed_seconds: f64,
    pub queries: Vec<QueryGrowth>,
}

pub async fn run(target: &Target, rows: usize, quick: bool) -> Result<HistoryResult> {
    let iterations = if quick { 60 } else { 500 };
    let small = History::seed(target, SMALL).await.context("the small history")?;
    let large = History::seed(target, rows).await.context("the large history")?;
    // Both servers run side by side and each query alternates between them, so that a slow
    // moment of a shared machine falls on both sizes alike rather than on one.
    let http = reqwest::Client::new();
    let mut queries = Vec::new();
    for (small_query, large_query) in queries_of(&small.tenant).into_iter().zip(queries_of(&large.tenant)) {
        let (mut small_samples, mut large_samples) = (Vec::new(), Vec::new());
        for i in 0..iterations + iterations / 10 {
            let small_time = small.time(&http, &small_query, i).await?;
            let large_time = large.time(&http, &large_query, i).await?;
            // The first tenth warms the caches and is not counted.
            if i >= iterations / 10 {
                small_samples.push(small_time);
                large_samples.push(large_time);
            }
        }
        let (small, large) = (Latency::of(small_samples), Latency::of(large_samples));
        queries.push(QueryGrowth {
            query: small_query.name.to_owned(),
            growth: large.p99_ms / small.p99_ms.max(f64::MIN_POSITIVE),
            small,
            large,
        });
    }
    let seed_seconds = large.seed_seconds;
    small.stop().await?;
    large.stop().await?;
    Ok(HistoryResult { backend: target.name().into(), small_rows: SMALL, large_rows: rows, seed_seconds, queries })
}

/// A database holding a history of some size, and a server on it.
struct History {
    database: TestDatabase,
    tenant: Tenant,
    server: ServerProcess,
    /// Requests spread over the whole history, for look-ups by id.
    sample_ids: Vec<String>,
    /// Seconds to write the history's requests and audit entries.
    seed_seconds: f64,
}

impl History {
    /// Seeds `rows` requests and audit entries, and starts a server on them.
    async fn seed(target: &Target, rows: usize) -> Result<History> {
        let database = target.fresh_database().await;
        let now = SystemClock.now();
        let store = Store::connect(&database.url, crate::store_options()).await?;
        let tenant = tenant::seed(&store, 50, 4, 0, now).await?;
        store.close().await;

        let seeding = Instant::now();
        let pool = RawPool::connect(&database.url, 2).await?;
        let sample_ids = bulk::seed_requests(&pool, &tenant, rows, now).await?;
        bulk::seed_audit(&pool, &tenant, rows, now, |_| {}).await?;
        pool.settle().await?;
        pool.close().await;
        let seed_seconds = seeding.elapsed().as_secs_f64();
        let server = ServerProcess::start(&database.url).await?;
        Ok(History { database, tenant, server, sample_ids, seed_seconds })
    }

    /// One query's time; the first answer must be a full page.
    async fn time(&self, http: &reqwest::Client, query: &Query<'_>, i: usize) -> Result<Duration> {
        let path = match &query.path {
            QueryPath::Fixed(path) => path.clone(),
            QueryPath::RequestById => format!("/api/v1/requests/{}", self.sample_ids[i % self.sample_ids.len()]),
        };
        let started = Instant::now();
        let response = http.get(format!("{}{path}", self.server.base)).bearer_auth(query.token).send().await?;
        let status = response.status();
        let body = response.bytes().await?;
        let elapsed = started.elapsed();
        if !status.is_success() {
            bail!("{} answered {status}: {}", query.name, String::from_utf8_lossy(&body));
        }
        if i == 0 {
            check_full_page(query.name, &body)?;
        }
        Ok(elapsed)
    }

    async fn stop(self) -> Result<()> {
        self.server.stop().await?;
        self.database.drop_database().await;
        Ok(())
    }
}

enum QueryPath {
    Fixed(String),
    RequestById,
}

struct Query<'a> {
    name: &'static str,
    token: &'a str,
    path: QueryPath,
}

/// A page of this many rows. Every list query's filter matches at least this many rows in the
/// small history too (whose last 30 days, R15's window, hold about 160 requests), so both sizes
/// return full pages and the growth measures finding rows, not rendering more of them.
const PAGE: usize = 20;

fn queries_of(tenant: &Tenant) -> Vec<Query<'_>> {
    let approver = &tenant.approvers[0];
    let admin = &tenant.admin;
    vec![
        Query {
            name: "Received requests, first page (approver)",
            token: &approver.token,
            path: QueryPath::Fixed(format!("/api/v1/requests?view=received&limit={PAGE}")),
        },
        Query {
            name: "All requests, status + type filter",
            token: &admin.token,
            path: QueryPath::Fixed(format!("/api/v1/requests?view=all&status=completed&type=app&limit={PAGE}")),
        },
        Query { name: "One request by id", token: &admin.token, path: QueryPath::RequestById },
        Query {
            name: "Audit log, first page, category filter",
            token: &admin.token,
            path: QueryPath::Fixed(format!("/api/v1/audit?category=change&limit={PAGE}")),
        },
    ]
}

/// A list answered with fewer rows than a page would make the sizes incomparable.
fn check_full_page(name: &str, body: &[u8]) -> Result<()> {
    let value: serde_json::Value = serde_json::from_slice(body)?;
    match value["value"].as_array() {
        Some(rows) if rows.len() < PAGE => {
            bail!("{name} returned {} rows, not a full page of {PAGE}: the comparison would be unfair", rows.len())
        }
        _ => Ok(()),
    }
}
