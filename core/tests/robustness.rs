//! Property-driven robustness (issue 12, item 21, first part): arbitrary text
//! through the document parser and rule compiler, and generated rules with
//! generated contexts through evaluation, must never panic, and every answer
//! is well-formed. Bounded (a few hundred cases each) so CI runs them in
//! seconds; `PROPTEST_CASES=100000` runs longer. Not coverage-guided.

use flagyard_core::{CompileOptions, EvaluationContext, FractionalVersion, Reason, Snapshot};
use proptest::prelude::*;
use serde_json::{Value, json};

/// Any JSON value, nested a few levels.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        (-1e22f64..1e22).prop_map(|n| json!(n)),
        "[a-z0-9 .@$_-]{0,8}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map("[a-z]{1,3}", inner, 0..3)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A JsonLogic rule over the operators Flagyard knows, with any arguments.
fn rule() -> impl Strategy<Value = Value> {
    let ops = prop::sample::select(vec![
        "==",
        "!=",
        "===",
        "!==",
        "<",
        "<=",
        ">",
        ">=",
        "and",
        "or",
        "!",
        "!!",
        "if",
        "in",
        "cat",
        "substr",
        "+",
        "-",
        "*",
        "/",
        "%",
        "min",
        "max",
        "map",
        "filter",
        "reduce",
        "all",
        "none",
        "some",
        "merge",
        "missing",
        "missing_some",
        "var",
        "starts_with",
        "ends_with",
        "sem_ver",
        "fractional",
    ]);
    let leaf = prop_oneof![
        json_value(),
        "[a-z.]{0,6}".prop_map(|path| json!({"var": path})),
    ];
    leaf.prop_recursive(4, 48, 4, move |inner| {
        (ops.clone(), proptest::collection::vec(inner, 0..4))
            .prop_map(|(op, args)| json!({ op: args }))
    })
}

fn context() -> impl Strategy<Value = EvaluationContext> {
    (
        proptest::option::of("[a-z0-9]{0,6}"),
        proptest::collection::btree_map("[a-z]{1,3}", json_value(), 0..4),
    )
        .prop_map(|(key, attributes)| {
            let mut ctx = EvaluationContext::new();
            if let Some(key) = key {
                ctx = ctx.with_targeting_key(key);
            }
            for (name, value) in attributes {
                ctx = ctx.with_attribute(name, value);
            }
            ctx
        })
}

proptest! {
    #![proptest_config(ProptestConfig {
        // 300 in CI; `PROPTEST_CASES=N` for a longer run.
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(300),
        ..ProptestConfig::default()
    })]

    /// Any text: a document, or an error saying why — never a panic.
    #[test]
    fn the_parser_takes_any_text(text in "\\PC{0,200}") {
        let _ = Snapshot::parse(&text);
    }

    /// Any JSON as a flag definition or a document.
    #[test]
    fn the_compiler_takes_any_json(document in json_value(), flag in json_value()) {
        let _ = Snapshot::from_value(&document, &CompileOptions::default());
        let wrapped = json!({"flags": {"f": flag}});
        let _ = Snapshot::from_value(&wrapped, &CompileOptions::default());
    }

    /// Generated rules with generated contexts: evaluation answers, with an
    /// error exactly when the reason is ERROR, under both fractional hashings.
    #[test]
    fn evaluation_takes_any_rule_and_context(rule in rule(), ctx in context(), v3 in any::<bool>()) {
        let version = if v3 { FractionalVersion::V3 } else { FractionalVersion::V2 };
        let document = json!({"flags": {"f": {"state": "ENABLED", "defaultVariant": "a",
            "variants": {"a": "A", "b": "B", "true": "T", "false": "F", "0": "zero", "1": "one"},
            "targeting": rule}}});
        let snapshot = Snapshot::from_value(&document, &CompileOptions::default().fractional(version))
            .expect("a document with one flag always loads (a bad rule breaks only the flag)");
        let answer = snapshot.evaluate("f", &ctx);
        prop_assert_eq!(answer.reason == Reason::Error, answer.error.is_some());
        prop_assert_eq!(answer.value.is_some(), answer.variant().is_some());
        // The value-only form agrees.
        prop_assert_eq!(snapshot.value("f", &ctx), answer.value);
    }
}
