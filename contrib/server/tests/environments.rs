//! Environments, SDK keys and admin roles over real loopback HTTP, SSE and
//! WebSocket: a key reads only its environment on every read protocol, every
//! admin route answers each role as documented, revocation closes streams,
//! an old single-document database serves as `default`, and two servers on
//! one Redis agree.

use std::path::Path;
use std::time::{Duration, Instant};

mod common;

use common::{Running, client, start};
use flagyard_conformance::redis_server::TestRedis;
use flagyard_server::{DeclaredCredential, EnvironmentConfig, Grant, Role, ServerConfig};
use futures_util::StreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};

const STAGING_KEY: &str = "staging-key";
const PRODUCTION_KEY: &str = "production-key";
const OWNER: &str = "owner-token";
const EDITOR: &str = "editor-token";
const VIEWER: &str = "viewer-token";

fn flag(variant: &str) -> Value {
    json!({"state": "ENABLED", "variants": {"a": "A", "b": "B"}, "defaultVariant": variant})
}

/// Two environments besides `default`, each seeded with one flag of its
/// own, an SDK key for each, and an admin, a staging editor and a viewer.
fn configure(dir: &Path, config: &mut ServerConfig) {
    for (name, key) in [("staging", "s"), ("production", "p")] {
        let seed = dir.join(format!("{name}.json"));
        std::fs::write(&seed, json!({"flags": {key: flag("a")}}).to_string()).expect("seed");
        config.environments.push(EnvironmentConfig {
            name: name.parse().expect("name"),
            seed_file: Some(seed),
        });
    }
    let seed = dir.join("default.json");
    std::fs::write(&seed, json!({"flags": {"d": flag("a")}}).to_string()).expect("seed");
    config.seed_file = Some(seed);
    let env = |n: &str| n.parse().expect("name");
    config.credentials = vec![
        DeclaredCredential::sdk_key("web-staging", STAGING_KEY, env("staging")),
        DeclaredCredential::sdk_key("web-production", PRODUCTION_KEY, env("production")),
        DeclaredCredential::admin_token("olga", OWNER, Role::Admin),
        DeclaredCredential {
            name: "eddie".into(),
            grant: Grant::Admin {
                role: Role::Editor,
                environments: vec![env("staging")],
            },
            sha256: flagyard_server::sha256_hex(EDITOR),
        },
        DeclaredCredential::admin_token("vera", VIEWER, Role::Viewer),
    ];
}

async fn start_configured(dir: &Path) -> Running {
    let db = dir.join("server.sqlite");
    start(&db, |c| configure(dir, c)).await
}

async fn call(
    base: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> (StatusCode, Value) {
    let mut request = client().request(method.parse().expect("method"), format!("{base}{path}"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send().await.expect("request");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn flag_keys(document: &Value) -> Vec<String> {
    let mut keys: Vec<String> = document["flags"]
        .as_object()
        .map(|f| f.keys().cloned().collect())
        .unwrap_or_default();
    keys.sort();
    keys
}

/// The first document an SSE stream sends.
async fn first_sse_document(base: &str, key: &str) -> Value {
    let response = client()
        .get(format!("{base}/v1/stream"))
        .bearer_auth(key)
        .send()
        .await
        .expect("stream");
    assert_eq!(response.status(), 200);
    let mut body = response.bytes_stream();
    let mut text = String::new();
    while let Some(chunk) = body.next().await {
        text.push_str(&String::from_utf8_lossy(&chunk.expect("chunk")));
        if let Some(data) = text.lines().find_map(|l| l.strip_prefix("data:")) {
            let message: Value = serde_json::from_str(data.trim()).expect("JSON");
            return message["document"].clone();
        }
    }
    panic!("the stream ended before a document: {text}");
}

async fn open_ws(
    base: &str,
    key: &str,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = format!("{}/v1/ws", base.replacen("http", "ws", 1))
        .into_client_request()
        .expect("request");
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {key}").parse().expect("header"),
    );
    tokio_tungstenite::connect_async(request)
        .await
        .expect("ws")
        .0
}

async fn next_ws_document(
    ws: &mut tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
) -> Option<Value> {
    use tokio_tungstenite::tungstenite::Message;
    while let Some(message) = ws.next().await {
        match message.ok()? {
            Message::Text(text) => {
                let message: Value = serde_json::from_str(&text).expect("JSON");
                return Some(message["document"].clone());
            }
            Message::Close(_) => return None,
            _ => {}
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_reads_only_its_environment_over_every_read_protocol() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start_configured(dir.path()).await;
    let base = &server.base;
    for (key, own, other) in [(STAGING_KEY, "s", "p"), (PRODUCTION_KEY, "p", "s")] {
        let (status, document) = call(base, "GET", "/v1/flags", Some(key), None).await;
        assert_eq!(status, 200);
        assert_eq!(flag_keys(&document), [own], "{key}: /v1/flags");

        let (status, single) = call(
            base,
            "POST",
            &format!("/ofrep/v1/evaluate/flags/{own}"),
            Some(key),
            Some(&json!({"context": {}})),
        )
        .await;
        assert_eq!(
            (status, single["value"].clone()),
            (StatusCode::OK, json!("A")),
            "{key}"
        );
        let (status, single) = call(
            base,
            "POST",
            &format!("/ofrep/v1/evaluate/flags/{other}"),
            Some(key),
            Some(&json!({"context": {}})),
        )
        .await;
        assert_eq!(status, 404, "{key} evaluates {other}: {single}");
        assert_eq!(single["errorCode"], "FLAG_NOT_FOUND");
        let (status, bulk) = call(
            base,
            "POST",
            "/ofrep/v1/evaluate/flags",
            Some(key),
            Some(&json!({"context": {}})),
        )
        .await;
        assert_eq!(status, 200);
        let keys: Vec<&str> = bulk["flags"]
            .as_array()
            .expect("flags")
            .iter()
            .filter_map(|f| f["key"].as_str())
            .collect();
        assert_eq!(keys, [own], "{key}: OFREP bulk");

        assert_eq!(
            flag_keys(&first_sse_document(base, key).await),
            [own],
            "{key}: SSE"
        );
        let mut ws = open_ws(base, key).await;
        let first = next_ws_document(&mut ws).await.expect("a document");
        assert_eq!(flag_keys(&first), [own], "{key}: WebSocket");
    }

    // A change to staging reaches staging's streams, not production's.
    let mut staging_ws = open_ws(base, STAGING_KEY).await;
    let mut production_ws = open_ws(base, PRODUCTION_KEY).await;
    next_ws_document(&mut staging_ws).await.expect("first");
    next_ws_document(&mut production_ws).await.expect("first");
    let (status, _) = call(
        base,
        "PUT",
        "/v1/admin/environments/staging/flags/s2",
        Some(OWNER),
        Some(&flag("b")),
    )
    .await;
    assert_eq!(status, 200);
    let changed = tokio::time::timeout(Duration::from_secs(2), next_ws_document(&mut staging_ws))
        .await
        .expect("staging hears its change")
        .expect("a document");
    assert_eq!(flag_keys(&changed), ["s", "s2"]);
    let quiet = tokio::time::timeout(
        Duration::from_millis(500),
        next_ws_document(&mut production_ws),
    )
    .await;
    assert!(
        quiet.is_err(),
        "production heard staging's change: {quiet:?}"
    );

    // Without a key, reads are refused once keys exist; a wrong key too.
    assert_eq!(call(base, "GET", "/v1/flags", None, None).await.0, 401);
    assert_eq!(
        call(base, "GET", "/v1/flags", Some("nope"), None).await.0,
        401
    );
    server.stop().await;
}

/// One admin request and what each caller is answered.
struct Row {
    method: &'static str,
    path: &'static str,
    body: Option<Value>,
    /// owner, staging editor, viewer, SDK key, no token.
    expect: [u16; 5],
}

fn row(method: &'static str, path: &'static str, body: Option<Value>, expect: [u16; 5]) -> Row {
    Row {
        method,
        path,
        body,
        expect,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_admin_route_answers_each_role_as_documented() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start_configured(dir.path()).await;
    let base = &server.base;
    let f = || Some(flag("b"));
    let rows = [
        row("GET", "/v1/admin/whoami", None, [200, 200, 200, 401, 401]),
        row(
            "GET",
            "/v1/admin/environments",
            None,
            [200, 200, 200, 401, 401],
        ),
        row(
            "POST",
            "/v1/admin/environments",
            Some(json!({"name": "qa"})),
            [201, 403, 403, 401, 401],
        ),
        row("GET", "/v1/admin/document", None, [200, 200, 200, 401, 401]),
        row(
            "PUT",
            "/v1/admin/document",
            Some(json!({"flags": {"d": flag("a")}})),
            [200, 403, 403, 401, 401],
        ),
        row("PUT", "/v1/admin/flags/x", f(), [200, 403, 403, 401, 401]),
        row(
            "DELETE",
            "/v1/admin/flags/x",
            None,
            [200, 403, 403, 401, 401],
        ),
        row("GET", "/v1/admin/history", None, [200, 200, 200, 401, 401]),
        row(
            "GET",
            "/v1/admin/environments/staging/document",
            None,
            [200, 200, 200, 401, 401],
        ),
        row(
            "PUT",
            "/v1/admin/environments/staging/document",
            Some(json!({"flags": {"s": flag("a")}})),
            [200, 200, 403, 401, 401],
        ),
        row(
            "PUT",
            "/v1/admin/environments/staging/flags/x",
            f(),
            [200, 200, 403, 401, 401],
        ),
        row(
            "DELETE",
            "/v1/admin/environments/staging/flags/x",
            None,
            [200, 200, 403, 401, 401],
        ),
        row(
            "GET",
            "/v1/admin/environments/staging/history",
            None,
            [200, 200, 200, 401, 401],
        ),
        row(
            "PUT",
            "/v1/admin/environments/production/document",
            Some(json!({"flags": {"p": flag("a")}})),
            [200, 403, 403, 401, 401],
        ),
        row(
            "PUT",
            "/v1/admin/environments/production/flags/x",
            f(),
            [200, 403, 403, 401, 401],
        ),
        row(
            "DELETE",
            "/v1/admin/environments/production/flags/x",
            None,
            [200, 403, 403, 401, 401],
        ),
        row(
            "GET",
            "/v1/admin/environments/production/history",
            None,
            [200, 200, 200, 401, 401],
        ),
        row(
            "PUT",
            "/v1/admin/environments/nowhere/flags/x",
            f(),
            [404, 404, 404, 401, 401],
        ),
        row(
            "POST",
            "/v1/admin/environments/staging/promote",
            Some(json!({"from": "production", "flag": "p"})),
            [200, 200, 403, 401, 401],
        ),
        row(
            "POST",
            "/v1/admin/environments/production/promote",
            Some(json!({"from": "staging", "flag": "s"})),
            [200, 403, 403, 401, 401],
        ),
        row(
            "GET",
            "/v1/admin/credentials",
            None,
            [200, 403, 403, 401, 401],
        ),
        row(
            "POST",
            "/v1/admin/credentials",
            Some(json!({"kind": "sdk", "name": "k", "environment": "staging"})),
            [201, 403, 403, 401, 401],
        ),
        row(
            "DELETE",
            "/v1/admin/credentials/{id}",
            None,
            [200, 403, 403, 401, 401],
        ),
        row(
            "POST",
            "/v1/admin/credentials/{id}/rotate",
            None,
            [200, 403, 403, 401, 401],
        ),
        row("GET", "/v1/admin/events", None, [200, 200, 200, 401, 401]),
        row(
            "GET",
            "/v1/admin/environments/staging/flags/s",
            None,
            [200, 200, 200, 401, 401],
        ),
        row(
            "POST",
            "/v1/admin/environments/staging/flags/s/preview",
            Some(json!({"context": {"targetingKey": "u"}})),
            [200, 200, 200, 401, 401],
        ),
        row(
            "PUT",
            "/v1/admin/environments/staging/evaluators/e",
            Some(json!({"in": ["a", ["a"]]})),
            [200, 200, 403, 401, 401],
        ),
        row(
            "PUT",
            "/v1/admin/environments/production/evaluators/e",
            Some(json!({"in": ["a", ["a"]]})),
            [200, 403, 403, 401, 401],
        ),
        row(
            "GET",
            "/v1/admin/environments/staging/versions/1",
            None,
            [200, 200, 200, 401, 401],
        ),
        row(
            "POST",
            "/v1/admin/environments/staging/rollback",
            Some(json!({"version": 1})),
            [200, 200, 403, 401, 401],
        ),
        row(
            "POST",
            "/v1/admin/environments/production/rollback",
            Some(json!({"version": 1})),
            [200, 403, 403, 401, 401],
        ),
        row("GET", "/v1/admin/pancake", None, [404, 404, 404, 401, 401]),
        row(
            "PUT",
            "/v1/admin/pancake/switches/X",
            Some(json!({"active": true})),
            [404, 404, 403, 401, 401],
        ),
    ];
    let callers = [
        Some(OWNER),
        Some(EDITOR),
        Some(VIEWER),
        Some(STAGING_KEY),
        None,
    ];
    let mut wrong = Vec::new();
    for row in &rows {
        for (caller, expected) in callers.iter().zip(row.expect) {
            // What the row changes exists before each call: a flag to delete,
            // a fresh credential to revoke or rotate, an unused name.
            let mut path = row.path.to_string();
            if row.method == "DELETE" && path.contains("/flags/") {
                let put = path.clone();
                call(base, "PUT", &put, Some(OWNER), Some(&flag("a"))).await;
            }
            if path.contains("{id}") {
                let (_, issued) = call(
                    base,
                    "POST",
                    "/v1/admin/credentials",
                    Some(OWNER),
                    Some(&json!({"kind": "admin", "name": "tmp", "role": "viewer"})),
                )
                .await;
                let id = issued["credential"]["id"].as_str().expect("id").to_string();
                path = path.replace("{id}", &id);
            }
            let mut body = row.body.clone();
            if path == "/v1/admin/environments" && row.method == "POST" {
                body = Some(json!({"name": format!("qa-{}", rand_suffix())}));
            }
            let (status, answer) = call(base, row.method, &path, *caller, body.as_ref()).await;
            if status.as_u16() != expected {
                wrong.push(format!(
                    "{} {path} as {caller:?}: {status} (expected {expected}): {answer}",
                    row.method
                ));
            }
            if status.is_client_error() {
                assert!(
                    answer["error"].is_string(),
                    "{} {path}: the JSON error: {answer}",
                    row.method
                );
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));

    // Who did what: the token's name is the actor in history.
    let (_, history) = call(
        base,
        "GET",
        "/v1/admin/environments/staging/history?limit=50",
        Some(VIEWER),
        None,
    )
    .await;
    let actors: Vec<&str> = history["history"]
        .as_array()
        .expect("entries")
        .iter()
        .filter_map(|h| h["actor"].as_str())
        .collect();
    assert!(
        actors.contains(&"eddie") && actors.contains(&"olga"),
        "{actors:?}"
    );
    server.stop().await;
}

/// A number different on each call (unique environment names per row).
fn rand_suffix() -> usize {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_key_is_refused_at_once_and_its_streams_close_within_a_second() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start_configured(dir.path()).await;
    let base = &server.base;
    let (status, issued) = call(
        base,
        "POST",
        "/v1/admin/credentials",
        Some(OWNER),
        Some(&json!({"kind": "sdk", "name": "mobile", "environment": "staging"})),
    )
    .await;
    assert_eq!(status, 201, "{issued}");
    let key = issued["token"].as_str().expect("token").to_string();
    assert!(key.starts_with("fy_sdk_staging_"), "{key}");
    let id = issued["credential"]["id"].as_str().expect("id").to_string();
    // The listing never shows a token or its hash.
    let (_, listing) = call(base, "GET", "/v1/admin/credentials", Some(OWNER), None).await;
    assert!(!listing.to_string().contains(&key), "{listing}");
    assert!(
        !listing
            .to_string()
            .contains(&flagyard_server::sha256_hex(&key))
    );

    let (status, document) = call(base, "GET", "/v1/flags", Some(&key), None).await;
    assert_eq!(
        (status, flag_keys(&document)),
        (StatusCode::OK, vec!["s".to_string()])
    );

    let sse = client()
        .get(format!("{base}/v1/stream"))
        .bearer_auth(&key)
        .send()
        .await
        .expect("stream");
    let mut sse = sse.bytes_stream();
    let first = sse.next().await.expect("a first chunk").expect("chunk");
    assert!(String::from_utf8_lossy(&first).contains("data:"));
    let mut ws = open_ws(base, &key).await;
    next_ws_document(&mut ws).await.expect("first");
    // Another key's stream stays open.
    let mut other = open_ws(base, STAGING_KEY).await;
    next_ws_document(&mut other).await.expect("first");

    let revoked_at = Instant::now();
    let (status, revoked) = call(
        base,
        "DELETE",
        &format!("/v1/admin/credentials/{id}"),
        Some(OWNER),
        None,
    )
    .await;
    assert_eq!(status, 200, "{revoked}");
    assert!(revoked["revokedAtMs"].as_u64().is_some(), "{revoked}");
    assert_eq!(
        call(base, "GET", "/v1/flags", Some(&key), None).await.0,
        401,
        "refused at once"
    );

    let sse_end = tokio::time::timeout(Duration::from_secs(1), async {
        while let Some(chunk) = sse.next().await {
            if chunk.is_err() {
                break;
            }
        }
    })
    .await;
    assert!(
        sse_end.is_ok(),
        "the SSE stream stayed open after revocation"
    );
    let ws_end = tokio::time::timeout(Duration::from_secs(1), next_ws_document(&mut ws)).await;
    assert!(
        matches!(ws_end, Ok(None)),
        "the WebSocket stayed open: {ws_end:?}"
    );
    assert!(revoked_at.elapsed() < Duration::from_secs(2));
    let still =
        tokio::time::timeout(Duration::from_millis(300), next_ws_document(&mut other)).await;
    assert!(still.is_err(), "another key's stream was closed: {still:?}");

    // Rotation: the old token stops, the new one reads.
    let (_, issued) = call(
        base,
        "POST",
        "/v1/admin/credentials",
        Some(OWNER),
        Some(&json!({"kind": "admin", "name": "ci-bot", "role": "editor", "environments": ["staging"]})),
    )
    .await;
    let old = issued["token"].as_str().expect("token").to_string();
    let id = issued["credential"]["id"].as_str().expect("id").to_string();
    assert_eq!(
        call(base, "GET", "/v1/admin/whoami", Some(&old), None)
            .await
            .1["name"],
        "ci-bot"
    );
    let (status, rotated) = call(
        base,
        "POST",
        &format!("/v1/admin/credentials/{id}/rotate"),
        Some(OWNER),
        None,
    )
    .await;
    assert_eq!(status, 200, "{rotated}");
    let new = rotated["token"].as_str().expect("token");
    assert_ne!(new, old);
    assert_eq!(
        call(base, "GET", "/v1/admin/whoami", Some(&old), None)
            .await
            .0,
        401
    );
    let (status, me) = call(base, "GET", "/v1/admin/whoami", Some(new), None).await;
    assert_eq!(
        (status, me["role"].clone()),
        (StatusCode::OK, json!("editor"))
    );
    // A declared credential is changed in the configuration, not here.
    let (status, refused) = call(
        base,
        "DELETE",
        "/v1/admin/credentials/declared:olga",
        Some(OWNER),
        None,
    )
    .await;
    assert_eq!(status, 403, "{refused}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declared_credentials_that_share_a_token_or_name_no_served_environment_are_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = ServerConfig::new(dir.path().join("db.sqlite"));
    config.listen = "127.0.0.1:0".parse().expect("addr");
    config.credentials = vec![
        DeclaredCredential::admin_token("ada", "same", Role::Admin),
        DeclaredCredential::admin_token("bob", "same", Role::Viewer),
    ];
    let e = flagyard_server::Server::bind(config.clone())
        .await
        .expect_err("refused");
    assert_eq!(
        e.to_string(),
        "credentials 'ada' and 'bob' have the same token: give each its own"
    );
    config.credentials = vec![DeclaredCredential::sdk_key(
        "shop",
        "k",
        "qa".parse().expect("name"),
    )];
    let e = flagyard_server::Server::bind(config)
        .await
        .expect_err("refused");
    assert!(
        e.to_string()
            .contains("names environment 'qa', which is not served"),
        "{e}"
    );
}

/// The tables today's server wrote before environments, with two versions.
const SINGLE_DOCUMENT_FILE: &str = r#"
CREATE TABLE document (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    version    INTEGER NOT NULL,
    body       TEXT    NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE TABLE history (
    version INTEGER PRIMARY KEY,
    at      INTEGER NOT NULL,
    actor   TEXT    NOT NULL,
    action  TEXT    NOT NULL,
    detail  TEXT    NOT NULL,
    body    TEXT    NOT NULL
);
INSERT INTO document VALUES (1, 2, '{"flags":{"old":{"state":"ENABLED","variants":{"on":true},"defaultVariant":"on"}}}', 1700000000200);
INSERT INTO history VALUES (1, 1700000000100, 'seed', 'seed', 'flags.json', '{"flags":{}}');
INSERT INTO history VALUES (2, 1700000000200, 'ada', 'set-flag', 'old', '{"flags":{"old":{"state":"ENABLED","variants":{"on":true},"defaultVariant":"on"}}}');
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_single_document_database_serves_as_default_with_its_history() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("old.sqlite");
    rusqlite::Connection::open(&db)
        .expect("open")
        .execute_batch(SINGLE_DOCUMENT_FILE)
        .expect("old tables");
    let server = start(&db, |_| {}).await;
    let base = &server.base;
    let (status, document) = call(base, "GET", "/v1/flags", None, None).await;
    assert_eq!(
        (status, flag_keys(&document)),
        (StatusCode::OK, vec!["old".to_string()])
    );
    let (_, history) = call(
        base,
        "GET",
        "/v1/admin/environments/default/history",
        Some(common::TOKEN),
        None,
    )
    .await;
    let entries: Vec<(u64, &str)> = history["history"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|h| {
            (
                h["version"].as_u64().expect("v"),
                h["actor"].as_str().expect("actor"),
            )
        })
        .collect();
    assert_eq!(entries, [(2, "ada"), (1, "seed")]);
    let (_, environments) = call(
        base,
        "GET",
        "/v1/admin/environments",
        Some(common::TOKEN),
        None,
    )
    .await;
    assert_eq!(environments["environments"][0]["name"], "default");
    assert_eq!(environments["environments"][0]["version"], 2);
    // Writes go on from the migrated version.
    let (status, written) = call(
        base,
        "PUT",
        "/v1/admin/flags/new",
        Some(common::TOKEN),
        Some(&flag("a")),
    )
    .await;
    assert_eq!(
        (status, written["version"].clone()),
        (StatusCode::OK, json!(3))
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_on_one_redis_agree_on_environments_keys_and_revocations() {
    let Some(redis) = TestRedis::start() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let url = redis.url();
    let on_redis = |c: &mut ServerConfig| {
        c.redis_url = Some(url.clone());
        c.credentials = vec![DeclaredCredential::admin_token("olga", OWNER, Role::Admin)];
    };
    let a = start(&dir.path().join("a.sqlite"), on_redis).await;
    let b = start(&dir.path().join("b.sqlite"), on_redis).await;

    let (status, _) = call(
        &a.base,
        "POST",
        "/v1/admin/environments",
        Some(OWNER),
        Some(&json!({"name": "qa"})),
    )
    .await;
    assert_eq!(status, 201);
    let (status, _) = call(
        &a.base,
        "PUT",
        "/v1/admin/environments/qa/flags/q",
        Some(OWNER),
        Some(&flag("b")),
    )
    .await;
    assert_eq!(status, 200);
    let (_, issued) = call(
        &a.base,
        "POST",
        "/v1/admin/credentials",
        Some(OWNER),
        Some(&json!({"kind": "sdk", "name": "qa-app", "environment": "qa"})),
    )
    .await;
    let key = issued["token"].as_str().expect("token").to_string();
    let id = issued["credential"]["id"].as_str().expect("id").to_string();

    // B learns of the environment, its document and the key.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, document) = call(&b.base, "GET", "/v1/flags", Some(&key), None).await;
        if status == 200 && flag_keys(&document) == ["q"] {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "server B never served qa: {status} {document}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (_, environments) = call(&b.base, "GET", "/v1/admin/environments", Some(OWNER), None).await;
    let names: Vec<&str> = environments["environments"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|e| e["name"].as_str())
        .collect();
    assert_eq!(names, ["default", "qa"]);

    // A change on A reaches B's stream for that key.
    let mut ws = open_ws(&b.base, &key).await;
    next_ws_document(&mut ws).await.expect("first");
    let (status, _) = call(
        &a.base,
        "PUT",
        "/v1/admin/environments/qa/flags/q2",
        Some(OWNER),
        Some(&flag("a")),
    )
    .await;
    assert_eq!(status, 200);
    let changed = tokio::time::timeout(Duration::from_secs(2), next_ws_document(&mut ws))
        .await
        .expect("B's stream hears A's change")
        .expect("a document");
    assert_eq!(flag_keys(&changed), ["q", "q2"]);

    // Revoked on A: refused by B within a second, B's stream closed.
    let revoked_at = Instant::now();
    let (status, _) = call(
        &a.base,
        "DELETE",
        &format!("/v1/admin/credentials/{id}"),
        Some(OWNER),
        None,
    )
    .await;
    assert_eq!(status, 200);
    loop {
        if call(&b.base, "GET", "/v1/flags", Some(&key), None).await.0 == 401 {
            break;
        }
        assert!(
            revoked_at.elapsed() < Duration::from_secs(1),
            "B still accepts the revoked key"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let closed = tokio::time::timeout(Duration::from_secs(1), next_ws_document(&mut ws)).await;
    assert!(
        matches!(closed, Ok(None)),
        "B's stream stayed open: {closed:?}"
    );
    a.stop().await;
    b.stop().await;
}

/// One SSE event: its `event:`, `id:` and `data:` (as JSON); heartbeats and
/// other comments skipped. `None` when the stream ends.
async fn next_sse_event(
    stream: &mut (impl futures_util::Stream<Item = reqwest::Result<axum::body::Bytes>> + Unpin),
    buffer: &mut String,
) -> Option<(String, String, Value)> {
    loop {
        if let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let (mut event, mut id, mut data) = (String::new(), String::new(), String::new());
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    event = v.trim().to_string();
                } else if let Some(v) = line.strip_prefix("id:") {
                    id = v.trim().to_string();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.trim());
                }
            }
            if data.is_empty() {
                continue;
            }
            let data = serde_json::from_str(&data).expect("event data is JSON");
            return Some((event, id, data));
        }
        match stream.next().await {
            Some(Ok(chunk)) => buffer.push_str(&String::from_utf8_lossy(&chunk)),
            _ => return None,
        }
    }
}

/// `POST /ofrep/v1/evaluate/flags` with `key`, and an optional query.
async fn bulk(base: &str, key: &str, query: &str) -> Value {
    let response = client()
        .post(format!("{base}/ofrep/v1/evaluate/flags{query}"))
        .bearer_auth(key)
        .json(&json!({"context": {}}))
        .send()
        .await
        .expect("bulk");
    assert_eq!(response.status(), 200);
    response.json().await.expect("JSON")
}

async fn open_changes(
    base: &str,
    answer: &Value,
    last_event_id: Option<&str>,
) -> reqwest::Response {
    let streams = answer["eventStreams"].as_array().expect("eventStreams");
    assert_eq!(streams.len(), 1, "{answer}");
    let uri = streams[0]["endpoint"]["requestUri"]
        .as_str()
        .expect("requestUri");
    let mut request = client().get(format!("{base}{uri}"));
    if let Some(id) = last_event_id {
        request = request.header("last-event-id", id);
    }
    request.send().await.expect("changes")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ofrep_change_notifications_follow_adr_0008_for_each_key() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start_configured(dir.path()).await;
    let base = &server.base;

    // The bulk answer names one SSE stream per ADR-0008: `type`, exactly one
    // of `url`/`endpoint` (here the endpoint, relative to the base URL's
    // origin), a channel that is not the key itself.
    let answer = bulk(base, STAGING_KEY, "").await;
    let stream = &answer["eventStreams"][0];
    assert_eq!(stream["type"], "sse", "{answer}");
    assert!(stream.get("url").is_none(), "{stream}");
    assert_eq!(stream["inactivityDelaySec"], 120, "{stream}");
    let uri = stream["endpoint"]["requestUri"]
        .as_str()
        .expect("requestUri");
    assert_eq!(
        uri,
        format!(
            "/ofrep/v1/changes?channel={}",
            flagyard_server::sha256_hex(STAGING_KEY)
        )
    );
    assert!(!uri.contains(STAGING_KEY));

    let staging = open_changes(base, &answer, None).await;
    assert_eq!(staging.status(), 200);
    assert_eq!(staging.headers()["content-type"], "text/event-stream");
    let mut staging = staging.bytes_stream();
    let mut staging_buf = String::new();
    let production = open_changes(base, &bulk(base, PRODUCTION_KEY, "").await, None).await;
    let mut production = production.bytes_stream();
    let mut production_buf = String::new();
    // Nothing is sent on connect (the client has just fetched).
    let quiet = tokio::time::timeout(
        Duration::from_millis(400),
        next_sse_event(&mut staging, &mut staging_buf),
    )
    .await;
    assert!(quiet.is_err(), "an event on connect: {quiet:?}");

    // A change to staging reaches staging's stream, not production's.
    let changed_at = Instant::now();
    let (status, _) = call(
        base,
        "PUT",
        "/v1/admin/environments/staging/flags/s",
        Some(OWNER),
        Some(&flag("b")),
    )
    .await;
    assert_eq!(status, 200);
    let (event, id, data) = tokio::time::timeout(
        Duration::from_secs(1),
        next_sse_event(&mut staging, &mut staging_buf),
    )
    .await
    .expect("a notification within a second")
    .expect("the stream is open");
    assert!(changed_at.elapsed() < Duration::from_secs(1));
    assert_eq!(event, "message");
    assert_eq!(data["type"], "refetchEvaluation", "{data}");
    let current = client()
        .get(format!("{base}/v1/flags"))
        .bearer_auth(STAGING_KEY)
        .send()
        .await
        .expect("flags");
    let etag = current.headers()["etag"]
        .to_str()
        .expect("ascii")
        .to_string();
    assert_eq!(data["etag"], etag.as_str(), "the document's ETag");
    assert_eq!(
        id,
        etag.trim_matches('"').split('-').next().expect("version")
    );
    let elsewhere = tokio::time::timeout(
        Duration::from_millis(300),
        next_sse_event(&mut production, &mut production_buf),
    )
    .await;
    assert!(
        elsewhere.is_err(),
        "production heard staging's change: {elsewhere:?}"
    );

    // The re-fetch the notification triggers sees the change.
    let query = format!("?flagConfigEtag={}", urlencode(&etag));
    let refetched = bulk(base, STAGING_KEY, &query).await;
    assert_eq!(refetched["flags"][0]["variant"], "b", "{refetched}");
    // An ETag of a version not (yet) published here is waited for, boundedly.
    let asked = Instant::now();
    let ahead = bulk(
        base,
        STAGING_KEY,
        &format!("?flagConfigEtag={}", urlencode("\"999999-0\"")),
    )
    .await;
    assert_eq!(ahead["flags"][0]["variant"], "b");
    assert!(
        asked.elapsed() < Duration::from_secs(3),
        "{:?}",
        asked.elapsed()
    );

    // A reconnect with an older Last-Event-ID is told at once; with the
    // current one it is not.
    let older = (id.parse::<u64>().expect("numeric id") - 1).to_string();
    let resumed = open_changes(base, &answer, Some(&older)).await;
    let mut resumed = resumed.bytes_stream();
    let mut buf = String::new();
    let replay = tokio::time::timeout(
        Duration::from_secs(1),
        next_sse_event(&mut resumed, &mut buf),
    )
    .await
    .expect("a replay")
    .expect("open");
    assert_eq!(
        (replay.1.as_str(), &replay.2["type"]),
        (id.as_str(), &json!("refetchEvaluation"))
    );
    let current_id = open_changes(base, &answer, Some(&id)).await;
    let mut current_id = current_id.bytes_stream();
    let mut buf = String::new();
    let none = tokio::time::timeout(
        Duration::from_millis(300),
        next_sse_event(&mut current_id, &mut buf),
    )
    .await;
    assert!(none.is_err(), "{none:?}");

    // A wrong or missing channel is refused with the JSON error.
    for query in ["?channel=0000", "", "?channel=zz"] {
        let refused = client()
            .get(format!("{base}/ofrep/v1/changes{query}"))
            .send()
            .await
            .expect("changes");
        assert_eq!(refused.status(), 401, "{query}");
        let body: Value = refused.json().await.expect("JSON error");
        assert!(
            body["error"]
                .as_str()
                .is_some_and(|e| e.contains("SDK key") || e.contains("channel")),
            "{body}"
        );
    }

    // Revoking a key closes its notification stream.
    let (_, issued) = call(
        base,
        "POST",
        "/v1/admin/credentials",
        Some(OWNER),
        Some(&json!({"kind": "sdk", "name": "tab", "environment": "staging"})),
    )
    .await;
    let key = issued["token"].as_str().expect("token").to_string();
    let id = issued["credential"]["id"].as_str().expect("id").to_string();
    let mut tab = open_changes(base, &bulk(base, &key, "").await, None)
        .await
        .bytes_stream();
    let mut buf = String::new();
    let (status, _) = call(
        base,
        "DELETE",
        &format!("/v1/admin/credentials/{id}"),
        Some(OWNER),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let closed =
        tokio::time::timeout(Duration::from_secs(1), next_sse_event(&mut tab, &mut buf)).await;
    assert!(
        matches!(closed, Ok(None)),
        "still open after revocation: {closed:?}"
    );
    server.stop().await;
}

/// `s` percent-encoded for a query value.
fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_promotion_honours_if_match_on_its_target() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start_configured(dir.path()).await;
    let promote = |if_match: &'static str| {
        client()
            .post(format!(
                "{}/v1/admin/environments/production/promote",
                server.base
            ))
            .bearer_auth(OWNER)
            .header("if-match", if_match)
            .json(&json!({"from": "staging", "flag": "s"}))
            .send()
    };
    let stale = promote("\"999-0\"").await.expect("promote");
    assert_eq!(stale.status(), 412);
    let body: Value = stale.json().await.expect("JSON");
    assert_eq!(body["version"], 1, "{body}");
    let (_, document) = call(&server.base, "GET", "/v1/flags", Some(PRODUCTION_KEY), None).await;
    assert_eq!(flag_keys(&document), ["p"], "nothing was promoted");
    let current = promote("1").await.expect("promote");
    assert_eq!(current.status(), 200);
    server.stop().await;
}
