//! Where the server keeps the document: SQLite (one server) or Redis (several
//! servers sharing it). One interface, so the handlers do not care.

use std::sync::Arc;

use flagyard_core::StoreError;
use flagyard_storage::{HistoryEntry, RedisDocuments, SqliteDocuments, StoredDocument};

/// The document store behind a server.
#[derive(Clone, Debug)]
pub enum Backend {
    /// A SQLite file (the default).
    Sqlite(Arc<SqliteDocuments>),
    /// A Redis shared with other servers.
    Redis(Box<RedisDocuments>),
}

fn join_error(e: tokio::task::JoinError) -> StoreError {
    StoreError::database("database task", false, e)
}

impl Backend {
    /// Where it is, for logs.
    pub fn describe(&self) -> String {
        match self {
            Backend::Sqlite(db) => format!("sqlite {}", db.path().display()),
            Backend::Redis(docs) => format!("redis {}", docs.url()),
        }
    }

    /// The current document.
    pub async fn current(&self) -> Result<Option<StoredDocument>, StoreError> {
        match self {
            Backend::Sqlite(db) => {
                let db = Arc::clone(db);
                tokio::task::spawn_blocking(move || db.current())
                    .await
                    .map_err(join_error)?
            }
            Backend::Redis(docs) => docs.current().await,
        }
    }

    /// Writes the next version if the current one is still `expected`
    /// (`None`: unconditionally); 0 when another writer came first.
    pub async fn replace_if(
        &self,
        body: String,
        actor: String,
        action: String,
        detail: String,
        expected: Option<u64>,
    ) -> Result<u64, StoreError> {
        match self {
            Backend::Sqlite(db) => {
                let db = Arc::clone(db);
                tokio::task::spawn_blocking(move || {
                    db.replace_if(&body, &actor, &action, &detail, expected)
                })
                .await
                .map_err(join_error)?
            }
            Backend::Redis(docs) => {
                docs.replace_if(&body, &actor, &action, &detail, expected)
                    .await
            }
        }
    }

    /// The newest history entries.
    pub async fn history(&self, limit: usize) -> Result<Vec<HistoryEntry>, StoreError> {
        match self {
            Backend::Sqlite(db) => {
                let db = Arc::clone(db);
                tokio::task::spawn_blocking(move || db.history(limit))
                    .await
                    .map_err(join_error)?
            }
            Backend::Redis(docs) => docs.history(limit).await,
        }
    }
}
