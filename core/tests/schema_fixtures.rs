//! Every flagd schema fixture gets the right verdict.

use std::path::PathBuf;

use flagyard_core::{DocumentError, ErrorCode, EvaluationContext, Snapshot};

fn fixtures(sub: &str) -> Option<Vec<(String, String)>> {
    let base = std::env::var_os("FLAGYARD_CONFORMANCE_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../shared/conformance-data"
            ))
        });
    let dir = base.join("flagd-schemas/json/test").join(sub);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "schema fixtures missing at {} (required when CI=true)",
            dir.display()
        );
        eprintln!("SKIPPED: schema fixtures not found at {}", dir.display());
        return None;
    };
    let mut out: Vec<(String, String)> = entries
        .map(|e| e.expect("readable directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| {
            let name = p
                .file_name()
                .expect("file name")
                .to_string_lossy()
                .into_owned();
            (name, std::fs::read_to_string(&p).expect("readable fixture"))
        })
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no fixtures in {}", dir.display());
    Some(out)
}

#[test]
fn positive_flag_fixtures_load_clean() {
    let Some(mut files) = fixtures("flags/positive") else {
        return;
    };
    files.extend(fixtures("flagd/positive").unwrap_or_default());
    for (name, text) in files {
        let snapshot = Snapshot::parse(&text).unwrap_or_else(|e| panic!("{name}: rejected: {e}"));
        assert!(
            snapshot.problems().is_empty(),
            "{name}: unexpected problems {:?}",
            snapshot.problems()
        );
        assert!(!snapshot.is_empty(), "{name}: no flags loaded");
    }
}

/// What each negative fixture must report: (pointer, words of the message).
fn expected_problem(name: &str) -> (&'static str, &'static str) {
    match name {
        "empty-variants.json" => ("/flags/myBoolFlag/variants", "at least one variant"),
        "malformed-flag.json" => ("/flags/not-a-flag", "missing required \"state\""),
        "missing-variants.json" => ("/flags/myBoolFlag", "missing required \"variants\""),
        "mixed-variant-types.ffconfig.json" => ("/flags/myBoolFlag/variants/", "one type"),
        "state-set-incorrectly.json" => ("/flags/myBoolFlag/state", "\"ENABLED\" or \"DISABLED\""),
        "with-invalid-flag-metadata.json" => (
            "/flags/myBoolFlag/metadata/invalid",
            "booleans, strings or numbers",
        ),
        "with-invalid-flag-set-metadata.json" => {
            ("/metadata/invalid", "booleans, strings or numbers")
        }
        "with-invalid-targeting.json" => (
            "/flags/targetedFlag/targeting/not-a-real-rule",
            "unknown operator",
        ),
        other => panic!("no expectation for negative fixture {other}; add one"),
    }
}

#[test]
fn negative_flag_fixtures_report_their_specific_problem() {
    let Some(files) = fixtures("flags/negative") else {
        return;
    };
    for (name, text) in files {
        if name == "with-array-flags.json" {
            // `flags` as an array: the whole document is rejected.
            let err = Snapshot::parse(&text).expect_err("array form must be rejected");
            assert!(
                matches!(err, DocumentError::FlagsNotObject { found: "an array" }),
                "{name}: {err}"
            );
            continue;
        }
        let snapshot =
            Snapshot::parse(&text).unwrap_or_else(|e| panic!("{name}: rejected whole: {e}"));
        let (pointer, words) = expected_problem(&name);
        assert!(
            snapshot
                .problems()
                .iter()
                .any(|p| p.pointer.starts_with(pointer) && p.message.contains(words)),
            "{name}: expected a problem at {pointer} mentioning {words:?}, got {:?}",
            snapshot.problems()
        );
    }
}

#[test]
fn a_bad_flag_does_not_stop_the_good_ones() {
    let Some(files) = fixtures("flags/negative") else {
        return;
    };
    let (_, text) = files
        .into_iter()
        .find(|(n, _)| n == "malformed-flag.json")
        .expect("malformed-flag.json fixture");
    let snapshot = Snapshot::parse(&text).expect("document loads");
    let ctx = EvaluationContext::new();
    let good = snapshot.resolve("myBoolFlag", "x", &ctx);
    assert_eq!(good.value, "false");
    assert_eq!(good.variant(), Some("on"));
    let bad = snapshot.resolve("not-a-flag", "fallback", &ctx);
    assert_eq!(bad.value, "fallback");
    assert_eq!(bad.error_code(), Some(ErrorCode::ParseError));
    assert!(
        bad.error
            .expect("error")
            .message
            .as_str()
            .contains("/flags/not-a-flag")
    );
}

#[test]
fn positive_targeting_fixtures_compile() {
    let Some(files) = fixtures("targeting/positive") else {
        return;
    };
    for (name, text) in files {
        let rule: serde_json::Value = serde_json::from_str(&text).expect("fixture is JSON");
        let document = serde_json::json!({
            "flags": { "f": { "state": "ENABLED", "variants": { "a": "a" }, "defaultVariant": "a", "targeting": rule } }
        });
        let snapshot =
            Snapshot::from_value(&document, &Default::default()).expect("document loads");
        // Standalone rule fixtures may name evaluators that only exist in a full document.
        let real: Vec<_> = snapshot
            .problems()
            .iter()
            .filter(|p| !p.message.starts_with("$ref to unknown evaluator"))
            .collect();
        assert!(real.is_empty(), "{name}: {real:?}");
    }
}
