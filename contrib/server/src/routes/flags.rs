//! `GET /v1/flags`: the SDK key's environment's document with a strong ETag.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::access::ReadAccess;
use crate::error::ApiError;
use crate::published::etag_matches;

pub(super) async fn get_flags(read: ReadAccess, headers: HeaderMap) -> Result<Response, ApiError> {
    let current = read.environment.current();
    let etag =
        HeaderValue::from_str(&current.etag).map_err(|e| ApiError::Internal(e.to_string()))?;
    let version = HeaderValue::from(current.version);
    let not_modified = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| etag_matches(v, &current.etag));
    if not_modified {
        return Ok((
            StatusCode::NOT_MODIFIED,
            [
                (header::ETAG, etag),
                (
                    header::HeaderName::from_static("x-flagyard-version"),
                    version,
                ),
            ],
        )
            .into_response());
    }
    Ok((
        StatusCode::OK,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (header::ETAG, etag),
            (
                header::HeaderName::from_static("x-flagyard-version"),
                version,
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        current.body.clone(),
    )
        .into_response())
}
