//! Optimistic concurrency for the admin API's writes: [`Preconditions`] are
//! `If-Match` (the document's ETag or version, or a flag's ETag) and
//! `If-None-Match: *` (create only), read with the caller's [`EditAccess`](crate::access::EditAccess);
//! the write checks them against the document it is about to change, under
//! the environment's write lock, and answers `412` with the current version
//! when they are stale.

use std::hash::{Hash, Hasher};

use axum::http::{HeaderMap, header};
use serde_json::Value;

use crate::error::ApiError;
use crate::published::Published;

/// A flag definition's ETag, `"f-<hash>"`: changes exactly when the
/// definition does, whatever happens to the other flags.
pub(crate) fn flag_etag(definition: &Value) -> String {
    let mut h = std::hash::DefaultHasher::new();
    definition.to_string().hash(&mut h);
    format!("\"f-{:016x}\"", h.finish())
}

/// The preconditions a write request carries.
#[derive(Debug, Clone, Default)]
pub struct Preconditions {
    /// `If-Match` entity tags (unquoted versions are accepted too).
    if_match: Vec<String>,
    /// `If-None-Match: *`: only if the flag does not exist yet.
    create_only: bool,
}

impl Preconditions {
    /// The preconditions `headers` carry; a malformed one is `400`.
    pub(crate) fn from_headers(headers: &HeaderMap) -> Result<Preconditions, ApiError> {
        let text = |name: header::HeaderName| -> Result<Option<&str>, ApiError> {
            headers
                .get(&name)
                .map(|v| {
                    v.to_str()
                        .map_err(|_| ApiError::BadRequest(format!("{name} is not ASCII")))
                })
                .transpose()
        };
        let if_match = text(header::IF_MATCH)?
            .map(|v| {
                v.split(',')
                    .map(|t| t.trim().trim_start_matches("W/").to_string())
                    .filter(|t| !t.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        let create_only = match text(header::IF_NONE_MATCH)? {
            None => false,
            Some(v) if v.trim() == "*" => true,
            Some(other) => {
                return Err(ApiError::BadRequest(format!(
                    "If-None-Match on a write must be \"*\" (create only), found {other:?}"
                )));
            }
        };
        Ok(Preconditions {
            if_match,
            create_only,
        })
    }

    /// None: the write is unconditional.
    pub(crate) fn is_empty(&self) -> bool {
        self.if_match.is_empty() && !self.create_only
    }

    /// Checks the preconditions against the document about to change
    /// (`current`, parsed as `document`); `flag`: the flag a flag write
    /// touches. `412` names the current version and ETags.
    pub(crate) fn check(
        &self,
        current: &Published,
        document: &Value,
        flag: Option<&str>,
    ) -> Result<(), ApiError> {
        let definition = flag.and_then(|key| document.get("flags")?.get(key));
        let flag_tag = definition.map(flag_etag);
        let stale = |message: String| ApiError::PreconditionFailed {
            message,
            version: current.version,
            etag: current.etag.clone(),
            flag_etag: flag_tag.clone(),
        };
        if self.create_only && definition.is_some() {
            return Err(stale(format!(
                "flag '{}' already exists (If-None-Match: *); reload it and edit that",
                flag.unwrap_or_default()
            )));
        }
        if self.if_match.is_empty() {
            return Ok(());
        }
        let matches = |tag: &str| {
            (tag == "*" && (flag.is_none() || definition.is_some()))
                || tag == current.etag
                || tag.trim_matches('"') == current.version.to_string()
                || flag_tag.as_deref() == Some(tag)
        };
        if self.if_match.iter().any(|t| matches(t)) {
            return Ok(());
        }
        Err(stale(format!(
            "the document changed since {}: it is at version {} now; reload and apply the edit again",
            self.if_match.join(", "),
            current.version
        )))
    }
}
