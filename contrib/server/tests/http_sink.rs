//! `HttpSink` (the `flagyard` crate's) against collectors on loopback: the
//! server's `POST /v1/events`, and an endpoint speaking the same format that
//! answers 429 with `Retry-After` first. A batch smaller than the batch size
//! leaves when the interval is over; `close()` delivers what is buffered;
//! a 429's `Retry-After` is waited out and the retried batch keeps its id;
//! a wrong SDK key is reported, with origin `Sink`, and loses nothing.

mod common;

use std::io::Read;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{TOKEN, client, start};
use flagyard::core::{ErrorOrigin, EvaluationContext, TrackingDetails};
use flagyard::{FlagyardProvider, FlagyardProviderBuilder, HttpSink, ReconnectPolicy};
use serde_json::Value;

const SDK_KEY: &str = "sdk-secret";

/// How many tracking events named `name` the server keeps.
async fn kept(base: &str, name: &str) -> usize {
    let response = client()
        .get(format!(
            "{base}/v1/admin/events?kind=tracking&name={name}&limit=1000"
        ))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    let page: Value = response.json().await.expect("JSON");
    page["events"].as_array().expect("events").len()
}

/// A provider whose events go to `sink`.
fn provider(sink: &HttpSink) -> FlagyardProvider {
    builder(sink).build().expect("provider builds")
}

/// [`provider`]'s builder, for more settings.
fn builder(sink: &HttpSink) -> FlagyardProviderBuilder {
    FlagyardProvider::builder()
        .bootstrap_document(r#"{"flags": {}}"#)
        .sink(sink.clone())
}

fn track(provider: &FlagyardProvider, name: &str, users: usize) {
    for i in 0..users {
        let user = EvaluationContext::new().with_targeting_key(format!("user-{i}"));
        provider.track(name, &user, TrackingDetails::new().value(i as f64));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partial_batch_leaves_when_the_interval_is_over_and_close_delivers_the_rest() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start(&dir.path().join("db.sqlite"), |c| {
        c.sdk_key = Some(SDK_KEY.into())
    })
    .await;
    let url = format!("{}/v1/events", server.base);

    // 10 events, a batch size of 500: only the 300 ms interval sends them.
    let sink = HttpSink::builder(&url)
        .sdk_key(SDK_KEY)
        .batch_size(500)
        .interval(Duration::from_millis(300))
        .build()
        .expect("sink builds");
    let early = provider(&sink);
    track(&early, "signup", 10);
    let deadline = Instant::now() + Duration::from_secs(5);
    while kept(&server.base, "signup").await < 10 {
        assert!(
            Instant::now() < deadline,
            "10 events under the batch size were not sent within 5 s of a 300 ms interval \
             (server keeps {}; sink {:?})",
            kept(&server.base, "signup").await,
            sink.stats()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(sink.stats().delivered, 10, "{:?}", sink.stats());

    // An interval that never comes: close() alone delivers them.
    let sink = HttpSink::builder(&url)
        .sdk_key(SDK_KEY)
        .interval(Duration::from_secs(3600))
        .build()
        .expect("sink builds");
    let late = provider(&sink);
    track(&late, "purchase", 7);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(kept(&server.base, "purchase").await, 0, "sent before close");
    tokio::task::spawn_blocking(move || late.close())
        .await
        .expect("close");
    assert_eq!(kept(&server.base, "purchase").await, 7);
    let stats = sink.stats();
    assert_eq!(
        (stats.delivered, stats.pending, stats.dropped),
        (7, 0, 0),
        "{stats:?}"
    );

    tokio::task::spawn_blocking(move || early.close())
        .await
        .expect("close");
    server.stop().await;
}

/// Each POST's arrival and its batch id.
type Posts = Arc<Mutex<Vec<(Instant, String, usize)>>>;

/// A collector on loopback that answers its first batch 429 with
/// `Retry-After: 2` and keeps the rest.
async fn busy_collector() -> (String, Posts) {
    use axum::http::{HeaderMap, StatusCode, header};
    use axum::response::IntoResponse;
    let posts: Posts = Default::default();
    let seen = Arc::clone(&posts);
    let app = axum::Router::new().route(
        "/v1/events",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let seen = Arc::clone(&seen);
            async move {
                assert_eq!(headers[header::CONTENT_ENCODING], "gzip");
                let mut json = String::new();
                flate2::read::GzDecoder::new(&body[..])
                    .read_to_string(&mut json)
                    .expect("gzip'd JSON");
                let batch: Value = serde_json::from_str(&json).expect("a batch");
                let id = batch["batchId"].as_str().expect("batchId").to_string();
                let events = batch["events"].as_array().expect("events").len();
                let first = {
                    let mut seen = seen.lock().expect("lock");
                    seen.push((Instant::now(), id, events));
                    seen.len() == 1
                };
                if first {
                    return (
                        StatusCode::TOO_MANY_REQUESTS,
                        [(header::RETRY_AFTER, "2")],
                        "",
                    )
                        .into_response();
                }
                axum::Json(serde_json::json!({
                    "accepted": events, "duplicate": false, "refused": []
                }))
                .into_response()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/v1/events", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, posts)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_is_retried_after_its_retry_after_with_the_same_batch_id() {
    let (url, posts) = busy_collector().await;
    // The backoff alone would retry after 50 ms.
    let sink = HttpSink::builder(url)
        .interval(Duration::from_millis(100))
        .reconnect(ReconnectPolicy {
            initial: Duration::from_millis(50),
            ..ReconnectPolicy::default()
        })
        .build()
        .expect("sink builds");
    let provider = provider(&sink);
    track(&provider, "purchase", 5);
    let deadline = Instant::now() + Duration::from_secs(10);
    while sink.stats().delivered < 5 {
        assert!(
            Instant::now() < deadline,
            "not delivered: {:?}",
            sink.stats()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let posts = posts.lock().expect("lock").clone();
    assert_eq!(posts.len(), 2, "one refusal, one retry: {posts:?}");
    let waited = posts[1].0 - posts[0].0;
    assert!(
        waited >= Duration::from_millis(1900),
        "retried {waited:?} after a 429 asking for 2 s"
    );
    assert_eq!(posts[0].1, posts[1].1, "the retried batch keeps its id");
    assert_eq!((posts[0].2, posts[1].2), (5, 5));
    let stats = sink.stats();
    assert_eq!(
        (stats.retries, stats.delivered, stats.dropped),
        (1, 5, 0),
        "{stats:?}"
    );
    tokio::task::spawn_blocking(move || provider.close())
        .await
        .expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_sdk_key_is_reported_and_its_events_wait() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start(&dir.path().join("db.sqlite"), |c| {
        c.sdk_key = Some(SDK_KEY.into())
    })
    .await;
    let reports: Arc<Mutex<Vec<(ErrorOrigin, String)>>> = Default::default();
    let seen = Arc::clone(&reports);
    let sink = HttpSink::builder(format!("{}/v1/events", server.base))
        .sdk_key("not-the-key")
        .interval(Duration::from_millis(100))
        .build()
        .expect("sink builds");
    let provider = builder(&sink)
        .on_error(move |e| {
            let report = (e.origin(), e.to_string());
            seen.lock().expect("lock").push(report);
        })
        .build()
        .expect("provider builds");
    track(&provider, "purchase", 3);
    let deadline = Instant::now() + Duration::from_secs(5);
    while reports.lock().expect("lock").is_empty() {
        assert!(Instant::now() < deadline, "no report: {:?}", sink.stats());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (origin, message) = reports.lock().expect("lock")[0].clone();
    assert_eq!(origin, ErrorOrigin::Sink);
    assert!(
        message.contains("refused the credentials (401)") && message.contains("/v1/events"),
        "{message}"
    );
    let stats = sink.stats();
    assert_eq!(
        (stats.delivered, stats.dropped, stats.pending),
        (0, 0, 3),
        "{stats:?}"
    );
    assert_eq!(kept(&server.base, "purchase").await, 0);
    server.stop().await;
}
