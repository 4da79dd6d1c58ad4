//! The `flagyard` binary, run as a user would, on real files.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};

fn flagyard(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_flagyard"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("flagyard starts");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write stdin");
    }
    drop(child.stdin.take());
    child.wait_with_output().expect("flagyard finishes")
}

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/flags.json")
}

fn stdout_json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("stdout is one JSON value")
}

#[test]
fn validate_accepts_the_example_and_reports_problems_with_file_flag_and_pointer() {
    let ok = flagyard(&["validate", example().to_str().unwrap()], None);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
    assert!(ok.stdout.is_empty());

    let dir = tempfile::tempdir().expect("temp dir");
    let bad = dir.path().join("bad.json");
    std::fs::write(
        &bad,
        r#"{"flags": {
            "good": {"state": "ENABLED", "variants": {"a": 1}, "defaultVariant": "a"},
            "typo": {"state": "ENABLD", "variants": {"a": 1}},
            "rule": {"state": "ENABLED", "variants": {"a": 1}, "targeting": {"iff": [true, "a"]}}
        }}"#,
    )
    .expect("write");
    let garbage = dir.path().join("garbage.json");
    std::fs::write(&garbage, "{not json").expect("write");
    let out = flagyard(
        &["validate", bad.to_str().unwrap(), garbage.to_str().unwrap()],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("bad.json: flag 'typo' at /flags/typo/state: state must be"))
    );
    assert!(lines.iter().any(|l| {
        l.contains("bad.json: flag 'rule' at /flags/rule/targeting/iff: unknown operator 'iff'")
    }));
    assert!(
        lines
            .iter()
            .any(|l| l.contains("garbage.json: not valid JSON at line 1, column 2"))
    );
}

#[test]
fn validate_warns_of_lints_without_failing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("lints.json");
    std::fs::write(
        &file,
        r#"{"flags": {"banner": {"state": "ENABLED", "variants": {"on": true, "off": false},
            "defaultVariant": "off", "targetting": {},
            "targeting": {"fractional": [["on", 0], ["of", 100]]}}}}"#,
    )
    .expect("write");
    let out = flagyard(&["validate", file.to_str().unwrap()], None);
    let text = String::from_utf8(out.stdout).expect("utf-8");
    assert!(out.status.success(), "lints do not fail a file: {text}");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    for expected in [
        "lints.json: warning: flag 'banner' at /flags/banner/targeting/fractional/0/1: weight 0",
        "lints.json: warning: flag 'banner' at /flags/banner/targeting/fractional/1/0: \"of\" is not a variant",
        "lints.json: warning: flag 'banner' at /flags/banner/targetting: unknown field \"targetting\" (did you mean \"targeting\"?)",
    ] {
        assert!(
            lines.iter().any(|l| l.contains(expected)),
            "{expected} missing: {text}"
        );
    }
}

#[test]
fn eval_one_flag_prints_full_details() {
    let flags = example();
    let out = flagyard(
        &[
            "eval",
            "--flags",
            flags.to_str().unwrap(),
            "--flag",
            "new-checkout",
            "--type",
            "boolean",
            "--default",
            "false",
            "--context",
            r#"{"targetingKey": "u1", "email": "ada@example.com"}"#,
        ],
        None,
    );
    let line = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        line.starts_with(
            r#"{"value":true,"variant":"on","reason":"TARGETING_MATCH","flagMetadata":"#
        ),
        "fields in documented order: {line}"
    );
    assert_eq!(
        stdout_json(&out),
        json!({"value": true, "variant": "on", "reason": "TARGETING_MATCH",
               "flagMetadata": {"flagSetId": "shop", "version": "1", "owner": "payments"}})
    );
    let out = flagyard(
        &[
            "eval",
            "--flags",
            flags.to_str().unwrap(),
            "--flag",
            "nope",
            "--type",
            "int",
            "--default",
            "3",
        ],
        None,
    );
    let v = stdout_json(&out);
    assert_eq!(
        (
            v["value"].clone(),
            v["errorCode"].clone(),
            v["reason"].clone()
        ),
        (json!(3), json!("FLAG_NOT_FOUND"), json!("ERROR"))
    );
    assert!(
        v.get("variant").is_none() && v.get("flagMetadata").is_none(),
        "absent fields omitted: {v}"
    );
}

#[test]
fn fractional_version_changes_the_hashing() {
    let flags = example();
    let mut differ = false;
    for i in 0..40 {
        let ctx = format!(r#"{{"targetingKey": "user-{i}"}}"#);
        let run = |v: &str| {
            let out = flagyard(
                &[
                    "eval",
                    "--flags",
                    flags.to_str().unwrap(),
                    "--flag",
                    "banner-color",
                    "--type",
                    "string",
                    "--default",
                    "\"x\"",
                    "--context",
                    &ctx,
                    "--fractional",
                    v,
                ],
                None,
            );
            stdout_json(&out)["variant"].clone()
        };
        differ |= run("v2") != run("v3");
    }
    assert!(differ, "v2 and v3 hash differently for some of 40 keys");
}

#[test]
fn batch_answers_every_line_in_order_and_survives_bad_lines() {
    let flags = example();
    let input = [
        r#"{"flag": "max-items", "type": "integer", "default": 1, "context": {"appVersion": "2.0.1"}}"#,
        "this is not json",
        r#"{"flag": "max-items", "type": "int", "default": "one"}"#,
        r#"{"flag": "theme", "type": "object", "default": {}}"#,
        r#"{"flag": "max-items", "type": "decimal", "default": 1}"#,
        r#"{"flag": "legacy-search", "type": "bool", "default": true}"#,
    ]
    .join("\n");
    let out = flagyard(
        &[
            "eval",
            "--flags",
            flags.to_str().unwrap(),
            "--batch",
            "--fractional",
            "v3",
        ],
        Some(&input),
    );
    assert!(out.status.success());
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .expect("utf-8")
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    assert_eq!(lines.len(), 6);
    assert_eq!(lines[0]["value"], json!(100));
    assert!(
        lines[1]["error"]
            .as_str()
            .unwrap()
            .contains("not valid JSON")
    );
    assert!(
        lines[2]["error"]
            .as_str()
            .unwrap()
            .contains("must be an integer")
    );
    assert_eq!(lines[3]["value"], json!({"bg": "#fff"}));
    assert!(
        lines[4]["error"]
            .as_str()
            .unwrap()
            .contains("unknown type 'decimal'")
    );
    assert_eq!(
        (lines[5]["value"].clone(), lines[5]["reason"].clone()),
        (json!(true), json!("DISABLED"))
    );
}

#[test]
fn all_resolves_every_flag() {
    let flags = example();
    let out = flagyard(
        &[
            "eval",
            "--flags",
            flags.to_str().unwrap(),
            "--all",
            "--context",
            r#"{"email": "x@example.com"}"#,
        ],
        None,
    );
    let v = stdout_json(&out);
    let keys: Vec<&String> = v.as_object().expect("object").keys().collect();
    assert_eq!(
        keys,
        [
            "banner-color",
            "legacy-search",
            "max-items",
            "new-checkout",
            "theme"
        ]
    );
    assert_eq!(v["new-checkout"]["value"], json!(true));
    assert_eq!(v["legacy-search"]["reason"], json!("DISABLED"));
}

#[test]
fn bad_invocations_fail_with_a_message() {
    let flags = example();
    let out = flagyard(
        &["eval", "--flags", "/nonexistent/flags.json", "--all"],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/flags.json: cannot read"));
    let out = flagyard(
        &[
            "eval",
            "--flags",
            flags.to_str().unwrap(),
            "--flag",
            "theme",
            "--type",
            "object",
            "--default",
            "{",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--default is not valid JSON"));
    let out = flagyard(
        &[
            "eval",
            "--flags",
            flags.to_str().unwrap(),
            "--all",
            "--context",
            "[1]",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("evaluation context must be a JSON object")
    );
}

/// The evaluator rules of `examples/evaluator-rules.json` through `flagyard eval`.
#[test]
fn eval_follows_the_rules_the_flagd_cores_agree_on() {
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/evaluator-rules.json");
    let eval = |flag: &str, fractional: &str, context: &str| {
        let out = flagyard(
            &[
                "eval",
                "--flags",
                rules.to_str().unwrap(),
                "--flag",
                flag,
                "--type",
                "string",
                "--default",
                r#""code""#,
                "--fractional",
                fractional,
                "--context",
                context,
            ],
            None,
        );
        let v = stdout_json(&out);
        (
            v["value"].clone(),
            v["variant"].clone(),
            v["reason"].clone(),
        )
    };
    let answer =
        |value: &str, variant: &str, reason: &str| (json!(value), json!(variant), json!(reason));
    for fractional in ["v2", "v3"] {
        assert_eq!(
            eval("by-number", fractional, r#"{"age": 1e21}"#),
            answer("huge", "1e+21", "TARGETING_MATCH")
        );
        assert_eq!(
            eval("by-number", fractional, r#"{"age": 2.0}"#),
            answer("two", "2", "TARGETING_MATCH")
        );
        assert_eq!(
            eval("shorthand", fractional, r#"{"targetingKey": ""}"#),
            answer("D", "d", "DEFAULT")
        );
    }
    assert_eq!(
        eval("null-equals-zero", "v2", "{}"),
        answer("y", "yes", "TARGETING_MATCH")
    );
    assert_eq!(
        eval("false-is-null", "v2", "{}"),
        answer("n", "no", "TARGETING_MATCH")
    );
    assert_eq!(
        eval("array-as-text", "v2", "{}"),
        answer("y", "yes", "TARGETING_MATCH")
    );
}

/// A Redis password in `--store` or `FLAGYARD_STORE` never reaches the output.
#[test]
fn the_store_password_is_masked_and_can_come_from_the_environment() {
    let from_env = Command::new(env!("CARGO_BIN_EXE_flagyard"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        // Port 1: nothing listens, so the server stops with the store's error.
        .env("FLAGYARD_STORE", "redis://:s3cret-pw@127.0.0.1:1")
        .output()
        .expect("flagyard runs");
    let from_flag = Command::new(env!("CARGO_BIN_EXE_flagyard"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--store",
            "http://:s3cret-pw@x",
        ])
        .output()
        .expect("flagyard runs");
    for out in [from_env, from_flag] {
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!out.status.success(), "{text}");
        assert!(!text.contains("s3cret-pw"), "the password leaked: {text}");
        assert!(text.contains(":***@"), "the URL is named, masked: {text}");
    }
}

/// `--batch` answers every input line, a blank one with an error line, so
/// output line N answers input line N; a bare word as `--default` is told to
/// use JSON quotes.
#[test]
fn eval_batch_answers_every_line_and_bare_defaults_get_a_hint() {
    let flags = example();
    let request = r#"{"flag": "new-checkout", "type": "boolean", "default": false}"#;
    let out = flagyard(
        &["eval", "--flags", flags.to_str().unwrap(), "--batch"],
        Some(&format!("{request}\n\n   \n{request}\n")),
    );
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert!(lines[0].get("value").is_some() && lines[3].get("value").is_some());
    assert!(
        lines[1]["error"]
            .as_str()
            .unwrap()
            .contains("empty input line")
    );
    assert!(lines[2]["error"].is_string());
    let out = flagyard(
        &[
            "eval",
            "--flags",
            flags.to_str().unwrap(),
            "--flag",
            "x",
            "--type",
            "string",
            "--default",
            "red",
        ],
        None,
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(r#"JSON quotes: --default '"red"'"#),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `flagyard watch` prints a status line only for a real transition, and
/// every reported error as a line of its own.
#[test]
fn watch_prints_transitions_and_errors_as_their_own_lines() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("flags.json");
    let doc = |v: i64| {
        format!(
            r#"{{"flags": {{"n": {{"state": "ENABLED", "variants": {{"v": {v}}}, "defaultVariant": "v"}}}}}}"#
        )
    };
    std::fs::write(&path, doc(1)).expect("write");
    let mut child = Command::new(env!("CARGO_BIN_EXE_flagyard"))
        .args([
            "watch",
            "--source",
            &format!("file://{}", path.display()),
            "--seconds",
            "30",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("watch starts");
    let (tx, rx) = std::sync::mpsc::channel::<Value>();
    let stdout = child.stdout.take().expect("stdout");
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if let Ok(v) = serde_json::from_str(&line) {
                let _ = tx.send(v);
            }
        }
    });
    let next = || {
        rx.recv_timeout(std::time::Duration::from_secs(10))
            .expect("a line")
    };
    let ready = next();
    assert_eq!(ready["status"], "Ready", "{ready}");
    std::thread::sleep(std::time::Duration::from_millis(200));
    // Each edit replaces the file at once (as editors save), so the watcher
    // never reads it half-written.
    let replace = |text: &str| {
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, text).expect("write");
        std::fs::rename(&tmp, &path).expect("rename");
    };
    replace("{\"flags\": {");
    let error = next();
    assert!(
        error["error"]
            .as_str()
            .is_some_and(|e| e.contains("document rejected")),
        "{error}"
    );
    std::thread::sleep(std::time::Duration::from_millis(200));
    replace(&doc(2));
    let changed = next();
    assert_eq!(changed["changed"], json!(["n"]), "{changed}");
    // Nothing else: the status never left Ready.
    let extra = rx.recv_timeout(std::time::Duration::from_millis(500));
    assert!(
        extra.is_err(),
        "no status line without a transition: {extra:?}"
    );
    let _ = child.kill();
    let _ = child.wait();
}

/// The README's `validate` example prints what the command prints.
#[test]
fn the_readme_validate_example_is_what_validate_prints() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md"))
            .expect("README");
    let example = readme
        .split("$ flagyard validate examples/flags.json broken.json\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("the README shows the validate example");
    let dir = tempfile::tempdir().expect("temp dir");
    let broken = dir.path().join("broken.json");
    std::fs::write(
        &broken,
        r#"{"flags": {
 "typo": {"state": "ENABLD", "variants": {"on": true}, "defaultVariant": "on"},
 "rule": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off", "targeting": {"iff": [true, "on", "off"]}}
}}"#,
    )
    .expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_flagyard"))
        .current_dir(dir.path())
        .args(["validate", example_path().as_str(), "broken.json"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&out.stdout), example);
}

fn example_path() -> String {
    example().display().to_string()
}
