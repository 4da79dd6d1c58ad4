//! FallbackSource: polling while the stream is down, and only then.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use flagyard::{FallbackSource, FlagyardProvider, PollingSource, ReconnectPolicy, SseSource};

fn doc(value: &str) -> String {
    format!(
        r#"{{"flags": {{"color": {{"state": "ENABLED", "variants": {{"c": "{value}"}}, "defaultVariant": "c"}}}}}}"#
    )
}

async fn until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polls_only_while_the_stream_is_down() {
    let stream_up = Arc::new(AtomicBool::new(false));
    let polls = Arc::new(AtomicUsize::new(0));
    let (up, counter) = (Arc::clone(&stream_up), Arc::clone(&polls));
    let app = Router::new()
        .route(
            "/v1/flags",
            get(move || {
                counter.fetch_add(1, Ordering::SeqCst);
                async { doc("from-polling") }
            }),
        )
        .route(
            "/v1/stream",
            get(move || {
                let up = up.load(Ordering::SeqCst);
                async move {
                    if !up {
                        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
                    }
                    let first = format!("event: document\nid: 2\ndata: {}\n\n", doc("from-stream"));
                    let heartbeats = futures_util::stream::unfold((), |()| async {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        Some((Ok::<_, std::io::Error>(": heartbeat\n\n".to_string()), ()))
                    });
                    let body =
                        futures_util::stream::once(async move { Ok::<_, std::io::Error>(first) });
                    let body = futures_util::StreamExt::chain(body, heartbeats);
                    (
                        [("content-type", "text/event-stream")],
                        axum::body::Body::from_stream(body),
                    )
                        .into_response()
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });

    let policy = ReconnectPolicy::fast(Duration::from_millis(50));
    let provider = FlagyardProvider::builder()
        .source(FallbackSource::new(
            SseSource::builder(format!("{base}/v1/stream"))
                .reconnect(policy.clone())
                .build()
                .expect("valid source"),
            PollingSource::builder(format!("{base}/v1/flags"))
                .interval(Duration::from_millis(50))
                .reconnect(policy)
                .build()
                .expect("valid source"),
        ))
        .build()
        .expect("provider builds");
    until("a document from the fallback", || {
        provider.get_string("color", "", &()) == "from-polling"
    })
    .await;
    until("several polls", || polls.load(Ordering::SeqCst) >= 3).await;

    stream_up.store(true, Ordering::SeqCst);
    until("the stream's document", || {
        provider.get_string("color", "", &()) == "from-stream"
    })
    .await;
    let settled = polls.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(
        polls.load(Ordering::SeqCst) <= settled + 1,
        "polling stopped once the stream delivered"
    );
    assert_eq!(provider.get_string("color", "", &()), "from-stream");
    provider.close();
    server.abort();
}
