//! The immutable, compiled form of one flag document ([`Snapshot`]) and
//! evaluation on it. Compiling and validating a document is in `validate.rs`,
//! one compiled flag in `flag.rs`.

mod flag;
mod validate;

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;

use crate::context::Context;
use crate::error::{DocumentError, Problem};
use crate::logic::eval::{Data, Env, Selected, StackText, Val, write_number};
use crate::options::CompileOptions;
use crate::resolution::{
    ErrorCode, ErrorMessage, EvalError, Evaluation, FlagMetadata, Reason, Resolution, Served,
};
use crate::value::{FlagType, FlagValue};

pub use flag::CompiledFlag;
use flag::Targeting;

/// Flag keys are hashed with foldhash (randomly seeded): the flag lookup is on
/// every read, and SipHash cost a measurable share of it (docs/BENCHMARKS.md).
type FlagMap = HashMap<Box<str>, CompiledFlag, foldhash::fast::RandomState>;

static EMPTY_METADATA: FlagMetadata = FlagMetadata::new();

/// What one flag's evaluation came to, before it is dressed as details.
enum Outcome {
    /// The variant at this index, for this reason.
    Variant(usize, Reason),
    /// No variant: the code default, for this reason (disabled, or no
    /// default variant).
    CodeDefault(Reason),
    /// An error: the code default.
    Failed(EvalError),
}

const NOT_FOUND: EvalError = EvalError::fixed(ErrorCode::FlagNotFound, "flag not found");
const UNKNOWN_VARIANT: EvalError = EvalError::fixed(
    ErrorCode::General,
    "targeting returned a variant name that the flag does not define",
);
const NOT_A_VARIANT_NAME: EvalError = EvalError::fixed(
    ErrorCode::General,
    "targeting returned a value that is not a variant name (a string, number or boolean)",
);

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
/// assert_eq!(details.variant(), Some("on"));
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
        let (flags, problems) = validate::compile_document(document, options)?;
        Ok(Snapshot {
            flags,
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

    /// The keys of flags whose definition or targeting is invalid (they answer
    /// `PARSE_ERROR`), sorted.
    pub fn broken_flags(&self) -> Vec<&str> {
        let mut keys: Vec<&str> = self
            .flags
            .iter()
            .filter(|(_, f)| f.broken.is_some() || matches!(f.targeting, Targeting::Invalid(_)))
            .map(|(k, _)| &**k)
            .collect();
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
            return Resolution::failed(None, NOT_FOUND, &EMPTY_METADATA);
        };
        let metadata = &flag.metadata;
        match self.outcome(flag, ctx) {
            Outcome::Variant(i, reason) => {
                let (name, value) = &flag.variants[i];
                Resolution::served(Some(value), Some(name), reason, metadata)
            }
            Outcome::CodeDefault(reason) => Resolution::served(None, None, reason, metadata),
            Outcome::Failed(error) => Resolution::failed(None, error, metadata),
        }
    }

    /// The value of the variant a flag serves, without the details: `None`
    /// where [`evaluate`](Self::evaluate) would serve the code default (an
    /// unknown or disabled flag, an error). The read path's form when nobody
    /// looks at the reason, variant or metadata.
    #[inline]
    pub fn value<C: Context + ?Sized>(&self, key: &str, ctx: &C) -> Option<&FlagValue> {
        let flag = self.flags.get(key)?;
        match self.outcome(flag, ctx) {
            Outcome::Variant(i, _) => Some(&flag.variants[i].1),
            Outcome::CodeDefault(_) | Outcome::Failed(_) => None,
        }
    }

    /// The value, variant and reason a flag serves, without the details
    /// ([`evaluate`](Self::evaluate) without the error and the metadata).
    #[inline]
    pub fn served<C: Context + ?Sized>(&self, key: &str, ctx: &C) -> Served<'_> {
        let Some(flag) = self.flags.get(key) else {
            return Served {
                value: None,
                variant: None,
                reason: Reason::Error,
                identity: crate::served_identity(key, None),
            };
        };
        // One identity per variant and one for none, made with the variants.
        let identity = |i: usize| {
            flag.identities.get(i).copied().unwrap_or_else(|| {
                crate::served_identity(key, flag.variants.get(i).map(|(name, _)| &**name))
            })
        };
        match self.outcome(flag, ctx) {
            Outcome::Variant(i, reason) => {
                let (name, value) = &flag.variants[i];
                Served {
                    value: Some(value),
                    variant: Some(std::borrow::Cow::Borrowed(name)),
                    reason,
                    identity: identity(i),
                }
            }
            Outcome::CodeDefault(reason) => Served {
                value: None,
                variant: None,
                reason,
                identity: identity(flag.variants.len()),
            },
            Outcome::Failed(_) => Served {
                value: None,
                variant: None,
                reason: Reason::Error,
                identity: identity(flag.variants.len()),
            },
        }
    }

    /// What a flag's definition and targeting come to for `ctx`: the one
    /// evaluation behind [`evaluate`](Self::evaluate) and [`value`](Self::value).
    #[inline]
    fn outcome<C: Context + ?Sized>(&self, flag: &CompiledFlag, ctx: &C) -> Outcome {
        let parse_error = |message: &Arc<str>| {
            Outcome::Failed(EvalError {
                code: ErrorCode::ParseError,
                message: ErrorMessage::Shared(Arc::clone(message)),
            })
        };
        if let Some(message) = &flag.broken {
            return parse_error(message);
        }
        if !flag.enabled {
            return Outcome::CodeDefault(Reason::Disabled);
        }
        let default = |reason: Reason| match flag.default_variant {
            Some(i) => Outcome::Variant(i, reason),
            None => Outcome::CodeDefault(Reason::Default),
        };
        let rule = match &flag.targeting {
            Targeting::None => return default(Reason::Static),
            Targeting::Invalid(message) => return parse_error(message),
            Targeting::Rule(rule) => rule,
        };
        let env = Env {
            ctx,
            flag_key: &flag.key,
            variants: &flag.variants,
            fractional: self.options.fractional,
        };
        let result = match env.select(rule, Data::Root) {
            Selected::Variant(i) if i < flag.variants.len() => {
                return Outcome::Variant(i, flag.match_reason);
            }
            Selected::Variant(_) => return default(Reason::Default),
            Selected::Value(result) => result,
        };
        // A number names the variant spelled as JavaScript (and flagd's Go
        // evaluator) write it: `45`, `1.5`, `1e+21`.
        let mut number = StackText::default();
        let name: &str = match &result {
            Val::Null => return default(Reason::Default),
            Val::Str(s) => s,
            Val::String(s) => s,
            Val::Bool(true) => "true",
            Val::Bool(false) => "false",
            Val::Num(n) => match write_number(*n, &mut number) {
                Ok(()) => number.as_str(),
                Err(_) => return Outcome::Failed(NOT_A_VARIANT_NAME),
            },
            _ => return Outcome::Failed(NOT_A_VARIANT_NAME),
        };
        match flag.variant_index(name) {
            Some(i) => Outcome::Variant(i, flag.match_reason),
            None => Outcome::Failed(UNKNOWN_VARIANT),
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
        self.evaluate(key, ctx)
            .typed(default, |value| T::from_flag_value(value).map(convert))
    }
}

/// The `TYPE_MISMATCH` error for a value of the wrong type.
pub fn type_mismatch(value: &FlagValue) -> EvalError {
    EvalError::fixed(ErrorCode::TypeMismatch, mismatch_message(value))
}

fn mismatch_message(value: &FlagValue) -> &'static str {
    match value {
        FlagValue::Bool(_) => "type mismatch: the flag's value is a boolean",
        FlagValue::Int(_) | FlagValue::Float(_) => "type mismatch: the flag's value is a number",
        FlagValue::String(_) => "type mismatch: the flag's value is a string",
        FlagValue::Object(_) => "type mismatch: the flag's value is an object",
    }
}
