//! The pancake admin API against a real redis-server: every operation, the
//! token checks, and bad input refused with a clear error and no change.

use std::path::Path;

use flagyard_conformance::redis_server::TestRedis;
use flagyard_server::{Server, ServerConfig};
use reqwest::StatusCode;
use serde_json::{Value, json};

const TOKEN: &str = "pancake-admin";

async fn start(db: &Path, pancake: Option<String>) -> String {
    let mut config = ServerConfig::new(db);
    config.listen = "127.0.0.1:0".parse().expect("addr");
    config.admin_token = Some(TOKEN.into());
    config.pancake_url = pancake;
    let server = Server::bind(config).await.expect("server binds");
    let base = format!("http://{}", server.local_addr());
    tokio::spawn(server.run(std::future::pending()));
    base
}

async fn call(
    method: &str,
    url: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let client = reqwest::Client::new();
    let mut request = client.request(method.parse().expect("method"), url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("request");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pancake_admin_api() {
    let Some(redis) = TestRedis::start() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let base = start(&dir.path().join("a.sqlite"), Some(redis.url())).await;
    let api = |path: &str| format!("{base}/v1/admin/pancake{path}");
    let t = Some(TOKEN);

    // Tokens: missing or wrong → 401, nothing listed.
    assert_eq!(
        call("GET", &api(""), None, None).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        call("GET", &api(""), Some("nope"), None).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (status, _) = call(
        "PUT",
        &api("/switches/new_ui"),
        Some("nope"),
        Some(json!({"active": true})),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Every operation.
    for (method, path, body) in [
        ("PUT", "/switches/new_ui", Some(json!({"active": true}))),
        ("PUT", "/switches/old_ui", Some(json!({"active": false}))),
        ("PUT", "/flags/beta", Some(json!({"active": false}))),
        ("PUT", "/flags/beta/user/ada", Some(json!({"active": true}))),
        (
            "PUT",
            "/flags/beta/user/bob",
            Some(json!({"active": false})),
        ),
        ("PUT", "/flags/beta/team/red", Some(json!({"active": true}))),
        ("PUT", "/samples/rollout", Some(json!({"ratio": 25}))),
        ("DELETE", "/switches/old_ui", None),
        ("DELETE", "/flags/beta/user/bob", None),
    ] {
        let (status, answer) = call(method, &api(path), t, body).await;
        assert_eq!(status, StatusCode::OK, "{method} {path}: {answer}");
    }
    let (status, state) = call("GET", &api(""), t, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        state,
        json!({
            "extension": "pancake",
            "switches": {"NEW_UI": true},
            "flags": {"BETA": {"active": false, "overrides": {"user": {"ada": true}, "team": {"red": true}}}},
            "samples": {"ROLLOUT": 25.0},
            "problems": []
        })
    );
    let (status, cleared) = call("DELETE", &api("/flags/beta/team"), t, None).await;
    assert_eq!(
        (status, cleared["cleared"].clone()),
        (StatusCode::OK, json!(1))
    );

    // Bad input: 400/404 naming the problem; the state is unchanged.
    let (_, before) = call("GET", &api(""), t, None).await;
    for (method, path, body, want, words) in [
        (
            "PUT",
            "/samples/rollout",
            Some(json!({"ratio": 140})),
            StatusCode::BAD_REQUEST,
            "outside 0-100",
        ),
        (
            "PUT",
            "/samples/rollout",
            Some(json!({"active": true})),
            StatusCode::BAD_REQUEST,
            "ratio",
        ),
        (
            "PUT",
            "/switches/new_ui",
            Some(json!({"on": 1})),
            StatusCode::BAD_REQUEST,
            "active",
        ),
        (
            "PUT",
            "/switches/a%3Ab",
            Some(json!({"active": true})),
            StatusCode::BAD_REQUEST,
            "contains ':'",
        ),
        (
            "PUT",
            "/widgets/x",
            Some(json!({"active": true})),
            StatusCode::NOT_FOUND,
            "unknown kind",
        ),
        (
            "DELETE",
            "/switches/missing",
            None,
            StatusCode::NOT_FOUND,
            "switch MISSING does not exist",
        ),
        (
            "DELETE",
            "/flags/beta/user/carol",
            None,
            StatusCode::NOT_FOUND,
            "carol",
        ),
        (
            "DELETE",
            "/flags/beta/team",
            None,
            StatusCode::NOT_FOUND,
            "no override",
        ),
    ] {
        let (status, answer) = call(method, &api(path), t, body).await;
        assert_eq!(status, want, "{method} {path}: {answer}");
        let error = answer["error"].as_str().unwrap_or_default();
        assert!(error.contains(words), "{method} {path}: {error}");
    }
    let (_, after) = call("GET", &api(""), t, None).await;
    assert_eq!(before, after, "a refused request changed the state");

    // The history names who did what, newest first.
    let (status, history) = call("GET", &api("/history?limit=3"), t, None).await;
    assert_eq!(status, StatusCode::OK);
    let entries = history["history"].as_array().expect("entries");
    assert_eq!(entries.len(), 3);
    assert_eq!(entries[0]["action"], "clear-all-users");
    assert_eq!(entries[0]["actor"], "admin", "the token's name");

    // The page is served, and refuses to be framed.
    let page = reqwest::get(format!("{base}/admin")).await.expect("page");
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(page.headers()["x-frame-options"], "DENY");
    assert!(page.text().await.expect("html").contains("Flagyard admin"));

    // A server without --pancake answers 404 saying how to turn it on.
    let plain = start(&dir.path().join("b.sqlite"), None).await;
    let (status, answer) = call("GET", &format!("{plain}/v1/admin/pancake"), t, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        answer["error"]
            .as_str()
            .unwrap_or_default()
            .contains("--pancake"),
        "{answer}"
    );
}

/// Creating a switch is recorded as `create` (not as the value it starts
/// with), and clearing a group that has no overrides says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creation_is_recorded_as_such_and_empty_groups_are_named() {
    let Some(redis) = TestRedis::start() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let base = start(&dir.path().join("a.sqlite"), Some(redis.url())).await;
    let api = |path: &str| format!("{base}/v1/admin/pancake{path}");
    let t = Some(TOKEN);
    for active in [false, false, true] {
        let (status, answer) = call(
            "PUT",
            &api("/switches/new_ui"),
            t,
            Some(json!({"active": active})),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
    }
    let (_, history) = call("GET", &api("/history?limit=10"), t, None).await;
    let actions: Vec<&str> = history["history"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| e["action"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(actions, ["enable", "disable", "create"], "newest first");
    let (status, answer) = call("DELETE", &api("/flags/nope/user"), t, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
    assert_eq!(answer["error"], "flag NOPE has no overrides for group user");
}
