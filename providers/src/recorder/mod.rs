//! Exposure events on the read path.
//!
//! Each reading thread records into its own bounded ring (one per provider), so
//! the hot path touches only memory its own core owns: no lock, no contended
//! atomic, no allocation for short strings. The provider's drain task empties
//! every thread's ring into the sink every 10 ms and on `close()`. A per-thread
//! filter drops exposures already recorded recently (same provider, flag,
//! variant and targeting key).

use std::cell::RefCell;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::SystemTime;

use arc_swap::ArcSwap;
use crossbeam_queue::ArrayQueue;

use flagyard_core::{Event, ExposureEvent, Reason, Sink};

/// How often exposure events are handed to the sink, and the resolution of
/// their timestamps.
pub(crate) const DRAIN_EVERY: std::time::Duration = std::time::Duration::from_millis(10);

/// Bytes kept inline; longer strings go to the heap. 47 covers flag keys,
/// variant names and UUID or e-mail targeting keys in the common case.
const INLINE: usize = 47;

/// A string copied without allocating when it is short.
#[derive(Debug, Clone)]
pub(crate) enum InlineStr {
    Inline { len: u8, bytes: [u8; INLINE] },
    Heap(Box<str>),
}

impl InlineStr {
    #[inline]
    pub(crate) fn new(s: &str) -> InlineStr {
        if s.len() <= INLINE {
            let mut bytes = [0u8; INLINE];
            bytes[..s.len()].copy_from_slice(s.as_bytes());
            InlineStr::Inline {
                len: s.len() as u8,
                bytes,
            }
        } else {
            InlineStr::Heap(Box::from(s))
        }
    }

    fn into_string(self) -> String {
        match self {
            // The bytes were copied from a `&str`, so they are UTF-8.
            InlineStr::Inline { len, bytes } => {
                String::from_utf8_lossy(&bytes[..usize::from(len)]).into_owned()
            }
            InlineStr::Heap(s) => s.into_string(),
        }
    }
}

/// One exposure as recorded on the read path.
#[derive(Debug, Clone)]
pub(crate) struct RawExposure {
    pub flag: InlineStr,
    pub variant: Option<InlineStr>,
    pub reason: Reason,
    pub targeting_key: Option<InlineStr>,
    pub at: SystemTime,
}

impl RawExposure {
    pub(crate) fn into_event(self) -> Event {
        Event::Exposure(ExposureEvent {
            flag: self.flag.into_string(),
            variant: self.variant.map(InlineStr::into_string),
            reason: self.reason,
            targeting_key: self.targeting_key.map(InlineStr::into_string),
            at: self.at,
        })
    }
}

/// One thread's ring for one provider.
struct Ring {
    queue: ArrayQueue<RawExposure>,
    dropped: AtomicU64,
    /// Set when the provider closes: the thread forgets the ring on its next record.
    closed: Arc<AtomicBool>,
}

thread_local! {
    /// This thread's rings, by provider id (usually one entry).
    static RINGS: RefCell<Vec<(u64, Arc<Ring>)>> = const { RefCell::new(Vec::new()) };
}

/// A provider's exposure rings, one per thread that has recorded.
pub(crate) struct Exposures {
    provider: u64,
    per_thread: usize,
    dedup: bool,
    rings: ArcSwap<Vec<Arc<Ring>>>,
    closed: Arc<AtomicBool>,
    /// Milliseconds since the epoch, refreshed by every drain.
    clock_ms: AtomicU64,
}

impl Exposures {
    pub(crate) fn new(provider: u64, per_thread: usize, dedup: bool) -> Exposures {
        Exposures {
            provider,
            per_thread: per_thread.max(1),
            dedup,
            rings: ArcSwap::from_pointee(Vec::new()),
            closed: Arc::new(AtomicBool::new(false)),
            clock_ms: AtomicU64::new(unix_millis()),
        }
    }

    /// Records one exposure (unless recently seen); `make` runs only when needed.
    #[inline]
    pub(crate) fn record(
        &self,
        flag: &str,
        variant: Option<&str>,
        targeting_key: Option<&str>,
        make: impl FnOnce() -> RawExposure,
    ) {
        if self.dedup && recently_seen(self.provider, flag, variant, targeting_key) {
            return;
        }
        RINGS.with(|rings| {
            let Ok(mut rings) = rings.try_borrow_mut() else {
                return;
            };
            let ring = match rings.iter().position(|(id, _)| *id == self.provider) {
                Some(i) => &rings[i].1,
                None => {
                    rings.retain(|(_, r)| !r.closed.load(Ordering::Relaxed));
                    let ring = Arc::new(Ring {
                        queue: ArrayQueue::new(self.per_thread),
                        dropped: AtomicU64::new(0),
                        closed: Arc::clone(&self.closed),
                    });
                    self.rings.rcu(|all| {
                        let mut next = Vec::clone(all);
                        next.push(Arc::clone(&ring));
                        next
                    });
                    rings.push((self.provider, ring));
                    &rings[rings.len() - 1].1
                }
            };
            // When this thread's ring is full, the newest event is dropped and
            // counted (without building it).
            if ring.queue.is_full() || ring.queue.push(make()).is_err() {
                ring.dropped.fetch_add(1, Ordering::Relaxed);
            }
        });
    }

    /// The exposure timestamp: the clock cached by the drain (10 ms
    /// resolution, one atomic load) — `SystemTime::now` cost ~20 ns per event.
    #[inline]
    pub(crate) fn clock(&self) -> SystemTime {
        SystemTime::UNIX_EPOCH
            + std::time::Duration::from_millis(self.clock_ms.load(Ordering::Relaxed))
    }

    /// Hands every recorded exposure to the sink, forgets the rings of threads
    /// that have ended, and refreshes the clock.
    pub(crate) fn drain(&self, sink: &dyn Sink) {
        self.clock_ms.store(unix_millis(), Ordering::Relaxed);
        let rings = self.rings.load();
        let mut ended = false;
        for ring in rings.iter() {
            while let Some(event) = ring.queue.pop() {
                sink.record(event.into_event());
            }
            // Only the registry holds it: its thread is gone.
            ended |= Arc::strong_count(ring) == 1;
        }
        drop(rings);
        if ended {
            self.rings.rcu(|all| {
                all.iter()
                    .filter(|r| Arc::strong_count(r) > 1 || !r.queue.is_empty())
                    .cloned()
                    .collect::<Vec<_>>()
            });
        }
    }

    /// Events dropped because a thread's ring was full.
    pub(crate) fn dropped(&self) -> u64 {
        self.rings
            .load()
            .iter()
            .map(|r| r.dropped.load(Ordering::Relaxed))
            .sum()
    }

    /// Marks the rings closed so threads let go of them.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
    }
}

/// Slots of the per-thread exposure filter (128 KiB of `u64`s per thread).
const FILTER_SLOTS: usize = 16_384;

thread_local! {
    static SEEN: RefCell<Box<[u64]>> = RefCell::new(vec![0u64; FILTER_SLOTS].into_boxed_slice());
}

/// A fixed hasher so one thread's filter gives the same answers every run.
static FILTER_HASHER: std::sync::LazyLock<foldhash::fast::FixedState> =
    std::sync::LazyLock::new(|| foldhash::fast::FixedState::with_seed(0x5eed_f1a9));

/// Whether this thread recently recorded the same (provider, flag, variant,
/// targeting key). A direct-mapped table of hashes: O(1), no allocation, no
/// lock; a colliding entry simply evicts the older one (so an exposure may be
/// recorded again later, never lost).
#[inline]
pub(crate) fn recently_seen(
    provider: u64,
    flag: &str,
    variant: Option<&str>,
    targeting_key: Option<&str>,
) -> bool {
    let mut h = FILTER_HASHER.build_hasher();
    h.write_u64(provider);
    h.write(flag.as_bytes());
    h.write_u8(0xff);
    h.write(variant.unwrap_or("").as_bytes());
    h.write_u8(0xff);
    h.write(targeting_key.unwrap_or("").as_bytes());
    let hash = h.finish() | 1; // never 0, the empty slot
    SEEN.with(|seen| {
        let Ok(mut seen) = seen.try_borrow_mut() else {
            return false;
        };
        let slot = &mut seen[(hash as usize) & (FILTER_SLOTS - 1)];
        if *slot == hash {
            true
        } else {
            *slot = hash;
            false
        }
    })
}

/// Milliseconds since the Unix epoch.
fn unix_millis() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filter_remembers_recent_exposures_per_provider() {
        assert!(!recently_seen(1, "f", Some("on"), Some("u1")));
        assert!(recently_seen(1, "f", Some("on"), Some("u1")));
        assert!(
            !recently_seen(1, "f", Some("off"), Some("u1")),
            "another variant is a new exposure"
        );
        assert!(
            !recently_seen(1, "f", Some("on"), Some("u2")),
            "another user is a new exposure"
        );
        assert!(
            !recently_seen(2, "f", Some("on"), Some("u1")),
            "another provider is a new exposure"
        );
    }

    #[test]
    fn short_and_long_strings_round_trip() {
        for s in [
            "",
            "on",
            "user-42",
            &"é".repeat(23),
            &"x".repeat(47),
            &"y".repeat(48),
            "ünïcödé-key",
        ] {
            let inline = InlineStr::new(s);
            assert_eq!(matches!(inline, InlineStr::Heap(_)), s.len() > INLINE);
            assert_eq!(inline.into_string(), s);
        }
    }
}
