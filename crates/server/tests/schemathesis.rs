//! schemathesis (PyPI) against `/api/v1/openapi.json`: every operation, signed in with an
//! Administrator's bearer token, on a fresh SQLite tenant, bounded in size. Its checks: no 5xx
//! (`not_a_server_error`), every answer's status code, content type, headers and body as the
//! document says (`status_code_conformance`, `content_type_conformance`,
//! `response_headers_conformance`, `response_schema_conformance`).
//!
//! The CLI comes from a virtual environment outside the clone that `.ci/run` makes:
//! `COUNTERSIGN_SCHEMATHESIS` names it. Without it the test is skipped (and fails under
//! `COUNTERSIGN_REQUIRE_ALL_TESTS=1`).

#[allow(dead_code)] // the end-to-end harness has more than this test uses
#[path = "e2e/harness.rs"]
mod harness;

use harness::{with_app, Setup, TestBackend};
use reqwest::StatusCode;
use std::process::Command;

const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,\
                      response_headers_conformance,response_schema_conformance";

/// Operations left out, each for a reason: the event stream never ends (an answer that is never
/// complete cannot be checked; the e2e tests read it), and deleting the caller's own token would
/// sign the rest of the run out.
const EXCLUDED: [&str; 2] = ["requests_stream", "auth_delete_token"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_error_and_no_answer_outside_the_document() {
    let Some(schemathesis) = std::env::var("COUNTERSIGN_SCHEMATHESIS").ok().filter(|s| !s.is_empty()) else {
        countersign_store::testing::skip("the schemathesis run", "COUNTERSIGN_SCHEMATHESIS is not set");
        return;
    };
    with_app(TestBackend::Sqlite, Setup::protected(), |app| async move {
        let mut command = Command::new(&schemathesis);
        command
            .arg("run")
            .arg(format!("{}/api/v1/openapi.json", app.base))
            .args(["--header", &format!("Authorization: Bearer {}", app.admin.token)])
            // One worker: with two, Python 3.11's compiler races between schemathesis's threads
            // ("SystemError: AST constructor recursion depth mismatch" while it builds a
            // generator), failing 4 runs in 5 here once the passkey endpoints were added; the
            // run takes no longer with one.
            .args(["--checks", CHECKS, "--max-examples", "5", "--workers", "1", "--seed", "15"])
            .args(["--request-timeout", "20", "--no-color"]);
        for operation in EXCLUDED {
            command.args(["--exclude-operation-id", operation]);
        }
        // Hypothesis keeps its example database in the working directory: not in the clone.
        let scratch = tempfile::tempdir().unwrap();
        command.current_dir(scratch.path());
        let output = tokio::task::spawn_blocking(move || command.output())
            .await
            .unwrap()
            .unwrap_or_else(|e| panic!("cannot run {schemathesis}: {e}"));
        let report = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "schemathesis found failures:\n{report}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(report.contains("Tested:"), "{report}");
        // The run was signed in to the end, so every operation ran as the Administrator.
        let (status, me) = app.get(&app.admin, "/api/v1/me").await;
        assert_eq!(status, StatusCode::OK, "{me}\n{report}");
        eprintln!(
            "{}",
            report.lines().filter(|l| l.contains("generated") || l.contains("Tested")).collect::<Vec<_>>().join("\n")
        );
    })
    .await;
}
