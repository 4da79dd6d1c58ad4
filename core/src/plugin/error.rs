//! What the plug-in traits report: [`ProviderError`] (what the provider's
//! `on_error` hook receives) and where it came from.

use std::error::Error;
use std::fmt;
use std::sync::Arc;

/// A boxed error cause, kept as [`Error::source`] by the errors of this crate.
pub type BoxError = Box<dyn Error + Send + Sync + 'static>;

/// Where an error came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
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

/// An error reported to the provider's `on_error` hook: where it came from,
/// whether retrying may help, what happened (naming the file, URL or flag
/// concerned) and, when there is one, the underlying error as
/// [`source`](Error::source).
///
/// # Example
/// ```
/// use std::error::Error;
/// use flagyard_core::{ErrorOrigin, ProviderError};
///
/// let cause = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
/// let e = ProviderError::new(ErrorOrigin::Network, true, "sse:http://127.0.0.1:8013/v1/stream: refused")
///     .with_source(cause);
/// assert!(e.is_transient());
/// assert_eq!(e.origin(), ErrorOrigin::Network);
/// assert!(e.source().is_some());
/// ```
#[derive(Clone)]
pub struct ProviderError {
    origin: ErrorOrigin,
    transient: bool,
    message: String,
    source: Option<Arc<dyn Error + Send + Sync + 'static>>,
}

impl ProviderError {
    /// An error without an underlying cause.
    pub fn new(origin: ErrorOrigin, transient: bool, message: impl Into<String>) -> Self {
        ProviderError {
            origin,
            transient,
            message: message.into(),
            source: None,
        }
    }

    crate::setters! {
        /// Keeps `source` as the underlying cause.
        with_source(source: impl Into<BoxError>) => source = Some(Arc::from(source.into()));
    }

    /// Where it came from.
    pub fn origin(&self) -> ErrorOrigin {
        self.origin
    }

    /// Whether retrying may help (a dropped connection) or not (a bad document,
    /// refused credentials).
    pub fn is_transient(&self) -> bool {
        self.transient
    }

    /// What happened, naming the file, URL or flag concerned.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Debug for ProviderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderError")
            .field("origin", &self.origin)
            .field("transient", &self.transient)
            .field("message", &self.message)
            .field("source", &self.source)
            .finish()
    }
}

impl fmt::Display for ProviderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = if self.transient {
            "transient"
        } else {
            "permanent"
        };
        write!(f, "{} error ({kind}): {}", self.origin, self.message)
    }
}

impl Error for ProviderError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn Error + 'static))
    }
}
