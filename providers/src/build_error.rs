//! [`BuildError`]: a source or provider configured with something unusable,
//! reported by the `build()` step that was given it.

use std::path::PathBuf;

use flagyard_core::BoxError;

/// What a `build()` step found wrong, naming it; nothing was started.
///
/// # Example
/// ```
/// use flagyard::{BuildError, PollingSource};
///
/// let err = PollingSource::builder("http://127.0.0.1:8013/v1/flags")
///     .header("x-team", "line\nbreak")
///     .build()
///     .unwrap_err();
/// assert!(matches!(err, BuildError::Header { .. }));
/// assert!(err.to_string().contains("x-team"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// A request header that is not valid HTTP.
    #[error("{what}: invalid header '{name}': {cause}")]
    Header {
        /// The source (`poll:http://…`).
        what: String,
        /// The header's name.
        name: String,
        /// Why it is invalid.
        #[source]
        cause: BoxError,
    },
    /// A URL that cannot be used.
    #[error("{what}: invalid URL '{url}': {cause}")]
    Url {
        /// The source.
        what: String,
        /// The URL as given (a password masked).
        url: String,
        /// Why it is invalid.
        #[source]
        cause: BoxError,
    },
    /// A bootstrap file that cannot be read.
    #[error("bootstrap file {path}: {cause}")]
    Bootstrap {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        cause: std::io::Error,
    },
    /// Any other setting that cannot be used (a declared name flask-pancake
    /// would refuse, an HTTP client that cannot be built).
    #[error("{what}: {cause}")]
    Config {
        /// The source.
        what: String,
        /// What is wrong.
        #[source]
        cause: BoxError,
    },
}
