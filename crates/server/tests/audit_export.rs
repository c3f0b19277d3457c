//! R13's export sinks against real receivers: Debian's rsyslogd (started by the test with its
//! own configuration, a TCP input on a free port and a file in a temporary directory; over TLS
//! with rsyslog-gnutls and a CA the test makes with the openssl CLI), and an HTTP receiver for
//! the webhook. Each sink is down for a while and then comes back; afterwards it holds every
//! entry in order, once each, and every checkpoint, and they verify.
//!
//! Without rsyslogd (or its gtls driver, or openssl) a test prints one `skipped:` line; under
//! `COUNTERSIGN_REQUIRE_ALL_TESTS=1` it fails instead.

#[allow(dead_code)] // the end-to-end harness has more than these tests use
#[path = "e2e/harness.rs"]
mod harness;

use countersign_core::audit::{chain_hash, parse_checkpoints, Checkpoint};
use countersign_core::{Clock, Millis};
use countersign_server::audit::export::{AuditSink, SinkSettings};
use countersign_server::audit::AuditSettings;
use countersign_server::{AppState, ServerConfig};
use countersign_store::testing::skip;
use countersign_store::{backend_tests, Store, VerifyInputs};
use harness::*;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const SECRET: &str = "an-audit-export-signing-secret";
/// How long a test waits for a sink to catch up.
const PATIENCE: Duration = Duration::from_secs(30);

fn sink(fields: Value) -> AuditSink {
    let settings: SinkSettings = serde_json::from_value(fields).unwrap();
    AuditSink::from_settings(&settings).unwrap()
}

/// Exports quickly: a sink that comes back is tried again within a second or so.
fn exporting(sinks: Vec<AuditSink>) -> impl FnOnce(&mut ServerConfig) {
    move |config| {
        config.audit_sinks = sinks;
        config.audit_export_interval = Duration::from_millis(50);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn rsyslogd() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).map(|dir| dir.join("rsyslogd")).collect::<Vec<_>>())
        .unwrap_or_default();
    on_path.into_iter().chain([PathBuf::from("/usr/sbin/rsyslogd")]).find(|p| p.is_file())
}

/// Whether rsyslog's TLS driver (Debian's rsyslog-gnutls) is installed.
fn gtls_driver() -> bool {
    ["/usr/lib/x86_64-linux-gnu/rsyslog", "/usr/lib/aarch64-linux-gnu/rsyslog", "/usr/lib/rsyslog"]
        .iter()
        .any(|dir| Path::new(dir).join("lmnsd_gtls.so").is_file())
}

/// The server's certificate files for rsyslog's TLS input, and the CA that signed them.
struct TestCa {
    ca: PathBuf,
    certificate: PathBuf,
    key: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl").args(args).current_dir(dir).output().expect("openssl");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A CA and a certificate for localhost and 127.0.0.1 signed by it, made with the openssl CLI.
fn make_ca(dir: &Path, name: &str) -> TestCa {
    let ca_key = format!("{name}-ca.key");
    let ca = format!("{name}-ca.pem");
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &ca_key,
            "-out",
            &ca,
            "-days",
            "2",
            "-subj",
            &format!("/CN={name} test CA"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
    let key = format!("{name}-server.key");
    let csr = format!("{name}-server.csr");
    let certificate = format!("{name}-server.pem");
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &csr,
            "-subj",
            "/CN=localhost",
        ],
    );
    let extensions = format!("{name}-server.ext");
    std::fs::write(
        dir.join(&extensions),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-out",
            &certificate,
            "-days",
            "2",
            "-extfile",
            &extensions,
        ],
    );
    TestCa { ca: dir.join(ca), certificate: dir.join(certificate), key: dir.join(key) }
}

/// `rsyslogd -n` with a configuration of its own: a TCP (or TLS) input on `port`, every message
/// it receives written raw, one per line, to `out.log` in `dir`.
struct Rsyslog {
    child: Option<Child>,
    binary: PathBuf,
    dir: PathBuf,
    port: u16,
}

impl Rsyslog {
    fn configure(dir: &Path, port: u16, tls: Option<&TestCa>) {
        let d = dir.display();
        let (global, input_module) = match tls {
            None => (String::new(), r#"module(load="imtcp")"#.to_owned()),
            Some(ca) => (
                format!(
                    r#"global(DefaultNetstreamDriver="gtls" DefaultNetstreamDriverCAFile="{}" DefaultNetstreamDriverCertFile="{}" DefaultNetstreamDriverKeyFile="{}")"#,
                    ca.ca.display(),
                    ca.certificate.display(),
                    ca.key.display()
                ),
                r#"module(load="imtcp" StreamDriver.Name="gtls" StreamDriver.Mode="1" StreamDriver.AuthMode="anon")"#
                    .to_owned(),
            ),
        };
        // A ruleset of its own, so rsyslogd's messages about itself stay out of the file.
        let config = format!(
            r#"global(workDirectory="{d}" maxMessageSize="1m")
{global}
{input_module}
template(name="raw" type="string" string="%rawmsg%\n")
ruleset(name="export") {{
    action(type="omfile" file="{d}/out.log" template="raw")
}}
input(type="imtcp" address="127.0.0.1" port="{port}" ruleset="export")
"#
        );
        std::fs::write(dir.join("rsyslog.conf"), config).unwrap();
    }

    fn new(binary: PathBuf, dir: &Path, port: u16, tls: Option<&TestCa>) -> Rsyslog {
        Rsyslog::configure(dir, port, tls);
        Rsyslog { child: None, binary, dir: dir.to_owned(), port }
    }

    /// Starts the daemon and waits until it accepts connections.
    async fn start(&mut self) {
        let child = Command::new(&self.binary)
            .args(["-n", "-f"])
            .arg(self.dir.join("rsyslog.conf"))
            .arg("-i")
            .arg(self.dir.join("rsyslogd.pid"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start rsyslogd");
        self.child = Some(child);
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("rsyslogd did not listen on port {} (see {}/rsyslog.conf)", self.port, self.dir.display());
    }

    /// Stops the daemon (SIGTERM) and waits until it is gone.
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
            let _ = child.wait();
        }
    }

    fn written(&self) -> String {
        std::fs::read_to_string(self.dir.join("out.log")).unwrap_or_default()
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The messages of a syslog file: the JSON after each whole line's header (rsyslogd may be
/// writing the last one).
fn syslog_messages(text: &str) -> Vec<Value> {
    let whole = &text[..text.rfind('\n').map_or(0, |end| end + 1)];
    whole.lines().map(|line| serde_json::from_str(&line[line.find('{').unwrap()..]).unwrap()).collect()
}

/// Every checkpoint the server made, as the database keeps them.
async fn stored_checkpoints(store: &Store) -> Vec<Checkpoint> {
    store.checkpoints_after(Millis::MIN, i64::MAX).await.unwrap().into_iter().map(Result::unwrap).collect()
}

/// Some activity: `n` apps made (each a few audit entries), with a checkpoint after each.
async fn activity(app: &TestApp, n: usize, checkpoints: &mut Option<(i64, Millis)>) {
    let every_entry = AuditSettings { checkpoint_entries: 1, ..app.audit.clone() };
    for i in 0..n {
        app.create_app(&format!("app {i} {}", uuid::Uuid::now_v7())).await;
        app.clock.advance(1);
        countersign_server::audit::checkpoints::checkpoint_if_due(
            &app.store,
            &every_entry,
            checkpoints,
            app.clock.now(),
        )
        .await
        .unwrap()
        .expect("a checkpoint was due");
    }
}

/// What a sink must hold: every entry from 1 to the head, in order, once each, each hashing
/// to its hash; every checkpoint right after the entry it signs (none missing, none twice),
/// signed by the server; and, with them, the log verifies.
async fn assert_complete(app: &TestApp, messages: &[Value], what: &str) {
    let head = app.store.audit_head_seq().await.unwrap();
    let entries: Vec<&Value> = messages.iter().filter(|m| m["type"] == "auditEntry").collect();
    let seqs: Vec<i64> = entries.iter().map(|m| m["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, (1..=head).collect::<Vec<_>>(), "{what}: every entry, in order, once each");
    for entry in &entries {
        let bytes = entry["entry"].as_str().unwrap().as_bytes();
        let prev = entry["prevHash"].as_str().unwrap();
        assert_eq!(hex::encode(chain_hash(prev, bytes)), entry["hash"], "{what}: an exported entry hashes again");
        assert!(entry.get("signature").is_none() && entry.get("kind").is_none(), "{what}: {entry}");
        assert!(entry["time"].as_str().unwrap().ends_with('Z') && entry["details"].is_object(), "{entry}");
    }
    let mut sent: Vec<Checkpoint> = Vec::new();
    let mut last_entry = 0;
    for message in messages {
        match message["type"].as_str().unwrap() {
            "auditEntry" => last_entry = message["seq"].as_i64().unwrap(),
            "auditCheckpoint" => {
                let checkpoint: Checkpoint = serde_json::from_value(message.clone()).unwrap();
                assert!(checkpoint.seq <= last_entry, "{what}: checkpoint {} before its entry", checkpoint.seq);
                sent.push(checkpoint);
            }
            other => panic!("{what}: a message of type {other}"),
        }
    }
    let stored = stored_checkpoints(&app.store).await;
    assert!(stored.len() >= 3, "the test made checkpoints: {stored:?}");
    let key = |c: &Checkpoint| (c.seq, c.at, c.kind == countersign_core::audit::CheckpointKind::Periodic);
    let mut expected: Vec<_> = stored.iter().map(key).collect();
    expected.sort_unstable();
    let mut got: Vec<_> = sent.iter().map(key).collect();
    got.sort_unstable();
    assert_eq!(got, expected, "{what}: every checkpoint, once each");
    let public_key = app.audit.signer.public_key();
    assert!(sent.iter().all(|c| c.signed_by(&public_key)), "{what}: signed by the server's key");
    // An auditor with the public key and the sink's copy, but not the audit key.
    let report = app
        .store
        .verify_audit(VerifyInputs { keys: None, public_key: Some(public_key), checkpoints: sent })
        .await
        .unwrap();
    assert!(report.valid, "{what}: {report:?}");
}

/// Waits until `read` shows every entry up to the head and every checkpoint.
async fn wait_until_caught_up(app: &TestApp, read: impl Fn() -> Vec<Value>) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let head = app.store.audit_head_seq().await.unwrap();
        let checkpoints = stored_checkpoints(&app.store).await.len();
        let messages = read();
        let last = messages.iter().filter(|m| m["type"] == "auditEntry").filter_map(|m| m["seq"].as_i64()).max();
        let sent_checkpoints = messages.iter().filter(|m| m["type"] == "auditCheckpoint").count();
        if last >= Some(head) && sent_checkpoints >= checkpoints {
            // Anything sent twice would have arrived by now too.
            tokio::time::sleep(Duration::from_millis(300)).await;
            return read();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the sink did not catch up: {} messages, head {head}",
            messages.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn rsyslog_or_skip(what: &str) -> Option<PathBuf> {
    let found = rsyslogd();
    if found.is_none() {
        skip(what, "rsyslogd is not installed (apt-get install rsyslog)");
    }
    found
}

backend_tests!(a_syslog_sink_that_is_down_for_a_while_gets_everything_once_it_is_back_in_order_and_once_each);
async fn a_syslog_sink_that_is_down_for_a_while_gets_everything_once_it_is_back_in_order_and_once_each(
    backend: TestBackend,
) {
    let Some(binary) = rsyslog_or_skip("audit export to rsyslog") else { return };
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let siem = sink(json!({"name": "siem", "syslog": format!("tcp://127.0.0.1:{port}")}));
    with_configured_app(backend, Setup::unprotected(), exporting(vec![siem]), |app| async move {
        let mut rsyslog = Rsyslog::new(binary, dir.path(), port, None);
        let mut checkpoints = None;
        // Down from the start: nothing listens yet.
        activity(&app, 3, &mut checkpoints).await;
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(rsyslog.written(), "");
        rsyslog.start().await;
        let first = wait_until_caught_up(&app, || syslog_messages(&rsyslog.written())).await;
        assert_complete(&app, &first, "after the first outage").await;

        // Down again, with the exporter's connection open: it finds it closed and reconnects.
        rsyslog.stop();
        activity(&app, 3, &mut checkpoints).await;
        tokio::time::sleep(Duration::from_millis(400)).await;
        rsyslog.start().await;
        let all = wait_until_caught_up(&app, || syslog_messages(&rsyslog.written())).await;
        assert!(all.len() > first.len());
        assert_complete(&app, &all, "after the second outage").await;

        // The file as rsyslog wrote it: RFC 5424 lines, and the checkpoints read back from it.
        let text = rsyslog.written();
        for line in text.lines() {
            let entry = line.contains(" countersign ") && line.contains(" auditEntry - {\"");
            let checkpoint = line.contains(" countersign ") && line.contains(" auditCheckpoint - {\"");
            assert!(
                (entry && line.starts_with("<86>1 ")) || (checkpoint && line.starts_with("<85>1 ")),
                "authpriv.info entries, authpriv.notice checkpoints: {line}"
            );
        }
        let read_back = parse_checkpoints(&text).unwrap();
        assert_eq!(read_back.len(), stored_checkpoints(&app.store).await.len());
        let public_key = app.audit.signer.public_key();
        assert!(read_back.iter().all(|c| c.signed_by(&public_key)));
        let inputs = VerifyInputs { keys: None, public_key: Some(public_key), checkpoints: read_back };
        assert!(app.store.verify_audit(inputs).await.unwrap().valid);
    })
    .await;
}

backend_tests!(a_tls_syslog_sink_gets_everything_and_a_sink_that_trusts_another_ca_gets_nothing);
async fn a_tls_syslog_sink_gets_everything_and_a_sink_that_trusts_another_ca_gets_nothing(backend: TestBackend) {
    let Some(binary) = rsyslog_or_skip("audit export to rsyslog over TLS") else { return };
    if !gtls_driver() {
        skip(
            "audit export to rsyslog over TLS",
            "rsyslog's TLS driver is not installed (apt-get install rsyslog-gnutls)",
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let ca = make_ca(dir.path(), "siem");
    let stranger = make_ca(dir.path(), "stranger");
    let port = free_port();
    let address = format!("tls://localhost:{port}");
    let trusted = sink(json!({"name": "siem", "syslog": address, "ca_file": ca.ca, "facility": "local0"}));
    let untrusted = sink(json!({"name": "impostor-check", "syslog": address, "ca_file": stranger.ca}));
    with_configured_app(backend, Setup::unprotected(), exporting(vec![trusted, untrusted]), |app| async move {
        let mut rsyslog = Rsyslog::new(binary, dir.path(), port, Some(&ca));
        let mut checkpoints = None;
        activity(&app, 2, &mut checkpoints).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        rsyslog.start().await;
        let messages = wait_until_caught_up(&app, || syslog_messages(&rsyslog.written())).await;
        // Once each: the sink trusting another CA never got through the handshake.
        assert_complete(&app, &messages, "over TLS").await;
        assert!(rsyslog.written().lines().all(|l| l.starts_with("<134>1 ") || l.starts_with("<133>1 ")), "local0");
        let positions = app.store.audit_export_positions().await.unwrap();
        let head = app.store.audit_head_seq().await.unwrap();
        assert_eq!(positions, [("impostor-check".to_owned(), 0), ("siem".to_owned(), head)]);
    })
    .await;
}

/// What a webhook receiver got: the signature header and the body, and what it answered.
type Hits = Arc<Mutex<Vec<(String, String, u16)>>>;

/// An HTTP receiver on `listener` answering `failures` times 503, then 200.
fn webhook_receiver(listener: tokio::net::TcpListener, failures: usize) -> Hits {
    let hits: Hits = Arc::default();
    let recorded = hits.clone();
    let app = axum::Router::new().route(
        "/audit",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
            let recorded = recorded.clone();
            async move {
                let signature =
                    headers.get("x-countersign-signature").and_then(|v| v.to_str().ok()).unwrap_or_default();
                let mut hits = recorded.lock().unwrap();
                let status = if hits.len() < failures { 503 } else { 200 };
                hits.push((signature.to_owned(), body, status));
                axum::http::StatusCode::from_u16(status).unwrap()
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    hits
}

/// The messages the receiver accepted, in the order it got them; every POST's signature checked.
fn accepted(hits: &Hits) -> Vec<Value> {
    let hits = hits.lock().unwrap();
    let mut messages = Vec::new();
    for (signature, body, status) in hits.iter() {
        let (t, v1) = signature.trim_start_matches("t=").split_once(",v1=").expect("a signature header");
        let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
        mac.update(format!("{t}.{body}").as_bytes());
        assert_eq!(hex::encode(mac.finalize().into_bytes()), v1, "the signature verifies");
        if *status == 200 {
            messages.extend(serde_json::from_str::<Vec<Value>>(body).unwrap());
        }
    }
    messages
}

backend_tests!(a_webhook_sink_that_is_down_for_a_while_gets_everything_once_it_is_back_in_order_and_once_each);
async fn a_webhook_sink_that_is_down_for_a_while_gets_everything_once_it_is_back_in_order_and_once_each(
    backend: TestBackend,
) {
    let port = free_port();
    let archive =
        sink(json!({"name": "archive", "webhook": format!("http://127.0.0.1:{port}/audit"), "secret": SECRET}));
    let configure = |config: &mut ServerConfig| {
        exporting(vec![archive])(config);
        config.metrics_token = Some("scrape".to_owned().into());
    };
    with_configured_app(backend, Setup::unprotected(), configure, |app| async move {
        let mut checkpoints = None;
        // Nothing listens at first; then the receiver fails twice before it accepts.
        activity(&app, 3, &mut checkpoints).await;
        tokio::time::sleep(Duration::from_millis(400)).await;
        let head = app.store.audit_head_seq().await.unwrap();
        assert!(behind(&app).await.contains(&format!("countersign_audit_export_behind{{sink=\"archive\"}} {head}\n")));
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        let hits = webhook_receiver(listener, 2);
        let messages = wait_until_caught_up(&app, || accepted(&hits)).await;
        assert!(hits.lock().unwrap().iter().filter(|h| h.2 == 503).count() == 2);
        assert_complete(&app, &messages, "webhook").await;
        assert!(behind(&app).await.contains("countersign_audit_export_behind{sink=\"archive\"} 0\n"));
        // A POST's body is a JSON array, which `parse_checkpoints` reads as it is.
        let bodies: Vec<String> = hits.lock().unwrap().iter().filter(|h| h.2 == 200).map(|h| h.1.clone()).collect();
        let read_back: usize = bodies.iter().filter_map(|b| parse_checkpoints(b).ok()).map(|c| c.len()).sum();
        assert_eq!(read_back, stored_checkpoints(&app.store).await.len());
    })
    .await;
}

/// `/metrics`, as a scraper with the token reads it.
async fn behind(app: &TestApp) -> String {
    let response = app.http.get(format!("{}/metrics", app.base)).bearer_auth("scrape").send().await.unwrap();
    assert_eq!(response.status(), 200);
    response.text().await.unwrap()
}

/// A second server on the app's database, exporting to `sinks`, until `stop` is sent.
async fn replica(
    app: &TestApp,
    sinks: Vec<AuditSink>,
) -> (tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
    let store = Store::connect(&app.database_url, app.store_options(3)).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut config = ServerConfig { audit: Some(app.audit.clone()), ..ServerConfig::default() };
    exporting(sinks)(&mut config);
    let state = AppState::new(store, app.clock.clone(), config);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        countersign_server::serve(listener, state, async {
            let _ = stopped.await;
        })
        .await
        .unwrap();
    });
    (stop, server)
}

backend_tests!(two_replicas_never_both_send_to_a_sink_and_the_second_takes_over_when_the_first_stops);
async fn two_replicas_never_both_send_to_a_sink_and_the_second_takes_over_when_the_first_stops(backend: TestBackend) {
    // The app's own server exports nothing; two replicas export to one receiver.
    with_app(backend, Setup::unprotected(), |app| async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/audit", listener.local_addr().unwrap());
        let hits = webhook_receiver(listener, 0);
        let archive = || sink(json!({"name": "archive", "webhook": url, "secret": SECRET}));
        let (stop_first, first) = replica(&app, vec![archive()]).await;
        let mut checkpoints = None;
        activity(&app, 2, &mut checkpoints).await;
        wait_until_caught_up(&app, || accepted(&hits)).await;
        // The first holds the sink's lease; the second waits while it does.
        let (stop_second, second) = replica(&app, vec![archive()]).await;
        activity(&app, 2, &mut checkpoints).await;
        let messages = wait_until_caught_up(&app, || accepted(&hits)).await;
        assert_complete(&app, &messages, "two replicas").await;

        // The lease holder stops (and lets go); the other carries on where it was.
        let before = hits.lock().unwrap().len();
        stop_first.send(()).unwrap();
        first.await.unwrap();
        activity(&app, 2, &mut checkpoints).await;
        let messages = wait_until_caught_up(&app, || accepted(&hits)).await;
        assert!(hits.lock().unwrap().len() > before);
        assert_complete(&app, &messages, "after a replica stopped").await;
        stop_second.send(()).unwrap();
        second.await.unwrap();
    })
    .await;
}
