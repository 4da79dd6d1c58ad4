//! Resolution details: value, variant, reason, error and flag metadata.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use crate::value::FlagValue;

/// Why a value was chosen, spelled as in OpenFeature and flagd.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, strum::IntoStaticStr, strum::Display)]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum Reason {
    /// The flag has no targeting; the default variant was served.
    Static,
    /// Targeting selected a variant.
    TargetingMatch,
    /// Targeting returned no variant, or there is no default variant.
    Default,
    /// A pseudorandom or hashed assignment chose the variant (the `sample` operator).
    Split,
    /// The flag is disabled; the code default was served.
    Disabled,
    /// An error occurred; the code default was served.
    Error,
}

impl Reason {
    /// The OpenFeature spelling (`STATIC`, `TARGETING_MATCH`, ...).
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// OpenFeature error codes that an evaluation can report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, strum::IntoStaticStr, strum::Display)]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    /// No document has been loaded yet.
    ProviderNotReady,
    /// The key names no flag.
    FlagNotFound,
    /// The flag's definition or targeting could not be compiled.
    ParseError,
    /// The flag's variants are not of the requested type.
    TypeMismatch,
    /// The context was unusable (for instance a missing targeting key where one is required).
    TargetingKeyMissing,
    /// The context is invalid.
    InvalidContext,
    /// Anything else, such as targeting naming a variant that does not exist.
    General,
}

impl ErrorCode {
    /// The OpenFeature spelling (`FLAG_NOT_FOUND`, ...).
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// A message that costs no allocation to hand out: a static text or one shared
/// with the compiled flag it describes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorMessage {
    /// A fixed text.
    Static(&'static str),
    /// A text built when the document was compiled.
    Shared(Arc<str>),
}

impl ErrorMessage {
    /// The message text.
    pub fn as_str(&self) -> &str {
        match self {
            ErrorMessage::Static(s) => s,
            ErrorMessage::Shared(s) => s,
        }
    }
}

impl fmt::Display for ErrorMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An evaluation error: an OpenFeature code and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvalError {
    /// The OpenFeature error code.
    pub code: ErrorCode,
    /// What went wrong, naming the flag part where it can.
    pub message: ErrorMessage,
}

impl EvalError {
    pub(crate) const fn fixed(code: ErrorCode, message: &'static str) -> EvalError {
        EvalError {
            code,
            message: ErrorMessage::Static(message),
        }
    }
}

/// A flag metadata value: flagd allows booleans, strings and numbers.
#[derive(Debug, Clone, PartialEq)]
pub enum MetadataValue {
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A string.
    String(String),
}

impl MetadataValue {
    /// The value as JSON.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            MetadataValue::Bool(b) => (*b).into(),
            MetadataValue::Int(i) => (*i).into(),
            MetadataValue::Float(f) => serde_json::Number::from_f64(*f)
                .map(serde_json::Value::Number)
                .unwrap_or(serde_json::Value::Null),
            MetadataValue::String(s) => s.clone().into(),
        }
    }
}

/// Written as [`to_json`](MetadataValue::to_json) would give it, directly.
impl serde::Serialize for MetadataValue {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use crate::value::Scalar;
        match self {
            MetadataValue::Bool(b) => Scalar::Bool(*b),
            MetadataValue::Int(i) => Scalar::Int(*i),
            MetadataValue::Float(f) => Scalar::Float(*f),
            MetadataValue::String(s) => Scalar::Str(s),
        }
        .serialize(serializer)
    }
}

/// Flag metadata, with the flag set's metadata already merged in (the flag wins).
pub type FlagMetadata = BTreeMap<String, MetadataValue>;

/// The result of one evaluation: value, variant, reason, error and flag
/// metadata — the one details type of Flagyard.
///
/// `'s` is the snapshot the details borrow from (the variant name and the
/// metadata), so reading them copies nothing; [`into_owned`](Self::into_owned)
/// makes [`Details`] that outlive the document. [`Evaluation`] is the untyped
/// form, whose value is the variant's [`FlagValue`] (`None`: the code default).
///
/// Never an `Err`: problems show as `reason == Reason::Error` and `error`, with the
/// code default as `value`.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolution<'s, T> {
    /// The resolved value, or the code default.
    pub value: T,
    /// The variant name, when a variant was served.
    pub variant: Option<Cow<'s, str>>,
    /// Why this value was chosen.
    pub reason: Reason,
    /// The error, when `reason` is `Error` (or targeting failed).
    pub error: Option<EvalError>,
    /// The flag's metadata (merged with the flag set's); empty for unknown flags.
    pub metadata: Cow<'s, FlagMetadata>,
}

/// Resolution details that own their strings: safe to keep after the document
/// changes (what the provider's `*_details` getters return).
pub type Details<T> = Resolution<'static, T>;

/// An untyped evaluation: the served variant's value (`None`: use the code
/// default) and the details, borrowed from the snapshot.
pub type Evaluation<'s> = Resolution<'s, Option<&'s FlagValue>>;

impl<'s, T> Resolution<'s, T> {
    /// Details of a served variant (or of the code default when `variant` is `None`).
    #[inline]
    pub fn served(
        value: T,
        variant: Option<&'s str>,
        reason: Reason,
        metadata: &'s FlagMetadata,
    ) -> Self {
        Resolution {
            value,
            variant: variant.map(Cow::Borrowed),
            reason,
            error: None,
            metadata: Cow::Borrowed(metadata),
        }
    }

    /// Details of an error: the code default `value` with reason `ERROR`.
    #[inline]
    pub fn failed(value: T, error: EvalError, metadata: &'s FlagMetadata) -> Self {
        Resolution {
            value,
            variant: None,
            reason: Reason::Error,
            error: Some(error),
            metadata: Cow::Borrowed(metadata),
        }
    }

    /// Maps the value, keeping the rest of the details.
    #[inline]
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Resolution<'s, U> {
        Resolution {
            value: f(self.value),
            variant: self.variant,
            reason: self.reason,
            error: self.error,
            metadata: self.metadata,
        }
    }

    /// The same details, owning their strings.
    pub fn into_owned(self) -> Details<T> {
        Resolution {
            value: self.value,
            variant: self.variant.map(|v| Cow::Owned(v.into_owned())),
            reason: self.reason,
            error: self.error,
            metadata: Cow::Owned(self.metadata.into_owned()),
        }
    }

    /// The variant name, if a variant was served.
    pub fn variant(&self) -> Option<&str> {
        self.variant.as_deref()
    }

    /// The error code, if any.
    pub fn error_code(&self) -> Option<ErrorCode> {
        self.error.as_ref().map(|e| e.code)
    }
}

impl<'s> Evaluation<'s> {
    /// The typed resolution: `convert` turns the served variant's value into
    /// `U`, or `None` on a type mismatch (then `default` is served with
    /// `TYPE_MISMATCH`); without a served value, `default` with the
    /// evaluation's reason.
    #[inline]
    pub fn typed<U>(
        self,
        default: U,
        convert: impl FnOnce(&'s FlagValue) -> Option<U>,
    ) -> Resolution<'s, U> {
        let Some(value) = self.value else {
            return self.map(|_| default);
        };
        match convert(value) {
            Some(converted) => self.map(|_| converted),
            None => Resolution {
                value: default,
                variant: None,
                reason: Reason::Error,
                error: Some(crate::snapshot::type_mismatch(value)),
                metadata: self.metadata,
            },
        }
    }
}

/// What a flag serves, without the details: the variant's value (`None`: the
/// code default applies), the variant's name and the reason — what recording
/// an exposure needs, built from nothing but references.
#[derive(Debug, Clone, PartialEq)]
pub struct Served<'s> {
    /// The variant's value; `None` where the code default applies.
    pub value: Option<&'s FlagValue>,
    /// The variant's name, when one was served.
    pub variant: Option<Cow<'s, str>>,
    /// Why.
    pub reason: Reason,
    /// [`served_identity`] of the flag and this variant: what exposure
    /// summaries count and de-duplicate by, so the read path hashes no
    /// flag key or variant name (an evaluator computes it once per variant).
    pub identity: u64,
}

/// The fixed hasher behind [`served_identity`] and
/// [`targeting_key_hash`](crate::context::targeting_key_hash): seeded with a
/// constant, so hashes are the same on every thread and every run; a
/// constant, so using it costs no initialization check.
pub const FIXED_HASHER: foldhash::fast::FixedState =
    foldhash::fast::FixedState::with_seed(0x5eed_f1a9);

/// A stable 64-bit identity of a flag key and the variant it served (`None`:
/// none): the same on every thread, in every process and for every document
/// version, so counts keyed by it merge across threads and snapshots.
///
/// # Example
/// ```
/// use flagyard_core::served_identity;
///
/// assert_eq!(served_identity("new-ui", Some("on")), served_identity("new-ui", Some("on")));
/// assert_ne!(served_identity("new-ui", Some("on")), served_identity("new-ui", None));
/// ```
pub fn served_identity(flag: &str, variant: Option<&str>) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = FIXED_HASHER.build_hasher();
    h.write(flag.as_bytes());
    h.write_u8(0xff);
    match variant {
        Some(variant) => {
            h.write_u8(1);
            h.write(variant.as_bytes());
        }
        None => h.write_u8(0),
    }
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::{ErrorCode, Reason};

    /// Each value's `as_str` and `Display` give its spelling.
    fn spelled<T: Copy + std::fmt::Display>(cases: &[(T, &str)], as_str: fn(T) -> &'static str) {
        for &(value, spelling) in cases {
            assert_eq!(as_str(value), spelling);
            assert_eq!(value.to_string(), spelling);
        }
    }

    #[test]
    fn reasons_and_error_codes_are_spelled_as_openfeature_spells_them() {
        use ErrorCode as C;
        use Reason as R;
        spelled(
            &[
                (R::Static, "STATIC"),
                (R::TargetingMatch, "TARGETING_MATCH"),
                (R::Default, "DEFAULT"),
                (R::Split, "SPLIT"),
                (R::Disabled, "DISABLED"),
                (R::Error, "ERROR"),
            ],
            Reason::as_str,
        );
        spelled(
            &[
                (C::ProviderNotReady, "PROVIDER_NOT_READY"),
                (C::FlagNotFound, "FLAG_NOT_FOUND"),
                (C::ParseError, "PARSE_ERROR"),
                (C::TypeMismatch, "TYPE_MISMATCH"),
                (C::TargetingKeyMissing, "TARGETING_KEY_MISSING"),
                (C::InvalidContext, "INVALID_CONTEXT"),
                (C::General, "GENERAL"),
            ],
            ErrorCode::as_str,
        );
    }
}
