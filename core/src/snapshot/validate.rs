//! Document validation: a parsed document becomes compiled flags, and what is
//! wrong in single flags becomes [`Problem`]s (those flags answer `PARSE_ERROR`).

use std::sync::Arc;

use serde_json::{Map, Value};

use super::FlagMap;
use super::flag::{CompiledFlag, Targeting};
use crate::context::json_kind;
use crate::error::{DocumentError, Problem, pointer_segment};
use crate::logic::{CompileCx, FlagLink, compile_rule, link_flag};
use crate::options::CompileOptions;
use crate::resolution::{FlagMetadata, MetadataValue, Reason};
use crate::value::FlagValue;

/// Validates and compiles a parsed document: the flags, and the problems of
/// single flags (which then answer `PARSE_ERROR`).
pub(super) fn compile_document(
    document: &Value,
    options: &CompileOptions,
) -> Result<(FlagMap, Vec<Problem>), DocumentError> {
    let Value::Object(root) = document else {
        return Err(DocumentError::NotAnObject {
            what: "flag document",
            found: json_kind(document),
        });
    };
    let flags = match root.get("flags") {
        None => return Err(DocumentError::MissingFlags),
        Some(Value::Object(flags)) => FlagList::Map(flags),
        // flagd.json (the daemon's schema) also allows an array of flags with a `key`.
        Some(Value::Array(flags)) if declares_flagd_schema(root) => FlagList::Array(flags),
        Some(other) => {
            return Err(DocumentError::FlagsNotObject {
                found: json_kind(other),
            });
        }
    };
    let mut problems = Vec::new();
    let evaluators = match root.get("$evaluators") {
        None => None,
        Some(Value::Object(evaluators)) => {
            check_evaluators(evaluators, options, &mut problems);
            Some(evaluators)
        }
        Some(other) => {
            problems.push(Problem {
                flag: None,
                pointer: "/$evaluators".into(),
                message: format!(
                    "must be an object of named rules, found {}",
                    json_kind(other)
                ),
            });
            None
        }
    };
    let set_metadata = match root.get("metadata") {
        None => FlagMetadata::new(),
        Some(value) => read_metadata(value, None, "/metadata", &mut problems),
    };
    let mut compiled = FlagMap::default();
    let mut add = |key: &str, pointer: String, definition: &Value, problems: &mut Vec<Problem>| {
        let mut flag = compile_flag(
            key,
            pointer,
            definition,
            evaluators,
            &set_metadata,
            options,
            problems,
        );
        flag.identities = (flag.variants.iter().map(|(name, _)| Some(&**name)))
            .chain([None])
            .map(|variant| crate::served_identity(key, variant))
            .collect();
        compiled.insert(Box::from(key), flag);
    };
    match flags {
        FlagList::Map(flags) => {
            for (key, definition) in flags {
                add(
                    key,
                    format!("/flags/{}", pointer_segment(key)),
                    definition,
                    &mut problems,
                );
            }
        }
        FlagList::Array(flags) => {
            let mut seen = std::collections::HashSet::new();
            for (i, definition) in flags.iter().enumerate() {
                match definition.get("key") {
                    Some(Value::String(key)) if !key.is_empty() => {
                        if !seen.insert(key.as_str()) {
                            problems.push(Problem {
                                flag: Some(key.clone()),
                                pointer: format!("/flags/{i}/key"),
                                message: format!("duplicate flag key '{key}'; the later definition wins"),
                            });
                        }
                        add(key, format!("/flags/{i}"), definition, &mut problems);
                    }
                    _ => problems.push(Problem {
                        flag: None,
                        pointer: format!("/flags/{i}/key"),
                        message: "a flag in the array form needs a non-empty string \"key\" (flag skipped)".into(),
                    }),
                }
            }
        }
    }
    Ok((compiled, problems))
}

fn fingerprint(
    definition: &Value,
    set_metadata: &FlagMetadata,
    evaluators: Option<&Map<String, Value>>,
) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::hash::DefaultHasher::new();
    let uses_ref = crate::walk::hash_json(definition, &mut hasher);
    format!("{set_metadata:?}").hash(&mut hasher);
    if uses_ref && let Some(evaluators) = evaluators {
        for (name, rule) in evaluators {
            name.hash(&mut hasher);
            crate::walk::hash_json(rule, &mut hasher);
        }
    }
    hasher.finish()
}

enum FlagList<'d> {
    Map(&'d Map<String, Value>),
    Array(&'d [Value]),
}

/// Whether the document declares flagd.json, the daemon's schema, as its `$schema`.
fn declares_flagd_schema(root: &Map<String, Value>) -> bool {
    root.get("$schema")
        .and_then(Value::as_str)
        .is_some_and(|s| s.trim_end_matches(['/', '#']).ends_with("flagd.json"))
}

fn check_evaluators(
    evaluators: &Map<String, Value>,
    options: &CompileOptions,
    problems: &mut Vec<Problem>,
) {
    for (name, rule) in evaluators {
        let mut cx = CompileCx::new(Some(evaluators), &options.limits);
        if let Err(e) = compile_rule(rule, &mut cx) {
            problems.push(Problem {
                flag: None,
                pointer: format!("/$evaluators/{}{}", pointer_segment(name), e.pointer),
                message: e.message,
            });
        }
    }
}

fn read_metadata(
    value: &Value,
    flag: Option<&str>,
    pointer: &str,
    problems: &mut Vec<Problem>,
) -> FlagMetadata {
    let mut out = FlagMetadata::new();
    let Value::Object(map) = value else {
        problems.push(Problem {
            flag: flag.map(str::to_string),
            pointer: pointer.to_string(),
            message: format!("metadata must be an object, found {}", json_kind(value)),
        });
        return out;
    };
    for (k, v) in map {
        let entry = match v {
            Value::Bool(b) => MetadataValue::Bool(*b),
            Value::Number(n) => match n.as_i64() {
                Some(i) => MetadataValue::Int(i),
                None => MetadataValue::Float(n.as_f64().unwrap_or(f64::NAN)),
            },
            Value::String(s) => MetadataValue::String(s.clone()),
            other => {
                problems.push(Problem {
                    flag: flag.map(str::to_string),
                    pointer: format!("{pointer}/{}", pointer_segment(k)),
                    message: format!(
                        "metadata values must be booleans, strings or numbers, found {} (entry ignored)",
                        json_kind(other)
                    ),
                });
                continue;
            }
        };
        out.insert(k.clone(), entry);
    }
    out
}

fn compile_flag(
    key: &str,
    base: String,
    definition: &Value,
    evaluators: Option<&Map<String, Value>>,
    set_metadata: &FlagMetadata,
    options: &CompileOptions,
    problems: &mut Vec<Problem>,
) -> CompiledFlag {
    let mut flag = CompiledFlag {
        key: key.into(),
        enabled: false,
        variants: Box::new([]),
        default_variant: None,
        targeting: Targeting::None,
        match_reason: Reason::TargetingMatch,
        metadata: set_metadata.clone(),
        kind: None,
        broken: None,
        fingerprint: fingerprint(definition, set_metadata, evaluators),
        identities: Box::new([]),
    };
    let mut r = FlagReport {
        key,
        problems,
        broken: None,
    };
    let Value::Object(def) = definition else {
        r.fatal(
            base.clone(),
            format!("a flag must be an object, found {}", json_kind(definition)),
        );
        flag.broken = r.broken.map(Arc::from);
        return flag;
    };

    match def.get("state") {
        Some(Value::String(s)) if s == "ENABLED" => flag.enabled = true,
        Some(Value::String(s)) if s == "DISABLED" => flag.enabled = false,
        Some(other) => r.fatal(
            format!("{base}/state"),
            format!("state must be \"ENABLED\" or \"DISABLED\", found {other}"),
        ),
        None => r.fatal(base.clone(), "missing required \"state\"".into()),
    }

    match def.get("variants") {
        None => r.fatal(base.clone(), "missing required \"variants\"".into()),
        Some(Value::Object(variants)) if variants.is_empty() => r.fatal(
            format!("{base}/variants"),
            "variants must define at least one variant".into(),
        ),
        Some(Value::Object(variants)) => {
            let mut out = Vec::with_capacity(variants.len());
            for (name, value) in variants {
                let pointer = format!("{base}/variants/{}", pointer_segment(name));
                if name.is_empty() {
                    r.fatal(pointer, "variant names must not be empty".into());
                    continue;
                }
                if crate::walk::deeper_than(value, options.limits.max_rule_depth) {
                    r.fatal(
                        pointer,
                        format!(
                            "variant value nested deeper than {} levels",
                            options.limits.max_rule_depth
                        ),
                    );
                    continue;
                }
                match FlagValue::from_json(value) {
                    Some(v) => {
                        match flag.kind {
                            None => flag.kind = Some(v.kind()),
                            Some(kind) if kind != v.kind() => r.fatal(pointer.clone(),
                                format!(
                                    "variant is a {} but other variants are {kind}s; all variants must have one type",
                                    v.kind()
                                )),
                            Some(_) => {}
                        }
                        out.push((Box::from(name.as_str()), v));
                    }
                    None => r.fatal(pointer,
                        format!("variant values must be booleans, strings, numbers or objects, found {}", json_kind(value))),
                }
            }
            flag.variants = out.into_boxed_slice();
        }
        Some(other) => r.fatal(
            format!("{base}/variants"),
            format!("variants must be an object, found {}", json_kind(other)),
        ),
    }

    match def.get("defaultVariant") {
        None | Some(Value::Null) => {}
        Some(Value::String(name)) => match flag.variants.iter().position(|(k, _)| **k == **name) {
            Some(i) => flag.default_variant = Some(i),
            None if flag.variants.is_empty() => {}
            None => r.fatal(
                format!("{base}/defaultVariant"),
                format!("defaultVariant '{name}' is not one of the variants"),
            ),
        },
        Some(other) => r.fatal(
            format!("{base}/defaultVariant"),
            format!(
                "defaultVariant must be a string or null, found {}",
                json_kind(other)
            ),
        ),
    }

    if let Some(metadata) = def.get("metadata") {
        let own = read_metadata(metadata, Some(key), &format!("{base}/metadata"), r.problems);
        flag.metadata.extend(own);
    }

    match def.get("targeting") {
        None | Some(Value::Null) => {}
        Some(Value::Object(rule)) if rule.is_empty() => {}
        Some(rule @ Value::Object(_)) => {
            let mut cx = CompileCx::new(evaluators, &options.limits);
            match compile_rule(rule, &mut cx) {
                Ok(mut node) => {
                    let link = FlagLink {
                        key: &flag.key,
                        variants: &flag.variants,
                        fractional: options.fractional,
                    };
                    link_flag(&mut node, &link);
                    if node.uses_sample() {
                        flag.match_reason = Reason::Split;
                    }
                    flag.targeting = Targeting::Rule(node);
                }
                Err(e) => {
                    let pointer = format!("{base}/targeting{}", e.pointer);
                    let message = format!("invalid targeting at {pointer}: {}", e.message);
                    flag.targeting = Targeting::Invalid(Arc::from(message.as_str()));
                    r.soft(pointer, e.message);
                }
            }
        }
        Some(other) => {
            let message = format!("targeting must be an object, found {}", json_kind(other));
            flag.targeting = Targeting::Invalid(Arc::from(format!(
                "invalid targeting at {base}/targeting: {message}"
            )));
            r.soft(format!("{base}/targeting"), message);
        }
    }

    flag.broken = r.broken.map(Arc::from);
    flag
}

/// Collects one flag's problems; fatal ones make the flag answer PARSE_ERROR.
struct FlagReport<'p> {
    key: &'p str,
    problems: &'p mut Vec<Problem>,
    broken: Option<String>,
}

impl FlagReport<'_> {
    fn fatal(&mut self, pointer: String, message: String) {
        if self.broken.is_none() {
            self.broken = Some(format!("invalid flag definition at {pointer}: {message}"));
        }
        self.soft(pointer, message);
    }

    fn soft(&mut self, pointer: String, message: String) {
        self.problems.push(Problem {
            flag: Some(self.key.to_string()),
            pointer,
            message,
        });
    }
}
