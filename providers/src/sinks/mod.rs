//! Sinks: one that drops everything, one that keeps events in memory (for
//! tests), [`HttpSink`] (feature `http-sink`), which sends them to a
//! collector, and [`OtlpSink`] (feature `otel`), which sends exposures to an
//! OpenTelemetry endpoint.

#[cfg(feature = "http-sink")]
mod http;
#[cfg(feature = "otel")]
mod otlp;

#[cfg(feature = "http-sink")]
pub use http::{HttpSink, HttpSinkBuilder, HttpSinkStats};
#[cfg(feature = "otel")]
pub use otlp::{OtlpSink, OtlpSinkBuilder};

use std::sync::{Arc, Mutex, PoisonError};

use flagyard_core::{Event, Sink, SinkError};

/// Discards every event.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoopSink;

impl Sink for NoopSink {
    fn record(&self, _event: Event) {}
    fn flush(&self) -> Result<(), SinkError> {
        Ok(())
    }
}

/// Keeps events in memory, for tests. Clones share the same events.
#[derive(Debug, Clone, Default)]
pub struct MemorySink {
    events: Arc<Mutex<Vec<Event>>>,
    flushes: Arc<Mutex<usize>>,
}

impl MemorySink {
    /// An empty sink.
    pub fn new() -> Self {
        Self::default()
    }
    /// The events recorded so far.
    pub fn events(&self) -> Vec<Event> {
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
    /// How many times the sink was flushed (closing counts).
    pub fn flush_count(&self) -> usize {
        *self.flushes.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Sink for MemorySink {
    fn record(&self, event: Event) {
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(event);
    }
    fn flush(&self) -> Result<(), SinkError> {
        *self.flushes.lock().unwrap_or_else(PoisonError::into_inner) += 1;
        Ok(())
    }
}
