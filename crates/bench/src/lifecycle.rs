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
    pub api: Throughput,
    pub raw: Throughput,
    /// api / raw lifecycles per second.
    pub ratio: f64,
    /// The server process's peak resident memory over its whole life.
    pub server_peak_rss_mib: f64,
    /// Server CPU time (user + system) per lifecycle.
    pub server_cpu_ms_per_lifecycle: f64,
}

pub async fn run(target: &Target, settings: &Settings) -> Result<LifecycleResult> {
    let raw = run_raw(target, settings).await.context("the raw baseline")?;
    let (api, peak_rss, cpu) = run_api(target, settings).await.context("the API run")?;
    Ok(LifecycleResult {
        backend: target.name().into(),
        clients: settings.clients,
        ratio: api.lifecycles_per_second / raw.lifecycles_per_second.max(f64::MIN_POSITIVE),
        server_peak_rss_mib: peak_rss as f64 / (1024.0 * 1024.0),
        server_cpu_ms_per_lifecycle: cpu.as_secs_f64() * 1000.0 / (api.lifecycles.max(1) as f64),
        api,
        raw,
    })
}

/// A fresh database with the benchmark's organisation in it.
async fn prepared(target: &Target, clients: usize) -> Result<(countersign_store::testing::TestDatabase, Tenant)> {
    let database = target.fresh_database().await;
    let store = Store::connect(&database.url, StoreOptions::default()).await?;
    let tenant = tenant::seed(&store, clients, 4, clients, SystemClock.now()).await?;
    store.close().await;
    Ok((database, tenant))
}

async fn run_api(target: &Target, settings: &Settings) -> Result<(Throughput, u64, Duration)> {
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
    let peak = server.peak_rss_bytes()?;
    server.stop().await?;
    check_outcome(&database.url, samples.complete.len()).await?;
    database.drop_database().await;
    Ok((Throughput::of(samples, elapsed), peak, cpu))
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
    let store = Store::connect(database_url, StoreOptions::default()).await?;
    let completed: i64 =
        store.request_counts().await?.iter().filter(|(status, _, _)| status == "completed").map(|(_, _, n)| n).sum();
    let report = store.verify_audit().await?;
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
