//! R13 for SIEMs: every audit entry and every signed checkpoint, as JSON, to each configured
//! sink: syslog (RFC 5424 over TCP with octet counting, RFC 6587; optionally TLS) or a signed
//! webhook.
//!
//! Not through the notification outbox: that would add a row per entry per sink to every
//! audited write. Each sink has a cursor in the database instead (`audit_export_cursors`), and
//! its exporter reads the log after it, sends a batch in order (a checkpoint right after the
//! entry it signs), and moves the cursor only once the sink accepted the batch: at least once,
//! in order, and resumed after an outage or a restart, with backoff while the sink is down. A
//! lease on the cursor row lets one replica at a time send to a sink.

use crate::AppState;
use countersign_core::audit::{AuditRecord, Checkpoint};
use countersign_core::Millis;
use countersign_store::{ExportCursor, Store, LATE_CHECKPOINTS};
use futures::FutureExt;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long an exporter's lease on a sink lasts, and how much of it must be left before it sends
/// (more than [`SEND_TIMEOUT`], so a send always ends inside the lease).
const LEASE: Millis = 30_000;
const LEASE_LEFT_TO_SEND: Millis = 20_000;
/// A connection, or one batch's write or POST, that takes longer than this has failed.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// Messages per batch: one write on a syslog connection; one POST to a webhook.
const SYSLOG_BATCH: i64 = 500;
const WEBHOOK_BATCH: i64 = 100;
/// The longest wait between attempts while a sink is down.
const MAX_RETRY: Duration = Duration::from_secs(60);

/// A sink as `countersign.toml` (`[[audit_sinks]]`) or `COUNTERSIGN_AUDIT_SINKS` names it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SinkSettings {
    pub name: String,
    /// `tcp://host:port` or `tls://host:port`.
    pub syslog: Option<String>,
    /// `https://…` (or `http://…`).
    pub webhook: Option<String>,
    /// Signs each webhook POST; required with `webhook`.
    pub secret: Option<SecretString>,
    /// PEM certificates to trust instead of the public (Mozilla) roots, for `tls://` and `https://`.
    pub ca_file: Option<PathBuf>,
    /// The syslog facility, by name (`authpriv`, `local0`, …) or number [default: authpriv].
    pub facility: Option<String>,
}

/// A checked sink, ready to export to.
#[derive(Debug, Clone)]
pub struct AuditSink {
    pub name: String,
    pub target: SinkTarget,
}

#[derive(Debug, Clone)]
pub enum SinkTarget {
    Syslog { host: String, port: u16, tls: Option<Arc<rustls::ClientConfig>>, facility: u8 },
    Webhook { url: String, secret: SecretString, tls: Option<Arc<rustls::ClientConfig>> },
}

/// RFC 5424's facility names (§6.2.1, as syslog daemons spell them).
const FACILITIES: [&str; 16] = [
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv", "ftp", "ntp",
    "audit", "alert", "clock",
];

fn facility(name: &str) -> Option<u8> {
    if let Some(n) = name.strip_prefix("local").and_then(|n| n.parse::<u8>().ok()).filter(|n| *n < 8) {
        return Some(16 + n);
    }
    FACILITIES.iter().position(|f| *f == name).map(|n| n as u8).or_else(|| name.parse::<u8>().ok().filter(|n| *n < 24))
}

/// Trusts the certificates in `ca_file`, or the public roots; with ring, the workspace's one
/// rustls provider.
fn tls_config(ca_file: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(file) => {
            let unreadable = |e: rustls::pki_types::pem::Error| format!("ca_file {}: {e}", file.display());
            for certificate in CertificateDer::pem_file_iter(file).map_err(unreadable)? {
                roots.add(certificate.map_err(unreadable)?).map_err(|e| format!("ca_file {}: {e}", file.display()))?;
            }
            if roots.is_empty() {
                return Err(format!("ca_file {}: holds no certificate", file.display()));
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

impl AuditSink {
    /// Checks a sink's settings; the error says what is wrong with which sink.
    pub fn from_settings(settings: &SinkSettings) -> Result<AuditSink, String> {
        let name = settings.name.trim();
        let fail = |why: String| format!("audit sink '{name}': {why}");
        if name.is_empty() {
            return Err("an audit sink needs a name".into());
        }
        let target = match (&settings.syslog, &settings.webhook) {
            (Some(address), None) => {
                if settings.secret.is_some() {
                    return Err(fail("secret is for webhook sinks; a syslog sink has none".into()));
                }
                let url = url::Url::parse(address)
                    .map_err(|e| fail(format!("syslog = '{address}' is not an address: {e}")))?;
                let tls = match url.scheme() {
                    "tcp" => None,
                    "tls" => Some(tls_config(settings.ca_file.as_deref()).map_err(fail)?),
                    other => {
                        return Err(fail(format!("syslog = '{address}': the scheme is {other}, not tcp:// or tls://")))
                    }
                };
                if tls.is_none() && settings.ca_file.is_some() {
                    return Err(fail("ca_file needs a tls:// syslog address".into()));
                }
                let host = url
                    .host_str()
                    .filter(|h| !h.is_empty())
                    .ok_or_else(|| fail(format!("syslog = '{address}' has no host")))?;
                let port =
                    url.port().ok_or_else(|| fail(format!("syslog = '{address}' has no port (such as :6514)")))?;
                let facility = match &settings.facility {
                    Some(given) => facility(given).ok_or_else(|| {
                        fail(format!("facility '{given}' is not a syslog facility (such as authpriv or local0)"))
                    })?,
                    None => 10,
                };
                // IPv6 literals come bracketed from the URL.
                let host = host.trim_start_matches('[').trim_end_matches(']').to_owned();
                SinkTarget::Syslog { host, port, tls, facility }
            }
            (None, Some(address)) => {
                let url =
                    url::Url::parse(address).map_err(|e| fail(format!("webhook = '{address}' is not a URL: {e}")))?;
                if !matches!(url.scheme(), "https" | "http") || url.host_str().is_none() {
                    return Err(fail(format!("webhook = '{address}' is not an https:// (or http://) URL")));
                }
                if settings.facility.is_some() {
                    return Err(fail("facility is for syslog sinks".into()));
                }
                let secret = settings
                    .secret
                    .clone()
                    .filter(|s| !s.expose_secret().is_empty())
                    .ok_or_else(|| fail("a webhook sink needs a secret to sign its messages with".into()))?;
                let tls = settings.ca_file.as_deref().map(|file| tls_config(Some(file))).transpose().map_err(fail)?;
                SinkTarget::Webhook { url: address.clone(), secret, tls }
            }
            (Some(_), Some(_)) => return Err(fail("give syslog or webhook, not both".into())),
            (None, None) => {
                return Err(fail("give a syslog = \"tcp://host:port\" or webhook = \"https://…\" address".into()))
            }
        };
        Ok(AuditSink { name: name.to_owned(), target })
    }

    /// Checks every sink; names must be unique, as each names its cursor.
    pub fn from_all(settings: &[SinkSettings]) -> Result<Vec<AuditSink>, String> {
        let sinks = settings.iter().map(AuditSink::from_settings).collect::<Result<Vec<_>, _>>()?;
        for (i, sink) in sinks.iter().enumerate() {
            if sinks[..i].iter().any(|other| other.name == sink.name) {
                return Err(format!("two audit sinks are named '{}'", sink.name));
            }
        }
        Ok(sinks)
    }
}

/// One message as a sink receives it.
#[derive(Debug, Clone)]
pub struct Message {
    /// `auditEntry` or `auditCheckpoint`: syslog's MSGID.
    pub kind: &'static str,
    /// When the entry was written or the checkpoint made.
    pub at: Millis,
    pub json: String,
}

/// An audit entry as exported: its fields, its place in the chain, and its canonical bytes
/// (`entry`), so that a SIEM's copy can be hashed again.
pub fn entry_message(record: &AuditRecord) -> Message {
    let details: Value =
        serde_json::from_str(&record.details).unwrap_or_else(|_| Value::String(record.details.clone()));
    let body = json!({
        "type": "auditEntry",
        "seq": record.seq,
        "id": record.id,
        "at": record.at,
        "time": crate::time::format(record.at),
        "actorId": record.actor_id,
        "actorName": record.actor_name,
        "category": record.category,
        "action": record.action,
        "targetType": record.target_type,
        "targetId": record.target_id,
        "details": details,
        "prevHash": record.prev_hash,
        "hash": record.hash,
        "link": record.link,
        "keyId": record.key_id,
        "entry": String::from_utf8_lossy(&record.canonical_bytes()),
    });
    Message { kind: "auditEntry", at: record.at, json: body.to_string() }
}

/// A checkpoint as exported: its own fields (what `parse_checkpoints` reads back), its type and
/// its time as RFC 3339.
pub fn checkpoint_message(checkpoint: &Checkpoint) -> Message {
    let mut body = serde_json::to_value(checkpoint).unwrap_or_default();
    if let Value::Object(fields) = &mut body {
        fields.insert("type".into(), json!("auditCheckpoint"));
        fields.insert("time".into(), json!(crate::time::format(checkpoint.at)));
    }
    Message { kind: "auditCheckpoint", at: checkpoint.at, json: body.to_string() }
}

/// Entries in `seq` order, each checkpoint right after the entry it signs (checkpoints of one
/// entry by `at`).
pub fn in_order(entries: &[AuditRecord], checkpoints: &[Checkpoint]) -> Vec<Message> {
    let mut keyed: Vec<((i64, u8, Millis), Message)> = entries
        .iter()
        .map(|e| ((e.seq, 0, 0), entry_message(e)))
        .chain(checkpoints.iter().map(|c| ((c.seq, 1, c.at), checkpoint_message(c))))
        .collect();
    keyed.sort_by_key(|(key, _)| *key);
    keyed.into_iter().map(|(_, message)| message).collect()
}

/// RFC 5424 syslog, framed by octet counting (RFC 6587 §3.4.1): `LEN <PRI>1 TIMESTAMP HOSTNAME
/// countersign PROCID MSGID - MSG`. Entries are severity info, checkpoints notice.
pub fn syslog_frame(out: &mut Vec<u8>, facility: u8, hostname: &str, message: &Message) {
    let severity = if message.kind == "auditCheckpoint" { 5 } else { 6 };
    let line = format!(
        "<{}>1 {} {hostname} countersign {} {} - {}",
        u16::from(facility) * 8 + severity,
        crate::time::format(message.at),
        std::process::id(),
        message.kind,
        message.json
    );
    out.extend_from_slice(format!("{} ", line.len()).as_bytes());
    out.extend_from_slice(line.as_bytes());
}

/// This machine's name as RFC 5424 allows it (printable ASCII, at most 255), or `-`.
fn syslog_hostname() -> String {
    let name = hostname::get().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    if name.is_empty() || name.len() > 255 || !name.bytes().all(|b| (33..=126).contains(&b)) {
        return "-".into();
    }
    name
}

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// Whether the daemon closed the connection: it never sends, so anything to read is its end.
/// Checked before each batch, as a write into a connection the peer closed still succeeds once.
fn closed_by_peer(stream: &mut dyn Stream) -> bool {
    let mut buf = [0u8; 256];
    match stream.read(&mut buf).now_or_never() {
        None => false,
        Some(Ok(0)) | Some(Err(_)) => true,
        Some(Ok(_)) => false,
    }
}

/// Where an exporter sends, with what it keeps between batches.
enum Sender {
    Syslog {
        host: String,
        port: u16,
        tls: Option<Arc<rustls::ClientConfig>>,
        facility: u8,
        hostname: String,
        /// Kept open between batches; dropped on any error and opened again.
        connection: Option<Box<dyn Stream>>,
    },
    Webhook {
        url: String,
        secret: SecretString,
        client: reqwest::Client,
    },
}

impl Sender {
    fn new(sink: &AuditSink) -> Result<Sender, String> {
        Ok(match &sink.target {
            SinkTarget::Syslog { host, port, tls, facility } => Sender::Syslog {
                host: host.clone(),
                port: *port,
                tls: tls.clone(),
                facility: *facility,
                hostname: syslog_hostname(),
                connection: None,
            },
            SinkTarget::Webhook { url, secret, tls } => {
                // The operator configured this address (tenant administrators cannot), so it
                // may be internal; redirects are still not followed.
                let mut client =
                    reqwest::Client::builder().timeout(SEND_TIMEOUT).redirect(reqwest::redirect::Policy::none());
                if let Some(tls) = tls {
                    client = client.use_preconfigured_tls((**tls).clone());
                }
                let client = client.build().map_err(|e| format!("cannot build the HTTP client: {e}"))?;
                Sender::Webhook { url: url.clone(), secret: secret.clone(), client }
            }
        })
    }

    fn batch(&self) -> i64 {
        match self {
            Sender::Syslog { .. } => SYSLOG_BATCH,
            Sender::Webhook { .. } => WEBHOOK_BATCH,
        }
    }

    async fn connect(
        host: &str,
        port: u16,
        tls: Option<&Arc<rustls::ClientConfig>>,
    ) -> Result<Box<dyn Stream>, String> {
        let tcp =
            TcpStream::connect((host, port)).await.map_err(|e| format!("cannot connect to {host}:{port}: {e}"))?;
        let Some(tls) = tls else { return Ok(Box::new(tcp)) };
        let name = ServerName::try_from(host.to_owned()).map_err(|e| format!("{host}: {e}"))?;
        let stream = tokio_rustls::TlsConnector::from(tls.clone())
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS with {host}:{port} failed: {e}"))?;
        Ok(Box::new(stream))
    }

    /// Sends `messages` in order; `Ok` once the sink took them all.
    async fn send(&mut self, messages: &[Message], now: Millis) -> Result<(), String> {
        match self {
            Sender::Syslog { host, port, tls, facility, hostname, connection } => {
                let mut frames = Vec::new();
                for message in messages {
                    syslog_frame(&mut frames, *facility, hostname, message);
                }
                if connection.as_mut().is_some_and(|open| closed_by_peer(open.as_mut())) {
                    *connection = None;
                }
                if connection.is_none() {
                    let opened = tokio::time::timeout(SEND_TIMEOUT, Self::connect(host, *port, tls.as_ref()))
                        .await
                        .map_err(|_| format!("connecting to {host}:{port} timed out"))??;
                    *connection = Some(opened);
                }
                let Some(stream) = connection.as_mut() else { return Err("no connection".into()) };
                let written = tokio::time::timeout(SEND_TIMEOUT, async {
                    stream.write_all(&frames).await?;
                    stream.flush().await
                })
                .await;
                match written {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(e)) => {
                        *connection = None;
                        Err(format!("writing to {host}:{port} failed: {e}"))
                    }
                    Err(_) => {
                        *connection = None;
                        Err(format!("writing to {host}:{port} timed out"))
                    }
                }
            }
            Sender::Webhook { url, secret, client } => {
                let body = format!("[{}]", messages.iter().map(|m| m.json.as_str()).collect::<Vec<_>>().join(","));
                let signature = crate::notify::signature(secret.expose_secret(), now / 1000, &body);
                // The same batch carries the same id on every retry.
                let event_id = hex::encode(Sha256::digest(body.as_bytes()));
                let response = client
                    .post(url.as_str())
                    .header("content-type", "application/json")
                    .header("X-Countersign-Signature", signature)
                    .header("X-Countersign-Event-Id", event_id)
                    .body(body)
                    .send()
                    .await
                    .map_err(|e| format!("cannot reach the receiver: {}", e.without_url()))?;
                if response.status().is_success() {
                    Ok(())
                } else {
                    Err(format!("the receiver answered HTTP {}", response.status().as_u16()))
                }
            }
        }
    }
}

/// What one round did.
#[derive(Debug, PartialEq, Eq)]
enum Round {
    /// Another exporter holds the sink.
    NotHolder,
    /// Nothing new.
    Idle,
    /// Sent this many messages; `full` when there may be more right away.
    Sent { messages: usize, full: bool },
}

/// One exporter: a sink, and who it is in the sink's lease.
struct Exporter {
    store: Store,
    sink: String,
    holder: String,
    sender: Sender,
    /// The sink's cursor while this exporter holds the lease, and the lease's end.
    lease: Option<(ExportCursor, Millis)>,
}

impl Exporter {
    async fn round(&mut self, now: Millis) -> Result<Round, String> {
        let store_error = |e: countersign_store::StoreError| format!("the database: {e}");
        let cursor = match self.lease {
            Some((cursor, until)) if until - now >= LEASE_LEFT_TO_SEND => cursor,
            _ => match self
                .store
                .lease_audit_export(&self.sink, &self.holder, now, now + LEASE)
                .await
                .map_err(store_error)?
            {
                Some(cursor) => {
                    self.lease = Some((cursor, now + LEASE));
                    cursor
                }
                None => {
                    self.lease = None;
                    return Ok(Round::NotHolder);
                }
            },
        };
        let batch = self.sender.batch();
        let entries = self.store.audit_after(cursor.entry_seq, batch).await.map_err(store_error)?;
        let last_seq = entries.last().map_or(cursor.entry_seq, |e| e.seq);
        let pending = self
            .store
            .audit_export_checkpoints(
                &self.sink,
                cursor.checkpoint_at.saturating_sub(LATE_CHECKPOINTS),
                last_seq,
                batch,
            )
            .await
            .map_err(store_error)?;
        if entries.is_empty() && pending.is_empty() {
            return Ok(Round::Idle);
        }
        let checkpoints: Vec<Checkpoint> = pending
            .iter()
            .filter_map(|p| match &p.checkpoint {
                Ok(checkpoint) => Some(checkpoint.clone()),
                Err(why) => {
                    tracing::warn!(sink = %self.sink, error = %why, "an audit checkpoint does not read; not exported");
                    None
                }
            })
            .collect();
        let messages = in_order(&entries, &checkpoints);
        if !messages.is_empty() {
            self.sender.send(&messages, now).await?;
        }
        let advanced = ExportCursor {
            entry_seq: last_seq,
            checkpoint_at: pending.iter().map(|p| p.at).fold(cursor.checkpoint_at, Millis::max),
        };
        if self
            .store
            .advance_audit_export(&self.sink, &self.holder, advanced, &pending, now)
            .await
            .map_err(store_error)?
        {
            self.lease = self.lease.map(|(_, until)| (advanced, until));
        } else {
            // Another exporter took the sink over: it resends from the cursor (at least once).
            self.lease = None;
        }
        let full = entries.len() as i64 == batch || pending.len() as i64 == batch;
        Ok(Round::Sent { messages: messages.len(), full })
    }
}

/// The wait after `failures` failed rounds in a row: the interval, doubling, at most a minute.
pub fn retry_delay(interval: Duration, failures: u32) -> Duration {
    interval.saturating_mul(2u32.saturating_pow(failures.min(16))).min(MAX_RETRY.max(interval))
}

async fn run_forever(state: AppState, sink: AuditSink, holder: String) {
    let sender = match Sender::new(&sink) {
        Ok(sender) => sender,
        Err(e) => {
            tracing::error!(sink = %sink.name, error = %e, "the audit log is not exported to this sink");
            return;
        }
    };
    let interval = state.config.audit_export_interval;
    let mut exporter = Exporter { store: state.store.clone(), sink: sink.name.clone(), holder, sender, lease: None };
    let mut failures = 0u32;
    loop {
        let wait = match exporter.round(state.now()).await {
            Ok(Round::Sent { full: true, .. }) => {
                failures = 0;
                Duration::ZERO
            }
            Ok(round) => {
                if failures > 0 {
                    tracing::info!(sink = %sink.name, ?round, "the audit sink accepts messages again");
                }
                failures = 0;
                interval
            }
            Err(error) => {
                failures = failures.saturating_add(1);
                let retry = retry_delay(interval, failures);
                tracing::warn!(sink = %sink.name, %error, failures, retry_in_ms = retry.as_millis() as u64, "exporting the audit log failed");
                retry
            }
        };
        tokio::time::sleep(wait).await;
    }
}

/// The running exporters of one server.
pub struct Exporters {
    store: Store,
    holder: String,
    sinks: Vec<String>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// Starts one exporter per configured sink. Each replica starts them all; the lease decides
/// which one sends.
pub fn start(state: &AppState) -> Exporters {
    let holder = uuid::Uuid::now_v7().to_string();
    let sinks = state.config.audit_sinks.clone();
    let tasks =
        sinks.iter().map(|sink| tokio::spawn(run_forever(state.clone(), sink.clone(), holder.clone()))).collect();
    Exporters { store: state.store.clone(), holder, sinks: sinks.into_iter().map(|s| s.name).collect(), tasks }
}

impl Exporters {
    /// Stops the exporters and gives up their leases, so another replica (or this server, once
    /// restarted) takes over without waiting for them to run out.
    pub async fn stop(self) {
        for task in &self.tasks {
            task.abort();
        }
        for sink in &self.sinks {
            if let Err(e) = self.store.release_audit_export(sink, &self.holder).await {
                tracing::warn!(%sink, error = %e, "cannot release the audit export lease");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(toml_like: &[(&str, &str)]) -> SinkSettings {
        let mut value = serde_json::Map::new();
        for (key, v) in toml_like {
            value.insert((*key).into(), json!(v));
        }
        serde_json::from_value(Value::Object(value)).unwrap()
    }

    #[test]
    fn sinks_are_checked_with_errors_that_say_what_is_wrong() {
        let ok =
            AuditSink::from_settings(&settings(&[("name", "siem"), ("syslog", "tcp://siem.example:6514")])).unwrap();
        assert!(
            matches!(ok.target, SinkTarget::Syslog { ref host, port: 6514, tls: None, facility: 10 } if host == "siem.example")
        );
        let tls = AuditSink::from_settings(&settings(&[
            ("name", "s"),
            ("syslog", "tls://[::1]:6514"),
            ("facility", "local3"),
        ]))
        .unwrap();
        assert!(matches!(tls.target, SinkTarget::Syslog { ref host, tls: Some(_), facility: 19, .. } if host == "::1"));
        let hook = settings(&[("name", "archive"), ("webhook", "https://archive.example/cs"), ("secret", "s3cret")]);
        assert!(matches!(AuditSink::from_settings(&hook).unwrap().target, SinkTarget::Webhook { .. }));
        assert!(
            !format!("{:?}", AuditSink::from_settings(&hook).unwrap()).contains("s3cret"),
            "Debug hides the secret"
        );

        for (given, expected) in [
            (vec![("name", "a"), ("syslog", "udp://h:514")], "not tcp:// or tls://"),
            (vec![("name", "a"), ("syslog", "tcp://h")], "has no port"),
            (vec![("name", "a"), ("syslog", "siem:514")], "not tcp:// or tls://"),
            (vec![("name", "a"), ("syslog", "tcp://h:1"), ("facility", "loud")], "not a syslog facility"),
            (vec![("name", "a"), ("webhook", "https://h/x")], "needs a secret"),
            (vec![("name", "a"), ("webhook", "ftp://h/x"), ("secret", "s")], "not an https://"),
            (vec![("name", "a"), ("webhook", "https://h/x"), ("syslog", "tcp://h:1"), ("secret", "s")], "not both"),
            (vec![("name", "a")], "give a syslog"),
            (vec![("name", " ")], "needs a name"),
            (
                vec![("name", "a"), ("syslog", "tls://h:1"), ("ca_file", "/nonexistent/ca.pem")],
                "ca_file /nonexistent/ca.pem",
            ),
        ] {
            let refused = AuditSink::from_settings(&settings(&given)).unwrap_err();
            assert!(refused.contains(expected), "{given:?}: {refused}");
        }
        let twice =
            [settings(&[("name", "a"), ("syslog", "tcp://h:1")]), settings(&[("name", "a"), ("syslog", "tcp://i:1")])];
        assert!(AuditSink::from_all(&twice).unwrap_err().contains("two audit sinks are named 'a'"));
    }

    fn record(seq: i64) -> AuditRecord {
        AuditRecord {
            seq,
            id: format!("id-{seq}"),
            at: 1_800_000_000_123,
            actor_id: None,
            actor_name: "system".into(),
            category: "audit".into(),
            // Keys a checkpoint has, inside the details: not at the top level.
            action: "kind".into(),
            target_type: None,
            target_id: None,
            details: r#"{"signature":"x","kind":"periodic","text":"é \"q\""}"#.into(),
            prev_hash: "0".repeat(64),
            hash: "1".repeat(64),
            link: Some("2".repeat(64)),
            key_id: Some("k".into()),
        }
    }

    #[test]
    fn an_entry_message_can_be_hashed_again_and_is_never_taken_for_a_checkpoint() {
        let entry = record(3);
        let message: Value = serde_json::from_str(&entry_message(&entry).json).unwrap();
        assert_eq!(message["type"], "auditEntry");
        assert_eq!(message["time"], "2027-01-15T08:00:00.123Z");
        assert_eq!(message["details"]["text"], "é \"q\"", "details as JSON, not as a string");
        assert_eq!(message["entry"].as_str().unwrap().as_bytes(), entry.canonical_bytes());
        assert!(message.get("signature").is_none() && message.get("kind").is_none());
        let text = format!("prefix {}\n", entry_message(&entry).json);
        assert!(countersign_core::audit::parse_checkpoints(&text).is_err(), "no checkpoint in an entry");
    }

    #[test]
    fn checkpoints_follow_the_entry_they_sign_and_frames_count_their_octets() {
        let signer = countersign_core::audit::CheckpointSigner::from_seed(&[1; 32]);
        let head = |seq: i64| countersign_core::audit::ChainHeadEntry { seq, hash: "1".repeat(64), link: None };
        let kind = countersign_core::audit::CheckpointKind::Periodic;
        let checkpoints = [Checkpoint::sign(&signer, kind, &head(2), 9), Checkpoint::sign(&signer, kind, &head(0), 8)];
        let messages = in_order(&[record(1), record(2), record(3)], &checkpoints);
        let order: Vec<(&str, i64)> = messages
            .iter()
            .map(|m| (m.kind, serde_json::from_str::<Value>(&m.json).unwrap()["seq"].as_i64().unwrap()))
            .collect();
        assert_eq!(
            order,
            [("auditCheckpoint", 0), ("auditEntry", 1), ("auditEntry", 2), ("auditCheckpoint", 2), ("auditEntry", 3)]
        );
        let mut frame = Vec::new();
        syslog_frame(&mut frame, 10, "host", &messages[3]);
        let text = String::from_utf8(frame).unwrap();
        let (length, line) = text.split_once(' ').unwrap();
        assert_eq!(length.parse::<usize>().unwrap(), line.len());
        assert!(line.starts_with("<85>1 1970-01-01T00:00:00.009Z host countersign "), "{line}");
        assert!(line.contains(" auditCheckpoint - {"), "{line}");
        let read = countersign_core::audit::parse_checkpoints(&text).unwrap();
        assert_eq!(read, [checkpoints[0].clone()]);
    }

    #[test]
    fn retries_back_off_to_a_minute() {
        let second = Duration::from_secs(1);
        assert_eq!(retry_delay(second, 1), Duration::from_secs(2));
        assert_eq!(retry_delay(second, 3), Duration::from_secs(8));
        assert_eq!(retry_delay(second, 40), MAX_RETRY);
        assert_eq!(retry_delay(Duration::from_millis(50), 2), Duration::from_millis(200));
    }
}
