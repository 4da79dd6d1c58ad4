//! Shared server state: the published document, the database, change fan-out.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use flagyard_core::{CompileOptions, Limits, Snapshot};
use flagyard_storage::SqliteDocuments;
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
    pub(crate) db: Arc<SqliteDocuments>,
    pub(crate) changes: broadcast::Sender<Arc<Published>>,
    pub(crate) config: ServerConfig,
    pub(crate) shutdown: watch::Receiver<bool>,
    pub(crate) limiter: Option<RateLimiter>,
    writes: tokio::sync::Mutex<()>,
}

pub(crate) fn compile_options(config: &ServerConfig) -> CompileOptions {
    CompileOptions::default().limits(Limits {
        max_document_bytes: config.max_document_bytes,
        ..Limits::default()
    })
}

/// Validates a document strictly: any problem refuses it (writes must not
/// publish a flag that answers PARSE_ERROR).
pub(crate) fn validate(document: &Value, config: &ServerConfig) -> Result<Snapshot, String> {
    let snapshot =
        Snapshot::from_value(document, &compile_options(config)).map_err(|e| e.to_string())?;
    if !snapshot.problems().is_empty() {
        let list: Vec<String> = snapshot
            .problems()
            .iter()
            .map(ToString::to_string)
            .collect();
        return Err(list.join("; "));
    }
    Ok(snapshot)
}

impl AppState {
    /// Opens the database, seeding it when empty, and publishes its document.
    pub fn open(
        config: ServerConfig,
        shutdown: watch::Receiver<bool>,
    ) -> Result<Arc<AppState>, ServerError> {
        let db = SqliteDocuments::open(&config.db_path)?;
        let stored = db.current()?;
        let (version, body) = match (stored, &config.seed_file) {
            (Some(stored), seed) => {
                if let Some(seed) = seed {
                    tracing::warn!(
                        seed = %seed.display(),
                        version = stored.version,
                        "the database already holds a document; the seed file is not applied"
                    );
                }
                (stored.version, stored.body)
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
                let body = value.to_string();
                let version = db.replace(&body, "seed", "seed", &seed.display().to_string())?;
                (version, body)
            }
            (None, None) => {
                let body = r#"{"flags":{}}"#.to_string();
                let version = db.replace(&body, "server", "init", "empty document")?;
                (version, body)
            }
        };
        let value: Value =
            serde_json::from_str(&body).map_err(|e| ServerError::InvalidDocument {
                what: format!("stored version {version}"),
                message: e.to_string(),
            })?;
        // A stored document was valid when written; compile leniently so a newer
        // rule set never stops the server from starting.
        let snapshot = Snapshot::from_value(&value, &compile_options(&config)).map_err(|e| {
            ServerError::InvalidDocument {
                what: format!("stored version {version}"),
                message: e.to_string(),
            }
        })?;
        let published = Arc::new(Published::new(version, &value, snapshot));
        let (changes, _) = broadcast::channel(64);
        let limiter = config.ofrep_rate_limit.map(RateLimiter::new);
        Ok(Arc::new(AppState {
            current: ArcSwap::new(published),
            db: Arc::new(db),
            changes,
            config,
            shutdown,
            limiter,
            writes: tokio::sync::Mutex::new(()),
        }))
    }

    /// The document being served.
    pub fn current(&self) -> Arc<Published> {
        self.current.load_full()
    }

    /// Applies a change: `edit` turns the current document into the next one,
    /// which is validated, stored (with history) and published. Writes are
    /// serialized; nothing changes when any step fails.
    pub async fn change(
        &self,
        edit: impl FnOnce(Value) -> Result<Value, ApiError>,
        actor: &str,
        action: &str,
        detail: &str,
    ) -> Result<Arc<Published>, ApiError> {
        let _serial = self.writes.lock().await;
        let current = self.current.load_full();
        let document: Value = serde_json::from_str(&current.body)
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
        let db = Arc::clone(&self.db);
        let (actor, action, detail) = (actor.to_string(), action.to_string(), detail.to_string());
        let expected = current.version;
        let version = tokio::task::spawn_blocking(move || {
            db.replace_if(&body, &actor, &action, &detail, Some(expected))
        })
        .await
        .map_err(|e| ApiError::Internal(format!("database task: {e}")))?
        .map_err(|e| ApiError::Internal(e.to_string()))?;
        if version == 0 {
            return Err(ApiError::Internal(
                "the database changed underneath this server".into(),
            ));
        }
        let published = Arc::new(Published::new(version, &next, snapshot));
        self.current.store(Arc::clone(&published));
        let _ = self.changes.send(Arc::clone(&published));
        tracing::info!(version, "document published");
        Ok(published)
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
