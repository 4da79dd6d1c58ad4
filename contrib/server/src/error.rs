//! API errors and their HTTP responses.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// An error answered to an API client as `{"error": "..."}` (or OFREP's shape).
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed or the document invalid (400).
    #[error("{0}")]
    BadRequest(String),
    /// No or wrong credentials (401).
    #[error("{0}")]
    Unauthorized(String),
    /// The operation is not allowed at all (403).
    #[error("{0}")]
    Forbidden(String),
    /// The thing asked for does not exist (404).
    #[error("{0}")]
    NotFound(String),
    /// The document is too large (413).
    #[error("{0}")]
    TooLarge(String),
    /// The server failed (500).
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(e) = &self {
            tracing::error!(error = %e, "request failed");
        }
        let message = self.to_string();
        let body = crate::wire::ErrorBody { error: &message };
        let mut response = (self.status(), axum::Json(body)).into_response();
        if matches!(self, ApiError::Unauthorized(_)) {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}
