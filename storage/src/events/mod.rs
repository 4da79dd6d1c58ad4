//! Collected events: what the flag server's collector keeps
//! ([`SqliteEvents`](crate::SqliteEvents)), and how they are asked for.

#[cfg(feature = "redis")]
pub(crate) mod redis;
#[cfg(feature = "sqlite")]
pub(crate) mod sqlite;

use flagyard_core::event_json::WireEvent;

/// One kept event, with the collector's id (increasing in arrival order) and
/// arrival time.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    /// Increasing in arrival order.
    pub id: u64,
    /// When the collector received it (ms since the epoch).
    pub received_at: u64,
    /// The environment of the SDK key it was posted with (`default` on a
    /// server without SDK keys, and for events kept before environments were
    /// recorded).
    pub environment: String,
    /// The event.
    pub event: WireEvent,
}

/// What a batch did to the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ingested {
    /// Events kept.
    pub kept: usize,
    /// The batch id was seen before: nothing was kept.
    pub duplicate: bool,
}

/// Which events to read: every filter given must match. Newest first, or,
/// with `after`, oldest first from that id (to follow new arrivals).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventQuery {
    /// `exposure`, `tracking` or `summary`.
    pub kind: Option<String>,
    /// Exposures of this flag (and summaries counting it).
    pub flag: Option<String>,
    /// Tracking events of this name.
    pub name: Option<String>,
    /// Events of this targeting key.
    pub targeting_key: Option<String>,
    /// Events collected in this environment.
    pub environment: Option<String>,
    /// Events at or after this time (ms since the epoch).
    pub since: Option<u64>,
    /// Events before this time (ms since the epoch).
    pub until: Option<u64>,
    /// Only ids below this one (the next page, newest first).
    pub before: Option<u64>,
    /// Only ids above this one, oldest first (following).
    pub after: Option<u64>,
    /// At most this many (1 to 1,000; default 100).
    pub limit: Option<usize>,
}

impl EventQuery {
    /// The page size asked for, within 1 to 1,000.
    pub fn page_size(&self) -> usize {
        self.limit.unwrap_or(100).clamp(1, 1000)
    }
}

/// How long events are kept: the younger of an age and a count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Events (and batch ids) older than this are deleted (ms).
    pub max_age_ms: u64,
    /// At most this many events are kept; the oldest go first.
    pub max_events: u64,
}

impl Default for Retention {
    /// 30 days and 10 million events.
    fn default() -> Self {
        Retention {
            max_age_ms: 30 * 24 * 3600 * 1000,
            max_events: 10_000_000,
        }
    }
}

/// The columns a query filters on, from an event.
#[cfg(any(feature = "sqlite", feature = "redis"))]
pub(crate) struct Columns<'a> {
    pub kind: &'static str,
    pub flag: Option<&'a str>,
    pub name: Option<&'a str>,
    pub targeting_key: Option<&'a str>,
    pub variant: Option<&'a str>,
}

#[cfg(any(feature = "sqlite", feature = "redis"))]
impl<'a> Columns<'a> {
    pub(crate) fn of(event: &'a WireEvent) -> Columns<'a> {
        let mut columns = Columns {
            kind: event.kind(),
            flag: None,
            name: None,
            targeting_key: None,
            variant: None,
        };
        match event {
            WireEvent::Exposure {
                flag,
                variant,
                targeting_key,
                ..
            } => {
                columns.flag = Some(flag);
                columns.variant = variant.as_deref();
                columns.targeting_key = targeting_key.as_deref();
            }
            WireEvent::Tracking {
                name,
                targeting_key,
                ..
            } => {
                columns.name = Some(name);
                columns.targeting_key = targeting_key.as_deref();
            }
            // Kept one count per row: the row is that count's flag's.
            WireEvent::Summary { counts, .. } => {
                if let [count] = counts.as_slice() {
                    columns.flag = Some(&count.flag);
                    columns.variant = count.variant.as_deref();
                }
            }
        }
        columns
    }
}

/// The rows a batch is kept as: its events, with a summary split into one
/// summary per count (so that a query by flag finds it).
#[cfg(any(feature = "sqlite", feature = "redis"))]
pub(crate) fn rows(events: &[WireEvent]) -> Vec<std::borrow::Cow<'_, WireEvent>> {
    let mut out = Vec::with_capacity(events.len());
    for event in events {
        match event {
            WireEvent::Summary { start, end, counts } if counts.len() > 1 => {
                out.extend(counts.iter().map(|count| {
                    std::borrow::Cow::Owned(WireEvent::Summary {
                        start: *start,
                        end: *end,
                        counts: vec![count.clone()],
                    })
                }));
            }
            event => out.push(std::borrow::Cow::Borrowed(event)),
        }
    }
    out
}
