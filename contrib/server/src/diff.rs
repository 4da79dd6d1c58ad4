//! What a change did to a document, as history records it: the flags, the
//! shared `$evaluators` and the other top-level members it touched, each
//! with its value before and after (`null`: absent). A diff also runs
//! backwards ([`revert`]), which is how an earlier version is rebuilt where
//! the store keeps no old bodies (Redis).

use serde_json::{Map, Value, json};

/// The parts of a document a diff names.
const FLAGS: &str = "flags";
const EVALUATORS: &str = "$evaluators";

/// What changed from `before` to `after`: `[{"flag"|"evaluator"|"field": name,
/// "before": …, "after": …}]`, flags first, each group sorted by name.
pub(crate) fn diff(before: &Value, after: &Value) -> Vec<Value> {
    let mut out = Vec::new();
    for (group, kind) in [(FLAGS, "flag"), (EVALUATORS, "evaluator")] {
        let (old, new) = (members(before, group), members(after, group));
        let mut names: Vec<&String> = old.keys().chain(new.keys()).collect();
        names.sort();
        names.dedup();
        for name in names {
            let (b, a) = (old.get(name), new.get(name));
            if b != a {
                out.push(json!({kind: name, "before": b, "after": a}));
            }
        }
    }
    let empty = Map::new();
    let (old, new) = (
        before.as_object().unwrap_or(&empty),
        after.as_object().unwrap_or(&empty),
    );
    let mut fields: Vec<&String> = old
        .keys()
        .chain(new.keys())
        .filter(|k| *k != FLAGS && *k != EVALUATORS)
        .collect();
    fields.sort();
    fields.dedup();
    for field in fields {
        let (b, a) = (old.get(field), new.get(field));
        if b != a {
            out.push(json!({"field": field, "before": b, "after": a}));
        }
    }
    out
}

fn members<'a>(document: &'a Value, group: &str) -> &'a Map<String, Value> {
    static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
    document
        .get(group)
        .and_then(Value::as_object)
        .unwrap_or_else(|| EMPTY.get_or_init(Map::new))
}

/// Undoes `diff` (as [`diff`] wrote it) on `document`: every part it names
/// gets its value from before the change back. `false` when `diff` is not
/// such a list (an entry recorded without one).
pub(crate) fn revert(document: &mut Value, diff: &Value) -> bool {
    let Some(changes) = diff.as_array() else {
        return false;
    };
    let Some(root) = document.as_object_mut() else {
        return false;
    };
    for change in changes {
        let before = change.get("before").filter(|v| !v.is_null()).cloned();
        let (target, name) = if let Some(flag) = change.get("flag").and_then(Value::as_str) {
            (Some(FLAGS), flag)
        } else if let Some(name) = change.get("evaluator").and_then(Value::as_str) {
            (Some(EVALUATORS), name)
        } else if let Some(field) = change.get("field").and_then(Value::as_str) {
            (None, field)
        } else {
            return false;
        };
        let map = match target {
            Some(group) => {
                let entry = root
                    .entry(group.to_string())
                    .or_insert_with(|| Value::Object(Map::new()));
                if !entry.is_object() {
                    *entry = Value::Object(Map::new());
                }
                match entry.as_object_mut() {
                    Some(map) => map,
                    None => return false,
                }
            }
            None => &mut *root,
        };
        match before {
            Some(value) => {
                map.insert(name.to_string(), value);
            }
            None => {
                map.remove(name);
            }
        }
    }
    // A `$evaluators` left empty by the revert was absent before.
    if root
        .get(EVALUATORS)
        .and_then(Value::as_object)
        .is_some_and(Map::is_empty)
    {
        root.remove(EVALUATORS);
    }
    true
}

/// Whether `diff` touches the flag `key`.
pub(crate) fn touches_flag(diff: &Value, key: &str) -> bool {
    diff.as_array().is_some_and(|changes| {
        changes
            .iter()
            .any(|c| c.get("flag").and_then(Value::as_str) == Some(key))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_diff_names_what_changed_and_reverts_to_before() {
        let before = json!({"flags": {"a": {"state": "ENABLED"}, "b": {"state": "ENABLED"}},
                            "metadata": {"team": "x"}});
        let after = json!({"flags": {"a": {"state": "DISABLED"}, "c": {"state": "ENABLED"}},
                           "$evaluators": {"beta": {"in": [1, [1]]}}});
        let d = Value::Array(diff(&before, &after));
        assert_eq!(
            d,
            json!([
                {"flag": "a", "before": {"state": "ENABLED"}, "after": {"state": "DISABLED"}},
                {"flag": "b", "before": {"state": "ENABLED"}, "after": null},
                {"flag": "c", "before": null, "after": {"state": "ENABLED"}},
                {"evaluator": "beta", "before": null, "after": {"in": [1, [1]]}},
                {"field": "metadata", "before": {"team": "x"}, "after": null},
            ])
        );
        assert!(touches_flag(&d, "b") && !touches_flag(&d, "beta"));
        let mut back = after.clone();
        assert!(revert(&mut back, &d));
        assert_eq!(back, before);
        assert!(diff(&before, &before).is_empty());
        assert!(!revert(&mut back, &json!("not a diff")));
    }
}
