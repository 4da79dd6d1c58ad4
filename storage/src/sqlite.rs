//! SQLite persistence: one current flag document with a version, and the history
//! of every accepted change. The flag server keeps its state here; a provider can
//! use the same file format as its cache ([`SqliteStore`]).

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use flagyard_core::{Store, StoreError};
use rusqlite::{Connection, OptionalExtension, params};

use crate::documents::{Change, DEFAULT_HISTORY_KEEP, HistoryEntry, StoredDocument};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS document (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    version    INTEGER NOT NULL,
    body       TEXT    NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS history (
    version INTEGER PRIMARY KEY,
    at      INTEGER NOT NULL,
    actor   TEXT    NOT NULL,
    action  TEXT    NOT NULL,
    detail  TEXT    NOT NULL,
    body    TEXT    NOT NULL
);
";

/// A SQLite file holding one versioned document and its history.
///
/// Needs the crate feature `sqlite`.
///
/// Writes are transactions (the document row and the history row change
/// together), so a crash leaves the previous or the new version, never a mix.
///
/// # Example
/// ```
/// use flagyard_storage::{Change, SqliteDocuments};
///
/// let dir = tempfile::tempdir().unwrap();
/// let db = SqliteDocuments::open(dir.path().join("flags.sqlite")).unwrap();
/// let v = db.replace(&Change::new(r#"{"flags": {}}"#, "me", "put-document", "")).unwrap();
/// assert_eq!(db.current().unwrap().unwrap().version, v);
/// ```
#[derive(Debug)]
pub struct SqliteDocuments {
    db: Database,
    history_keep: usize,
}

pub(crate) fn db_error(path: &Path, e: rusqlite::Error) -> StoreError {
    // Another connection holding the file is transient; anything else is not.
    let transient = matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    );
    StoreError::database(format!("sqlite {}", path.display()), transient, e)
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A database file and its one connection: what the documents and the
/// collected events are kept in.
#[derive(Debug)]
pub(crate) struct Database {
    path: PathBuf,
    conn: Mutex<Connection>,
}

impl Database {
    /// Opens (creating it and its directory if needed) a database file in WAL
    /// mode with full sync and a 5 s busy timeout, and creates `schema`'s
    /// tables. A file that is not a database is [`StoreError::Corrupt`].
    pub(crate) fn open(path: impl AsRef<Path>, schema: &str) -> Result<Database, StoreError> {
        let path = path.as_ref().to_path_buf();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let err = |e| db_error(&path, e);
        let conn = Connection::open(&path).map_err(err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(err)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(err)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(err)?;
        conn.execute_batch(schema)
            .map_err(|e| StoreError::Corrupt {
                path: path.clone(),
                detail: e.to_string(),
            })?;
        Ok(Database {
            path,
            conn: Mutex::new(conn),
        })
    }

    /// The file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The connection (a panic while it was held does not poison it: every
    /// write is one transaction).
    pub(crate) fn lock(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A SQLite error on this file.
    pub(crate) fn error(&self, e: rusqlite::Error) -> StoreError {
        db_error(&self.path, e)
    }
}

impl SqliteDocuments {
    /// Opens (creating if needed) the database file and its tables.
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteDocuments, StoreError> {
        Ok(SqliteDocuments {
            db: Database::open(path, SCHEMA)?,
            history_keep: DEFAULT_HISTORY_KEEP,
        })
    }

    /// Keeps the newest `keep` history entries (default
    /// [`DEFAULT_HISTORY_KEEP`]); every write drops the older ones, so the
    /// file stops growing with the number of writes.
    pub fn with_history_keep(mut self, keep: usize) -> Self {
        self.history_keep = keep.max(1);
        self
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        self.db.path()
    }

    /// The current document, if any.
    pub fn current(&self) -> Result<Option<StoredDocument>, StoreError> {
        self.db
            .lock()
            .query_row(
                "SELECT version, body FROM document WHERE id = 1",
                [],
                |row| {
                    Ok(StoredDocument {
                        version: row.get::<_, i64>(0)? as u64,
                        body: row.get(1)?,
                    })
                },
            )
            .optional()
            .map_err(|e| self.db.error(e))
    }

    /// Makes `body` the current document with the next version and records the
    /// change; returns the new version.
    pub fn replace(&self, change: &Change) -> Result<u64, StoreError> {
        self.replace_if(change, None)
    }

    /// Like [`replace`](Self::replace), only if the current version is still
    /// `expected` (`Some(0)`: no document yet). Returns `Ok(0)` when it was not.
    pub fn replace_if(&self, change: &Change, expected: Option<u64>) -> Result<u64, StoreError> {
        let mut conn = self.db.lock();
        let tx = conn.transaction().map_err(|e| self.db.error(e))?;
        let current: u64 = tx
            .query_row("SELECT version FROM document WHERE id = 1", [], |row| {
                row.get::<_, i64>(0)
            })
            .optional()
            .map_err(|e| self.db.error(e))?
            .map_or(0, |v| v as u64);
        if expected.is_some_and(|e| e != current) {
            return Ok(0);
        }
        let version = current + 1;
        // History timestamps never go backwards, even if the clock does.
        let last_at: i64 = tx
            .query_row("SELECT COALESCE(MAX(at), 0) FROM history", [], |row| {
                row.get(0)
            })
            .map_err(|e| self.db.error(e))?;
        let at = (now_ms() as i64).max(last_at);
        tx.execute(
            "INSERT INTO document (id, version, body, updated_at) VALUES (1, ?1, ?2, ?3)
             ON CONFLICT(id) DO UPDATE SET version = excluded.version, body = excluded.body,
             updated_at = excluded.updated_at",
            params![version as i64, change.body, at],
        )
        .map_err(|e| self.db.error(e))?;
        tx.execute(
            "INSERT INTO history (version, at, actor, action, detail, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                version as i64,
                at,
                change.actor,
                change.action,
                change.detail,
                change.body
            ],
        )
        .map_err(|e| self.db.error(e))?;
        tx.execute(
            "DELETE FROM history WHERE version <= ?1",
            params![version as i64 - self.history_keep as i64],
        )
        .map_err(|e| self.db.error(e))?;
        tx.commit().map_err(|e| self.db.error(e))?;
        Ok(version)
    }

    /// The newest `limit` history entries, newest first.
    pub fn history(&self, limit: usize) -> Result<Vec<HistoryEntry>, StoreError> {
        let conn = self.db.lock();
        let mut stmt = conn
            .prepare("SELECT version, at, actor, action, detail FROM history ORDER BY version DESC LIMIT ?1")
            .map_err(|e| self.db.error(e))?;
        let rows = stmt
            .query_map(params![limit as i64], |row| {
                Ok(HistoryEntry {
                    version: row.get::<_, i64>(0)? as u64,
                    at_ms: row.get::<_, i64>(1)? as u64,
                    actor: row.get(2)?,
                    action: row.get(3)?,
                    detail: row.get(4)?,
                })
            })
            .map_err(|e| self.db.error(e))?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.db.error(e))
    }

    /// Drops history entries older than the newest `keep`.
    pub fn trim_history(&self, keep: usize) -> Result<(), StoreError> {
        self.db
            .lock()
            .execute(
                "DELETE FROM history WHERE version <= (SELECT MAX(version) FROM history) - ?1",
                params![keep as i64],
            )
            .map(|_| ())
            .map_err(|e| self.db.error(e))
    }
}

/// A provider cache in a SQLite file (the same format as the flag server's).
///
/// Needs the crate feature `sqlite`.
///
/// Each save is one transaction; only the newest document is kept (history is
/// trimmed to the last few versions).
#[derive(Debug)]
pub struct SqliteStore {
    db: SqliteDocuments,
}

impl SqliteStore {
    /// Opens (creating if needed) the cache file.
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteStore, StoreError> {
        Ok(SqliteStore {
            db: SqliteDocuments::open(path)?,
        })
    }
}

impl Store for SqliteStore {
    fn describe(&self) -> String {
        format!("sqlite:{}", self.db.path().display())
    }

    fn load(&self) -> Result<Option<String>, StoreError> {
        Ok(self.db.current()?.map(|d| d.body))
    }

    fn save(&self, document: &str) -> Result<(), StoreError> {
        self.db
            .replace(&Change::new(document, "cache", "save", ""))?;
        self.db.trim_history(3)
    }

    fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }
}
