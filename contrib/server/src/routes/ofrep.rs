//! OFREP: `POST /ofrep/v1/evaluate/flags/{key}` and the bulk
//! `POST /ofrep/v1/evaluate/flags`, with OFREP's response and error shapes.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use flagyard_core::{ErrorCode, Evaluation, EvaluationContext, Reason};
use serde_json::{Map, Value, json};

use crate::auth::require_reader;
use crate::published::etag_matches;
use crate::state::AppState;

fn json_response(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

/// 401/403/429 before evaluating: the same checks for both endpoints.
fn gate(state: &AppState, headers: &HeaderMap) -> Result<(), Box<Response>> {
    if let Err(e) = require_reader(
        headers,
        state.config.sdk_key.as_deref(),
        state.config.admin_token.as_deref(),
    ) {
        return Err(Box::new(json_response(
            e.status(),
            json!({ "errorDetails": e.to_string() }),
        )));
    }
    if let Some(limiter) = &state.limiter
        && let Err(wait) = limiter.check()
    {
        let mut response = json_response(
            StatusCode::TOO_MANY_REQUESTS,
            json!({ "errorDetails": format!("rate limit exceeded; retry in {wait} s") }),
        );
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(wait));
        return Err(Box::new(response));
    }
    Ok(())
}

/// The request's context (`{"context": {...}}`, body optional).
fn context(body: &Bytes) -> Result<(EvaluationContext, Value), String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok((EvaluationContext::new(), Value::Null));
    }
    let request: Value =
        serde_json::from_slice(body).map_err(|e| format!("request body is not JSON: {e}"))?;
    let raw = match request {
        Value::Object(mut map) => map.remove("context").unwrap_or(Value::Null),
        other => return Err(format!("request body must be an object, found {other}")),
    };
    let ctx = EvaluationContext::from_json(raw.clone()).map_err(|e| e.to_string())?;
    Ok((ctx, raw))
}

fn reason(reason: Reason) -> &'static str {
    reason.as_str()
}

fn metadata_json(evaluation: &Evaluation<'_>) -> Value {
    Value::Object(
        evaluation
            .metadata
            .iter()
            .map(|(k, v)| (k.clone(), v.to_json()))
            .collect(),
    )
}

/// One flag's OFREP body and status.
fn evaluate(key: &str, evaluation: &Evaluation<'_>) -> (StatusCode, Value) {
    if let Some(error) = &evaluation.error {
        let status = if error.code == ErrorCode::FlagNotFound {
            StatusCode::NOT_FOUND
        } else {
            StatusCode::BAD_REQUEST
        };
        return (
            status,
            json!({ "key": key, "errorCode": error.code.as_str(), "errorDetails": error.message.as_str() }),
        );
    }
    let mut body = Map::new();
    body.insert("key".into(), key.into());
    // No value: defer to the caller's code default (OFREP ADR 6), as for a
    // disabled flag or one without a default variant.
    if let Some(value) = evaluation.value {
        body.insert("value".into(), value.to_json());
    }
    body.insert("reason".into(), reason(evaluation.reason).into());
    // Always present (null when none): some OFREP clients index it unconditionally.
    body.insert(
        "variant".into(),
        evaluation.variant().map_or(Value::Null, Value::from),
    );
    body.insert("metadata".into(), metadata_json(evaluation));
    (StatusCode::OK, Value::Object(body))
}

pub(super) async fn single(
    State(state): State<Arc<AppState>>,
    Path(key): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(response) = gate(&state, &headers) {
        return *response;
    }
    let (ctx, _) = match context(&body) {
        Ok(ctx) => ctx,
        Err(details) => {
            return json_response(
                StatusCode::BAD_REQUEST,
                json!({ "key": key, "errorCode": "INVALID_CONTEXT", "errorDetails": details }),
            );
        }
    };
    let current = state.current();
    let evaluation = current.snapshot.evaluate(&key, &ctx);
    let (status, body) = evaluate(&key, &evaluation);
    json_response(status, body)
}

pub(super) async fn bulk(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(response) = gate(&state, &headers) {
        return *response;
    }
    let (ctx, raw) = match context(&body) {
        Ok(ctx) => ctx,
        Err(details) => {
            return json_response(
                StatusCode::BAD_REQUEST,
                json!({ "errorCode": "INVALID_CONTEXT", "errorDetails": details }),
            );
        }
    };
    let current = state.current();
    // The bulk answer depends on the document and the context.
    let mut h = std::hash::DefaultHasher::new();
    current.etag.hash(&mut h);
    raw.to_string().hash(&mut h);
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
    let flags: Vec<Value> = current
        .snapshot
        .keys()
        .into_iter()
        .map(|key| evaluate(key, &current.snapshot.evaluate(key, &ctx)).1)
        .collect();
    let mut response = json_response(StatusCode::OK, json!({ "flags": flags }));
    response.headers_mut().insert(header::ETAG, etag_header);
    response
}
