//! The immutable, compiled form of one flag document, and evaluation on it.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::context::{Context, json_kind};
use crate::error::{DocumentError, Problem, pointer_segment};
use crate::logic::eval::{Data, Env, Val};
use crate::logic::{CompileCx, Node, compile_rule, link_variants};
use crate::options::CompileOptions;
use crate::resolution::{
    ErrorCode, ErrorMessage, EvalError, FlagMetadata, MetadataValue, Reason, Resolution,
};
use crate::value::{FlagType, FlagValue, ValueKind};

/// Flag keys are hashed with foldhash (randomly seeded): the flag lookup is on
/// every read, and SipHash cost a measurable share of it (docs/BENCHMARKS.md).
type FlagMap = HashMap<Box<str>, CompiledFlag, foldhash::fast::RandomState>;

static EMPTY_METADATA: FlagMetadata = FlagMetadata::new();

const NOT_FOUND: EvalError = EvalError::fixed(ErrorCode::FlagNotFound, "flag not found");
const UNKNOWN_VARIANT: EvalError = EvalError::fixed(
    ErrorCode::General,
    "targeting returned a variant name that the flag does not define",
);
const NOT_A_VARIANT_NAME: EvalError = EvalError::fixed(
    ErrorCode::General,
    "targeting returned a value that is not a variant name (string or boolean)",
);

/// One compiled flag.
#[derive(Debug)]
pub struct CompiledFlag {
    key: Box<str>,
    enabled: bool,
    variants: Box<[(Box<str>, FlagValue)]>,
    default_variant: Option<usize>,
    targeting: Targeting,
    /// The reason a targeting match reports: SPLIT for rules that use `sample`.
    match_reason: Reason,
    metadata: FlagMetadata,
    kind: Option<ValueKind>,
    /// Set when the flag's definition is invalid: every evaluation answers PARSE_ERROR.
    broken: Option<Arc<str>>,
    /// Hash of everything that decides this flag's answers (its definition, the
    /// set metadata, and the evaluators when it uses `$ref`).
    fingerprint: u64,
}

#[derive(Debug)]
enum Targeting {
    None,
    Rule(Node),
    Invalid(Arc<str>),
}

impl CompiledFlag {
    /// The flag key.
    pub fn key(&self) -> &str {
        &self.key
    }
    /// Whether the flag's state is `ENABLED`.
    pub fn enabled(&self) -> bool {
        self.enabled
    }
    /// The variant values by name, in document order.
    pub fn variants(&self) -> impl Iterator<Item = (&str, &FlagValue)> {
        self.variants.iter().map(|(k, v)| (&**k, v))
    }
    /// The default variant's name, if any.
    pub fn default_variant(&self) -> Option<&str> {
        self.default_variant.map(|i| &*self.variants[i].0)
    }
    /// The variants' common type (`None` for a broken flag).
    pub fn kind(&self) -> Option<ValueKind> {
        self.kind
    }
    /// Whether the flag has a targeting rule.
    pub fn has_targeting(&self) -> bool {
        !matches!(self.targeting, Targeting::None)
    }
    /// The merged metadata.
    pub fn metadata(&self) -> &FlagMetadata {
        &self.metadata
    }
    /// A hash of everything that decides this flag's answers; equal fingerprints
    /// mean the flag did not change between two documents.
    pub fn fingerprint(&self) -> u64 {
        self.fingerprint
    }

    #[inline]
    fn variant(&self, name: &str) -> Option<(&str, &FlagValue)> {
        // A name produced by a linked literal is the variant's own string:
        // found by address, without comparing bytes.
        let by_address = self
            .variants
            .iter()
            .find(|(k, _)| std::ptr::eq(k.as_ptr(), name.as_ptr()) && k.len() == name.len());
        by_address
            .or_else(|| self.variants.iter().find(|(k, _)| &**k == name))
            .map(|(k, v)| (&**k, v))
    }
}

/// An untyped evaluation: the variant's value (or `None` for the code default) and details.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation<'s> {
    /// The served variant's value; `None` means "use the code default".
    pub value: Option<&'s FlagValue>,
    /// The served variant's name.
    pub variant: Option<&'s str>,
    /// Why.
    pub reason: Reason,
    /// The error, if any.
    pub error: Option<EvalError>,
    /// The flag's merged metadata.
    pub metadata: &'s FlagMetadata,
}

/// A compiled flag document: immutable, cheap to share behind an `Arc`, and
/// evaluated without I/O, locks or JSON parsing.
///
/// # Example
/// ```
/// use flagyard_core::{EvaluationContext, Reason, Snapshot};
///
/// let snapshot = Snapshot::parse(r#"{
///   "flags": {
///     "new-checkout": {
///       "state": "ENABLED",
///       "variants": { "on": true, "off": false },
///       "defaultVariant": "off",
///       "targeting": { "if": [{ "ends_with": [{ "var": "email" }, "@example.com"] }, "on"] }
///     }
///   }
/// }"#).unwrap();
///
/// let ctx = EvaluationContext::new().with_attribute("email", "ada@example.com");
/// let details = snapshot.resolve("new-checkout", false, &ctx);
/// assert!(details.value);
/// assert_eq!(details.variant, Some("on"));
/// assert_eq!(details.reason, Reason::TargetingMatch);
/// ```
#[derive(Debug)]
pub struct Snapshot {
    flags: FlagMap,
    problems: Vec<Problem>,
    options: CompileOptions,
}

impl Default for Snapshot {
    fn default() -> Self {
        Snapshot::empty(CompileOptions::default())
    }
}

impl Snapshot {
    /// A snapshot without flags.
    pub fn empty(options: CompileOptions) -> Snapshot {
        Snapshot {
            flags: FlagMap::default(),
            problems: Vec::new(),
            options,
        }
    }

    /// Parses and compiles a document with the default options.
    pub fn parse(text: &str) -> Result<Snapshot, DocumentError> {
        Snapshot::parse_with(text, &CompileOptions::default())
    }

    /// Parses and compiles a document.
    ///
    /// Only a document that is not JSON, is too large, is not an object or has no
    /// `flags` object is an `Err`; problems in single flags are listed by
    /// [`problems`](Self::problems) and only those flags answer `PARSE_ERROR`.
    pub fn parse_with(text: &str, options: &CompileOptions) -> Result<Snapshot, DocumentError> {
        if text.len() > options.limits.max_document_bytes {
            return Err(DocumentError::TooLarge {
                size: text.len(),
                limit: options.limits.max_document_bytes,
            });
        }
        let value: Value = serde_json::from_str(text).map_err(|e| DocumentError::from_json(&e))?;
        let snapshot = Snapshot::from_value(&value, options);
        // Freeing a large parsed document takes milliseconds: do it off the
        // caller's thread (cold starts read the first flag sooner).
        if text.len() > 256 * 1024 {
            let _ = std::thread::Builder::new()
                .name("flagyard-free".into())
                .spawn(move || drop(value));
        }
        snapshot
    }

    /// Compiles an already parsed document.
    pub fn from_value(
        document: &Value,
        options: &CompileOptions,
    ) -> Result<Snapshot, DocumentError> {
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
        let mut add =
            |key: &str, pointer: String, definition: &Value, problems: &mut Vec<Problem>| {
                let flag = compile_flag(
                    key,
                    pointer,
                    definition,
                    evaluators,
                    &set_metadata,
                    options,
                    problems,
                );
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
        Ok(Snapshot {
            flags: compiled,
            problems,
            options: options.clone(),
        })
    }

    /// Problems found while compiling (flags that answer `PARSE_ERROR`, dropped metadata, ...).
    pub fn problems(&self) -> &[Problem] {
        &self.problems
    }

    /// The options this snapshot was compiled with.
    pub fn options(&self) -> &CompileOptions {
        &self.options
    }

    /// Number of flags.
    pub fn len(&self) -> usize {
        self.flags.len()
    }

    /// Whether there are no flags.
    pub fn is_empty(&self) -> bool {
        self.flags.is_empty()
    }

    /// The flag keys, sorted.
    pub fn keys(&self) -> Vec<&str> {
        let mut keys: Vec<&str> = self.flags.keys().map(|k| &**k).collect();
        keys.sort_unstable();
        keys
    }

    /// The keys of flags added, removed or changed from `previous` to `self`, sorted.
    ///
    /// # Example
    /// ```
    /// use flagyard_core::Snapshot;
    ///
    /// let flag = |v: &str| format!(r#"{{"state": "ENABLED", "variants": {{"a": "{v}"}}, "defaultVariant": "a"}}"#);
    /// let old = Snapshot::parse(&format!(r#"{{"flags": {{"x": {}, "y": {}}}}}"#, flag("1"), flag("1"))).unwrap();
    /// let new = Snapshot::parse(&format!(r#"{{"flags": {{"x": {}, "z": {}}}}}"#, flag("2"), flag("1"))).unwrap();
    /// assert_eq!(new.changed_flags(&old), ["x", "y", "z"]);
    /// ```
    pub fn changed_flags(&self, previous: &Snapshot) -> Vec<String> {
        let mut changed: Vec<String> = self
            .flags
            .iter()
            .filter(|(key, flag)| {
                previous
                    .flags
                    .get(*key)
                    .is_none_or(|old| old.fingerprint != flag.fingerprint)
            })
            .map(|(key, _)| key.to_string())
            .chain(
                previous
                    .flags
                    .keys()
                    .filter(|key| !self.flags.contains_key(*key))
                    .map(|key| key.to_string()),
            )
            .collect();
        changed.sort_unstable();
        changed
    }

    /// One compiled flag.
    pub fn flag(&self, key: &str) -> Option<&CompiledFlag> {
        self.flags.get(key)
    }

    /// Evaluates a flag without a requested type.
    #[inline]
    pub fn evaluate<C: Context + ?Sized>(&self, key: &str, ctx: &C) -> Evaluation<'_> {
        let Some(flag) = self.flags.get(key) else {
            return Evaluation {
                value: None,
                variant: None,
                reason: Reason::Error,
                error: Some(NOT_FOUND),
                metadata: &EMPTY_METADATA,
            };
        };
        let error = |error: EvalError| Evaluation {
            value: None,
            variant: None,
            reason: Reason::Error,
            error: Some(error),
            metadata: &flag.metadata,
        };
        if let Some(message) = &flag.broken {
            return error(EvalError {
                code: ErrorCode::ParseError,
                message: ErrorMessage::Shared(Arc::clone(message)),
            });
        }
        if !flag.enabled {
            return Evaluation {
                value: None,
                variant: None,
                reason: Reason::Disabled,
                error: None,
                metadata: &flag.metadata,
            };
        }
        let default = |reason: Reason| match flag.default_variant {
            Some(i) => Evaluation {
                value: Some(&flag.variants[i].1),
                variant: Some(&flag.variants[i].0),
                reason,
                error: None,
                metadata: &flag.metadata,
            },
            None => Evaluation {
                value: None,
                variant: None,
                reason: Reason::Default,
                error: None,
                metadata: &flag.metadata,
            },
        };
        let rule = match &flag.targeting {
            Targeting::None => return default(Reason::Static),
            Targeting::Invalid(message) => {
                return error(EvalError {
                    code: ErrorCode::ParseError,
                    message: ErrorMessage::Shared(Arc::clone(message)),
                });
            }
            Targeting::Rule(rule) => rule,
        };
        let env = Env {
            ctx,
            flag_key: &flag.key,
            variants: &flag.variants,
            fractional: self.options.fractional,
        };
        let result = env.eval(rule, Data::Root);
        let name: &str = match &result {
            Val::Null => return default(Reason::Default),
            Val::Str(s) => s,
            Val::String(s) => s,
            Val::Bool(true) => "true",
            Val::Bool(false) => "false",
            _ => return error(NOT_A_VARIANT_NAME),
        };
        match flag.variant(name) {
            Some((variant, value)) => Evaluation {
                value: Some(value),
                variant: Some(variant),
                reason: flag.match_reason,
                error: None,
                metadata: &flag.metadata,
            },
            None => error(UNKNOWN_VARIANT),
        }
    }

    /// Evaluates a flag as type `T` (`bool`, `i64`, `f64`, `&str`, `&serde_json::Value`)
    /// with a code default. Never fails: problems show in the details.
    pub fn resolve<'s, T, C>(&'s self, key: &str, default: T, ctx: &C) -> Resolution<'s, T>
    where
        T: FlagType<'s>,
        C: Context + ?Sized,
    {
        self.resolve_map(key, default, ctx, |value: T| value)
    }

    /// Like [`resolve`](Self::resolve), converting the variant's value of type `T`
    /// into `U` (the type of the code default).
    #[inline]
    pub fn resolve_map<'s, T, U, C>(
        &'s self,
        key: &str,
        default: U,
        ctx: &C,
        convert: impl FnOnce(T) -> U,
    ) -> Resolution<'s, U>
    where
        T: FlagType<'s>,
        C: Context + ?Sized,
    {
        self.resolve_with(key, default, ctx, |value| {
            T::from_flag_value(value).map(convert)
        })
    }

    /// The general form: `convert` turns the served variant's value into `U`, or
    /// `None` on a type mismatch (then the default is served with `TYPE_MISMATCH`).
    #[inline]
    pub fn resolve_with<'s, U, C>(
        &'s self,
        key: &str,
        default: U,
        ctx: &C,
        convert: impl FnOnce(&'s FlagValue) -> Option<U>,
    ) -> Resolution<'s, U>
    where
        C: Context + ?Sized,
    {
        let evaluation = self.evaluate(key, ctx);
        let Some(value) = evaluation.value else {
            return Resolution {
                value: default,
                variant: None,
                reason: evaluation.reason,
                error: evaluation.error,
                metadata: evaluation.metadata,
            };
        };
        match convert(value) {
            Some(converted) => Resolution {
                value: converted,
                variant: evaluation.variant,
                reason: evaluation.reason,
                error: None,
                metadata: evaluation.metadata,
            },
            None => Resolution {
                value: default,
                variant: None,
                reason: Reason::Error,
                error: Some(type_mismatch(value)),
                metadata: evaluation.metadata,
            },
        }
    }
}

/// The `TYPE_MISMATCH` error for a value of the wrong type.
pub fn type_mismatch(value: &FlagValue) -> EvalError {
    EvalError::fixed(ErrorCode::TypeMismatch, mismatch_message(value))
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

fn mismatch_message(value: &FlagValue) -> &'static str {
    match value {
        FlagValue::Bool(_) => "type mismatch: the flag's value is a boolean",
        FlagValue::Int(_) | FlagValue::Float(_) => "type mismatch: the flag's value is a number",
        FlagValue::String(_) => "type mismatch: the flag's value is a string",
        FlagValue::Object(_) => "type mismatch: the flag's value is an object",
    }
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
                    link_variants(&mut node, &flag.variants);
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
