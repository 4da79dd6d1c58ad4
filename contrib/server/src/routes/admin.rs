//! The admin API: replace the document, set or delete one flag, read history.
//! Every request needs `Authorization: Bearer <admin token>`.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use serde_json::{Value, json};

use crate::auth::require_admin;
use crate::error::ApiError;
use crate::published::Published;
use crate::state::AppState;

/// Who made a change: the `X-Flagyard-Actor` header, else `admin`.
pub(super) fn actor(headers: &HeaderMap) -> String {
    headers
        .get("x-flagyard-actor")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.trim().is_empty())
        .map_or_else(
            || "admin".to_string(),
            |v| v.trim().chars().take(128).collect(),
        )
}

/// A JSON body of at most `max` bytes.
pub(super) fn parse(body: &Bytes, max: usize) -> Result<Value, ApiError> {
    if body.len() > max {
        return Err(ApiError::TooLarge(format!(
            "body is {} bytes, over the {max}-byte limit",
            body.len()
        )));
    }
    serde_json::from_slice(body).map_err(|e| ApiError::BadRequest(format!("body is not JSON: {e}")))
}

fn accepted(published: &Published) -> Json<Value> {
    Json(json!({ "version": published.version, "etag": published.etag }))
}

pub(super) async fn put_document(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    require_admin(&headers, state.config.admin_token.as_deref())?;
    let document = parse(&body, state.config.max_document_bytes)?;
    let published = state
        .change(
            |_| Ok(document.clone()),
            &actor(&headers),
            "put-document",
            "",
        )
        .await?;
    Ok(accepted(&published))
}

pub(super) async fn set_flag(
    State(state): State<Arc<AppState>>,
    Path(key): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    require_admin(&headers, state.config.admin_token.as_deref())?;
    if key.is_empty() {
        return Err(ApiError::BadRequest("flag key must not be empty".into()));
    }
    let definition = parse(&body, state.config.max_document_bytes)?;
    let flag_key = key.clone();
    let published = state
        .change(
            move |mut document| {
                let flags = document
                    .get_mut("flags")
                    .and_then(Value::as_object_mut)
                    .ok_or_else(|| {
                        ApiError::Internal("current document has no flags object".into())
                    })?;
                flags.insert(flag_key.clone(), definition.clone());
                Ok(document)
            },
            &actor(&headers),
            "set-flag",
            &key,
        )
        .await?;
    Ok(accepted(&published))
}

pub(super) async fn delete_flag(
    State(state): State<Arc<AppState>>,
    Path(key): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    require_admin(&headers, state.config.admin_token.as_deref())?;
    let flag_key = key.clone();
    let published = state
        .change(
            move |mut document| {
                let flags = document
                    .get_mut("flags")
                    .and_then(Value::as_object_mut)
                    .ok_or_else(|| {
                        ApiError::Internal("current document has no flags object".into())
                    })?;
                if flags.remove(&flag_key).is_none() {
                    return Err(ApiError::NotFound(format!("no flag '{flag_key}'")));
                }
                Ok(document)
            },
            &actor(&headers),
            "delete-flag",
            &key,
        )
        .await?;
    Ok(accepted(&published))
}

#[derive(serde::Deserialize)]
pub(super) struct HistoryQuery {
    limit: Option<usize>,
}

impl HistoryQuery {
    /// The limit asked for: 50 by default, 1 to 1,000.
    pub(super) fn limit(&self) -> usize {
        self.limit.unwrap_or(50).clamp(1, 1000)
    }
}

/// History entries as the API answers them.
pub(super) fn history_json(entries: Vec<flagyard_storage::HistoryEntry>) -> Json<Value> {
    let entries: Vec<Value> = entries
        .into_iter()
        .map(|h| json!({ "version": h.version, "atMs": h.at_ms, "actor": h.actor, "action": h.action, "detail": h.detail }))
        .collect();
    Json(json!({ "history": entries }))
}

pub(super) async fn history(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(query): Query<HistoryQuery>,
) -> Result<Json<Value>, ApiError> {
    require_admin(&headers, state.config.admin_token.as_deref())?;
    let entries = state
        .backend
        .history(query.limit())
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(history_json(entries))
}
