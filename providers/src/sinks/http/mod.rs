//! [`HttpSink`]: events as gzip'd JSON batches to a collector (`POST
//! /v1/events` on `flagyard serve`, or any endpoint speaking
//! docs/PROTOCOL.md's format).

mod spool;
mod worker;

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use flagyard_core::event_json::WireEvent;
use flagyard_core::{ErrorReporter, Event, ExposureMode, ProviderError, Sink, SinkError};

use crate::BuildError;
use crate::NetworkOptions;
use crate::sources::connection_builder_methods;

/// Sends events in batches to a collector URL, losing none it can help.
///
/// Needs the crate feature `http-sink`.
///
/// - Batches by size (default 500 events) and interval (default 5 s), gzip'd;
///   every batch carries an id, so a collector counts a retried batch once.
/// - Retries with the sources' backoff, honouring `Retry-After` on 429/503;
///   a refusal (400, 413) drops the batch and is reported; refused events in
///   an accepted batch are reported by index.
/// - Holds at most `capacity` events in memory (default 10,000; the oldest are
///   dropped and counted); with a [`spool`](HttpSinkBuilder::spool) directory
///   batches wait on disk (up to its byte budget), so they survive an outage
///   of the collector and a restart of the process.
/// - `close()` (the provider's `close()`) delivers what is buffered within a
///   deadline (default 5 s) and reports what it could not deliver.
/// - Problems reach the provider's `on_error` with origin `Sink`.
/// - Asks the provider for exposure summaries ([`ExposureMode::Summary`]).
///
/// # Example
/// ```
/// use flagyard::{FlagyardProvider, HttpSink};
///
/// let sink = HttpSink::builder("http://127.0.0.1:8013/v1/events")
///     .sdk_key("my-sdk-key")
///     .spool("/var/lib/my-app/flagyard-events")
///     .build()?;
/// let provider = FlagyardProvider::builder()
///     .bootstrap_document(r#"{"flags": {}}"#)
///     .sink(sink)
///     .build()?;
/// provider.close();
/// # Ok::<(), flagyard::BuildError>(())
/// ```
#[derive(Debug, Clone)]
pub struct HttpSink {
    shared: Arc<Shared>,
    /// Dropped with the last clone: tells the worker to stop.
    _owner: Arc<Owner>,
}

/// Configures an [`HttpSink`].
#[derive(Debug, Clone)]
pub struct HttpSinkBuilder {
    url: String,
    options: NetworkOptions,
    batch_size: usize,
    interval: Duration,
    capacity: usize,
    close_deadline: Duration,
    spool: Option<PathBuf>,
    spool_bytes: u64,
}

/// What an [`HttpSink`] has done with its events.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct HttpSinkStats {
    /// Events the collector kept.
    pub delivered: u64,
    /// Events lost: dropped from a full buffer or spool, or in a batch the
    /// collector refused whole.
    pub dropped: u64,
    /// Events the collector refused one by one (in accepted batches).
    pub refused: u64,
    /// Batch sends retried.
    pub retries: u64,
    /// Events waiting: buffered in memory, in flight, or in the spool.
    pub pending: u64,
}

impl HttpSink {
    /// Sends to `url` (`http://` or `https://`, the collector's `/v1/events`).
    pub fn builder(url: impl Into<String>) -> HttpSinkBuilder {
        HttpSinkBuilder {
            url: url.into(),
            options: NetworkOptions::default(),
            batch_size: 500,
            interval: Duration::from_secs(5),
            capacity: 10_000,
            close_deadline: Duration::from_secs(5),
            spool: None,
            spool_bytes: 64 * 1024 * 1024,
        }
    }

    /// What happened to the events so far.
    pub fn stats(&self) -> HttpSinkStats {
        let s = &self.shared.stats;
        let queued = self.shared.lock_queue().len() as u64;
        HttpSinkStats {
            delivered: s.delivered.load(Ordering::Relaxed),
            dropped: s.dropped.load(Ordering::Relaxed),
            refused: s.refused.load(Ordering::Relaxed),
            retries: s.retries.load(Ordering::Relaxed),
            pending: queued + s.outside_queue.load(Ordering::Relaxed),
        }
    }
}

impl HttpSinkBuilder {
    flagyard_core::setters! {
        /// Events per batch (default 500).
        batch_size(events: usize) => batch_size = events.max(1);

        /// The longest an event waits before its batch is sent (default 5 s).
        interval(interval: Duration) => interval = interval;

        /// Events held in memory at most (default 10,000); beyond, the oldest are
        /// dropped and counted.
        capacity(events: usize) => capacity = events.max(1);

        /// How long `close()` may take to deliver what is buffered (default 5 s).
        close_deadline(deadline: Duration) => close_deadline = deadline;

        /// Keeps batches waiting for the collector in `dir`, so they survive an
        /// outage and a restart (sent first at the next start).
        spool(dir: impl Into<PathBuf>) => spool = Some(dir.into());

        /// The spool's byte budget (default 64 MiB); beyond it the oldest
        /// batches are dropped and counted.
        spool_bytes(bytes: u64) => spool_bytes = bytes;
    }

    connection_builder_methods!();

    /// The sink, with its delivery thread started; or what is wrong with its
    /// URL, headers or spool directory.
    pub fn build(self) -> Result<HttpSink, BuildError> {
        let what = format!("http-sink:{}", self.url);
        let client = self.options.http_client(&what, &self.url)?;
        let spool = match &self.spool {
            Some(dir) => Some(spool::Spool::open(dir.clone(), self.spool_bytes).map_err(
                |cause| BuildError::Config {
                    what: format!("{what}: spool {}", dir.display()),
                    cause: cause.into(),
                },
            )?),
            None => None,
        };
        let shared = Arc::new(Shared {
            queue: Mutex::new(VecDeque::new()),
            capacity: self.capacity,
            batch_size: self.batch_size,
            wake: tokio::sync::Notify::new(),
            control: Mutex::new(Control::default()),
            progress: Condvar::new(),
            stats: Counters::default(),
            reporter: OnceLock::new(),
            close_deadline: self.close_deadline,
            what,
        });
        if let Some(spool) = &spool {
            shared
                .stats
                .outside_queue
                .store(spool.events() as u64, Ordering::Relaxed);
        }
        let settings = worker::Settings {
            url: self.url,
            interval: self.interval,
            reconnect: self.options.reconnect.clone(),
        };
        let worker_shared = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("flagyard-http-sink".into())
            .spawn(move || worker::run(worker_shared, client, spool, settings))
            .map_err(|cause| BuildError::Config {
                what: shared.what.clone(),
                cause: cause.into(),
            })?;
        Ok(HttpSink {
            _owner: Arc::new(Owner(Arc::clone(&shared))),
            shared,
        })
    }
}

/// What the sink's handles and its worker share.
struct Shared {
    queue: Mutex<VecDeque<WireEvent>>,
    capacity: usize,
    batch_size: usize,
    /// Wakes the worker: a batch is full, a flush or close was asked for.
    wake: tokio::sync::Notify,
    control: Mutex<Control>,
    /// Signalled by the worker after each delivery attempt and when it ends.
    progress: Condvar,
    stats: Counters,
    reporter: OnceLock<ErrorReporter>,
    /// How long `close()` (and `flush()`) may take.
    close_deadline: Duration,
    /// `http-sink:<url>`, for messages.
    what: String,
}

#[derive(Debug, Default)]
struct Control {
    /// Close by this instant (set by `close()` or the last handle's drop).
    closing: Option<Instant>,
    /// Flushes asked for; the worker answers by raising `flushed` to it.
    flush_asked: u64,
    flushed: u64,
    /// The worker has ended; what it could not deliver.
    ended: Option<u64>,
}

#[derive(Debug, Default)]
struct Counters {
    delivered: AtomicU64,
    dropped: AtomicU64,
    refused: AtomicU64,
    retries: AtomicU64,
    /// Events taken from the queue but not yet delivered (in flight, spooled).
    outside_queue: AtomicU64,
}

/// The last handle's drop closes the sink (without waiting).
#[derive(Debug)]
struct Owner(Arc<Shared>);

impl Drop for Owner {
    fn drop(&mut self) {
        self.0.begin_close(Duration::ZERO);
    }
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("what", &self.what)
            .field("capacity", &self.capacity)
            .field("batch_size", &self.batch_size)
            .finish_non_exhaustive()
    }
}

impl Shared {
    fn lock_queue(&self) -> std::sync::MutexGuard<'_, VecDeque<WireEvent>> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn lock_control(&self) -> std::sync::MutexGuard<'_, Control> {
        self.control.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn report(&self, transient: bool, message: String) {
        let error = ProviderError::new(
            flagyard_core::ErrorOrigin::Sink,
            transient,
            format!("{}: {message}", self.what),
        );
        match self.reporter.get() {
            Some(report) => report(&error),
            None => tracing::warn!("{error}"),
        }
    }

    fn begin_close(&self, deadline: Duration) {
        let mut control = self.lock_control();
        if control.closing.is_none() {
            control.closing = Some(Instant::now() + deadline);
        }
        drop(control);
        self.wake.notify_one();
    }

    /// Waits (at most `limit`) for the worker to answer flush `asked`, or to
    /// end; returns the control state then.
    fn wait(&self, limit: Duration, done: impl Fn(&Control) -> bool) -> bool {
        let control = self.lock_control();
        let (control, _) = self
            .progress
            .wait_timeout_while(control, limit, |c| !done(c))
            .unwrap_or_else(PoisonError::into_inner);
        done(&control)
    }
}

impl Sink for HttpSink {
    fn record(&self, event: Event) {
        let Some(event) = WireEvent::from_event(event) else {
            return;
        };
        let mut queue = self.shared.lock_queue();
        if queue.len() >= self.shared.capacity {
            queue.pop_front();
            let before = self.shared.stats.dropped.fetch_add(1, Ordering::Relaxed);
            if before == 0 {
                self.shared.report(
                    true,
                    format!(
                        "the buffer holds its {} events: the oldest are dropped \
                         (reported once, counted in HttpSink::stats)",
                        self.shared.capacity
                    ),
                );
            }
        }
        queue.push_back(event);
        let full = queue.len() >= self.shared.batch_size;
        drop(queue);
        if full {
            self.shared.wake.notify_one();
        }
    }

    fn exposure_mode(&self) -> ExposureMode {
        ExposureMode::Summary
    }

    fn report_to(&self, reporter: ErrorReporter) {
        let _ = self.shared.reporter.set(reporter);
    }

    /// Sends what is buffered now and waits for it (at most the close
    /// deadline's time).
    fn flush(&self) -> Result<(), SinkError> {
        let asked = {
            let mut control = self.shared.lock_control();
            control.flush_asked += 1;
            control.flush_asked
        };
        self.shared.wake.notify_one();
        let limit = self.shared.close_deadline;
        if self
            .shared
            .wait(limit, |c| c.flushed >= asked || c.ended.is_some())
        {
            Ok(())
        } else {
            Err(SinkError::new(
                self.shared.what.clone(),
                true,
                format!("events not delivered within {limit:?}; still trying"),
            ))
        }
    }

    /// Delivers what is buffered within the close deadline; what it could not
    /// deliver (and did not spool) is the error.
    fn close(&self) -> Result<(), SinkError> {
        let deadline = self.shared.close_deadline;
        self.shared.begin_close(deadline);
        // The worker ends by the deadline; a little more for its last write.
        let ended = self
            .shared
            .wait(deadline + Duration::from_secs(1), |c| c.ended.is_some());
        let lost = self.shared.lock_control().ended;
        match (ended, lost) {
            (true, Some(0)) => Ok(()),
            (true, Some(lost)) => Err(SinkError::new(
                self.shared.what.clone(),
                false,
                format!("{lost} events could not be delivered before the close deadline"),
            )),
            _ => Err(SinkError::new(
                self.shared.what.clone(),
                false,
                "the delivery thread did not end in time",
            )),
        }
    }
}
