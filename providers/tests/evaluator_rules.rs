//! The evaluator rules the published flagd cores agree on (issue 13), through
//! the provider's sync path under both `fractional` generations. The same
//! document (`examples/evaluator-rules.json`) is checked through `flagyard eval` (contrib/cli/tests/cli.rs) and
//! OFREP (contrib/server/tests/server.rs).

use flagyard::FlagyardProvider;
use flagyard::core::{ErrorCode, EvaluationContext, FractionalVersion, Reason};
use serde_json::json;

/// Rules 1–3 and the ordering of arrays against strings, one flag each
/// (`examples/evaluator-rules.json`).
fn rules_document() -> String {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/evaluator-rules.json");
    std::fs::read_to_string(path).expect("examples/evaluator-rules.json")
}

fn provider(version: FractionalVersion) -> FlagyardProvider {
    FlagyardProvider::builder()
        .bootstrap_document(rules_document())
        .offline(true)
        .fractional(version)
        .build()
        .expect("provider builds")
}

#[test]
fn a_number_names_the_variant_by_its_javascript_text() {
    for version in [FractionalVersion::V2, FractionalVersion::V3] {
        let p = provider(version);
        for (age, variant, value) in [
            (json!(45), "45", "forty-five"),
            (json!(1.5), "1.5", "one and a half"),
            (json!(2.0), "2", "two"),
            (json!(1e21), "1e+21", "huge"),
        ] {
            let ctx = EvaluationContext::new().with_attribute("age", age.clone());
            let d = p.get_string_details("by-number", "code", &ctx);
            assert_eq!(
                (d.value.as_str(), d.variant(), d.reason),
                (value, Some(variant), Reason::TargetingMatch),
                "age {age}"
            );
        }
        // A number that names no variant is an error, as a string would be.
        let ctx = EvaluationContext::new().with_attribute("age", 7);
        let d = p.get_string_details("by-number", "code", &ctx);
        assert_eq!(
            (d.value.as_str(), d.error_code()),
            ("code", Some(ErrorCode::General))
        );
    }
}

#[test]
fn an_empty_targeting_key_is_a_missing_one_for_the_shorthand() {
    for version in [FractionalVersion::V2, FractionalVersion::V3] {
        let p = provider(version);
        for ctx in [
            EvaluationContext::new().with_targeting_key(""),
            EvaluationContext::new(),
        ] {
            let d = p.get_string_details("shorthand", "code", &ctx);
            assert_eq!(
                (d.value.as_str(), d.variant(), d.reason),
                ("D", Some("d"), Reason::Default),
                "{version:?} {ctx:?}"
            );
        }
        let ctx = EvaluationContext::new().with_targeting_key("ada");
        let d = p.get_string_details("shorthand", "code", &ctx);
        assert_eq!((d.variant(), d.reason), (Some("a"), Reason::TargetingMatch));
    }
}

#[test]
fn null_equals_a_number_or_boolean_as_zero_and_arrays_compare_as_text() {
    let p = provider(FractionalVersion::V2);
    let ctx = EvaluationContext::new();
    assert_eq!(p.get_string("null-equals-zero", "code", &ctx), "y");
    let one = EvaluationContext::new().with_attribute("x", 1);
    assert_eq!(p.get_string("null-equals-zero", "code", &one), "n");
    assert_eq!(p.get_string("false-is-null", "code", &ctx), "n");
    assert_eq!(p.get_string("array-as-text", "code", &ctx), "y");
}
