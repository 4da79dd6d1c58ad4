//! [`Store`]: where the last good document is kept, and its [`StoreError`].

use std::path::PathBuf;
use std::sync::Arc;

use super::error::{BoxError, ErrorOrigin, ProviderError};

/// Errors of a [`Store`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
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
    /// The stored document is unreadable (truncated, not JSON, not a database, ...).
    #[error("{path}: corrupt store file: {detail}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        detail: String,
    },
    /// A database (SQLite, Redis, ...) failed; the cause is the database
    /// client's own error.
    #[error("{store}: {source}")]
    Database {
        /// Which store, as its description names it (a Redis URL has its
        /// password masked).
        store: String,
        /// Whether retrying may help, decided from the cause by the store (a
        /// refused connection, a busy SQLite file).
        transient: bool,
        /// The database client's error.
        #[source]
        source: BoxError,
    },
}

impl StoreError {
    /// A database error: `store` names it, `transient` is decided from `source`.
    pub fn database(
        store: impl Into<String>,
        transient: bool,
        source: impl Into<BoxError>,
    ) -> Self {
        StoreError::Database {
            store: store.into(),
            transient,
            source: source.into(),
        }
    }

    /// Whether retrying may help: an I/O error that can pass (interrupted,
    /// timed out, out of space), a database the store judged transient
    /// (connection refused, busy); never a corrupt file.
    pub fn is_transient(&self) -> bool {
        use std::io::ErrorKind;
        match self {
            StoreError::Io { source, .. } => !matches!(
                source.kind(),
                ErrorKind::NotFound
                    | ErrorKind::PermissionDenied
                    | ErrorKind::InvalidInput
                    | ErrorKind::InvalidData
                    | ErrorKind::IsADirectory
                    | ErrorKind::NotADirectory
                    | ErrorKind::ReadOnlyFilesystem
                    | ErrorKind::Unsupported
            ),
            StoreError::Corrupt { .. } => false,
            StoreError::Database { transient, .. } => *transient,
        }
    }

    /// Where the provider reports it from: `Disk` for files, `Store` for databases.
    pub fn origin(&self) -> ErrorOrigin {
        match self {
            StoreError::Io { .. } | StoreError::Corrupt { .. } => ErrorOrigin::Disk,
            StoreError::Database { .. } => ErrorOrigin::Store,
        }
    }

    /// The error as the provider reports it, with `self` as its source.
    pub fn into_provider_error(self) -> ProviderError {
        ProviderError::new(self.origin(), self.is_transient(), self.to_string()).with_source(self)
    }
}

/// Where the last good document is kept, for cold starts without a source.
///
/// Calls come from the runtime, never from the read path. `save` must be quick:
/// a store may coalesce writes and do them later; `flush` writes what is pending.
///
/// # Example
/// ```
/// use std::sync::Mutex;
/// use flagyard_core::{Store, StoreError};
///
/// #[derive(Debug, Default)]
/// struct InMemory(Mutex<Option<String>>);
///
/// impl Store for InMemory {
///     fn describe(&self) -> String { "in-memory".into() }
///     fn load(&self) -> Result<Option<String>, StoreError> { Ok(self.0.lock().unwrap().clone()) }
///     fn save(&self, document: &str) -> Result<(), StoreError> {
///         *self.0.lock().unwrap() = Some(document.to_string());
///         Ok(())
///     }
///     fn flush(&self) -> Result<(), StoreError> { Ok(()) }
/// }
/// ```
pub trait Store: Send + Sync + 'static {
    /// A short description (`disk:/home/me/.local/share/flagyard/cache/flags.json`).
    fn describe(&self) -> String;
    /// The last saved document, if any.
    fn load(&self) -> Result<Option<String>, StoreError>;
    /// Keeps a new document (possibly later). Also reports a failed deferred write.
    fn save(&self, document: &str) -> Result<(), StoreError>;
    /// Writes anything pending now.
    fn flush(&self) -> Result<(), StoreError>;
    /// Told once, before the first `load`, what the store caches: the
    /// descriptions of the provider's sources. A store whose location was not
    /// chosen derives it from them, so two apps on one host caching different
    /// sources never share a file. The default ignores it.
    fn cache_for(&self, sources: &str) {
        let _ = sources;
    }
}

/// A shared store is a store: hand the same one to several providers.
impl<T: Store + ?Sized> Store for Arc<T> {
    fn describe(&self) -> String {
        (**self).describe()
    }
    fn load(&self) -> Result<Option<String>, StoreError> {
        (**self).load()
    }
    fn save(&self, document: &str) -> Result<(), StoreError> {
        (**self).save(document)
    }
    fn flush(&self) -> Result<(), StoreError> {
        (**self).flush()
    }
    fn cache_for(&self, sources: &str) {
        (**self).cache_for(sources)
    }
}
