//! Who may call a route, decided by extractors: a handler that takes
//! [`AdminAccess`] or [`ReadAccess`] runs only for a caller that passed the
//! check. Tokens are compared in constant time.

use std::sync::Arc;

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use subtle::ConstantTimeEq;

use crate::error::ApiError;
use crate::state::AppState;

/// The credential a request carries: `Authorization: Bearer <t>` or `X-API-Key: <t>`.
fn presented(headers: &HeaderMap) -> Option<&str> {
    if let Some(v) = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        // The scheme is case-insensitive (RFC 7235 §2.1).
        if let Some((scheme, token)) = v.trim().split_once(' ')
            && scheme.eq_ignore_ascii_case("bearer")
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
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// The caller presented the admin token. Carries who made the change (the
/// `X-Flagyard-Actor` header, else `admin`) for the history.
#[derive(Debug, Clone)]
pub struct AdminAccess {
    /// The name recorded in the history.
    pub actor: String,
}

impl FromRequestParts<Arc<AppState>> for AdminAccess {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let Some(expected) = state.config.admin_token.as_deref() else {
            return Err(ApiError::Forbidden(
                "the admin API is disabled: start the server with --admin-token or FLAGYARD_ADMIN_TOKEN".into(),
            ));
        };
        // The client's address (absent when the router is served without
        // connection info, as in some tests: then nothing is throttled).
        let client = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip());
        if let Some(client) = client
            && let Err(retry_after) = state.logins.check(client)
        {
            return Err(ApiError::TooManyRequests {
                message: format!(
                    "too many failed admin logins from {client}; retry in {retry_after} s"
                ),
                retry_after,
            });
        }
        let refused = match presented(&parts.headers) {
            Some(token) if same(token, expected) => {
                if let Some(client) = client {
                    state.logins.succeeded(client);
                }
                return Ok(AdminAccess {
                    actor: actor(&parts.headers),
                });
            }
            Some(_) => "wrong admin token",
            None => "missing Authorization: Bearer <admin token>",
        };
        // Logged without the token.
        tracing::warn!(
            client = %client.map_or_else(|| "unknown".to_string(), |c| c.to_string()),
            path = %parts.uri.path(),
            reason = refused,
            "admin authentication failed"
        );
        if let Some(client) = client {
            state.logins.failed(client);
        }
        Err(ApiError::Unauthorized(refused.into()))
    }
}

/// Who made a change: the `X-Flagyard-Actor` header, else `admin`.
fn actor(headers: &HeaderMap) -> String {
    headers
        .get("x-flagyard-actor")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.trim().is_empty())
        .map_or_else(
            || "admin".to_string(),
            |v| v.trim().chars().take(128).collect(),
        )
}

/// The caller may read flags: free unless an SDK key is configured, and then
/// that key (or the admin token) must be presented.
#[derive(Debug, Clone, Copy)]
pub struct ReadAccess;

impl ReadAccess {
    /// The check itself, for extractors that add to it (OFREP's).
    pub(crate) fn check(headers: &HeaderMap, state: &AppState) -> Result<ReadAccess, ApiError> {
        let Some(expected) = state.config.sdk_key.as_deref() else {
            return Ok(ReadAccess);
        };
        let admin = state.config.admin_token.as_deref();
        match presented(headers) {
            Some(token) if same(token, expected) || admin.is_some_and(|a| same(token, a)) => {
                Ok(ReadAccess)
            }
            Some(_) => Err(ApiError::Unauthorized("wrong SDK key".into())),
            None => Err(ApiError::Unauthorized(
                "this server needs an SDK key: Authorization: Bearer <key> or X-API-Key".into(),
            )),
        }
    }
}

impl FromRequestParts<Arc<AppState>> for ReadAccess {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        ReadAccess::check(&parts.headers, state)
    }
}
