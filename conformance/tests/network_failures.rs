//! Network failure scenarios for every network source: a server answering 500
//! or 401, and a stream that goes silent. Served by small test servers on
//! loopback; the provider starts from a cached document.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ws::{Message, WebSocketUpgrade};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use flagyard::core::{ErrorOrigin, ProviderError, Source};
use flagyard::{
    FlagyardProvider, MemoryStore, PollingSource, ProviderStatus, ReconnectPolicy, SseSource,
    WebSocketSource,
};
use flagyard_conformance::suite::record_errors;
use futures_util::StreamExt;

const DOC: &str = r#"{"flags": {"a": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "on"}}}"#;

async fn serve(app: Router) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}"), task)
}

fn sources(base: &str, read_timeout: Duration) -> Vec<(&'static str, Box<dyn Source>)> {
    let policy = ReconnectPolicy::fast(Duration::from_millis(50));
    vec![
        (
            "poll",
            Box::new(
                PollingSource::builder(format!("{base}/v1/flags"))
                    .interval(Duration::from_millis(100))
                    .reconnect(policy.clone())
                    .read_timeout(read_timeout)
                    .build()
                    .expect("valid source"),
            ),
        ),
        (
            "sse",
            Box::new(
                SseSource::builder(format!("{base}/v1/stream"))
                    .reconnect(policy.clone())
                    .read_timeout(read_timeout)
                    .build()
                    .expect("valid source"),
            ),
        ),
        (
            "ws",
            Box::new(
                WebSocketSource::builder(format!("{}/v1/ws", base.replace("http://", "ws://")))
                    .reconnect(policy)
                    .read_timeout(read_timeout)
                    .build()
                    .expect("valid source"),
            ),
        ),
    ]
}

struct Boxed(Box<dyn Source>);

impl Source for Boxed {
    fn describe(&self) -> String {
        self.0.describe()
    }
    fn run(
        self: Box<Self>,
        updates: Arc<dyn flagyard::core::SourceUpdates>,
    ) -> flagyard::core::BoxFuture<()> {
        self.0.run(updates)
    }
}

fn provider(source: Box<dyn Source>, errors: Arc<Mutex<Vec<ProviderError>>>) -> FlagyardProvider {
    FlagyardProvider::builder()
        .source(Boxed(source))
        .store(MemoryStore::with_document(DOC))
        .on_error(record_errors(errors))
        .build()
        .expect("provider builds")
}

async fn until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn status_router(status: StatusCode) -> Router {
    Router::new()
        .route("/v1/flags", get(move || async move { status }))
        .route("/v1/stream", get(move || async move { status }))
        .route("/v1/ws", get(move || async move { status }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_answering_500_makes_every_source_stale_and_keeps_the_document() {
    let (base, server) = serve(status_router(StatusCode::INTERNAL_SERVER_ERROR)).await;
    for (name, source) in sources(&base, Duration::from_secs(2)) {
        let errors: Arc<Mutex<Vec<ProviderError>>> = Arc::default();
        let p = provider(source, Arc::clone(&errors));
        until(&format!("{name}: stale"), || {
            p.status() == ProviderStatus::Stale
        })
        .await;
        assert!(
            p.get_bool("a", false, &()),
            "{name}: the cached document still serves"
        );
        // It keeps retrying: several errors, all transient network errors.
        until(&format!("{name}: retries"), || {
            errors.lock().unwrap().len() >= 3
        })
        .await;
        let errors = errors.lock().unwrap().clone();
        assert!(
            errors
                .iter()
                .all(|e| e.origin() == ErrorOrigin::Network && e.is_transient()),
            "{name}: {errors:?}"
        );
        assert!(
            errors[0].message().contains("500"),
            "{name}: {}",
            errors[0].message()
        );
        p.close();
    }
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_answering_401_puts_every_source_in_error_and_retries_slowly() {
    let (base, server) = serve(status_router(StatusCode::UNAUTHORIZED)).await;
    for (name, source) in sources(&base, Duration::from_secs(2)) {
        let errors: Arc<Mutex<Vec<ProviderError>>> = Arc::default();
        let p = provider(source, Arc::clone(&errors));
        until(&format!("{name}: error status"), || {
            p.status() == ProviderStatus::Error
        })
        .await;
        assert!(
            p.get_bool("a", false, &()),
            "{name}: the cached document still serves"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        let errors = errors.lock().unwrap().clone();
        assert_eq!(
            errors.len(),
            1,
            "{name}: one refusal, then a slow retry: {errors:?}"
        );
        assert!(
            !errors[0].is_transient() && errors[0].message().contains("refused the credentials"),
            "{name}: {errors:?}"
        );
        p.close();
    }
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_stream_is_detected_and_reopened() {
    let message = format!(r#"{{"version": 1, "document": {DOC}}}"#);
    let (sse_message, ws_message) = (message.clone(), message);
    let app = Router::new()
        .route(
            "/v1/stream",
            get(move || {
                let first = format!("event: document\nid: 1\ndata: {sse_message}\n\n");
                async move {
                    // One document, then silence: no events, no heartbeats.
                    let body =
                        futures_util::stream::once(async move { Ok::<_, std::io::Error>(first) })
                            .chain(futures_util::stream::pending());
                    (
                        [("content-type", "text/event-stream")],
                        axum::body::Body::from_stream(body),
                    )
                }
            }),
        )
        .route(
            "/v1/ws",
            get(move |ws: WebSocketUpgrade| {
                let text = ws_message.clone();
                async move {
                    ws.on_upgrade(move |mut socket| async move {
                        let _ = socket.send(Message::Text(text.into())).await;
                        tokio::time::sleep(Duration::from_secs(60)).await;
                    })
                    .into_response()
                }
            }),
        );
    let (base, server) = serve(app).await;
    for (name, source) in sources(&base, Duration::from_millis(300))
        .into_iter()
        .skip(1)
    {
        let errors: Arc<Mutex<Vec<ProviderError>>> = Arc::default();
        let p = provider(source, Arc::clone(&errors));
        until(&format!("{name}: the silence detected"), || {
            errors.lock().unwrap().len() >= 2
        })
        .await;
        let errors = errors.lock().unwrap().clone();
        assert!(
            errors
                .iter()
                .all(|e| e.origin() == ErrorOrigin::Network && e.is_transient()),
            "{name}: {errors:?}"
        );
        assert!(p.get_bool("a", false, &()), "{name}: document kept");
        p.close();
    }
    server.abort();
}

/// A hostile SSE stream — a line that is not UTF-8, then a 6 MB event — does
/// not wedge the source: both are skipped and reported at once, the next
/// document is applied, the provider stays Ready.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_sse_stream_cannot_wedge_the_source() {
    let good = |v: i64| {
        format!(
            "event: document\ndata: {{\"version\":{v},\"document\":{{\"flags\":{{\"n\":{{\"state\":\"ENABLED\",\"variants\":{{\"v\":{v}}},\"defaultVariant\":\"v\"}}}}}}}}\n\n"
        )
    };
    let mut body: Vec<u8> = good(1).into_bytes();
    body.extend_from_slice(b"event: document\ndata: \xff\xfe{\n\n");
    body.extend_from_slice(b"event: document\ndata: ");
    body.extend(std::iter::repeat_n(b'x', 6 * 1024 * 1024));
    body.extend_from_slice(b"\n\n");
    body.extend_from_slice(good(2).as_bytes());
    let body = Arc::new(body);
    let app = Router::new().route(
        "/v1/stream",
        get(move || {
            let body = Arc::clone(&body);
            async move {
                // The events, then the stream stays open (a heartbeat a second).
                let events = futures_util::stream::once(async move {
                    Ok::<_, std::io::Error>(axum::body::Bytes::from(body.to_vec()))
                })
                .chain(futures_util::stream::unfold((), |()| async {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    Some((Ok(axum::body::Bytes::from_static(b": ping\n\n")), ()))
                }));
                (
                    [(axum::http::header::CONTENT_TYPE, "text/event-stream")],
                    axum::body::Body::from_stream(events),
                )
            }
        }),
    );
    let (base, server) = serve(app).await;
    let errors: Arc<Mutex<Vec<ProviderError>>> = Arc::default();
    let provider = FlagyardProvider::builder()
        .source(
            SseSource::builder(format!("{base}/v1/stream"))
                .build()
                .expect("valid source"),
        )
        .on_error(record_errors(Arc::clone(&errors)))
        .build()
        .expect("provider builds");
    let started = Instant::now();
    while provider.get_i64("n", 0, &()) != 2 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the document after the hostile events is applied (errors: {:?})",
            errors.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(provider.status(), ProviderStatus::Ready);
    let errors = errors.lock().unwrap().clone();
    let messages: Vec<&str> = errors.iter().map(|e| e.message()).collect();
    assert!(
        messages.iter().any(|m| m.contains("not UTF-8")),
        "{messages:?}"
    );
    assert!(
        messages.iter().any(|m| m.contains("over the")),
        "{messages:?}"
    );
    assert!(
        errors.iter().all(|e| e.origin() == ErrorOrigin::Parser),
        "{messages:?}"
    );
    server.abort();
}
