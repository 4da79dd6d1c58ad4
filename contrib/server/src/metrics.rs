//! [`Metrics`]: what `GET /metrics` answers, in Prometheus's text format
//! (`prometheus-client`, the Prometheus project's Rust client): stream clients
//! connected per protocol, documents published and how long each stream took
//! to pick a new one up, OFREP requests and their latency per endpoint, admin
//! writes per outcome, events collected and refused, store errors.

use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
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

/// Seconds buckets from 0.1 ms to about 6.5 s.
fn latency() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 2.0, 17))
}

/// The server's metrics.
#[derive(Debug)]
pub(crate) struct Metrics {
    registry: Registry,
    streams: Family<ProtocolLabel, Gauge>,
    published: Counter,
    delivery: Histogram,
    ofrep: Family<EndpointLabel, Histogram, fn() -> Histogram>,
    admin_writes: Family<OutcomeLabel, Counter>,
    events_accepted: Counter,
    events_refused: Counter,
    store_errors: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        let m = Metrics {
            registry: Registry::with_prefix("flagyard"),
            streams: Family::default(),
            published: Counter::default(),
            delivery: latency(),
            ofrep: Family::new_with_constructor(latency),
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
        self.delivery.observe(after.as_secs_f64());
    }

    /// An OFREP request to `endpoint` took `took`.
    pub(crate) fn ofrep(&self, endpoint: Endpoint, took: Duration) {
        self.ofrep
            .get_or_create(&EndpointLabel { endpoint })
            .observe(took.as_secs_f64());
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
