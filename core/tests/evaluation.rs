//! Resolution semantics of DESIGN §2, through the public API.

use flagyard_core::{
    CompileOptions, DocumentError, ErrorCode, EvaluationContext, Limits, MetadataValue, Reason,
    Snapshot,
};
use serde_json::json;

fn snapshot(doc: serde_json::Value) -> Snapshot {
    Snapshot::from_value(&doc, &CompileOptions::default()).expect("document loads")
}

fn doc() -> Snapshot {
    snapshot(json!({
        "metadata": {"flagSetId": "set", "team": "core"},
        "$evaluators": {"is-staff": {"ends_with": [{"var": "email"}, "@example.com"]}},
        "flags": {
            "static-bool": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "on",
                            "metadata": {"team": "growth", "rank": 3}},
            "disabled": {"state": "DISABLED", "variants": {"on": true}, "defaultVariant": "on"},
            "no-default": {"state": "ENABLED", "variants": {"a": "A", "b": "B"}},
            "null-default": {"state": "ENABLED", "variants": {"a": "A"}, "defaultVariant": null,
                             "targeting": {"if": [{"==": [{"var": "x"}, 1]}, "a"]}},
            "staff": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off",
                      "targeting": {"if": [{"$ref": "is-staff"}, "on", null]}},
            "bool-named": {"state": "ENABLED", "variants": {"true": "yes", "false": "no"}, "defaultVariant": "false",
                           "targeting": {"==": [{"var": "x"}, 1]}},
            "unknown-variant": {"state": "ENABLED", "variants": {"a": 1}, "defaultVariant": "a",
                                "targeting": {"if": [true, "zzz"]}},
            "number-result": {"state": "ENABLED", "variants": {"a": 1}, "defaultVariant": "a", "targeting": {"+": [1, 2]}},
            "empty-targeting": {"state": "ENABLED", "variants": {"a": 1.5}, "defaultVariant": "a", "targeting": {}},
            "ints": {"state": "ENABLED", "variants": {"one": 1, "half": 2.7}, "defaultVariant": "half",
                     "targeting": {"if": [{"var": "int"}, "one"]}},
            "bad-op": {"state": "ENABLED", "variants": {"a": "A"}, "defaultVariant": "a", "targeting": {"bogus": [1]}},
            "dangling": {"state": "ENABLED", "variants": {"a": "A"}, "defaultVariant": "a", "targeting": {"$ref": "nope"}},
            "object": {"state": "ENABLED", "variants": {"o": {"k": [1, 2]}}, "defaultVariant": "o"},
            "flag-key": {"state": "ENABLED", "variants": {"flag-key": "matched"}, "defaultVariant": null,
                         "targeting": {"var": "$flagd.flagKey"}}
        }
    }))
}

#[test]
fn static_flag_and_merged_metadata() {
    let s = doc();
    let r = s.resolve("static-bool", false, &());
    assert!(r.value);
    assert_eq!(
        (r.variant(), r.reason, r.error.clone()),
        (Some("on"), Reason::Static, None)
    );
    assert_eq!(
        r.metadata.get("team"),
        Some(&MetadataValue::String("growth".into())),
        "flag wins"
    );
    assert_eq!(
        r.metadata.get("flagSetId"),
        Some(&MetadataValue::String("set".into()))
    );
    assert_eq!(r.metadata.get("rank"), Some(&MetadataValue::Int(3)));
}

#[test]
fn disabled_serves_the_code_default() {
    let s = doc();
    let r = s.resolve("disabled", false, &());
    assert_eq!(
        (r.value, r.variant(), r.reason, r.error.clone()),
        (false, None, Reason::Disabled, None)
    );
}

#[test]
fn no_default_variant_serves_the_code_default_with_reason_default() {
    let s = doc();
    let r = s.resolve("no-default", "code", &());
    assert_eq!(
        (r.value, r.variant(), r.reason),
        ("code", None, Reason::Default)
    );
    let r = s.resolve("null-default", "code", &());
    assert_eq!((r.value, r.reason), ("code", Reason::Default));
    let ctx = EvaluationContext::new().with_attribute("x", 1);
    let r = s.resolve("null-default", "code", &ctx);
    assert_eq!((r.value, r.reason), ("A", Reason::TargetingMatch));
}

#[test]
fn targeting_match_null_and_errors() {
    let s = doc();
    let staff = EvaluationContext::new().with_attribute("email", "ada@example.com");
    let r = s.resolve("staff", false, &staff);
    assert_eq!(
        (r.value, r.variant(), r.reason),
        (true, Some("on"), Reason::TargetingMatch)
    );
    let r = s.resolve("staff", true, &EvaluationContext::new());
    assert_eq!(
        (r.value, r.variant(), r.reason),
        (false, Some("off"), Reason::Default)
    );

    let r = s.resolve(
        "bool-named",
        "",
        &EvaluationContext::new().with_attribute("x", 1),
    );
    assert_eq!((r.value, r.variant()), ("yes", Some("true")));

    let r = s.resolve("unknown-variant", 9_i64, &());
    assert_eq!(
        (r.value, r.reason, r.error_code()),
        (9, Reason::Error, Some(ErrorCode::General))
    );
    let r = s.resolve("number-result", 9_i64, &());
    assert_eq!((r.value, r.error_code()), (9, Some(ErrorCode::General)));

    let r = s.resolve("empty-targeting", 0.0, &());
    assert_eq!((r.value, r.reason), (1.5, Reason::Static));
}

#[test]
fn parse_errors_only_hit_their_flag() {
    let s = doc();
    for key in ["bad-op", "dangling"] {
        let r = s.resolve(key, "fallback", &());
        assert_eq!(
            (r.value, r.reason, r.error_code()),
            ("fallback", Reason::Error, Some(ErrorCode::ParseError))
        );
        assert!(
            r.error
                .unwrap()
                .message
                .as_str()
                .contains(&format!("/flags/{key}/targeting"))
        );
    }
    assert_eq!(s.problems().len(), 2, "{:?}", s.problems());
    assert!(
        s.resolve("static-bool", false, &()).value,
        "the rest still loads"
    );
}

#[test]
fn type_mismatch_and_not_found() {
    let s = doc();
    let r = s.resolve("static-bool", "x", &());
    assert_eq!(
        (r.value, r.reason, r.error_code()),
        ("x", Reason::Error, Some(ErrorCode::TypeMismatch))
    );
    let r = s.resolve("missing", 1_i64, &());
    assert_eq!(
        (r.value, r.reason, r.error_code()),
        (1, Reason::Error, Some(ErrorCode::FlagNotFound))
    );
    assert!(r.metadata.is_empty());
}

#[test]
fn integer_and_float_requests_follow_flagd() {
    let s = doc();
    // flagd resolves integers through float64 and truncates.
    assert_eq!(s.resolve("ints", 0_i64, &()).value, 2);
    assert_eq!(s.resolve("ints", 0.0, &()).value, 2.7);
    let one = EvaluationContext::new().with_attribute("int", true);
    assert_eq!(s.resolve("ints", 0.0, &one).value, 1.0);
    assert_eq!(s.resolve("ints", 0_i64, &one).value, 1);
}

#[test]
fn objects_and_injected_flag_key() {
    let s = doc();
    let fallback = json!({});
    let r = s.resolve("object", &fallback, &());
    assert_eq!(r.value, &json!({"k": [1, 2]}));
    let r = s.resolve("flag-key", "", &());
    assert_eq!((r.value, r.reason), ("matched", Reason::TargetingMatch));
}

#[test]
fn whole_document_rejections_name_the_problem() {
    assert!(matches!(
        Snapshot::parse("[1]"),
        Err(DocumentError::NotAnObject { .. })
    ));
    assert_eq!(
        Snapshot::parse("{}").unwrap_err(),
        DocumentError::MissingFlags
    );
    assert!(matches!(
        Snapshot::parse(r#"{"flags": 3}"#),
        Err(DocumentError::FlagsNotObject { found: "a number" })
    ));
    let err = Snapshot::parse("{\"flags\": {\n  \"a\": }").unwrap_err();
    assert!(matches!(err, DocumentError::Json { line: 2, .. }), "{err}");
    assert!(err.to_string().contains("line 2"));
}

#[test]
fn deep_rules_are_refused_without_overflowing_the_stack() {
    // 100,000 levels as text: the JSON parser refuses it (nesting limit 128).
    let depth = 100_000;
    let text = format!(
        r#"{{"flags": {{"deep": {{"state": "ENABLED", "variants": {{"a": 1}}, "defaultVariant": "a", "targeting": {}1{}}}}}}}"#,
        r#"{"!":["#.repeat(depth),
        "]}".repeat(depth)
    );
    let err = Snapshot::parse_with(
        &text,
        &CompileOptions::default().limits(Limits {
            max_document_bytes: usize::MAX,
            ..Limits::default()
        }),
    )
    .unwrap_err();
    assert!(err.to_string().contains("nested deeper than 128"), "{err}");

    // Deeper than the rule limit but parseable: only that flag fails.
    let depth = 100;
    let rule = format!(r#"{}1{}"#, r#"{"!":"#.repeat(depth), "}".repeat(depth));
    let text = format!(
        r#"{{"flags": {{"deep": {{"state": "ENABLED", "variants": {{"a": 1}}, "defaultVariant": "a", "targeting": {rule}}},
                      "fine": {{"state": "ENABLED", "variants": {{"a": 1}}, "defaultVariant": "a"}}}}}}"#
    );
    let s = Snapshot::parse(&text).expect("loads");
    let r = s.resolve("deep", 0_i64, &());
    assert_eq!(r.error_code(), Some(ErrorCode::ParseError));
    assert!(r.error.unwrap().message.as_str().contains("deeper than 64"));
    assert_eq!(s.resolve("fine", 0_i64, &()).value, 1);
}

#[test]
fn deep_rules_built_in_memory_are_refused() {
    // A 100,000-level value built in memory (not through the parser). Building and
    // dropping it recurses in serde_json, so that happens on a large stack; the
    // compilation itself is bounded by the rule depth limit.
    std::thread::Builder::new()
        .stack_size(512 * 1024 * 1024)
        .spawn(|| {
            let mut rule = json!(true);
            for _ in 0..100_000 {
                // Built by hand: `json!` would clone `rule` at every level.
                rule = serde_json::Value::Object(serde_json::Map::from_iter([(
                    "!".to_string(),
                    serde_json::Value::Array(vec![rule]),
                )]));
            }
            let mut variant = json!(1);
            for _ in 0..100_000 {
                variant = serde_json::Value::Object(serde_json::Map::from_iter([("k".to_string(), variant)]));
            }
            let document = json!({"flags": {
                "deep": {"state": "ENABLED", "variants": {"a": 1}, "defaultVariant": "a", "targeting": rule},
                "deep-variant": {"state": "ENABLED", "variants": {"a": variant}, "defaultVariant": "a"}
            }});
            let compiled = std::thread::scope(|scope| {
                std::thread::Builder::new()
                    .stack_size(2 * 1024 * 1024)
                    .spawn_scoped(scope, || Snapshot::from_value(&document, &CompileOptions::default()).map(|s| s.problems().to_vec()))
                    .expect("spawn small-stack thread")
                    .join()
                    .expect("compiling on a 1 MiB stack does not overflow")
            });
            let problems = compiled.expect("document loads");
            assert!(problems.iter().any(|p| p.message.contains("rule nested deeper than 64")), "{problems:?}");
            assert!(problems.iter().any(|p| p.message.contains("variant value nested deeper than 64")), "{problems:?}");
        })
        .expect("spawn")
        .join()
        .expect("no panic");
}

#[test]
fn huge_strings_are_refused() {
    let big = "x".repeat(50 * 1024 * 1024);
    let text = format!(
        r#"{{"flags": {{"big": {{"state": "ENABLED", "variants": {{"a": 1}}, "defaultVariant": "a", "targeting": {{"==": [{{"var": "k"}}, "{big}"]}}}}}}}}"#
    );
    let err = Snapshot::parse(&text).unwrap_err();
    assert!(
        matches!(
            err,
            DocumentError::TooLarge {
                limit: 5_242_880,
                ..
            }
        ),
        "{err}"
    );

    // Past the document cap (raised here), the rule string limit still applies per flag.
    let options = CompileOptions::default().limits(Limits {
        max_document_bytes: usize::MAX,
        ..Limits::default()
    });
    let s = Snapshot::parse_with(&text, &options).expect("loads");
    let r = s.resolve("big", 0_i64, &());
    assert_eq!(r.error_code(), Some(ErrorCode::ParseError));
    assert!(
        r.error
            .unwrap()
            .message
            .as_str()
            .contains("over the 1048576-byte limit")
    );
}

#[test]
fn a_rule_that_uses_sample_resolves_with_reason_split() {
    let snapshot = Snapshot::parse(
        r#"{"flags": {"BETA": {"state": "ENABLED", "variants": {"on": true, "off": false},
            "defaultVariant": "off",
            "targeting": {"if": [{"sample": [100, {"var": "targetingKey"}]}, "on", "off"]}},
          "PLAIN": {"state": "ENABLED", "variants": {"on": true, "off": false},
            "defaultVariant": "off", "targeting": {"if": [true, "on"]}}}}"#,
    )
    .expect("valid");
    let ctx = EvaluationContext::new().with_targeting_key("ada");
    let details = snapshot.resolve("BETA", false, &ctx);
    assert!(details.value);
    assert_eq!(details.reason, Reason::Split);
    assert_eq!(
        snapshot.resolve("PLAIN", false, &ctx).reason,
        Reason::TargetingMatch
    );
}

#[test]
fn if_chains_select_variants_directly_with_the_same_answers() {
    let s = snapshot(json!({"flags": {
        "tier": {"state": "ENABLED", "variants": {"gold": "G", "silver": "S", "bronze": "B"},
                 "defaultVariant": "bronze",
                 "targeting": {"if": [
                     {"==": [{"var": "points"}, 3]}, "gold",
                     {"==": [{"var": "points"}, 2]}, {"if": [{"var": "vip"}, "gold", "silver"]},
                     "bronze"]}},
        "open-ended": {"state": "ENABLED", "variants": {"a": "A", "b": "B"}, "defaultVariant": "b",
                       "targeting": {"if": [{"var": "yes"}, "a"]}},
        "no-else": {"state": "ENABLED", "variants": {"a": "A", "b": "B"}, "defaultVariant": "b",
                    "targeting": {"if": [{"var": "p"}, "a", {"var": "q"}, "a"]}},
        "computed": {"state": "ENABLED", "variants": {"a": "A", "b": "B"}, "defaultVariant": "b",
                     "targeting": {"if": [true, {"cat": ["", "a"]}, "b"]}},
        "unknown": {"state": "ENABLED", "variants": {"a": "A"}, "defaultVariant": "a",
                    "targeting": {"if": [false, "a", "zzz"]}}
    }}));
    let ctx = |points: i64, vip: bool| {
        EvaluationContext::new()
            .with_attribute("points", points)
            .with_attribute("vip", vip)
    };
    let tier = |c: &EvaluationContext| {
        let r = s.resolve("tier", "none", c);
        (r.value, r.variant().map(str::to_string), r.reason)
    };
    assert_eq!(
        tier(&ctx(3, false)),
        ("G", Some("gold".into()), Reason::TargetingMatch)
    );
    assert_eq!(
        tier(&ctx(2, true)),
        ("G", Some("gold".into()), Reason::TargetingMatch)
    );
    assert_eq!(
        tier(&ctx(2, false)),
        ("S", Some("silver".into()), Reason::TargetingMatch)
    );
    assert_eq!(
        tier(&ctx(1, false)),
        ("B", Some("bronze".into()), Reason::TargetingMatch)
    );
    // An `if` without an else that does not match is null: the default variant.
    let r = s.resolve("open-ended", "none", &EvaluationContext::new());
    assert_eq!((r.value, r.reason), ("B", Reason::Default));
    let yes = EvaluationContext::new().with_attribute("yes", true);
    assert_eq!(s.resolve("open-ended", "none", &yes).value, "A");
    let q = EvaluationContext::new().with_attribute("q", 1);
    assert_eq!(s.resolve("no-else", "none", &q).value, "A");
    let r = s.resolve("no-else", "none", &EvaluationContext::new());
    assert_eq!((r.value, r.reason), ("B", Reason::Default));
    // A branch that is computed still names its variant.
    let r = s.resolve("computed", "none", &EvaluationContext::new());
    assert_eq!((r.value, r.reason), ("A", Reason::TargetingMatch));
    // A literal naming no variant is still an error.
    let r = s.resolve("unknown", "none", &EvaluationContext::new());
    assert_eq!(r.error_code(), Some(ErrorCode::General));
}

#[test]
fn served_agrees_with_evaluate_and_carries_the_variants_identity() {
    use flagyard_core::{Evaluator, served_identity};
    let snap = doc();
    let staff = EvaluationContext::new().with_attribute("email", "ada@example.com");
    let other = EvaluationContext::new().with_attribute("email", "bob@mail.test");
    let cases = [
        ("static-bool", &other),
        ("staff", &staff),
        ("staff", &other),
        ("disabled", &other),
        ("no-default", &other),
        ("bad-op", &other),
        ("missing", &other),
    ];
    let mut identities = std::collections::HashSet::new();
    for (key, ctx) in cases {
        let evaluation = snap.evaluate(key, ctx);
        let served = Evaluator::served(&snap, key, ctx);
        assert_eq!(served.value, evaluation.value, "{key}");
        assert_eq!(served.variant, evaluation.variant, "{key}");
        assert_eq!(served.reason, evaluation.reason, "{key}");
        assert_eq!(
            served.identity,
            served_identity(key, evaluation.variant.as_deref()),
            "{key}: the identity precomputed with the variants is the public function's"
        );
        identities.insert(served.identity);
    }
    assert_eq!(
        identities.len(),
        cases.len(),
        "each flag and variant has its own identity: {identities:?}"
    );
    assert_ne!(
        served_identity("f", Some("")),
        served_identity("f", None),
        "an empty variant name is not the absence of a variant"
    );
}
