//! Who may do what: SDK keys (read one environment) and admin tokens (a name
//! and a role), declared in the configuration or created through the admin
//! API. Only the SHA-256 of a token is kept; an in-memory index, replaced
//! whole on every change, answers each request without touching the store.

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use flagyard_core::StoreError;
use flagyard_storage::{EnvironmentName, RedisDocuments, SqliteDocuments, StoredCredential};
use sha2::{Digest, Sha256};
use tokio::sync::watch;

use crate::error::ApiError;
use crate::log::{LogFuture, blocking};

/// What an admin token may do. Each role may do what the ones before it may.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, strum::IntoStaticStr, strum::Display,
)]
#[strum(serialize_all = "lowercase")]
pub enum Role {
    /// Reads the admin API and page.
    Viewer,
    /// Also changes flags (and pancake switches) in the environments it lists.
    Editor,
    /// Everything, including environments, keys and tokens.
    Admin,
}

impl Role {
    /// `viewer`, `editor` or `admin`.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

impl std::str::FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "viewer" => Ok(Role::Viewer),
            "editor" => Ok(Role::Editor),
            "admin" => Ok(Role::Admin),
            other => Err(format!("unknown role {other:?} (viewer, editor or admin)")),
        }
    }
}

/// What a credential grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grant {
    /// An SDK key: reads the flags of one environment.
    Sdk {
        /// The environment it reads.
        environment: EnvironmentName,
    },
    /// An admin token.
    Admin {
        /// Its role.
        role: Role,
        /// The environments an editor may change (empty: every one).
        environments: Vec<EnvironmentName>,
    },
}

/// The holder of a credential a request presented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The credential's id (kept across rotations).
    pub id: String,
    /// Its name: for an admin token, the actor recorded in history.
    pub name: String,
    /// What it may do.
    pub grant: Grant,
    /// The SHA-256 of its token (the key of the credential index).
    digest: [u8; 32],
}

impl Principal {
    /// The opaque channel naming this credential in OFREP change-notification
    /// URLs (`/ofrep/v1/changes?channel=…`): its token's SHA-256 in hex, so
    /// the token itself never appears in a URL.
    pub fn channel(&self) -> String {
        hex(&self.digest)
    }

    /// The admin role, if this is an admin token.
    pub fn role(&self) -> Option<Role> {
        match &self.grant {
            Grant::Admin { role, .. } => Some(*role),
            Grant::Sdk { .. } => None,
        }
    }

    /// Whether it may change flags in `env`: an admin, or an editor whose
    /// list names `env` (or is empty).
    pub fn may_edit(&self, env: &EnvironmentName) -> bool {
        match &self.grant {
            Grant::Admin {
                role: Role::Admin, ..
            } => true,
            Grant::Admin {
                role: Role::Editor,
                environments,
            } => environments.is_empty() || environments.contains(env),
            _ => false,
        }
    }
}

/// A credential the configuration declares (the file, `--admin-token`,
/// `--sdk-key`): always valid while the configuration names it; the admin
/// API lists it but cannot revoke or rotate it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeclaredCredential {
    /// Its name.
    pub name: String,
    /// What it grants.
    pub grant: Grant,
    /// The SHA-256 of the token, lower-case hex.
    pub sha256: String,
}

impl DeclaredCredential {
    /// An admin token with `role`, given in clear (hashed here).
    pub fn admin_token(name: &str, token: &str, role: Role) -> DeclaredCredential {
        DeclaredCredential {
            name: name.to_string(),
            grant: Grant::Admin {
                role,
                environments: Vec::new(),
            },
            sha256: sha256_hex(token),
        }
    }

    /// An SDK key for `environment`, given in clear (hashed here).
    pub fn sdk_key(name: &str, key: &str, environment: EnvironmentName) -> DeclaredCredential {
        DeclaredCredential {
            name: name.to_string(),
            grant: Grant::Sdk { environment },
            sha256: sha256_hex(key),
        }
    }
}

/// The SHA-256 of `token`.
fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// A lower-case or upper-case hex SHA-256 as bytes, if it is one.
fn from_hex(hex: &str) -> Option<[u8; 32]> {
    let bytes = hex.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks(2).enumerate() {
        let text = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(text, 16).ok()?;
    }
    Some(out)
}

/// `bytes` as lower-case hex.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The lower-case hex SHA-256 of `token`.
pub fn sha256_hex(token: &str) -> String {
    hex(&digest(token))
}

/// Where created credentials are kept: the SQLite file or the shared Redis.
pub trait CredentialStore: Send + Sync + std::fmt::Debug + 'static {
    /// Every stored credential, revoked ones too.
    fn list(&self) -> LogFuture<'_, Vec<StoredCredential>>;
    /// Stores `credential`, replacing the one with its id.
    fn put(&self, credential: StoredCredential) -> LogFuture<'_, ()>;
}

impl CredentialStore for Arc<SqliteDocuments> {
    fn list(&self) -> LogFuture<'_, Vec<StoredCredential>> {
        blocking(self, |db| db.credentials())
    }
    fn put(&self, credential: StoredCredential) -> LogFuture<'_, ()> {
        blocking(self, move |db| db.put_credential(&credential))
    }
}

impl CredentialStore for RedisDocuments {
    fn list(&self) -> LogFuture<'_, Vec<StoredCredential>> {
        Box::pin(RedisDocuments::credentials(self))
    }
    fn put(&self, credential: StoredCredential) -> LogFuture<'_, ()> {
        Box::pin(async move { RedisDocuments::put_credential(self, &credential).await })
    }
}

/// One credential as the admin API lists it (never the token or its hash).
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CredentialView {
    /// Its id (`key_…`, `tok_…`; `declared:NAME` for declared ones).
    pub id: String,
    /// Its name.
    pub name: String,
    /// `sdk` or `admin`.
    pub kind: &'static str,
    /// An admin token's role.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// The SDK key's environment, or the editor's environments (empty: all).
    pub environments: Vec<String>,
    /// Declared in the configuration (not revocable through the API).
    pub declared: bool,
    /// When it was created (Unix milliseconds; 0 for declared ones).
    pub created_at_ms: u64,
    /// When it was revoked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_at_ms: Option<u64>,
}

impl serde::Serialize for Role {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// What one request is checked against: every valid credential by hash.
#[derive(Debug, Default)]
struct Index {
    /// Keyed by the SHA-256 itself: a lookup hashes the presented token and
    /// allocates nothing.
    by_hash: HashMap<[u8; 32], Arc<Principal>>,
    /// Whether any SDK key exists or existed (a revoked one counts): without
    /// one, reads are open (the `default` environment), as a server without
    /// keys has always been.
    any_sdk_key: bool,
    /// Whether any admin token exists: without one, the admin API is off.
    any_admin: bool,
    listing: Vec<CredentialView>,
}

impl Index {
    /// Indexes a credential by its SHA-256 in hex (`sha256`); one that is not
    /// 64 hex digits is logged as `which` and left out.
    fn admit(&mut self, which: &str, id: String, name: &str, grant: Grant, sha256: &str) {
        let Some(hash) = from_hex(sha256) else {
            tracing::warn!(credential = which, "SHA-256 is not 64 hex digits; ignored");
            return;
        };
        let principal = Principal {
            id,
            name: name.to_string(),
            grant,
            digest: hash,
        };
        self.by_hash.insert(hash, Arc::new(principal));
    }
}

/// The server's credentials: those declared and those stored.
#[derive(Debug)]
pub struct Credentials {
    declared: Vec<DeclaredCredential>,
    store: Arc<dyn CredentialStore>,
    index: ArcSwap<Index>,
    /// Bumped whenever the index changes: open streams check that their
    /// credential is still valid.
    changed: watch::Sender<u64>,
    /// Serializes this server's changes.
    writes: tokio::sync::Mutex<()>,
}

/// A credential to create.
#[derive(Debug, Clone)]
pub struct NewCredential {
    /// Its name (an admin token's name is the actor in history).
    pub name: String,
    /// What it grants.
    pub grant: Grant,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// `n` random bytes as lower-case hex.
fn random_hex(n: usize) -> Result<String, ApiError> {
    let mut bytes = vec![0u8; n];
    getrandom::fill(&mut bytes)
        .map_err(|e| ApiError::Internal(format!("no randomness for a new token: {e}")))?;
    Ok(hex(&bytes))
}

/// A new token for `grant`: `fy_sdk_{env}_` or `fy_adm_` and 160 random bits.
fn new_token(grant: &Grant) -> Result<String, ApiError> {
    Ok(match grant {
        Grant::Sdk { environment } => format!("fy_sdk_{environment}_{}", random_hex(20)?),
        Grant::Admin { .. } => format!("fy_adm_{}", random_hex(20)?),
    })
}

/// The grant a stored credential describes, or why it is unusable.
fn stored_grant(stored: &StoredCredential) -> Result<Grant, String> {
    let environments = stored
        .environments
        .iter()
        .map(|e| e.parse::<EnvironmentName>().map_err(|e| e.to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    match stored.kind.as_str() {
        "sdk" => match environments.as_slice() {
            [environment] => Ok(Grant::Sdk {
                environment: environment.clone(),
            }),
            _ => Err("an SDK key names exactly one environment".into()),
        },
        "admin" => Ok(Grant::Admin {
            role: stored.role.parse()?,
            environments,
        }),
        other => Err(format!("unknown kind {other:?}")),
    }
}

fn view(id: String, name: &str, grant: &Grant, declared: bool) -> CredentialView {
    let (kind, role, environments) = match grant {
        Grant::Sdk { environment } => ("sdk", None, vec![environment.to_string()]),
        Grant::Admin { role, environments } => (
            "admin",
            Some(*role),
            environments.iter().map(ToString::to_string).collect(),
        ),
    };
    CredentialView {
        id,
        name: name.to_string(),
        kind,
        role,
        environments,
        declared,
        created_at_ms: 0,
        revoked_at_ms: None,
    }
}

impl Credentials {
    /// The declared credentials and those `store` holds.
    pub(crate) async fn open(
        declared: Vec<DeclaredCredential>,
        store: Arc<dyn CredentialStore>,
    ) -> Result<Credentials, StoreError> {
        let credentials = Credentials {
            declared,
            store,
            index: ArcSwap::from_pointee(Index::default()),
            changed: watch::channel(0).0,
            writes: tokio::sync::Mutex::new(()),
        };
        credentials.reload().await?;
        Ok(credentials)
    }

    /// Reads the stored credentials again (another server may have changed
    /// them) and replaces the index.
    pub(crate) async fn reload(&self) -> Result<(), StoreError> {
        let stored = self.store.list().await?;
        self.rebuild(&stored);
        Ok(())
    }

    fn rebuild(&self, stored: &[StoredCredential]) {
        let mut index = Index::default();
        for d in &self.declared {
            let id = format!("declared:{}", d.name);
            index.any_sdk_key |= matches!(d.grant, Grant::Sdk { .. });
            index.any_admin |= matches!(d.grant, Grant::Admin { .. });
            index
                .listing
                .push(view(id.clone(), &d.name, &d.grant, true));
            let which = format!("declared {}", d.name);
            index.admit(&which, id, &d.name, d.grant.clone(), &d.sha256);
        }
        for s in stored {
            let grant = match stored_grant(s) {
                Ok(grant) => grant,
                Err(why) => {
                    tracing::warn!(id = %s.id, %why, "stored credential unusable; ignored");
                    continue;
                }
            };
            let mut listed = view(s.id.clone(), &s.name, &grant, false);
            listed.created_at_ms = s.created_at_ms;
            listed.revoked_at_ms = s.revoked_at_ms;
            index.listing.push(listed);
            // A revoked key still closes reads: revoking the last key must
            // not open them.
            index.any_sdk_key |= matches!(grant, Grant::Sdk { .. });
            if s.revoked_at_ms.is_some() {
                continue;
            }
            index.any_admin |= matches!(grant, Grant::Admin { .. });
            let which = format!("stored {}", s.id);
            index.admit(&which, s.id.clone(), &s.name, grant, &s.sha256);
        }
        let old = self.index.swap(Arc::new(index));
        let now = self.index.load();
        // Streams re-check only when something they hold may have gone.
        if old.by_hash.keys().any(|h| !now.by_hash.contains_key(h)) {
            self.changed.send_modify(|n| *n += 1);
        }
    }

    /// The holder of `token`, if it is valid.
    pub fn lookup(&self, token: &str) -> Option<Arc<Principal>> {
        self.index.load().by_hash.get(&digest(token)).cloned()
    }

    /// The holder of the credential whose [`Principal::channel`] is `channel`.
    pub fn lookup_channel(&self, channel: &str) -> Option<Arc<Principal>> {
        let digest = from_hex(channel)?;
        self.index.load().by_hash.get(&digest).cloned()
    }

    /// Whether reads need no key (no SDK key exists).
    pub fn open_reads(&self) -> bool {
        !self.index.load().any_sdk_key
    }

    /// Whether any admin token exists (without one the admin API is off).
    pub fn any_admin(&self) -> bool {
        self.index.load().any_admin
    }

    /// Whether the credential `id` is still valid.
    pub fn is_valid(&self, id: &str) -> bool {
        self.index.load().by_hash.values().any(|p| p.id == id)
    }

    /// Told whenever a credential stopped being valid.
    pub fn watch_revocations(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// Every credential, declared and stored.
    pub fn list(&self) -> Vec<CredentialView> {
        self.index.load().listing.clone()
    }

    /// Creates a credential; returns it and its token (shown this once).
    pub(crate) async fn create(
        &self,
        new: NewCredential,
    ) -> Result<(CredentialView, String), ApiError> {
        let token = new_token(&new.grant)?;
        let prefix = match &new.grant {
            Grant::Sdk { .. } => "key",
            Grant::Admin { .. } => "tok",
        };
        let (kind, role, environments) = match &new.grant {
            Grant::Sdk { environment } => ("sdk", String::new(), vec![environment.to_string()]),
            Grant::Admin { role, environments } => (
                "admin",
                role.to_string(),
                environments.iter().map(ToString::to_string).collect(),
            ),
        };
        let stored = StoredCredential::new(
            format!("{prefix}_{}", random_hex(6)?),
            new.name,
            kind,
            role,
            environments,
            sha256_hex(&token),
            now_ms(),
        );
        let _serial = self.writes.lock().await;
        self.put_and_reload(stored.clone()).await?;
        let listed = self.find(&stored.id)?;
        tracing::info!(id = %stored.id, name = %stored.name, kind, "credential created");
        Ok((listed, token))
    }

    /// Revokes the stored credential `id`: requests with it are refused at
    /// once and its open streams closed.
    pub(crate) async fn revoke(&self, id: &str) -> Result<CredentialView, ApiError> {
        let _serial = self.writes.lock().await;
        let mut stored = self.stored(id).await?;
        if stored.revoked_at_ms.is_none() {
            stored.revoked_at_ms = Some(now_ms());
            self.put_and_reload(stored).await?;
        } else {
            self.reload().await.map_err(|e| ApiError::from_store(&e))?;
        }
        tracing::info!(id, "credential revoked");
        self.find(id)
    }

    /// Gives the stored credential `id` a new token (the old one stops
    /// working at once); returns it and the new token.
    pub(crate) async fn rotate(&self, id: &str) -> Result<(CredentialView, String), ApiError> {
        let _serial = self.writes.lock().await;
        let mut stored = self.stored(id).await?;
        if stored.revoked_at_ms.is_some() {
            return Err(ApiError::BadRequest(format!("credential {id} is revoked")));
        }
        let token = new_token(&stored_grant(&stored).map_err(ApiError::Internal)?)?;
        stored.sha256 = sha256_hex(&token);
        self.put_and_reload(stored).await?;
        tracing::info!(id, "credential rotated");
        Ok((self.find(id)?, token))
    }

    /// Stores a credential and rebuilds the index from the store (the caller
    /// holds the write lock).
    async fn put_and_reload(&self, stored: StoredCredential) -> Result<(), ApiError> {
        self.store
            .put(stored)
            .await
            .map_err(|e| ApiError::from_store(&e))?;
        self.reload().await.map_err(|e| ApiError::from_store(&e))
    }

    async fn stored(&self, id: &str) -> Result<StoredCredential, ApiError> {
        if id.starts_with("declared:") {
            return Err(ApiError::Forbidden(format!(
                "credential {id} is declared in the configuration: change it there"
            )));
        }
        let stored = self
            .store
            .list()
            .await
            .map_err(|e| ApiError::from_store(&e))?;
        stored
            .into_iter()
            .find(|c| c.id == id)
            .ok_or_else(|| ApiError::NotFound(format!("no credential '{id}'")))
    }

    fn find(&self, id: &str) -> Result<CredentialView, ApiError> {
        self.index
            .load()
            .listing
            .iter()
            .find(|c| c.id == id)
            .cloned()
            .ok_or_else(|| ApiError::Internal(format!("credential {id} vanished after writing")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_order_and_editors_are_scoped() {
        assert!(Role::Viewer < Role::Editor && Role::Editor < Role::Admin);
        let staging: EnvironmentName = "staging".parse().unwrap();
        let production: EnvironmentName = "production".parse().unwrap();
        let editor = Principal {
            id: "t".into(),
            name: "ed".into(),
            grant: Grant::Admin {
                role: Role::Editor,
                environments: vec![staging.clone()],
            },
            digest: digest("t"),
        };
        assert!(editor.may_edit(&staging));
        assert!(!editor.may_edit(&production));
        let viewer = Principal {
            grant: Grant::Admin {
                role: Role::Viewer,
                environments: Vec::new(),
            },
            ..editor.clone()
        };
        assert!(!viewer.may_edit(&staging));
        assert_eq!(
            "owner".parse::<Role>().unwrap_err(),
            "unknown role \"owner\" (viewer, editor or admin)"
        );
    }

    #[test]
    fn hashes_are_sha256_hex() {
        assert_eq!(from_hex(&sha256_hex("abc")), Some(digest("abc")));
        assert_eq!(from_hex("not hex"), None);
        assert_eq!(
            sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
