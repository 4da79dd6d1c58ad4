//! What the server accepts: strict validation of written documents, lenient
//! compilation of stored ones.

use flagyard_core::{CompileOptions, DocumentError, Limits, Problem, Snapshot};
use serde_json::Value;

use crate::config::ServerConfig;
use crate::error::ServerError;
use crate::published::Published;

/// Why a document is refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Invalid {
    /// The text is not JSON.
    #[error("not JSON: {0}")]
    Json(#[source] serde_json::Error),
    /// The document cannot be used at all.
    #[error("{0}")]
    Document(#[source] DocumentError),
    /// Single flags have problems (each names the flag, pointer and reason).
    #[error("{}", Problem::join(.0))]
    Problems(Vec<Problem>),
}

pub(crate) fn compile_options(config: &ServerConfig) -> CompileOptions {
    CompileOptions::default().limits(Limits {
        max_document_bytes: config.max_document_bytes,
        ..Limits::default()
    })
}

/// Compiles a stored document leniently: it was valid when written, and a
/// newer rule set must never stop a server from serving it.
pub(crate) fn compile_stored(
    version: u64,
    body: &str,
    config: &ServerConfig,
) -> Result<Published, ServerError> {
    let invalid = |source| ServerError::InvalidDocument {
        what: format!("stored version {version}"),
        source,
    };
    let value: Value = serde_json::from_str(body).map_err(|e| invalid(Invalid::Json(e)))?;
    let snapshot = Snapshot::from_value(&value, &compile_options(config))
        .map_err(|e| invalid(Invalid::Document(e)))?;
    Ok(Published::new(version, &value, snapshot))
}

/// Validates a document strictly: any problem refuses it (writes must not
/// publish a flag that answers PARSE_ERROR).
pub(crate) fn validate(document: &Value, config: &ServerConfig) -> Result<Snapshot, Invalid> {
    let snapshot =
        Snapshot::from_value(document, &compile_options(config)).map_err(Invalid::Document)?;
    if !snapshot.problems().is_empty() {
        return Err(Invalid::Problems(snapshot.problems().to_vec()));
    }
    Ok(snapshot)
}
