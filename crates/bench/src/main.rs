//! `countersign-bench`: how close Countersign gets to its database's own limit, and how its
//! cost grows with history. Every figure is measured in one run, next to its baseline, on SQLite
//! and (with `--postgres`) on PostgreSQL. Prints a Markdown table; `--json FILE` writes the same.

mod audit_verify;
mod bulk;
mod history;
mod lifecycle;
mod raw;
mod report;
mod server;
mod stats;
mod tenant;

use anyhow::Result;
use clap::{Parser, ValueEnum};
use countersign_store::testing::{TestBackend, TestDatabase};
use std::path::PathBuf;

/// The audit key every database of a benchmark run is linked with (a benchmark's databases are
/// thrown away; a deployment's key lives in its key file).
pub fn audit_keys() -> countersign_core::audit::AuditKeys {
    countersign_core::audit::AuditKeys::new(vec![countersign_core::audit::AuditKey::new(&[0xb5; 32])])
        .unwrap_or_else(|| unreachable!("one key"))
}

/// The store's options in every scenario: the defaults, with the benchmark's audit key.
pub fn store_options() -> countersign_store::StoreOptions {
    countersign_store::StoreOptions {
        audit_keys: Some(countersign_store::AuditKeyring::fixed(audit_keys())),
        ..countersign_store::StoreOptions::default()
    }
}

#[derive(Parser)]
#[command(name = "countersign-bench", about = "Benchmarks Countersign against its database's own limit")]
struct Cli {
    /// Scenarios to run; all of them when none is named.
    #[arg(value_enum)]
    scenarios: Vec<Scenario>,
    /// Small sizes: each scenario finishes in well under a minute.
    #[arg(long)]
    quick: bool,
    /// Also run every scenario on PostgreSQL: a server URL whose user may create databases.
    #[arg(long, env = "COUNTERSIGN_BENCH_POSTGRES_URL")]
    postgres: Option<String>,
    /// Concurrent clients in the lifecycle run.
    #[arg(long, default_value_t = 32)]
    clients: usize,
    /// How long each lifecycle run lasts, in seconds [default: 20, or 4 with --quick].
    #[arg(long)]
    seconds: Option<u64>,
    /// Lifecycle rounds (raw, then API) per backend; the median round of each side is reported
    /// [default: 3, or 1 with --quick].
    #[arg(long)]
    rounds: Option<usize>,
    /// Requests and audit entries in the large history [default: 1000000, or 20000 with --quick].
    #[arg(long)]
    rows: Option<usize>,
    /// Also write the figures as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Internal: serve the database at this URL and print the address (the server under test
    /// runs in its own process, so that its memory is its own).
    #[arg(long, hide = true)]
    serve_child: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scenario {
    Lifecycle,
    History,
    AuditVerify,
    Memory,
}

/// One database server the scenarios run on.
#[derive(Debug, Clone)]
pub struct Target {
    pub backend: TestBackend,
    pub admin_url: Option<String>,
}

impl Target {
    pub fn name(&self) -> &'static str {
        match self.backend {
            TestBackend::Sqlite => "SQLite",
            TestBackend::Postgres => "PostgreSQL",
        }
    }

    /// A fresh, empty database on this target.
    pub async fn fresh_database(&self) -> TestDatabase {
        TestDatabase::create_on(self.backend, self.admin_url.as_deref()).await
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    if let Some(url) = &cli.serve_child {
        return server::serve_child(url).await;
    }
    let scenarios = if cli.scenarios.is_empty() {
        vec![Scenario::Lifecycle, Scenario::History, Scenario::AuditVerify, Scenario::Memory]
    } else {
        cli.scenarios.clone()
    };
    let mut targets = vec![Target { backend: TestBackend::Sqlite, admin_url: None }];
    if let Some(url) = cli.postgres.clone().filter(|u| !u.is_empty()) {
        targets.push(Target { backend: TestBackend::Postgres, admin_url: Some(url) });
    }
    let lifecycle_settings = lifecycle::Settings {
        clients: cli.clients.max(1),
        duration: std::time::Duration::from_secs(cli.seconds.unwrap_or(if cli.quick { 4 } else { 20 })),
        rounds: cli.rounds.unwrap_or(if cli.quick { 1 } else { 3 }).max(1),
    };
    let rows = cli.rows.unwrap_or(if cli.quick { 20_000 } else { 1_000_000 });

    let mut report = report::Report::new(cli.quick);
    for target in &targets {
        if scenarios.contains(&Scenario::Lifecycle) || scenarios.contains(&Scenario::Memory) {
            eprintln!(
                "[{}] lifecycle: {} clients for {:?} each, raw then API, {} round(s)",
                target.name(),
                lifecycle_settings.clients,
                lifecycle_settings.duration,
                lifecycle_settings.rounds
            );
            let result = lifecycle::run(target, &lifecycle_settings).await?;
            if scenarios.contains(&Scenario::Lifecycle) {
                report.lifecycle.push(result.clone());
            }
            if scenarios.contains(&Scenario::Memory) {
                report.memory.push(report::Memory::from(&result));
            }
        }
        if scenarios.contains(&Scenario::History) {
            eprintln!("[{}] history: 1,000 rows, then {rows} rows", target.name());
            report.history.push(history::run(target, rows, cli.quick).await?);
        }
        if scenarios.contains(&Scenario::AuditVerify) {
            eprintln!("[{}] audit-verify: {rows} entries", target.name());
            report.audit_verify.push(audit_verify::run(target, rows).await?);
        }
    }
    print!("{}", report.markdown());
    if let Some(path) = &cli.json {
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)?;
    }
    Ok(())
}
