//! SQLite persistence: one current flag document with a version, and the history
//! of every accepted change. The flag server keeps its state here; a provider can
//! use the same file format as its cache ([`SqliteStore`]).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use flagyard_core::{Store, StoreError};
use rusqlite::{Connection, OptionalExtension, params};

use crate::credentials::StoredCredential;
use crate::documents::{
    Change, DEFAULT_HISTORY_KEEP, EnvironmentName, HistoryEntry, InvalidEnvironmentName,
    StoredDocument,
};

/// The tables: per environment, the current document and the history of
/// every accepted change.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS environments (
    name       TEXT    PRIMARY KEY,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS env_documents (
    env        TEXT    PRIMARY KEY,
    version    INTEGER NOT NULL,
    body       TEXT    NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS env_history (
    env     TEXT    NOT NULL,
    version INTEGER NOT NULL,
    at      INTEGER NOT NULL,
    actor   TEXT    NOT NULL,
    action  TEXT    NOT NULL,
    detail  TEXT    NOT NULL,
    body    TEXT    NOT NULL,
    diff    TEXT    NOT NULL DEFAULT '',
    PRIMARY KEY (env, version)
);
CREATE TABLE IF NOT EXISTS credentials (
    id   TEXT PRIMARY KEY,
    body TEXT NOT NULL
);
";

/// A file made before environments (one `document` row and one `history`
/// table) becomes the environment `default`, with its history, in the
/// transaction that opens it.
const MIGRATE_SINGLE_DOCUMENT: &str = "
INSERT OR IGNORE INTO environments (name, created_at)
    SELECT 'default', updated_at FROM document WHERE id = 1;
INSERT OR IGNORE INTO env_documents (env, version, body, updated_at)
    SELECT 'default', version, body, updated_at FROM document WHERE id = 1;
INSERT OR IGNORE INTO env_history (env, version, at, actor, action, detail, body)
    SELECT 'default', version, at, actor, action, detail, body FROM history;
DROP TABLE document;
DROP TABLE history;
";

/// One environment's versioned document and its history, in a SQLite file
/// that holds any number of environments.
///
/// Needs the crate feature `sqlite`.
///
/// [`open`](Self::open) gives the environment `default`;
/// [`environment`](Self::environment) another in the same file. Writes are
/// transactions (the document row and the history row change together), so
/// a crash leaves the previous or the new version, never a mix. A file made
/// before environments existed is migrated to `default` when opened.
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
    db: Arc<Database>,
    env: EnvironmentName,
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

    /// Something in this file that cannot be read back, said in `detail`.
    pub(crate) fn corrupt(&self, detail: impl std::fmt::Display) -> StoreError {
        StoreError::Corrupt {
            path: self.path.clone(),
            detail: detail.to_string(),
        }
    }

    /// Every row of a query without parameters, each read by `row`.
    pub(crate) fn rows<T>(
        &self,
        sql: &str,
        row: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn.prepare(sql).map_err(|e| self.error(e))?;
        stmt.query_map([], row)
            .map_err(|e| self.error(e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.error(e))
    }
}

impl SqliteDocuments {
    /// Opens (creating if needed) the database file and its tables, for the
    /// environment `default`; a file made before environments is migrated.
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteDocuments, StoreError> {
        let db = Database::open(path, SCHEMA)?;
        migrate_single_document(&db)?;
        Ok(SqliteDocuments {
            db: Arc::new(db),
            env: EnvironmentName::default_environment(),
            history_keep: DEFAULT_HISTORY_KEEP,
        })
    }

    /// The environment `name` in the same file (its document is `None` until
    /// the first write, which also declares it).
    pub fn environment(&self, name: EnvironmentName) -> SqliteDocuments {
        SqliteDocuments {
            db: Arc::clone(&self.db),
            env: name,
            history_keep: self.history_keep,
        }
    }

    /// Which environment this is.
    pub fn name(&self) -> &EnvironmentName {
        &self.env
    }

    /// Every environment the file holds, by name.
    pub fn environments(&self) -> Result<Vec<EnvironmentName>, StoreError> {
        let names = self
            .db
            .rows("SELECT name FROM environments ORDER BY name", |row| {
                row.get::<_, String>(0)
            })?;
        names
            .into_iter()
            .map(|name| {
                name.parse()
                    .map_err(|e: InvalidEnvironmentName| self.db.corrupt(e))
            })
            .collect()
    }

    /// Declares this environment (it is listed by
    /// [`environments`](Self::environments) before any document is written);
    /// whether it is new.
    pub fn declare(&self) -> Result<bool, StoreError> {
        self.db
            .lock()
            .execute(
                "INSERT OR IGNORE INTO environments (name, created_at) VALUES (?1, ?2)",
                params![self.env.as_str(), now_ms() as i64],
            )
            .map(|n| n > 0)
            .map_err(|e| self.db.error(e))
    }

    flagyard_core::setters! {
        /// Keeps the newest `keep` history entries (default
        /// [`DEFAULT_HISTORY_KEEP`]); every write drops the older ones, so the
        /// file stops growing with the number of writes.
        with_history_keep(keep: usize) => history_keep = keep.max(1);
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
                "SELECT version, body FROM env_documents WHERE env = ?1",
                [self.env.as_str()],
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
            .query_row(
                "SELECT version FROM env_documents WHERE env = ?1",
                [self.env.as_str()],
                |row| row.get::<_, i64>(0),
            )
            .optional()
            .map_err(|e| self.db.error(e))?
            .map_or(0, |v| v as u64);
        if expected.is_some_and(|e| e != current) {
            return Ok(0);
        }
        let version = current + 1;
        // History timestamps never go backwards, even if the clock does.
        let last_at: i64 = tx
            .query_row(
                "SELECT COALESCE(MAX(at), 0) FROM env_history WHERE env = ?1",
                [self.env.as_str()],
                |row| row.get(0),
            )
            .map_err(|e| self.db.error(e))?;
        let at = (now_ms() as i64).max(last_at);
        let env = self.env.as_str();
        tx.execute(
            "INSERT OR IGNORE INTO environments (name, created_at) VALUES (?1, ?2)",
            params![env, at],
        )
        .map_err(|e| self.db.error(e))?;
        tx.execute(
            "INSERT INTO env_documents (env, version, body, updated_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(env) DO UPDATE SET version = excluded.version, body = excluded.body,
             updated_at = excluded.updated_at",
            params![env, version as i64, change.body, at],
        )
        .map_err(|e| self.db.error(e))?;
        tx.execute(
            "INSERT INTO env_history (env, version, at, actor, action, detail, body, diff)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                env,
                version as i64,
                at,
                change.actor,
                change.action,
                change.detail,
                change.body,
                change.diff
            ],
        )
        .map_err(|e| self.db.error(e))?;
        tx.execute(
            "DELETE FROM env_history WHERE env = ?1 AND version <= ?2",
            params![env, version as i64 - self.history_keep as i64],
        )
        .map_err(|e| self.db.error(e))?;
        tx.commit().map_err(|e| self.db.error(e))?;
        Ok(version)
    }

    /// Every credential the file holds (revoked ones too), oldest first.
    pub fn credentials(&self) -> Result<Vec<StoredCredential>, StoreError> {
        let rows = self
            .db
            .rows("SELECT id, body FROM credentials ORDER BY rowid", |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
            })?;
        rows.into_iter()
            .map(|(id, body)| {
                serde_json::from_str(&body)
                    .map_err(|e| self.db.corrupt(format_args!("credential {id}: {e}")))
            })
            .collect()
    }

    /// Stores `credential`, replacing the one with its id.
    pub fn put_credential(&self, credential: &StoredCredential) -> Result<(), StoreError> {
        let body = serde_json::to_string(credential).map_err(|e| {
            self.db
                .corrupt(format_args!("credential {}: {e}", credential.id))
        })?;
        self.db
            .lock()
            .execute(
                "INSERT INTO credentials (id, body) VALUES (?1, ?2)
                 ON CONFLICT(id) DO UPDATE SET body = excluded.body",
                params![credential.id, body],
            )
            .map(|_| ())
            .map_err(|e| self.db.error(e))
    }

    /// The newest `limit` history entries, newest first.
    pub fn history(&self, limit: usize) -> Result<Vec<HistoryEntry>, StoreError> {
        let conn = self.db.lock();
        let mut stmt = conn
            .prepare(
                "SELECT version, at, actor, action, detail, diff FROM env_history
                 WHERE env = ?1 ORDER BY version DESC LIMIT ?2",
            )
            .map_err(|e| self.db.error(e))?;
        let rows = stmt
            .query_map(params![self.env.as_str(), limit as i64], |row| {
                Ok(HistoryEntry {
                    version: row.get::<_, i64>(0)? as u64,
                    at_ms: row.get::<_, i64>(1)? as u64,
                    actor: row.get(2)?,
                    action: row.get(3)?,
                    detail: row.get(4)?,
                    diff: row.get(5)?,
                })
            })
            .map_err(|e| self.db.error(e))?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.db.error(e))
    }

    /// The document as version `version` had it, while history keeps it.
    pub fn body_at(&self, version: u64) -> Result<Option<String>, StoreError> {
        self.db
            .lock()
            .query_row(
                "SELECT body FROM env_history WHERE env = ?1 AND version = ?2",
                params![self.env.as_str(), version as i64],
                |row| row.get(0),
            )
            .optional()
            .map_err(|e| self.db.error(e))
    }

    /// Drops history entries older than the newest `keep`.
    pub fn trim_history(&self, keep: usize) -> Result<(), StoreError> {
        self.db
            .lock()
            .execute(
                "DELETE FROM env_history WHERE env = ?1
                 AND version <= (SELECT MAX(version) FROM env_history WHERE env = ?1) - ?2",
                params![self.env.as_str(), keep as i64],
            )
            .map(|_| ())
            .map_err(|e| self.db.error(e))
    }
}

/// Gives `table` the column `column` (`definition`: its type and default)
/// unless it has it: how a file made by an older version gains what a newer
/// one reads.
pub(crate) fn add_column(
    db: &Database,
    conn: &Connection,
    table: &str,
    column: &str,
    definition: &str,
) -> Result<(), StoreError> {
    let has: bool = conn
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2)",
            params![table, column],
            |row| row.get(0),
        )
        .map_err(|e| db.error(e))?;
    if !has {
        conn.execute_batch(&format!(
            "ALTER TABLE {table} ADD COLUMN {column} {definition}"
        ))
        .map_err(|e| {
            db.corrupt(format_args!(
                "adding the {table} table's {column} column: {e}"
            ))
        })?;
    }
    Ok(())
}

/// Moves a file made before environments to the environment `default`, and
/// gives a history made before diffs were recorded its (empty) `diff` column.
fn migrate_single_document(db: &Database) -> Result<(), StoreError> {
    let mut conn = db.lock();
    let tx = conn.transaction().map_err(|e| db.error(e))?;
    add_column(db, &tx, "env_history", "diff", "TEXT NOT NULL DEFAULT ''")?;
    let legacy: bool = tx
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'document')",
            [],
            |row| row.get(0),
        )
        .map_err(|e| db.error(e))?;
    if legacy {
        tx.execute_batch(MIGRATE_SINGLE_DOCUMENT).map_err(|e| {
            db.corrupt(format_args!(
                "migrating the single document to environment 'default': {e}"
            ))
        })?;
        tracing::info!(path = %db.path().display(), "migrated the single document to environment 'default'");
    }
    tx.commit().map_err(|e| db.error(e))
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
