//! Lints: what is probably a mistake in a document flagd would accept. They
//! never refuse a document (validation does that); `flagyard validate`, the
//! admin API's answers and the `/admin` editor show them as warnings.
//!
//! ```
//! let document = serde_json::json!({"flags": {"banner": {
//!     "state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off",
//!     "targetting": {"fractional": [["on", 50], ["of", 50]]}}}});
//! let lints = flagyard_core::lint(&document);
//! assert_eq!(lints.len(), 1);
//! assert!(lints[0].message.contains("did you mean \"targeting\""));
//! ```

use std::collections::HashSet;

use serde_json::{Map, Value};

use crate::Problem;
use crate::error::pointer_segment;

/// The members of a flag definition.
const FLAG_FIELDS: [&str; 5] = [
    "state",
    "variants",
    "defaultVariant",
    "targeting",
    "metadata",
];

/// flagd's `sem_ver` operators.
const SEM_VER_OPERATORS: [&str; 8] = ["=", "!=", ">", "<", ">=", "<=", "~", "^"];

/// Every lint of `document`, flag by flag (sorted by key): an unknown field
/// beside the known ones (`targetting`), a `fractional` bucket or an `if`
/// result naming a variant the flag lacks, a `sem_ver` operator flagd does
/// not know, a bucket that can never be chosen (weight 0, or every weight 0).
/// Rules reached through `$ref` are checked against each flag that uses them.
pub fn lint(document: &Value) -> Vec<Problem> {
    let mut out = Vec::new();
    let evaluators = document.get("$evaluators").and_then(Value::as_object);
    let Some(flags) = document.get("flags").and_then(Value::as_object) else {
        return out;
    };
    for (key, definition) in flags {
        let Some(flag) = definition.as_object() else {
            continue;
        };
        let base = format!("/flags/{}", pointer_segment(key));
        for field in flag.keys() {
            if !FLAG_FIELDS.contains(&field.as_str()) {
                let hint = FLAG_FIELDS
                    .iter()
                    .find(|known| close(known, field))
                    .map(|known| format!(" (did you mean \"{known}\"?)"))
                    .unwrap_or_default();
                out.push(Problem {
                    flag: Some(key.clone()),
                    pointer: format!("{base}/{}", pointer_segment(field)),
                    message: format!(
                        "unknown field \"{field}\"{hint}: flagd ignores it, so it does nothing"
                    ),
                });
            }
        }
        let variants: HashSet<&str> = flag
            .get("variants")
            .and_then(Value::as_object)
            .map(|v| v.keys().map(String::as_str).collect())
            .unwrap_or_default();
        // A boolean flag's `if` may well yield booleans; only names are checked.
        if let Some(rule) = flag.get("targeting") {
            let mut walk = Walk {
                key,
                variants: &variants,
                evaluators,
                seen: HashSet::new(),
                out: &mut out,
            };
            walk.rule(rule, &format!("{base}/targeting"));
        }
    }
    out
}

/// One flag's targeting, walked.
struct Walk<'a> {
    key: &'a str,
    variants: &'a HashSet<&'a str>,
    evaluators: Option<&'a Map<String, Value>>,
    /// `$ref`s followed (a cycle is validation's to refuse).
    seen: HashSet<String>,
    out: &'a mut Vec<Problem>,
}

impl Walk<'_> {
    fn warn(&mut self, pointer: String, message: String) {
        self.out.push(Problem {
            flag: Some(self.key.to_string()),
            pointer,
            message,
        });
    }

    /// A rule result that is a string must name a variant.
    fn result(&mut self, value: &Value, pointer: &str) {
        match value {
            Value::String(name) if !self.variants.contains(name.as_str()) => self.warn(
                pointer.to_string(),
                format!(
                    "\"{name}\" is not a variant of this flag ({}): evaluation answers an error here",
                    self.variant_list()
                ),
            ),
            other => self.rule(other, pointer),
        }
    }

    fn variant_list(&self) -> String {
        let mut names: Vec<&str> = self.variants.iter().copied().collect();
        names.sort_unstable();
        names.join(", ")
    }

    fn rule(&mut self, rule: &Value, pointer: &str) {
        match rule {
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    self.rule(item, &format!("{pointer}/{i}"));
                }
            }
            Value::Object(map) if map.len() == 1 => {
                let Some((op, args)) = map.iter().next() else {
                    return;
                };
                let here = format!("{pointer}/{}", pointer_segment(op));
                match (op.as_str(), args) {
                    ("if", Value::Array(args)) => {
                        for (i, arg) in args.iter().enumerate() {
                            let at = format!("{here}/{i}");
                            // Results: every second argument, and the last.
                            if i % 2 == 1 || i + 1 == args.len() && i > 0 {
                                self.result(arg, &at);
                            } else {
                                self.rule(arg, &at);
                            }
                        }
                    }
                    ("fractional", Value::Array(args)) => self.fractional(args, &here),
                    ("sem_ver", Value::Array(args)) => {
                        if let Some(Value::String(operator)) = args.get(1)
                            && !SEM_VER_OPERATORS.contains(&operator.as_str())
                        {
                            self.warn(
                                format!("{here}/1"),
                                format!(
                                    "\"{operator}\" is not a sem_ver operator (flagd knows {}): the comparison is never true",
                                    SEM_VER_OPERATORS.join(" ")
                                ),
                            );
                        }
                        self.rule(&Value::Array(args.clone()), &here);
                    }
                    ("$ref", Value::String(name)) => {
                        if let Some(body) = self.evaluators.and_then(|e| e.get(name))
                            && self.seen.insert(name.clone())
                        {
                            let at = format!("/$evaluators/{}", pointer_segment(name));
                            self.result(body, &at);
                        }
                    }
                    (_, args) => self.rule(args, &here),
                }
            }
            _ => {}
        }
    }

    fn fractional(&mut self, args: &[Value], pointer: &str) {
        // An optional first argument is the bucketing expression.
        let skip = usize::from(args.first().is_some_and(|a| !a.is_array()));
        let mut weights = Vec::new();
        for (i, bucket) in args.iter().enumerate().skip(skip) {
            let at = format!("{pointer}/{i}");
            let Some(bucket) = bucket.as_array() else {
                continue;
            };
            if let Some(variant) = bucket.first() {
                self.result(variant, &format!("{at}/0"));
            }
            let weight = match bucket.get(1) {
                None => Some(1.0),
                Some(w) => w.as_f64(),
            };
            if weight == Some(0.0) {
                self.warn(
                    format!("{at}/1"),
                    "weight 0: this bucket is never chosen".into(),
                );
            }
            weights.push(weight);
        }
        if !weights.is_empty() && weights.iter().all(|w| *w == Some(0.0)) {
            self.warn(
                pointer.to_string(),
                "every weight is 0: no bucket can be chosen".into(),
            );
        }
    }
}

/// Whether `typed` is probably a misspelling of `known`: the same letters
/// but one insertion, deletion, substitution or case difference.
fn close(known: &str, typed: &str) -> bool {
    if known.eq_ignore_ascii_case(typed) {
        return true;
    }
    let (a, b): (Vec<char>, Vec<char>) = (known.chars().collect(), typed.chars().collect());
    // Levenshtein distance ≤ 1, in one pass.
    let (short, long) = if a.len() <= b.len() {
        (&a, &b)
    } else {
        (&b, &a)
    };
    if long.len() - short.len() > 1 {
        return false;
    }
    let mut edits = 0;
    let (mut i, mut j) = (0, 0);
    while i < short.len() && j < long.len() {
        if short[i] == long[j] {
            i += 1;
            j += 1;
            continue;
        }
        edits += 1;
        if edits > 1 {
            return false;
        }
        if short.len() == long.len() {
            i += 1;
        }
        j += 1;
    }
    edits + (long.len() - j) + (short.len() - i) <= 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn reasons(document: &Value) -> Vec<(String, String)> {
        lint(document)
            .into_iter()
            .map(|p| (p.pointer, p.message))
            .collect()
    }

    #[test]
    fn each_lint_names_its_place() {
        let document = json!({
            "$evaluators": {"shared": {"if": [true, "gone", "on"]}},
            "flags": {
                "a": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off",
                      "targetting": {}, "targeting": {"fractional": [["on", 0], ["of", 50]]}},
                "b": {"state": "ENABLED", "variants": {"x": "x"}, "defaultVariant": "x",
                      "targeting": {"if": [{"sem_ver": [{"var": "v"}, "=>", "1.0.0"]}, "x", "y"]}},
                "c": {"state": "ENABLED", "variants": {"on": true}, "defaultVariant": "on",
                      "targeting": {"fractional": [{"var": "id"}, ["on", 0]]}},
                "d": {"state": "ENABLED", "variants": {"on": true}, "defaultVariant": "on",
                      "targeting": {"$ref": "shared"}},
                "fine": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "on",
                         "targeting": {"if": [{"in": ["@x", {"var": "email"}]}, "on", "off"]}}
            }
        });
        let got = reasons(&document);
        let at = |pointer: &str| {
            got.iter()
                .filter(|(p, _)| p == pointer)
                .map(|(_, m)| m.as_str())
                .collect::<Vec<_>>()
        };
        assert!(at("/flags/a/targetting")[0].contains("did you mean \"targeting\""));
        assert!(at("/flags/a/targeting/fractional/0/1")[0].contains("weight 0"));
        assert!(at("/flags/a/targeting/fractional/1/0")[0].contains("\"of\" is not a variant"));
        assert!(
            at("/flags/b/targeting/if/0/sem_ver/1")[0].contains("\"=>\" is not a sem_ver operator")
        );
        assert!(at("/flags/b/targeting/if/2")[0].contains("\"y\" is not a variant"));
        assert!(at("/flags/c/targeting/fractional")[0].contains("every weight is 0"));
        assert!(at("/$evaluators/shared/if/1")[0].contains("\"gone\" is not a variant"));
        assert!(
            got.iter().all(|(p, _)| !p.starts_with("/flags/fine")),
            "{got:?}"
        );
        assert_eq!(got.len(), 8, "{got:?}");
    }

    #[test]
    fn close_spellings() {
        assert!(close("targeting", "targetting"));
        assert!(close("state", "State"));
        assert!(close("variants", "variant"));
        assert!(!close("metadata", "meta"));
    }
}
