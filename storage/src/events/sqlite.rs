//! [`SqliteEvents`]: collected events in a SQLite file of their own (so that
//! ingesting never waits on a flag write), with batch ids for exactly-once
//! ingestion and retention by age and count.

use std::path::Path;

use flagyard_core::StoreError;
use flagyard_core::event_json::WireEvent;
use rusqlite::{OptionalExtension, params, params_from_iter};

use super::{Columns, EventQuery, Ingested, Retention, StoredEvent, rows};
use crate::sqlite::{Database, add_column, now_ms};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS batches (
    batch_id    TEXT PRIMARY KEY,
    received_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events (
    id            INTEGER PRIMARY KEY,
    received_at   INTEGER NOT NULL,
    at            INTEGER NOT NULL,
    kind          TEXT    NOT NULL,
    flag          TEXT,
    name          TEXT,
    targeting_key TEXT,
    variant       TEXT,
    body          TEXT    NOT NULL,
    environment   TEXT    NOT NULL DEFAULT 'default'
);
CREATE INDEX IF NOT EXISTS events_flag ON events (flag) WHERE flag IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_name ON events (name) WHERE name IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_key ON events (targeting_key) WHERE targeting_key IS NOT NULL;
CREATE INDEX IF NOT EXISTS batches_received ON batches (received_at);
CREATE TABLE IF NOT EXISTS cursors (
    name    TEXT PRIMARY KEY,
    last_id INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS experiments (
    flag       TEXT PRIMARY KEY,
    definition TEXT NOT NULL,
    tally      TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS participants (
    flag          TEXT NOT NULL,
    targeting_key TEXT NOT NULL,
    part          TEXT NOT NULL,
    PRIMARY KEY (flag, targeting_key)
) WITHOUT ROWID;
";

/// Sets a named reader's position in `cursors`.
pub(crate) fn put_cursor(
    conn: &rusqlite::Connection,
    name: &str,
    last_id: u64,
) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO cursors (name, last_id) VALUES (?1, ?2)
         ON CONFLICT(name) DO UPDATE SET last_id = excluded.last_id",
        params![name, last_id as i64],
    )
    .map(|_| ())
}

/// Collected events in a SQLite file.
///
/// Needs the crate feature `sqlite`.
///
/// A batch is one transaction with its id: a batch id seen before keeps
/// nothing, so a retried batch is counted once. A summary is kept as one row
/// per count (each a summary of one flag, variant and reason), so that
/// queries by flag find it.
///
/// # Example
/// ```
/// use flagyard_core::event_json::WireEvent;
/// use flagyard_storage::{EventQuery, SqliteEvents};
///
/// let dir = tempfile::tempdir().unwrap();
/// let events = SqliteEvents::open(dir.path().join("events.sqlite")).unwrap();
/// let purchase = WireEvent::Tracking {
///     name: "purchase".into(), targeting_key: Some("user-1".into()),
///     value: Some(9.5), fields: Default::default(), at: 1,
/// };
/// assert_eq!(events.ingest("batch-1", "default", &[purchase.clone()]).unwrap().kept, 1);
/// assert!(events.ingest("batch-1", "default", &[purchase]).unwrap().duplicate);
/// let kept = events.query(&EventQuery::default()).unwrap();
/// assert_eq!((kept.len(), kept[0].environment.as_str()), (1, "default"));
/// ```
#[derive(Debug)]
pub struct SqliteEvents {
    pub(crate) db: Database,
}

impl SqliteEvents {
    /// Opens (creating if needed) the events file.
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteEvents, StoreError> {
        let db = Database::open(path, SCHEMA)?;
        // A file from before events recorded their environment: what it
        // holds counts as `default`'s.
        add_column(
            &db,
            &db.lock(),
            "events",
            "environment",
            "TEXT NOT NULL DEFAULT 'default'",
        )?;
        Ok(SqliteEvents { db })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        self.db.path()
    }

    /// Keeps a batch's events, unless its id was seen before.
    pub fn ingest(
        &self,
        batch_id: &str,
        environment: &str,
        events: &[WireEvent],
    ) -> Result<Ingested, StoreError> {
        let err = |e| self.db.error(e);
        let received_at = now_ms() as i64;
        let mut conn = self.db.lock();
        let tx = conn.transaction().map_err(err)?;
        let new = tx
            .execute(
                "INSERT OR IGNORE INTO batches (batch_id, received_at) VALUES (?1, ?2)",
                params![batch_id, received_at],
            )
            .map_err(err)?;
        if new == 0 {
            return Ok(Ingested {
                kept: 0,
                duplicate: true,
            });
        }
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO events (received_at, at, kind, flag, name, targeting_key, variant, body, environment)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                )
                .map_err(err)?;
            let mut put = |event: &WireEvent| -> Result<(), StoreError> {
                let columns = Columns::of(event);
                let body = serde_json::to_string(event)
                    .map_err(|e| StoreError::database("event JSON", false, e))?;
                insert
                    .execute(params![
                        received_at,
                        event.at() as i64,
                        columns.kind,
                        columns.flag,
                        columns.name,
                        columns.targeting_key,
                        columns.variant,
                        body,
                        environment
                    ])
                    .map_err(err)?;
                Ok(())
            };
            for row in rows(events) {
                put(&row)?;
            }
        }
        tx.commit().map_err(err)?;
        Ok(Ingested {
            kept: events.len(),
            duplicate: false,
        })
    }

    /// The events `query` asks for: newest first, or oldest first after
    /// `query.after`.
    pub fn query(&self, query: &EventQuery) -> Result<Vec<StoredEvent>, StoreError> {
        let err = |e| self.db.error(e);
        let mut sql =
            String::from("SELECT id, received_at, environment, body FROM events WHERE 1 = 1");
        let mut args: Vec<rusqlite::types::Value> = Vec::new();
        let mut filter = |clause: &str, value: rusqlite::types::Value| {
            sql.push_str(" AND ");
            sql.push_str(clause);
            args.push(value);
        };
        if let Some(kind) = &query.kind {
            filter("kind = ?", kind.clone().into());
        }
        if let Some(flag) = &query.flag {
            filter("flag = ?", flag.clone().into());
        }
        if let Some(name) = &query.name {
            filter("name = ?", name.clone().into());
        }
        if let Some(key) = &query.targeting_key {
            filter("targeting_key = ?", key.clone().into());
        }
        if let Some(environment) = &query.environment {
            filter("environment = ?", environment.clone().into());
        }
        if let Some(since) = query.since {
            filter("at >= ?", (since as i64).into());
        }
        if let Some(until) = query.until {
            filter("at < ?", (until as i64).into());
        }
        if let Some(before) = query.before {
            filter("id < ?", (before as i64).into());
        }
        if let Some(after) = query.after {
            filter("id > ?", (after as i64).into());
        }
        let order = if query.after.is_some() { "ASC" } else { "DESC" };
        sql.push_str(&format!(" ORDER BY id {order} LIMIT {}", query.page_size()));
        let conn = self.db.lock();
        let mut stmt = conn.prepare(&sql).map_err(err)?;
        let rows = stmt
            .query_map(params_from_iter(args), |row| {
                Ok((
                    row.get::<_, i64>(0)? as u64,
                    row.get::<_, i64>(1)? as u64,
                    row.get::<_, String>(2)?,
                    row.get::<_, String>(3)?,
                ))
            })
            .map_err(err)?;
        let mut out = Vec::new();
        for row in rows {
            let (id, received_at, environment, body) = row.map_err(err)?;
            let event = serde_json::from_str(&body)
                .map_err(|e| self.db.corrupt(format_args!("event {id}: {e}")))?;
            out.push(StoredEvent {
                id,
                received_at,
                environment,
                event,
            });
        }
        Ok(out)
    }

    /// The last event id a named reader (a forwarder) has passed on; 0 when
    /// it has none.
    pub fn cursor(&self, name: &str) -> Result<u64, StoreError> {
        self.db
            .lock()
            .query_row(
                "SELECT last_id FROM cursors WHERE name = ?1",
                params![name],
                |row| row.get::<_, i64>(0),
            )
            .optional()
            .map(|id| id.map_or(0, |id| id as u64))
            .map_err(|e| self.db.error(e))
    }

    /// Records that the named reader has passed on every event up to `last_id`.
    pub fn set_cursor(&self, name: &str, last_id: u64) -> Result<(), StoreError> {
        put_cursor(&self.db.lock(), name, last_id).map_err(|e| self.db.error(e))
    }

    /// How many events (rows) are kept.
    pub fn count(&self) -> Result<u64, StoreError> {
        self.db
            .lock()
            .query_row("SELECT COUNT(*) FROM events", [], |row| {
                row.get::<_, i64>(0)
            })
            .map(|n| n as u64)
            .map_err(|e| self.db.error(e))
    }

    /// Deletes what `retention` no longer keeps; returns the events deleted.
    pub fn prune(&self, retention: Retention) -> Result<u64, StoreError> {
        let err = |e| self.db.error(e);
        let cutoff = (now_ms().saturating_sub(retention.max_age_ms)) as i64;
        let mut conn = self.db.lock();
        let tx = conn.transaction().map_err(err)?;
        let mut deleted = tx
            .execute("DELETE FROM events WHERE received_at < ?1", params![cutoff])
            .map_err(err)?;
        deleted += tx
            .execute(
                "DELETE FROM events WHERE id <= (SELECT MAX(id) FROM events) - ?1",
                params![retention.max_events.min(i64::MAX as u64) as i64],
            )
            .map_err(err)?;
        tx.execute(
            "DELETE FROM batches WHERE received_at < ?1",
            params![cutoff],
        )
        .map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(deleted as u64)
    }
}
