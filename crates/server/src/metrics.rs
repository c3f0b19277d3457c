//! `/metrics` in the Prometheus text format: requests by status and type (read from the
//! database at scrape time, so every replica reports the same), decision latency, and on SQLite
//! how writes share commits, and how far each audit export sink is behind (from the database).

use countersign_store::WriterStats;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

pub struct Metrics {
    registry: Registry,
    requests: Family<Vec<(String, String)>, Gauge>,
    decision_latency: Histogram,
    export_behind: Family<Vec<(String, String)>, Gauge>,
    /// On SQLite only.
    writer: Option<WriterGauges>,
}

struct WriterGauges {
    writes: Gauge,
    commits: Gauge,
    queued: Gauge,
}

impl Metrics {
    /// `sqlite_writer`: the store groups writes into commits, and the metrics say how well.
    pub fn new(sqlite_writer: bool) -> Self {
        let mut registry = Registry::default();
        let requests = Family::<Vec<(String, String)>, Gauge>::default();
        registry.register("countersign_requests", "Approval requests by status and resource type", requests.clone());
        // From 1 second to about 3 months.
        let decision_latency = Histogram::new(exponential_buckets(1.0, 4.0, 13));
        registry.register(
            "countersign_decision_latency_seconds",
            "Time from a request's submission to an approver's decision",
            decision_latency.clone(),
        );
        let export_behind = Family::<Vec<(String, String)>, Gauge>::default();
        registry.register(
            "countersign_audit_export_behind",
            "Audit entries an export sink has not accepted yet",
            export_behind.clone(),
        );
        let writer = sqlite_writer.then(|| {
            let gauges = WriterGauges { writes: Gauge::default(), commits: Gauge::default(), queued: Gauge::default() };
            registry.register("countersign_sqlite_writes", "Writes committed since start", gauges.writes.clone());
            registry.register(
                "countersign_sqlite_commits",
                "COMMITs since start: fewer than writes when concurrent writes share one",
                gauges.commits.clone(),
            );
            registry.register(
                "countersign_sqlite_writes_queued",
                "Writes waiting for the writer",
                gauges.queued.clone(),
            );
            gauges
        });
        Metrics { registry, requests, decision_latency, export_behind, writer }
    }

    pub fn observe_decision(&self, seconds: f64) {
        self.decision_latency.observe(seconds.max(0.0));
    }

    /// Renders the registry after setting the request gauges to `counts`, each export sink's
    /// to `behind` (sink, entries) and the writer's.
    pub fn render(
        &self,
        counts: &[(String, String, i64)],
        behind: &[(String, i64)],
        writer: Option<WriterStats>,
    ) -> String {
        if let (Some(gauges), Some(stats)) = (&self.writer, writer) {
            gauges.writes.set(i64::try_from(stats.writes).unwrap_or(i64::MAX));
            gauges.commits.set(i64::try_from(stats.commits).unwrap_or(i64::MAX));
            gauges.queued.set(i64::try_from(stats.queued).unwrap_or(i64::MAX));
        }
        self.requests.clear();
        for (status, resource_type, n) in counts {
            self.requests
                .get_or_create(&vec![("status".to_owned(), status.clone()), ("type".to_owned(), resource_type.clone())])
                .set(*n);
        }
        self.export_behind.clear();
        for (sink, entries) in behind {
            self.export_behind.get_or_create(&vec![("sink".to_owned(), sink.clone())]).set(*entries);
        }
        let mut out = String::new();
        if encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}
