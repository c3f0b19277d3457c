//! The figures, as a Markdown table for people and JSON for tools.

use crate::audit_verify::AuditVerifyResult;
use crate::history::HistoryResult;
use crate::lifecycle::LifecycleResult;
use serde::Serialize;
use std::fmt::Write;

/// Goals from the benchmark's brief: reported against, never asserted.
pub const LIFECYCLE_RATIO_TARGET: f64 = 0.8;
pub const GROWTH_TARGET: f64 = 3.0;
pub const VERIFY_RATIO_TARGET: f64 = 0.5;
pub const MEMORY_TARGET_MIB: f64 = 100.0;

#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub cores: usize,
    pub cpu: String,
    pub kernel: String,
}

impl Machine {
    fn read() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name").and_then(|rest| rest.split_once(':')).map(|(_, v)| v.trim()))
            .unwrap_or("unknown")
            .to_owned();
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim().to_owned();
        Machine { cores: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1), cpu, kernel }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Memory {
    pub backend: String,
    pub server_peak_rss_mib: f64,
    pub target_mib: f64,
}

impl From<&LifecycleResult> for Memory {
    fn from(result: &LifecycleResult) -> Memory {
        Memory {
            backend: result.backend.clone(),
            server_peak_rss_mib: result.server_peak_rss_mib,
            target_mib: MEMORY_TARGET_MIB,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub machine: Machine,
    pub quick: bool,
    pub lifecycle: Vec<LifecycleResult>,
    pub history: Vec<HistoryResult>,
    pub audit_verify: Vec<AuditVerifyResult>,
    pub memory: Vec<Memory>,
}

fn verdict(met: bool) -> &'static str {
    if met {
        "met"
    } else {
        "**missed**"
    }
}

impl Report {
    pub fn new(quick: bool) -> Report {
        Report {
            machine: Machine::read(),
            quick,
            lifecycle: vec![],
            history: vec![],
            audit_verify: vec![],
            memory: vec![],
        }
    }

    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let m = &self.machine;
        let _ = writeln!(out, "# countersign-bench{}\n", if self.quick { " (--quick sizes)" } else { "" });
        let _ = writeln!(out, "{} cores, {}, Linux {}\n", m.cores, m.cpu, m.kernel);
        if !self.lifecycle.is_empty() {
            let _ = writeln!(out, "## lifecycle: submit → approve → complete\n");
            let _ = writeln!(
                out,
                "| backend | clients | API lifecycles/s | raw lifecycles/s | ratio (target ≥ {LIFECYCLE_RATIO_TARGET}) | | rounds (API / raw) | server CPU ms/lifecycle | writes per COMMIT |"
            );
            let _ = writeln!(out, "|---|---:|---:|---:|---:|---|---|---:|---:|");
            for r in &self.lifecycle {
                let rounds: Vec<String> = r
                    .rounds
                    .iter()
                    .map(|x| format!("{:.0} / {:.0}", x.api_lifecycles_per_second, x.raw_lifecycles_per_second))
                    .collect();
                let _ = writeln!(
                    out,
                    "| {} | {} | {:.0} | {:.0} | {:.2} | {} | {} | {:.2} | {:.1} |",
                    r.backend,
                    r.clients,
                    r.api.lifecycles_per_second,
                    r.raw.lifecycles_per_second,
                    r.ratio,
                    verdict(r.ratio >= LIFECYCLE_RATIO_TARGET),
                    rounds.join(", "),
                    r.server_cpu_ms_per_lifecycle,
                    r.writes_per_commit
                );
            }
            let _ = writeln!(out, "\nLatency per step, ms (p50 / p95 / p99):\n");
            let _ = writeln!(out, "| backend | side | submit | approve | complete |");
            let _ = writeln!(out, "|---|---|---:|---:|---:|");
            for r in &self.lifecycle {
                for (side, t) in [("API", &r.api), ("raw", &r.raw)] {
                    let step =
                        |l: &crate::stats::Latency| format!("{:.1} / {:.1} / {:.1}", l.p50_ms, l.p95_ms, l.p99_ms);
                    let _ = writeln!(
                        out,
                        "| {} | {side} | {} | {} | {} |",
                        r.backend,
                        step(&t.submit),
                        step(&t.approve),
                        step(&t.complete)
                    );
                }
            }
            let _ = writeln!(out);
        }
        if !self.history.is_empty() {
            let _ = writeln!(
                out,
                "## history: the same queries on {} rows and on the large history\n",
                crate::history::SMALL
            );
            let _ = writeln!(out, "| backend | query | p50 / p99 ms, small | rows | p50 / p99 ms, large | growth of p99 (target ≤ {GROWTH_TARGET}) | |");
            let _ = writeln!(out, "|---|---|---:|---:|---:|---:|---|");
            for h in &self.history {
                for q in &h.queries {
                    let _ = writeln!(
                        out,
                        "| {} | {} | {:.2} / {:.2} | {} | {:.2} / {:.2} | {:.2} | {} |",
                        h.backend,
                        q.query,
                        q.small.p50_ms,
                        q.small.p99_ms,
                        h.large_rows,
                        q.large.p50_ms,
                        q.large.p99_ms,
                        q.growth,
                        verdict(q.growth <= GROWTH_TARGET)
                    );
                }
            }
            for h in &self.history {
                let _ = writeln!(
                    out,
                    "\n{}: seeding {} requests and {} audit entries took {:.1} s.",
                    h.backend, h.large_rows, h.large_rows, h.seed_seconds
                );
            }
            let _ = writeln!(out);
        }
        if !self.audit_verify.is_empty() {
            let _ = writeln!(out, "## audit-verify\n");
            let _ = writeln!(out, "| backend | entries | entries/s | verify MB/s | raw HMAC-SHA-256 MB/s | ratio (target ≥ {VERIFY_RATIO_TARGET}) | | chain check alone, MB/s | its ratio |");
            let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---|---:|---:|");
            for a in &self.audit_verify {
                let _ = writeln!(
                    out,
                    "| {} | {} | {:.0} | {:.1} | {:.1} | {:.2} | {} | {:.1} | {:.2} |",
                    a.backend,
                    a.entries,
                    a.entries_per_second,
                    a.verify_mb_per_second,
                    a.raw_hmac_mb_per_second,
                    a.ratio,
                    verdict(a.ratio >= VERIFY_RATIO_TARGET),
                    a.chain_check_mb_per_second,
                    a.chain_check_ratio
                );
            }
            let _ = writeln!(out);
        }
        if !self.memory.is_empty() {
            let _ = writeln!(out, "## memory: the server's peak RSS during the lifecycle run\n");
            let _ = writeln!(out, "| backend | peak RSS MiB (target ≤ {MEMORY_TARGET_MIB}) | |");
            let _ = writeln!(out, "|---|---:|---|");
            for mem in &self.memory {
                let _ = writeln!(
                    out,
                    "| {} | {:.1} | {} |",
                    mem.backend,
                    mem.server_peak_rss_mib,
                    verdict(mem.server_peak_rss_mib <= mem.target_mib)
                );
            }
        }
        out
    }
}
