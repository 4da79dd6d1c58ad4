//! [`Source`]: where flag documents come from, and [`SourceUpdates`], what it
//! tells the runtime.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use super::error::ProviderError;

/// A boxed, sendable future.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// What a [`Source`] tells the runtime.
pub trait SourceUpdates: Send + Sync {
    /// A whole new flag document (JSON text, not parsed yet: the runtime parses
    /// it once, into the snapshot). A bad one is reported and the last good
    /// document stays.
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
///
/// # Example
/// ```
/// use std::sync::Arc;
/// use flagyard_core::{BoxFuture, Source, SourceUpdates};
///
/// /// Delivers one fixed document.
/// struct Fixed(&'static str);
///
/// impl Source for Fixed {
///     fn describe(&self) -> String { "fixed".into() }
///     fn run(self: Box<Self>, updates: Arc<dyn SourceUpdates>) -> BoxFuture<()> {
///         Box::pin(async move { updates.document(self.0.to_string()) })
///     }
/// }
/// ```
pub trait Source: Send + 'static {
    /// A short description for logs and errors (`file:/etc/flags.json`).
    fn describe(&self) -> String;
    /// Runs until dropped, delivering documents and errors to `updates`.
    fn run(self: Box<Self>, updates: Arc<dyn SourceUpdates>) -> BoxFuture<()>;
}

/// A boxed source is a source (a source chosen at run time).
impl<S: Source + ?Sized> Source for Box<S> {
    fn describe(&self) -> String {
        (**self).describe()
    }
    fn run(self: Box<Self>, updates: Arc<dyn SourceUpdates>) -> BoxFuture<()> {
        (*self).run(updates)
    }
}
