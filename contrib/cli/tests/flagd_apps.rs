//! Apps written for flagd, pointed at `flagyard serve --grpc-listen`, as a
//! new user would try them: a Python app (`openfeature-provider-flagd`,
//! `resolver_type=IN_PROCESS`) and a JS app (`@openfeature/flagd-provider`,
//! in-process, under node) serve the example flags' answer, and both follow
//! a change made on the `/admin` page in headless Chromium.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use flagyard_conformance::browser::{self, step};
use serde_json::Value;

mod common;
use common::{Killed, json_lines, serve};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Waits up to `within` for a line with `value`; how long it took.
fn until_value(
    lines: &mpsc::Receiver<Value>,
    who: &str,
    value: bool,
    within: Duration,
) -> Duration {
    let started = Instant::now();
    loop {
        let left = within.saturating_sub(started.elapsed());
        match lines.recv_timeout(left) {
            Ok(line) if line["value"] == value => return started.elapsed(),
            Ok(_) => {}
            Err(_) => panic!("{who} never answered {value} within {within:?}"),
        }
    }
}

#[test]
fn python_and_js_flagd_apps_follow_a_change_made_on_the_admin_page() {
    let Some(python) = browser::python() else {
        return;
    };
    let js = repo().join("contrib/server/tests/flagd_js");
    if !js.join("node_modules").is_dir() {
        return browser::skip("contrib/server/tests/flagd_js/node_modules is missing (npm ci)");
    }
    let grpc_port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let dir = tempfile::tempdir().expect("temp dir");
    let flags = repo().join("examples/flags.json");
    let grpc = format!("127.0.0.1:{grpc_port}");
    let (server, base) = serve(
        &dir.path().join("server.sqlite"),
        &[
            "--flags",
            flags.to_str().expect("utf-8"),
            "--grpc-listen",
            &grpc,
        ],
    );
    let _server = Killed(server);
    let port = grpc_port.to_string();
    // Both apps evaluate new-checkout for ada@example.com: on (she is staff).
    let mut py = Command::new(&python);
    py.arg(repo().join("contrib/server/tests/flagd_client.py"))
        .args(["127.0.0.1", &port, "", "new-checkout", "60", "in-process"]);
    let (_py, py_lines) = json_lines(py);
    let mut node = Command::new("node");
    node.arg(js.join("flagd_client.mjs")).args([
        "127.0.0.1",
        &port,
        "",
        "new-checkout",
        "60",
        "in-process",
    ]);
    let (_js, js_lines) = json_lines(node);
    until_value(&py_lines, "the Python app", true, Duration::from_secs(20));
    until_value(&js_lines, "the JS app", true, Duration::from_secs(20));

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/toggle.py");
    let steps = browser::steps(&python, &script, &[&base, "tok", "new-checkout"]);
    assert_eq!(step(&steps, "shown")["label"], "Disable");
    assert!(
        step(&steps, "disabled")["message"]
            .as_str()
            .is_some_and(|m| m.contains("new-checkout disabled")),
        "{steps:?}"
    );
    // Disabled: both apps serve the code default. The page's write returned
    // before the script did, so a second is generous.
    let py_took = until_value(&py_lines, "the Python app", false, Duration::from_secs(1));
    let js_took = until_value(&js_lines, "the JS app", false, Duration::from_secs(1));
    eprintln!("after the page confirmed: Python {py_took:?}, JS {js_took:?}");
}
