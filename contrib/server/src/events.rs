//! [`EventLog`]: where the collector keeps events — batches kept once by
//! their id, queries for the admin API, retention. SQLite (a file of its own
//! beside the server's database) or, when the server runs on Redis, a Redis
//! stream that every server on it shares.

use std::sync::Arc;

use flagyard_core::event_json::WireEvent;
use flagyard_storage::{EventQuery, Ingested, RedisEvents, Retention, SqliteEvents, StoredEvent};

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

impl EventLog for RedisEvents {
    fn describe(&self) -> String {
        format!("redis {}", flagyard_storage::masked_url(self.url()))
    }
    fn ingest(&self, batch_id: String, events: Vec<WireEvent>) -> LogFuture<'_, Ingested> {
        Box::pin(async move { RedisEvents::ingest(self, &batch_id, &events).await })
    }
    fn query(&self, query: EventQuery) -> LogFuture<'_, Vec<StoredEvent>> {
        Box::pin(async move { RedisEvents::query(self, &query).await })
    }
    /// The retention given at open applies.
    fn prune(&self, _retention: Retention) -> LogFuture<'_, u64> {
        Box::pin(RedisEvents::prune(self))
    }
    fn count(&self) -> LogFuture<'_, u64> {
        Box::pin(RedisEvents::count(self))
    }
    fn cursor(&self, name: String) -> LogFuture<'_, u64> {
        Box::pin(async move { RedisEvents::cursor(self, &name).await })
    }
    fn set_cursor(&self, name: String, last_id: u64) -> LogFuture<'_, ()> {
        Box::pin(async move { RedisEvents::set_cursor(self, &name, last_id).await })
    }
}
