//! [`Slot`]: one cache line of a thread's event ring.
//!
//! A recorded event is one 64-byte slot when its strings (flag, variant and
//! targeting key; or name and targeting key) come to at most
//! [`HEAD_TEXT`] bytes, and continues in [`Slot::More`] slots when they are
//! longer; all of an event's slots are committed to the ring at once, so the
//! drain never sees half an event. Every slot the caller writes is a cache
//! line the drain's core read last, so an event moves one line between the
//! cores instead of three (docs/BENCHMARKS.md, run 9). An event with a string
//! over [`MAX_IN_SLOTS`] bytes goes to the heap whole ([`Slot::Boxed`]).

use rtrb::{Consumer, Producer};
use serde_json::{Map, Value};

use flagyard_core::{Reason, TrackingDetails};

use super::{RawEvent, RawExposure, RawTracking};

/// Text bytes in an event's first slot.
const HEAD_TEXT: usize = 35;
/// Text bytes in each slot that continues it.
const MORE_TEXT: usize = 63;
/// The longest string kept in slots (a length byte of 255 means "none").
const MAX_IN_SLOTS: usize = 254;
const NONE: u8 = u8::MAX;

/// One ring slot: an event's head, more of its text, or an event on the heap.
#[derive(Debug)]
#[repr(align(64))]
pub(super) enum Slot {
    Exposure {
        at: u64,
        version: u64,
        hash: u64,
        reason: Reason,
        /// Flag, variant and targeting key lengths.
        lens: [u8; 3],
        text: [u8; HEAD_TEXT],
    },
    Tracking {
        at: u64,
        value: f64,
        has_value: bool,
        truncated: bool,
        /// Custom fields, when there are any.
        fields: Option<Box<Map<String, Value>>>,
        /// Name and targeting key lengths.
        lens: [u8; 2],
        text: [u8; HEAD_TEXT],
    },
    More([u8; MORE_TEXT]),
    Boxed(Box<RawEvent>),
}

// One cache line, as the module says.
const _: () = assert!(std::mem::size_of::<Slot>() == 64);

/// One event's slots, ready to push.
pub(super) struct Slots<'a, const N: usize> {
    head: Slot,
    /// The strings the `More` slots continue.
    parts: [Option<&'a str>; N],
    more: usize,
}

impl<'a> Slots<'a, 3> {
    /// An exposure's slots.
    #[inline]
    pub(super) fn exposure(
        flag: &'a str,
        variant: Option<&'a str>,
        targeting_key: Option<&'a str>,
        reason: Reason,
        version: u64,
        at: u64,
        hash: u64,
    ) -> Self {
        let parts = [Some(flag), variant, targeting_key];
        let Some(lens) = lengths(&parts) else {
            return Slots::boxed(RawEvent::Exposure(RawExposure {
                flag: flag.to_owned(),
                variant: variant.map(str::to_owned),
                reason,
                targeting_key: targeting_key.map(str::to_owned),
                version,
                at,
                hash,
            }));
        };
        let more = more_slots(&parts);
        Slots {
            head: Slot::Exposure {
                at,
                version,
                hash,
                reason,
                lens,
                text: [0; HEAD_TEXT],
            },
            parts,
            more,
        }
    }
}

impl<'a> Slots<'a, 2> {
    /// A tracking event's slots.
    #[inline]
    pub(super) fn tracking(
        name: &'a str,
        truncated: bool,
        targeting_key: Option<&'a str>,
        details: TrackingDetails,
        at: u64,
    ) -> Self {
        let parts = [Some(name), targeting_key];
        let Some(lens) = lengths(&parts) else {
            return Slots::boxed(RawEvent::Tracking(RawTracking {
                name: name.to_owned(),
                truncated,
                targeting_key: targeting_key.map(str::to_owned),
                details,
                at,
            }));
        };
        let more = more_slots(&parts);
        let TrackingDetails { value, fields } = details;
        Slots {
            head: Slot::Tracking {
                at,
                value: value.unwrap_or_default(),
                has_value: value.is_some(),
                truncated,
                fields: (!fields.is_empty()).then(|| Box::new(fields)),
                lens,
                text: [0; HEAD_TEXT],
            },
            parts,
            more,
        }
    }
}

impl<'a, const N: usize> Slots<'a, N> {
    #[cold]
    fn boxed(event: RawEvent) -> Self {
        Slots {
            head: Slot::Boxed(Box::new(event)),
            parts: [None; N],
            more: 0,
        }
    }

    /// Pushes every slot at once; `false` (and nothing pushed) when the ring
    /// has no room for them all. The text is copied into the ring's slots
    /// in place rather than built beside them and moved.
    #[inline]
    pub(super) fn push(self, ring: &mut Producer<Slot>) -> bool {
        let Slots { head, parts, more } = self;
        let Ok(mut chunk) = ring.write_chunk(1 + more) else {
            return false;
        };
        let (first, second) = chunk.as_mut_slices();
        let mut slots = first.iter_mut().chain(second);
        if let Some(slot) = slots.next() {
            *slot = head;
            if let Slot::Exposure { text, .. } | Slot::Tracking { text, .. } = slot {
                copy_text(&parts, 0, text);
            }
        }
        for (i, slot) in slots.enumerate() {
            // `More`, the slots' default.
            if let Slot::More(text) = slot {
                copy_text(&parts, HEAD_TEXT + i * MORE_TEXT, text);
            }
        }
        chunk.commit_all();
        true
    }
}

impl Default for Slot {
    /// What `write_chunk` fills a slot with before an event's text is copied in.
    fn default() -> Self {
        Slot::More([0; MORE_TEXT])
    }
}

/// The strings' lengths, or `None` when one is too long for slots.
#[inline]
fn lengths<const N: usize>(parts: &[Option<&str>; N]) -> Option<[u8; N]> {
    let mut lens = [NONE; N];
    for (len, part) in lens.iter_mut().zip(parts) {
        if let Some(part) = part {
            if part.len() > MAX_IN_SLOTS {
                return None;
            }
            *len = part.len() as u8;
        }
    }
    Some(lens)
}

/// How many `More` slots the strings need beyond the head's text.
#[inline]
fn more_slots(parts: &[Option<&str>]) -> usize {
    let total: usize = parts.iter().flatten().map(|p| p.len()).sum();
    total.saturating_sub(HEAD_TEXT).div_ceil(MORE_TEXT)
}

/// Copies the strings' concatenation, from byte `from` on, into `out` (as
/// much as fits).
#[inline]
fn copy_text(parts: &[Option<&str>], from: usize, out: &mut [u8]) {
    let mut start = 0;
    for part in parts.iter().flatten() {
        let bytes = part.as_bytes();
        let end = start + bytes.len();
        // The part of `bytes` that lands in out[from..from + out.len()].
        let lo = from.max(start);
        let hi = (from + out.len()).min(end);
        if lo < hi {
            out[lo - from..hi - from].copy_from_slice(&bytes[lo - start..hi - start]);
        }
        start = end;
    }
}

/// Takes the next whole event from the ring, or `None` when it is empty.
pub(super) fn pop(ring: &mut Consumer<Slot>) -> Option<RawEvent> {
    loop {
        let slot = ring.pop().ok()?;
        let event = match slot {
            Slot::Boxed(event) => *event,
            Slot::Exposure {
                at,
                version,
                hash,
                reason,
                lens,
                text,
            } => {
                let [flag, variant, targeting_key] = read_text(ring, &text, lens);
                RawEvent::Exposure(RawExposure {
                    flag: flag.unwrap_or_default(),
                    variant,
                    reason,
                    targeting_key,
                    version,
                    at,
                    hash,
                })
            }
            Slot::Tracking {
                at,
                value,
                has_value,
                truncated,
                fields,
                lens,
                text,
            } => {
                let [name, targeting_key] = read_text(ring, &text, lens);
                RawEvent::Tracking(RawTracking {
                    name: name.unwrap_or_default(),
                    truncated,
                    targeting_key,
                    details: TrackingDetails {
                        value: has_value.then_some(value),
                        fields: fields.map(|f| *f).unwrap_or_default(),
                    },
                    at,
                })
            }
            // Pushed with its head, so never first; skipped if it were.
            Slot::More(_) => continue,
        };
        return Some(event);
    }
}

/// The strings of an event whose head holds `head` and `lens`, taking its
/// `More` slots from the ring.
fn read_text<const N: usize>(
    ring: &mut Consumer<Slot>,
    head: &[u8; HEAD_TEXT],
    lens: [u8; N],
) -> [Option<String>; N] {
    let total: usize = lens
        .iter()
        .filter(|&&l| l != NONE)
        .map(|&l| usize::from(l))
        .sum();
    let mut bytes = Vec::with_capacity(total);
    bytes.extend_from_slice(&head[..total.min(HEAD_TEXT)]);
    while bytes.len() < total {
        // Committed with the head, so they are there; a head is not taken.
        let Ok(Slot::More(_)) = ring.peek() else {
            break;
        };
        if let Ok(Slot::More(text)) = ring.pop() {
            let take = (total - bytes.len()).min(MORE_TEXT);
            bytes.extend_from_slice(&text[..take]);
        }
    }
    let mut start = 0;
    lens.map(|len| {
        (len != NONE).then(|| {
            let end = (start + usize::from(len)).min(bytes.len());
            let text = String::from_utf8_lossy(&bytes[start.min(end)..end]).into_owned();
            start = end;
            text
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtrb::RingBuffer;

    fn exposure_round_trip(flag: &str, variant: Option<&str>, key: Option<&str>) -> usize {
        let (mut producer, mut consumer) = RingBuffer::new(64);
        let slots = Slots::exposure(flag, variant, key, Reason::TargetingMatch, 7, 1_000, 42);
        assert!(slots.push(&mut producer));
        let used = consumer.slots();
        let Some(RawEvent::Exposure(e)) = pop(&mut consumer) else {
            panic!("an exposure comes back");
        };
        assert_eq!(e.flag, flag);
        assert_eq!(e.variant.as_deref(), variant);
        assert_eq!(e.targeting_key.as_deref(), key);
        assert_eq!(
            (e.reason, e.version, e.at, e.hash),
            (Reason::TargetingMatch, 7, 1_000, 42)
        );
        assert!(pop(&mut consumer).is_none(), "every slot was taken");
        used
    }

    #[test]
    fn short_events_take_one_slot_and_long_ones_continue_or_box() {
        assert_eq!(
            exposure_round_trip("email-rule", Some("on"), Some("user-42")),
            1
        );
        assert_eq!(exposure_round_trip("f", None, None), 1);
        let uuid = "0b7e5c2a-1f3d-4c8e-9a6b-2d4f6e8a0c1e";
        assert_eq!(exposure_round_trip("email-rule", Some("on"), Some(uuid)), 2);
        let long = "ü".repeat(127); // 254 bytes: the most kept in slots
        assert_eq!(
            exposure_round_trip(&long, Some(&long), Some(&long)),
            1 + (3 * 254 - HEAD_TEXT).div_ceil(MORE_TEXT)
        );
        let longer = "x".repeat(MAX_IN_SLOTS + 1);
        assert_eq!(
            exposure_round_trip(&longer, Some("on"), Some("k")),
            1,
            "boxed"
        );
    }

    #[test]
    fn tracking_events_keep_value_and_fields() {
        let (mut producer, mut consumer) = RingBuffer::new(8);
        let details = TrackingDetails::new().value(9.5).field("sku", "A-1");
        let name = "n".repeat(40);
        assert!(
            Slots::tracking(&name, true, Some("user-1"), details.clone(), 5).push(&mut producer)
        );
        assert!(Slots::tracking("buy", false, None, TrackingDetails::new(), 6).push(&mut producer));
        let Some(RawEvent::Tracking(t)) = pop(&mut consumer) else {
            panic!("a tracking event comes back");
        };
        assert_eq!(
            (t.name.as_str(), t.truncated, t.at),
            (name.as_str(), true, 5)
        );
        assert_eq!(t.targeting_key.as_deref(), Some("user-1"));
        assert_eq!(t.details, details);
        let Some(RawEvent::Tracking(t)) = pop(&mut consumer) else {
            panic!("a second tracking event comes back");
        };
        assert_eq!(
            (t.name.as_str(), t.targeting_key, t.details),
            ("buy", None, TrackingDetails::new())
        );
    }

    #[test]
    fn an_event_without_room_for_all_its_slots_pushes_none() {
        let (mut producer, mut consumer) = RingBuffer::new(2);
        let key = "k".repeat(200);
        assert!(
            !Slots::exposure("flag", None, Some(&key), Reason::Static, 0, 0, 0).push(&mut producer)
        );
        assert_eq!(consumer.slots(), 0);
        assert!(
            Slots::exposure("flag", None, Some("k"), Reason::Static, 0, 0, 0).push(&mut producer)
        );
        assert!(matches!(pop(&mut consumer), Some(RawEvent::Exposure(_))));
    }
}
