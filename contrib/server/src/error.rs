//! API errors and their HTTP responses.

use axum::http::StatusCode;

use crate::validation::Invalid;
use axum::response::{IntoResponse, Response};

/// An error answered to an API client as `{"error": "..."}` (or OFREP's shape).
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed or the document invalid (400).
    #[error("{0}")]
    BadRequest(String),
    /// The document written is invalid (400): every problem, each naming
    /// its flag, JSON pointer and reason.
    #[error("document refused: {}", flagyard_core::Problem::join(.0))]
    Invalid(Vec<flagyard_core::Problem>),
    /// `If-Match` named a version that is no longer current (412): the
    /// current one, to reload.
    #[error("{message}")]
    PreconditionFailed {
        /// What was stale.
        message: String,
        /// The document's current version.
        version: u64,
        /// The document's current ETag.
        etag: String,
        /// The flag's current ETag (absent: the flag does not exist), for a
        /// flag's write.
        flag_etag: Option<String>,
    },
    /// No or wrong credentials (401).
    #[error("{0}")]
    Unauthorized(String),
    /// The operation is not allowed at all (403).
    #[error("{0}")]
    Forbidden(String),
    /// The thing asked for does not exist (404).
    #[error("{0}")]
    NotFound(String),
    /// The write lost to other writers too many times in a row (409).
    #[error("{0}")]
    Conflict(String),
    /// The document is too large (413).
    #[error("{0}")]
    TooLarge(String),
    /// Too many requests (429): retry after this many seconds.
    #[error("{message}")]
    TooManyRequests {
        /// Why.
        message: String,
        /// Seconds until a retry can succeed (the `Retry-After` header).
        retry_after: u64,
    },
    /// The store cannot be reached now (503): retry after this many seconds.
    #[error("{message}")]
    Unavailable {
        /// Why.
        message: String,
        /// Seconds until a retry may succeed (the `Retry-After` header).
        retry_after: u64,
    },
    /// The request's URI is too long (414).
    #[error("{0}")]
    UriTooLong(String),
    /// The server failed (500).
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) | ApiError::Invalid(_) => StatusCode::BAD_REQUEST,
            ApiError::PreconditionFailed { .. } => StatusCode::PRECONDITION_FAILED,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::UriTooLong(_) => StatusCode::URI_TOO_LONG,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl ApiError {
    /// A store error as the client should see it: `503` with `Retry-After`
    /// when it may pass (Redis unreachable, SQLite busy), else `500`.
    pub(crate) fn from_store(e: &flagyard_core::StoreError) -> ApiError {
        if e.is_transient() {
            ApiError::Unavailable {
                message: format!("the store is unreachable, nothing was changed: {e}"),
                retry_after: 5,
            }
        } else {
            ApiError::Internal(e.to_string())
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(e) = &self {
            tracing::error!(error = %e, "request failed");
        }
        let message = self.to_string();
        let mut body = crate::wire::ErrorBody::new(&message);
        match &self {
            ApiError::Invalid(problems) => {
                body.problems = Some(
                    problems
                        .iter()
                        .map(crate::wire::ProblemItem::from)
                        .collect(),
                );
            }
            ApiError::PreconditionFailed {
                version,
                etag,
                flag_etag,
                ..
            } => {
                body.version = Some(*version);
                body.etag = Some(etag);
                body.flag_etag = flag_etag.as_deref();
            }
            _ => {}
        }
        let mut response = (self.status(), axum::Json(body)).into_response();
        if let ApiError::TooManyRequests { retry_after, .. }
        | ApiError::Unavailable { retry_after, .. } = &self
        {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(*retry_after),
            );
        }
        if matches!(self, ApiError::Unauthorized(_)) {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}

/// Why a server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The database could not be opened or written.
    #[error("database: {0}")]
    Database(#[from] flagyard_core::StoreError),
    /// The seed file could not be read.
    #[error("{path}: {source}")]
    Seed {
        /// The seed file.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A stored or seed document is invalid.
    #[error("{what}: {source}")]
    InvalidDocument {
        /// Where the document came from.
        what: String,
        /// What is wrong.
        #[source]
        source: Invalid,
    },
    /// The store holds no document after the first write.
    #[error("the store holds no document after '{action}'")]
    NothingStored {
        /// The write (`seed`, `init`).
        action: String,
    },
    /// The pancake Redis could not be reached.
    #[error("pancake: {0}")]
    Pancake(#[from] flagyard_storage::pancake::PancakeError),
    /// The Redis pub/sub connection of the fan-out closed.
    #[error("the pub/sub connection closed")]
    FanOutClosed,
    /// A declared credential names an environment the server does not serve.
    #[error(
        "credential '{credential}' names environment '{environment}', which is not served: declare it under [[environments]]"
    )]
    UnknownEnvironment {
        /// The credential's name.
        credential: String,
        /// The environment it names.
        environment: String,
    },
    /// Two declared credentials have the same token.
    #[error("credentials '{first}' and '{second}' have the same token: give each its own")]
    SharedToken {
        /// The first one declared.
        first: String,
        /// The one declared again with its token.
        second: String,
    },
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}
