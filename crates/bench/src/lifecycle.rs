//! Scenario 1: full request lifecycles (submit with justification → approve by another account
//! → complete) from C concurrent clients over HTTP, against the raw floor of the same writes on
//! the same kind of fresh database, in one run.

use crate::raw::{RawPool, Step, Subject};
use crate::server::ServerProcess;
use crate::stats::Latency;
use crate::tenant::{self, Tenant, User};
use crate::Target;
use anyhow::{bail, Context, Result};
use countersign_core::profile::ProfileType;
use countersign_core::Clock;
use countersign_server::SystemClock;
use countersign_store::{Store, StoreOptions};
use serde::Serialize;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct Settings {
    pub clients: usize,
    pub duration: Duration,
    /// Raw then API, this many times over; each side is reported by its median round, so that
    /// one slow moment of a shared machine does not decide the ratio.
    pub rounds: usize,
}

/// The latencies of each step, one entry per completed step.
#[derive(Debug, Default)]
struct Samples {
    submit: Vec<Duration>,
    approve: Vec<Duration>,
    complete: Vec<Duration>,
}

impl Samples {
    fn merge(&mut self, other: Samples) {
        self.submit.extend(other.submit);
        self.approve.extend(other.approve);
        self.complete.extend(other.complete);
    }
}

/// One side of the comparison.
#[derive(Debug, Clone, Serialize)]
pub struct Throughput {
    pub lifecycles: u64,
    pub seconds: f64,
    pub lifecycles_per_second: f64,
    /// Durable commits per second (each lifecycle commits three transactions).
    pub commits_per_second: f64,
    pub submit: Latency,
    pub approve: Latency,
    pub complete: Latency,
}

impl Throughput {
    fn of(samples: Samples, elapsed: Duration) -> Throughput {
        let lifecycles = samples.complete.len() as u64;
        let seconds = elapsed.as_secs_f64();
        Throughput {
            lifecycles,
            seconds,
            lifecycles_per_second: lifecycles as f64 / seconds,
            commits_per_second: 3.0 * lifecycles as f64 / seconds,
            submit: Latency::of(samples.submit),
            approve: Latency::of(samples.approve),
            complete: Latency::of(samples.complete),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct LifecycleResult {
    pub backend: String,
    pub clients: usize,
    /// The median round of each side.
    pub api: Throughput,
    pub raw: Throughput,
    /// api / raw lifecycles per second, of the median rounds.
    pub ratio: f64,
    /// Every round's lifecycles per second, API and raw, in the order they ran.
    pub rounds: Vec<Round>,
    /// The server process's peak resident memory, the most of any round.
    pub server_peak_rss_mib: f64,
    /// Server CPU time (user + system) per lifecycle, in the median API round.
    pub server_cpu_ms_per_lifecycle: f64,
    /// Writes per COMMIT in the median API round (SQLite's group commit; 1 on PostgreSQL).
    pub writes_per_commit: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Round {
    pub api_lifecycles_per_second: f64,
    pub raw_lifecycles_per_second: f64,
}

/// What one API run measured besides its latencies.
struct ApiRun {
    throughput: Throughput,
    peak_rss: u64,
    cpu: Duration,
    writes_per_commit: f64,
}

pub async fn run(target: &Target, settings: &Settings) -> Result<LifecycleResult> {
    let mut raws = Vec::new();
    let mut apis = Vec::new();
    for round in 0..settings.rounds.max(1) {
        raws.push(run_raw(target, settings).await.with_context(|| format!("the raw baseline, round {}", round + 1))?);
        apis.push(run_api(target, settings).await.with_context(|| format!("the API run, round {}", round + 1))?);
    }
    let rounds = apis
        .iter()
        .zip(&raws)
        .map(|(api, raw)| Round {
            api_lifecycles_per_second: api.throughput.lifecycles_per_second,
            raw_lifecycles_per_second: raw.lifecycles_per_second,
        })
        .collect();
    let peak_rss = apis.iter().map(|a| a.peak_rss).max().unwrap_or(0);
    apis.sort_by(|a, b| a.throughput.lifecycles_per_second.total_cmp(&b.throughput.lifecycles_per_second));
    raws.sort_by(|a, b| a.lifecycles_per_second.total_cmp(&b.lifecycles_per_second));
    let api = apis.swap_remove(apis.len() / 2);
    let raw = raws.swap_remove(raws.len() / 2);
    Ok(LifecycleResult {
        backend: target.name().into(),
        clients: settings.clients,
        ratio: api.throughput.lifecycles_per_second / raw.lifecycles_per_second.max(f64::MIN_POSITIVE),
        rounds,
        server_peak_rss_mib: peak_rss as f64 / (1024.0 * 1024.0),
        server_cpu_ms_per_lifecycle: api.cpu.as_secs_f64() * 1000.0 / (api.throughput.lifecycles.max(1) as f64),
        writes_per_commit: api.writes_per_commit,
        api: api.throughput,
        raw,
    })
}

/// A fresh database with the benchmark's organisation in it.
async fn prepared(target: &Target, clients: usize) -> Result<(countersign_store::testing::TestDatabase, Tenant)> {
    let database = target.fresh_database().await;
    let store = Store::connect(&database.url, crate::store_options()).await?;
    let tenant = tenant::seed(&store, clients, 4, clients, SystemClock.now()).await?;
    store.close().await;
    Ok((database, tenant))
}

async fn run_api(target: &Target, settings: &Settings) -> Result<ApiRun> {
    let (database, tenant) = prepared(target, settings.clients).await?;
    let server = ServerProcess::start(&database.url).await?;
    let http = reqwest::Client::builder().pool_max_idle_per_host(settings.clients).build()?;
    let cpu_before = server.cpu_time()?;
    let started = Instant::now();
    let deadline = started + settings.duration;
    let tenant = Arc::new(tenant);
    let mut clients = Vec::new();
    for client in 0..settings.clients {
        let (http, base, tenant) = (http.clone(), server.base.clone(), tenant.clone());
        clients.push(tokio::spawn(async move { api_client(&http, &base, &tenant, client, deadline).await }));
    }
    let mut samples = Samples::default();
    for client in clients {
        samples.merge(client.await??);
    }
    let elapsed = started.elapsed();
    let cpu = server.cpu_time()?.saturating_sub(cpu_before);
    let peak_rss = server.peak_rss_bytes()?;
    let writes_per_commit = writes_per_commit(&http, &server.base).await?;
    server.stop().await?;
    check_outcome(&database.url, samples.complete.len()).await?;
    database.drop_database().await;
    Ok(ApiRun { throughput: Throughput::of(samples, elapsed), peak_rss, cpu, writes_per_commit })
}

/// From the server's own `/metrics`: how many writes each COMMIT carried.
async fn writes_per_commit(http: &reqwest::Client, base: &str) -> Result<f64> {
    let metrics = http
        .get(format!("{base}/metrics"))
        .bearer_auth(crate::server::METRICS_TOKEN)
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    let gauge = |name: &str| -> Option<f64> {
        metrics.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
    };
    Ok(match (gauge("countersign_sqlite_writes"), gauge("countersign_sqlite_commits")) {
        (Some(writes), Some(commits)) if commits > 0.0 => writes / commits,
        // PostgreSQL: every write commits on its own.
        _ => 1.0,
    })
}

async fn send(request: reqwest::RequestBuilder, expected: u16) -> Result<Value> {
    let response = request.send().await?;
    let status = response.status().as_u16();
    let body: Value = response.json().await?;
    if status != expected {
        bail!("expected HTTP {expected}, got {status}: {body}");
    }
    Ok(body)
}

async fn api_client(
    http: &reqwest::Client,
    base: &str,
    tenant: &Tenant,
    client: usize,
    deadline: Instant,
) -> Result<Samples> {
    let requester = &tenant.requesters[client];
    let approver = &tenant.approvers[client % tenant.approvers.len()];
    let (app_id, _) = &tenant.apps[client];
    let mut samples = Samples::default();
    let mut version = 1;
    while Instant::now() < deadline {
        version += 1;
        let t0 = Instant::now();
        let held = send(
            http.put(format!("{base}/api/v1/resources/app/{app_id}")).bearer_auth(&requester.token).json(&json!({
                "name": format!("Bench app {client}"),
                "document": {"version": format!("{version}.0")},
                "justification": "Benchmark rollout",
            })),
            202,
        )
        .await?;
        let request_id = held["id"].as_str().context("a request id")?.to_owned();
        let t1 = Instant::now();
        let approved = send(
            http.post(format!("{base}/api/v1/requests/{request_id}/approve"))
                .bearer_auth(&approver.token)
                .json(&json!({})),
            200,
        )
        .await?;
        expect_status(&approved, "approved")?;
        let t2 = Instant::now();
        let completed = send(
            http.post(format!("{base}/api/v1/requests/{request_id}/complete"))
                .bearer_auth(&requester.token)
                .json(&json!({})),
            200,
        )
        .await?;
        expect_status(&completed, "completed")?;
        let t3 = Instant::now();
        samples.submit.push(t1 - t0);
        samples.approve.push(t2 - t1);
        samples.complete.push(t3 - t2);
    }
    Ok(samples)
}

fn expect_status(request: &Value, status: &str) -> Result<()> {
    if request["status"] != status {
        bail!("expected the request to be {status}: {request}");
    }
    Ok(())
}

/// The run did what it claims: as many completed requests as lifecycles counted, and an intact
/// audit chain.
async fn check_outcome(database_url: &str, lifecycles: usize) -> Result<()> {
    let store = Store::connect(database_url, crate::store_options()).await?;
    let completed: i64 =
        store.request_counts().await?.iter().filter(|(status, _, _)| status == "completed").map(|(_, _, n)| n).sum();
    let keys = crate::audit_keys();
    let report =
        store.verify_audit(countersign_store::VerifyInputs { keys: Some(&keys), ..Default::default() }).await?;
    store.close().await;
    if completed != lifecycles as i64 {
        bail!("{lifecycles} lifecycles were counted but {completed} requests are completed");
    }
    if !report.valid {
        bail!("the audit chain is broken after the run: {:?}", report.first_broken);
    }
    Ok(())
}

async fn run_raw(target: &Target, settings: &Settings) -> Result<Throughput> {
    let (database, tenant) = prepared(target, settings.clients).await?;
    let pool = RawPool::connect(&database.url, StoreOptions::default().max_connections).await?;
    let started = Instant::now();
    let deadline = started + settings.duration;
    let tenant = Arc::new(tenant);
    let mut clients = Vec::new();
    for client in 0..settings.clients {
        let (pool, tenant) = (pool.clone(), tenant.clone());
        clients.push(tokio::spawn(async move { raw_client(&pool, &tenant, client, deadline).await }));
    }
    let mut samples = Samples::default();
    for client in clients {
        samples.merge(client.await??);
    }
    let elapsed = started.elapsed();
    pool.close().await;
    database.drop_database().await;
    Ok(Throughput::of(samples, elapsed))
}

async fn raw_client(pool: &RawPool, tenant: &Tenant, client: usize, deadline: Instant) -> Result<Samples> {
    let requester: &User = &tenant.requesters[client];
    let approver: &User = &tenant.approvers[client % tenant.approvers.len()];
    let (app_id, _) = &tenant.apps[client];
    let app_name = format!("Bench app {client}");
    let subject = Subject {
        requester: (&requester.id, &requester.name),
        approver: (&approver.id, &approver.name),
        approver_group: &tenant.approvers_group,
        policy_id: tenant.policy_for(ProfileType::App),
        app_id,
        app_name: &app_name,
    };
    let clock = SystemClock;
    let mut samples = Samples::default();
    let mut version = 1;
    while Instant::now() < deadline {
        let mut before = tenant::app_state(&app_name, version);
        before["version"] = json!(version);
        version += 1;
        let after = tenant::app_state(&app_name, version);
        let request_id = uuid::Uuid::now_v7().to_string();
        let t0 = Instant::now();
        pool.write(&Step::Submit {
            subject: &subject,
            request_id: &request_id,
            before: &before,
            after: &after,
            now: clock.now(),
        })
        .await?;
        let t1 = Instant::now();
        pool.write(&Step::Approve { subject: &subject, request_id: &request_id, now: clock.now() }).await?;
        let t2 = Instant::now();
        pool.write(&Step::Complete {
            subject: &subject,
            request_id: &request_id,
            before: &before,
            after: &after,
            now: clock.now(),
        })
        .await?;
        let t3 = Instant::now();
        samples.submit.push(t1 - t0);
        samples.approve.push(t2 - t1);
        samples.complete.push(t3 - t2);
    }
    Ok(samples)
}
