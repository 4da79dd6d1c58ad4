//! An A/B experiment as the README walks through it, with the real binaries:
//! `flagyard serve` on the example flags, `flagyard experiment create`,
//! events through the collector, `flagyard experiment results` (table and
//! JSON) agreeing with scipy and statsmodels computed from `flagyard admin
//! events`, and the `/admin` page in headless Chromium
//! (`tests/browser/experiments.py`) showing the same.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use flagyard_conformance::browser::{self, step};
use serde_json::{Value, json};

mod common;
use common::{Killed, bin, serve};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn flagyard(base: &str, args: &[&str]) -> Output {
    let out = Command::new(bin())
        .args(args)
        .env("FLAGYARD_SERVER", base)
        .env("FLAGYARD_ADMIN_TOKEN", "tok")
        .output()
        .expect("flagyard runs");
    assert!(
        out.status.success(),
        "flagyard {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// 400 users split 240 red : 160 green (the flag says 50/50: the
/// sample-ratio check must say so), green buying far more often.
fn traffic(start: u64) -> Vec<Value> {
    let mut events = Vec::new();
    for i in 0..400u64 {
        let key = format!("user-{i}");
        let green = i % 5 >= 3;
        let variant = if green { "green" } else { "red" };
        let at = start + 10 + i;
        events.push(
            json!({"kind": "exposure", "flag": "banner-color", "variant": variant,
                           "reason": "SPLIT", "targetingKey": key, "at": at}),
        );
        let buys = if green { i % 2 == 0 } else { i % 5 == 0 };
        if buys {
            events.push(json!({"kind": "tracking", "name": "purchase_completed",
                               "targetingKey": key, "at": at + 1}));
            events.push(
                json!({"kind": "tracking", "name": "revenue", "targetingKey": key,
                               "value": 20.0 + (i % 7) as f64, "at": at + 2}),
            );
        }
    }
    events
}

#[test]
fn an_experiment_read_in_the_terminal_and_on_the_page_agrees_with_scipy() {
    let python = browser::python();
    let dir = tempfile::tempdir().expect("temp dir");
    let flags = repo().join("examples/flags.json");
    let (server, base) = serve(
        &dir.path().join("server.sqlite"),
        &["--flags", flags.to_str().expect("utf-8")],
    );
    let _server = Killed(server);

    let created = flagyard(
        &base,
        &[
            "experiment",
            "create",
            "banner-color",
            "--metric",
            "purchase_completed",
            "--metric",
            "revenue:value",
            "--control",
            "red",
        ],
    );
    let experiment: Value = serde_json::from_slice(&created.stdout).expect("JSON");
    let start = experiment["start"].as_u64().expect("start");
    let events = traffic(start);
    let answer: Value = reqwest::blocking::Client::new()
        .post(format!("{base}/v1/events"))
        .json(&json!({"batchId": "page-test", "events": events}))
        .send()
        .expect("collector")
        .json()
        .expect("JSON");
    assert_eq!(answer["accepted"], events.len(), "{answer}");

    let table =
        String::from_utf8(flagyard(&base, &["experiment", "results", "banner-color"]).stdout)
            .expect("utf-8");
    let results: Value = serde_json::from_slice(
        &flagyard(&base, &["experiment", "results", "banner-color", "--json"]).stdout,
    )
    .expect("JSON");
    assert_eq!(results["users"], 400, "{results}");
    assert_eq!(results["sampleRatio"]["mismatch"], true, "{results}");
    let green = results["metrics"][0]["variants"]
        .as_array()
        .expect("variants")
        .iter()
        .find(|v| v["variant"] == "green")
        .expect("green")
        .clone();
    let lift = green["versusControl"]["relative"].as_f64().expect("lift");
    let p = green["versusControl"]["pValue"].as_f64().expect("p");
    // The table says what the JSON says.
    let row = table
        .lines()
        .find(|l| l.starts_with("green"))
        .unwrap_or_else(|| panic!("no green row in\n{table}"));
    assert!(row.contains(&format!("{:+.1} %", lift * 100.0)), "{row}");
    let p_text = if p < 1e-4 {
        format!("{p:.1e}")
    } else {
        format!("{p:.4}")
    };
    assert!(row.ends_with(&p_text), "{row}\n{table}");
    assert!(table.contains("MISMATCH"), "{table}");
    assert!(table.contains("green converts"), "{table}");

    // scipy and statsmodels from what `flagyard admin events --all` prints,
    // checked against what `flagyard experiment results --json` printed.
    let printed = flagyard(&base, &["admin", "events", "--all"]);
    let events_file = dir.path().join("events.jsonl");
    std::fs::write(&events_file, &printed.stdout).expect("write");
    assert_eq!(
        String::from_utf8_lossy(&printed.stdout).lines().count(),
        events.len()
    );
    if let Some(python) = &python {
        let results_file = dir.path().join("results.json");
        std::fs::write(&results_file, results.to_string()).expect("write");
        let out = Command::new(python)
            .arg(repo().join("contrib/server/tests/experiment_stats.py"))
            .arg("--check")
            .arg(&events_file)
            .arg(&results_file)
            .output()
            .expect("python runs");
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{said}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let agree: usize = said
            .lines()
            .last()
            .and_then(|l| l.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{said}"));
        assert!(agree >= 30, "every figure compared: {said}");
    }

    // The page shows the same.
    let Some(python) = python else {
        return;
    };
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/experiments.py");
    let steps = browser::steps(&python, &script, &[&base, "tok"]);
    let shown = step(&steps, "results shown");
    assert!(
        shown["title"]
            .as_str()
            .is_some_and(|t| t.contains("400 users") && t.contains("control red")),
        "{shown}"
    );
    assert_eq!(
        shown["green_lift"],
        format!("{:+.1} %", lift * 100.0),
        "{shown}"
    );
    let page_p: f64 = shown["green_p"]
        .as_str()
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("{shown}"));
    assert!((page_p - p).abs() <= p * 5e-3, "{page_p} vs {p}");
    assert_eq!(shown["red_lift"], "(control)");
    let verdicts = shown["verdicts"].to_string();
    assert!(
        verdicts.contains("green converts") && verdicts.contains("significant"),
        "{verdicts}"
    );
    let warning = shown["warning"][0].as_str().unwrap_or_default();
    assert!(
        warning.contains("The split is off") && warning.contains("red 240"),
        "{shown}"
    );
    // Two metrics, two variants each: a whisker and a dot per variant.
    assert_eq!((&shown["whiskers"], &shown["dots"]), (&json!(4), &json!(4)));
    let stopped = step(&steps, "stopped");
    assert!(
        stopped["title"]
            .as_str()
            .is_some_and(|t| t.contains("stopped"))
    );
    assert_eq!(stopped["stop_buttons"], 0);
    assert!(
        step(&steps, "deleted")["question"]
            .as_str()
            .is_some_and(|q| q.contains("banner-color"))
    );
    let listed: Value =
        serde_json::from_slice(&flagyard(&base, &["experiment", "list"]).stdout).expect("JSON");
    let now = &listed["experiments"][0];
    assert_eq!(now["flag"], "banner-color");
    assert!(now["stop"].is_null(), "the one the form started: {now}");
    assert_eq!(
        now["metrics"][1],
        json!({"name": "revenue", "kind": "value"})
    );
}
