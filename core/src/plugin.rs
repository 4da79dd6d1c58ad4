//! The four plug-in traits a provider is composed from: [`Source`], [`Store`],
//! [`Evaluator`] and [`Sink`], and the errors they report.
//!
//! They are deliberately small and runtime-agnostic (no tokio here): a source is a
//! future the runtime spawns, a store is synchronous and cheap to call, a sink
//! never blocks.

use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::SystemTime;

use crate::context::Context;
use crate::resolution::Reason;
use crate::snapshot::{Evaluation, Snapshot};

/// A boxed, sendable future.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// Where an error came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorOrigin {
    /// A network source or sink (connection, HTTP status, stream).
    Network,
    /// A file: the flag file, the disk cache.
    Disk,
    /// A document that could not be parsed or validated.
    Parser,
    /// A store other than a file (SQLite, Redis).
    Store,
    /// An event sink.
    Sink,
}

impl fmt::Display for ErrorOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ErrorOrigin::Network => "network",
            ErrorOrigin::Disk => "disk",
            ErrorOrigin::Parser => "parser",
            ErrorOrigin::Store => "store",
            ErrorOrigin::Sink => "sink",
        })
    }
}

/// An error reported to the provider's `on_error` hook.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin} error ({}): {message}", if *.transient { "transient" } else { "permanent" })]
pub struct ProviderError {
    /// Where it came from.
    pub origin: ErrorOrigin,
    /// Whether retrying may help (a dropped connection) or not (a bad document).
    pub transient: bool,
    /// What happened, naming the file, URL or flag concerned.
    pub message: String,
}

impl ProviderError {
    /// Builds an error.
    pub fn new(origin: ErrorOrigin, transient: bool, message: impl Into<String>) -> Self {
        ProviderError {
            origin,
            transient,
            message: message.into(),
        }
    }
}

/// What a [`Source`] tells the runtime.
pub trait SourceUpdates: Send + Sync {
    /// A whole new flag document (JSON text). The runtime validates it; a bad one
    /// is reported and the last good document stays.
    fn document(&self, document: String);
    /// A whole new document with the version the server gave it (the flag
    /// server's `{"version", "document"}` messages, its `X-Flagyard-Version`).
    fn versioned_document(&self, document: String, version: u64) {
        let _ = version;
        self.document(document);
    }
    /// The source could not deliver (file missing, connection lost, ...).
    fn error(&self, error: ProviderError);
    /// The source is delivering again after an error, with nothing new to apply.
    fn recovered(&self) {}
}

/// Where flag documents come from: runs in the background and delivers whole
/// documents. Knows nothing of stores or evaluation.
///
/// The runtime spawns the future [`run`](Source::run) returns and drops it on
/// `close()`, so a source needs no stop signal of its own.
pub trait Source: Send + 'static {
    /// A short description for logs and errors (`file:/etc/flags.json`).
    fn describe(&self) -> String;
    /// Runs until dropped, delivering documents and errors to `updates`.
    fn run(self: Box<Self>, updates: Arc<dyn SourceUpdates>) -> BoxFuture<()>;
}

/// Errors of a [`Store`].
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The stored document is unreadable (truncated, not JSON, ...).
    #[error("{path}: corrupt cache file: {detail}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        detail: String,
    },
    /// Any other store failure.
    #[error("{0}")]
    Other(String),
}

impl StoreError {
    /// The error as the provider reports it.
    pub fn to_provider_error(&self) -> ProviderError {
        let origin = match self {
            StoreError::Io { .. } | StoreError::Corrupt { .. } => ErrorOrigin::Disk,
            StoreError::Other(_) => ErrorOrigin::Store,
        };
        ProviderError::new(
            origin,
            matches!(self, StoreError::Io { .. }),
            self.to_string(),
        )
    }
}

/// Where the last good document is kept, for cold starts without a source.
///
/// Calls come from the runtime, never from the read path. `save` must be quick:
/// a store may coalesce writes and do them later; `flush` writes what is pending.
pub trait Store: Send + Sync + 'static {
    /// A short description (`disk:/home/me/.local/share/flagyard/cache/flags.json`).
    fn describe(&self) -> String;
    /// The last saved document, if any.
    fn load(&self) -> Result<Option<String>, StoreError>;
    /// Keeps a new document (possibly later). Also reports a failed deferred write.
    fn save(&self, document: &str) -> Result<(), StoreError>;
    /// Writes anything pending now.
    fn flush(&self) -> Result<(), StoreError>;
}

/// How a compiled document turns a flag key and a context into a resolution.
/// The flagd evaluator ([`Snapshot`]) is the first implementation.
pub trait Evaluator: Send + Sync + 'static {
    /// Evaluates one flag; never fails (problems are in the result).
    fn evaluate_flag(&self, key: &str, ctx: &dyn Context) -> Evaluation<'_>;
    /// Every flag key, sorted.
    fn flag_keys(&self) -> Vec<&str>;
}

impl Evaluator for Snapshot {
    fn evaluate_flag(&self, key: &str, ctx: &dyn Context) -> Evaluation<'_> {
        self.evaluate(key, ctx)
    }
    fn flag_keys(&self) -> Vec<&str> {
        self.keys()
    }
}

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
pub enum Event {
    /// A flag evaluation was served.
    Exposure(ExposureEvent),
    /// The application tracked something.
    Tracking(TrackingEvent),
}

/// Errors of a [`Sink`].
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SinkError(pub String);

/// Where evaluation and tracking events go.
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
