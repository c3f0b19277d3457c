//! `/metrics` in the Prometheus text format: requests by status and type (read from the
//! database at scrape time, so every replica reports the same), and decision latency.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

pub struct Metrics {
    registry: Registry,
    requests: Family<Vec<(String, String)>, Gauge>,
    decision_latency: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
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
        Metrics { registry, requests, decision_latency }
    }
}

impl Metrics {
    pub fn observe_decision(&self, seconds: f64) {
        self.decision_latency.observe(seconds.max(0.0));
    }

    /// Renders the registry after setting the request gauges to `counts`.
    pub fn render(&self, counts: &[(String, String, i64)]) -> String {
        self.requests.clear();
        for (status, resource_type, n) in counts {
            self.requests
                .get_or_create(&vec![("status".to_owned(), status.clone()), ("type".to_owned(), resource_type.clone())])
                .set(*n);
        }
        let mut out = String::new();
        if encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}
