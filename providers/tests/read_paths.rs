//! The two forms of the read path give the same values: the value-only form
//! (no sink: no details built) and the details form (with a sink, and every
//! `*_details` getter).

use flagyard::core::{EvaluationContext, FractionalVersion};
use flagyard::{FlagyardProvider, MemorySink};
use serde_json::json;

const DOCUMENT: &str = r#"{"flags": {
  "on": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "on"},
  "off-state": {"state": "DISABLED", "variants": {"on": true}, "defaultVariant": "on"},
  "no-default": {"state": "ENABLED", "variants": {"a": "x"}, "defaultVariant": null,
     "targeting": {"if": [{"==": [{"var": "tier"}, "gold"]}, "a", null]}},
  "email": {"state": "ENABLED", "variants": {"yes": "matched", "no": "other"}, "defaultVariant": "no",
     "targeting": {"if": [{"ends_with": [{"var": "email"}, "@example.com"]}, "yes", "no"]}},
  "computed": {"state": "ENABLED", "variants": {"gold": 3, "basic": 1}, "defaultVariant": "basic",
     "targeting": {"var": "tier"}},
  "unknown-variant": {"state": "ENABLED", "variants": {"a": 1}, "defaultVariant": "a",
     "targeting": {"cat": ["b", "c"]}},
  "split": {"state": "ENABLED", "variants": {"red": "red", "blue": "blue", "green": "green"}, "defaultVariant": "red",
     "targeting": {"fractional": [["red", 30], ["blue", 30], ["green", 40]]}},
  "seeded": {"state": "ENABLED", "variants": {"red": "red", "blue": "blue"}, "defaultVariant": "red",
     "targeting": {"fractional": [{"var": "email"}, ["red", 50], ["blue", 50]]}},
  "broken": {"state": "ENABLED", "variants": {"a": 1}, "defaultVariant": "a",
     "targeting": {"nope": [1]}}
}}"#;

fn providers(version: FractionalVersion) -> (FlagyardProvider, FlagyardProvider) {
    let build = |sink: bool| {
        let builder = FlagyardProvider::builder()
            .bootstrap_document(DOCUMENT)
            .offline(true)
            .fractional(version);
        if sink {
            builder.sink(MemorySink::new()).build()
        } else {
            builder.build()
        }
        .expect("provider builds")
    };
    (build(false), build(true))
}

fn contexts() -> Vec<EvaluationContext> {
    let mut out = vec![EvaluationContext::new()];
    for i in 0..300 {
        let domain = if i % 3 == 0 {
            "example.com"
        } else {
            "mail.test"
        };
        let tier = ["gold", "basic", "silver"][i % 3];
        out.push(
            EvaluationContext::new()
                .with_targeting_key(format!("user-{i}"))
                .with_attribute("email", format!("u{i}@{domain}"))
                .with_attribute("tier", tier),
        );
    }
    out
}

#[test]
fn the_value_only_path_serves_what_the_details_path_serves() {
    for version in [FractionalVersion::V2, FractionalVersion::V3] {
        let (plain, recording) = providers(version);
        let keys = [
            "on",
            "off-state",
            "no-default",
            "email",
            "computed",
            "unknown-variant",
            "split",
            "seeded",
            "broken",
            "missing",
        ];
        let mut served = std::collections::BTreeSet::new();
        for ctx in contexts() {
            for key in keys {
                let details = plain.get_string_details(key, "DEFAULT", &ctx).value;
                assert_eq!(plain.get_string(key, "DEFAULT", &ctx), details, "{key}");
                assert_eq!(recording.get_string(key, "DEFAULT", &ctx), details, "{key}");
                plain.with_str(key, "DEFAULT", &ctx, |s| assert_eq!(s, details, "{key}"));
                assert_eq!(
                    plain.get_i64(key, -1, &ctx),
                    recording.get_i64_details(key, -1, &ctx).value,
                    "{key}"
                );
                assert_eq!(
                    plain.get_bool(key, false, &ctx),
                    recording.get_bool(key, false, &ctx),
                    "{key}"
                );
                served.insert(format!("{key}={details}"));
            }
        }
        // The rules really split: both paths were compared on several answers.
        for expected in [
            "split=red",
            "split=blue",
            "split=green",
            "seeded=blue",
            "email=matched",
        ] {
            assert!(
                served.contains(expected),
                "{expected} never served: {served:?}"
            );
        }
    }
}

#[test]
fn overrides_win_on_both_paths() {
    let (plain, recording) = providers(FractionalVersion::V3);
    for provider in [&plain, &recording] {
        provider.set_override("split", "forced");
        provider.set_override("on", json!(7));
        assert_eq!(provider.get_string("split", "d", &()), "forced");
        assert_eq!(
            provider.get_string_details("split", "d", &()).value,
            "forced"
        );
        // A type mismatch serves the code default on both paths.
        assert!(!provider.get_bool("on", false, &()));
        assert_eq!(provider.get_i64("on", 0, &()), 7);
        provider.clear_all_overrides();
        assert_ne!(provider.get_string("split", "d", &()), "forced");
    }
}
