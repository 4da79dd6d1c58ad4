//! The admin web page in a real headless Chromium: `flagyard serve --pancake`
//! and a `flagyard watch --source pancake:…` client as processes, the page
//! driven by `tests/browser/admin_page.py` (Selenium, from the test venv that
//! `scripts/test.sh` prepares, with Debian's chromium and chromedriver).

use std::path::Path;
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use flagyard_conformance::browser::{self, step};
use flagyard_conformance::redis_server::TestRedis;
use serde_json::Value;

mod common;
use common::{Killed, bin, json_lines, serve};

fn pancake(url: &str, args: &[&str]) {
    let out = Command::new(bin())
        .args(["pancake", "--redis", url, "--actor", "setup"])
        .args(args)
        .output()
        .expect("flagyard pancake runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `flagyard watch` on `source`; its JSON lines arrive on the channel.
fn watch(source: &str) -> (Killed, mpsc::Receiver<Value>) {
    let mut command = Command::new(bin());
    command.args(["watch", "--source", source]);
    json_lines(command)
}

fn wait_for(lines: &mpsc::Receiver<Value>, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) if check(&line) => return line,
            Ok(_) => {}
            Err(_) => panic!("flagyard watch never printed {what}"),
        }
    }
}

#[test]
fn the_admin_page_toggles_a_switch_that_reaches_a_watch_client() {
    let Some(python) = browser::python() else {
        return;
    };
    let Some(redis) = TestRedis::start() else {
        return;
    };
    let url = redis.url();
    pancake(&url, &["switch", "disable", "new_ui"]);
    pancake(&url, &["flag", "disable", "beta"]);
    pancake(&url, &["sample", "set", "rollout", "10"]);

    let dir = tempfile::tempdir().expect("temp dir");
    // A second environment, and named tokens: an admin and a viewer.
    std::fs::write(
        dir.path().join("staging.json"),
        r#"{"flags": {"staging-only": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "on"}}}"#,
    )
    .expect("seed");
    let config = dir.path().join("flagyard.toml");
    std::fs::write(
        &config,
        "[[environments]]\nname = \"staging\"\nflags = \"staging.json\"\n\n\
         [[admin-tokens]]\nname = \"page-admin\"\nrole = \"admin\"\ntoken = \"tok-admin\"\n\n\
         [[admin-tokens]]\nname = \"page-viewer\"\nrole = \"viewer\"\ntoken = \"tok-viewer\"\n",
    )
    .expect("config");
    let seed = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/flags.json");
    let (server, base) = serve(
        &dir.path().join("server.sqlite"),
        &[
            "--pancake",
            &url,
            "--config",
            config.to_str().expect("utf-8"),
            "--flags",
            seed.to_str().expect("utf-8"),
        ],
    );
    let _server = Killed(server);
    let (_watch, lines) = watch(&format!("pancake:{url}"));
    wait_for(&lines, "Ready", |l| l["status"] == "Ready");

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/admin_page.py");
    let screenshot = dir.path().join("admin.png");
    let screenshot_arg = screenshot.to_str().expect("utf-8");
    let steps = browser::steps(
        &python,
        &script,
        &[&base, "tok-admin", "tok-viewer", screenshot_arg],
    );
    let names: Vec<&str> = steps.iter().filter_map(|s| s["step"].as_str()).collect();
    assert_eq!(
        names,
        [
            "wrong token refused",
            "logged in",
            "switch toggled",
            "sample set",
            "switch created",
            "typing survives a refresh",
            "override added",
            "override removed",
            "history shown",
            "environment switched",
            "viewer reads only"
        ]
    );
    assert_eq!(steps[1]["who"], "logged in as page-admin (admin)");
    assert_eq!(steps[1]["new_ui"], "off");
    assert_eq!(steps[4]["message"], "switch dark_mode created");
    assert_eq!(steps[4]["state"], "off");
    assert_eq!(steps[5]["typed"], "ada");
    let history = &steps[8];
    assert!(
        history["has_enable"] == true && history["by_name"] == true,
        "{history}"
    );
    let switched = &steps[9];
    assert_eq!(switched["shows_staging"], true, "{switched}");
    assert_eq!(switched["shows_default"], false, "{switched}");
    assert_eq!(switched["heading"], "(staging)");
    let viewer = &steps[10];
    assert_eq!(viewer["who"], "logged in as page-viewer (viewer)");
    assert_eq!(viewer["write_buttons"], 0, "{viewer}");
    assert_eq!(viewer["create_form_shown"], false, "{viewer}");
    assert_eq!(
        viewer["notice"],
        "page-viewer (viewer) may read but not change staging."
    );
    assert!(std::fs::metadata(&screenshot).is_ok_and(|m| m.len() > 1000));

    // The switch turned on in the page reached the watching app.
    let changed = wait_for(&lines, "NEW_UI turned on", |l| {
        l["values"]["NEW_UI"] == true
    });
    println!("watch saw: {changed}");
    let state = Command::new(bin())
        .args(["pancake", "--redis", &url, "list", "--json"])
        .output()
        .expect("list");
    let state: Value = serde_json::from_slice(&state.stdout).expect("JSON");
    assert_eq!(state["switches"]["NEW_UI"], true);
    assert_eq!(state["switches"]["DARK_MODE"], false);
    assert_eq!(state["samples"]["ROLLOUT"], 25.0);
    assert_eq!(state["flags"]["BETA"]["overrides"], serde_json::json!({}));
}

/// The flag editor, from an empty server, as a new user would use it
/// (`tests/browser/editor.py`): three flags made with the forms, a preview
/// that answers what `flagyard eval` answers, a conflict, a diff, a restore,
/// a lint while typing, and a viewer without write controls. The 30/70
/// experiment reaches a `flagyard watch` client.
#[test]
fn the_flag_editor_makes_flags_a_watch_client_and_flagyard_eval_agree_with() {
    let Some(python) = browser::python() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("flagyard.toml");
    std::fs::write(
        &config,
        "[[admin-tokens]]\nname = \"ada\"\nrole = \"admin\"\ntoken = \"tok-admin\"\n\n\
         [[admin-tokens]]\nname = \"vic\"\nrole = \"viewer\"\ntoken = \"tok-viewer\"\n",
    )
    .expect("config");
    let (server, base) = serve(
        &dir.path().join("server.sqlite"),
        &["--config", config.to_str().expect("utf-8")],
    );
    let _server = Killed(server);
    let (_watch, lines) = watch(&format!("{base}/v1/stream"));
    wait_for(&lines, "Ready", |l| l["status"] == "Ready");

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/editor.py");
    let steps = browser::steps(&python, &script, &[&base, "tok-admin", "tok-viewer"]);
    let step = |name: &str| step(&steps, name);
    assert_eq!(step("logged in")["who"], "logged in as ada (admin)");
    let experiment = step("experiment created");
    assert_eq!(experiment["shares"], serde_json::json!(["30.0%", "70.0%"]));
    assert_eq!(experiment["sum"], "100");
    assert_eq!(
        step("email rule created")["json"]["targeting"],
        serde_json::json!({"if": [{"ends_with": [{"var": "email"}, "@example.com"]}, "on", "off"]})
    );
    let conflict = step("conflict shown");
    assert!(
        conflict["text"]
            .as_str()
            .is_some_and(|t| t.contains("Someone else changed kill-switch")),
        "{conflict}"
    );
    assert_eq!(conflict["reloaded_default"], "off", "{conflict}");
    assert_eq!(
        step("diff shown")["summary"],
        "flag kill-switch: state ENABLED → DISABLED"
    );
    assert_eq!(step("restored")["state"], "ENABLED");
    assert!(
        step("lint shown")["text"]
            .as_str()
            .is_some_and(|t| t.contains("did you mean \"targeting\"")),
        "{steps:?}"
    );
    assert_eq!(step("deleted")["served"], false);
    let viewer = step("viewer reads only");
    assert_eq!(viewer["write_buttons"], 0, "{viewer}");
    assert_eq!(viewer["new_flag_shown"], false, "{viewer}");
    assert!(
        viewer["view_buttons"].as_u64().is_some_and(|n| n > 0),
        "{viewer}"
    );

    // The experiment, as the page wrote it, reached the watching app.
    wait_for(&lines, "the experiment", |l| {
        l["changed"]
            .as_array()
            .is_some_and(|c| c.iter().any(|k| k == "checkout-experiment"))
    });
    let document: Value = reqwest::blocking::get(format!("{base}/v1/flags"))
        .expect("flags")
        .json()
        .expect("JSON");
    assert_eq!(
        document["flags"]["checkout-experiment"]["targeting"],
        serde_json::json!({"fractional": [["control", 30], ["treatment", 70]]})
    );

    // The preview answered what `flagyard eval` answers for that context.
    let file = dir.path().join("served.json");
    std::fs::write(&file, document.to_string()).expect("write");
    let eval = Command::new(bin())
        .args(["eval", "--all", "--flags"])
        .arg(&file)
        .args([
            "--context",
            r#"{"targetingKey": "u1", "email": "ada@example.com"}"#,
        ])
        .output()
        .expect("flagyard eval");
    let all: Value = serde_json::from_slice(&eval.stdout).expect("JSON");
    let preview = step("previewed");
    let ours = &all["staff-beta"];
    assert_eq!(
        (
            &preview["value"],
            preview["variant"].as_str(),
            &preview["reason"]
        ),
        (&ours["value"], ours["variant"].as_str(), &ours["reason"]),
        "preview {preview} vs eval {ours}"
    );
    assert_eq!(preview["value"], true);
}
