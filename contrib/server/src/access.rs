//! Who may call a route, decided by extractors: a handler that takes
//! [`ReadAccess`], [`EditAccess`] (may change the path's environment) or a
//! [`RoleAccess`] — [`AdminAccess`] (a viewer at least), [`SwitchAccess`]
//! (an editor), [`OwnerAccess`] (the admin role) — runs only for a caller
//! that passed the check. Tokens are looked up by their SHA-256 (see `credentials.rs`).

use std::sync::Arc;

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts, RawPathParams};
use axum::http::HeaderMap;
use axum::http::request::Parts;

use crate::credentials::{Grant, Principal, Role};
use crate::environment::Environment;
use crate::error::ApiError;
use crate::precondition::Preconditions;
use crate::state::AppState;

/// `FromRequestParts` for a check written as an inherent
/// `async fn extract(parts, state) -> Result<Self, Rejection>`: the one place
/// axum's signature is spelled out.
macro_rules! extractor {
    ($ty:ty, $rejection:ty $(, for <$g:ident: $bound:path>)?) => {
        impl$(<$g: $bound>)? axum::extract::FromRequestParts<Arc<AppState>> for $ty {
            type Rejection = $rejection;

            async fn from_request_parts(
                parts: &mut axum::http::request::Parts,
                state: &Arc<AppState>,
            ) -> Result<Self, Self::Rejection> {
                Self::extract(parts, state).await
            }
        }
    };
}
pub(crate) use extractor;

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

/// An admin token's holder, checked: the token is valid, and failed
/// attempts from one address are throttled. A caller that presented nothing
/// or a wrong token is refused, and logged without the token.
fn authenticate_admin(parts: &Parts, state: &AppState) -> Result<Arc<Principal>, ApiError> {
    if !state.credentials.any_admin() {
        return Err(ApiError::Forbidden(
            "the admin API is disabled: start the server with --admin-token or FLAGYARD_ADMIN_TOKEN, or declare admin tokens in the configuration".into(),
        ));
    }
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
    let refused = match presented(&parts.headers).map(|t| state.credentials.lookup(t)) {
        Some(Some(principal)) if principal.role().is_some() => {
            if let Some(client) = client {
                state.logins.succeeded(client);
            }
            return Ok(principal);
        }
        Some(Some(_)) => "an SDK key cannot use the admin API",
        Some(None) => "wrong admin token",
        None => "missing Authorization: Bearer <admin token>",
    };
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

/// The environment a route names in its `{env}` path segment, or `default`
/// for the routes without one; `404` naming it when it is not served.
async fn path_environment(
    parts: &mut Parts,
    state: &AppState,
) -> Result<Arc<Environment>, ApiError> {
    let params = RawPathParams::from_request_parts(parts, &())
        .await
        .map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let Some((_, name)) = params.iter().find(|(key, _)| *key == "env") else {
        return Ok(state.default_environment());
    };
    state
        .environment(name)
        .ok_or_else(|| ApiError::NotFound(format!("no environment '{name}'")))
}

/// The environment the path names (`{env}`), or `default` for routes
/// without one; `404` when it is not served. Pair it with an access check.
#[derive(Debug, Clone)]
pub struct InEnvironment(pub Arc<Environment>);

impl InEnvironment {
    /// The check behind the extractor.
    async fn extract(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        path_environment(parts, state).await.map(InEnvironment)
    }
}

extractor!(InEnvironment, ApiError);

/// The least role a route needs, as a type: [`Viewer`], [`Editor`],
/// [`Owner`].
pub trait MinimumRole: Send + Sync + 'static {
    /// The role.
    const ROLE: Role;
}

/// Any admin token (the `viewer` role at least).
#[derive(Debug, Clone, Copy)]
pub struct Viewer;
/// An `editor`'s or an `admin`'s token.
#[derive(Debug, Clone, Copy)]
pub struct Editor;
/// An `admin`'s token.
#[derive(Debug, Clone, Copy)]
pub struct Owner;

impl MinimumRole for Viewer {
    const ROLE: Role = Role::Viewer;
}
impl MinimumRole for Editor {
    const ROLE: Role = Role::Editor;
}
impl MinimumRole for Owner {
    const ROLE: Role = Role::Admin;
}

/// The caller holds an admin token with role `R` or more; carries who it is.
#[derive(Debug, Clone)]
pub struct RoleAccess<R> {
    /// The token's holder.
    pub principal: Arc<Principal>,
    role: std::marker::PhantomData<R>,
}

/// Reads of the admin API: any admin token.
pub type AdminAccess = RoleAccess<Viewer>;
/// Changes to switches, flags and samples outside environments (pancake's):
/// an editor or an admin.
pub type SwitchAccess = RoleAccess<Editor>;
/// Environments, keys and tokens: the `admin` role.
pub type OwnerAccess = RoleAccess<Owner>;

impl<R> RoleAccess<R> {
    /// The name recorded in history.
    pub fn actor(&self) -> &str {
        &self.principal.name
    }
}

impl<R: MinimumRole> RoleAccess<R> {
    /// The check behind the extractor.
    async fn extract(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let principal = authenticate_admin(parts, state)?;
        if principal.role() < Some(R::ROLE) {
            return Err(refused_role(&principal, R::ROLE));
        }
        Ok(RoleAccess {
            principal,
            role: std::marker::PhantomData,
        })
    }
}

extractor!(RoleAccess<R>, ApiError, for <R: MinimumRole>);

/// The caller may change the flags of the environment the path names (or
/// `default`): an admin, or an editor whose environments include it. Carries
/// the request's preconditions (`If-Match`, `If-None-Match: *`) for the write.
#[derive(Debug, Clone)]
pub struct EditAccess {
    /// The token's holder.
    pub principal: Arc<Principal>,
    /// The environment it changes.
    pub environment: Arc<Environment>,
    /// What the document (or flag) must still be for the write to apply.
    pub preconditions: Preconditions,
}

impl EditAccess {
    /// The name recorded in history.
    pub fn actor(&self) -> &str {
        &self.principal.name
    }
}

impl EditAccess {
    /// The check behind the extractor.
    async fn extract(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let principal = authenticate_admin(parts, state)?;
        let environment = path_environment(parts, state).await?;
        may_change(&principal, &environment.name)?;
        let preconditions = Preconditions::from_headers(&parts.headers)?;
        Ok(EditAccess {
            principal,
            environment,
            preconditions,
        })
    }
}

extractor!(EditAccess, ApiError);

/// `403` naming who and which environment unless `principal` may change
/// `environment` (an admin, or an editor whose environments include it): for
/// writes whose environment is not in the path (experiments name theirs in
/// the body or the stored definition).
pub(crate) fn may_change(
    principal: &Principal,
    environment: &flagyard_storage::EnvironmentName,
) -> Result<(), ApiError> {
    if principal.may_edit(environment) {
        return Ok(());
    }
    Err(ApiError::Forbidden(format!(
        "{} ({}) may not change environment '{environment}'",
        principal.name,
        principal.role().map_or("sdk", Role::as_str),
    )))
}

fn refused_role(principal: &Principal, needed: Role) -> ApiError {
    ApiError::Forbidden(format!(
        "{} is a {}; this needs the {needed} role",
        principal.name,
        principal.role().map_or("sdk key", Role::as_str),
    ))
}

/// The caller may read flags, and which environment's: the one its SDK key
/// belongs to. Without SDK keys reads are open and serve `default`; an admin
/// token reads `default`.
#[derive(Debug, Clone)]
pub struct ReadAccess {
    /// The environment read.
    pub environment: Arc<Environment>,
    /// The credential presented, if any (its streams close when it is
    /// revoked).
    pub credential: Option<Arc<Principal>>,
}

impl ReadAccess {
    /// The check itself, for extractors that add to it (OFREP's).
    pub(crate) fn check(headers: &HeaderMap, state: &AppState) -> Result<ReadAccess, ApiError> {
        let principal = match presented(headers).map(|token| state.credentials.lookup(token)) {
            Some(Some(principal)) => principal,
            // Without SDK keys any token reads (as it always has).
            _ if state.credentials.open_reads() => return Ok(ReadAccess::open(state)),
            Some(None) => return Err(ApiError::Unauthorized("wrong SDK key".into())),
            None => {
                return Err(ApiError::Unauthorized(
                    "this server needs an SDK key: Authorization: Bearer <key> or X-API-Key".into(),
                ));
            }
        };
        ReadAccess::granted(principal, state)
    }

    /// The check for a URL that names its credential by channel (OFREP's
    /// change notifications, which a browser's `EventSource` opens without
    /// headers): see [`Principal::channel`].
    pub(crate) fn by_channel(
        channel: Option<&str>,
        state: &AppState,
    ) -> Result<ReadAccess, ApiError> {
        match channel.map(|c| state.credentials.lookup_channel(c)) {
            Some(Some(principal)) => ReadAccess::granted(principal, state),
            _ if state.credentials.open_reads() => Ok(ReadAccess::open(state)),
            Some(None) => Err(ApiError::Unauthorized(
                "unknown or revoked change channel: fetch /ofrep/v1/evaluate/flags again for the current one".into(),
            )),
            None => Err(ApiError::Unauthorized(
                "this server needs an SDK key: the channel parameter from the bulk evaluation's eventStreams".into(),
            )),
        }
    }

    /// Reads without a key: `default`.
    fn open(state: &AppState) -> ReadAccess {
        ReadAccess {
            environment: state.default_environment(),
            credential: None,
        }
    }

    /// What `principal` reads: its SDK key's environment, or `default` for
    /// an admin token.
    pub(crate) fn granted(
        principal: Arc<Principal>,
        state: &AppState,
    ) -> Result<ReadAccess, ApiError> {
        let environment = match &principal.grant {
            Grant::Sdk { environment } => {
                state.environment(environment.as_str()).ok_or_else(|| {
                    ApiError::Unauthorized(format!(
                        "this SDK key's environment '{environment}' is not served"
                    ))
                })?
            }
            Grant::Admin { .. } => state.default_environment(),
        };
        Ok(ReadAccess {
            environment,
            credential: Some(principal),
        })
    }
}

impl ReadAccess {
    /// The check behind the extractor.
    async fn extract(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        ReadAccess::check(&parts.headers, state)
    }
}

extractor!(ReadAccess, ApiError);
