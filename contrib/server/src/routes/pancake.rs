//! The pancake admin API: flask-pancake's switches, flags and samples in Redis.
//! Every request needs the admin token; without `--pancake` the routes answer 404.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use flagyard_storage::pancake::{Kind, Pancake, PancakeError};
use serde_json::{Value, json};

use super::admin::{HistoryQuery, actor, history_json, parse};
use crate::auth::require_admin;
use crate::error::ApiError;
use crate::state::AppState;

/// Bodies are tiny: `{"active": true}` or `{"ratio": 25}`.
const MAX_BODY: usize = 4096;

fn pancake<'s>(state: &'s AppState, headers: &HeaderMap) -> Result<&'s Pancake, ApiError> {
    require_admin(headers, state.config.admin_token.as_deref())?;
    state.pancake.as_ref().ok_or_else(|| {
        ApiError::NotFound(
            "pancake is not configured: start the server with --pancake redis://…".into(),
        )
    })
}

fn kind(segment: &str) -> Result<Kind, ApiError> {
    segment.parse().map_err(ApiError::NotFound)
}

fn api_error(e: PancakeError) -> ApiError {
    match e {
        PancakeError::InvalidName { .. } | PancakeError::RatioOutOfRange { .. } => {
            ApiError::BadRequest(e.to_string())
        }
        PancakeError::NotFound { .. } | PancakeError::NoOverride { .. } => {
            ApiError::NotFound(e.to_string())
        }
        PancakeError::Redis { .. } => ApiError::Internal(e.to_string()),
    }
}

fn active(body: &Bytes) -> Result<bool, ApiError> {
    parse(body, MAX_BODY)?
        .get("active")
        .and_then(Value::as_bool)
        .ok_or_else(|| ApiError::BadRequest("body must be {\"active\": true|false}".into()))
}

fn ok() -> Json<Value> {
    Json(json!({ "ok": true }))
}

/// `GET /v1/admin/pancake`: every switch, flag and sample, and unreadable keys.
pub(super) async fn list(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let pancake = pancake(&state, &headers)?;
    let listed = pancake.list().await.map_err(api_error)?;
    let mut body = serde_json::to_value(&listed).map_err(|e| ApiError::Internal(e.to_string()))?;
    if let Some(object) = body.as_object_mut() {
        object.insert("extension".into(), json!(pancake.extension()));
    }
    Ok(Json(body))
}

/// `PUT /v1/admin/pancake/{kind}/{name}`: `{"active": bool}` for switches and
/// flags, `{"ratio": 0–100}` for samples.
pub(super) async fn set(
    State(state): State<Arc<AppState>>,
    Path((kind_segment, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let pancake = pancake(&state, &headers)?;
    let who = actor(&headers);
    match kind(&kind_segment)? {
        Kind::Sample => {
            let ratio = parse(&body, MAX_BODY)?
                .get("ratio")
                .and_then(Value::as_f64)
                .ok_or_else(|| ApiError::BadRequest("body must be {\"ratio\": 0-100}".into()))?;
            pancake.set_sample(&name, ratio, &who).await
        }
        k => {
            if active(&body)? {
                pancake.enable(k, &name, &who).await
            } else {
                pancake.disable(k, &name, &who).await
            }
        }
    }
    .map_err(api_error)?;
    Ok(ok())
}

/// `DELETE /v1/admin/pancake/{kind}/{name}`: clears the stored value.
pub(super) async fn clear(
    State(state): State<Arc<AppState>>,
    Path((kind_segment, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let pancake = pancake(&state, &headers)?;
    pancake
        .clear(kind(&kind_segment)?, &name, &actor(&headers))
        .await
        .map_err(api_error)?;
    Ok(ok())
}

/// `PUT /v1/admin/pancake/flags/{name}/{group}/{id}`: `{"active": bool}`.
pub(super) async fn set_override(
    State(state): State<Arc<AppState>>,
    Path((name, group, id)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let pancake = pancake(&state, &headers)?;
    let who = actor(&headers);
    if active(&body)? {
        pancake.enable_user(&name, &group, &id, &who).await
    } else {
        pancake.disable_user(&name, &group, &id, &who).await
    }
    .map_err(api_error)?;
    Ok(ok())
}

/// `DELETE /v1/admin/pancake/flags/{name}/{group}/{id}`: removes one override.
pub(super) async fn clear_override(
    State(state): State<Arc<AppState>>,
    Path((name, group, id)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let pancake = pancake(&state, &headers)?;
    pancake
        .clear_user(&name, &group, &id, &actor(&headers))
        .await
        .map_err(api_error)?;
    Ok(ok())
}

/// `DELETE /v1/admin/pancake/flags/{name}/{group}`: removes every override of the group.
pub(super) async fn clear_group(
    State(state): State<Arc<AppState>>,
    Path((name, group)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let pancake = pancake(&state, &headers)?;
    let cleared = pancake
        .clear_all_users(&name, &group, &actor(&headers))
        .await
        .map_err(api_error)?;
    Ok(Json(json!({ "ok": true, "cleared": cleared })))
}

/// `GET /v1/admin/pancake/history`: the newest changes made through Flagyard.
pub(super) async fn history(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(query): Query<HistoryQuery>,
) -> Result<Json<Value>, ApiError> {
    let pancake = pancake(&state, &headers)?;
    let entries = pancake.history(query.limit()).await.map_err(api_error)?;
    Ok(history_json(entries))
}
