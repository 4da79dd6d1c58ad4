//! `GET /v1/stream` (SSE) and `GET /v1/ws` (WebSocket): the SDK key's
//! environment's document on connect and on every change, with heartbeats;
//! a stream closes when the server stops or its key is revoked.

use std::convert::Infallible;
use std::sync::Arc;

use axum::Extension;
use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};

use crate::access::ReadAccess;
use crate::connections::ConnectionSlot;
use crate::error::ApiError;
use crate::follow::{Follow, documents, next_document};
use crate::metrics::Protocol;
use crate::published::Published;
use crate::state::AppState;

fn sse_event(published: &Published) -> Event {
    Event::default()
        .event("document")
        .id(published.version.to_string())
        .data(published.message.as_str())
}

pub(super) async fn sse(
    State(state): State<Arc<AppState>>,
    read: ReadAccess,
) -> Result<Response, ApiError> {
    let heartbeat = state.heartbeat();
    use futures_util::StreamExt;
    let stream = documents(Follow::new(state, read, Protocol::sse))
        .map(|(published, _)| Ok::<_, Infallible>(sse_event(&published)));
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(heartbeat).text("heartbeat"))
        .into_response())
}

/// The largest message a client may send on `/v1/ws` (it sends only pongs
/// and close frames); a larger one closes the connection.
const MAX_INBOUND_MESSAGE: usize = 4 * 1024;

/// The socket's read buffer: room for [`MAX_INBOUND_MESSAGE`] (tungstenite's
/// default, 128 KiB per connection, is what an idle client cost the server).
const READ_BUFFER: usize = MAX_INBOUND_MESSAGE + 64;

pub(super) async fn websocket(
    State(state): State<Arc<AppState>>,
    read: ReadAccess,
    headers: HeaderMap,
    slot: Option<Extension<ConnectionSlot>>,
    upgrade: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    check_origin(&headers, &state.config.allowed_origins)?;
    Ok(upgrade
        .max_message_size(MAX_INBOUND_MESSAGE)
        .max_frame_size(MAX_INBOUND_MESSAGE)
        .read_buffer_size(READ_BUFFER)
        // Each message is written out at once (one document per change),
        // never held in a buffer of its own per connection.
        .write_buffer_size(0)
        .on_upgrade(move |socket| async move {
            // The socket keeps its connection's place under the cap.
            let _slot = slot;
            serve_socket(Follow::new(state, read, Protocol::websocket), socket).await;
        }))
}

/// Refuses a browser's cross-site WebSocket (cross-site WebSocket hijacking):
/// an `Origin` must be the server's own (its host is the `Host` asked for) or
/// one of `allowed` (`*`: any). Without an `Origin` (no browser) it passes.
fn check_origin(headers: &HeaderMap, allowed: &[String]) -> Result<(), ApiError> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let origin = origin.to_str().unwrap_or_default();
    let own = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .is_some_and(|host| {
            origin
                .split_once("://")
                .is_some_and(|(_, rest)| rest.eq_ignore_ascii_case(host))
        });
    if own
        || allowed
            .iter()
            .any(|a| a == "*" || a.eq_ignore_ascii_case(origin))
    {
        return Ok(());
    }
    Err(ApiError::Forbidden(format!(
        "WebSocket from origin '{origin}' refused: allow it with --allow-origin"
    )))
}

async fn serve_socket(mut follow: Follow, mut socket: WebSocket) {
    let first = follow.environment.current();
    let mut last = first.version;
    if socket
        .send(Message::Text(first.message.clone()))
        .await
        .is_err()
    {
        return;
    }
    let mut ping = tokio::time::interval(follow.state.heartbeat());
    ping.tick().await;
    loop {
        tokio::select! {
            next = next_document(&mut follow) => match next {
                Some(published) if published.version > last => {
                    last = published.version;
                    if socket.send(Message::Text(published.message.clone())).await.is_err() {
                        return;
                    }
                }
                Some(_) => {}
                None => {
                    let _ = socket.send(Message::Close(None)).await;
                    return;
                }
            },
            _ = ping.tick() => {
                if socket.send(Message::Ping(Vec::new().into())).await.is_err() {
                    return;
                }
            }
            incoming = socket.recv() => match incoming {
                // Pings are answered by axum; pongs and client text are ignored.
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            },
        }
    }
}
