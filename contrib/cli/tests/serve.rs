//! `flagyard serve` and `flagyard admin` as processes, against each other.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

mod common;
use common::{bin, serve};

fn stop(mut child: Child) {
    let pid = child.id().to_string();
    let status = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            assert!(status.success(), "graceful exit: {status}");
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "server did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn admin(base: &str, args: &[&str]) -> std::process::Output {
    Command::new(bin())
        .args(["admin", "--server", base, "--token", "tok"])
        .args(args)
        .output()
        .expect("flagyard admin runs")
}

#[test]
fn serve_seed_admin_changes_and_restart_keeps_them() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("server.sqlite");
    let seed = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/flags.json");
    let (child, base) = serve(&db, &["--flags", seed.to_str().expect("utf-8 path")]);

    let doc: Value = reqwest::blocking::get(format!("{base}/v1/flags"))
        .expect("get")
        .json()
        .expect("json");
    assert!(doc["flags"]["new-checkout"].is_object());

    let out = admin(
        &base,
        &[
            "set-flag",
            "beta",
            "--json",
            &json!({"state": "ENABLED", "variants": {"on": true}, "defaultVariant": "on"})
                .to_string(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reply: Value = serde_json::from_slice(&out.stdout).expect("json reply");
    assert_eq!(reply["version"], 2);

    let out = admin(
        &base,
        &["set-flag", "bad", "--json", r#"{"state": "nope"}"#],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/flags/bad/state"));

    let out = Command::new(bin())
        .args([
            "admin",
            "--server",
            &base,
            "--token",
            "wrong",
            "delete-flag",
            "beta",
        ])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("401"));

    let doc_file = dir.path().join("doc.json");
    std::fs::write(&doc_file, json!({"flags": {"only": {"state": "ENABLED", "variants": {"a": 1}, "defaultVariant": "a"}}}).to_string())
        .expect("write");
    assert!(
        admin(&base, &["put-document", doc_file.to_str().expect("path")])
            .status
            .success()
    );
    assert!(admin(&base, &["delete-flag", "only"]).status.success());

    let out = admin(&base, &["history", "--limit", "2", "--json"]);
    let history: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(history["history"][0]["action"], "delete-flag");
    // The actor is the token's name (`--admin-token` is named `admin`).
    assert_eq!(history["history"][0]["actor"], "admin");
    assert_eq!(history["history"][1]["action"], "put-document");
    // By default a table: a header, then one line per change with its diff.
    let out = admin(&base, &["history", "--limit", "2"]);
    let table = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    assert!(lines[0].starts_with("VERSION  WHEN (UTC)"), "{table}");
    assert!(
        lines[1].contains("admin") && lines[1].contains("delete-flag only"),
        "{table}"
    );
    assert!(lines[1].ends_with("flag only deleted"), "{table}");
    // An earlier version, whole.
    let out = admin(&base, &["show-version", "3"]);
    let earlier: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert!(earlier["flags"]["only"].is_object(), "{earlier}");
    stop(child);

    let (child, base) = serve(&db, &[]);
    let response = reqwest::blocking::get(format!("{base}/v1/flags")).expect("get");
    assert_eq!(response.headers()["x-flagyard-version"], "4");
    assert_eq!(
        response.json::<Value>().expect("json"),
        json!({"flags": {}})
    );
    // Rolled back to version 3: served again as version 5.
    assert!(admin(&base, &["rollback", "3"]).status.success());
    let response = reqwest::blocking::get(format!("{base}/v1/flags")).expect("get");
    assert_eq!(response.headers()["x-flagyard-version"], "5");
    assert!(response.json::<Value>().expect("json")["flags"]["only"].is_object());
    stop(child);
}

#[test]
fn serve_alone_starts_with_an_empty_document_and_refuses_writes_without_a_token() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut child = Command::new(bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--db"])
        .arg(dir.path().join("fresh.sqlite"))
        .env_remove("FLAGYARD_ADMIN_TOKEN")
        .stderr(Stdio::piped())
        .spawn()
        .expect("starts");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let base = loop {
        let line = lines.next().expect("announces").expect("line");
        if let Some(rest) = line.strip_prefix("flagyard: serving ") {
            assert!(line.contains("admin writes disabled"), "{line}");
            break rest.split_whitespace().next().expect("url").to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    let doc: Value = reqwest::blocking::get(format!("{base}/v1/flags"))
        .expect("get")
        .json()
        .expect("json");
    assert_eq!(doc, json!({"flags": {}}));
    let out = Command::new(bin())
        .args([
            "admin",
            "--server",
            &base,
            "--token",
            "x",
            "delete-flag",
            "a",
        ])
        .output()
        .expect("runs");
    assert!(String::from_utf8_lossy(&out.stderr).contains("403"));
    stop(child);
}

#[test]
fn watch_shows_what_an_app_sees_over_sse_websocket_and_polling() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (server, base) = serve(&dir.path().join("w.sqlite"), &[]);
    let ws_base = base.replace("http://", "ws://");
    let sources = [
        format!("{base}/v1/stream"),
        format!("{ws_base}/v1/ws"),
        format!("{base}/v1/flags"),
    ];
    let watchers: Vec<Child> = sources
        .iter()
        .map(|source| {
            Command::new(bin())
                .args([
                    "watch",
                    "--source",
                    source,
                    "--interval",
                    "1",
                    "--seconds",
                    "4",
                ])
                .stdout(Stdio::piped())
                .spawn()
                .expect("watch starts")
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1200));
    let out = admin(
        &base,
        &[
            "set-flag",
            "seen",
            "--json",
            r#"{"state": "ENABLED", "variants": {"on": true}, "defaultVariant": "on"}"#,
        ],
    );
    assert!(out.status.success());
    for (source, watcher) in sources.iter().zip(watchers) {
        let output = watcher.wait_with_output().expect("watch ends");
        assert!(output.status.success(), "{source}");
        let lines: Vec<Value> = String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).expect("JSON line"))
            .collect();
        assert_eq!(lines[0]["status"], "Ready", "{source}: {lines:?}");
        assert_eq!(lines[0]["version"], 1, "{source}: {lines:?}");
        assert!(
            lines.iter().any(|l| l["changed"] == json!(["seen"])
                && l["version"] == 2
                && l["at"].is_string()),
            "{source}: {lines:?}"
        );
    }
    stop(server);
}

/// `flagyard admin` encodes flag keys (a key with `?`, `#` or a space is one
/// path segment) and takes `FLAGYARD_SERVER` as `host:port` too.
#[test]
fn admin_encodes_keys_and_takes_a_bare_host_and_port() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (child, base) = serve(&dir.path().join("server.sqlite"), &[]);
    let host_port = base.trim_start_matches("http://").to_string();
    let flag =
        json!({"state": "ENABLED", "variants": {"on": true}, "defaultVariant": "on"}).to_string();
    for key in ["q?x", "sp ace", "hash#tag"] {
        let out = Command::new(bin())
            .args(["admin", "--token", "tok", "set-flag", key, "--json", &flag])
            .env("FLAGYARD_SERVER", &host_port)
            .output()
            .expect("flagyard admin runs");
        assert!(
            out.status.success(),
            "{key}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let doc: Value = reqwest::blocking::get(format!("{base}/v1/flags"))
        .expect("get")
        .json()
        .expect("json");
    let mut keys: Vec<&str> = doc["flags"]
        .as_object()
        .expect("flags")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(keys, ["hash#tag", "q?x", "sp ace"]);
    let out = admin(&base, &["delete-flag", "q?x"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = reqwest::blocking::get(format!("{base}/v1/flags"))
        .expect("get")
        .json()
        .expect("json");
    assert!(doc["flags"].get("q?x").is_none());
    stop(child);
}

/// Out of file descriptors (`ulimit -n 64`, 100 idle sockets that stay
/// open), the server closes the idle ones at the request timeout and serves
/// new requests again.
#[test]
fn the_server_accepts_again_after_running_out_of_file_descriptors() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (child, base) = common::serve_with_fd_limit(
        &dir.path().join("server.sqlite"),
        64,
        &["--request-timeout", "1"],
    );
    let addr = base.trim_start_matches("http://").to_string();
    let sockets: Vec<std::net::TcpStream> = (0..100)
        .filter_map(|_| std::net::TcpStream::connect(&addr).ok())
        .collect();
    assert!(
        sockets.len() > 64,
        "the kernel queued the connections: {}",
        sockets.len()
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let served = loop {
        let answer = reqwest::blocking::Client::new()
            .get(format!("{base}/healthz"))
            .timeout(Duration::from_secs(2))
            .send();
        let ok = answer.is_ok_and(|r| r.status().is_success());
        if ok || std::time::Instant::now() > deadline {
            break ok;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        served,
        "the server answers again while the idle sockets are still open"
    );
    stop(child);
}

/// Piped logs carry no ANSI colours, `--log-format json` writes JSON lines,
/// and the banner names the URL, the store, the flags and the admin page.
#[test]
fn logs_are_plain_or_json_and_the_banner_says_what_is_served() {
    let dir = tempfile::tempdir().expect("temp dir");
    let seed = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/flags.json");
    for format in ["text", "json"] {
        let mut child = Command::new(bin())
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--log-format",
                format,
                "--db",
            ])
            .arg(dir.path().join(format!("{format}.sqlite")))
            .arg("--flags")
            .arg(&seed)
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("flagyard serve starts");
        let lines: Vec<String> = BufReader::new(child.stderr.take().expect("stderr"))
            .lines()
            .map_while(Result::ok)
            .take(3)
            .collect();
        let _ = child.kill();
        let _ = child.wait();
        assert!(
            lines.iter().all(|l| !l.contains('\u{1b}')),
            "no ANSI escapes: {lines:?}"
        );
        let banner = lines
            .iter()
            .find(|l| l.starts_with("flagyard: serving http://"))
            .unwrap_or_else(|| panic!("a banner: {lines:?}"));
        assert!(banner.contains("5 flags at version 1"), "{banner}");
        assert!(banner.contains("/admin)"), "{banner}");
        let logs: Vec<&String> = lines
            .iter()
            .filter(|l| !l.starts_with("flagyard:"))
            .collect();
        assert!(!logs.is_empty(), "{lines:?}");
        for line in logs {
            let parsed = serde_json::from_str::<Value>(line);
            assert_eq!(parsed.is_ok(), format == "json", "{format}: {line}");
        }
    }
}
