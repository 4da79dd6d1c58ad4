//! `GET /v1/stream` (SSE) and `GET /v1/ws` (WebSocket): the SDK key's
//! environment's document on connect and on every change, with heartbeats;
//! a stream closes when the server stops or its key is revoked.

use std::convert::Infallible;
use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use futures_util::{Stream, StreamExt};
use std::time::Duration;

use crate::access::ReadAccess;
use crate::connections::ConnectionSlot;
use crate::error::ApiError;
use crate::follow::{Follow, documents, next_document};
use crate::metrics::Protocol;
use crate::state::AppState;

/// The comment an idle SSE stream sends every heartbeat interval.
const HEARTBEAT: &[u8] = b": heartbeat\n\n";

/// `frames`, with [`HEARTBEAT`] whenever `every` passes without one; ends
/// with `frames`.
fn with_heartbeats(
    frames: impl Stream<Item = Bytes> + Send + 'static,
    every: Duration,
) -> impl Stream<Item = Bytes> + Send {
    let idle = Box::pin(tokio::time::sleep(every));
    futures_util::stream::unfold(
        (Box::pin(frames), idle),
        move |(mut frames, mut idle)| async move {
            let item = tokio::select! {
                frame = frames.next() => frame?,
                () = idle.as_mut() => Bytes::from_static(HEARTBEAT),
            };
            idle.as_mut().reset(tokio::time::Instant::now() + every);
            Some((item, (frames, idle)))
        },
    )
}

/// `GET /v1/stream`: each document as the SSE event [`Published`](crate::published::Published) encoded
/// once for every stream (no event is built per client).
pub(super) async fn sse(
    State(state): State<Arc<AppState>>,
    read: ReadAccess,
) -> Result<Response, ApiError> {
    let heartbeat = state.heartbeat();
    let frames = documents(Follow::new(state, read, Protocol::sse))
        .map(|(published, _)| published.sse.clone());
    Ok(event_stream(frames, heartbeat))
}

/// An SSE response of pre-encoded `frames`, with heartbeats: how every
/// event stream of the server answers (`/v1/stream`, `/ofrep/v1/changes`).
pub(super) fn event_stream(
    frames: impl Stream<Item = Bytes> + Send + 'static,
    heartbeat: Duration,
) -> Response {
    let body = with_heartbeats(frames, heartbeat).map(Ok::<_, Infallible>);
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        axum::body::Body::from_stream(body),
    )
        .into_response()
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
