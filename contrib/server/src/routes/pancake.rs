//! The pancake admin API: flask-pancake's switches, flags and samples in Redis.
//! Reads need an admin token (a viewer's at least), changes an editor's or an
//! admin's; without `--pancake` the routes answer 404.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use flagyard_storage::pancake::{Kind, Pancake, PancakeError};
use serde_json::Value;

use super::admin::HistoryQuery;
use crate::access::{AdminAccess, SwitchAccess};
use crate::body::ApiJson;
use crate::error::ApiError;
use crate::state::AppState;
use crate::wire::{Cleared, Done, HistoryPage, PancakeListing};

fn pancake(state: &AppState) -> Result<&Pancake, ApiError> {
    state.pancake.as_ref().ok_or_else(|| {
        ApiError::NotFound(
            "pancake is not configured: start the server with --pancake redis://…".into(),
        )
    })
}

fn kind(segment: &str) -> Result<Kind, ApiError> {
    segment
        .parse()
        .map_err(|e: flagyard_storage::pancake::UnknownKind| ApiError::NotFound(e.to_string()))
}

impl From<PancakeError> for ApiError {
    fn from(e: PancakeError) -> ApiError {
        match e {
            PancakeError::InvalidName { .. } | PancakeError::RatioOutOfRange { .. } => {
                ApiError::BadRequest(e.to_string())
            }
            PancakeError::NotFound { .. }
            | PancakeError::NoOverride { .. }
            | PancakeError::NoOverrides { .. } => ApiError::NotFound(e.to_string()),
            PancakeError::Redis { .. } | PancakeError::Closed { .. } => {
                ApiError::Internal(e.to_string())
            }
        }
    }
}

/// `{"active": true|false}`.
fn active(body: &Value) -> Result<bool, ApiError> {
    body.get("active")
        .and_then(Value::as_bool)
        .ok_or_else(|| ApiError::BadRequest("body must be {\"active\": true|false}".into()))
}

fn ok() -> Json<Done> {
    Json(Done { ok: true })
}

/// `GET /v1/admin/pancake`: every switch, flag and sample, and unreadable keys.
pub(super) async fn list(
    State(state): State<Arc<AppState>>,
    _admin: AdminAccess,
) -> Result<Json<PancakeListing>, ApiError> {
    let pancake = pancake(&state)?;
    let state = pancake.list().await?;
    Ok(Json(PancakeListing {
        state,
        extension: pancake.extension().to_string(),
    }))
}

/// `PUT /v1/admin/pancake/{kind}/{name}`: `{"active": bool}` for switches and
/// flags, `{"ratio": 0–100}` for samples.
pub(super) async fn set(
    State(state): State<Arc<AppState>>,
    Path((kind_segment, name)): Path<(String, String)>,
    admin: SwitchAccess,
    ApiJson(body): ApiJson<Value>,
) -> Result<Json<Done>, ApiError> {
    let pancake = pancake(&state)?;
    let who = admin.actor();
    match kind(&kind_segment)? {
        Kind::Sample => {
            let ratio = body
                .get("ratio")
                .and_then(Value::as_f64)
                .ok_or_else(|| ApiError::BadRequest("body must be {\"ratio\": 0-100}".into()))?;
            pancake.set_sample(&name, ratio, who).await
        }
        k => pancake.set_active(k, &name, active(&body)?, who).await,
    }?;
    Ok(ok())
}

/// `DELETE /v1/admin/pancake/{kind}/{name}`: clears the stored value.
pub(super) async fn clear(
    State(state): State<Arc<AppState>>,
    Path((kind_segment, name)): Path<(String, String)>,
    admin: SwitchAccess,
) -> Result<Json<Done>, ApiError> {
    pancake(&state)?
        .clear(kind(&kind_segment)?, &name, admin.actor())
        .await?;
    Ok(ok())
}

/// `PUT /v1/admin/pancake/flags/{name}/{group}/{id}`: `{"active": bool}`.
pub(super) async fn set_override(
    State(state): State<Arc<AppState>>,
    Path((name, group, id)): Path<(String, String, String)>,
    admin: SwitchAccess,
    ApiJson(body): ApiJson<Value>,
) -> Result<Json<Done>, ApiError> {
    pancake(&state)?
        .set_user(&name, &group, &id, active(&body)?, admin.actor())
        .await?;
    Ok(ok())
}

/// `DELETE /v1/admin/pancake/flags/{name}/{group}/{id}`: removes one override.
pub(super) async fn clear_override(
    State(state): State<Arc<AppState>>,
    Path((name, group, id)): Path<(String, String, String)>,
    admin: SwitchAccess,
) -> Result<Json<Done>, ApiError> {
    pancake(&state)?
        .clear_user(&name, &group, &id, admin.actor())
        .await?;
    Ok(ok())
}

/// `DELETE /v1/admin/pancake/flags/{name}/{group}`: removes every override of the group.
pub(super) async fn clear_group(
    State(state): State<Arc<AppState>>,
    Path((name, group)): Path<(String, String)>,
    admin: SwitchAccess,
) -> Result<Json<Cleared>, ApiError> {
    let cleared = pancake(&state)?
        .clear_all_users(&name, &group, admin.actor())
        .await?;
    Ok(Json(Cleared { ok: true, cleared }))
}

/// `GET /v1/admin/pancake/history`: the newest changes made through Flagyard.
pub(super) async fn history(
    State(state): State<Arc<AppState>>,
    _admin: AdminAccess,
    Query(query): Query<HistoryQuery>,
) -> Result<Json<HistoryPage>, ApiError> {
    let pancake = pancake(&state)?;
    let entries = pancake.history(query.limit()).await?;
    Ok(Json(entries.into_iter().collect()))
}
