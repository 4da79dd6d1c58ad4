//! The collector over real loopback HTTP: `POST /v1/events` (gzip or plain,
//! each event checked on its own, batch ids kept once, the SDK key, size
//! caps) and `GET /v1/admin/events` (filters, pages, following).

mod common;

use std::io::Write;

use common::{TOKEN, client, start};
use serde_json::{Value, json};

const SDK_KEY: &str = "sdk-secret";

fn gzip(body: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(body).expect("gzip");
    encoder.finish().expect("gzip")
}

async fn post(base: &str, key: &str, body: Vec<u8>, gzipped: bool) -> (u16, Value) {
    let mut request = client()
        .post(format!("{base}/v1/events"))
        .bearer_auth(key)
        .header("content-type", "application/json");
    if gzipped {
        request = request.header("content-encoding", "gzip");
    }
    let response = request.body(body).send().await.expect("request");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    let json = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text:?}"));
    (status, json)
}

async fn admin_events(base: &str, query: &str) -> Value {
    let response = client()
        .get(format!("{base}/v1/admin/events?{query}"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    response.json().await.expect("JSON")
}

fn exposure(flag: &str, key: &str, at: u64) -> Value {
    json!({"kind": "exposure", "flag": flag, "variant": "on", "reason": "TARGETING_MATCH",
           "targetingKey": key, "version": 2, "at": at})
}

fn purchase(key: &str, value: f64) -> Value {
    json!({"kind": "tracking", "name": "purchase", "targetingKey": key, "value": value,
           "fields": {"currency": "EUR"}, "at": 1_764_600_000_000_u64})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_are_checked_event_by_event_and_kept_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start(&dir.path().join("db.sqlite"), |c| {
        c.sdk_key = Some(SDK_KEY.into())
    })
    .await;
    let base = &server.base;
    let batch = json!({"batchId": "b-1", "events": [
        exposure("new-checkout", "user-1", 1_764_600_000_000),
        purchase("user-1", 49.9),
        {"kind": "exposure", "flag": "", "reason": "STATIC", "at": 1},
        {"kind": "teleport", "at": 1},
        {"kind": "tracking", "name": "x".repeat(101), "at": 1},
        {"kind": "summary", "start": 10, "end": 20, "counts": [
            {"flag": "new-checkout", "variant": "on", "reason": "TARGETING_MATCH", "count": 7},
            {"flag": "banner", "reason": "STATIC", "count": 3}]},
        exposure("banner", "user-2", 1_764_600_000_500),
    ]});
    let body = serde_json::to_vec(&batch).expect("JSON");
    let (status, answer) = post(base, SDK_KEY, gzip(&body), true).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["accepted"], 4, "{answer}");
    assert_eq!(answer["duplicate"], false);
    let refused: Vec<u64> = answer["refused"]
        .as_array()
        .expect("refused")
        .iter()
        .map(|r| r["index"].as_u64().expect("index"))
        .collect();
    assert_eq!(refused, [2, 3, 4], "{answer}");
    let reasons = answer["refused"].to_string();
    assert!(reasons.contains("flag is empty"), "{reasons}");
    assert!(reasons.contains("teleport"), "{reasons}");
    assert!(reasons.contains("101 characters, over 100"), "{reasons}");

    // The same batch again (a retry): nothing is kept twice.
    let (status, again) = post(base, SDK_KEY, body.clone(), false).await;
    assert_eq!(
        (status, &again["duplicate"], &again["accepted"]),
        (200, &json!(true), &json!(0))
    );

    let all = admin_events(base, "").await;
    let events = all["events"].as_array().expect("events");
    // The summary is kept as one row per count.
    assert_eq!(events.len(), 5, "{all}");
    assert!(
        events
            .windows(2)
            .all(|w| w[0]["id"].as_u64() > w[1]["id"].as_u64()),
        "newest first"
    );
    let of_flag = admin_events(base, "flag=new-checkout").await;
    let kinds: Vec<&str> = of_flag["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["event"]["kind"].as_str().expect("kind"))
        .collect();
    assert_eq!(kinds, ["summary", "exposure"]);
    let purchases = admin_events(base, "name=purchase&targetingKey=user-1").await;
    assert_eq!(purchases["events"][0]["event"]["value"], 49.9);
    assert_eq!(purchases["events"][0]["event"]["fields"]["currency"], "EUR");
    let none = admin_events(base, "kind=tracking&targetingKey=user-2").await;
    assert_eq!(none["events"], json!([]));
    let since = admin_events(base, "kind=exposure&since=1764600000100").await;
    assert_eq!(since["events"].as_array().expect("events").len(), 1);

    // Pages newest first, then following from an id.
    let first = admin_events(base, "limit=2").await;
    let next = first["next"].as_u64().expect("a next page");
    let second = admin_events(base, &format!("limit=2&before={next}")).await;
    assert_eq!(second["events"].as_array().expect("events").len(), 2);
    assert!(second["events"][0]["id"].as_u64() < Some(next));
    let oldest = second["events"][1]["id"].as_u64().expect("id");
    let follow = admin_events(base, &format!("after={oldest}")).await;
    let ids: Vec<u64> = follow["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["id"].as_u64().expect("id"))
        .collect();
    assert_eq!(ids.len(), 3);
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "oldest first: {ids:?}");
    assert_eq!(follow["next"].as_u64(), ids.last().copied());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_batches_are_refused_clearly_and_nothing_else_is_lost() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start(&dir.path().join("db.sqlite"), |c| {
        c.sdk_key = Some(SDK_KEY.into());
        c.max_document_bytes = 64 * 1024;
    })
    .await;
    let base = &server.base;
    let good = serde_json::to_vec(&json!({"batchId": "good", "events": [purchase("u", 1.0)]}))
        .expect("JSON");
    assert_eq!(post(base, SDK_KEY, good.clone(), false).await.0, 200);

    let (status, answer) = post(base, "wrong-key", good, false).await;
    assert_eq!(status, 401, "{answer}");
    assert!(answer["error"].is_string());

    let (status, answer) = post(
        base,
        SDK_KEY,
        b"{\"batchId\": \"x\", \"events\": [".to_vec(),
        false,
    )
    .await;
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["error"].as_str().expect("error").contains("line 1"),
        "{answer}"
    );

    let (status, answer) = post(base, SDK_KEY, br#"{"events": []}"#.to_vec(), false).await;
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["error"].as_str().expect("error").contains("batchId"),
        "{answer}"
    );

    let (status, answer) = post(
        base,
        SDK_KEY,
        br#"{"batchId": "a b", "events": []}"#.to_vec(),
        false,
    )
    .await;
    assert_eq!(status, 400, "{answer}");

    // Over the limit once decompressed: a 200 KiB batch in a few hundred
    // gzip'd bytes (a zip bomb in small).
    let padding = "x".repeat(200 * 1024);
    let bomb = serde_json::to_vec(&json!({"batchId": "bomb", "events": [], "pad": padding}))
        .expect("JSON");
    let packed = gzip(&bomb);
    assert!(packed.len() < 2_000, "{}", packed.len());
    let (status, answer) = post(base, SDK_KEY, packed, true).await;
    assert_eq!(status, 413, "{answer}");

    let (status, answer) = post(base, SDK_KEY, b"not gzip at all".to_vec(), true).await;
    assert_eq!(status, 400, "{answer}");

    let kept = admin_events(base, "").await;
    assert_eq!(
        kept["events"].as_array().expect("events").len(),
        1,
        "the good batch: {kept}"
    );
    server.stop().await;
}

/// What a webhook receiver got: bodies and their signatures.
type Received = std::sync::Arc<std::sync::Mutex<Vec<(Vec<u8>, String)>>>;

/// A webhook receiver on loopback that refuses its first delivery (503).
async fn receiver() -> (String, Received) {
    use axum::http::{HeaderMap, StatusCode};
    let received: Received = Default::default();
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let got = std::sync::Arc::clone(&received);
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let (got, calls) = (std::sync::Arc::clone(&got), std::sync::Arc::clone(&calls));
            async move {
                if calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
                    return StatusCode::SERVICE_UNAVAILABLE;
                }
                let signature = headers["x-flagyard-signature"]
                    .to_str()
                    .expect("ascii")
                    .to_string();
                got.lock().expect("lock").push((body.to_vec(), signature));
                StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, received)
}

fn hmac_hex(secret: &str, body: &[u8]) -> String {
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kept_events_are_forwarded_to_a_file_and_a_signed_webhook_and_resume_after_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (hook, received) = receiver().await;
    let jsonl = dir.path().join("events.jsonl");
    let forward = vec![
        flagyard_server::Forward::JsonLines(jsonl.clone()),
        flagyard_server::Forward::Webhook {
            url: hook,
            secret: "s3cret".into(),
        },
    ];
    let db = dir.path().join("db.sqlite");
    let with_forwarders = |c: &mut flagyard_server::ServerConfig| c.forward = forward.clone();
    let server = start(&db, with_forwarders).await;
    let batch = |id: &str, from: usize| {
        let events: Vec<Value> = (from..from + 300)
            .map(|i| purchase(&format!("u{i}"), i as f64))
            .collect();
        serde_json::to_vec(&json!({"batchId": id, "events": events})).expect("JSON")
    };
    assert_eq!(post(&server.base, "", batch("one", 0), false).await.0, 200);
    assert_eq!(
        post(&server.base, "", batch("two", 300), false).await.0,
        200
    );

    let lines_of = |path: &std::path::Path| -> Vec<Value> {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("a JSON line"))
            .collect()
    };
    let webhook_events = |received: &Received| -> Vec<Value> {
        received
            .lock()
            .expect("lock")
            .iter()
            .flat_map(|(body, _)| {
                let body: Value = serde_json::from_slice(body).expect("JSON");
                body["events"].as_array().expect("events").clone()
            })
            .collect()
    };
    let wait_for = |what: &str, check: &dyn Fn() -> bool| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while !check() {
            assert!(std::time::Instant::now() < deadline, "{what}");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    };
    wait_for("600 lines in the file", &|| lines_of(&jsonl).len() >= 600);
    wait_for("600 events at the webhook (after its 503)", &|| {
        webhook_events(&received).len() >= 600
    });
    for (body, signature) in received.lock().expect("lock").iter() {
        assert_eq!(
            signature,
            &hmac_hex("s3cret", body),
            "signed with the secret"
        );
    }
    server.stop().await;

    // After a restart each forwarder resumes after what it passed on.
    let server = start(&db, with_forwarders).await;
    assert_eq!(
        post(&server.base, "", batch("three", 600), false).await.0,
        200
    );
    wait_for("900 lines", &|| lines_of(&jsonl).len() >= 900);
    wait_for("900 webhook events", &|| {
        webhook_events(&received).len() >= 900
    });
    std::thread::sleep(std::time::Duration::from_millis(300));
    for events in [lines_of(&jsonl), webhook_events(&received)] {
        let ids: Vec<u64> = events
            .iter()
            .map(|e| e["id"].as_u64().expect("id"))
            .collect();
        assert_eq!(ids.len(), 900, "each event once");
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "in arrival order");
        assert_eq!(events[899]["event"]["targetingKey"], "u899");
    }
    server.stop().await;
}

/// With Redis, every server on it keeps and answers the same events: a batch
/// posted to one is read from the other, and its id is known to both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_on_one_redis_share_their_events() {
    let Some(redis) = flagyard_conformance::redis_server::TestRedis::start() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let on_redis = |c: &mut flagyard_server::ServerConfig| c.redis_url = Some(redis.url());
    let a = start(&dir.path().join("a.sqlite"), on_redis).await;
    let b = start(&dir.path().join("b.sqlite"), on_redis).await;
    let events: Vec<Value> = (0..1500)
        .map(|i| {
            if i % 3 == 0 {
                purchase(&format!("u{i}"), f64::from(i))
            } else {
                exposure(
                    "new-checkout",
                    &format!("u{i}"),
                    1_764_600_000_000 + i as u64,
                )
            }
        })
        .collect();
    let body = serde_json::to_vec(&json!({"batchId": "shared", "events": events})).expect("JSON");
    let (status, answer) = post(&a.base, "", body.clone(), false).await;
    assert_eq!(
        (status, &answer["accepted"]),
        (200, &json!(1500)),
        "{answer}"
    );
    let (_, again) = post(&b.base, "", body, false).await;
    assert_eq!(
        again["duplicate"], true,
        "the other server knows the batch id"
    );

    let newest = admin_events(&b.base, "limit=10").await;
    assert_eq!(newest["events"].as_array().expect("events").len(), 10);
    assert_eq!(newest["events"][0]["event"]["targetingKey"], "u1499");
    // Filtered queries read through the stream: 500 purchases, in pages.
    let mut purchases = 0;
    let mut before = String::new();
    loop {
        let page = admin_events(&b.base, &format!("kind=tracking&limit=200{before}")).await;
        let got = page["events"].as_array().expect("events");
        assert!(got.iter().all(|e| e["event"]["name"] == "purchase"));
        purchases += got.len();
        match page["next"].as_u64() {
            Some(next) => before = format!("&before={next}"),
            None => break,
        }
    }
    assert_eq!(purchases, 500);
    let user = admin_events(&a.base, "targetingKey=u7").await;
    assert_eq!(user["events"].as_array().expect("events").len(), 1);
    // Following from an id, oldest first.
    let first = newest["events"][9]["id"].as_u64().expect("id");
    let follow = admin_events(&a.base, &format!("after={first}")).await;
    let ids: Vec<u64> = follow["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["id"].as_u64().expect("id"))
        .collect();
    assert_eq!(ids, (first + 1..first + 10).collect::<Vec<_>>());
    a.stop().await;
    b.stop().await;
}
