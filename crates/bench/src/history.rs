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
use countersign_store::{Store, StoreOptions};
use serde::Serialize;
use std::time::Instant;

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
    let iterations = if quick { 60 } else { 300 };
    let (small, _) = measure(target, SMALL, iterations).await.context("the small history")?;
    let (large, seed_seconds) = measure(target, rows, iterations).await.context("the large history")?;
    let queries = small
        .into_iter()
        .zip(large)
        .map(|((query, small), (_, large))| QueryGrowth {
            query,
            growth: large.p99_ms / small.p99_ms.max(f64::MIN_POSITIVE),
            small,
            large,
        })
        .collect();
    Ok(HistoryResult { backend: target.name().into(), small_rows: SMALL, large_rows: rows, seed_seconds, queries })
}

/// Seeds `rows` requests and audit entries, then times each query.
async fn measure(target: &Target, rows: usize, iterations: usize) -> Result<(Vec<(String, Latency)>, f64)> {
    let database = target.fresh_database().await;
    let now = SystemClock.now();
    let store = Store::connect(&database.url, StoreOptions::default()).await?;
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
    let http = reqwest::Client::new();
    let mut results = Vec::new();
    for query in queries(&tenant) {
        let mut samples = Vec::with_capacity(iterations);
        for i in 0..iterations + iterations / 10 {
            let path = match &query.path {
                QueryPath::Fixed(path) => path.clone(),
                QueryPath::RequestById => format!("/api/v1/requests/{}", sample_ids[i % sample_ids.len()]),
            };
            let started = Instant::now();
            let response = http.get(format!("{}{path}", server.base)).bearer_auth(query.token).send().await?;
            let status = response.status();
            let body = response.bytes().await?;
            let elapsed = started.elapsed();
            if !status.is_success() {
                bail!("{} answered {status}: {}", query.name, String::from_utf8_lossy(&body));
            }
            if i == 0 {
                check_full_page(query.name, &body)?;
            }
            // The first tenth warms the caches and is not counted.
            if i >= iterations / 10 {
                samples.push(elapsed);
            }
        }
        results.push((query.name.to_owned(), Latency::of(samples)));
    }
    server.stop().await?;
    database.drop_database().await;
    Ok((results, seed_seconds))
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

fn queries(tenant: &Tenant) -> Vec<Query<'_>> {
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
