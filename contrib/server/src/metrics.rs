//! [`Metrics`]: what `GET /metrics` answers, in Prometheus's text format
//! (`prometheus-client`, the Prometheus project's Rust client): stream clients
//! connected per protocol, documents published and how long each stream took
//! to pick a new one up, OFREP requests and their latency per endpoint, admin
//! writes per outcome, events collected and refused, store errors.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::encoding::{
    EncodeLabelSet, EncodeLabelValue, EncodeMetric, MetricEncoder, NoLabelSet,
};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::exponential_buckets;
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::Registry;

/// A stream's protocol.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub(crate) enum Protocol {
    sse,
    websocket,
    grpc_sync,
    grpc_events,
    ofrep_changes,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProtocolLabel {
    protocol: Protocol,
}

/// An OFREP endpoint.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub(crate) enum Endpoint {
    single,
    bulk,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointLabel {
    endpoint: Endpoint,
}

/// How an admin write ended.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub(crate) enum Outcome {
    /// Published.
    applied,
    /// Refused: invalid, a stale precondition, not found, too large.
    refused,
    /// The store failed or could not be reached.
    failed,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: Outcome,
}

/// A latency histogram whose observations are two atomic adds — no lock on
/// the fan-out path, where every stream observes every document
/// (`prometheus-client`'s `Histogram` takes a mutex) — encoded as a classic
/// Prometheus histogram when scraped.
#[derive(Debug, Clone)]
pub(crate) struct Latency(Arc<LatencyCounts>);

#[derive(Debug)]
struct LatencyCounts {
    /// Upper bounds in seconds, ascending (a last `+Inf` bucket follows).
    bounds: Vec<f64>,
    /// One count per bucket (not cumulative), the `+Inf` one last.
    counts: Vec<AtomicU64>,
    /// The sum of all observations, in nanoseconds.
    sum_nanos: AtomicU64,
}

/// Buckets from 0.1 ms to about 6.5 s.
fn latency() -> Latency {
    let bounds: Vec<f64> = exponential_buckets(0.0001, 2.0, 17).collect();
    let counts = (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect();
    Latency(Arc::new(LatencyCounts {
        bounds,
        counts,
        sum_nanos: AtomicU64::new(0),
    }))
}

impl Latency {
    fn observe(&self, took: Duration) {
        let seconds = took.as_secs_f64();
        let bucket = self.0.bounds.partition_point(|bound| *bound < seconds);
        self.0.counts[bucket].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.0.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }
}

impl TypedMetric for Latency {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for Latency {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let buckets: Vec<(f64, u64)> = self
            .0
            .bounds
            .iter()
            .copied()
            .chain([f64::INFINITY])
            .zip(self.0.counts.iter().map(|c| c.load(Ordering::Relaxed)))
            .collect();
        let count = buckets.iter().map(|(_, n)| n).sum();
        let sum = self.0.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

/// The server's metrics.
#[derive(Debug)]
pub(crate) struct Metrics {
    registry: Registry,
    streams: Family<ProtocolLabel, Gauge>,
    published: Counter,
    delivery: Latency,
    ofrep: Family<EndpointLabel, Latency, fn() -> Latency>,
    /// The family's two members, taken once: observing one is then a few
    /// atomic adds (the family's lookup takes a lock).
    ofrep_single: Latency,
    ofrep_bulk: Latency,
    admin_writes: Family<OutcomeLabel, Counter>,
    events_accepted: Counter,
    events_refused: Counter,
    store_errors: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        let ofrep: Family<EndpointLabel, Latency, fn() -> Latency> =
            Family::new_with_constructor(latency);
        let member = |endpoint| ofrep.get_or_create(&EndpointLabel { endpoint }).clone();
        let (ofrep_single, ofrep_bulk) = (member(Endpoint::single), member(Endpoint::bulk));
        let m = Metrics {
            registry: Registry::with_prefix("flagyard"),
            streams: Family::default(),
            published: Counter::default(),
            delivery: latency(),
            ofrep,
            ofrep_single,
            ofrep_bulk,
            admin_writes: Family::default(),
            events_accepted: Counter::default(),
            events_refused: Counter::default(),
            store_errors: Counter::default(),
        };
        let mut registry = m.registry;
        registry.register(
            "stream_clients",
            "Stream clients connected, by protocol",
            m.streams.clone(),
        );
        registry.register(
            "documents_published",
            "Documents published (every environment, every writer)",
            m.published.clone(),
        );
        registry.register(
            "delivery_seconds",
            "From a document's publication to a stream taking it up to send",
            m.delivery.clone(),
        );
        registry.register(
            "ofrep_request_seconds",
            "OFREP evaluation requests and their latency, by endpoint",
            m.ofrep.clone(),
        );
        registry.register(
            "admin_writes",
            "Admin API writes, by outcome",
            m.admin_writes.clone(),
        );
        registry.register(
            "events_accepted",
            "Collected events kept",
            m.events_accepted.clone(),
        );
        registry.register(
            "events_refused",
            "Collected events refused",
            m.events_refused.clone(),
        );
        registry.register(
            "store_errors",
            "Failed store operations of admin writes",
            m.store_errors.clone(),
        );
        Metrics { registry, ..m }
    }
}

/// Counts a stream as connected while it lives.
#[derive(Debug)]
pub(crate) struct Connected(Gauge);

impl Drop for Connected {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl Metrics {
    /// A stream of `protocol` opened; it counts until the guard drops.
    pub(crate) fn stream(&self, protocol: Protocol) -> Connected {
        let gauge = self
            .streams
            .get_or_create_owned(&ProtocolLabel { protocol });
        gauge.inc();
        Connected(gauge)
    }

    /// A document was published.
    pub(crate) fn published(&self) {
        self.published.inc();
    }

    /// A stream took up a document `after` its publication.
    pub(crate) fn delivered(&self, after: Duration) {
        self.delivery.observe(after);
    }

    /// An OFREP request to `endpoint` took `took`.
    pub(crate) fn ofrep(&self, endpoint: Endpoint, took: Duration) {
        match endpoint {
            Endpoint::single => &self.ofrep_single,
            Endpoint::bulk => &self.ofrep_bulk,
        }
        .observe(took);
    }

    /// An admin write ended with `outcome`.
    pub(crate) fn admin_write(&self, outcome: Outcome) {
        self.admin_writes
            .get_or_create(&OutcomeLabel { outcome })
            .inc();
        if outcome == Outcome::failed {
            self.store_errors.inc();
        }
    }

    /// A batch of collected events: `accepted` kept, `refused` not.
    pub(crate) fn events(&self, accepted: usize, refused: usize) {
        self.events_accepted.inc_by(accepted as u64);
        self.events_refused.inc_by(refused as u64);
    }

    /// Everything, in Prometheus's text format.
    pub(crate) fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_buckets_are_cumulative_when_scraped() {
        let metrics = Metrics::default();
        for ms in [0.05, 0.3, 0.3, 5.0, 10_000.0] {
            metrics.delivered(Duration::from_secs_f64(ms / 1000.0));
        }
        let text = metrics.encode();
        let value = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
                .unwrap_or_else(|| panic!("{name} missing in {text}"))
                .to_string()
        };
        assert_eq!(value("flagyard_delivery_seconds_count"), "5");
        // 0.05 ms lands in the first bucket (≤ 0.1 ms), 0.3 ms twice in ≤ 0.4 ms.
        assert_eq!(
            value(r#"flagyard_delivery_seconds_bucket{le="0.0001"}"#),
            "1"
        );
        assert_eq!(
            value(r#"flagyard_delivery_seconds_bucket{le="0.0004"}"#),
            "3"
        );
        assert_eq!(
            value(r#"flagyard_delivery_seconds_bucket{le="0.0064"}"#),
            "4"
        );
        assert_eq!(value(r#"flagyard_delivery_seconds_bucket{le="+Inf"}"#), "5");
        let sum: f64 = value("flagyard_delivery_seconds_sum")
            .parse()
            .expect("number");
        assert!((sum - 10.00565).abs() < 1e-6, "{sum}");
    }
}
