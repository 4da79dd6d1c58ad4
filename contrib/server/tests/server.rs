//! The flag server over real loopback HTTP, SSE and WebSocket.

use std::path::Path;
use std::time::Duration;

mod common;

use common::{Running, TOKEN, client, start};
use futures_util::StreamExt;
use serde_json::{Value, json};

/// The document `base` serves, with its version.
async fn served(base: &str) -> (u64, Value) {
    let response = client()
        .get(format!("{base}/v1/flags"))
        .send()
        .await
        .expect("request");
    let version = response.headers()["x-flagyard-version"]
        .to_str()
        .expect("header")
        .parse()
        .expect("a number");
    (version, response.json().await.expect("JSON"))
}

/// Waits (at most 15 s) until the document `base` serves passes `check`.
async fn served_when(base: &str, what: &str, check: impl Fn(&Value) -> bool) -> (u64, Value) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let (version, doc) = served(base).await;
        if check(&doc) {
            return (version, doc);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{base}: {what}: {doc}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A server on a shared Redis.
async fn start_on_redis(dir: &Path, name: &str, url: &str) -> Running {
    start(&dir.join(format!("{name}.sqlite")), |c| {
        c.redis_url = Some(url.to_string())
    })
    .await
}

fn flag(on: bool) -> Value {
    json!({"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": if on { "on" } else { "off" }})
}

async fn put_flag(
    base: &str,
    key: &str,
    definition: &Value,
    token: Option<&str>,
) -> reqwest::Response {
    let mut request = client()
        .put(format!("{base}/v1/admin/flags/{key}"))
        .json(definition);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.expect("request")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_an_empty_document_with_etag_and_304() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start(&dir.path().join("db.sqlite"), |_| {}).await;
    let response = client()
        .get(format!("{}/v1/flags", server.base))
        .send()
        .await
        .expect("get");
    assert_eq!(response.status(), 200);
    let etag = response.headers()["etag"]
        .to_str()
        .expect("etag")
        .to_string();
    assert!(
        etag.starts_with('"') && !etag.starts_with("W/"),
        "strong etag: {etag}"
    );
    assert_eq!(
        response.json::<Value>().await.expect("json"),
        json!({"flags": {}})
    );
    let again = client()
        .get(format!("{}/v1/flags", server.base))
        .header("if-none-match", &etag)
        .send()
        .await
        .expect("get");
    assert_eq!(again.status(), 304);
    assert!(again.bytes().await.expect("body").is_empty());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_writes_need_the_token_and_bad_documents_change_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("db.sqlite");
    let server = start(&db, |_| {}).await;
    let base = server.base.clone();

    assert_eq!(put_flag(&base, "a", &flag(true), None).await.status(), 401);
    assert_eq!(
        put_flag(&base, "a", &flag(true), Some("wrong"))
            .await
            .status(),
        401
    );
    let ok = put_flag(&base, "a", &flag(true), Some(TOKEN)).await;
    assert_eq!(ok.status(), 200);
    let version = ok.json::<Value>().await.expect("json")["version"]
        .as_u64()
        .expect("version");

    let bad = put_flag(
        &base,
        "b",
        &json!({"state": "ON", "variants": {}}),
        Some(TOKEN),
    )
    .await;
    assert_eq!(bad.status(), 400);
    let message = bad.json::<Value>().await.expect("json")["error"]
        .as_str()
        .expect("error")
        .to_string();
    assert!(
        message.contains("/flags/b/state"),
        "names the problem: {message}"
    );
    let garbage = client()
        .put(format!("{base}/v1/admin/document"))
        .bearer_auth(TOKEN)
        .body("{not json")
        .send()
        .await
        .expect("put");
    assert_eq!(garbage.status(), 400);

    let doc: Value = client()
        .get(format!("{base}/v1/flags"))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(
        doc["flags"].as_object().expect("flags").len(),
        1,
        "nothing changed: {doc}"
    );

    let missing = client()
        .delete(format!("{base}/v1/admin/flags/nope"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("delete");
    assert_eq!(missing.status(), 404);
    let deleted = client()
        .delete(format!("{base}/v1/admin/flags/a"))
        .bearer_auth(TOKEN)
        // Ignored: the actor is the token's name.
        .header("x-flagyard-actor", "ops-bot")
        .send()
        .await
        .expect("delete");
    assert_eq!(
        deleted.json::<Value>().await.expect("json")["version"],
        json!(version + 1)
    );

    let history: Value = client()
        .get(format!("{base}/v1/admin/history"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("history")
        .json()
        .await
        .expect("json");
    let entries = history["history"].as_array().expect("entries");
    assert_eq!(entries[0]["action"], "delete-flag");
    assert_eq!(entries[0]["actor"], "admin");
    assert_eq!(entries[0]["detail"], "a");
    assert_eq!(entries[1]["action"], "set-flag");
    server.stop().await;

    // The database keeps the last version across restarts.
    let server = start(&db, |_| {}).await;
    let response = client()
        .get(format!("{}/v1/flags", server.base))
        .send()
        .await
        .expect("get");
    assert_eq!(
        response.headers()["x-flagyard-version"]
            .to_str()
            .expect("version"),
        (version + 1).to_string()
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_admin_token_writes_are_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start(&dir.path().join("db.sqlite"), |c| c.admin_token = None).await;
    let response = put_flag(&server.base, "a", &flag(true), Some("anything")).await;
    assert_eq!(response.status(), 403);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_sends_the_document_on_connect_and_on_change_with_heartbeats() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start(&dir.path().join("db.sqlite"), |_| {}).await;
    let response = client()
        .get(format!("{}/v1/stream", server.base))
        .send()
        .await
        .expect("stream");
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut body = response.bytes_stream();
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !text.contains("\"version\":1") {
        let chunk = tokio::time::timeout_at(deadline, body.next())
            .await
            .expect("first event")
            .expect("chunk")
            .expect("bytes");
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(
        text.contains("event: document") && text.contains("id: 1"),
        "{text}"
    );
    put_flag(&server.base, "live", &flag(true), Some(TOKEN)).await;
    while !(text.contains("id: 2") && text.contains(": heartbeat")) {
        let chunk = match tokio::time::timeout_at(deadline, body.next()).await {
            Ok(c) => c.expect("chunk").expect("bytes"),
            Err(_) => panic!("change and heartbeat; got {text:?}"),
        };
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(text.contains(r#""live":"#), "{text}");
    // Shutting down ends the stream.
    server.stop().await;
    let end = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(Ok(_)) = body.next().await {}
    })
    .await;
    assert!(end.is_ok(), "the stream closed on shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_sends_the_same_messages_and_pings() {
    use tokio_tungstenite::tungstenite::Message;
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start(&dir.path().join("db.sqlite"), |_| {}).await;
    let url = format!("{}/v1/ws", server.base.replace("http://", "ws://"));
    let (mut socket, _) = tokio_tungstenite::connect_async(&url)
        .await
        .expect("connects");
    let first = socket.next().await.expect("message").expect("ok");
    let first: Value = serde_json::from_str(first.to_text().expect("text")).expect("json");
    assert_eq!(first, json!({"version": 1, "document": {"flags": {}}}));
    put_flag(&server.base, "ws", &flag(false), Some(TOKEN)).await;
    let mut saw_ping = false;
    let mut saw_change = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !(saw_ping && saw_change) {
        match tokio::time::timeout_at(deadline, socket.next())
            .await
            .expect("in time")
            .expect("open")
            .expect("ok")
        {
            Message::Ping(_) => saw_ping = true,
            Message::Text(t) => {
                let v: Value = serde_json::from_str(&t).expect("json");
                assert_eq!(v["version"], 2);
                assert!(v["document"]["flags"]["ws"].is_object());
                saw_change = true;
            }
            _ => {}
        }
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ofrep_single_and_bulk_with_errors_etag_and_rate_limit() {
    let dir = tempfile::tempdir().expect("temp dir");
    let seed = dir.path().join("seed.json");
    std::fs::write(
        &seed,
        json!({"metadata": {"flagSetId": "shop"}, "flags": {
            "checkout": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off",
                         "targeting": {"if": [{"ends_with": [{"var": "email"}, "@example.com"]}, "on"]}},
            "old": {"state": "DISABLED", "variants": {"on": true}, "defaultVariant": "on"}
        }})
        .to_string(),
    )
    .expect("seed");
    let server = start(&dir.path().join("db.sqlite"), |c| {
        c.seed_file = Some(seed.clone());
        c.ofrep_rate_limit = Some(5);
    })
    .await;
    let base = server.base.clone();
    let eval = |key: &str, body: Value| {
        client()
            .post(format!("{base}/ofrep/v1/evaluate/flags/{key}"))
            .json(&body)
            .send()
    };
    let r = eval(
        "checkout",
        json!({"context": {"targetingKey": "u1", "email": "ada@example.com"}}),
    )
    .await
    .expect("post");
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.expect("json");
    assert_eq!(
        v,
        json!({"key": "checkout", "value": true, "reason": "TARGETING_MATCH", "variant": "on", "metadata": {"flagSetId": "shop"}})
    );
    let r = eval("nope", json!({})).await.expect("post");
    assert_eq!(r.status(), 404);
    assert_eq!(
        r.json::<Value>().await.expect("json")["errorCode"],
        "FLAG_NOT_FOUND"
    );
    let r = eval("old", json!({})).await.expect("post");
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["reason"], "DISABLED");
    assert!(v.get("value").is_none(), "defers to the code default: {v}");
    let r = client()
        .post(format!("{base}/ofrep/v1/evaluate/flags/checkout"))
        .body("[1,2]")
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<Value>().await.expect("json")["errorCode"],
        "INVALID_CONTEXT"
    );

    // The rate limit (5/s) was used up by the calls above plus this one.
    let limited = loop {
        let r = eval("checkout", json!({})).await.expect("post");
        if r.status() == 429 {
            break r;
        }
    };
    assert!(limited.headers().contains_key("retry-after"));
    tokio::time::sleep(Duration::from_millis(1100)).await;

    let bulk = client()
        .post(format!("{base}/ofrep/v1/evaluate/flags"))
        .json(&json!({"context": {"targetingKey": "u2"}}))
        .send()
        .await
        .expect("bulk");
    assert_eq!(bulk.status(), 200);
    let etag = bulk.headers()["etag"].to_str().expect("etag").to_string();
    let v: Value = bulk.json().await.expect("json");
    let keys: Vec<&str> = v["flags"]
        .as_array()
        .expect("flags")
        .iter()
        .map(|f| f["key"].as_str().expect("key"))
        .collect();
    assert_eq!(keys, ["checkout", "old"]);
    let cached = client()
        .post(format!("{base}/ofrep/v1/evaluate/flags"))
        .header("if-none-match", &etag)
        .json(&json!({"context": {"targetingKey": "u2"}}))
        .send()
        .await
        .expect("bulk");
    assert_eq!(cached.status(), 304);
    let other_context = client()
        .post(format!("{base}/ofrep/v1/evaluate/flags"))
        .header("if-none-match", &etag)
        .json(&json!({"context": {"targetingKey": "u3"}}))
        .send()
        .await
        .expect("bulk");
    assert_eq!(
        other_context.status(),
        200,
        "another context is another answer"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sdk_key_guards_reads() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start(&dir.path().join("db.sqlite"), |c| {
        c.sdk_key = Some("sdk-1".into())
    })
    .await;
    let base = server.base.clone();
    assert_eq!(
        client()
            .get(format!("{base}/v1/flags"))
            .send()
            .await
            .expect("get")
            .status(),
        401
    );
    assert_eq!(
        client()
            .get(format!("{base}/v1/flags"))
            .bearer_auth("sdk-2")
            .send()
            .await
            .expect("get")
            .status(),
        401
    );
    assert_eq!(
        client()
            .get(format!("{base}/v1/flags"))
            .bearer_auth("sdk-1")
            .send()
            .await
            .expect("get")
            .status(),
        200
    );
    assert_eq!(
        client()
            .get(format!("{base}/v1/flags"))
            .header("x-api-key", "sdk-1")
            .send()
            .await
            .expect("get")
            .status(),
        200
    );
    let r = client()
        .post(format!("{base}/ofrep/v1/evaluate/flags"))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 401);
    server.stop().await;
}

/// A document of about `bytes` bytes: flags padded with long string variants.
fn document_of(bytes: usize) -> Value {
    let pad = "x".repeat(1000);
    let mut flags = serde_json::Map::new();
    for i in 0..bytes / 1100 {
        flags.insert(
            format!("flag-{i}"),
            json!({"state": "ENABLED", "variants": {"a": pad}, "defaultVariant": "a"}),
        );
    }
    json!({ "flags": flags })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_body_limit_is_the_document_limit_and_answers_json() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start(&dir.path().join("db.sqlite"), |_| {}).await;
    let put = |document: &Value| {
        client()
            .put(format!("{}/v1/admin/document", server.base))
            .bearer_auth(TOKEN)
            .body(document.to_string())
            .send()
    };
    // 4 MiB: over axum's default 2 MiB, under the documented 5 MiB.
    let four = document_of(4 * 1024 * 1024);
    assert!(four.to_string().len() > 4_000_000);
    let response = put(&four).await.expect("request");
    assert_eq!(response.status(), 200, "{:?}", response.text().await);
    // 6 MiB: refused with the JSON error naming the limit; nothing changes.
    let six = document_of(6 * 1024 * 1024);
    let response = put(&six).await.expect("request");
    assert_eq!(response.status(), 413);
    assert_eq!(
        response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/json")
    );
    let body: Value = response.json().await.expect("JSON error");
    let error = body["error"].as_str().expect("error text");
    assert!(error.contains("5308416-byte limit"), "{error}");
    let served: Value = client()
        .get(format!("{}/v1/flags", server.base))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    assert_eq!(served, four);
    // A malformed body is a JSON 400 too.
    let response = client()
        .put(format!("{}/v1/admin/flags/x", server.base))
        .bearer_auth(TOKEN)
        .body("{nope")
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.expect("JSON error");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("not JSON")),
        "{body}"
    );
    server.stop().await;
}

/// The evaluator rules of `examples/evaluator-rules.json` through OFREP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ofrep_follows_the_rules_the_flagd_cores_agree_on() {
    let dir = tempfile::tempdir().expect("temp dir");
    let seed = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/evaluator-rules.json");
    let server = start(&dir.path().join("db.sqlite"), |c| c.seed_file = Some(seed)).await;
    let base = server.base.clone();
    let eval = |key: &'static str, context: Value| {
        let base = base.clone();
        async move {
            let answer: Value = client()
                .post(format!("{base}/ofrep/v1/evaluate/flags/{key}"))
                .json(&json!({ "context": context }))
                .send()
                .await
                .expect("request")
                .json()
                .await
                .expect("JSON");
            (
                answer["value"].clone(),
                answer["variant"].clone(),
                answer["reason"].clone(),
            )
        }
    };
    let answer =
        |value: &str, variant: &str, reason: &str| (json!(value), json!(variant), json!(reason));
    assert_eq!(
        eval("by-number", json!({"age": 45})).await,
        answer("forty-five", "45", "TARGETING_MATCH")
    );
    assert_eq!(
        eval("by-number", json!({"age": 1e21})).await,
        answer("huge", "1e+21", "TARGETING_MATCH")
    );
    assert_eq!(
        eval("shorthand", json!({"targetingKey": ""})).await,
        answer("D", "d", "DEFAULT")
    );
    assert_eq!(
        eval("null-equals-zero", json!({})).await,
        answer("y", "yes", "TARGETING_MATCH")
    );
    assert_eq!(
        eval("false-is-null", json!({})).await,
        answer("n", "no", "TARGETING_MATCH")
    );
    assert_eq!(
        eval("array-as-text", json!({})).await,
        answer("y", "yes", "TARGETING_MATCH")
    );
    server.stop().await;
}

/// Every error answer is the JSON error (docs/PROTOCOL.md), the Bearer scheme
/// is case-insensitive, and failed admin logins are throttled per address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_json_everywhere_and_failed_logins_are_throttled() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start(&dir.path().join("db.sqlite"), |_| {}).await;
    let base = server.base.clone();
    let long = "a".repeat(9_000);
    let cases = [
        (reqwest::Method::GET, format!("{base}/nope"), 404),
        (
            reqwest::Method::GET,
            format!("{base}/v1/admin/history?limit=abc"),
            400,
        ),
        (
            reqwest::Method::DELETE,
            format!("{base}/v1/admin/flags/%FF"),
            400,
        ),
        (reqwest::Method::DELETE, format!("{base}/v1/flags"), 405),
        (reqwest::Method::GET, format!("{base}/v1/flags?{long}"), 414),
    ];
    for (method, url, status) in cases {
        let response = client()
            .request(method.clone(), &url)
            .header("authorization", format!("BEARER {TOKEN}"))
            .send()
            .await
            .expect("request");
        assert_eq!(
            response.status().as_u16(),
            status,
            "{method} {}",
            &url[..url.len().min(80)]
        );
        assert_eq!(
            response.headers()["content-type"],
            "application/json",
            "{method}"
        );
        let body: Value = response.json().await.expect("a JSON body");
        assert!(
            body["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{body}"
        );
    }
    // `BEARER` and `bearer` are the Bearer scheme.
    let history = |auth: String| {
        client()
            .get(format!("{base}/v1/admin/history"))
            .header("authorization", auth)
            .send()
    };
    assert_eq!(
        history(format!("bEaReR {TOKEN}"))
            .await
            .expect("request")
            .status(),
        200
    );
    for _ in 0..5 {
        let response = history("Bearer wrong".into()).await.expect("request");
        assert_eq!(response.status(), 401);
    }
    // The sixth failure in a minute: refused even with the right token.
    let response = history(format!("Bearer {TOKEN}")).await.expect("request");
    assert_eq!(response.status(), 429);
    assert!(response.headers().contains_key("retry-after"));
    let body: Value = response.json().await.expect("JSON");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("too many failed admin logins"),
        "{body}"
    );
    server.stop().await;
}

/// Reads from a raw connection until the server closes it, or `None` if it
/// is still open after `within`.
async fn closed_within(stream: &mut tokio::net::TcpStream, within: Duration) -> Option<String> {
    use tokio::io::AsyncReadExt;
    let mut seen = Vec::new();
    let mut buffer = [0u8; 4096];
    let read_all = async {
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => seen.extend_from_slice(&buffer[..n]),
            }
        }
    };
    tokio::time::timeout(within, read_all).await.ok()?;
    Some(String::from_utf8_lossy(&seen).into_owned())
}

/// Idle, trickling and stalled clients are cut off; one connection over the
/// cap is answered 503 in JSON.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_idle_clients_time_out_and_the_cap_refuses_clearly() {
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpStream;
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start(&dir.path().join("db.sqlite"), |c| {
        c.header_timeout = Duration::from_millis(300);
        c.body_timeout = Duration::from_millis(300);
        c.max_connections = 4;
    })
    .await;
    let addr = server.base.trim_start_matches("http://").to_string();
    // Says nothing at all.
    let mut silent = TcpStream::connect(&addr).await.expect("connect");
    assert!(
        closed_within(&mut silent, Duration::from_secs(3))
            .await
            .is_some(),
        "a silent client is closed"
    );
    // Trickles half a request line.
    let mut trickle = TcpStream::connect(&addr).await.expect("connect");
    trickle.write_all(b"GET /healthz HT").await.expect("write");
    assert!(
        closed_within(&mut trickle, Duration::from_secs(3))
            .await
            .is_some(),
        "a trickling client is closed"
    );
    // A whole request, then idle on the kept-alive connection.
    let mut idle = TcpStream::connect(&addr).await.expect("connect");
    idle.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .expect("write");
    let answer = closed_within(&mut idle, Duration::from_secs(3))
        .await
        .expect("an idle keep-alive connection is closed");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    // A body that stalls.
    let mut stalled = TcpStream::connect(&addr).await.expect("connect");
    stalled
        .write_all(format!("PUT /v1/admin/document HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {TOKEN}\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{{\"fla").as_bytes())
        .await
        .expect("write");
    let answer = closed_within(&mut stalled, Duration::from_secs(3))
        .await
        .expect("a stalled body is cut off");
    assert!(!answer.starts_with("HTTP/1.1 200"), "{answer}");

    // The cap: four connections held open, the fifth is refused in JSON.
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut s = TcpStream::connect(&addr).await.expect("connect");
        s.write_all(b"GET /healthz HT").await.expect("write");
        held.push(s);
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut over = TcpStream::connect(&addr).await.expect("connect");
    let answer = closed_within(&mut over, Duration::from_secs(2))
        .await
        .expect("refused at once");
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(
        answer.contains(r#"{"error":"the server holds its maximum of 4 connections"#),
        "{answer}"
    );
    drop(held);
    server.stop().await;
}

/// What hyper refuses before any handler runs (a URI over 64 KiB, bytes
/// that are not HTTP) is answered with the JSON error too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_before_any_handler_are_json_too() {
    use tokio::io::AsyncWriteExt;
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start(&dir.path().join("db.sqlite"), |_| {}).await;
    let addr = server.base.trim_start_matches("http://").to_string();
    let huge = format!(
        "GET /v1/flags?{} HTTP/1.1\r\nhost: x\r\n\r\n",
        "b".repeat(70 * 1024)
    );
    for (request, status) in [
        (huge.into_bytes(), "414"),
        (b"\x16\x03\x01 not http at all\r\n\r\n".to_vec(), "400"),
    ] {
        let mut stream = tokio::net::TcpStream::connect(&addr)
            .await
            .expect("connect");
        stream.write_all(&request).await.expect("write");
        let answer = closed_within(&mut stream, Duration::from_secs(3))
            .await
            .expect("answered and closed");
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status} ")),
            "{}",
            &answer[..answer.len().min(200)]
        );
        assert!(
            answer.contains("content-type: application/json"),
            "{answer}"
        );
        let body = &answer[answer.find("\r\n\r\n").expect("a head") + 4..];
        let json: Value = serde_json::from_str(body).expect("a JSON body");
        assert!(
            json["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{json}"
        );
    }
    server.stop().await;
}

/// An upgraded WebSocket keeps its connection's place under the cap (hyper
/// hands the socket off, so the place has to travel with it) and gives it
/// back when it closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_websockets_count_against_the_connection_cap() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start(&dir.path().join("db.sqlite"), |c| c.max_connections = 2).await;
    let addr = server.base.trim_start_matches("http://").to_string();
    let url = format!("{}/v1/ws", server.base.replace("http://", "ws://"));
    let mut sockets = Vec::new();
    for _ in 0..2 {
        let (mut socket, _) = tokio_tungstenite::connect_async(&url)
            .await
            .expect("connects");
        socket.next().await.expect("message").expect("ok");
        sockets.push(socket);
    }
    let ask = || async {
        let mut s = tokio::net::TcpStream::connect(&addr)
            .await
            .expect("connect");
        tokio::io::AsyncWriteExt::write_all(
            &mut s,
            b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
        )
        .await
        .expect("write");
        closed_within(&mut s, Duration::from_secs(3))
            .await
            .expect("answered and closed")
    };
    let answer = ask().await;
    assert!(
        answer.starts_with("HTTP/1.1 503"),
        "two sockets fill a cap of two: {answer}"
    );
    let mut first = sockets.remove(0);
    first.close(None).await.expect("closes");
    drop(first);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    loop {
        let answer = ask().await;
        if answer.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "a closed socket gives its place back: {answer}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(sockets);
    server.stop().await;
}

/// A client holding a half-sent request does not keep the server from
/// stopping: shutdown ends within its deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_within_its_deadline() {
    use tokio::io::AsyncWriteExt;
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start(&dir.path().join("db.sqlite"), |c| {
        c.header_timeout = Duration::from_secs(60);
        c.body_timeout = Duration::from_secs(60);
        c.shutdown_deadline = Duration::from_millis(500);
    })
    .await;
    let addr = server.base.trim_start_matches("http://").to_string();
    let mut holder = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    holder
        .write_all(format!("PUT /v1/admin/document HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {TOKEN}\r\ncontent-length: 100\r\n\r\n{{").as_bytes())
        .await
        .expect("write");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = std::time::Instant::now();
    server.stop().await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "stopped after {:?}",
        started.elapsed()
    );
}

/// `/v1/ws` refuses foreign browser origins (cross-site WebSocket
/// hijacking) unless allowed, closes a client that sends a large message, and
/// `allowed_hosts` refuses other `Host`s (DNS rebinding).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_origins_inbound_size_and_hosts_are_checked() {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::{Error as WsError, Message};
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start(&dir.path().join("db.sqlite"), |c| {
        c.allowed_origins = vec!["https://app.example.com".into()];
    })
    .await;
    let host = server.base.trim_start_matches("http://").to_string();
    let url = format!("ws://{host}/v1/ws");
    let with_origin = |origin: &str| {
        let mut request = url.as_str().into_client_request().expect("request");
        request
            .headers_mut()
            .insert("origin", origin.parse().expect("header"));
        request
    };
    match tokio_tungstenite::connect_async(with_origin("https://evil.example")).await {
        Err(WsError::Http(response)) => assert_eq!(response.status(), 403),
        other => panic!(
            "a foreign origin must be refused: {:?}",
            other.map(|(_, r)| r.status())
        ),
    }
    for origin in [
        "https://app.example.com".to_string(),
        format!("http://{host}"),
    ] {
        let (mut socket, _) = tokio_tungstenite::connect_async(with_origin(&origin))
            .await
            .unwrap_or_else(|e| panic!("{origin} is allowed: {e}"));
        assert!(socket.next().await.expect("message").expect("ok").is_text());
    }
    // No Origin (not a browser): served. A 64 KiB message closes the socket.
    let (mut socket, _) = tokio_tungstenite::connect_async(&url)
        .await
        .expect("connects");
    assert!(socket.next().await.expect("message").expect("ok").is_text());
    socket
        .send(Message::Text("x".repeat(64 * 1024).into()))
        .await
        .expect("sent");
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match socket.next().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert!(
        closed.is_ok(),
        "the server closes a client that sends a large message"
    );
    server.stop().await;

    let server = start(&dir.path().join("db2.sqlite"), |c| {
        c.allowed_hosts = vec!["flags.internal:8013".into()];
    })
    .await;
    let refused = client()
        .get(format!("{}/v1/flags", server.base))
        .send()
        .await
        .expect("request");
    assert_eq!(refused.status(), 403);
    let body: Value = refused.json().await.expect("JSON");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("is not served here"),
        "{body}"
    );
    let allowed = client()
        .get(format!("{}/v1/flags", server.base))
        .header("host", "flags.internal:8013")
        .send()
        .await
        .expect("request");
    assert_eq!(allowed.status(), 200);
    let health = client()
        .get(format!("{}/healthz", server.base))
        .send()
        .await
        .expect("request");
    assert_eq!(health.status(), 200, "liveness is not host-checked");
    server.stop().await;
}

/// `/readyz` is 503 while Redis is down and writes answer 503 with
/// `Retry-After`; both recover when Redis is back (`/healthz` stays `ok`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_and_writes_follow_the_store() {
    let Some(mut redis) = flagyard_conformance::redis_server::TestRedis::start() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let url = redis.url();
    let server = start(&dir.path().join("unused.sqlite"), |c| {
        c.redis_url = Some(url)
    })
    .await;
    let base = server.base.clone();
    let ready = || async {
        client()
            .get(format!("{base}/readyz"))
            .send()
            .await
            .expect("request")
            .status()
            .as_u16()
    };
    let wait_for = |want: u16| async move {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let got = ready().await;
            if got == want || tokio::time::Instant::now() > deadline {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    assert_eq!(ready().await, 200);
    redis.stop();
    assert_eq!(wait_for(503).await, 503, "not ready while Redis is down");
    let health = client()
        .get(format!("{base}/healthz"))
        .send()
        .await
        .expect("request");
    assert_eq!(health.status(), 200, "alive all the same");
    let refused = put_flag(&base, "during", &flag(true), Some(TOKEN)).await;
    assert_eq!(refused.status(), 503);
    assert!(refused.headers().contains_key("retry-after"));
    let body: Value = refused.json().await.expect("JSON");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("the store is unreachable"),
        "{body}"
    );
    redis.restart();
    assert_eq!(wait_for(200).await, 200, "ready again once Redis is back");
    let accepted = put_flag(&base, "after", &flag(true), Some(TOKEN)).await;
    assert_eq!(accepted.status(), 200, "{:?}", accepted.text().await);
    server.stop().await;
}

/// On a shared Redis, a server with nothing to seed writes nothing: a
/// seeding server started after it still seeds, and both serve the seed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_without_a_seed_leaves_the_shared_store_to_the_one_with_it() {
    let Some(redis) = flagyard_conformance::redis_server::TestRedis::start() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let url = redis.url();
    let first = start_on_redis(dir.path(), "a", &url).await;
    let seed = dir.path().join("seed.json");
    std::fs::write(&seed, json!({"flags": {"seeded": flag(true)}}).to_string()).expect("seed");
    let second = start(&dir.path().join("b.sqlite"), |c| {
        c.redis_url = Some(url.clone());
        c.seed_file = Some(seed.clone());
    })
    .await;
    for base in [&second.base, &first.base] {
        served_when(base, "serves the seed", |doc| {
            doc["flags"]["seeded"].is_object()
        })
        .await;
    }
    first.stop().await;
    second.stop().await;
}

/// 300 writes split between two servers on one Redis, ten at a time on each:
/// none fails, and both end with every flag.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_through_two_servers_all_succeed() {
    let Some(redis) = flagyard_conformance::redis_server::TestRedis::start() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let url = redis.url();
    let a = start_on_redis(dir.path(), "a", &url).await;
    let b = start_on_redis(dir.path(), "b", &url).await;
    let bases = [a.base.clone(), b.base.clone()];
    let mut tasks = Vec::new();
    for worker in 0..20 {
        let base = bases[worker % 2].clone();
        tasks.push(tokio::spawn(async move {
            let mut failures = Vec::new();
            for i in 0..15 {
                let key = format!("w{worker}-{i}");
                let response = put_flag(&base, &key, &flag(true), Some(TOKEN)).await;
                if !response.status().is_success() {
                    failures.push(format!(
                        "{key}: {} {:?}",
                        response.status(),
                        response.text().await
                    ));
                }
            }
            failures
        }));
    }
    let mut failures = Vec::new();
    for task in tasks {
        failures.extend(task.await.expect("task"));
    }
    assert!(
        failures.is_empty(),
        "{} of 300 writes failed: {failures:?}",
        failures.len()
    );
    for base in &bases {
        served_when(base, "has all 300 flags", |doc| {
            doc["flags"].as_object().is_some_and(|f| f.len() == 300)
        })
        .await;
    }
    a.stop().await;
    b.stop().await;
}

/// Redis flushed under two running servers: both keep serving, a write
/// through either succeeds (versions continue) and reaches the other, and a
/// server started afterwards serves the same document.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flushed_redis_is_restored_by_the_servers() {
    let Some(redis) = flagyard_conformance::redis_server::TestRedis::start() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let url = redis.url();
    let a = start_on_redis(dir.path(), "a", &url).await;
    let b = start_on_redis(dir.path(), "b", &url).await;
    for key in ["one", "two"] {
        assert_eq!(
            put_flag(&a.base, key, &flag(true), Some(TOKEN))
                .await
                .status(),
            200
        );
    }
    let client_redis = redis::Client::open(url.as_str()).expect("client");
    let mut conn = client_redis
        .get_multiplexed_async_connection()
        .await
        .expect("connection");
    let _: () = redis::cmd("FLUSHALL")
        .query_async(&mut conn)
        .await
        .expect("flushall");

    let (before, doc) = served(&b.base).await;
    assert!(
        doc["flags"]["two"].is_object(),
        "still served after the flush"
    );
    let written = put_flag(&b.base, "three", &flag(true), Some(TOKEN)).await;
    assert_eq!(written.status(), 200, "{:?}", written.text().await);
    let (version, _) = served_when(&a.base, "the write reached the other server", |doc| {
        doc["flags"]["three"].is_object()
    })
    .await;
    assert!(
        version > before,
        "versions continue: {version} after {before}"
    );
    let c = start_on_redis(dir.path(), "c", &url).await;
    let (_, doc) = served(&c.base).await;
    assert!(
        ["one", "two", "three"]
            .iter()
            .all(|k| doc["flags"][k].is_object()),
        "a new server serves the restored document: {doc}"
    );
    a.stop().await;
    b.stop().await;
    c.stop().await;
}

/// A key twice, an integer beyond 64 bits, and a flag key no route can name
/// are refused with the pointer; nothing is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_keys_wide_integers_and_unreachable_flag_keys_are_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start(&dir.path().join("db.sqlite"), |_| {}).await;
    let base = server.base.clone();
    let put_document = |text: String| {
        client()
            .put(format!("{base}/v1/admin/document"))
            .bearer_auth(TOKEN)
            .header("content-type", "application/json")
            .body(text)
            .send()
    };
    let cases = [
        (
            r#"{"flags": {"a": {"state": "ENABLED", "state": "DISABLED", "variants": {"on": true}, "defaultVariant": "on"}}}"#.to_string(),
            "duplicate key \"state\" at /flags/a/state",
        ),
        (
            r#"{"flags": {"a": {"state": "ENABLED", "variants": {"big": 123456789012345678901234}, "defaultVariant": "big"}}}"#.to_string(),
            "the integer 123456789012345678901234 at /flags/a/variants/big does not fit in 64 bits",
        ),
        (
            json!({"flags": {"a/b": flag(true)}}).to_string(),
            "/flags/a~1b: a flag key must not contain '/'",
        ),
        (
            json!({"flags": {"bell\u{7}": flag(true)}}).to_string(),
            "a flag key must not contain control characters",
        ),
    ];
    for (text, words) in cases {
        let response = put_document(text.clone()).await.expect("request");
        assert_eq!(response.status(), 400, "{text}");
        let body: Value = response.json().await.expect("JSON");
        assert!(
            body["error"].as_str().unwrap().contains(words),
            "{text}: {body}"
        );
    }
    let response = put_flag(&base, "x%2Fy", &flag(true), Some(TOKEN)).await;
    assert_eq!(response.status(), 400);
    let doc: Value = client()
        .get(format!("{base}/v1/flags"))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("JSON");
    assert_eq!(doc, json!({"flags": {}}), "nothing was stored");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_answers_the_configured_origins_on_the_read_endpoints_only() {
    let dir = tempfile::tempdir().expect("temp dir");
    // None configured (the default): no CORS headers, a preflight is refused.
    let closed = start(&dir.path().join("closed.sqlite"), |_| {}).await;
    let preflight = client()
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/ofrep/v1/evaluate/flags", closed.base),
        )
        .header("origin", "https://app.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .expect("preflight");
    assert!(
        preflight
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    assert_eq!(preflight.status(), 405);
    closed.stop().await;

    let server = start(&dir.path().join("open.sqlite"), |c| {
        c.cors_origins = vec!["https://app.example".into()];
    })
    .await;
    let base = &server.base;
    for path in [
        "/ofrep/v1/evaluate/flags",
        "/ofrep/v1/evaluate/flags/x",
        "/v1/flags",
    ] {
        let method = if path == "/v1/flags" { "GET" } else { "POST" };
        let preflight = client()
            .request(reqwest::Method::OPTIONS, format!("{base}{path}"))
            .header("origin", "https://app.example")
            .header("access-control-request-method", method)
            .header(
                "access-control-request-headers",
                "authorization, content-type",
            )
            .send()
            .await
            .expect("preflight");
        assert_eq!(preflight.status(), 200, "{path}");
        let headers = preflight.headers();
        assert_eq!(
            headers["access-control-allow-origin"], "https://app.example",
            "{path}"
        );
        let allowed = headers["access-control-allow-headers"]
            .to_str()
            .expect("ascii");
        assert!(
            allowed.contains("authorization") && allowed.contains("content-type"),
            "{allowed}"
        );
    }
    // The answer itself carries the origin and exposes the ETag.
    let answer = client()
        .get(format!("{base}/v1/flags"))
        .header("origin", "https://app.example")
        .send()
        .await
        .expect("get");
    assert_eq!(
        answer.headers()["access-control-allow-origin"],
        "https://app.example"
    );
    let exposed = answer.headers()["access-control-expose-headers"]
        .to_str()
        .expect("ascii");
    assert!(exposed.contains("etag"), "{exposed}");
    // Another origin is not allowed; the admin API never answers CORS.
    let other = client()
        .get(format!("{base}/v1/flags"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .expect("get");
    assert!(other.headers().get("access-control-allow-origin").is_none());
    let admin = client()
        .request(reqwest::Method::OPTIONS, format!("{base}/v1/admin/flags/x"))
        .header("origin", "https://app.example")
        .header("access-control-request-method", "PUT")
        .send()
        .await
        .expect("preflight");
    assert!(admin.headers().get("access-control-allow-origin").is_none());
    server.stop().await;
}

/// `GET /metrics`, scraped: the value of the sample `name` (with its labels
/// as Prometheus writes them), or 0 when absent.
async fn sample(base: &str, name: &str) -> f64 {
    let text = client()
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("scrape")
        .text()
        .await
        .expect("text");
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .map_or(0.0, |v| v.trim().parse().expect("a number"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_streams_writes_evaluations_and_events() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start(&dir.path().join("db.sqlite"), |_| {}).await;
    let base = &server.base;
    let scrape = client()
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("scrape");
    assert_eq!(scrape.status(), 200);
    assert!(
        scrape.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("application/openmetrics-text"),
    );
    let put = |body: Value| {
        client()
            .put(format!("{base}/v1/admin/flags/m"))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
    };
    let flag =
        json!({"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "on"});
    assert_eq!(put(flag.clone()).await.expect("put").status(), 200);

    // A stream counts while it is open and takes up the next document.
    let sse = client()
        .get(format!("{base}/v1/stream"))
        .send()
        .await
        .expect("stream");
    let mut sse = sse.bytes_stream();
    sse.next().await.expect("first").expect("chunk");
    assert_eq!(
        sample(base, r#"flagyard_stream_clients{protocol="sse"}"#).await,
        1.0
    );
    let mut off = flag.clone();
    off["defaultVariant"] = json!("off");
    assert_eq!(put(off).await.expect("put").status(), 200);
    assert_eq!(
        put(json!({"state": "nope"})).await.expect("put").status(),
        400
    );
    let next = tokio::time::timeout(Duration::from_secs(2), sse.next()).await;
    assert!(next.is_ok(), "the change reached the stream");

    for path in ["/ofrep/v1/evaluate/flags/m", "/ofrep/v1/evaluate/flags"] {
        let answer = client()
            .post(format!("{base}{path}"))
            .json(&json!({"context": {}}))
            .send()
            .await
            .expect("ofrep");
        assert_eq!(answer.status(), 200, "{path}");
    }
    let batch = json!({"batchId": "metrics-1", "events": [
        {"kind": "tracking", "name": "purchase", "targetingKey": "u1", "at": 1764600000000u64},
        {"kind": "nope"}
    ]});
    let answer: Value = client()
        .post(format!("{base}/v1/events"))
        .json(&batch)
        .send()
        .await
        .expect("events")
        .json()
        .await
        .expect("JSON");
    assert_eq!(answer["accepted"], 1, "{answer}");

    assert!(sample(base, "flagyard_documents_published_total").await >= 2.0);
    assert!(sample(base, "flagyard_delivery_seconds_count").await >= 1.0);
    assert_eq!(
        sample(
            base,
            r#"flagyard_ofrep_request_seconds_count{endpoint="single"}"#
        )
        .await,
        1.0
    );
    assert_eq!(
        sample(
            base,
            r#"flagyard_ofrep_request_seconds_count{endpoint="bulk"}"#
        )
        .await,
        1.0
    );
    assert_eq!(
        sample(base, r#"flagyard_admin_writes_total{outcome="applied"}"#).await,
        2.0
    );
    assert_eq!(
        sample(base, r#"flagyard_admin_writes_total{outcome="refused"}"#).await,
        1.0
    );
    assert_eq!(sample(base, "flagyard_events_accepted_total").await, 1.0);
    assert_eq!(sample(base, "flagyard_events_refused_total").await, 1.0);

    // Closed: no longer counted.
    drop(sse);
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    while sample(base, r#"flagyard_stream_clients{protocol="sse"}"#).await != 0.0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the closed stream still counts"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.stop().await;
}
