//! OFREP: `POST /ofrep/v1/evaluate/flags/{key}`, the bulk
//! `POST /ofrep/v1/evaluate/flags` with OFREP's response and error shapes, and
//! the change notifications of ADR-0008 (`GET /ofrep/v1/changes`, SSE).
//! [`OfrepAccess`] checks the SDK key and the rate limit before a handler runs.

use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use flagyard_core::{ErrorCode, Evaluation, EvaluationContext};
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::Value;

use crate::access::{ReadAccess, extractor};
use crate::environment::Environment;
use crate::error::ApiError;
use crate::follow::{Follow, documents};
use crate::metrics::Protocol;
use crate::published::etag_matches;
use crate::state::AppState;
use crate::wire::{OfrepBulk, OfrepEndpoint, OfrepEntry, OfrepError, OfrepEventStream, OfrepFlag};

/// An OFREP error answer: a status and OFREP's `{"errorCode"?, "errorDetails"}`.
struct OfrepRejection {
    status: StatusCode,
    details: String,
    retry_after: Option<u64>,
}

impl IntoResponse for OfrepRejection {
    fn into_response(self) -> Response {
        let body = OfrepError {
            key: None,
            error_code: None,
            error_details: &self.details,
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(wait) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(wait));
        }
        response
    }
}

/// The caller may evaluate: the read check (401) and the rate limit (429).
/// Carries the environment its key reads and the key.
pub(super) struct OfrepAccess(ReadAccess);

impl OfrepAccess {
    /// The check behind the extractor.
    async fn extract(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let read = ReadAccess::check(&parts.headers, state).map_err(|e| {
            OfrepRejection {
                status: e.status(),
                details: e.to_string(),
                retry_after: None,
            }
            .into_response()
        })?;
        if let Some(limiter) = &state.limiter
            && let Err(wait) = limiter.check()
        {
            return Err(OfrepRejection {
                status: StatusCode::TOO_MANY_REQUESTS,
                details: format!("rate limit exceeded; retry in {wait} s"),
                retry_after: Some(wait),
            }
            .into_response());
        }
        Ok(OfrepAccess(read))
    }
}

extractor!(OfrepAccess, Response);

/// Why a request's context is unusable (answered as `INVALID_CONTEXT`).
#[derive(Debug, thiserror::Error)]
enum ContextError {
    #[error("request body is not JSON: {0}")]
    NotJson(#[source] serde_json::Error),
    #[error("request body must be an object, found {0}")]
    NotAnObject(Value),
    #[error("{0}")]
    Context(#[source] flagyard_core::DocumentError),
}

/// The request's context (`{"context": {...}}`, body optional).
fn context(body: &Bytes) -> Result<EvaluationContext, ContextError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(EvaluationContext::new());
    }
    let request: Value = serde_json::from_slice(body).map_err(ContextError::NotJson)?;
    let raw = match request {
        Value::Object(mut map) => map.remove("context").unwrap_or(Value::Null),
        other => return Err(ContextError::NotAnObject(other)),
    };
    EvaluationContext::from_json(raw).map_err(ContextError::Context)
}

/// One flag's OFREP entry, and its status for the single-flag endpoint.
pub(super) fn entry<'a>(
    key: &'a str,
    evaluation: &'a Evaluation<'a>,
) -> (StatusCode, OfrepEntry<'a>) {
    if let Some(error) = &evaluation.error {
        let status = if error.code == ErrorCode::FlagNotFound {
            StatusCode::NOT_FOUND
        } else {
            StatusCode::BAD_REQUEST
        };
        let error = OfrepError {
            key: Some(key),
            error_code: Some(error.code.as_str()),
            error_details: error.message.as_str(),
        };
        return (status, OfrepEntry::Error(error));
    }
    let flag = OfrepFlag {
        key,
        // No value: defer to the caller's code default (OFREP ADR 6), as for a
        // disabled flag or one without a default variant.
        value: evaluation.value,
        reason: evaluation.reason.as_str(),
        variant: evaluation.variant(),
        metadata: &evaluation.metadata,
    };
    (StatusCode::OK, OfrepEntry::Flag(flag))
}

fn invalid_context(key: Option<&str>, e: &ContextError) -> Response {
    let details = e.to_string();
    let body = OfrepError {
        key,
        error_code: Some(ErrorCode::InvalidContext.as_str()),
        error_details: &details,
    };
    (StatusCode::BAD_REQUEST, Json(body)).into_response()
}

pub(super) async fn single(
    OfrepAccess(ReadAccess {
        environment: env, ..
    }): OfrepAccess,
    Path(key): Path<String>,
    body: Bytes,
) -> Response {
    let ctx = match context(&body) {
        Ok(ctx) => ctx,
        Err(e) => return invalid_context(Some(&key), &e),
    };
    let current = env.current();
    let evaluation = current.snapshot.evaluate(&key, &ctx);
    let (status, entry) = entry(&key, &evaluation);
    (status, Json(entry)).into_response()
}

/// The bulk request's query: ADR-0008's metadata of the change notification
/// that triggered it.
#[derive(Debug, Deserialize)]
pub(super) struct BulkQuery {
    /// The document ETag the notification announced.
    #[serde(rename = "flagConfigEtag")]
    flag_config_etag: Option<String>,
}

/// How long a re-fetch announcing a version this server has not published
/// yet (another server of a shared Redis announced it) waits for it.
const CATCH_UP: Duration = Duration::from_secs(1);

/// Waits (at most [`CATCH_UP`]) until `env` serves the version `etag` (a
/// document ETag, `"N-…"`) names; returns at once for an older version or
/// an ETag not of that form.
async fn catch_up(env: &Environment, etag: &str) {
    let Some(wanted) = etag
        .trim_start_matches("W/")
        .trim_matches('"')
        .split_once('-')
        .and_then(|(version, _)| version.parse::<u64>().ok())
    else {
        return;
    };
    let mut changes = env.subscribe();
    let reached = tokio::time::timeout(CATCH_UP, async {
        while env.current().version < wanted {
            if let Err(tokio::sync::broadcast::error::RecvError::Closed) = changes.recv().await {
                return;
            }
        }
    })
    .await;
    if reached.is_err() {
        tracing::debug!(environment = %env.name(), wanted, "re-fetch announced a version not reached in time; answering the current one");
    }
}

/// The change-notification stream for `read`'s environment, as the bulk
/// answer's `eventStreams` names it (relative: the client's base URL's origin).
fn event_stream(read: &ReadAccess) -> OfrepEventStream {
    let request_uri = match &read.credential {
        Some(principal) => format!("{CHANGES_PATH}?channel={}", principal.channel()),
        None => CHANGES_PATH.to_string(),
    };
    OfrepEventStream {
        kind: "sse",
        endpoint: OfrepEndpoint { request_uri },
        inactivity_delay_sec: INACTIVITY_DELAY_SEC,
    }
}

/// Where the change notifications are.
pub(super) const CHANGES_PATH: &str = "/ofrep/v1/changes";

/// ADR-0008's default: a hidden client closes its stream after 2 minutes.
const INACTIVITY_DELAY_SEC: u32 = 120;

pub(super) async fn bulk(
    OfrepAccess(read): OfrepAccess,
    Query(query): Query<BulkQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let ctx = match context(&body) {
        Ok(ctx) => ctx,
        Err(e) => return invalid_context(None, &e),
    };
    let env = &read.environment;
    if let Some(etag) = &query.flag_config_etag {
        catch_up(env, etag).await;
    }
    let current = env.current();
    // The bulk answer depends on the document and the request (its context).
    let mut h = std::hash::DefaultHasher::new();
    current.etag.hash(&mut h);
    body.hash(&mut h);
    let etag = format!("\"{}-{:016x}\"", current.version, h.finish());
    let etag_header =
        HeaderValue::from_str(&etag).unwrap_or_else(|_| HeaderValue::from_static("\"0\""));
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| etag_matches(v, &etag))
    {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag_header)]).into_response();
    }
    let keys = current.snapshot.keys();
    let answer = OfrepBulk {
        flags: Evaluated {
            snapshot: &current.snapshot,
            keys: &keys,
            ctx: &ctx,
        },
        event_streams: [event_stream(&read)],
    };
    // Each flag is evaluated as it is written, straight into the body.
    let mut body = Vec::with_capacity(64 + keys.len() * BYTES_PER_ENTRY);
    if let Err(e) = serde_json::to_writer(&mut body, &answer) {
        tracing::error!(error = %e, "bulk answer not serializable");
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (header::ETAG, etag_header),
        ],
        body,
    )
        .into_response()
}

/// About what one flag's bulk entry takes (a key, a short value, the reason,
/// the variant), to size the body once.
const BYTES_PER_ENTRY: usize = 96;

/// Every flag of a snapshot, evaluated for a context as it is serialized.
struct Evaluated<'a> {
    snapshot: &'a flagyard_core::Snapshot,
    keys: &'a [&'a str],
    ctx: &'a EvaluationContext,
}

impl serde::Serialize for Evaluated<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = serializer.serialize_seq(Some(self.keys.len()))?;
        for key in self.keys {
            let evaluation = self.snapshot.evaluate(key, self.ctx);
            seq.serialize_element(&entry(key, &evaluation).1)?;
        }
        seq.end()
    }
}

/// `GET /ofrep/v1/changes?channel=…`'s query.
#[derive(Debug, Deserialize)]
pub(super) struct ChangesQuery {
    /// The credential's channel, from the bulk answer's `eventStreams`.
    channel: Option<String>,
}

/// `GET /ofrep/v1/changes`: a `refetchEvaluation` event whenever the
/// channel's environment changes (ADR-0008), with heartbeats. A client
/// reconnecting with a `Last-Event-ID` older than the current version is
/// told at once; the stream closes when its credential is revoked.
pub(super) async fn changes(
    State(state): State<Arc<AppState>>,
    Query(query): Query<ChangesQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let read = ReadAccess::by_channel(query.channel.as_deref(), &state)?;
    let last_seen = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let heartbeat = state.heartbeat();
    // `event: message`, the version as its id, `{"type": "refetchEvaluation",
    // "etag": …}` as its data (`Published::ofrep_change`).
    let frames = documents(Follow::new(state, read, Protocol::ofrep_changes)).filter_map(
        move |(published, first)| {
            let missed = !first || last_seen.is_some_and(|seen| seen < published.version);
            std::future::ready(missed.then(|| published.ofrep_change.clone()))
        },
    );
    Ok(super::stream::event_stream(frames, heartbeat))
}
