//! [`EventLog`]: where the collector keeps events — batches kept once by
//! their id, queries for the admin API, retention. SQLite (a file of its own
//! beside the server's database) or, when the server runs on Redis, a Redis
//! stream that every server on it shares.

use std::sync::Arc;

use flagyard_core::event_json::WireEvent;
use flagyard_storage::experiments::{Experiment, Tally};
use flagyard_storage::{EventQuery, Ingested, RedisEvents, Retention, SqliteEvents, StoredEvent};

use crate::log::{LogFuture, blocking};

/// One batch posted to the collector.
#[derive(Debug)]
pub struct Batch {
    /// Its id: a batch id seen before keeps nothing.
    pub id: String,
    /// The environment of the SDK key it was posted with.
    pub environment: String,
    /// Its events, each validated.
    pub events: Vec<WireEvent>,
}

/// The collector's events.
pub trait EventLog: Send + Sync + std::fmt::Debug + 'static {
    /// Where it is, for logs.
    fn describe(&self) -> String;
    /// Keeps a batch's events unless its id was seen before.
    fn ingest(&self, batch: Batch) -> LogFuture<'_, Ingested>;
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
    /// Adds an experiment; `false` when its flag has one.
    fn create_experiment(&self, experiment: Experiment) -> LogFuture<'_, bool>;
    /// Every experiment.
    fn experiments(&self) -> LogFuture<'_, Vec<Experiment>>;
    /// One experiment and its tally.
    fn experiment(&self, flag: String) -> LogFuture<'_, Option<(Experiment, Tally)>>;
    /// Stops an experiment (at `at`, ms) unless stopped; `None`: no such one.
    fn stop_experiment(&self, flag: String, at: u64) -> LogFuture<'_, Option<Experiment>>;
    /// Deletes an experiment; `false` when there was none.
    fn delete_experiment(&self, flag: String) -> LogFuture<'_, bool>;
    /// Reads up to `limit` new events into the tallies; how many (0: caught up).
    fn advance_experiments(&self, limit: usize) -> LogFuture<'_, usize>;
}

impl EventLog for Arc<SqliteEvents> {
    fn describe(&self) -> String {
        format!("sqlite {}", self.path().display())
    }
    fn ingest(&self, batch: Batch) -> LogFuture<'_, Ingested> {
        blocking(self, move |db| {
            db.ingest(&batch.id, &batch.environment, &batch.events)
        })
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
    fn create_experiment(&self, experiment: Experiment) -> LogFuture<'_, bool> {
        blocking(self, move |db| db.create_experiment(&experiment))
    }
    fn experiments(&self) -> LogFuture<'_, Vec<Experiment>> {
        blocking(self, SqliteEvents::experiments)
    }
    fn experiment(&self, flag: String) -> LogFuture<'_, Option<(Experiment, Tally)>> {
        blocking(self, move |db| db.experiment(&flag))
    }
    fn stop_experiment(&self, flag: String, at: u64) -> LogFuture<'_, Option<Experiment>> {
        blocking(self, move |db| db.stop_experiment(&flag, at))
    }
    fn delete_experiment(&self, flag: String) -> LogFuture<'_, bool> {
        blocking(self, move |db| db.delete_experiment(&flag))
    }
    fn advance_experiments(&self, limit: usize) -> LogFuture<'_, usize> {
        blocking(self, move |db| db.advance_experiments(limit))
    }
}

impl EventLog for RedisEvents {
    fn describe(&self) -> String {
        format!("redis {}", flagyard_storage::masked_url(self.url()))
    }
    fn ingest(&self, batch: Batch) -> LogFuture<'_, Ingested> {
        Box::pin(async move {
            RedisEvents::ingest(self, &batch.id, &batch.environment, &batch.events).await
        })
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
    fn create_experiment(&self, experiment: Experiment) -> LogFuture<'_, bool> {
        Box::pin(async move { RedisEvents::create_experiment(self, &experiment).await })
    }
    fn experiments(&self) -> LogFuture<'_, Vec<Experiment>> {
        Box::pin(RedisEvents::experiments(self))
    }
    fn experiment(&self, flag: String) -> LogFuture<'_, Option<(Experiment, Tally)>> {
        Box::pin(async move { RedisEvents::experiment(self, &flag).await })
    }
    fn stop_experiment(&self, flag: String, at: u64) -> LogFuture<'_, Option<Experiment>> {
        Box::pin(async move { RedisEvents::stop_experiment(self, &flag, at).await })
    }
    fn delete_experiment(&self, flag: String) -> LogFuture<'_, bool> {
        Box::pin(async move { RedisEvents::delete_experiment(self, &flag).await })
    }
    fn advance_experiments(&self, limit: usize) -> LogFuture<'_, usize> {
        Box::pin(RedisEvents::advance_experiments(self, limit))
    }
}
