//! Fractional bucketing: splits follow their weights, and a key always lands in
//! the same bucket, for both hashing profiles.

use flagyard_core::{CompileOptions, EvaluationContext, FractionalVersion, Snapshot};
use proptest::prelude::*;
use serde_json::json;

fn split_snapshot(version: FractionalVersion, weights: &[(String, u32)]) -> Snapshot {
    let variants: serde_json::Map<String, serde_json::Value> =
        weights.iter().map(|(n, _)| (n.clone(), json!(n))).collect();
    let buckets: Vec<serde_json::Value> = weights.iter().map(|(n, w)| json!([n, w])).collect();
    let document = json!({"flags": {"split": {
        "state": "ENABLED", "variants": variants, "defaultVariant": weights[0].0,
        "targeting": {"fractional": buckets}}}});
    Snapshot::from_value(&document, &CompileOptions::default().fractional(version)).expect("loads")
}

fn check_split(version: FractionalVersion, weights: &[(&str, u32)]) {
    let weights: Vec<(String, u32)> = weights.iter().map(|(n, w)| (n.to_string(), *w)).collect();
    let snapshot = split_snapshot(version, &weights);
    let total_weight: u32 = weights.iter().map(|(_, w)| w).sum();
    let keys = 100_000;
    let mut counts = std::collections::HashMap::new();
    for i in 0..keys {
        let ctx = EvaluationContext::new().with_targeting_key(format!("user-{i}"));
        let r = snapshot.resolve("split", "", &ctx);
        *counts.entry(r.value.to_string()).or_insert(0usize) += 1;
    }
    for (name, weight) in &weights {
        let want = f64::from(*weight) / f64::from(total_weight) * 100.0;
        let got = *counts.get(name).unwrap_or(&0) as f64 / keys as f64 * 100.0;
        assert!(
            (got - want).abs() <= 1.0,
            "{version:?}: variant {name} got {got:.2}% of {keys} keys, weight says {want:.2}%"
        );
    }
}

#[test]
fn splits_follow_weights_v2() {
    check_split(FractionalVersion::V2, &[("a", 50), ("b", 50)]);
    check_split(FractionalVersion::V2, &[("a", 10), ("b", 20), ("c", 70)]);
    check_split(FractionalVersion::V2, &[("a", 1), ("b", 3)]);
}

#[test]
fn splits_follow_weights_v3() {
    check_split(FractionalVersion::V3, &[("a", 50), ("b", 50)]);
    check_split(FractionalVersion::V3, &[("a", 10), ("b", 20), ("c", 70)]);
    check_split(FractionalVersion::V3, &[("a", 1), ("b", 3)]);
}

proptest! {
    #[test]
    fn the_same_key_always_lands_in_the_same_bucket(
        key in "[a-zA-Z0-9@._-]{0,40}",
        weights in proptest::collection::vec(1u32..1000, 1..6),
        v3 in any::<bool>(),
    ) {
        let version = if v3 { FractionalVersion::V3 } else { FractionalVersion::V2 };
        let named: Vec<(String, u32)> = weights.iter().enumerate().map(|(i, w)| (format!("v{i}"), *w)).collect();
        let first = split_snapshot(version, &named);
        let second = split_snapshot(version, &named);
        let ctx = EvaluationContext::new().with_targeting_key(key.clone());
        let a = first.resolve("split", "", &ctx).value;
        prop_assert!(!a.is_empty());
        for _ in 0..3 {
            prop_assert_eq!(first.resolve("split", "", &ctx).value, a);
        }
        // A fresh compile of the same document agrees.
        prop_assert_eq!(second.resolve("split", "", &ctx).value, a);
    }
}
