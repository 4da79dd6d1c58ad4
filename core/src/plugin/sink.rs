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
    /// The served document's version, when its source gave one.
    pub version: Option<u64>,
    /// The flag's set (its `flagSetId` metadata), when it has one.
    pub flag_set_id: Option<String>,
    /// When.
    pub at: SystemTime,
}

/// What the application tracked, besides its name: an optional numeric
/// value (a price, a duration) and custom fields — OpenFeature's tracking
/// event details.
///
/// # Example
/// ```
/// use flagyard_core::TrackingDetails;
///
/// let details = TrackingDetails::new().value(49.9).field("currency", "EUR");
/// assert_eq!(details.value, Some(49.9));
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TrackingDetails {
    /// The numeric value, if any.
    pub value: Option<f64>,
    /// Custom fields.
    pub fields: serde_json::Map<String, serde_json::Value>,
}

impl TrackingDetails {
    /// No value and no fields.
    pub fn new() -> Self {
        Self::default()
    }

    crate::setters! {
        /// Sets the numeric value.
        value(value: f64) => value = Some(value);
    }

    /// Adds one custom field.
    pub fn field(mut self, name: impl Into<String>, value: impl Into<serde_json::Value>) -> Self {
        self.fields.insert(name.into(), value.into());
        self
    }
}

/// Something the application tracked (`provider.track(...)`).
#[derive(Debug, Clone, PartialEq)]
pub struct TrackingEvent {
    /// The event name (at most 100 characters; longer names are truncated).
    pub name: String,
    /// The context's targeting key.
    pub targeting_key: Option<String>,
    /// The value and custom fields.
    pub details: TrackingDetails,
    /// When.
    pub at: SystemTime,
}

/// How many times one flag served one variant for one reason, from one
/// document version, in a summary's interval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SummaryCount {
    /// The flag key.
    pub flag: String,
    /// The variant served, if any.
    pub variant: Option<String>,
    /// Why.
    pub reason: Reason,
    /// The served document's version, when its source gave one.
    pub version: Option<u64>,
    /// Evaluations counted.
    pub count: u64,
}

/// Evaluations counted over an interval, in the manner of LaunchDarkly's
/// summary events: what `ExposureMode::Summary` sends instead of an event per
/// evaluation (besides one exposure per flag, variant and user first seen).
#[derive(Debug, Clone, PartialEq)]
pub struct SummaryEvent {
    /// The interval's start.
    pub start: SystemTime,
    /// The interval's end.
    pub end: SystemTime,
    /// One count per (flag, variant, reason, version) seen.
    pub counts: Vec<SummaryCount>,
}

/// An event for a [`Sink`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// A flag evaluation was served.
    Exposure(ExposureEvent),
    /// The application tracked something.
    Tracking(TrackingEvent),
    /// Evaluations counted over an interval.
    Summary(SummaryEvent),
}

/// Which exposure events a provider produces. Tracking events are produced
/// in every mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExposureMode {
    /// An exposure per evaluation (the provider's per-thread filter drops
    /// repeats of a recent flag, variant and targeting key unless de-duplication
    /// is turned off).
    #[default]
    Full,
    /// A [`SummaryEvent`] per interval, plus one exposure per (flag, variant,
    /// targeting key) first seen.
    Summary,
    /// No exposure events.
    Off,
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

/// Where a sink reports what goes wrong after [`Sink::record`] returned (a
/// collector that refused a batch, events it could not deliver): the
/// provider's `on_error`.
pub type ErrorReporter = Arc<dyn Fn(&ProviderError) + Send + Sync>;

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
    /// The exposure mode a provider uses with this sink unless told otherwise:
    /// [`ExposureMode::Full`], and [`ExposureMode::Summary`] for sinks that
    /// send events over a network.
    fn exposure_mode(&self) -> ExposureMode {
        ExposureMode::Full
    }
    /// Takes the provider's error reporting; the provider calls it once, when
    /// it is built. Sinks that fail in the background keep it.
    fn report_to(&self, reporter: ErrorReporter) {
        let _ = reporter;
    }
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
    fn exposure_mode(&self) -> ExposureMode {
        (**self).exposure_mode()
    }
    fn report_to(&self, reporter: ErrorReporter) {
        (**self).report_to(reporter);
    }
    fn flush(&self) -> Result<(), SinkError> {
        (**self).flush()
    }
    fn close(&self) -> Result<(), SinkError> {
        (**self).close()
    }
}
