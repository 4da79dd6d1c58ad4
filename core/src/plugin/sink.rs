//! [`Sink`]: where evaluation and tracking events go, the events, and [`SinkError`].

use std::sync::Arc;
use std::time::SystemTime;

use super::error::{BoxError, ErrorOrigin, ProviderError};
use crate::resolution::Reason;

/// A flag evaluation that was served to the application.
#[derive(Debug, Clone, PartialEq)]
pub struct ExposureEvent {
    /// The flag key.
    pub flag: String,
    /// The variant served, if any.
    pub variant: Option<String>,
    /// Why.
    pub reason: Reason,
    /// The context's targeting key.
    pub targeting_key: Option<String>,
    /// When.
    pub at: SystemTime,
}

/// Something the application tracked (`provider.track(...)`).
#[derive(Debug, Clone, PartialEq)]
pub struct TrackingEvent {
    /// The event name.
    pub name: String,
    /// The context's targeting key.
    pub targeting_key: Option<String>,
    /// The context's attributes.
    pub context: serde_json::Map<String, serde_json::Value>,
    /// An optional numeric value.
    pub value: Option<f64>,
    /// Further details.
    pub details: serde_json::Map<String, serde_json::Value>,
    /// When.
    pub at: SystemTime,
}

/// An event for a [`Sink`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// A flag evaluation was served.
    Exposure(ExposureEvent),
    /// The application tracked something.
    Tracking(TrackingEvent),
}

/// Errors of a [`Sink`]: which sink, whether retrying may help, and the cause.
#[derive(Debug, thiserror::Error)]
#[error("sink {sink}: {source}")]
pub struct SinkError {
    sink: String,
    transient: bool,
    #[source]
    source: BoxError,
}

impl SinkError {
    /// A failure of the sink `sink` caused by `source`.
    pub fn new(sink: impl Into<String>, transient: bool, source: impl Into<BoxError>) -> Self {
        SinkError {
            sink: sink.into(),
            transient,
            source: source.into(),
        }
    }

    /// Which sink failed.
    pub fn sink(&self) -> &str {
        &self.sink
    }

    /// Whether retrying may help (a collector that did not answer).
    pub fn is_transient(&self) -> bool {
        self.transient
    }

    /// The error as the provider reports it, with `self` as its source.
    pub fn into_provider_error(self) -> ProviderError {
        ProviderError::new(ErrorOrigin::Sink, self.transient, self.to_string()).with_source(self)
    }
}

/// Where evaluation and tracking events go.
///
/// # Example
/// ```
/// use flagyard_core::{Event, Sink, SinkError};
///
/// #[derive(Debug)]
/// struct Print;
///
/// impl Sink for Print {
///     fn record(&self, event: Event) { println!("{event:?}"); }
///     fn flush(&self) -> Result<(), SinkError> { Ok(()) }
/// }
/// ```
pub trait Sink: Send + Sync + 'static {
    /// Takes one event; must not block.
    fn record(&self, event: Event);
    /// Sends or writes whatever is buffered.
    fn flush(&self) -> Result<(), SinkError>;
    /// Flushes and releases resources; called once by the provider's `close()`.
    fn close(&self) -> Result<(), SinkError> {
        self.flush()
    }
}

/// A shared sink is a sink.
impl<T: Sink + ?Sized> Sink for Arc<T> {
    fn record(&self, event: Event) {
        (**self).record(event);
    }
    fn flush(&self) -> Result<(), SinkError> {
        (**self).flush()
    }
    fn close(&self) -> Result<(), SinkError> {
        (**self).close()
    }
}
