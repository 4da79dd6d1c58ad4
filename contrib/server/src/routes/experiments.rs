//! Experiments: `GET`/`POST /v1/admin/experiments`, and per flag `GET`
//! (the results), `DELETE` and `POST …/stop`. Reads take any admin token,
//! changes an editor's or an admin's.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use flagyard_core::event_json::epoch_millis;
use flagyard_storage::DEFAULT_ENVIRONMENT;
use flagyard_storage::experiments::{Experiment, Metric, MetricKind};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::access::{AdminAccess, Editor, RoleAccess, may_change};
use crate::body::ApiJson;
use crate::error::ApiError;
use crate::results::ExperimentResults;
use crate::state::AppState;

/// Events read into the tallies per step.
pub(crate) const STEP: usize = 2000;

/// Metrics an experiment has at most.
const MAX_METRICS: usize = 20;

/// `POST /v1/admin/experiments`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct NewExperiment {
    flag: String,
    /// `name` (a conversion) or `name:value` (a value metric).
    metrics: Vec<String>,
    #[serde(default)]
    control: Option<String>,
    #[serde(default)]
    environment: Option<String>,
}

#[derive(Debug, Serialize)]
pub(super) struct ExperimentList {
    experiments: Vec<Experiment>,
}

/// The flag a route names.
#[derive(Debug, Deserialize)]
pub(super) struct ExperimentPath {
    flag: String,
}

fn metric(text: &str) -> Result<Metric, ApiError> {
    let (name, kind) = match text.rsplit_once(':') {
        Some((name, "value")) => (name, MetricKind::Value),
        Some((name, "conversion")) => (name, MetricKind::Conversion),
        _ => (text, MetricKind::Conversion),
    };
    let chars = name.chars().count();
    if chars == 0 || chars > flagyard::MAX_TRACKING_NAME {
        return Err(ApiError::BadRequest(format!(
            "metric {text:?}: a tracking event name has 1 to {} characters",
            flagyard::MAX_TRACKING_NAME
        )));
    }
    Ok(Metric {
        name: name.to_string(),
        kind,
    })
}

/// The flag's definition in an environment's current document.
fn flag_definition(state: &AppState, environment: &str, flag: &str) -> Option<Value> {
    let env = state.environment(environment)?;
    let document = env.current().document().ok()?;
    document.get("flags")?.get(flag).cloned()
}

pub(super) async fn create(
    State(state): State<Arc<AppState>>,
    editor: RoleAccess<Editor>,
    ApiJson(new): ApiJson<NewExperiment>,
) -> Result<(StatusCode, Json<Experiment>), ApiError> {
    let environment = new
        .environment
        .unwrap_or_else(|| DEFAULT_ENVIRONMENT.to_string());
    let Some(served) = state.environment(&environment) else {
        return Err(ApiError::NotFound(format!(
            "no environment '{environment}'"
        )));
    };
    may_change(&editor.principal, &served.name)?;
    let definition = flag_definition(&state, &environment, &new.flag).ok_or_else(|| {
        ApiError::NotFound(format!(
            "no flag '{}' in environment '{environment}'",
            new.flag
        ))
    })?;
    if new.metrics.is_empty() || new.metrics.len() > MAX_METRICS {
        return Err(ApiError::BadRequest(format!(
            "an experiment has 1 to {MAX_METRICS} metrics"
        )));
    }
    let metrics = new
        .metrics
        .iter()
        .map(|m| metric(m))
        .collect::<Result<Vec<_>, _>>()?;
    for (i, m) in metrics.iter().enumerate() {
        if metrics[..i].iter().any(|other| other.name == m.name) {
            return Err(ApiError::BadRequest(format!(
                "metric {:?} is named twice",
                m.name
            )));
        }
    }
    if let Some(control) = &new.control {
        let known = definition
            .get("variants")
            .and_then(Value::as_object)
            .is_some_and(|variants| variants.contains_key(control));
        if !known {
            return Err(ApiError::BadRequest(format!(
                "control {control:?} is not a variant of flag '{}'",
                new.flag
            )));
        }
    }
    let experiment = Experiment {
        flag: new.flag,
        metrics,
        control: new.control,
        environment,
        start: epoch_millis(std::time::SystemTime::now()),
        stop: None,
        created_by: Some(editor.actor().to_string()),
    };
    // Events that arrived before it are read into the tallies first, so
    // that it counts from its start on.
    catch_up(&state).await?;
    if !state
        .events
        .create_experiment(experiment.clone())
        .await
        .map_err(|e| ApiError::from_store(&e))?
    {
        return Err(ApiError::Conflict(format!(
            "flag '{}' already has an experiment",
            experiment.flag
        )));
    }
    tracing::info!(flag = %experiment.flag, actor = editor.actor(), "experiment created");
    Ok((StatusCode::CREATED, Json(experiment)))
}

pub(super) async fn list(
    State(state): State<Arc<AppState>>,
    _admin: AdminAccess,
) -> Result<Json<ExperimentList>, ApiError> {
    let experiments = state
        .events
        .experiments()
        .await
        .map_err(|e| ApiError::from_store(&e))?;
    Ok(Json(ExperimentList { experiments }))
}

/// Reads every event that arrived into the tallies.
pub(crate) async fn catch_up(state: &AppState) -> Result<(), ApiError> {
    while state
        .events
        .advance_experiments(STEP)
        .await
        .map_err(|e| ApiError::from_store(&e))?
        > 0
    {}
    Ok(())
}

pub(super) async fn results(
    State(state): State<Arc<AppState>>,
    _admin: AdminAccess,
    Path(ExperimentPath { flag }): Path<ExperimentPath>,
) -> Result<Json<ExperimentResults>, ApiError> {
    catch_up(&state).await?;
    let (experiment, tally) = experiment_on(&state, &flag).await?;
    let definition = flag_definition(&state, &experiment.environment, &flag);
    Ok(Json(ExperimentResults::compute(
        experiment,
        &tally,
        definition.as_ref(),
    )))
}

/// The experiment on `flag` and its tally; `404` when there is none.
async fn experiment_on(
    state: &AppState,
    flag: &str,
) -> Result<(Experiment, flagyard_storage::experiments::Tally), ApiError> {
    state
        .events
        .experiment(flag.to_string())
        .await
        .map_err(|e| ApiError::from_store(&e))?
        .ok_or_else(|| ApiError::NotFound(format!("no experiment on flag '{flag}'")))
}

/// The editor may change the environment of the experiment on `flag` (`404`
/// when there is none).
async fn may_change_experiment(
    state: &AppState,
    editor: &RoleAccess<Editor>,
    flag: &str,
) -> Result<(), ApiError> {
    let (experiment, _) = experiment_on(state, flag).await?;
    let environment = experiment
        .environment
        .parse()
        .map_err(|e| ApiError::Internal(format!("experiment on flag '{flag}': {e}")))?;
    may_change(&editor.principal, &environment)
}

pub(super) async fn stop(
    State(state): State<Arc<AppState>>,
    editor: RoleAccess<Editor>,
    Path(ExperimentPath { flag }): Path<ExperimentPath>,
) -> Result<Json<Experiment>, ApiError> {
    may_change_experiment(&state, &editor, &flag).await?;
    let now = epoch_millis(std::time::SystemTime::now());
    let stopped = state
        .events
        .stop_experiment(flag.clone(), now)
        .await
        .map_err(|e| ApiError::from_store(&e))?
        .ok_or_else(|| ApiError::NotFound(format!("no experiment on flag '{flag}'")))?;
    tracing::info!(flag = %flag, actor = editor.actor(), "experiment stopped");
    Ok(Json(stopped))
}

pub(super) async fn delete(
    State(state): State<Arc<AppState>>,
    editor: RoleAccess<Editor>,
    Path(ExperimentPath { flag }): Path<ExperimentPath>,
) -> Result<StatusCode, ApiError> {
    may_change_experiment(&state, &editor, &flag).await?;
    if !state
        .events
        .delete_experiment(flag.clone())
        .await
        .map_err(|e| ApiError::from_store(&e))?
    {
        return Err(ApiError::NotFound(format!(
            "no experiment on flag '{flag}'"
        )));
    }
    tracing::info!(flag = %flag, actor = editor.actor(), "experiment deleted");
    Ok(StatusCode::NO_CONTENT)
}
