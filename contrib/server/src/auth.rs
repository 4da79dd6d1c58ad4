//! Bearer-token checks, compared in constant time.

use axum::http::HeaderMap;
use subtle::ConstantTimeEq;

use crate::error::ApiError;

/// The credential a request carries: `Authorization: Bearer <t>` or `X-API-Key: <t>`.
pub fn presented(headers: &HeaderMap) -> Option<&str> {
    if let Some(v) = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        let v = v.trim();
        if let Some(token) = v
            .strip_prefix("Bearer ")
            .or_else(|| v.strip_prefix("bearer "))
        {
            return Some(token.trim());
        }
    }
    headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

/// Constant-time equality (the length is not secret).
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// Admin writes: a token must be configured and presented.
pub fn require_admin(headers: &HeaderMap, admin_token: Option<&str>) -> Result<(), ApiError> {
    let Some(expected) = admin_token else {
        return Err(ApiError::Forbidden(
            "the admin API is disabled: start the server with --admin-token or FLAGYARD_ADMIN_TOKEN".into(),
        ));
    };
    match presented(headers) {
        Some(token) if same(token, expected) => Ok(()),
        Some(_) => Err(ApiError::Unauthorized("wrong admin token".into())),
        None => Err(ApiError::Unauthorized(
            "missing Authorization: Bearer <admin token>".into(),
        )),
    }
}

/// Reads: free unless an SDK key is configured; the admin token also works.
pub fn require_reader(
    headers: &HeaderMap,
    sdk_key: Option<&str>,
    admin_token: Option<&str>,
) -> Result<(), ApiError> {
    let Some(expected) = sdk_key else {
        return Ok(());
    };
    match presented(headers) {
        Some(token) if same(token, expected) || admin_token.is_some_and(|a| same(token, a)) => {
            Ok(())
        }
        Some(_) => Err(ApiError::Unauthorized("wrong SDK key".into())),
        None => Err(ApiError::Unauthorized(
            "this server needs an SDK key: Authorization: Bearer <key> or X-API-Key".into(),
        )),
    }
}
