//! Events on the read path: exposures (one per evaluation, or counted into
//! summaries), tracking events, and bots kept out of both.
//!
//! Each reading thread records into a lane of its own per provider: a bounded
//! ring of events and, in summary mode, a table of counts. The hot path
//! touches only memory its own core owns: no lock, no contended atomic, no
//! allocation for short strings. The provider's drain task empties every lane
//! into the sink every 10 ms, sends a summary every summary interval, and does
//! both on `close()`. Work that costs (building events, checking a tracking
//! event's size, de-duplicating across threads) happens in the drain.

mod bots;
mod seen;
mod slot;
mod summary;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use crossbeam_queue::ArrayQueue;
use rtrb::{Consumer, Producer, RingBuffer};

use flagyard_core::{
    Context, ErrorOrigin, Event, ExposureEvent, ExposureMode, ProviderError, Reason, Sink,
    TrackingDetails, TrackingEvent,
};

pub use bots::USER_AGENT_ATTRIBUTE;
pub(crate) use bots::{is_bot, prepare as prepare_bots};
use seen::{FirstSeen, SeenFilter, exposure_hash};
use slot::{Slot, Slots};
use summary::{CountKey, CountTable, Summaries, count_hash};

/// How often recorded events are handed to the sink, and the resolution of
/// their timestamps.
pub(crate) const DRAIN_EVERY: Duration = Duration::from_millis(10);

/// The longest tracking event name, in characters; longer ones are truncated.
pub const MAX_TRACKING_NAME: usize = 100;

/// The largest tracking details (value and fields) as JSON, in bytes; larger
/// ones are dropped.
pub const MAX_TRACKING_DETAILS: usize = 5_000;

/// Exposures the drain remembers to de-duplicate summary mode's first-seen
/// exposures across threads.
const FIRST_SEEN_CAPACITY: usize = 100_000;

/// One exposure as the drain reads it from a lane (see [`slot`] for how
/// the read path writes it).
#[derive(Debug)]
struct RawExposure {
    flag: String,
    variant: Option<String>,
    reason: Reason,
    targeting_key: Option<String>,
    version: u64,
    /// Milliseconds since the epoch.
    at: u64,
    /// Its [`exposure_hash`], for the drain's de-duplication (0: none).
    hash: u64,
}

/// One tracking event as the drain reads it from a lane.
#[derive(Debug)]
struct RawTracking {
    name: String,
    truncated: bool,
    targeting_key: Option<String>,
    details: TrackingDetails,
    /// Milliseconds since the epoch.
    at: u64,
}

#[derive(Debug)]
enum RawEvent {
    Exposure(RawExposure),
    Tracking(RawTracking),
}

/// One thread's lane for one provider: what the drain reads. The thread
/// writes its events through the ring's producer, which only it holds
/// ([`LocalLane`]): one writer and one reader, so a push is a plain write and
/// a release store, with no compare-and-swap.
struct Lane {
    /// The ring's reading end (only the drain locks it, under its own lock).
    events: Mutex<Consumer<Slot>>,
    /// Count tables this thread started, for the drain to adopt.
    new_tables: ArrayQueue<Arc<CountTable>>,
    dropped: AtomicU64,
    bots: AtomicU64,
    /// Evaluations not counted: no table could be started.
    uncounted: AtomicU64,
    /// Set when the provider closes: the thread forgets the lane on its next record.
    closed: Arc<AtomicBool>,
}

/// A lane as its thread holds it, with the count table it writes.
struct LocalLane {
    lane: Arc<Lane>,
    /// The ring's writing end.
    events: Producer<Slot>,
    table: Option<Arc<CountTable>>,
    seen: SeenFilter,
}

/// A thread's lane for one provider, as its thread-locals hold it.
type SharedLane = Rc<RefCell<LocalLane>>;

thread_local! {
    /// This thread's lanes, by provider id (usually one entry).
    static LANES: RefCell<Vec<(u64, SharedLane)>> = const { RefCell::new(Vec::new()) };
    /// The lane this thread recorded into last, by provider id: a record
    /// reaches it without a search, in a closure small enough for the
    /// thread-local access to inline (a closure doing the recording itself
    /// was not, and cost an indirect call and its captures' reloads).
    static LAST: Cell<Option<(u64, SharedLane)>> = const { Cell::new(None) };
}

/// What a provider does with bots (contexts whose `$userAgent` is a known bot).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BotPolicy {
    /// Their evaluations and tracking produce no events.
    pub filter: bool,
    /// They are served the code default.
    pub serve_default: bool,
}

/// How a provider records events (the builder's options).
#[derive(Debug, Clone, Copy)]
pub(crate) struct RecorderOptions {
    pub mode: ExposureMode,
    pub per_thread: usize,
    pub dedup: bool,
    pub bots: BotPolicy,
    pub summary_every: Duration,
}

/// Counts of what the provider's events went through (see
/// [`FlagyardProvider::event_stats`](crate::FlagyardProvider::event_stats)).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct EventStats {
    /// Events dropped because a reading thread's queue was full.
    pub dropped: u64,
    /// Evaluations and tracking calls of bots, which produced no event.
    pub bots_filtered: u64,
    /// Tracking events whose name was cut to 100 characters.
    pub names_truncated: u64,
    /// Tracking events dropped because their details were over 5,000 bytes.
    pub details_dropped: u64,
    /// Evaluations a summary could not count (a thread's count tables ran out).
    pub uncounted: u64,
}

/// The drain's state: it runs on one thread at a time.
struct DrainState {
    summaries: Summaries,
    first_seen: FirstSeen,
    next_summary: SystemTime,
    /// Problems found, reported once the drain's lock is released.
    problems: Vec<ProviderError>,
}

/// A provider's event recording: one lane per thread that has recorded.
pub(crate) struct Recorder {
    provider: u64,
    options: RecorderOptions,
    lanes: ArcSwap<Vec<Arc<Lane>>>,
    closed: Arc<AtomicBool>,
    /// Milliseconds since the epoch, refreshed by every drain.
    clock_ms: AtomicU64,
    names_truncated: AtomicU64,
    details_dropped: AtomicU64,
    drain: Mutex<DrainState>,
}

impl Recorder {
    pub(crate) fn new(provider: u64, mut options: RecorderOptions) -> Recorder {
        options.per_thread = options.per_thread.max(1);
        if options.bots.filter || options.bots.serve_default {
            bots::prepare();
        }
        let now = SystemTime::now();
        Recorder {
            provider,
            options,
            lanes: ArcSwap::from_pointee(Vec::new()),
            closed: Arc::new(AtomicBool::new(false)),
            clock_ms: AtomicU64::new(unix_millis(now)),
            names_truncated: AtomicU64::new(0),
            details_dropped: AtomicU64::new(0),
            drain: Mutex::new(DrainState {
                summaries: Summaries::new(),
                first_seen: FirstSeen::new(FIRST_SEEN_CAPACITY),
                next_summary: now + options.summary_every,
                problems: Vec::new(),
            }),
        }
    }

    /// The exposure mode.
    pub(crate) fn mode(&self) -> ExposureMode {
        self.options.mode
    }

    /// Records one served evaluation as the mode says. `identity` is the flag
    /// and variant's [`served_identity`](flagyard_core::served_identity);
    /// `version` the served document's (0: none).
    #[inline]
    pub(crate) fn exposure<C: Context + ?Sized>(
        &self,
        flag: &str,
        variant: Option<&str>,
        identity: u64,
        reason: Reason,
        ctx: &C,
        version: u64,
    ) {
        let mode = self.options.mode;
        if mode == ExposureMode::Off {
            return;
        }
        let filter_bots = self.options.bots.filter && is_bot(ctx);
        self.with_lane(|local| {
            if filter_bots {
                bump(&local.lane.bots);
                return;
            }
            let summary = mode == ExposureMode::Summary;
            if summary {
                self.count(local, identity, flag, variant, reason, version);
            }
            // Full mode without de-duplication hashes nothing.
            let hash = if summary || self.options.dedup {
                let hash = exposure_hash(identity, ctx.targeting_key_hash());
                if local.seen.check(hash) {
                    return;
                }
                hash
            } else {
                0
            };
            let queued = self.push(local, || {
                Slots::exposure(
                    flag,
                    variant,
                    ctx.targeting_key(),
                    reason,
                    version,
                    self.clock_ms(),
                    if summary { hash } else { 0 },
                )
            });
            if !queued && hash != 0 {
                // Not queued: the next read records it again.
                local.seen.forget(hash);
            }
        });
    }

    /// Records one tracking event (its name cut to [`MAX_TRACKING_NAME`]
    /// characters; its size is checked by the drain).
    #[inline]
    pub(crate) fn tracking<C: Context + ?Sized>(
        &self,
        name: &str,
        ctx: &C,
        details: TrackingDetails,
    ) {
        let filter_bots = self.options.bots.filter && is_bot(ctx);
        // At most 100 bytes is at most 100 characters: no need to walk them.
        let (name, truncated) = if name.len() <= MAX_TRACKING_NAME {
            (name, false)
        } else {
            match name.char_indices().nth(MAX_TRACKING_NAME) {
                Some((end, _)) => (&name[..end], true),
                None => (name, false),
            }
        };
        self.with_lane(|local| {
            if filter_bots {
                bump(&local.lane.bots);
                return;
            }
            self.push(local, || {
                Slots::tracking(
                    name,
                    truncated,
                    ctx.targeting_key(),
                    details,
                    self.clock_ms(),
                )
            });
        });
    }

    /// Runs `f` on this thread's lane for this provider (made on first use).
    /// Nothing runs while the thread is already inside (a sink reading a
    /// flag) or its thread-locals are being destroyed.
    #[inline]
    fn with_lane(&self, f: impl FnOnce(&mut LocalLane)) {
        let provider = self.provider;
        let last = LAST
            .try_with(|last| {
                let cached = last.take();
                let lane = match &cached {
                    Some((id, lane)) if *id == provider => Some(Rc::clone(lane)),
                    _ => None,
                };
                last.set(cached);
                lane
            })
            .ok()
            .flatten();
        let Some(lane) = last.or_else(|| self.find_lane()) else {
            return;
        };
        if let Ok(mut local) = lane.try_borrow_mut() {
            f(&mut local);
        }
    }

    /// This thread's lane for this provider (made on first use), remembered
    /// as the thread's last.
    #[cold]
    #[inline(never)]
    fn find_lane(&self) -> Option<SharedLane> {
        let lane = LANES
            .try_with(|lanes| {
                let mut lanes = lanes.try_borrow_mut().ok()?;
                let lane = match lanes.iter().find(|(id, _)| *id == self.provider) {
                    Some((_, lane)) => Rc::clone(lane),
                    None => self.new_lane(&mut lanes),
                };
                Some(lane)
            })
            .ok()
            .flatten()?;
        let remembered = Rc::clone(&lane);
        // The lane it replaces may be dropped here: after the registry's
        // borrow above ended.
        let _ = LAST.try_with(move |last| last.set(Some((self.provider, remembered))));
        Some(lane)
    }

    fn new_lane(&self, lanes: &mut Vec<(u64, SharedLane)>) -> SharedLane {
        lanes.retain(|(_, l)| {
            l.try_borrow()
                .map_or(true, |l| !l.lane.closed.load(Ordering::Relaxed))
        });
        let (producer, consumer) = RingBuffer::new(self.options.per_thread);
        let lane = Arc::new(Lane {
            events: Mutex::new(consumer),
            new_tables: ArrayQueue::new(4),
            dropped: AtomicU64::new(0),
            bots: AtomicU64::new(0),
            uncounted: AtomicU64::new(0),
            closed: Arc::clone(&self.closed),
        });
        self.lanes.rcu(|all| {
            let mut next = Vec::clone(all);
            next.push(Arc::clone(&lane));
            next
        });
        let local = Rc::new(RefCell::new(LocalLane {
            lane,
            events: producer,
            table: None,
            seen: SeenFilter::new(),
        }));
        lanes.push((self.provider, Rc::clone(&local)));
        local
    }

    /// Counts one evaluation in this thread's table (starting one when there
    /// is none or it is full).
    #[inline]
    fn count(
        &self,
        local: &mut LocalLane,
        identity: u64,
        flag: &str,
        variant: Option<&str>,
        reason: Reason,
        version: u64,
    ) {
        let hash = count_hash(identity, reason, version);
        let key = || CountKey {
            flag: flag.into(),
            variant: variant.map(Into::into),
            reason,
            version,
        };
        if let Some(table) = &local.table
            && table.add(hash, key)
        {
            return;
        }
        self.start_table(local, hash, key);
    }

    #[cold]
    fn start_table(&self, local: &mut LocalLane, hash: u64, key: impl FnOnce() -> CountKey) {
        let table = Arc::new(CountTable::new());
        if local.lane.new_tables.push(Arc::clone(&table)).is_err() {
            // The drain has not adopted the last ones yet: keep the old table.
            bump(&local.lane.uncounted);
            return;
        }
        if let Some(old) = local.table.replace(Arc::clone(&table)) {
            old.retire();
        }
        table.add(hash, key);
    }

    /// Pushes the event `make` builds; when the lane is full the event is
    /// dropped (without building it when not one slot is free) and counted.
    #[inline]
    fn push<'a, const N: usize>(
        &self,
        local: &mut LocalLane,
        make: impl FnOnce() -> Slots<'a, N>,
    ) -> bool {
        if local.events.is_full() || !make().push(&mut local.events) {
            bump(&local.lane.dropped);
            return false;
        }
        true
    }

    /// The event timestamp in milliseconds since the epoch: the clock cached
    /// by the drain (10 ms resolution, one atomic load) — `SystemTime::now`
    /// cost ~20 ns per event.
    #[inline]
    fn clock_ms(&self) -> u64 {
        self.clock_ms.load(Ordering::Relaxed)
    }

    /// Hands every recorded event to the sink, sends the summary when its
    /// interval is over (or `last`), forgets the lanes of threads that have
    /// ended, and refreshes the clock. Problems (a truncated name, dropped
    /// details) are reported through `report`, once each per provider; an
    /// exposure's flag set comes from `flag_set_id` (the document served
    /// now, so the read path never looks it up).
    pub(crate) fn drain(
        &self,
        sink: &dyn Sink,
        last: bool,
        report: &dyn Fn(&ProviderError),
        flag_set_id: &dyn Fn(&str) -> Option<String>,
    ) {
        let now = SystemTime::now();
        self.clock_ms.store(unix_millis(now), Ordering::Relaxed);
        let mut drain = self.drain.lock().unwrap_or_else(PoisonError::into_inner);
        let lanes = self.lanes.load();
        let mut ended = false;
        for lane in lanes.iter() {
            while let Some(table) = lane.new_tables.pop() {
                drain.summaries.adopt(table);
            }
            let mut events = lane.events.lock().unwrap_or_else(PoisonError::into_inner);
            while let Some(event) = slot::pop(&mut events) {
                if let Some(event) = self.pass_on(&mut drain, event, flag_set_id) {
                    sink.record(event);
                }
            }
            drop(events);
            // Only the registry holds it: its thread is gone.
            ended |= Arc::strong_count(lane) == 1;
        }
        drop(lanes);
        if ended {
            self.lanes.rcu(|all| {
                all.iter()
                    .filter(|l| {
                        Arc::strong_count(l) > 1
                            || !l
                                .events
                                .lock()
                                .unwrap_or_else(PoisonError::into_inner)
                                .is_empty()
                            || !l.new_tables.is_empty()
                    })
                    .cloned()
                    .collect::<Vec<_>>()
            });
        }
        if self.options.mode == ExposureMode::Summary && (last || now >= drain.next_summary) {
            drain.next_summary = now + self.options.summary_every;
            if let Some(summary) = drain.summaries.take(now) {
                sink.record(Event::Summary(summary));
            }
        }
        let problems = std::mem::take(&mut drain.problems);
        drop(drain);
        for problem in &problems {
            report(problem);
        }
    }

    /// What the events went through so far.
    pub(crate) fn stats(&self) -> EventStats {
        let mut stats = EventStats {
            names_truncated: self.names_truncated.load(Ordering::Relaxed),
            details_dropped: self.details_dropped.load(Ordering::Relaxed),
            ..EventStats::default()
        };
        for lane in self.lanes.load().iter() {
            stats.dropped += lane.dropped.load(Ordering::Relaxed);
            stats.bots_filtered += lane.bots.load(Ordering::Relaxed);
            stats.uncounted += lane.uncounted.load(Ordering::Relaxed);
        }
        stats
    }

    /// Marks the lanes closed so threads let go of them.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
    }
}

impl Recorder {
    /// The event to pass on, or `None` (a repeat first-seen exposure, or
    /// tracking details over the limit).
    fn pass_on(
        &self,
        drain: &mut DrainState,
        event: RawEvent,
        flag_set_id: &dyn Fn(&str) -> Option<String>,
    ) -> Option<Event> {
        match event {
            RawEvent::Exposure(e) => {
                if e.hash != 0 && !drain.first_seen.insert(e.hash) {
                    return None;
                }
                let set_id = flag_set_id(&e.flag);
                Some(Event::Exposure(ExposureEvent {
                    flag_set_id: set_id,
                    flag: e.flag,
                    variant: e.variant,
                    reason: e.reason,
                    targeting_key: e.targeting_key,
                    version: (e.version > 0).then_some(e.version),
                    at: from_millis(e.at),
                }))
            }
            RawEvent::Tracking(t) => {
                let size = details_size(&t.details);
                if size > MAX_TRACKING_DETAILS {
                    if self.details_dropped.fetch_add(1, Ordering::Relaxed) == 0 {
                        drain.problems.push(ProviderError::new(
                            ErrorOrigin::Sink,
                            false,
                            format!(
                                "tracking event {:?}: details are {size} bytes as JSON, over \
                                 the {MAX_TRACKING_DETAILS}-byte limit; the event was dropped \
                                 (reported once, counted in event_stats)",
                                t.name
                            ),
                        ));
                    }
                    return None;
                }
                if t.truncated && self.names_truncated.fetch_add(1, Ordering::Relaxed) == 0 {
                    drain.problems.push(ProviderError::new(
                        ErrorOrigin::Sink,
                        false,
                        format!(
                            "tracking event name over {MAX_TRACKING_NAME} characters, \
                             truncated to {:?} (reported once, counted in event_stats)",
                            t.name
                        ),
                    ));
                }
                Some(Event::Tracking(TrackingEvent {
                    name: t.name,
                    targeting_key: t.targeting_key,
                    details: t.details,
                    at: from_millis(t.at),
                }))
            }
        }
    }
}

/// The size of tracking details as JSON (`{"value": v, ...fields}`), counted
/// without building the text.
fn details_size(details: &TrackingDetails) -> usize {
    #[derive(Default)]
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count::default();
    let written =
        serde_json::to_writer(&mut count, &details.fields).and_then(|()| match details.value {
            // `"value":` and a comma beside the fields.
            Some(value) => serde_json::to_writer(&mut count, &value).map(|()| count.0 += 9),
            None => Ok(()),
        });
    match written {
        Ok(()) => count.0,
        Err(_) => usize::MAX,
    }
}

/// A counter only its thread writes: a plain load and store.
#[inline]
fn bump(counter: &AtomicU64) {
    counter.store(counter.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
}

/// A time from milliseconds since the Unix epoch.
fn from_millis(ms: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_millis(ms)
}

/// Milliseconds since the Unix epoch.
fn unix_millis(at: SystemTime) -> u64 {
    at.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
