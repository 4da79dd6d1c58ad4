//! The admin API of one environment (named in the path, else `default`):
//! replace the document, read, create, replace or delete one flag or one
//! shared `$evaluators` rule, read history (with diffs, filtered by flag and
//! actor), read an earlier version and roll back to it. Changes take
//! [`EditAccess`] (an editor of that environment, or an admin) and honour
//! `If-Match` ([`Preconditions`]), reads [`AdminAccess`]: checked before the
//! handler runs.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use serde_json::{Map, Value};

use crate::access::{AdminAccess, EditAccess, InEnvironment};
use crate::body::ApiJson;
use crate::error::ApiError;
use crate::precondition::flag_etag;
use crate::state::AppState;
use crate::wire::{HistoryPage, Preview, ProblemItem, Written};

/// Applies `edit` as the admin's `action` on `detail` (see
/// [`AppState::change`]) if the request's preconditions hold (`flag`: the
/// flag a flag write touches), and answers the published version with the
/// lints of the document now served.
async fn write(
    state: &AppState,
    access: &EditAccess,
    flag: Option<&str>,
    action: &str,
    detail: &str,
    edit: impl Fn(Value) -> Result<Value, ApiError>,
) -> Result<Json<Written>, ApiError> {
    let env = &access.environment;
    let preconditions = &access.preconditions;
    let guard = (!preconditions.is_empty()).then_some((preconditions, flag));
    let published = state
        .change(env, guard, edit, access.actor(), action, detail)
        .await?;
    let served = published.document()?;
    Ok(Json(Written {
        version: published.version,
        etag: published.etag.clone(),
        warnings: flagyard_core::lint(&served)
            .iter()
            .map(ProblemItem::from)
            .collect(),
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
    let edit = |_| Ok(document.clone());
    write(&state, &admin, None, "put-document", "", edit).await
}

/// `GET …/flags/{key}`: the flag's definition, with its ETag (for `If-Match`)
/// and the document's version in `X-Flagyard-Version`.
pub(super) async fn get_flag(
    _admin: AdminAccess,
    InEnvironment(env): InEnvironment,
    Path(FlagPath { key }): Path<FlagPath>,
) -> Result<axum::response::Response, ApiError> {
    use axum::http::{HeaderValue, header};
    use axum::response::IntoResponse;
    let current = env.current();
    let document = current.document()?;
    let definition = document
        .get("flags")
        .and_then(|f| f.get(&key))
        .ok_or_else(|| ApiError::NotFound(format!("no flag '{key}'")))?;
    let mut response = Json(definition).into_response();
    let headers = response.headers_mut();
    headers.insert("x-flagyard-version", HeaderValue::from(current.version));
    if let Ok(etag) = HeaderValue::from_str(&flag_etag(definition)) {
        headers.insert(header::ETAG, etag);
    }
    Ok(response)
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
    write(&state, &admin, Some(&key), "set-flag", &key, edit).await
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
    write(&state, &admin, Some(&key), "delete-flag", &key, edit).await
}

/// `POST …/flags/{key}/preview`'s body.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PreviewRequest {
    /// A draft definition (absent: the flag as served).
    definition: Option<Value>,
    /// The evaluation context (absent: empty).
    context: Option<Value>,
}

/// `POST …/flags/{key}/preview`: evaluates the flag — a draft definition
/// in place of the served one, beside the environment's other flags and
/// `$evaluators` — for a context, as OFREP answers it, with the draft's
/// problems and lints. Nothing is written (a viewer may preview).
pub(super) async fn preview(
    State(state): State<Arc<AppState>>,
    _admin: AdminAccess,
    InEnvironment(env): InEnvironment,
    Path(FlagPath { key }): Path<FlagPath>,
    ApiJson(request): ApiJson<PreviewRequest>,
) -> Result<Json<Value>, ApiError> {
    let current = env.current();
    let mut document = current.document()?;
    if let Some(definition) = request.definition {
        flags_of(&mut document)?.insert(key.clone(), definition);
    }
    let options = crate::validation::compile_options(&state.config);
    let snapshot = flagyard_core::Snapshot::from_value(&document, &options)
        .map_err(|e| ApiError::BadRequest(format!("document refused: {e}")))?;
    let context = flagyard_core::EvaluationContext::from_json(request.context.unwrap_or_default())
        .map_err(|e| ApiError::BadRequest(format!("context: {e}")))?;
    let evaluation = snapshot.evaluate(&key, &context);
    let ours = |p: &&flagyard_core::Problem| p.flag.as_deref() == Some(key.as_str());
    let lints = flagyard_core::lint(&document);
    let answer = Preview {
        evaluation: super::ofrep::entry(&key, &evaluation).1,
        problems: snapshot
            .problems()
            .iter()
            .filter(ours)
            .map(ProblemItem::from)
            .collect(),
        warnings: lints.iter().filter(ours).map(ProblemItem::from).collect(),
    };
    serde_json::to_value(answer)
        .map(Json)
        .map_err(|e| ApiError::Internal(format!("preview: {e}")))
}

/// The shared rule a route names (`{name}`).
#[derive(serde::Deserialize)]
pub(super) struct EvaluatorPath {
    name: String,
}

/// `PUT …/evaluators/{name}`: creates or replaces one `$evaluators` rule.
pub(super) async fn set_evaluator(
    State(state): State<Arc<AppState>>,
    admin: EditAccess,
    Path(EvaluatorPath { name }): Path<EvaluatorPath>,
    ApiJson(rule): ApiJson<Value>,
) -> Result<Json<Written>, ApiError> {
    let edit = |mut document: Value| {
        let root = document
            .as_object_mut()
            .ok_or_else(|| ApiError::Internal("current document is not an object".into()))?;
        let shared = root
            .entry("$evaluators")
            .or_insert_with(|| Value::Object(Map::new()));
        shared
            .as_object_mut()
            .ok_or_else(|| ApiError::BadRequest("$evaluators is not an object".into()))?
            .insert(name.clone(), rule.clone());
        Ok(document)
    };
    write(&state, &admin, None, "set-evaluator", &name, edit).await
}

/// `DELETE …/evaluators/{name}`: removes one `$evaluators` rule (refused,
/// naming them, while flags still refer to it).
pub(super) async fn delete_evaluator(
    State(state): State<Arc<AppState>>,
    admin: EditAccess,
    Path(EvaluatorPath { name }): Path<EvaluatorPath>,
) -> Result<Json<Written>, ApiError> {
    let edit = |mut document: Value| {
        let removed = document
            .get_mut("$evaluators")
            .and_then(Value::as_object_mut)
            .and_then(|shared| shared.remove(&name));
        if removed.is_none() {
            return Err(ApiError::NotFound(format!("no evaluator '{name}'")));
        }
        if document["$evaluators"]
            .as_object()
            .is_some_and(Map::is_empty)
            && let Some(root) = document.as_object_mut()
        {
            root.remove("$evaluators");
        }
        Ok(document)
    };
    write(&state, &admin, None, "delete-evaluator", &name, edit).await
}

#[derive(serde::Deserialize)]
pub(super) struct HistoryQuery {
    limit: Option<usize>,
    /// Only entries that changed this flag.
    flag: Option<String>,
    /// Only entries by this actor.
    actor: Option<String>,
}

impl HistoryQuery {
    /// The limit asked for: 50 by default, 1 to 1,000.
    pub(super) fn limit(&self) -> usize {
        self.limit.unwrap_or(50).clamp(1, 1000)
    }
}

/// `GET …/history?limit=&flag=&actor=`: newest first, each entry with its
/// environment and what it changed.
pub(super) async fn history(
    State(state): State<Arc<AppState>>,
    _admin: AdminAccess,
    InEnvironment(env): InEnvironment,
    Query(query): Query<HistoryQuery>,
) -> Result<Json<HistoryPage>, ApiError> {
    let filtered = query.flag.is_some() || query.actor.is_some();
    // A filter looks through all history kept, then takes the limit.
    let read = if filtered {
        state.config.history_keep
    } else {
        query.limit()
    };
    let entries = env
        .log
        .history(read)
        .await
        .map_err(|e| ApiError::from_store(&e))?;
    let mut page: HistoryPage = entries
        .into_iter()
        .filter(|e| query.actor.as_ref().is_none_or(|a| *a == e.actor))
        .collect();
    page.history.retain(|item| {
        query.flag.as_ref().is_none_or(|key| {
            item.diff
                .as_ref()
                .is_some_and(|d| crate::diff::touches_flag(d, key))
                || item.detail == *key
        })
    });
    page.history.truncate(query.limit());
    for item in &mut page.history {
        item.environment = Some(env.name().to_string());
    }
    Ok(Json(page))
}

/// The version a route names (`{version}`).
#[derive(serde::Deserialize)]
pub(super) struct VersionPath {
    version: u64,
}

/// The document as `version` had it, or `404` naming how far history goes.
async fn document_at(
    env: &crate::environment::Environment,
    version: u64,
) -> Result<Value, ApiError> {
    let body = env
        .log
        .body_at(version)
        .await
        .map_err(|e| ApiError::from_store(&e))?
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "version {version} of environment '{}' is not in its history (current: {})",
                env.name(),
                env.current().version
            ))
        })?;
    serde_json::from_str(&body)
        .map_err(|e| ApiError::Internal(format!("stored version {version}: {e}")))
}

/// `GET …/versions/{version}`: the whole document as that version had it.
pub(super) async fn get_version(
    _admin: AdminAccess,
    InEnvironment(env): InEnvironment,
    Path(VersionPath { version }): Path<VersionPath>,
) -> Result<Json<Value>, ApiError> {
    document_at(&env, version).await.map(Json)
}

/// `POST …/rollback` `{"version": N}`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RollbackRequest {
    version: u64,
}

/// `POST …/rollback`: serves an earlier version's document again, as a new
/// version recorded as `rollback` ("to vN"); `If-Match` as for any write.
pub(super) async fn rollback(
    State(state): State<Arc<AppState>>,
    admin: EditAccess,
    ApiJson(request): ApiJson<RollbackRequest>,
) -> Result<Json<Written>, ApiError> {
    let earlier = document_at(&admin.environment, request.version).await?;
    let detail = format!("to v{}", request.version);
    let edit = |_| Ok(earlier.clone());
    write(&state, &admin, None, "rollback", &detail, edit).await
}
