//! HTTP routes.

mod admin;
mod flags;
mod ofrep;
mod page;
mod pancake;
mod stream;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post, put};

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
        // Bodies are held to the document limit (plus room for formatting);
        // `ApiJson` answers a larger one with the JSON error naming the limit.
        .layer(DefaultBodyLimit::max(state.config.max_body_bytes()))
        .with_state(state)
}
