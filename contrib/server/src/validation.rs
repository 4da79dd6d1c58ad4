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
    CompileOptions::default()
        .limits(Limits {
            max_document_bytes: config.max_document_bytes,
            ..Limits::default()
        })
        .fractional(config.fractional)
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

/// Why a flag key cannot be used: every route names a flag by its key as one
/// path segment (`/ofrep/v1/evaluate/flags/{key}`, `/v1/admin/flags/{key}`).
pub(crate) fn flag_key_problem(key: &str) -> Option<&'static str> {
    if key.is_empty() {
        Some("a flag key must not be empty")
    } else if key.contains('/') {
        Some("a flag key must not contain '/' (routes name a flag by its key as one path segment)")
    } else if key.chars().any(char::is_control) {
        Some("a flag key must not contain control characters")
    } else {
        None
    }
}

/// Validates a document strictly: any problem refuses it (writes must not
/// publish a flag that answers PARSE_ERROR).
pub(crate) fn validate(document: &Value, config: &ServerConfig) -> Result<Snapshot, Invalid> {
    // A flag no route can name is refused before it is stored.
    let unreachable: Vec<Problem> = document
        .get("flags")
        .and_then(Value::as_object)
        .into_iter()
        .flat_map(|flags| flags.keys())
        .filter(|key| flag_key_problem(key).is_some())
        .map(|key| Problem {
            flag: Some(key.clone()),
            pointer: format!("/flags/{}", key.replace('~', "~0").replace('/', "~1")),
            message: flag_key_problem(key).unwrap_or_default().to_string(),
        })
        .collect();
    if !unreachable.is_empty() {
        return Err(Invalid::Problems(unreachable));
    }
    let snapshot =
        Snapshot::from_value(document, &compile_options(config)).map_err(Invalid::Document)?;
    if !snapshot.problems().is_empty() {
        return Err(Invalid::Problems(snapshot.problems().to_vec()));
    }
    Ok(snapshot)
}
