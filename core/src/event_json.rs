//! Events as JSON: the body of `POST /v1/events`, which `HttpSink` sends and
//! the flag server's collector reads (docs/PROTOCOL.md, "Events").
//!
//! ```json
//! {"batchId": "5f0c…", "events": [
//!   {"kind": "exposure", "flag": "new-checkout", "variant": "on", "reason": "TARGETING_MATCH",
//!    "targetingKey": "user-1", "version": 3, "setId": "shop", "at": 1764600000000},
//!   {"kind": "tracking", "name": "purchase", "targetingKey": "user-1", "value": 49.9,
//!    "fields": {"currency": "EUR"}, "at": 1764600000100},
//!   {"kind": "summary", "start": 1764600000000, "end": 1764600010000,
//!    "counts": [{"flag": "new-checkout", "variant": "on", "reason": "TARGETING_MATCH", "version": 3, "count": 12}]}
//! ]}
//! ```
//! Times are milliseconds since the Unix epoch.

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::plugin::{Event, ExposureEvent, SummaryCount, SummaryEvent, TrackingEvent};

/// One batch of events; `batch_id` lets a collector count a retried batch once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventBatch {
    /// Unique per batch (a retry sends the same id).
    pub batch_id: String,
    /// The events.
    pub events: Vec<WireEvent>,
}

/// One event as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "kind",
    rename_all = "lowercase",
    rename_all_fields = "camelCase",
    deny_unknown_fields
)]
pub enum WireEvent {
    /// A served evaluation.
    Exposure {
        /// The flag key.
        flag: String,
        /// The variant served, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        variant: Option<String>,
        /// Why (`STATIC`, `TARGETING_MATCH`, ...).
        reason: String,
        /// The context's targeting key.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        targeting_key: Option<String>,
        /// The served document's version.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        version: Option<u64>,
        /// The flag's set (`flagSetId`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        set_id: Option<String>,
        /// When (ms since the epoch).
        at: u64,
    },
    /// Something the application tracked.
    Tracking {
        /// The event name.
        name: String,
        /// The context's targeting key.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        targeting_key: Option<String>,
        /// The numeric value.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        value: Option<f64>,
        /// Custom fields.
        #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
        fields: serde_json::Map<String, serde_json::Value>,
        /// When (ms since the epoch).
        at: u64,
    },
    /// Evaluations counted over an interval.
    Summary {
        /// The interval's start (ms since the epoch).
        start: u64,
        /// The interval's end (ms since the epoch).
        end: u64,
        /// The counts.
        counts: Vec<WireCount>,
    },
}

/// One count of a summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WireCount {
    /// The flag key.
    pub flag: String,
    /// The variant served, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// Why.
    pub reason: String,
    /// The served document's version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    /// Evaluations counted.
    pub count: u64,
}

/// A collector's answer to a batch: how many events it kept, which it
/// refused (by index, with the reason), and whether it had the batch already.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchAnswer {
    /// Events kept.
    pub accepted: usize,
    /// Events refused.
    #[serde(default)]
    pub refused: Vec<RefusedEvent>,
    /// The batch id was seen before: nothing was kept again.
    #[serde(default)]
    pub duplicate: bool,
}

/// One refused event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefusedEvent {
    /// Its index in the batch.
    pub index: usize,
    /// Why.
    pub reason: String,
}

/// Milliseconds since the Unix epoch (0 before it).
pub fn epoch_millis(at: SystemTime) -> u64 {
    at.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The time `millis` after the Unix epoch.
pub fn from_epoch_millis(millis: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_millis(millis)
}

impl WireEvent {
    /// The JSON form of `event`, moving its strings (`None` for kinds this
    /// version does not send).
    pub fn from_event(event: Event) -> Option<WireEvent> {
        Some(match event {
            Event::Exposure(ExposureEvent {
                flag,
                variant,
                reason,
                targeting_key,
                version,
                flag_set_id,
                at,
            }) => WireEvent::Exposure {
                flag,
                variant,
                reason: reason.as_str().to_string(),
                targeting_key,
                version,
                set_id: flag_set_id,
                at: epoch_millis(at),
            },
            Event::Tracking(TrackingEvent {
                name,
                targeting_key,
                details,
                at,
            }) => WireEvent::Tracking {
                name,
                targeting_key,
                value: details.value,
                fields: details.fields,
                at: epoch_millis(at),
            },
            Event::Summary(SummaryEvent { start, end, counts }) => WireEvent::Summary {
                start: epoch_millis(start),
                end: epoch_millis(end),
                counts: counts.into_iter().map(WireCount::from_count).collect(),
            },
        })
    }

    /// The event's time: `at`, or a summary's end.
    pub fn at(&self) -> u64 {
        match self {
            WireEvent::Exposure { at, .. } | WireEvent::Tracking { at, .. } => *at,
            WireEvent::Summary { end, .. } => *end,
        }
    }

    /// `exposure`, `tracking` or `summary`.
    pub fn kind(&self) -> &'static str {
        match self {
            WireEvent::Exposure { .. } => "exposure",
            WireEvent::Tracking { .. } => "tracking",
            WireEvent::Summary { .. } => "summary",
        }
    }
}

impl WireCount {
    fn from_count(count: SummaryCount) -> WireCount {
        WireCount {
            flag: count.flag,
            variant: count.variant,
            reason: count.reason.as_str().to_string(),
            version: count.version,
            count: count.count,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Reason, TrackingDetails};

    #[test]
    fn events_round_trip_through_their_documented_json() {
        let at = from_epoch_millis(1_764_600_000_000);
        let events = [
            Event::Exposure(ExposureEvent {
                flag: "new-checkout".into(),
                variant: Some("on".into()),
                reason: Reason::TargetingMatch,
                targeting_key: Some("user-1".into()),
                version: Some(3),
                flag_set_id: Some("shop".into()),
                at,
            }),
            Event::Tracking(TrackingEvent {
                name: "purchase".into(),
                targeting_key: Some("user-1".into()),
                details: TrackingDetails::new().value(49.9).field("currency", "EUR"),
                at,
            }),
        ];
        let wire: Vec<WireEvent> = events
            .into_iter()
            .filter_map(WireEvent::from_event)
            .collect();
        let json = serde_json::to_value(&wire).expect("serializes");
        assert_eq!(
            json,
            serde_json::json!([
                {"kind": "exposure", "flag": "new-checkout", "variant": "on",
                 "reason": "TARGETING_MATCH", "targetingKey": "user-1", "version": 3,
                 "setId": "shop", "at": 1_764_600_000_000_u64},
                {"kind": "tracking", "name": "purchase", "targetingKey": "user-1",
                 "value": 49.9, "fields": {"currency": "EUR"}, "at": 1_764_600_000_000_u64}
            ])
        );
        let back: Vec<WireEvent> = serde_json::from_value(json).expect("parses");
        assert_eq!(back, wire);
        let unknown = serde_json::json!({"kind": "exposure", "flag": "f", "reason": "STATIC",
            "at": 1, "colour": "red"});
        let e = serde_json::from_value::<WireEvent>(unknown).expect_err("unknown field");
        assert!(e.to_string().contains("colour"), "{e}");
    }
}
