//! Pancake state → a flagd document with one boolean flag per switch, flag and sample.

use std::collections::BTreeMap;

use flagyard_storage::pancake::{Kind, PancakeState};
use serde_json::{Map, Value, json};

/// How the state is turned into flags.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    /// Groups in the order overrides are checked, with the context attribute
    /// each keys on.
    pub groups: Vec<(String, String)>,
    /// Declared names (upper-cased) and their defaults (0/1, or a ratio).
    pub declared: BTreeMap<(Kind, String), f64>,
    /// Samples hash on the targeting key instead of drawing at random.
    pub sticky_samples: bool,
    /// Flag keys are the names lower-cased.
    pub lowercase_keys: bool,
}

/// The document, and the names that collided (a switch wins over a flag, a
/// flag over a sample).
pub(crate) fn to_document(state: &PancakeState, layout: &Layout) -> (String, Vec<String>) {
    let mut flags = Map::new();
    let mut collisions = Vec::new();
    let mut add = |kind: Kind, name: &str, definition: Value| {
        let key = if layout.lowercase_keys {
            name.to_lowercase()
        } else {
            name.to_string()
        };
        if flags.contains_key(&key) {
            collisions.push(format!("{kind} {name}"));
        } else {
            flags.insert(key, definition);
        }
    };
    let declared = |kind: Kind| {
        layout
            .declared
            .iter()
            .filter(move |((k, _), _)| *k == kind)
            .map(|((_, name), default)| (name.as_str(), *default))
    };

    let mut switches: BTreeMap<&str, bool> = declared(Kind::Switch)
        .map(|(name, default)| (name, default != 0.0))
        .collect();
    switches.extend(state.switches.iter().map(|(n, on)| (n.as_str(), *on)));
    for (name, on) in switches {
        add(
            Kind::Switch,
            name,
            boolean(on, None, json!({"pancake": "switch"})),
        );
    }

    let mut flag_names: BTreeMap<&str, bool> = declared(Kind::Flag)
        .map(|(name, default)| (name, default != 0.0))
        .collect();
    for (name, flag) in &state.flags {
        let default = flag_names.get(name.as_str()).copied().unwrap_or(false);
        flag_names.insert(name, flag.active.unwrap_or(default));
    }
    for (name, global) in flag_names {
        let mut branches = Vec::new();
        if let Some(flag) = state.flags.get(name) {
            for (group, attribute) in &layout.groups {
                let Some(ids) = flag.overrides.get(group) else {
                    continue;
                };
                for (variant, on) in [("on", true), ("off", false)] {
                    let listed: Vec<&str> = ids
                        .iter()
                        .filter(|(_, v)| **v == on)
                        .map(|(id, _)| id.as_str())
                        .collect();
                    if !listed.is_empty() {
                        branches.push(json!({"in": [{"var": attribute}, listed]}));
                        branches.push(json!(variant));
                    }
                }
            }
        }
        let targeting = (!branches.is_empty()).then(|| json!({ "if": branches }));
        add(
            Kind::Flag,
            name,
            boolean(global, targeting, json!({"pancake": "flag"})),
        );
    }

    let mut samples: BTreeMap<&str, f64> = declared(Kind::Sample).collect();
    samples.extend(state.samples.iter().map(|(n, r)| (n.as_str(), *r)));
    for (name, ratio) in samples {
        let sample = if layout.sticky_samples {
            json!({"sample": [ratio, {"var": "targetingKey"}]})
        } else {
            json!({"sample": [ratio]})
        };
        add(
            Kind::Sample,
            name,
            boolean(
                false,
                Some(json!({"if": [sample, "on", "off"]})),
                json!({"pancake": "sample", "ratio": ratio}),
            ),
        );
    }
    (json!({ "flags": flags }).to_string(), collisions)
}

fn boolean(default: bool, targeting: Option<Value>, metadata: Value) -> Value {
    let mut flag = json!({
        "state": "ENABLED",
        "variants": {"on": true, "off": false},
        "defaultVariant": if default { "on" } else { "off" },
        "metadata": metadata,
    });
    if let (Some(targeting), Some(object)) = (targeting, flag.as_object_mut()) {
        object.insert("targeting".into(), targeting);
    }
    flag
}

#[cfg(test)]
mod tests {
    use super::*;
    use flagyard_core::{EvaluationContext, Reason, Snapshot};
    use flagyard_storage::pancake::FlagState;

    fn layout() -> Layout {
        Layout {
            groups: vec![
                ("user".into(), "targetingKey".into()),
                ("team".into(), "team".into()),
            ],
            declared: BTreeMap::from([
                ((Kind::Switch, "DECLARED_ON".into()), 1.0),
                ((Kind::Flag, "BETA".into()), 1.0),
            ]),
            sticky_samples: true,
            lowercase_keys: false,
        }
    }

    #[test]
    fn the_first_group_with_an_override_wins_and_defaults_fill_in() {
        let mut state = PancakeState::default();
        state.switches.insert("NEW_UI".into(), false);
        state.switches.insert("DECLARED_ON".into(), false);
        let mut beta = FlagState::default();
        beta.overrides
            .insert("user".into(), BTreeMap::from([("ada".into(), false)]));
        beta.overrides.insert(
            "team".into(),
            BTreeMap::from([("red".into(), true), ("blue".into(), false)]),
        );
        state.flags.insert("BETA".into(), beta);
        state.samples.insert("ALL".into(), 100.0);
        state.samples.insert("BETA".into(), 1.0);
        let (text, collisions) = to_document(&state, &layout());
        assert_eq!(collisions, ["sample BETA"]);
        let snapshot = Snapshot::parse(&text).expect("valid document");
        assert!(snapshot.problems().is_empty(), "{:?}", snapshot.problems());
        let check = |key: &str, ctx: &EvaluationContext| {
            let d = snapshot.resolve(key, false, ctx);
            (d.value, d.reason)
        };
        let none = EvaluationContext::new();
        assert_eq!(check("NEW_UI", &none), (false, Reason::Static));
        // Stored values win over declared defaults.
        assert_eq!(check("DECLARED_ON", &none), (false, Reason::Static));
        // BETA's global value is its declared default (nothing stored).
        assert_eq!(check("BETA", &none), (true, Reason::Default));
        let ada_red = EvaluationContext::new()
            .with_targeting_key("ada")
            .with_attribute("team", "red");
        assert_eq!(check("BETA", &ada_red), (false, Reason::TargetingMatch));
        let bob_blue = EvaluationContext::new()
            .with_targeting_key("bob")
            .with_attribute("team", "blue");
        assert_eq!(check("BETA", &bob_blue), (false, Reason::TargetingMatch));
        let bob_red = EvaluationContext::new()
            .with_targeting_key("bob")
            .with_attribute("team", "red");
        assert_eq!(check("BETA", &bob_red), (true, Reason::TargetingMatch));
        assert_eq!(check("ALL", &bob_red), (true, Reason::Split));
    }
}
