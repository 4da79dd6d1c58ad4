//! The delivery thread: batches from the spool (oldest first) or the queue,
//! gzip'd and posted; retried with the sources' backoff until delivered,
//! refused, or the close deadline.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use flagyard_core::event_json::{BatchAnswer, EventBatch, WireEvent};
use reqwest::header::{CONTENT_ENCODING, CONTENT_TYPE};

use super::Shared;
use super::spool::Spool;
use crate::sources::{Backoff, ReconnectPolicy, is_auth_status, retry_after};

/// What the worker needs besides the shared state.
#[derive(Debug)]
pub(super) struct Settings {
    pub url: String,
    pub interval: Duration,
    pub reconnect: ReconnectPolicy,
}

/// One batch on its way.
struct Batch {
    body: Vec<u8>,
    events: usize,
    /// Its spool file, when spooled.
    file: Option<PathBuf>,
}

enum Outcome {
    /// The collector has the batch (or refused it for good): it is done.
    Done,
    /// Try again after this long.
    Retry(Duration),
}

/// Runs until the sink closes; records what could not be delivered.
pub(super) fn run(
    shared: Arc<Shared>,
    client: reqwest::Client,
    spool: Option<Spool>,
    settings: Settings,
) {
    let lost = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(
            Worker {
                backoff: Backoff::new(settings.reconnect.clone()),
                shared: Arc::clone(&shared),
                client,
                spool,
                settings,
                failing: false,
            }
            .run(),
        ),
        Err(e) => {
            shared.report(false, format!("cannot start its runtime: {e}"));
            shared.lock_queue().len() as u64
        }
    };
    shared.lock_control().ended = Some(lost);
    shared.progress.notify_all();
}

struct Worker {
    shared: Arc<Shared>,
    client: reqwest::Client,
    spool: Option<Spool>,
    settings: Settings,
    backoff: Backoff,
    /// The last attempt failed (an outage is reported once).
    failing: bool,
}

impl Worker {
    async fn run(mut self) -> u64 {
        let mut pending: Option<Batch> = None;
        let mut next_send = Instant::now() + self.settings.interval;
        loop {
            let (closing, flushing) = {
                let c = self.shared.lock_control();
                (c.closing, c.flush_asked > c.flushed)
            };
            // Full batches wait on disk while older ones are sent, so memory
            // holds about one batch whatever the backlog.
            self.spool_full_batches();
            if pending.is_none() {
                let due = closing.is_some() || flushing || Instant::now() >= next_send;
                pending = self.next_batch(due);
                if due {
                    // Sent, or nothing to send: the interval starts again.
                    next_send = Instant::now() + self.settings.interval;
                }
            }
            let Some(batch) = pending.take() else {
                self.answer_flushes();
                if closing.is_some() {
                    return 0;
                }
                // At `next_send` the loop sends what the queue holds.
                tokio::select! {
                    () = self.shared.wake.notified() => {}
                    () = tokio::time::sleep_until(next_send.into()) => {}
                }
                continue;
            };
            let closing = self.shared.lock_control().closing;
            let attempt = self.send(&batch);
            let outcome = match closing {
                // Closing: no attempt outlives the deadline.
                Some(deadline) => tokio::time::timeout_at(deadline.into(), attempt)
                    .await
                    .unwrap_or(Outcome::Retry(Duration::ZERO)),
                None => attempt.await,
            };
            match outcome {
                Outcome::Done => {
                    self.done(&batch);
                    self.shared.progress.notify_all();
                }
                Outcome::Retry(delay) => {
                    self.shared.stats.retries.fetch_add(1, Ordering::Relaxed);
                    // Meanwhile full batches wait on disk, not in memory.
                    self.spool_full_batches();
                    let deadline = self.shared.lock_control().closing;
                    if let Some(deadline) = deadline
                        && Instant::now() + delay >= deadline
                    {
                        return self.give_up(batch);
                    }
                    pending = Some(batch);
                    self.sleep(delay).await;
                }
            }
        }
    }

    /// The next batch to send: the spool's oldest, else one from the queue.
    fn next_batch(&mut self, due: bool) -> Option<Batch> {
        self.spooled_batch().or_else(|| self.queued_batch(due))
    }

    /// The spool's oldest batch.
    fn spooled_batch(&self) -> Option<Batch> {
        let spool = self.spool.as_ref()?;
        match spool.oldest() {
            Ok(spooled) => spooled.map(|s| Batch {
                body: s.body,
                events: s.events,
                file: Some(s.path),
            }),
            Err(e) => {
                self.shared.report(
                    false,
                    format!("cannot read the spool {}: {e}", spool.dir().display()),
                );
                None
            }
        }
    }

    /// Up to a batch of the queue, when it holds a full batch or `due`;
    /// written to the spool first when there is one.
    fn queued_batch(&mut self, due: bool) -> Option<Batch> {
        let events = {
            let mut queue = self.shared.lock_queue();
            if queue.is_empty() || (queue.len() < self.shared.batch_size && !due) {
                return None;
            }
            let n = queue.len().min(self.shared.batch_size);
            queue.drain(..n).collect::<Vec<_>>()
        };
        let count = events.len();
        self.shared
            .stats
            .outside_queue
            .fetch_add(count as u64, Ordering::Relaxed);
        let body = match encode(events) {
            Ok(body) => body,
            Err(e) => {
                self.shared.report(
                    false,
                    format!("cannot encode a batch of {count} events: {e}"),
                );
                self.lost(count);
                return None;
            }
        };
        let file = self.spool_batch(&body, count);
        Some(Batch {
            body,
            events: count,
            file,
        })
    }

    /// Writes a batch to the spool (when there is one); its file.
    fn spool_batch(&mut self, body: &[u8], events: usize) -> Option<PathBuf> {
        let spool = self.spool.as_mut()?;
        match spool.push(body, events) {
            Ok((file, forgotten)) => {
                if forgotten > 0 {
                    self.shared.report(
                        true,
                        format!("the spool is over its budget: {forgotten} older events dropped"),
                    );
                    self.lost(forgotten);
                }
                Some(file)
            }
            Err(e) => {
                let dir = spool.dir().display().to_string();
                self.shared.report(
                    true,
                    format!("cannot write the spool {dir}: {e}; the batch stays in memory"),
                );
                None
            }
        }
    }

    /// While the collector is away, moves full batches from the queue to the
    /// spool (when there is one).
    fn spool_full_batches(&mut self) {
        if self.spool.is_none() {
            return;
        }
        while self.shared.lock_queue().len() >= self.shared.batch_size {
            let Some(batch) = self.queued_batch(false) else {
                return;
            };
            if batch.file.is_none() {
                // The spool cannot be written: keep the events in memory.
                return self.unspool(batch);
            }
        }
    }

    /// A batch that could not be spooled goes back to the queue's front.
    fn unspool(&mut self, batch: Batch) {
        let Ok(EventBatch { events, .. }) = decode(&batch.body) else {
            return self.lost(batch.events);
        };
        let mut queue = self.shared.lock_queue();
        for event in events.into_iter().rev() {
            queue.push_front(event);
        }
        self.shared
            .stats
            .outside_queue
            .fetch_sub(batch.events as u64, Ordering::Relaxed);
    }

    async fn send(&mut self, batch: &Batch) -> Outcome {
        let response = self
            .client
            .post(&self.settings.url)
            .header(CONTENT_TYPE, "application/json")
            .header(CONTENT_ENCODING, "gzip")
            .body(batch.body.clone())
            .send()
            .await;
        let response = match response {
            Ok(response) => response,
            Err(e) => return self.failed(format!("the collector is unreachable: {e}"), None),
        };
        let status = response.status().as_u16();
        match status {
            200..=299 => {
                let body = response.bytes().await.unwrap_or_default();
                let answer: BatchAnswer = serde_json::from_slice(&body).unwrap_or_default();
                let refused = answer.refused.len().min(batch.events);
                let s = &self.shared.stats;
                s.delivered
                    .fetch_add((batch.events - refused) as u64, Ordering::Relaxed);
                s.refused.fetch_add(refused as u64, Ordering::Relaxed);
                if refused > 0 {
                    let reasons: Vec<String> = answer
                        .refused
                        .iter()
                        .take(3)
                        .map(|r| format!("#{}: {}", r.index, r.reason))
                        .collect();
                    self.shared.report(
                        false,
                        format!(
                            "the collector refused {refused} of {} events ({})",
                            batch.events,
                            reasons.join("; ")
                        ),
                    );
                }
                if self.failing {
                    tracing::info!(sink = %self.shared.what, "the collector takes events again");
                }
                self.failing = false;
                self.backoff.connected();
                Outcome::Done
            }
            429 | 503 => {
                let after = retry_after(response.headers()).map(Duration::from_secs);
                self.failed(format!("the collector answered {status}"), after)
            }
            408 | 500..=599 => self.failed(format!("the collector answered {status}"), None),
            s if is_auth_status(s) => {
                let delay = self.backoff.refused();
                self.failed(
                    format!("the collector refused the credentials ({s})"),
                    Some(delay),
                )
            }
            _ => {
                let body = response.text().await.unwrap_or_default();
                self.shared.report(
                    false,
                    format!(
                        "the collector refused a batch of {} events ({status}: {}); it is dropped",
                        batch.events,
                        body.chars().take(300).collect::<String>()
                    ),
                );
                self.shared
                    .stats
                    .dropped
                    .fetch_add(batch.events as u64, Ordering::Relaxed);
                Outcome::Done
            }
        }
    }

    /// A failed attempt: reported once per outage; retried after `after` or
    /// the backoff's delay.
    fn failed(&mut self, why: String, after: Option<Duration>) -> Outcome {
        let delay = after.unwrap_or_else(|| self.backoff.failed());
        if !self.failing {
            self.failing = true;
            self.shared
                .report(true, format!("{why}; retrying (reported once per outage)"));
        }
        Outcome::Retry(delay)
    }

    /// A batch the collector has (or refused): out of the spool and the count.
    fn done(&mut self, batch: &Batch) {
        if let (Some(spool), Some(file)) = (&self.spool, &batch.file)
            && let Err(e) = spool.remove(file)
        {
            self.shared
                .report(false, format!("cannot remove {}: {e}", file.display()));
        }
        self.shared
            .stats
            .outside_queue
            .fetch_sub(batch.events as u64, Ordering::Relaxed);
    }

    /// Events lost for good.
    fn lost(&self, events: usize) {
        let s = &self.shared.stats;
        s.dropped.fetch_add(events as u64, Ordering::Relaxed);
        s.outside_queue.fetch_sub(events as u64, Ordering::Relaxed);
    }

    /// Flushes are answered when nothing is left to send.
    fn answer_flushes(&self) {
        let mut control = self.shared.lock_control();
        if control.flushed < control.flush_asked {
            control.flushed = control.flush_asked;
            drop(control);
            self.shared.progress.notify_all();
        }
    }

    /// Sleeps `delay`, or less when the sink closes meanwhile; a batch that
    /// fills up meanwhile goes to the spool (so memory holds one batch while
    /// the collector is away).
    async fn sleep(&mut self, delay: Duration) {
        let until = Instant::now() + delay;
        loop {
            let closing = self.shared.lock_control().closing;
            let end = closing.map_or(until, |deadline| deadline.min(until));
            tokio::select! {
                () = tokio::time::sleep_until(end.into()) => return,
                () = self.shared.wake.notified() => self.spool_full_batches(),
            }
            if Instant::now() >= end {
                return;
            }
        }
    }

    /// The close deadline has come with `batch` undelivered: what is left
    /// goes to the spool when there is one, else it is lost. Returns the
    /// events lost.
    fn give_up(mut self, batch: Batch) -> u64 {
        let mut left = vec![batch];
        while let Some(next) = self.queued_batch(true) {
            left.push(next);
        }
        let (mut waiting, mut lost) = (0, 0);
        for mut batch in left {
            if batch.file.is_none() && self.spool.is_some() {
                batch.file = self.spool_batch(&batch.body, batch.events);
            }
            if batch.file.is_some() {
                waiting += batch.events;
            } else {
                lost += batch.events;
                self.lost(batch.events);
            }
        }
        if waiting > 0 {
            self.shared.report(
                true,
                format!("closed with the collector away: {waiting} events wait in the spool for the next start"),
            );
        }
        if lost > 0 {
            self.shared.report(
                false,
                format!("closed with the collector away: {lost} events were not delivered"),
            );
        }
        lost as u64
    }
}

/// A batch as sent: `EventBatch` JSON, gzip'd, with a new batch id.
fn encode(events: Vec<WireEvent>) -> std::io::Result<Vec<u8>> {
    let batch = EventBatch {
        batch_id: format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..)),
        events,
    };
    let json = serde_json::to_vec(&batch)?;
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gzip.write_all(&json)?;
    gzip.finish()
}

/// A batch's events back from its body.
fn decode(body: &[u8]) -> std::io::Result<EventBatch> {
    let mut json = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(body), &mut json)?;
    Ok(serde_json::from_slice(&json)?)
}
