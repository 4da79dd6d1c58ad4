//! `GET /v1/stream` (SSE) and `GET /v1/ws` (WebSocket): the document on connect
//! and on every change, with heartbeats.

use std::convert::Infallible;
use std::sync::Arc;

use axum::Extension;
use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use tokio::sync::broadcast::error::RecvError;

use crate::access::ReadAccess;
use crate::connections::ConnectionSlot;
use crate::error::ApiError;
use crate::published::Published;
use crate::state::AppState;

fn sse_event(published: &Published) -> Event {
    Event::default()
        .event("document")
        .id(published.version.to_string())
        .data(published.message.as_str())
}

/// The next document to send, or `None` when the server stops. A subscriber
/// that fell behind gets the newest document (intermediate ones are superseded).
async fn next_document(
    state: &AppState,
    rx: &mut tokio::sync::broadcast::Receiver<Arc<Published>>,
    shutdown: &mut tokio::sync::watch::Receiver<bool>,
) -> Option<Arc<Published>> {
    loop {
        tokio::select! {
            received = rx.recv() => match received {
                Ok(published) => return Some(published),
                Err(RecvError::Lagged(_)) => return Some(state.current()),
                Err(RecvError::Closed) => return None,
            },
            changed = shutdown.changed() => {
                if changed.is_err() || *shutdown.borrow() {
                    return None;
                }
            }
        }
    }
}

pub(super) async fn sse(
    State(state): State<Arc<AppState>>,
    _read: ReadAccess,
) -> Result<Response, ApiError> {
    let rx = state.changes.subscribe();
    let first = state.current();
    let shutdown = state.shutdown.clone();
    let heartbeat = state.heartbeat();
    let stream = events(state, rx, first, shutdown);
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(heartbeat).text("heartbeat"))
        .into_response())
}

fn events(
    state: Arc<AppState>,
    rx: tokio::sync::broadcast::Receiver<Arc<Published>>,
    first: Arc<Published>,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> impl Stream<Item = Result<Event, Infallible>> {
    futures_util::stream::unfold(
        (state, rx, Some(first), shutdown, 0u64),
        |(state, mut rx, pending, mut shutdown, last)| async move {
            if state.stopping() {
                return None;
            }
            let published = match pending {
                Some(p) => p,
                None => loop {
                    let p = next_document(&state, &mut rx, &mut shutdown).await?;
                    if p.version > last {
                        break p;
                    }
                },
            };
            let version = published.version;
            Some((
                Ok(sse_event(&published)),
                (state, rx, None, shutdown, version),
            ))
        },
    )
}

/// The largest message a client may send on `/v1/ws` (it sends only pongs
/// and close frames); a larger one closes the connection.
const MAX_INBOUND_MESSAGE: usize = 4 * 1024;

pub(super) async fn websocket(
    State(state): State<Arc<AppState>>,
    _read: ReadAccess,
    headers: HeaderMap,
    slot: Option<Extension<ConnectionSlot>>,
    upgrade: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    check_origin(&headers, &state.config.allowed_origins)?;
    Ok(upgrade
        .max_message_size(MAX_INBOUND_MESSAGE)
        .max_frame_size(MAX_INBOUND_MESSAGE)
        .on_upgrade(move |socket| async move {
            // The socket keeps its connection's place under the cap.
            let _slot = slot;
            serve_socket(state, socket).await;
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

async fn serve_socket(state: Arc<AppState>, mut socket: WebSocket) {
    let mut rx = state.changes.subscribe();
    let mut shutdown = state.shutdown.clone();
    let first = state.current();
    let mut last = first.version;
    if socket
        .send(Message::Text(first.message.clone()))
        .await
        .is_err()
    {
        return;
    }
    let mut ping = tokio::time::interval(state.heartbeat());
    ping.tick().await;
    loop {
        tokio::select! {
            next = next_document(&state, &mut rx, &mut shutdown) => match next {
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
