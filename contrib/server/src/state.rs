//! What the handlers share: the published document, the document log,
//! change fan-out, and how a change is applied.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use flagyard_storage::pancake::Pancake;
use flagyard_storage::{RedisDocuments, RedisEvents, SqliteDocuments, SqliteEvents};
use serde_json::Value;
use tokio::sync::{broadcast, watch};

use crate::config::ServerConfig;
use crate::error::{ApiError, ServerError};
use crate::events::EventLog;
use crate::limiter::{LoginThrottle, RateLimiter};
use crate::log::DocumentLog;
use crate::published::Published;
use crate::validation::{Invalid, compile_stored, validate};
use flagyard_storage::Change;

/// Everything the handlers share.
#[derive(Debug)]
pub struct AppState {
    pub(crate) current: ArcSwap<Published>,
    pub(crate) log: Arc<dyn DocumentLog>,
    /// The shared Redis, whose announcements the server follows.
    pub(crate) shared: Option<RedisDocuments>,
    pub(crate) changes: broadcast::Sender<Arc<Published>>,
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
    writes: tokio::sync::Mutex<()>,
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

impl AppState {
    /// Opens the store (SQLite or Redis), seeding or initializing it when
    /// empty, and publishes its document.
    pub async fn open(
        config: ServerConfig,
        shutdown: watch::Receiver<bool>,
    ) -> Result<Arc<AppState>, ServerError> {
        let (log, shared): (Arc<dyn DocumentLog>, _) = match &config.redis_url {
            Some(url) => {
                let docs = RedisDocuments::open(url, &config.redis_prefix)
                    .await?
                    .with_history_keep(config.history_keep);
                (Arc::new(docs.clone()), Some(docs))
            }
            None => {
                let (path, keep) = (config.db_path.clone(), config.history_keep);
                let db = tokio::task::spawn_blocking(move || {
                    SqliteDocuments::open(path).map(|db| db.with_history_keep(keep))
                })
                .await
                .map_err(|e| flagyard_core::StoreError::database("sqlite task", false, e))??;
                (Arc::new(Arc::new(db)), None)
            }
        };
        let stored = log.current().await?;
        let stored = match (stored, &config.seed_file) {
            (Some(stored), seed) => {
                if let Some(seed) = seed {
                    tracing::warn!(
                        seed = %seed.display(),
                        version = stored.version,
                        "the store already holds a document; the seed file is not applied"
                    );
                }
                stored
            }
            (None, Some(seed)) => {
                let text = std::fs::read_to_string(seed).map_err(|source| ServerError::Seed {
                    path: seed.clone(),
                    source,
                })?;
                let invalid = |source| ServerError::InvalidDocument {
                    what: seed.display().to_string(),
                    source,
                };
                let value: Value =
                    serde_json::from_str(&text).map_err(|e| invalid(Invalid::Json(e)))?;
                validate(&value, &config).map_err(invalid)?;
                let change = Change::new(
                    value.to_string(),
                    "seed",
                    "seed",
                    seed.display().to_string(),
                );
                write_first(&*log, change).await?
            }
            // A shared store is seeded by whoever brings a document: a
            // server with nothing to seed serves an empty document as
            // version 0 without writing it, and follows the store.
            (None, None) if shared.is_some() => flagyard_storage::StoredDocument {
                version: 0,
                body: r#"{"flags":{}}"#.into(),
            },
            (None, None) => {
                let change = Change::new(r#"{"flags":{}}"#, "server", "init", "empty document");
                write_first(&*log, change).await?
            }
        };
        let published = Arc::new(compile_stored(stored.version, &stored.body, &config)?);
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
        let (changes, _) = broadcast::channel(64);
        let limiter = config.ofrep_rate_limit.map(RateLimiter::new);
        tracing::info!(store = %log.describe(), version = stored.version, "document loaded");
        tracing::info!(events = %events.describe(), "collecting events");
        Ok(Arc::new(AppState {
            current: ArcSwap::new(published),
            log,
            shared,
            changes,
            config,
            shutdown,
            limiter,
            logins: LoginThrottle::default(),
            store_reachable: std::sync::atomic::AtomicBool::new(true),
            pancake,
            events,
            events_added: tokio::sync::Notify::new(),
            writes: tokio::sync::Mutex::new(()),
        }))
    }

    /// Serves a version written by another server (read back from the shared
    /// store) if it is newer than the one served.
    pub(crate) async fn refresh(&self) -> Result<(), ServerError> {
        let _serial = self.writes.lock().await;
        let served = self.current.load_full();
        let stored = self.log.current().await?;
        let behind = stored.as_ref().map_or(0, |s| s.version);
        if behind < served.version {
            // The store lost data (flushed, restarted without persistence,
            // failed over to an empty replica): put the served document back
            // so versions continue and writes are accepted again.
            let body = String::from_utf8_lossy(&served.body).into_owned();
            if self.log.restore(body, served.version).await? {
                tracing::error!(
                    store = %self.log.describe(),
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
        self.current.store(Arc::clone(&published));
        let _ = self.changes.send(published);
        tracing::info!(
            version = stored.version,
            "document published (written by another server)"
        );
        Ok(())
    }

    /// The collector's events.
    pub fn events(&self) -> &dyn EventLog {
        &*self.events
    }

    /// The document being served.
    pub fn current(&self) -> Arc<Published> {
        self.current.load_full()
    }

    /// Applies a change: `edit` turns the current document into the next one,
    /// which is validated, stored (with history) and published. Writes are
    /// serialized; nothing changes when any step fails. When another server
    /// wrote first (shared Redis), the newer document is loaded and the edit
    /// applied to it again.
    pub async fn change(
        &self,
        edit: impl Fn(Value) -> Result<Value, ApiError>,
        actor: &str,
        action: &str,
        detail: &str,
    ) -> Result<Arc<Published>, ApiError> {
        // Another server's write between our read and our compare-and-set
        // is not a failure: re-read, re-apply the edit, retry after a short
        // jittered pause so two servers do not collide in step.
        for attempt in 0..WRITE_ATTEMPTS {
            if let Some(published) = self.try_change(&edit, actor, action, detail).await? {
                return Ok(published);
            }
            self.refresh().await.map_err(|e| match &e {
                ServerError::Database(store) => ApiError::from_store(store),
                _ => ApiError::Internal(e.to_string()),
            })?;
            tokio::time::sleep(retry_pause(attempt)).await;
        }
        Err(ApiError::Conflict(format!(
            "the document changed under this write {WRITE_ATTEMPTS} times in a row; try again"
        )))
    }

    async fn try_change(
        &self,
        edit: &impl Fn(Value) -> Result<Value, ApiError>,
        actor: &str,
        action: &str,
        detail: &str,
    ) -> Result<Option<Arc<Published>>, ApiError> {
        let _serial = self.writes.lock().await;
        let current = self.current.load_full();
        let document: Value = serde_json::from_slice(&current.body)
            .map_err(|e| ApiError::Internal(format!("current document: {e}")))?;
        let next = edit(document)?;
        let body = next.to_string();
        if body.len() > self.config.max_document_bytes {
            return Err(ApiError::TooLarge(format!(
                "document is {} bytes, over the {}-byte limit",
                body.len(),
                self.config.max_document_bytes
            )));
        }
        let snapshot = validate(&next, &self.config)
            .map_err(|e| ApiError::BadRequest(format!("document refused: {e}")))?;
        let change = Change::new(body, actor, action, detail);
        let version = match self.log.replace_if(change, Some(current.version)).await {
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
        self.current.store(Arc::clone(&published));
        let _ = self.changes.send(Arc::clone(&published));
        tracing::info!(version, "document published");
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
