//! Exposures already recorded: a per-thread filter on the read path
//! ([`recently_seen`]) and the drain's bounded set ([`FirstSeen`]) that makes
//! summary mode's "one exposure per flag, variant and user" exact across
//! threads, up to its bound.

use std::cell::RefCell;
use std::collections::{HashSet, VecDeque};
use std::hash::{BuildHasher, Hasher};

/// Slots of the per-thread exposure filter (128 KiB of `u64`s per thread).
const FILTER_SLOTS: usize = 16_384;

thread_local! {
    static SEEN: RefCell<Box<[u64]>> = RefCell::new(vec![0u64; FILTER_SLOTS].into_boxed_slice());
}

/// A fixed hasher, so hashes are the same on every thread and every run.
pub(crate) static HASHER: std::sync::LazyLock<foldhash::fast::FixedState> =
    std::sync::LazyLock::new(|| foldhash::fast::FixedState::with_seed(0x5eed_f1a9));

/// The hash of one exposure's identity: (provider, flag, variant, targeting key).
#[inline]
pub(crate) fn exposure_hash(
    provider: u64,
    flag: &str,
    variant: Option<&str>,
    targeting_key: Option<&str>,
) -> u64 {
    let mut h = HASHER.build_hasher();
    h.write_u64(provider);
    h.write(flag.as_bytes());
    h.write_u8(0xff);
    h.write(variant.unwrap_or("").as_bytes());
    h.write_u8(0xff);
    h.write(targeting_key.unwrap_or("").as_bytes());
    h.finish() | 1 // never 0, the empty slot
}

/// Whether this thread recently recorded the exposure with this
/// [`exposure_hash`]. A direct-mapped table of hashes: O(1), no allocation,
/// no lock; a colliding entry evicts the older one (so an exposure may be
/// recorded again later, never lost).
#[inline]
pub(crate) fn recently_seen(hash: u64) -> bool {
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

/// The exposures the drain has passed on, by [`exposure_hash`]: at most
/// `capacity`, the oldest forgotten first.
#[derive(Debug)]
pub(crate) struct FirstSeen {
    capacity: usize,
    set: HashSet<u64>,
    order: VecDeque<u64>,
}

impl FirstSeen {
    pub(crate) fn new(capacity: usize) -> FirstSeen {
        FirstSeen {
            capacity: capacity.max(1),
            set: HashSet::new(),
            order: VecDeque::new(),
        }
    }

    /// Whether `hash` is new (and remembers it).
    pub(crate) fn insert(&mut self, hash: u64) -> bool {
        if !self.set.insert(hash) {
            return false;
        }
        self.order.push_back(hash);
        if self.order.len() > self.capacity
            && let Some(oldest) = self.order.pop_front()
        {
            self.set.remove(&oldest);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filter_remembers_recent_exposures_per_provider() {
        let h = |p, f, v, k| exposure_hash(p, f, Some(v), Some(k));
        assert!(!recently_seen(h(1, "f", "on", "u1")));
        assert!(recently_seen(h(1, "f", "on", "u1")));
        assert!(
            !recently_seen(h(1, "f", "off", "u1")),
            "another variant is a new exposure"
        );
        assert!(
            !recently_seen(h(1, "f", "on", "u2")),
            "another user is a new exposure"
        );
        assert!(
            !recently_seen(h(2, "f", "on", "u1")),
            "another provider is a new exposure"
        );
    }

    #[test]
    fn first_seen_is_bounded_and_forgets_the_oldest() {
        let mut seen = FirstSeen::new(2);
        assert!(seen.insert(1));
        assert!(!seen.insert(1));
        assert!(seen.insert(2));
        assert!(seen.insert(3), "over the bound, 1 is forgotten");
        assert!(seen.insert(1));
        assert!(!seen.insert(3));
    }
}
