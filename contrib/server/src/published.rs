//! The document as served: compact JSON, version, strong ETag, compiled snapshot.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::ws::Utf8Bytes;
use flagyard_core::Snapshot;
use serde_json::Value;

/// One published version of the document.
#[derive(Debug)]
pub struct Published {
    /// Increases with every accepted change.
    pub version: u64,
    /// The document, compact JSON on one line; every response shares these bytes.
    pub body: Bytes,
    /// `{"version": N, "document": {...}}` — the SSE and WebSocket message,
    /// shared by every stream.
    pub message: Utf8Bytes,
    /// The SSE event carrying `message` (`event: document`, `id:` the
    /// version), encoded once for every SSE stream.
    pub(crate) sse: Bytes,
    /// The OFREP change notification (ADR-0008) of this version, as the SSE
    /// event `GET /ofrep/v1/changes` sends, encoded once for every stream.
    pub(crate) ofrep_change: Bytes,
    /// Strong ETag, quoted.
    pub etag: String,
    /// The compiled document, for OFREP.
    pub snapshot: Arc<Snapshot>,
    /// When it was built (to time its way to the streams).
    pub(crate) at: std::time::Instant,
}

impl Published {
    /// Builds the published form of a validated document.
    pub fn new(version: u64, document: &Value, snapshot: Snapshot) -> Published {
        let body = document.to_string();
        let mut h = std::hash::DefaultHasher::new();
        body.hash(&mut h);
        let etag = format!("\"{version}-{:016x}\"", h.finish());
        let message = format!(r#"{{"version":{version},"document":{body}}}"#);
        // Compact JSON is one line: one `data:` line holds it.
        let sse = format!("event: document\nid: {version}\ndata: {message}\n\n");
        let change = crate::wire::OfrepChange {
            kind: "refetchEvaluation",
            etag: &etag,
        };
        // A struct of strings always serializes.
        let change = serde_json::to_string(&change).unwrap_or_default();
        let ofrep_change = format!("event: message\nid: {version}\ndata: {change}\n\n");
        Published {
            version,
            body: Bytes::from(body),
            message: Utf8Bytes::from(message),
            sse: Bytes::from(sse),
            ofrep_change: Bytes::from(ofrep_change),
            etag,
            snapshot: Arc::new(snapshot),
            at: std::time::Instant::now(),
        }
    }
}

impl Published {
    /// The document as JSON, to edit (it was valid JSON when published).
    pub(crate) fn document(&self) -> Result<Value, crate::error::ApiError> {
        serde_json::from_slice(&self.body).map_err(|e| {
            crate::error::ApiError::Internal(format!(
                "current document (version {}): {e}",
                self.version
            ))
        })
    }
}

/// Whether an `If-None-Match` header value matches `etag` (a list, `*`, or weak forms).
pub(crate) fn etag_matches(if_none_match: &str, etag: &str) -> bool {
    if_none_match
        .split(',')
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == "*" || t == etag)
}
