//! [`EventLog`]: where the collector keeps events — batches kept once by
//! their id, queries for the admin API, retention. SQLite (a file of its own
//! beside the server's database) is behind it.

use std::sync::Arc;

use flagyard_core::event_json::WireEvent;
use flagyard_storage::{EventQuery, Ingested, Retention, SqliteEvents, StoredEvent};

use crate::log::{LogFuture, blocking};

/// The collector's events.
pub trait EventLog: Send + Sync + std::fmt::Debug + 'static {
    /// Where it is, for logs.
    fn describe(&self) -> String;
    /// Keeps a batch's events unless its id was seen before.
    fn ingest(&self, batch_id: String, events: Vec<WireEvent>) -> LogFuture<'_, Ingested>;
    /// The events a query asks for.
    fn query(&self, query: EventQuery) -> LogFuture<'_, Vec<StoredEvent>>;
    /// Deletes what the retention no longer keeps; the events deleted.
    fn prune(&self, retention: Retention) -> LogFuture<'_, u64>;
    /// How many events are kept.
    fn count(&self) -> LogFuture<'_, u64>;
    /// The last id a named forwarder passed on (0: none).
    fn cursor(&self, name: String) -> LogFuture<'_, u64>;
    /// Records how far a named forwarder got.
    fn set_cursor(&self, name: String, last_id: u64) -> LogFuture<'_, ()>;
}

impl EventLog for Arc<SqliteEvents> {
    fn describe(&self) -> String {
        format!("sqlite {}", self.path().display())
    }
    fn ingest(&self, batch_id: String, events: Vec<WireEvent>) -> LogFuture<'_, Ingested> {
        blocking(self, move |db| db.ingest(&batch_id, &events))
    }
    fn query(&self, query: EventQuery) -> LogFuture<'_, Vec<StoredEvent>> {
        blocking(self, move |db| db.query(&query))
    }
    fn prune(&self, retention: Retention) -> LogFuture<'_, u64> {
        blocking(self, move |db| db.prune(retention))
    }
    fn count(&self) -> LogFuture<'_, u64> {
        blocking(self, SqliteEvents::count)
    }
    fn cursor(&self, name: String) -> LogFuture<'_, u64> {
        blocking(self, move |db| db.cursor(&name))
    }
    fn set_cursor(&self, name: String, last_id: u64) -> LogFuture<'_, ()> {
        blocking(self, move |db| db.set_cursor(&name, last_id))
    }
}
