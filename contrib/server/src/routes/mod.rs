//! HTTP routes.

mod admin;
mod environments;
mod events;
mod experiments;
mod flags;
mod ofrep;
mod page;
mod pancake;
mod stream;

pub(crate) use experiments::catch_up;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, Method, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};

use crate::error::ApiError;
use crate::state::AppState;

/// The read endpoints a browser may call from another origin, with CORS
/// for the configured origins (none by default: no CORS headers at all).
fn reads(state: &Arc<AppState>) -> Router<Arc<AppState>> {
    let reads = Router::new()
        .route("/v1/flags", get(flags::get_flags))
        .route("/v1/stream", get(stream::sse))
        .route(OFREP_BULK, post(ofrep::bulk))
        .route("/ofrep/v1/evaluate/flags/{key}", post(ofrep::single))
        .route(ofrep::CHANGES_PATH, get(ofrep::changes));
    let origins = &state.config.cors_origins;
    if origins.is_empty() {
        return reads;
    }
    use tower_http::cors::{AllowOrigin, CorsLayer};
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    reads.layer(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([Method::GET, Method::POST])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                header::IF_NONE_MATCH,
                header::HeaderName::from_static("last-event-id"),
                header::HeaderName::from_static("x-api-key"),
            ])
            .expose_headers([
                header::ETAG,
                header::HeaderName::from_static("x-flagyard-version"),
            ])
            .max_age(std::time::Duration::from_secs(600)),
    )
}

/// OFREP's bulk evaluation.
const OFREP_BULK: &str = "/ofrep/v1/evaluate/flags";

/// Which OFREP evaluation `request` is, to time it for /metrics.
fn ofrep_endpoint(request: &axum::extract::Request) -> Option<crate::metrics::Endpoint> {
    use crate::metrics::Endpoint;
    if request.method() != Method::POST {
        return None;
    }
    let path = request.uri().path();
    match path.strip_prefix(OFREP_BULK) {
        Some("") => Some(Endpoint::bulk),
        Some(key) if key.len() > 1 && key.starts_with('/') && !key[1..].contains('/') => {
            Some(Endpoint::single)
        }
        _ => None,
    }
}

/// `GET /metrics`: the server's metrics in Prometheus's (OpenMetrics) text
/// format, open like `/healthz` (counts and latencies, no flag data).
async fn metrics(axum::extract::State(state): axum::extract::State<Arc<AppState>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(),
    )
        .into_response()
}

/// Every route of the server (see docs/PROTOCOL.md).
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
        .merge(reads(&state))
        .route("/v1/ws", get(stream::websocket))
        .route(
            "/v1/admin/document",
            get(admin::get_document).put(admin::put_document),
        )
        .route(
            "/v1/admin/flags/{key}",
            get(admin::get_flag)
                .put(admin::set_flag)
                .delete(admin::delete_flag),
        )
        .route("/v1/admin/flags/{key}/preview", post(admin::preview))
        .route(
            "/v1/admin/evaluators/{name}",
            put(admin::set_evaluator).delete(admin::delete_evaluator),
        )
        .route("/v1/admin/history", get(admin::history))
        .route("/v1/admin/versions/{version}", get(admin::get_version))
        .route("/v1/admin/rollback", post(admin::rollback))
        .route("/v1/admin/whoami", get(environments::whoami))
        .route(
            "/v1/admin/environments",
            get(environments::list).post(environments::create),
        )
        .route(
            "/v1/admin/environments/{env}/document",
            get(admin::get_document).put(admin::put_document),
        )
        .route(
            "/v1/admin/environments/{env}/flags/{key}",
            get(admin::get_flag)
                .put(admin::set_flag)
                .delete(admin::delete_flag),
        )
        .route(
            "/v1/admin/environments/{env}/flags/{key}/preview",
            post(admin::preview),
        )
        .route(
            "/v1/admin/environments/{env}/evaluators/{name}",
            put(admin::set_evaluator).delete(admin::delete_evaluator),
        )
        .route("/v1/admin/environments/{env}/history", get(admin::history))
        .route(
            "/v1/admin/environments/{env}/versions/{version}",
            get(admin::get_version),
        )
        .route(
            "/v1/admin/environments/{env}/rollback",
            post(admin::rollback),
        )
        .route(
            "/v1/admin/environments/{env}/promote",
            post(environments::promote),
        )
        .route(
            "/v1/admin/credentials",
            get(environments::credentials).post(environments::create_credential),
        )
        .route(
            "/v1/admin/credentials/{id}",
            delete(environments::revoke_credential),
        )
        .route(
            "/v1/admin/credentials/{id}/rotate",
            post(environments::rotate_credential),
        )
        .route(
            "/v1/events",
            // A gzip'd batch is decompressed on the way in; the body limit
            // below holds the decompressed size.
            post(events::collect)
                .layer(tower_http::decompression::RequestDecompressionLayer::new()),
        )
        .route("/v1/admin/events", get(events::list))
        .route(
            "/v1/admin/experiments",
            get(experiments::list).post(experiments::create),
        )
        .route(
            "/v1/admin/experiments/{flag}",
            get(experiments::results).delete(experiments::delete),
        )
        .route("/v1/admin/experiments/{flag}/stop", post(experiments::stop))
        .route("/v1/admin/pancake", get(pancake::list))
        .route("/v1/admin/pancake/history", get(pancake::history))
        .route(
            "/v1/admin/pancake/{kind}/{name}",
            put(pancake::set).delete(pancake::clear),
        )
        .route(
            "/v1/admin/pancake/flags/{name}/{group}",
            delete(pancake::clear_group),
        )
        .route(
            "/v1/admin/pancake/flags/{name}/{group}/{id}",
            put(pancake::set_override).delete(pancake::clear_override),
        )
        .route("/admin", get(page::admin_page))
        .fallback(no_route)
        // Bodies are held to the document limit (plus room for formatting);
        // `ApiJson` answers a larger one with the JSON error naming the limit.
        .layer(DefaultBodyLimit::max(state.config.max_body_bytes()))
        // One middleware for what every request passes (each layer of its own
        // would box a future and clone the routes once more per request).
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state),
            guard,
        ))
        .with_state(state)
}

/// The longest request URI (path and query) answered; a longer one is `414`
/// with the JSON error. (Beyond 64 KiB hyper refuses the request line itself;
/// `connections.rs` rewrites that answer as the JSON error.)
pub(crate) const MAX_URI_BYTES: usize = 8 * 1024;

/// What every request passes, in this order: the `Host` check (with
/// `allowed_hosts` configured, a request naming another host is refused: a
/// DNS-rebinding page names its own), the URI limit ([`MAX_URI_BYTES`],
/// `414`), then the route; an OFREP evaluation is timed for /metrics, and
/// every error answer becomes the project's JSON error, whoever produced it
/// (axum's rejections of a path, a query or a method answer text).
async fn guard(
    axum::extract::State(state): axum::extract::State<Arc<AppState>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let allowed = &state.config.allowed_hosts;
    // Liveness probes name whatever address they reach the server at.
    if !allowed.is_empty() && !matches!(request.uri().path(), "/healthz" | "/readyz") {
        let host = request
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or_default();
        if !allowed.iter().any(|a| a.eq_ignore_ascii_case(host)) {
            return ApiError::Forbidden(format!(
                "Host '{host}' is not served here (allowed: {})",
                allowed.join(", ")
            ))
            .into_response();
        }
    }
    let length = request
        .uri()
        .path_and_query()
        .map_or(0, |p| p.as_str().len());
    if length > MAX_URI_BYTES {
        return ApiError::UriTooLong(format!(
            "the request URI has {length} bytes; at most {MAX_URI_BYTES} are accepted"
        ))
        .into_response();
    }
    let timed = ofrep_endpoint(&request).map(|endpoint| (endpoint, std::time::Instant::now()));
    let response = next.run(request).await;
    if let Some((endpoint, started)) = timed {
        state.metrics.ofrep(endpoint, started.elapsed());
    }
    json_errors(response).await
}

/// Readiness, as flagd's `/readyz`: `200` while the server has a document
/// and its store answers; `503` with `Retry-After` while the store is
/// unreachable (the last document is still served).
async fn ready(axum::extract::State(state): axum::extract::State<Arc<AppState>>) -> Response {
    if state
        .store_reachable
        .load(std::sync::atomic::Ordering::Acquire)
    {
        let body = crate::wire::Ready {
            status: "ready",
            version: state.default_environment().current().version,
        };
        return axum::Json(body).into_response();
    }
    ApiError::Unavailable {
        message: "the store is unreachable; serving the last document, writes are refused".into(),
        retry_after: 5,
    }
    .into_response()
}

/// An unknown route.
async fn no_route(method: Method, uri: Uri) -> ApiError {
    ApiError::NotFound(format!(
        "no route {method} {} (docs/PROTOCOL.md lists them)",
        uri.path()
    ))
}

/// Turns an error response that is not JSON into `{"error": "..."}` with the
/// same status and headers: the text it had, or the status's reason.
async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 4096)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let message = if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_string()
    } else {
        text
    };
    let body = serde_json::to_vec(&crate::wire::ErrorBody::new(&message)).unwrap_or_default();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, Body::from(body))
}
