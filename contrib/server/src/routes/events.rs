//! The collector: `POST /v1/events` takes batches of events (the SDK key,
//! gzip or plain JSON, every event checked on its own) and `GET
//! /v1/admin/events` reads them back, filtered and paged.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use flagyard_core::event_json::{BatchAnswer, RefusedEvent, WireEvent, epoch_millis};
use flagyard_storage::EventQuery;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::access::{AdminAccess, ReadAccess};
use crate::body::ApiJson;
use crate::error::ApiError;
use crate::state::AppState;

/// Events in one batch at most.
pub(crate) const MAX_BATCH_EVENTS: usize = 10_000;

/// A batch as it arrives: the id and the events, each checked on its own.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct IncomingBatch {
    batch_id: String,
    events: Vec<Value>,
}

/// Why an event is refused (`None`: it is kept).
fn refusal(event: &WireEvent, now: u64) -> Option<String> {
    let text = |what: &str, value: &str, max: usize| -> Option<String> {
        let chars = value.chars().count();
        if chars == 0 {
            Some(format!("{what} is empty"))
        } else if chars > max {
            Some(format!("{what} has {chars} characters, over {max}"))
        } else {
            None
        }
    };
    let optional = |what: &str, value: &Option<String>, max: usize| {
        value.as_deref().and_then(|v| text(what, v, max))
    };
    if event.at() > now + 24 * 3600 * 1000 {
        return Some(format!(
            "time {} is more than a day ahead of the server",
            event.at()
        ));
    }
    match event {
        WireEvent::Exposure {
            flag,
            variant,
            reason,
            targeting_key,
            set_id,
            ..
        } => text("flag", flag, 256)
            .or_else(|| text("reason", reason, 64))
            .or_else(|| optional("variant", variant, 256))
            .or_else(|| optional("targetingKey", targeting_key, 256))
            .or_else(|| optional("setId", set_id, 256)),
        WireEvent::Tracking {
            name,
            targeting_key,
            fields,
            ..
        } => text("name", name, flagyard::MAX_TRACKING_NAME)
            .or_else(|| optional("targetingKey", targeting_key, 256))
            .or_else(|| {
                let size = serde_json::to_string(fields).map_or(usize::MAX, |s| s.len());
                (size > flagyard::MAX_TRACKING_DETAILS).then(|| {
                    format!(
                        "fields are {size} bytes as JSON, over {}",
                        flagyard::MAX_TRACKING_DETAILS
                    )
                })
            }),
        WireEvent::Summary { start, end, counts } => {
            if start > end {
                return Some(format!("start {start} is after end {end}"));
            }
            if counts.is_empty() {
                return Some("a summary without counts".into());
            }
            counts.iter().enumerate().find_map(|(i, c)| {
                text("flag", &c.flag, 256)
                    .or_else(|| text("reason", &c.reason, 64))
                    .or_else(|| optional("variant", &c.variant, 256))
                    .map(|why| format!("count {i}: {why}"))
            })
        }
    }
}

/// A batch id: 1 to 128 of `A-Z a-z 0-9 - _ .`.
fn batch_id_problem(id: &str) -> Option<&'static str> {
    if id.is_empty() || id.len() > 128 {
        Some("must have 1 to 128 characters")
    } else if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        Some("may only hold letters, digits, '-', '_' and '.'")
    } else {
        None
    }
}

pub(super) async fn collect(
    State(state): State<Arc<AppState>>,
    read: ReadAccess,
    ApiJson(batch): ApiJson<IncomingBatch>,
) -> Result<Json<BatchAnswer>, ApiError> {
    if let Some(problem) = batch_id_problem(&batch.batch_id) {
        return Err(ApiError::BadRequest(format!("batchId {problem}")));
    }
    if batch.events.len() > MAX_BATCH_EVENTS {
        return Err(ApiError::TooLarge(format!(
            "{} events in one batch, over {MAX_BATCH_EVENTS}",
            batch.events.len()
        )));
    }
    let now = epoch_millis(std::time::SystemTime::now());
    let mut kept = Vec::with_capacity(batch.events.len());
    let mut refused = Vec::new();
    for (index, value) in batch.events.into_iter().enumerate() {
        match serde_json::from_value::<WireEvent>(value) {
            Ok(event) => match refusal(&event, now) {
                None => kept.push(event),
                Some(reason) => refused.push(RefusedEvent { index, reason }),
            },
            Err(e) => refused.push(RefusedEvent {
                index,
                reason: e.to_string(),
            }),
        }
    }
    let ingested = state
        .events
        .ingest(crate::events::Batch {
            id: batch.batch_id,
            environment: read.environment.name().to_string(),
            events: kept,
        })
        .await
        .map_err(|e| ApiError::from_store(&e))?;
    state.metrics.events(ingested.kept, refused.len());
    if ingested.kept > 0 {
        state.events_added.notify_waiters();
    }
    if !refused.is_empty() {
        tracing::info!(
            refused = refused.len(),
            first = %refused[0].reason,
            "events refused"
        );
    }
    Ok(Json(BatchAnswer {
        accepted: ingested.kept,
        refused,
        duplicate: ingested.duplicate,
    }))
}

/// `GET /v1/admin/events` parameters.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct EventsParams {
    kind: Option<String>,
    flag: Option<String>,
    name: Option<String>,
    targeting_key: Option<String>,
    environment: Option<String>,
    since: Option<u64>,
    until: Option<u64>,
    before: Option<u64>,
    after: Option<u64>,
    limit: Option<usize>,
}

/// A page of events: newest first (`next`: the `before` of the next page),
/// or oldest first after `after` (`next`: the `after` to follow with).
#[derive(Debug, Serialize)]
pub(super) struct EventsPage {
    events: Vec<KeptEvent>,
    next: Option<u64>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct KeptEvent {
    id: u64,
    received_at: u64,
    /// The environment of the SDK key it was posted with.
    environment: String,
    event: WireEvent,
}

pub(super) async fn list(
    State(state): State<Arc<AppState>>,
    _admin: AdminAccess,
    Query(params): Query<EventsParams>,
) -> Result<Json<EventsPage>, ApiError> {
    if let Some(kind) = &params.kind
        && !matches!(kind.as_str(), "exposure" | "tracking" | "summary")
    {
        return Err(ApiError::BadRequest(format!(
            "kind {kind:?}: one of exposure, tracking, summary"
        )));
    }
    let query = EventQuery {
        kind: params.kind,
        flag: params.flag,
        name: params.name,
        targeting_key: params.targeting_key,
        environment: params.environment,
        since: params.since,
        until: params.until,
        before: params.before,
        after: params.after,
        limit: params.limit,
    };
    let following = query.after.is_some();
    let page = query.page_size();
    let events = state
        .events
        .query(query)
        .await
        .map_err(|e| ApiError::from_store(&e))?;
    let last = events.last().map(|e| e.id);
    let next = if following {
        last.or(params.after)
    } else {
        last.filter(|_| events.len() == page)
    };
    Ok(Json(EventsPage {
        events: events
            .into_iter()
            .map(|e| KeptEvent {
                id: e.id,
                received_at: e.received_at,
                environment: e.environment,
                event: e.event,
            })
            .collect(),
        next,
    }))
}
