//! Runs every scenario at its smallest so the benchmark cannot rot: it must finish, and its
//! figures must be sane (positive, consistent with each other), never fast.

use countersign_store::testing::skip;
use serde_json::Value;
use std::process::Command;

fn number(value: &Value, path: &str) -> f64 {
    let mut v = value;
    for key in path.split('.') {
        v = &v[key];
    }
    v.as_f64().unwrap_or_else(|| panic!("{path} is not a number in {value}"))
}

#[test]
fn every_scenario_runs_in_quick_mode_and_reports_sane_figures() {
    let json_path = tempfile_path();
    let mut command = Command::new(env!("CARGO_BIN_EXE_countersign-bench"));
    command.args(["--quick", "--seconds", "2", "--rows", "3000", "--clients", "4", "--json"]).arg(&json_path);
    // PostgreSQL too, when the test suite has one.
    let postgres = std::env::var("COUNTERSIGN_TEST_DATABASE_URL").ok().filter(|u| !u.is_empty());
    if postgres.is_none() {
        skip("the benchmark's PostgreSQL runs", "COUNTERSIGN_TEST_DATABASE_URL is not set");
    }
    match &postgres {
        Some(url) => command.env("COUNTERSIGN_BENCH_POSTGRES_URL", url),
        None => command.env_remove("COUNTERSIGN_BENCH_POSTGRES_URL"),
    };
    let output = command.output().expect("run countersign-bench");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "exit {}\n{stdout}\n{}", output.status, String::from_utf8_lossy(&output.stderr));
    for heading in ["## lifecycle", "## history", "## audit-verify", "## memory"] {
        assert!(stdout.contains(heading), "the table has no '{heading}' section:\n{stdout}");
    }

    let report: Value = serde_json::from_slice(&std::fs::read(&json_path).expect("the --json file")).unwrap();
    let backends = if postgres.is_some() { 2 } else { 1 };
    for section in ["lifecycle", "history", "audit_verify", "memory"] {
        assert_eq!(report[section].as_array().map(Vec::len), Some(backends), "{section}: {report}");
    }
    for run in report["lifecycle"].as_array().unwrap() {
        for side in ["api", "raw"] {
            assert!(number(run, &format!("{side}.lifecycles")) >= 1.0, "{side} completed no lifecycle: {run}");
            let rate = number(run, &format!("{side}.lifecycles_per_second"));
            let expected = number(run, &format!("{side}.lifecycles")) / number(run, &format!("{side}.seconds"));
            assert!((rate - expected).abs() < 1e-6 * expected.max(1.0), "{side}: rate is lifecycles / seconds");
            for step in ["submit", "approve", "complete"] {
                let p50 = number(run, &format!("{side}.{step}.p50_ms"));
                let p99 = number(run, &format!("{side}.{step}.p99_ms"));
                assert!(p50 > 0.0 && p50 <= p99, "{side} {step}: p50 {p50}, p99 {p99}");
            }
        }
        assert_eq!(run["rounds"].as_array().map(Vec::len), Some(1), "--quick runs one round: {run}");
        assert!(number(run, "writes_per_commit") >= 1.0, "a COMMIT carries at least one write: {run}");
        let ratio = number(run, "ratio");
        let expected = number(run, "api.lifecycles_per_second") / number(run, "raw.lifecycles_per_second");
        assert!((ratio - expected).abs() < 1e-9, "ratio is api / raw: {run}");
    }
    for run in report["history"].as_array().unwrap() {
        assert_eq!(number(run, "large_rows"), 3000.0);
        let queries = run["queries"].as_array().unwrap();
        assert_eq!(queries.len(), 4, "four queries: {run}");
        for q in queries {
            for size in ["small", "large"] {
                assert!(number(q, &format!("{size}.samples")) >= 10.0, "{q}");
                assert!(number(q, &format!("{size}.p50_ms")) > 0.0, "{q}");
            }
            let growth = number(q, "growth");
            assert!((growth - number(q, "large.p99_ms") / number(q, "small.p99_ms")).abs() < 1e-9, "{q}");
        }
    }
    for run in report["audit_verify"].as_array().unwrap() {
        assert!(number(run, "entries") >= 3000.0, "every seeded entry was verified: {run}");
        assert!(number(run, "verify_mb_per_second") > 0.0 && number(run, "raw_hmac_mb_per_second") > 0.0);
        assert!(number(run, "ratio") > 0.0);
    }
    for run in report["memory"].as_array().unwrap() {
        let mib = number(run, "server_peak_rss_mib");
        assert!(mib > 1.0 && mib < 4096.0, "a peak RSS of {mib} MiB is not a real reading");
    }
    let _ = std::fs::remove_file(&json_path);
}

fn tempfile_path() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("countersign-bench-{}.json", std::process::id()))
}
