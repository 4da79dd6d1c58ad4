//! Exposures already recorded: a filter in each thread's lane on the read
//! path ([`SeenFilter`]) and the drain's bounded set ([`FirstSeen`]) that makes
//! summary mode's "one exposure per flag, variant and user" exact across
//! threads, up to its bound.

use std::collections::{HashSet, VecDeque};
use std::hash::{BuildHasher, Hasher};

/// Sets of a lane's exposure filter; each is one cache line of
/// [`SET_WAYS`] 32-bit tags: 65,536 exposures in 256 KiB per thread and
/// provider.
const FILTER_SETS: usize = 4_096;

/// Tags in one set.
const SET_WAYS: usize = 16;

pub(crate) use flagyard_core::FIXED_HASHER as HASHER;

/// The hash of one exposure's identity: the flag and variant's
/// [`served_identity`](flagyard_core::served_identity) and the context's
/// [`targeting_key_hash`](flagyard_core::Context::targeting_key_hash) (which
/// an [`EvaluationContext`](flagyard_core::EvaluationContext) keeps computed,
/// so a recording read does not read the key's bytes).
#[inline]
pub(crate) fn exposure_hash(identity: u64, targeting_key_hash: u64) -> u64 {
    let mut h = HASHER.build_hasher();
    h.write_u64(identity);
    h.write_u64(targeting_key_hash);
    h.finish() | 1 // never 0 (the drain's "no hash")
}

/// The exposures one thread recorded recently for one provider (it lives in
/// the thread's lane). A 16-way set-associative table of 32-bit tags, one
/// cache line per set: O(1), no allocation, no lock; a full set forgets its
/// oldest tag (so an exposure may be recorded again later, never lost).
///
/// Every exposure a set cannot hold is recorded again on each of its reads,
/// so the sets are wide: of 30,000 exposures (10,000 users, three flags) 35
/// are (4-way sets of 16 bytes, placed by a bit that was always set: 14,895).
pub(crate) struct SeenFilter {
    sets: Box<[TagSet]>,
}

/// One set of tags, aligned to a cache line so a check reads one line.
#[derive(Clone, Copy)]
#[repr(align(64))]
struct TagSet([u32; SET_WAYS]);

impl SeenFilter {
    pub(crate) fn new() -> SeenFilter {
        SeenFilter {
            sets: vec![TagSet([0; SET_WAYS]); FILTER_SETS].into_boxed_slice(),
        }
    }

    /// The set and tag of a hash (a tag is never 0, the empty tag). Bit 0 of
    /// an [`exposure_hash`] is always set, so the set comes from the bits
    /// above it and the tag from the upper half.
    #[inline]
    fn place(hash: u64) -> (usize, u32) {
        (
            ((hash >> 1) as usize) & (FILTER_SETS - 1),
            ((hash >> 32) as u32) | 1,
        )
    }

    /// Whether the exposure with this [`exposure_hash`] was recorded
    /// recently; remembers it when not.
    #[inline]
    pub(crate) fn check(&mut self, hash: u64) -> bool {
        let (set, tag) = Self::place(hash);
        let tags = &mut self.sets[set].0;
        // Every way compared, no early exit: the compiler vectorizes it.
        if tags.iter().fold(false, |found, &t| found | (t == tag)) {
            return true;
        }
        tags.copy_within(..SET_WAYS - 1, 1);
        tags[0] = tag;
        false
    }

    /// Forgets an exposure (its event could not be queued: it is recorded
    /// again on its next read).
    #[inline]
    pub(crate) fn forget(&mut self, hash: u64) {
        let (set, tag) = Self::place(hash);
        for slot in self.sets[set].0.iter_mut().filter(|t| **t == tag) {
            *slot = 0;
        }
    }
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
    fn the_filter_remembers_recent_exposures_and_forgets_on_request() {
        let mut filter = SeenFilter::new();
        let h = |f: &str, v: &str, k: &str| {
            exposure_hash(
                flagyard_core::served_identity(f, Some(v)),
                flagyard_core::targeting_key_hash(Some(k)),
            )
        };
        assert!(!filter.check(h("f", "on", "u1")));
        assert!(filter.check(h("f", "on", "u1")));
        assert!(
            !filter.check(h("f", "off", "u1")),
            "another variant is a new exposure"
        );
        assert!(
            !filter.check(h("f", "on", "u2")),
            "another user is a new exposure"
        );
        filter.forget(h("f", "on", "u1"));
        assert!(!filter.check(h("f", "on", "u1")), "forgotten");
        // 1,000 users read in turn are all remembered (direct-mapped, some
        // pairs evicted each other on every read).
        let users: Vec<u64> = (0..1000)
            .map(|i| h("f", "on", &format!("user-{i}")))
            .collect();
        for &u in &users {
            filter.check(u);
        }
        assert!(users.iter().all(|&u| filter.check(u)));
    }

    #[test]
    fn thirty_thousand_exposures_are_nearly_all_remembered() {
        // 10,000 users and three flag variants, as a summary-mode provider
        // with three flags records them: each one a set cannot hold is
        // recorded again on every read. With 4-way sets placed by a hash
        // whose bit 0 is always set, 14,895 were; now 35.
        let mut filter = SeenFilter::new();
        let exposures: Vec<u64> = (0..10_000)
            .flat_map(|i| {
                let key = flagyard_core::targeting_key_hash(Some(&format!("user-{i}")));
                [("static", "on"), ("rule", "true"), ("split", "red")]
                    .map(|(f, v)| exposure_hash(flagyard_core::served_identity(f, Some(v)), key))
            })
            .collect();
        for &e in &exposures {
            filter.check(e);
        }
        let forgotten = exposures.iter().filter(|&&e| !filter.check(e)).count();
        assert!(
            forgotten < exposures.len() / 500,
            "{forgotten} of {} recorded again",
            exposures.len()
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
