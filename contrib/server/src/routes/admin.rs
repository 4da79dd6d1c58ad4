//! The admin API of one environment (named in the path, else `default`):
//! replace the document, set or delete one flag, read history. Changes take
//! [`EditAccess`] (an editor of that environment, or an admin), reads
//! [`AdminAccess`]: checked before the handler runs.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use serde_json::{Map, Value};

use crate::access::{AdminAccess, EditAccess, InEnvironment};
use crate::body::ApiJson;
use crate::error::ApiError;
use crate::state::AppState;
use crate::wire::{HistoryPage, Written};

/// Applies `edit` as the admin's `action` on `key` (see
/// [`AppState::change`]) and answers the published version.
async fn write(
    state: &AppState,
    access: &EditAccess,
    action: &str,
    key: &str,
    edit: impl Fn(Value) -> Result<Value, ApiError>,
) -> Result<Json<Written>, ApiError> {
    let env = &access.environment;
    let published = state.change(env, edit, access.actor(), action, key).await?;
    Ok(Json(Written {
        version: published.version,
        etag: published.etag.clone(),
    }))
}

/// The flag a route names (`{key}`; beside `{env}` on the environment routes).
#[derive(serde::Deserialize)]
pub(super) struct FlagPath {
    key: String,
}

/// The document's `flags` object, to edit.
fn flags_of(document: &mut Value) -> Result<&mut Map<String, Value>, ApiError> {
    document
        .get_mut("flags")
        .and_then(Value::as_object_mut)
        .ok_or_else(|| ApiError::Internal("current document has no flags object".into()))
}

/// `GET /v1/admin/document` (and per environment): the document served,
/// with its version in `X-Flagyard-Version` and its ETag.
pub(super) async fn get_document(
    _admin: AdminAccess,
    InEnvironment(env): InEnvironment,
) -> axum::response::Response {
    use axum::http::{HeaderValue, header};
    use axum::response::IntoResponse;
    let current = env.current();
    let mut response = (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        current.body.clone(),
    )
        .into_response();
    let headers = response.headers_mut();
    headers.insert("x-flagyard-version", HeaderValue::from(current.version));
    if let Ok(etag) = HeaderValue::from_str(&current.etag) {
        headers.insert(header::ETAG, etag);
    }
    response
}

pub(super) async fn put_document(
    State(state): State<Arc<AppState>>,
    admin: EditAccess,
    ApiJson(document): ApiJson<Value>,
) -> Result<Json<Written>, ApiError> {
    write(&state, &admin, "put-document", "", |_| Ok(document.clone())).await
}

pub(super) async fn set_flag(
    State(state): State<Arc<AppState>>,
    admin: EditAccess,
    Path(FlagPath { key }): Path<FlagPath>,
    ApiJson(definition): ApiJson<Value>,
) -> Result<Json<Written>, ApiError> {
    if let Some(problem) = crate::validation::flag_key_problem(&key) {
        return Err(ApiError::BadRequest(format!("flag key {key:?}: {problem}")));
    }
    let edit = |mut document: Value| {
        flags_of(&mut document)?.insert(key.clone(), definition.clone());
        Ok(document)
    };
    write(&state, &admin, "set-flag", &key, edit).await
}

pub(super) async fn delete_flag(
    State(state): State<Arc<AppState>>,
    admin: EditAccess,
    Path(FlagPath { key }): Path<FlagPath>,
) -> Result<Json<Written>, ApiError> {
    let edit = |mut document: Value| match flags_of(&mut document)?.remove(&key) {
        Some(_) => Ok(document),
        None => Err(ApiError::NotFound(format!("no flag '{key}'"))),
    };
    write(&state, &admin, "delete-flag", &key, edit).await
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

pub(super) async fn history(
    _admin: AdminAccess,
    InEnvironment(env): InEnvironment,
    Query(query): Query<HistoryQuery>,
) -> Result<Json<HistoryPage>, ApiError> {
    let entries = env
        .log
        .history(query.limit())
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(Json(entries.into_iter().collect()))
}
