//! Environments and who may use them: list and create environments, promote
//! flags between them, manage SDK keys and admin tokens, and `whoami`.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::access::{AdminAccess, EditAccess, OwnerAccess};
use crate::body::ApiJson;
use crate::credentials::{Grant, NewCredential, Role};
use crate::environment::Environment;
use crate::error::ApiError;
use crate::state::AppState;
use crate::wire::{
    CredentialIssued, CredentialList, EnvironmentCreated, EnvironmentItem, EnvironmentList,
    Promoted, WhoAmI,
};
use flagyard_storage::EnvironmentName;

fn item(env: &Environment) -> EnvironmentItem {
    let current = env.current();
    EnvironmentItem {
        name: env.name().to_string(),
        version: current.version,
        etag: current.etag.clone(),
        flags: current.snapshot.keys().len(),
    }
}

fn environment_name(name: &str) -> Result<EnvironmentName, ApiError> {
    name.parse()
        .map_err(|e: flagyard_storage::InvalidEnvironmentName| ApiError::BadRequest(e.to_string()))
}

/// `GET /v1/admin/whoami`: the token's name, role and environments.
pub(super) async fn whoami(admin: AdminAccess) -> Json<WhoAmI> {
    let (role, environments) = match &admin.principal.grant {
        Grant::Admin { role, environments } => (*role, environments.clone()),
        Grant::Sdk { .. } => (Role::Viewer, Vec::new()),
    };
    Json(WhoAmI {
        name: admin.principal.name.clone(),
        role,
        environments: environments.iter().map(ToString::to_string).collect(),
    })
}

/// `GET /v1/admin/environments`.
pub(super) async fn list(
    State(state): State<Arc<AppState>>,
    _admin: AdminAccess,
) -> Json<EnvironmentList> {
    Json(EnvironmentList {
        environments: state.environments().iter().map(|e| item(e)).collect(),
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateEnvironment {
    name: String,
}

/// `POST /v1/admin/environments` `{"name": "staging"}`: serves a new
/// environment with an empty document (`201`; `200` when it exists).
pub(super) async fn create(
    State(state): State<Arc<AppState>>,
    owner: OwnerAccess,
    ApiJson(body): ApiJson<CreateEnvironment>,
) -> Result<(StatusCode, Json<EnvironmentCreated>), ApiError> {
    let name = environment_name(&body.name)?;
    let (env, created) = state
        .add_environment(name)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    tracing::info!(environment = %env.name(), actor = owner.actor(), created, "environment created");
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(EnvironmentCreated {
            environment: item(&env),
            created,
        }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Promote {
    /// The environment copied from.
    from: String,
    /// One flag; absent: the whole document.
    flag: Option<String>,
}

/// A change to a document, as `AppState::change` applies it.
type Edit = Box<dyn Fn(Value) -> Result<Value, ApiError> + Send + Sync>;

/// The `$evaluators` a definition refers to with `{"$ref": name}`.
fn referenced_evaluators(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(name)) = map.get("$ref") {
                out.push(name.clone());
            }
            map.values().for_each(|v| referenced_evaluators(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| referenced_evaluators(v, out)),
        _ => {}
    }
}

/// `POST /v1/admin/environments/{env}/promote` `{"from": "staging",
/// "flag": "new-checkout"}`: copies one flag (with the shared evaluators it
/// refers to) or, without `flag`, the whole document from `from` into the
/// path's environment. Both histories record it: the target's change, and a
/// `promoted` entry in the source (a new version of the same document).
/// `If-Match` applies to the target.
pub(super) async fn promote(
    State(state): State<Arc<AppState>>,
    access: EditAccess,
    ApiJson(body): ApiJson<Promote>,
) -> Result<Json<Promoted>, ApiError> {
    let source = state
        .environment(&body.from)
        .ok_or_else(|| ApiError::NotFound(format!("no environment '{}'", body.from)))?;
    let target = &access.environment;
    // `If-Match` guards the target (its document, or the promoted flag there).
    let preconditions = &access.preconditions;
    let guard = (!preconditions.is_empty()).then_some((preconditions, body.flag.as_deref()));
    if source.name() == target.name() {
        return Err(ApiError::BadRequest(format!(
            "promotion from '{}' to itself",
            source.name()
        )));
    }
    let document: Value = serde_json::from_slice(&source.current().body)
        .map_err(|e| ApiError::Internal(format!("source document: {e}")))?;
    let (flags, detail, edit): (Vec<String>, String, Edit) = match &body.flag {
        None => {
            let flags = document
                .get("flags")
                .and_then(Value::as_object)
                .map(|f| f.keys().cloned().collect())
                .unwrap_or_default();
            let copy = document.clone();
            (
                flags,
                format!("document from {}", source.name()),
                Box::new(move |_| Ok(copy.clone())),
            )
        }
        Some(key) => {
            let definition = document
                .get("flags")
                .and_then(|f| f.get(key))
                .cloned()
                .ok_or_else(|| {
                    ApiError::NotFound(format!("no flag '{key}' in '{}'", source.name()))
                })?;
            let mut names = Vec::new();
            referenced_evaluators(&definition, &mut names);
            let evaluators: Map<String, Value> = names
                .iter()
                .filter_map(|n| {
                    let e = document.get("$evaluators")?.get(n)?;
                    Some((n.clone(), e.clone()))
                })
                .collect();
            let key = key.clone();
            let edit_key = key.clone();
            (
                vec![key.clone()],
                format!("{key} from {}", source.name()),
                Box::new(move |mut doc: Value| {
                    let object = doc.as_object_mut().ok_or_else(|| {
                        ApiError::Internal("target document is not an object".into())
                    })?;
                    if !evaluators.is_empty() {
                        let shared = object
                            .entry("$evaluators")
                            .or_insert_with(|| Value::Object(Map::new()));
                        if let Some(shared) = shared.as_object_mut() {
                            shared.extend(evaluators.clone());
                        }
                    }
                    object
                        .entry("flags")
                        .or_insert_with(|| Value::Object(Map::new()))
                        .as_object_mut()
                        .ok_or_else(|| ApiError::Internal("flags is not an object".into()))?
                        .insert(edit_key.clone(), definition.clone());
                    Ok(doc)
                }),
            )
        }
    };
    let published = state
        .change(target, guard, edit, access.actor(), "promote", &detail)
        .await?;
    let what = body.flag.as_deref().unwrap_or("document");
    let source_published = state
        .change(
            &source,
            None,
            Ok,
            access.actor(),
            "promoted",
            &format!("{what} to {}", target.name()),
        )
        .await?;
    Ok(Json(Promoted {
        version: published.version,
        etag: published.etag.clone(),
        source_version: source_published.version,
        flags,
    }))
}

/// `GET /v1/admin/credentials`: every SDK key and admin token (never the
/// tokens themselves).
pub(super) async fn credentials(
    State(state): State<Arc<AppState>>,
    _owner: OwnerAccess,
) -> Json<CredentialList> {
    Json(CredentialList {
        credentials: state.credentials.list(),
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateCredential {
    /// `sdk` or `admin`.
    kind: String,
    name: String,
    /// An SDK key's environment.
    environment: Option<String>,
    /// An admin token's role.
    role: Option<String>,
    /// The environments an editor may change (absent or empty: all).
    #[serde(default)]
    environments: Vec<String>,
}

/// `POST /v1/admin/credentials`: `{"kind": "sdk", "name": "web",
/// "environment": "staging"}` or `{"kind": "admin", "name": "ada", "role":
/// "editor", "environments": ["staging"]}`; answers the token once (`201`).
pub(super) async fn create_credential(
    State(state): State<Arc<AppState>>,
    owner: OwnerAccess,
    ApiJson(body): ApiJson<CreateCredential>,
) -> Result<(StatusCode, Json<CredentialIssued>), ApiError> {
    let name = body.name.trim();
    if name.is_empty() || name.chars().count() > 128 {
        return Err(ApiError::BadRequest(
            "name must be 1 to 128 characters".into(),
        ));
    }
    let served = |n: &str| -> Result<EnvironmentName, ApiError> {
        let name = environment_name(n)?;
        state
            .environment(name.as_str())
            .map(|_| name)
            .ok_or_else(|| ApiError::NotFound(format!("no environment '{n}'")))
    };
    let grant = match body.kind.as_str() {
        "sdk" => {
            if body.role.is_some() || !body.environments.is_empty() {
                return Err(ApiError::BadRequest(
                    "an SDK key takes one \"environment\", no role".into(),
                ));
            }
            let environment = body.environment.as_deref().ok_or_else(|| {
                ApiError::BadRequest("an SDK key needs its \"environment\"".into())
            })?;
            Grant::Sdk {
                environment: served(environment)?,
            }
        }
        "admin" => {
            if body.environment.is_some() {
                return Err(ApiError::BadRequest(
                    "an admin token takes \"environments\" (a list), not \"environment\"".into(),
                ));
            }
            let role: Role = body
                .role
                .as_deref()
                .ok_or_else(|| ApiError::BadRequest("an admin token needs a \"role\"".into()))?
                .parse()
                .map_err(ApiError::BadRequest)?;
            let environments = body
                .environments
                .iter()
                .map(|e| served(e))
                .collect::<Result<Vec<_>, _>>()?;
            Grant::Admin { role, environments }
        }
        other => {
            return Err(ApiError::BadRequest(format!(
                "kind {other:?}: \"sdk\" or \"admin\""
            )));
        }
    };
    let (credential, token) = state
        .credentials
        .create(NewCredential {
            name: name.to_string(),
            grant,
        })
        .await?;
    tracing::info!(id = %credential.id, actor = owner.actor(), "credential issued");
    Ok((
        StatusCode::CREATED,
        Json(CredentialIssued { credential, token }),
    ))
}

/// `DELETE /v1/admin/credentials/{id}`: revokes it — refused from now on,
/// its open streams closed.
pub(super) async fn revoke_credential(
    State(state): State<Arc<AppState>>,
    _owner: OwnerAccess,
    Path(id): Path<String>,
) -> Result<Json<crate::credentials::CredentialView>, ApiError> {
    state.credentials.revoke(&id).await.map(Json)
}

/// `POST /v1/admin/credentials/{id}/rotate`: a new token for it; the old
/// one stops working at once.
pub(super) async fn rotate_credential(
    State(state): State<Arc<AppState>>,
    _owner: OwnerAccess,
    Path(id): Path<String>,
) -> Result<Json<CredentialIssued>, ApiError> {
    let (credential, token) = state.credentials.rotate(&id).await?;
    Ok(Json(CredentialIssued { credential, token }))
}
