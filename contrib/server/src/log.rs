//! [`DocumentLog`]: where the server keeps an environment's document — the
//! current version, conditional writes that record history, and the history.
//! SQLite (one server) and Redis (several servers sharing it) are behind it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use flagyard_core::StoreError;
use flagyard_storage::{
    Change, EnvironmentName, HistoryEntry, RedisDocuments, SqliteDocuments, StoredDocument,
};

/// A boxed future borrowing the log.
pub type LogFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// One environment's versioned document with its history.
pub trait DocumentLog: Send + Sync + std::fmt::Debug + 'static {
    /// Where it is, for logs (a Redis password masked).
    fn describe(&self) -> String;
    /// Which environment.
    fn name(&self) -> &EnvironmentName;
    /// Another environment in the same store.
    fn environment(&self, name: EnvironmentName) -> Arc<dyn DocumentLog>;
    /// Every environment the store holds.
    fn environments(&self) -> LogFuture<'_, Vec<EnvironmentName>>;
    /// Declares this environment in the store; whether it is new.
    fn declare(&self) -> LogFuture<'_, bool>;
    /// The current document, if any.
    fn current(&self) -> LogFuture<'_, Option<StoredDocument>>;
    /// Writes the next version if the current one is still `expected`
    /// (`None`: unconditionally); 0 when another writer came first.
    fn replace_if(&self, change: Change, expected: Option<u64>) -> LogFuture<'_, u64>;
    /// The newest history entries, newest first.
    fn history(&self, limit: usize) -> LogFuture<'_, Vec<HistoryEntry>>;
    /// The document as `version` had it, while history keeps that version
    /// (`None` beyond it).
    fn body_at(&self, version: u64) -> LogFuture<'_, Option<String>>;
    /// Puts back a document the store lost (a shared store flushed or failed
    /// over to an empty replica), as `version`, if that is newer than what it
    /// holds; whether it was stored. A store only this server writes never
    /// loses its data this way and stores nothing.
    fn restore(&self, body: String, version: u64) -> LogFuture<'_, bool>;
}

/// SQLite is synchronous: each call runs on tokio's blocking pool.
pub(crate) fn blocking<D: Send + Sync + 'static, T: Send + 'static>(
    db: &Arc<D>,
    call: impl FnOnce(&D) -> Result<T, StoreError> + Send + 'static,
) -> LogFuture<'static, T> {
    let db = Arc::clone(db);
    Box::pin(async move {
        tokio::task::spawn_blocking(move || call(&db))
            .await
            .map_err(|e| StoreError::database("sqlite task", false, e))?
    })
}

impl DocumentLog for Arc<SqliteDocuments> {
    fn describe(&self) -> String {
        format!("sqlite {} ({})", self.path().display(), self.name())
    }
    fn name(&self) -> &EnvironmentName {
        SqliteDocuments::name(self)
    }
    fn environment(&self, name: EnvironmentName) -> Arc<dyn DocumentLog> {
        Arc::new(Arc::new(SqliteDocuments::environment(self, name)))
    }
    fn environments(&self) -> LogFuture<'_, Vec<EnvironmentName>> {
        blocking(self, |db| db.environments())
    }
    fn declare(&self) -> LogFuture<'_, bool> {
        blocking(self, |db| db.declare())
    }
    fn current(&self) -> LogFuture<'_, Option<StoredDocument>> {
        blocking(self, |db| db.current())
    }
    fn replace_if(&self, change: Change, expected: Option<u64>) -> LogFuture<'_, u64> {
        blocking(self, move |db| db.replace_if(&change, expected))
    }
    fn history(&self, limit: usize) -> LogFuture<'_, Vec<HistoryEntry>> {
        blocking(self, move |db| db.history(limit))
    }
    fn body_at(&self, version: u64) -> LogFuture<'_, Option<String>> {
        blocking(self, move |db| db.body_at(version))
    }
    fn restore(&self, _body: String, _version: u64) -> LogFuture<'_, bool> {
        Box::pin(async { Ok(false) })
    }
}

impl DocumentLog for RedisDocuments {
    fn describe(&self) -> String {
        format!(
            "redis {} ({})",
            flagyard_storage::masked_url(self.url()),
            self.name()
        )
    }
    fn name(&self) -> &EnvironmentName {
        RedisDocuments::name(self)
    }
    fn environment(&self, name: EnvironmentName) -> Arc<dyn DocumentLog> {
        Arc::new(RedisDocuments::environment(self, name))
    }
    fn environments(&self) -> LogFuture<'_, Vec<EnvironmentName>> {
        Box::pin(RedisDocuments::environments(self))
    }
    fn declare(&self) -> LogFuture<'_, bool> {
        Box::pin(RedisDocuments::declare(self))
    }
    fn current(&self) -> LogFuture<'_, Option<StoredDocument>> {
        Box::pin(RedisDocuments::current(self))
    }
    fn replace_if(&self, change: Change, expected: Option<u64>) -> LogFuture<'_, u64> {
        Box::pin(async move { RedisDocuments::replace_if(self, &change, expected).await })
    }
    fn history(&self, limit: usize) -> LogFuture<'_, Vec<HistoryEntry>> {
        Box::pin(RedisDocuments::history(self, limit))
    }
    /// Redis keeps no old bodies: the current one with the diffs of every
    /// newer entry undone, while history holds them all.
    fn body_at(&self, version: u64) -> LogFuture<'_, Option<String>> {
        Box::pin(async move {
            let Some(current) = RedisDocuments::current(self).await? else {
                return Ok(None);
            };
            if version == current.version {
                return Ok(Some(current.body));
            }
            let Ok(mut document) = serde_json::from_str::<serde_json::Value>(&current.body) else {
                return Ok(None);
            };
            let entries = RedisDocuments::history(self, self.history_keep()).await?;
            let mut expected = current.version;
            for entry in entries.iter().take_while(|e| e.version > version) {
                let diff = serde_json::from_str(&entry.diff).unwrap_or(serde_json::Value::Null);
                if entry.version != expected || !crate::diff::revert(&mut document, &diff) {
                    return Ok(None);
                }
                expected -= 1;
            }
            Ok((expected == version).then(|| document.to_string()))
        })
    }
    fn restore(&self, body: String, version: u64) -> LogFuture<'_, bool> {
        Box::pin(async move { RedisDocuments::put_version(self, &body, version).await })
    }
}
