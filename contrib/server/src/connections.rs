//! Accepting and holding connections: a cap on how many are open, a deadline
//! for a request's headers and for each read of its body, accepting again
//! after an accept error (file descriptors exhausted), and a graceful
//! shutdown that ends within a deadline however clients behave.
//!
//! Hand-written over hyper-util because `axum::serve` has none of the
//! timeouts, no cap and no shutdown deadline.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tower::ServiceExt;

/// A connection's place under the cap. Each request carries a clone in its
/// extensions, so a connection upgraded to a WebSocket (which hyper hands
/// off, ending its own future) keeps its place until the socket closes.
#[derive(Debug, Clone)]
pub(crate) struct ConnectionSlot {
    _permit: Arc<OwnedSemaphorePermit>,
}

/// How connections are held (`ServerConfig` sets them).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnectionLimits {
    /// Open connections at most; one more is answered `503` and closed.
    pub max_connections: usize,
    /// Time for a request's headers to arrive (and for an idle keep-alive
    /// connection to start its next request).
    pub header_timeout: Duration,
    /// Time for each read of a request body.
    pub body_timeout: Duration,
    /// How long a graceful shutdown waits for open requests.
    pub shutdown_deadline: Duration,
}

/// Serves `app` on `listener` until `shutdown` completes, then finishes the
/// open requests within the shutdown deadline and drops the rest.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let app = app.layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
        limits.body_timeout,
    ));
    // Within what a semaphore and `acquire_many` can count.
    let max_connections = limits.max_connections.clamp(1, u32::MAX as usize);
    let slots = Arc::new(Semaphore::new(max_connections));
    // Tells every connection to finish its request and close.
    let (closing, _) = watch::channel(false);
    // HTTP/1.1 only: every client of this port speaks it, and the
    // HTTP/2-detecting builder waits for a first byte without a deadline.
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    tokio::pin!(shutdown);
    let mut last_warning = None;
    loop {
        let (stream, addr) = tokio::select! {
            accepted = accept(&listener, &mut last_warning) => accepted,
            () = &mut shutdown => break,
        };
        let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
            tokio::spawn(refuse(stream, max_connections));
            continue;
        };
        let slot = ConnectionSlot {
            _permit: Arc::new(permit),
        };
        let request_slot = slot.clone();
        let service = app
            .clone()
            .map_request(move |mut request: hyper::Request<Incoming>| {
                request.extensions_mut().insert(ConnectInfo(addr));
                request.extensions_mut().insert(request_slot.clone());
                request
            });
        let connection = builder
            .serve_connection(
                TokioIo::new(JsonParseErrors::new(stream)),
                TowerToHyperService::new(service),
            )
            .with_upgrades();
        let mut close = closing.subscribe();
        tokio::spawn(async move {
            tokio::pin!(connection);
            let ended = tokio::select! {
                ended = connection.as_mut() => ended,
                () = async { drop(close.wait_for(|closing| *closing).await) } => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(e) = ended {
                tracing::debug!(client = %addr, error = %e, "connection ended");
            }
            drop(slot);
        });
    }
    drop(listener);
    let _ = closing.send(true);
    // Every connection holds a slot: all slots back means all closed.
    let all = u32::try_from(max_connections).unwrap_or(u32::MAX);
    match tokio::time::timeout(limits.shutdown_deadline, slots.acquire_many(all)).await {
        Ok(_) => {}
        Err(_) => tracing::warn!(
            deadline = ?limits.shutdown_deadline,
            "connections still open at the shutdown deadline; closing them"
        ),
    }
    Ok(())
}

/// The next connection on `listener`, with Nagle off: a stream's small
/// messages (and a response written after its request was read) go out at
/// once instead of waiting for the peer's delayed ACK (up to 40 ms on Linux).
/// After an accept error (out of file descriptors, or a connection reset
/// before it was accepted) waits a little and accepts again, saying so at
/// most once a second (`last_warning` remembers when it last did).
pub(crate) async fn accept(
    listener: &TcpListener,
    last_warning: &mut Option<std::time::Instant>,
) -> (TcpStream, std::net::SocketAddr) {
    loop {
        match listener.accept().await {
            Ok((stream, addr)) => {
                if let Err(e) = stream.set_nodelay(true) {
                    tracing::debug!(error = %e, "could not set TCP_NODELAY");
                }
                return (stream, addr);
            }
            Err(e) => {
                if last_warning.is_none_or(|at| at.elapsed() >= Duration::from_secs(1)) {
                    tracing::warn!(error = %e, "accept failed; accepting again shortly");
                    *last_warning = Some(std::time::Instant::now());
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Answers a connection over the cap with `503` and closes it.
async fn refuse(mut stream: TcpStream, max: usize) {
    tracing::warn!(max, "connection refused: the connection cap is reached");
    let body = format!(
        r#"{{"error":"the server holds its maximum of {max} connections; retry shortly"}}"#
    );
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         retry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let _ = stream.write_all(response.as_bytes()).await;
        let _ = stream.shutdown().await;
    })
    .await;
}

/// A connection's stream that answers hyper's own refusals in JSON. hyper
/// refuses a request head it cannot take (a URI over 64 KiB: `414`; a head
/// over its buffer: `431`; bytes that are not HTTP: `400`) before any handler
/// runs, with an empty body. Such an answer is a `4xx` head without a
/// `content-type` (every answer of the router has one); it is replaced, as it
/// is written, by the same status with the project's JSON error.
struct JsonParseErrors<S> {
    inner: S,
    /// A replacement still to write, and how much of it is written.
    pending: Vec<u8>,
    written: usize,
}

impl<S> JsonParseErrors<S> {
    fn new(inner: S) -> Self {
        JsonParseErrors {
            inner,
            pending: Vec::new(),
            written: 0,
        }
    }
}

/// The JSON answer replacing hyper's own bodiless refusal `head`, if it is one.
fn json_refusal(head: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(head).ok()?;
    let status_line = text.strip_prefix("HTTP/1.1 4")?;
    let end = text.find("\r\n\r\n")?;
    if text[..end].to_ascii_lowercase().contains("content-type:") {
        return None;
    }
    let status: u16 = format!("4{}", status_line.get(..2)?).parse().ok()?;
    let why = match status {
        414 => "the request URI is over 64 KiB (URIs over 8 KiB are refused)",
        431 => "the request head is too large",
        _ => "the request is not HTTP/1.1 the server can read",
    };
    let reason = text.lines().next()?.get(13..).unwrap_or("");
    let body = format!(r#"{{"error":"{why}"}}"#);
    Some(
        format!(
            "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n\
             connection: close\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes(),
    )
}

impl<S: AsyncWrite + Unpin> JsonParseErrors<S> {
    /// Writes what is left of a replacement.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.written < self.pending.len() {
            let n =
                ready!(Pin::new(&mut self.inner).poll_write(cx, &self.pending[self.written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.written += n;
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for JsonParseErrors<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for JsonParseErrors<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        ready!(self.poll_pending(cx))?;
        if !self.pending.is_empty() {
            // The refusal was answered: the connection closes; drop the rest.
            return Poll::Ready(Ok(buf.len()));
        }
        if let Some(json) = json_refusal(buf) {
            self.pending = json;
            let _ = self.poll_pending(cx)?;
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_pending(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_pending(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::json_refusal;

    #[test]
    fn only_hyper_s_bodiless_refusals_are_replaced() {
        let hyper = b"HTTP/1.1 414 URI Too Long\r\ncontent-length: 0\r\ndate: x\r\n\r\n";
        let json = String::from_utf8(json_refusal(hyper).expect("replaced")).expect("utf-8");
        assert!(
            json.starts_with("HTTP/1.1 414 URI Too Long\r\ncontent-type: application/json"),
            "{json}"
        );
        assert!(
            json.ends_with(
                r#"{"error":"the request URI is over 64 KiB (URIs over 8 KiB are refused)"}"#
            ),
            "{json}"
        );
        let ours = b"HTTP/1.1 414 URI Too Long\r\ncontent-type: application/json\r\ncontent-length: 9\r\n\r\n";
        assert!(json_refusal(ours).is_none());
        assert!(json_refusal(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").is_none());
        assert!(json_refusal(b"HTTP/1.1 304 Not Modified\r\n\r\n").is_none());
    }
}
