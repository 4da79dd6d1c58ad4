//! What the handlers share: the environments (each with its published
//! document, document log and change fan-out), and how a change is applied.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use flagyard_storage::pancake::Pancake;
use flagyard_storage::{
    DEFAULT_ENVIRONMENT, EnvironmentName, RedisDocuments, RedisEvents, SqliteDocuments,
    SqliteEvents,
};
use serde_json::Value;
use tokio::sync::{broadcast, watch};

use crate::config::ServerConfig;
use crate::credentials::{CredentialStore, Credentials};
use crate::environment::Environment;
use crate::error::{ApiError, ServerError};
use crate::events::EventLog;
use crate::limiter::{LoginThrottle, RateLimiter};
use crate::log::DocumentLog;
use crate::metrics::{Metrics, Outcome};
use crate::precondition::Preconditions;
use crate::published::Published;
use crate::validation::{Invalid, compile_stored, validate};
use flagyard_storage::Change;

/// Everything the handlers share.
#[derive(Debug)]
pub struct AppState {
    /// Every environment served, by name.
    pub(crate) environments: ArcSwap<BTreeMap<EnvironmentName, Arc<Environment>>>,
    /// The store of the `default` environment, from which the others are
    /// opened.
    log: Arc<dyn DocumentLog>,
    /// The shared Redis, whose announcements the server follows.
    pub(crate) shared: Option<RedisDocuments>,
    /// Told the name of every environment this server adds (its Redis
    /// follower starts).
    pub(crate) added: broadcast::Sender<Arc<Environment>>,
    /// Serializes adding environments.
    adding: tokio::sync::Mutex<()>,
    /// SDK keys and admin tokens.
    pub(crate) credentials: Credentials,
    pub(crate) config: ServerConfig,
    pub(crate) shutdown: watch::Receiver<bool>,
    pub(crate) limiter: Option<RateLimiter>,
    /// Failed admin logins per client address.
    pub(crate) logins: LoginThrottle,
    /// Whether the store answered last time it was used (readiness).
    pub(crate) store_reachable: std::sync::atomic::AtomicBool,
    pub(crate) pancake: Option<Pancake>,
    /// The collector's events.
    pub(crate) events: Arc<dyn EventLog>,
    /// Signalled when events were kept (the forwarders wake).
    pub(crate) events_added: tokio::sync::Notify,
    /// What `GET /metrics` answers.
    pub(crate) metrics: Metrics,
}

/// Writes the first version of an empty store and reads back what it holds.
/// Another server may write at the same moment: only the first write wins.
async fn write_first(
    log: &dyn DocumentLog,
    change: Change,
) -> Result<flagyard_storage::StoredDocument, ServerError> {
    let action = change.action.clone();
    log.replace_if(change, Some(0)).await?;
    log.current()
        .await?
        .ok_or(ServerError::NothingStored { action })
}

/// How often a write is re-applied when other servers keep writing first.
const WRITE_ATTEMPTS: u32 = 50;

/// The pause before re-applying a write: growing with the attempt (1 ms, 2 ms,
/// … up to 20 ms), plus up to as much again of jitter.
fn retry_pause(attempt: u32) -> Duration {
    let base = u64::from(attempt.min(19) + 1);
    let jitter = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::from(d.subsec_nanos()))
        % (base * 1000);
    Duration::from_micros(base * 1000 + jitter)
}

/// Loads one environment's document: what the store holds, else `seed`
/// (written as its first version), else an empty document.
async fn load_environment(
    log: Arc<dyn DocumentLog>,
    shared: Option<RedisDocuments>,
    seed: Option<&std::path::Path>,
    config: &ServerConfig,
) -> Result<Environment, ServerError> {
    let stored = log.current().await?;
    let stored = match (stored, seed) {
        (Some(stored), seed) => {
            if let Some(seed) = seed {
                tracing::warn!(
                    environment = %log.name(),
                    seed = %seed.display(),
                    version = stored.version,
                    "the store already holds a document; the seed file is not applied"
                );
            }
            stored
        }
        (None, Some(seed)) => {
            let text = std::fs::read_to_string(seed).map_err(|source| ServerError::Seed {
                path: seed.to_path_buf(),
                source,
            })?;
            let invalid = |source| ServerError::InvalidDocument {
                what: seed.display().to_string(),
                source,
            };
            let value: Value =
                serde_json::from_str(&text).map_err(|e| invalid(Invalid::Json(e)))?;
            validate(&value, config).map_err(invalid)?;
            let change = Change::new(
                value.to_string(),
                "seed",
                "seed",
                seed.display().to_string(),
            );
            write_first(&*log, change).await?
        }
        // A shared store is seeded by whoever brings a document: a server
        // with nothing to seed serves an empty document as version 0
        // without writing it, and follows the store.
        (None, None) if shared.is_some() => {
            log.declare().await?;
            flagyard_storage::StoredDocument {
                version: 0,
                body: r#"{"flags":{}}"#.into(),
            }
        }
        (None, None) => {
            let change = Change::new(r#"{"flags":{}}"#, "server", "init", "empty document");
            write_first(&*log, change).await?
        }
    };
    let published = Arc::new(compile_stored(stored.version, &stored.body, config)?);
    tracing::info!(store = %log.describe(), version = stored.version, "document loaded");
    Ok(Environment::new(log, shared, published))
}

impl AppState {
    /// Opens the store (SQLite or Redis), seeding or initializing each
    /// environment that is empty, and publishes their documents.
    pub async fn open(
        config: ServerConfig,
        shutdown: watch::Receiver<bool>,
    ) -> Result<Arc<AppState>, ServerError> {
        let (log, shared, store): (Arc<dyn DocumentLog>, _, Arc<dyn CredentialStore>) =
            match &config.redis_url {
                Some(url) => {
                    let docs = RedisDocuments::open(url, &config.redis_prefix)
                        .await?
                        .with_history_keep(config.history_keep);
                    (Arc::new(docs.clone()), Some(docs.clone()), Arc::new(docs))
                }
                None => {
                    let (path, keep) = (config.db_path.clone(), config.history_keep);
                    let db = tokio::task::spawn_blocking(move || {
                        SqliteDocuments::open(path).map(|db| db.with_history_keep(keep))
                    })
                    .await
                    .map_err(|e| flagyard_core::StoreError::database("sqlite task", false, e))??;
                    let db = Arc::new(db);
                    (Arc::new(Arc::clone(&db)), None, Arc::new(db))
                }
            };
        let credentials = Credentials::open(config.declared_credentials(), store).await?;
        // The environments: `default`, those the configuration names, and
        // those the store holds (made through the admin API, here or by
        // another server on the same Redis).
        let mut names: BTreeMap<EnvironmentName, Option<std::path::PathBuf>> = BTreeMap::new();
        names.insert(
            EnvironmentName::default_environment(),
            config.seed_file.clone(),
        );
        for declared in &config.environments {
            names.insert(declared.name.clone(), declared.seed_file.clone());
        }
        for stored in log.environments().await? {
            names.entry(stored).or_insert(None);
        }
        let mut environments = BTreeMap::new();
        for (name, seed) in names {
            let env_log = log.environment(name.clone());
            let env_shared = shared.as_ref().map(|s| s.environment(name.clone()));
            let env = load_environment(env_log, env_shared, seed.as_deref(), &config).await?;
            environments.insert(name, Arc::new(env));
        }
        // A declared credential naming an environment that is not served,
        // or two sharing one token, is a mistake in the configuration:
        // refused at start.
        let mut hashes = std::collections::HashMap::new();
        for declared in config.declared_credentials() {
            if let Some(first) = hashes.insert(declared.sha256.clone(), declared.name.clone()) {
                return Err(ServerError::SharedToken {
                    first,
                    second: declared.name,
                });
            }
        }
        for declared in config.declared_credentials() {
            let named = match &declared.grant {
                crate::credentials::Grant::Sdk { environment } => vec![environment.clone()],
                crate::credentials::Grant::Admin { environments, .. } => environments.clone(),
            };
            if let Some(missing) = named.iter().find(|n| !environments.contains_key(*n)) {
                return Err(ServerError::UnknownEnvironment {
                    credential: declared.name,
                    environment: missing.to_string(),
                });
            }
        }
        let pancake = match &config.pancake_url {
            Some(url) => Some(Pancake::open(url, &config.pancake_extension).await?),
            None => None,
        };
        // Events live where the document does: shared through Redis, or in a
        // SQLite file of their own beside the database.
        let events: Arc<dyn EventLog> = match &config.redis_url {
            Some(url) => Arc::new(
                RedisEvents::open(url, &config.redis_prefix, config.events_retention).await?,
            ),
            None => {
                let path = config.events_path();
                let db = tokio::task::spawn_blocking(move || SqliteEvents::open(path))
                    .await
                    .map_err(|e| flagyard_core::StoreError::database("sqlite task", false, e))??;
                Arc::new(Arc::new(db))
            }
        };
        let limiter = config.ofrep_rate_limit.map(RateLimiter::new);
        tracing::info!(events = %events.describe(), "collecting events");
        Ok(Arc::new(AppState {
            environments: ArcSwap::from_pointee(environments),
            log,
            shared,
            added: broadcast::channel(16).0,
            credentials,
            adding: tokio::sync::Mutex::new(()),
            config,
            shutdown,
            limiter,
            logins: LoginThrottle::default(),
            store_reachable: std::sync::atomic::AtomicBool::new(true),
            pancake,
            events,
            events_added: tokio::sync::Notify::new(),
            metrics: Metrics::default(),
        }))
    }

    /// The environment `name`, if it is served.
    pub fn environment(&self, name: &str) -> Option<Arc<Environment>> {
        self.environments.load().get(name).cloned()
    }

    /// The `default` environment (always served).
    pub fn default_environment(&self) -> Arc<Environment> {
        self.environment(DEFAULT_ENVIRONMENT)
            .expect("the default environment is created at start and never removed")
    }

    /// Every environment served, by name.
    pub fn environments(&self) -> Vec<Arc<Environment>> {
        self.environments.load().values().cloned().collect()
    }

    /// Serves the environment `name`, creating it (with an empty document)
    /// when the store has none; returns it and whether it is new here.
    pub(crate) async fn add_environment(
        &self,
        name: EnvironmentName,
    ) -> Result<(Arc<Environment>, bool), ServerError> {
        let _serial = self.adding.lock().await;
        if let Some(env) = self.environments.load().get(&name) {
            return Ok((Arc::clone(env), false));
        }
        let env_log = self.log.environment(name.clone());
        env_log.declare().await?;
        let env_shared = self.shared.as_ref().map(|s| s.environment(name.clone()));
        let env = Arc::new(load_environment(env_log, env_shared, None, &self.config).await?);
        self.environments.rcu(|map| {
            let mut map = BTreeMap::clone(map);
            map.insert(name.clone(), Arc::clone(&env));
            map
        });
        let _ = self.added.send(Arc::clone(&env));
        tracing::info!(environment = %name, version = env.current().version, "environment served");
        Ok((env, true))
    }

    /// Serves the environments another server added to the shared store.
    pub(crate) async fn discover_environments(&self) -> Result<(), ServerError> {
        for name in self.log.environments().await? {
            if !self.environments.load().contains_key(&name) {
                self.add_environment(name).await?;
            }
        }
        Ok(())
    }

    /// Serves a version of `env` written by another server (read back from
    /// the shared store) if it is newer than the one served.
    pub(crate) async fn refresh(&self, env: &Environment) -> Result<(), ServerError> {
        let _serial = env.writes.lock().await;
        let served = env.current();
        let stored = env.log.current().await?;
        let behind = stored.as_ref().map_or(0, |s| s.version);
        if behind < served.version {
            // The store lost data (flushed, restarted without persistence,
            // failed over to an empty replica): put the served document back
            // so versions continue and writes are accepted again.
            let body = String::from_utf8_lossy(&served.body).into_owned();
            if env.log.restore(body, served.version).await? {
                tracing::error!(
                    store = %env.log.describe(),
                    store_version = behind,
                    version = served.version,
                    "the store lost its document (empty or behind this server): restored the served document"
                );
            }
            return Ok(());
        }
        let Some(stored) = stored else {
            return Ok(());
        };
        if stored.version <= served.version {
            return Ok(());
        }
        let published = Arc::new(compile_stored(stored.version, &stored.body, &self.config)?);
        env.publish(Arc::clone(&published));
        self.metrics.published();
        tracing::info!(
            environment = %env.name,
            version = stored.version,
            "document published (written by another server)"
        );
        Ok(())
    }

    /// SDK keys and admin tokens.
    pub fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    /// The collector's events.
    pub fn events(&self) -> &dyn EventLog {
        &*self.events
    }

    /// Applies a change to `env`: `edit` turns the current document into the
    /// next one, which is validated, stored (with history) and published.
    /// Writes are serialized; nothing changes when any step fails. When
    /// another server wrote first (shared Redis), the newer document is
    /// loaded and the edit applied to it again.
    ///
    /// `guard`: the request's preconditions (and the flag a flag write
    /// touches), checked against the document the edit applies to.
    pub async fn change(
        &self,
        env: &Environment,
        guard: Option<(&Preconditions, Option<&str>)>,
        edit: impl Fn(Value) -> Result<Value, ApiError>,
        actor: &str,
        action: &str,
        detail: &str,
    ) -> Result<Arc<Published>, ApiError> {
        // Another server's write between our read and our compare-and-set
        // is not a failure: re-read, re-apply the edit, retry after a short
        // jittered pause so two servers do not collide in step.
        let result = async {
            for attempt in 0..WRITE_ATTEMPTS {
                if let Some(published) = self
                    .try_change(env, guard, &edit, actor, action, detail)
                    .await?
                {
                    return Ok(published);
                }
                self.refresh(env).await.map_err(|e| match &e {
                    ServerError::Database(store) => ApiError::from_store(store),
                    _ => ApiError::Internal(e.to_string()),
                })?;
                tokio::time::sleep(retry_pause(attempt)).await;
            }
            Err(ApiError::Conflict(format!(
                "the document changed under this write {WRITE_ATTEMPTS} times in a row; try again"
            )))
        }
        .await;
        self.metrics.admin_write(match &result {
            Ok(_) => Outcome::applied,
            Err(ApiError::Unavailable { .. } | ApiError::Internal(_)) => Outcome::failed,
            Err(_) => Outcome::refused,
        });
        result
    }

    async fn try_change(
        &self,
        env: &Environment,
        guard: Option<(&Preconditions, Option<&str>)>,
        edit: &impl Fn(Value) -> Result<Value, ApiError>,
        actor: &str,
        action: &str,
        detail: &str,
    ) -> Result<Option<Arc<Published>>, ApiError> {
        let _serial = env.writes.lock().await;
        let current = env.current();
        let document = current.document()?;
        if let Some((preconditions, flag)) = guard {
            preconditions.check(&current, &document, flag)?;
        }
        let next = edit(document.clone())?;
        let body = next.to_string();
        if body.len() > self.config.max_document_bytes {
            return Err(ApiError::TooLarge(format!(
                "document is {} bytes, over the {}-byte limit",
                body.len(),
                self.config.max_document_bytes
            )));
        }
        let snapshot = validate(&next, &self.config).map_err(|e| match e {
            Invalid::Problems(problems) => ApiError::Invalid(problems),
            other => ApiError::BadRequest(format!("document refused: {other}")),
        })?;
        let diff = Value::Array(crate::diff::diff(&document, &next)).to_string();
        let change = Change::new(body, actor, action, detail).with_diff(diff);
        let version = match env.log.replace_if(change, Some(current.version)).await {
            Ok(version) => {
                self.set_store_reachable(true);
                version
            }
            Err(e) => {
                if e.is_transient() {
                    self.set_store_reachable(false);
                }
                return Err(ApiError::from_store(&e));
            }
        };
        if version == 0 {
            return Ok(None);
        }
        let published = Arc::new(Published::new(version, &next, snapshot));
        env.publish(Arc::clone(&published));
        self.metrics.published();
        tracing::info!(environment = %env.name, version, "document published");
        Ok(Some(published))
    }

    /// Records whether the store answered (readiness, `/readyz`).
    pub(crate) fn set_store_reachable(&self, reachable: bool) {
        let was = self
            .store_reachable
            .swap(reachable, std::sync::atomic::Ordering::AcqRel);
        if was != reachable {
            if reachable {
                tracing::info!("the store is reachable again");
            } else {
                tracing::warn!(
                    "the store is unreachable: serving the last document, refusing writes"
                );
            }
        }
    }

    /// Whether the server is shutting down.
    pub(crate) fn stopping(&self) -> bool {
        *self.shutdown.borrow()
    }

    /// The heartbeat interval.
    pub(crate) fn heartbeat(&self) -> Duration {
        self.config.heartbeat
    }
}
