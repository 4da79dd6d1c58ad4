//! Shared server state: the published document, the database, change fan-out.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use flagyard_core::{CompileOptions, Limits, Snapshot};
use flagyard_storage::pancake::Pancake;
use flagyard_storage::{RedisDocuments, SqliteDocuments};

use crate::backend::Backend;
use serde_json::Value;
use tokio::sync::{broadcast, watch};

use crate::config::ServerConfig;
use crate::error::ApiError;
use crate::published::Published;

/// Why a server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The database could not be opened or written.
    #[error("database: {0}")]
    Database(#[from] flagyard_core::StoreError),
    /// The seed file could not be read.
    #[error("{path}: {source}")]
    Seed {
        /// The seed file.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A stored or seed document is invalid.
    #[error("{what}: {message}")]
    InvalidDocument {
        /// Where the document came from.
        what: String,
        /// What is wrong.
        message: String,
    },
    /// The pancake Redis could not be reached.
    #[error("pancake: {0}")]
    Pancake(#[from] flagyard_storage::pancake::PancakeError),
    /// The Redis pub/sub connection of the fan-out closed.
    #[error("the pub/sub connection closed")]
    FanOutClosed,
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// A global token bucket for OFREP requests.
pub(crate) struct RateLimiter {
    per_second: f64,
    state: Mutex<(f64, Instant)>,
}

impl RateLimiter {
    fn new(per_second: u32) -> Self {
        RateLimiter {
            per_second: f64::from(per_second.max(1)),
            state: Mutex::new((f64::from(per_second.max(1)), Instant::now())),
        }
    }

    /// `Ok` to proceed, or `Err(seconds to wait)`.
    pub(crate) fn check(&self) -> Result<(), u64> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        let refill = now.duration_since(state.1).as_secs_f64() * self.per_second;
        state.0 = (state.0 + refill).min(self.per_second);
        state.1 = now;
        if state.0 >= 1.0 {
            state.0 -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - state.0) / self.per_second).ceil().max(1.0) as u64)
        }
    }
}

/// Everything the handlers share.
pub struct AppState {
    pub(crate) current: ArcSwap<Published>,
    pub(crate) backend: Backend,
    pub(crate) changes: broadcast::Sender<Arc<Published>>,
    pub(crate) config: ServerConfig,
    pub(crate) shutdown: watch::Receiver<bool>,
    pub(crate) limiter: Option<RateLimiter>,
    pub(crate) pancake: Option<Pancake>,
    writes: tokio::sync::Mutex<()>,
}

pub(crate) fn compile_options(config: &ServerConfig) -> CompileOptions {
    CompileOptions::default().limits(Limits {
        max_document_bytes: config.max_document_bytes,
        ..Limits::default()
    })
}

/// Compiles a stored document leniently: it was valid when written, and a
/// newer rule set must never stop a server from serving it.
fn compile_stored(
    version: u64,
    body: &str,
    config: &ServerConfig,
) -> Result<Published, ServerError> {
    let value: Value = serde_json::from_str(body).map_err(|e| ServerError::InvalidDocument {
        what: format!("stored version {version}"),
        message: e.to_string(),
    })?;
    let snapshot = Snapshot::from_value(&value, &compile_options(config)).map_err(|e| {
        ServerError::InvalidDocument {
            what: format!("stored version {version}"),
            message: e.to_string(),
        }
    })?;
    Ok(Published::new(version, &value, snapshot))
}

/// Validates a document strictly: any problem refuses it (writes must not
/// publish a flag that answers PARSE_ERROR).
pub(crate) fn validate(document: &Value, config: &ServerConfig) -> Result<Snapshot, String> {
    let snapshot =
        Snapshot::from_value(document, &compile_options(config)).map_err(|e| e.to_string())?;
    if !snapshot.problems().is_empty() {
        return Err(snapshot.problems_text());
    }
    Ok(snapshot)
}

/// Writes the first version of an empty store and reads back what it holds.
/// Another server may write at the same moment: only the first write wins.
async fn write_first(
    backend: &Backend,
    body: String,
    actor: &str,
    action: &str,
    detail: String,
) -> Result<flagyard_storage::StoredDocument, ServerError> {
    backend
        .replace_if(body, actor.into(), action.into(), detail, Some(0))
        .await?;
    backend
        .current()
        .await?
        .ok_or_else(|| ServerError::InvalidDocument {
            what: format!("store after '{action}'"),
            message: "no document after the first write".into(),
        })
}

impl AppState {
    /// Opens the store (SQLite or Redis), seeding or initializing it when
    /// empty, and publishes its document.
    pub async fn open(
        config: ServerConfig,
        shutdown: watch::Receiver<bool>,
    ) -> Result<Arc<AppState>, ServerError> {
        let backend = match &config.redis_url {
            Some(url) => Backend::Redis(Box::new(
                RedisDocuments::open(url, &config.redis_prefix).await?,
            )),
            None => {
                let path = config.db_path.clone();
                let db = tokio::task::spawn_blocking(move || SqliteDocuments::open(path))
                    .await
                    .map_err(|e| flagyard_core::StoreError::database("sqlite task", false, e))??;
                Backend::Sqlite(Arc::new(db))
            }
        };
        let stored = backend.current().await?;
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
                let value: Value =
                    serde_json::from_str(&text).map_err(|e| ServerError::InvalidDocument {
                        what: seed.display().to_string(),
                        message: e.to_string(),
                    })?;
                validate(&value, &config).map_err(|message| ServerError::InvalidDocument {
                    what: seed.display().to_string(),
                    message,
                })?;
                let detail = seed.display().to_string();
                write_first(&backend, value.to_string(), "seed", "seed", detail).await?
            }
            (None, None) => {
                let empty = r#"{"flags":{}}"#.to_string();
                write_first(&backend, empty, "server", "init", "empty document".into()).await?
            }
        };
        let published = Arc::new(compile_stored(stored.version, &stored.body, &config)?);
        let pancake = match &config.pancake_url {
            Some(url) => Some(Pancake::open(url, &config.pancake_extension).await?),
            None => None,
        };
        let (changes, _) = broadcast::channel(64);
        let limiter = config.ofrep_rate_limit.map(RateLimiter::new);
        tracing::info!(store = %backend.describe(), version = stored.version, "document loaded");
        Ok(Arc::new(AppState {
            current: ArcSwap::new(published),
            backend,
            changes,
            config,
            shutdown,
            limiter,
            pancake,
            writes: tokio::sync::Mutex::new(()),
        }))
    }

    /// Serves a version written by another server (read back from the shared
    /// store) if it is newer than the one served.
    pub(crate) async fn refresh(&self) -> Result<(), ServerError> {
        let _serial = self.writes.lock().await;
        let Some(stored) = self.backend.current().await? else {
            return Ok(());
        };
        if stored.version <= self.current.load().version {
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
        for _attempt in 0..5 {
            if let Some(published) = self.try_change(&edit, actor, action, detail).await? {
                return Ok(published);
            }
            self.refresh()
                .await
                .map_err(|e| ApiError::Internal(e.to_string()))?;
        }
        Err(ApiError::Internal(
            "too many concurrent writers; try again".into(),
        ))
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
        let version = self
            .backend
            .replace_if(
                body,
                actor.into(),
                action.into(),
                detail.into(),
                Some(current.version),
            )
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        if version == 0 {
            return Ok(None);
        }
        let published = Arc::new(Published::new(version, &next, snapshot));
        self.current.store(Arc::clone(&published));
        let _ = self.changes.send(Arc::clone(&published));
        tracing::info!(version, "document published");
        Ok(Some(published))
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
