//! Environments as a new user sets them up: `flagyard serve --config` with
//! three environments and one token per role, two Rust services on a staging
//! and a production key, `flagyard admin promote`, a viewer that can read
//! but not write, and events shown by the environment they were posted in.

use std::process::Command;
use std::time::{Duration, Instant};

use flagyard::core::EvaluationContext;
use flagyard::{FlagyardProvider, SseSource};
use serde_json::{Value, json};

mod common;
use common::{bin, serve};

const CONFIG: &str = r#"
history-keep = 100

[[environments]]
name = "development"

[[environments]]
name = "staging"
flags = "staging.json"

[[environments]]
name = "production"
flags = "production.json"

[[sdk-keys]]
name = "shop-staging"
environment = "staging"
key = "sk-staging"

[[sdk-keys]]
name = "shop-production"
environment = "production"
key = "sk-production"

[[admin-tokens]]
name = "ada"
role = "admin"
token = "t-admin"

[[admin-tokens]]
name = "eve"
role = "editor"
may-edit = ["staging", "development"]
token = "t-editor"

[[admin-tokens]]
name = "vic"
role = "viewer"
token = "t-viewer"
"#;

fn admin(base: &str, token: &str, args: &[&str]) -> (bool, Value, String) {
    let out = Command::new(bin())
        .args(["admin", "--server", base, "--token", token])
        .args(args)
        .output()
        .expect("flagyard admin runs");
    let value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (
        out.status.success(),
        value,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn checkout(variant: &str) -> String {
    json!({"flags": {"checkout": {"state": "ENABLED", "variants": {"old": "old", "new": "new"}, "defaultVariant": variant}}})
        .to_string()
}

async fn service(base: &str, key: &str) -> FlagyardProvider {
    let provider = FlagyardProvider::builder()
        .source(
            SseSource::builder(format!("{base}/v1/stream"))
                .sdk_key(key)
                .build()
                .expect("source"),
        )
        .build()
        .expect("provider");
    let ready = provider.wait_until_ready(Duration::from_secs(10)).await;
    assert!(ready.success, "{key}: {ready:?}");
    provider
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_environments_three_roles_two_services_and_a_promotion() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("staging.json"), checkout("new")).expect("seed");
    std::fs::write(dir.path().join("production.json"), checkout("old")).expect("seed");
    let config = dir.path().join("flagyard.toml");
    std::fs::write(&config, CONFIG).expect("config");
    let (mut server, base) = serve(
        &dir.path().join("server.sqlite"),
        &["--config", config.to_str().expect("utf-8")],
    );

    let (ok, environments, err) = admin(&base, "t-viewer", &["environments"]);
    assert!(ok, "{err}");
    let names: Vec<&str> = environments["environments"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|e| e["name"].as_str())
        .collect();
    assert_eq!(names, ["default", "development", "production", "staging"]);

    // Each service sees its own environment only.
    let staging = service(&base, "sk-staging").await;
    let production = service(&base, "sk-production").await;
    let ctx = EvaluationContext::new();
    assert_eq!(staging.get_string("checkout", "none", &ctx), "new");
    assert_eq!(production.get_string("checkout", "none", &ctx), "old");

    // The editor changes staging; production does not move.
    let (ok, _, err) = admin(
        &base,
        "t-editor",
        &[
            "--environment",
            "staging",
            "set-flag",
            "banner",
            "--json",
            r#"{"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "on"}"#,
        ],
    );
    assert!(ok, "{err}");
    let deadline = Instant::now() + Duration::from_secs(2);
    while !staging.get_bool("banner", false, &ctx) {
        assert!(
            Instant::now() < deadline,
            "staging never saw the editor's flag"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!production.get_bool("banner", false, &ctx));
    // The editor may not touch production.
    let (ok, _, err) = admin(
        &base,
        "t-editor",
        &["--environment", "production", "delete-flag", "checkout"],
    );
    assert!(!ok && err.contains("403"), "{err}");

    // Promotion reaches the production service at once, and both
    // histories record it under the admin's name.
    let promoted_at = Instant::now();
    let (ok, promoted, err) = admin(
        &base,
        "t-admin",
        &[
            "promote",
            "banner",
            "--from",
            "staging",
            "--to",
            "production",
        ],
    );
    assert!(ok, "{err}");
    assert_eq!(promoted["flags"], json!(["banner"]));
    while !production.get_bool("banner", false, &ctx) {
        assert!(
            promoted_at.elapsed() < Duration::from_secs(1),
            "production did not get the promoted flag within a second"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(
        production.get_string("checkout", "none", &ctx),
        "old",
        "only the flag moved"
    );
    for (env, action) in [("production", "promote"), ("staging", "promoted")] {
        let (ok, history, err) = admin(
            &base,
            "t-viewer",
            &["--environment", env, "history", "--limit", "1", "--json"],
        );
        assert!(ok, "{err}");
        assert_eq!(history["history"][0]["action"], action, "{env}: {history}");
        assert_eq!(history["history"][0]["actor"], "ada", "{env}: {history}");
    }

    // The viewer reads but cannot write.
    let (ok, _, err) = admin(
        &base,
        "t-viewer",
        &["--environment", "staging", "delete-flag", "banner"],
    );
    assert!(!ok && err.contains("403"), "{err}");
    let (ok, me, _) = admin(&base, "t-viewer", &["whoami"]);
    assert!(ok);
    assert_eq!(me["role"], "viewer");

    // The admin issues a key for development; it reads development only.
    let (ok, issued, err) = admin(
        &base,
        "t-admin",
        &[
            "credentials",
            "create-key",
            "dev-laptop",
            "--for",
            "development",
        ],
    );
    assert!(ok, "{err}");
    let key = issued["token"].as_str().expect("token");
    let document: Value = reqwest::Client::new()
        .get(format!("{base}/v1/flags"))
        .bearer_auth(key)
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(document, json!({"flags": {}}));

    // Events keep the environment of the key they were posted with, and
    // `flagyard admin -e ENV events` shows that environment's only.
    let now = flagyard::core::event_json::epoch_millis(std::time::SystemTime::now());
    for (key, name) in [
        ("sk-staging", "staging-buy"),
        ("sk-production", "production-buy"),
    ] {
        let response = reqwest::Client::new()
            .post(format!("{base}/v1/events"))
            .bearer_auth(key)
            .json(&json!({"batchId": name, "events": [
                {"kind": "tracking", "name": name, "targetingKey": "u1", "at": now}
            ]}))
            .send()
            .await
            .expect("post");
        assert_eq!(response.status(), 200);
    }
    let out = Command::new(bin())
        .args(["admin", "--server", &base, "--token", "t-viewer"])
        .args(["-e", "staging", "events", "--all"])
        .output()
        .expect("flagyard admin events runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shown: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect();
    assert_eq!(shown.len(), 1, "{shown:?}");
    assert_eq!(shown[0]["environment"], "staging");
    assert_eq!(shown[0]["event"]["name"], "staging-buy");
    staging.close();
    production.close();
    let _ = server.kill();
    let _ = server.wait();
}
