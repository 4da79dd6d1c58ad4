//! Evaluations counted per (flag, variant, reason, version) for summary
//! events, without a lock or a contended atomic on the read path.
//!
//! Each reading thread counts into a [`CountTable`] of its own. Only that
//! thread writes a slot's count (a plain load and store, no read-modify-write
//! instruction) and the counts only grow, so the drain reads them whenever it
//! likes and passes on the growth since its last reading. A table is never
//! cleared: when it fills up, its thread retires it and starts a new one, and
//! the drain forgets a retired table after its last reading.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

use flagyard_core::{Reason, SummaryCount, SummaryEvent};

/// Slots of one thread's table; it is retired half full.
pub(crate) const TABLE_SLOTS: usize = 2048;

/// Slots looked at for one key before the table counts as full.
const PROBES: usize = 8;

/// What one slot counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CountKey {
    pub flag: Box<str>,
    pub variant: Option<Box<str>>,
    pub reason: Reason,
    pub version: u64,
}

/// The hash of a [`CountKey`] from its flag and variant's
/// [`served_identity`](flagyard_core::served_identity), never 0 (the empty
/// slot).
#[inline]
pub(crate) fn count_hash(identity: u64, reason: Reason, version: u64) -> u64 {
    let mut h = super::seen::HASHER.build_hasher();
    h.write_u64(identity);
    h.write_u64(version.rotate_left(8) ^ reason as u64);
    h.finish() | 1
}

#[derive(Debug, Default)]
struct Slot {
    /// The key's hash; 0 while the slot is empty. Written once, by the owner.
    hash: AtomicU64,
    /// Evaluations counted; written only by the owner, only upwards.
    count: AtomicU64,
    /// The count the drain has passed on; written only by the drain.
    drained: AtomicU64,
    /// The key, set by the owner before `hash`.
    key: OnceLock<CountKey>,
}

/// One thread's counts for one provider.
#[derive(Debug)]
pub(crate) struct CountTable {
    slots: Box<[Slot]>,
    /// Slots in use; written only by the owner.
    used: AtomicUsize,
    /// The owner has moved on to a new table and will not write this one again.
    retired: AtomicBool,
}

impl CountTable {
    pub(crate) fn new() -> CountTable {
        CountTable {
            slots: (0..TABLE_SLOTS).map(|_| Slot::default()).collect(),
            used: AtomicUsize::new(0),
            retired: AtomicBool::new(false),
        }
    }

    /// Counts one evaluation of the key with `hash` (`key` builds it the first
    /// time). Only the owning thread calls this. `false`: the table is full;
    /// the caller retires it and counts in a new one.
    #[inline]
    pub(crate) fn add(&self, hash: u64, key: impl FnOnce() -> CountKey) -> bool {
        let mask = TABLE_SLOTS - 1;
        // Bit 0 of the hash is always set: the slot comes from the bits above it.
        let mut i = ((hash >> 1) as usize) & mask;
        for _ in 0..PROBES {
            let slot = &self.slots[i];
            let seen = slot.hash.load(Ordering::Relaxed);
            if seen == hash {
                let count = slot.count.load(Ordering::Relaxed);
                slot.count.store(count + 1, Ordering::Release);
                return true;
            }
            if seen == 0 {
                let used = self.used.load(Ordering::Relaxed);
                if used >= TABLE_SLOTS / 2 {
                    return false;
                }
                self.used.store(used + 1, Ordering::Relaxed);
                // The owner is the only writer: the slot's key is unset.
                let _ = slot.key.set(key());
                slot.count.store(1, Ordering::Release);
                slot.hash.store(hash, Ordering::Release);
                return true;
            }
            i = (i + 1) & mask;
        }
        false
    }

    /// Marks the table as no longer written.
    pub(crate) fn retire(&self) {
        self.retired.store(true, Ordering::Release);
    }
}

/// The drain's side: the tables it reads and the counts of the interval so far.
#[derive(Debug)]
pub(crate) struct Summaries {
    tables: Vec<Arc<CountTable>>,
    /// Counts since `start`, by key hash (the same key counted on several
    /// threads merges here).
    counts: HashMap<u64, (CountKey, u64)>,
    start: SystemTime,
}

impl Summaries {
    pub(crate) fn new() -> Summaries {
        Summaries {
            tables: Vec::new(),
            counts: HashMap::new(),
            start: SystemTime::now(),
        }
    }

    /// A table a thread started.
    pub(crate) fn adopt(&mut self, table: Arc<CountTable>) {
        self.tables.push(table);
    }

    /// Reads every table's growth into the interval's counts, and forgets the
    /// tables no thread writes any more.
    pub(crate) fn collect(&mut self) {
        let counts = &mut self.counts;
        self.tables.retain(|table| {
            // Retired, or its thread has ended (only this list holds it): the
            // reading below is the last. The fence pairs with the owner's
            // release (the store of `retired`, or the `Arc`'s drop).
            let last = table.retired.load(Ordering::Acquire) || Arc::strong_count(table) == 1;
            std::sync::atomic::fence(Ordering::Acquire);
            for slot in table.slots.iter() {
                let hash = slot.hash.load(Ordering::Acquire);
                if hash == 0 {
                    continue;
                }
                let count = slot.count.load(Ordering::Acquire);
                let drained = slot.drained.load(Ordering::Relaxed);
                if count > drained
                    && let Some(key) = slot.key.get()
                {
                    slot.drained.store(count, Ordering::Relaxed);
                    counts.entry(hash).or_insert_with(|| (key.clone(), 0)).1 += count - drained;
                }
            }
            !last
        });
    }

    /// The interval's summary (`None` when nothing was counted); starts the next.
    pub(crate) fn take(&mut self, now: SystemTime) -> Option<SummaryEvent> {
        self.collect();
        let start = std::mem::replace(&mut self.start, now);
        if self.counts.is_empty() {
            return None;
        }
        let mut counts: Vec<SummaryCount> = self
            .counts
            .drain()
            .map(|(_, (key, count))| SummaryCount {
                flag: key.flag.into_string(),
                variant: key.variant.map(str::into_string),
                reason: key.reason,
                version: (key.version > 0).then_some(key.version),
                count,
            })
            .collect();
        counts.sort_by(|a, b| (&a.flag, &a.variant).cmp(&(&b.flag, &b.variant)));
        Some(SummaryEvent {
            start,
            end: now,
            counts,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(flag: &str) -> CountKey {
        CountKey {
            flag: flag.into(),
            variant: Some("on".into()),
            reason: Reason::Static,
            version: 3,
        }
    }

    #[test]
    fn counts_from_several_tables_merge_and_are_passed_on_once() {
        let (a, b) = (Arc::new(CountTable::new()), Arc::new(CountTable::new()));
        let mut summaries = Summaries::new();
        summaries.adopt(Arc::clone(&a));
        summaries.adopt(Arc::clone(&b));
        let h = count_hash(
            flagyard_core::served_identity("f", Some("on")),
            Reason::Static,
            3,
        );
        for _ in 0..5 {
            assert!(a.add(h, || key("f")));
        }
        assert!(b.add(h, || key("f")));
        summaries.collect();
        assert!(a.add(h, || key("f")));
        let summary = summaries.take(SystemTime::now()).expect("counted");
        assert_eq!(summary.counts.len(), 1);
        assert_eq!(summary.counts[0].count, 7);
        assert_eq!(summary.counts[0].version, Some(3));
        assert!(
            summaries.take(SystemTime::now()).is_none(),
            "nothing new since the last summary"
        );
    }

    #[test]
    fn a_full_table_says_so_and_a_retired_one_is_read_a_last_time() {
        let table = Arc::new(CountTable::new());
        let mut summaries = Summaries::new();
        summaries.adopt(Arc::clone(&table));
        let mut added = 0;
        for i in 0..TABLE_SLOTS {
            let flag = format!("flag-{i}");
            if !table.add(
                count_hash(
                    flagyard_core::served_identity(&flag, None),
                    Reason::Default,
                    0,
                ),
                || key(&flag),
            ) {
                break;
            }
            added += 1;
        }
        assert!(
            added <= TABLE_SLOTS / 2 && added > TABLE_SLOTS / 4,
            "{added}"
        );
        table.retire();
        let summary = summaries.take(SystemTime::now()).expect("counted");
        assert_eq!(summary.counts.len(), added);
        assert!(summaries.tables.is_empty(), "a retired table is forgotten");
    }
}
