//! Typed request bodies: [`ApiJson`] reads a JSON body within the configured
//! limit (set for the whole router as a `DefaultBodyLimit` layer) and answers
//! every failure with the project's JSON error.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::state::AppState;

/// A JSON request body deserialized into `T`. An oversized body is a 413 naming
/// the limit, a malformed one a 400 naming line and column, one with a key
/// twice or an integer beyond 64 bits a 400 naming the pointer; all as JSON.
#[derive(Debug, Clone)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<Arc<AppState>> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &Arc<AppState>) -> Result<Self, Self::Rejection> {
        let limit = state.config.max_body_bytes();
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::TooLarge(format!(
                    "body is over the {limit}-byte limit (documents may have {} bytes)",
                    state.config.max_document_bytes
                ))
            } else {
                ApiError::BadRequest(format!("cannot read the body: {rejection}"))
            }
        })?;
        crate::strict::check(&bytes)
            .map_err(|e| ApiError::BadRequest(format!("body refused: {e}")))?;
        serde_json::from_slice(&bytes)
            .map(ApiJson)
            .map_err(|e| ApiError::BadRequest(format!("body is not JSON: {e}")))
    }
}
