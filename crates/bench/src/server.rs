//! The server under test, in a process of its own: the benchmark re-runs its own executable
//! with `--serve-child`, so the server's memory and CPU time are read apart from the clients'.

use anyhow::{anyhow, bail, Context, Result};
use countersign_server::{AppState, ServerConfig, SystemClock};
use countersign_store::Store;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};

const LISTENING: &str = "listening ";

/// The bearer token the server under test asks of `/metrics` scrapes.
pub const METRICS_TOKEN: &str = "bench-metrics-token";

/// The child side: serves `database_url` with the defaults `countersign serve` uses, until its
/// standard input closes (so it never outlives the benchmark).
pub async fn serve_child(database_url: &str) -> Result<()> {
    // `RUST_LOG` reaches the server under test (for example `sqlx::query=debug` lists every
    // statement it runs); warnings and errors by default.
    let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into());
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    let store = Store::connect(database_url, crate::store_options()).await?;
    let config = ServerConfig { metrics_token: Some(METRICS_TOKEN.to_owned().into()), ..ServerConfig::default() };
    let state = AppState::new(store, Arc::new(SystemClock), config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("{LISTENING}http://{}", listener.local_addr()?);
    let shutdown = async {
        let mut sink = Vec::new();
        let _ = tokio::io::stdin().read_to_end(&mut sink).await;
    };
    countersign_server::serve(listener, state, shutdown).await?;
    Ok(())
}

pub struct ServerProcess {
    child: Child,
    pid: u32,
    pub base: String,
}

impl ServerProcess {
    pub async fn start(database_url: &str) -> Result<ServerProcess> {
        let exe = std::env::current_exe().context("locating the benchmark's own executable")?;
        let mut child = Command::new(exe)
            .arg("--serve-child")
            .arg(database_url)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .context("starting the server under test")?;
        let pid = child.id().ok_or_else(|| anyhow!("the server under test exited at once"))?;
        let stdout = child.stdout.take().ok_or_else(|| anyhow!("no standard output from the server"))?;
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
            .await
            .context("the server under test did not start within 60 s")??
            .ok_or_else(|| anyhow!("the server under test exited before listening"))?;
        let Some(base) = line.strip_prefix(LISTENING) else { bail!("unexpected first line from the server: {line}") };
        Ok(ServerProcess { child, pid, base: base.to_owned() })
    }

    /// The most memory the process has had resident since it started (`VmHWM`).
    pub fn peak_rss_bytes(&self) -> Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid))?;
        let line = status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))
            .ok_or_else(|| anyhow!("no VmHWM in /proc/{}/status", self.pid))?;
        let kib: u64 = line.trim_start_matches("VmHWM:").trim().trim_end_matches("kB").trim().parse()?;
        Ok(kib * 1024)
    }

    /// User plus system CPU time the process has used.
    pub fn cpu_time(&self) -> Result<Duration> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid))?;
        // Fields after the command name, which is in parentheses and may contain spaces.
        let after_name = stat.rsplit_once(')').map(|(_, rest)| rest).ok_or_else(|| anyhow!("odd /proc stat"))?;
        let fields: Vec<&str> = after_name.split_whitespace().collect();
        // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
        let ticks: u64 = fields
            .get(11..13)
            .ok_or_else(|| anyhow!("short /proc stat"))?
            .iter()
            .map(|f| f.parse::<u64>().unwrap_or(0))
            .sum();
        Ok(Duration::from_secs_f64(ticks as f64 / clock_ticks_per_second()))
    }

    pub async fn stop(mut self) -> Result<()> {
        drop(self.child.stdin.take());
        match tokio::time::timeout(Duration::from_secs(15), self.child.wait()).await {
            Ok(status) => {
                let status = status?;
                if !status.success() {
                    bail!("the server under test exited with {status}");
                }
            }
            Err(_) => {
                self.child.kill().await?;
                bail!("the server under test did not stop within 15 s");
            }
        }
        Ok(())
    }
}

/// `sysconf(_SC_CLK_TCK)`: 100 on every Linux this runs on.
fn clock_ticks_per_second() -> f64 {
    100.0
}
