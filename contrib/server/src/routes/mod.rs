//! HTTP routes.

mod admin;
mod flags;
mod ofrep;
mod stream;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post, put};

use crate::state::AppState;

/// Every route of the server (see docs/PROTOCOL.md).
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/v1/flags", get(flags::get_flags))
        .route("/v1/stream", get(stream::sse))
        .route("/v1/ws", get(stream::websocket))
        .route("/ofrep/v1/evaluate/flags", post(ofrep::bulk))
        .route("/ofrep/v1/evaluate/flags/{key}", post(ofrep::single))
        .route("/v1/admin/document", put(admin::put_document))
        .route(
            "/v1/admin/flags/{key}",
            put(admin::set_flag).delete(admin::delete_flag),
        )
        .route("/v1/admin/history", get(admin::history))
        .with_state(state)
}
