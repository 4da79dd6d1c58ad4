//! OpenFeature glue: `FeatureProvider` for [`FlagyardProvider`], OpenFeature's
//! context read through Flagyard's `Context` trait, and value conversions.

use std::collections::HashMap;

use async_trait::async_trait;
use flagyard_core::{
    AttrValue, Context, ErrorCode, Evaluator, FlagMetadata, FlagType, FlagValue, MetadataValue,
    Reason, Resolution,
};
use open_feature::provider::{
    FeatureProvider, ProviderMetadata, ProviderStatus as OfStatus, ResolutionDetails,
};
use open_feature::{
    EvaluationContext, EvaluationContextFieldValue, EvaluationError, EvaluationErrorCode,
    EvaluationReason, EvaluationResult, FlagMetadataValue, StructValue,
};
use serde_json::Value;

use crate::events::ProviderStatus;
use crate::provider::FlagyardProvider;

/// OpenFeature's evaluation context, read without copying.
#[derive(Debug)]
pub struct OpenFeatureContext<'a>(pub &'a EvaluationContext);

impl Context for OpenFeatureContext<'_> {
    fn targeting_key(&self) -> Option<&str> {
        self.0.targeting_key.as_deref()
    }

    fn attribute(&self, name: &str) -> Option<AttrValue<'_>> {
        Some(match self.0.custom_fields.get(name)? {
            EvaluationContextFieldValue::Bool(b) => AttrValue::Bool(*b),
            EvaluationContextFieldValue::Int(i) => AttrValue::Number(*i as f64),
            EvaluationContextFieldValue::Float(f) => AttrValue::Number(*f),
            EvaluationContextFieldValue::String(s) => AttrValue::Str(s),
            // Rules compare times as Unix seconds (like `$flagd.timestamp`).
            EvaluationContextFieldValue::DateTime(t) => {
                AttrValue::Number(t.unix_timestamp() as f64)
            }
            // Structures are opaque `Any`s; a `serde_json::Value` inside is readable.
            EvaluationContextFieldValue::Struct(any) => match any.downcast_ref::<Value>() {
                Some(json) => AttrValue::from_json(json),
                None => return None,
            },
        })
    }
}

fn reason(reason: Reason) -> EvaluationReason {
    match reason {
        Reason::Static => EvaluationReason::Static,
        Reason::TargetingMatch => EvaluationReason::TargetingMatch,
        Reason::Default => EvaluationReason::Default,
        Reason::Split => EvaluationReason::Split,
        Reason::Disabled => EvaluationReason::Disabled,
        Reason::Error => EvaluationReason::Error,
    }
}

fn error_code(code: ErrorCode) -> EvaluationErrorCode {
    match code {
        ErrorCode::ProviderNotReady => EvaluationErrorCode::ProviderNotReady,
        ErrorCode::FlagNotFound => EvaluationErrorCode::FlagNotFound,
        ErrorCode::ParseError => EvaluationErrorCode::ParseError,
        ErrorCode::TypeMismatch => EvaluationErrorCode::TypeMismatch,
        ErrorCode::TargetingKeyMissing => EvaluationErrorCode::TargetingKeyMissing,
        ErrorCode::InvalidContext => EvaluationErrorCode::InvalidContext,
        ErrorCode::General => EvaluationErrorCode::General("GENERAL".into()),
    }
}

fn metadata(metadata: &FlagMetadata) -> Option<open_feature::FlagMetadata> {
    if metadata.is_empty() {
        return None;
    }
    let values = metadata
        .iter()
        .map(|(k, v)| {
            let v = match v {
                MetadataValue::Bool(b) => FlagMetadataValue::Bool(*b),
                MetadataValue::Int(i) => FlagMetadataValue::Int(*i),
                MetadataValue::Float(f) => FlagMetadataValue::Float(*f),
                MetadataValue::String(s) => FlagMetadataValue::String(s.clone()),
            };
            (k.clone(), v)
        })
        .collect();
    Some(open_feature::FlagMetadata { values })
}

/// Turns a resolution into OpenFeature's result.
///
/// OpenFeature 0.3 does not pass the caller's default to providers, so when the
/// caller's default applies (an error, a disabled flag, no default variant) the
/// provider answers with an error and the SDK substitutes the default: errors
/// keep their code; a disabled flag or a missing default variant come back as
/// `GENERAL` with the reason in the message. The synchronous getters report
/// `DISABLED` and `DEFAULT` exactly.
fn to_result<T>(r: Resolution<'_, Option<T>>) -> EvaluationResult<ResolutionDetails<T>> {
    let variant = r.variant().map(str::to_string);
    match (r.value, r.error) {
        (Some(value), None) => Ok(ResolutionDetails {
            value,
            variant,
            reason: Some(reason(r.reason)),
            flag_metadata: metadata(&r.metadata),
        }),
        (_, Some(error)) => Err(EvaluationError {
            code: error_code(error.code),
            message: Some(error.message.to_string()),
        }),
        (None, None) => Err(EvaluationError {
            code: EvaluationErrorCode::General(r.reason.as_str().into()),
            message: Some(format!(
                "reason {}: the flag serves the caller's default value",
                r.reason.as_str()
            )),
        }),
    }
}

/// A JSON object as an OpenFeature structure (`null` members are left out: the
/// OpenFeature value model has no null).
pub fn json_to_struct(value: &Value) -> Option<StructValue> {
    match json_to_value(value)? {
        open_feature::Value::Struct(s) => Some(s),
        _ => None,
    }
}

fn json_to_value(value: &Value) -> Option<open_feature::Value> {
    Some(match value {
        Value::Null => return None,
        Value::Bool(b) => open_feature::Value::Bool(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => open_feature::Value::Int(i),
            None => open_feature::Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => open_feature::Value::String(s.clone()),
        Value::Array(items) => {
            open_feature::Value::Array(items.iter().filter_map(json_to_value).collect())
        }
        Value::Object(map) => {
            let fields: HashMap<String, open_feature::Value> = map
                .iter()
                .filter_map(|(k, v)| json_to_value(v).map(|v| (k.clone(), v)))
                .collect();
            open_feature::Value::Struct(StructValue { fields })
        }
    })
}

impl<E: Evaluator> FlagyardProvider<E> {
    fn resolve_openfeature<T>(
        &self,
        key: &str,
        ctx: &EvaluationContext,
        convert: impl FnOnce(&FlagValue) -> Option<T>,
    ) -> EvaluationResult<ResolutionDetails<T>> {
        let convert = |v: &FlagValue| convert(v).map(Some);
        self.with_resolution(key, None, &OpenFeatureContext(ctx), convert, to_result)
    }
}

/// The OpenFeature provider; its typed resolvers are one body
/// (`resolve_openfeature`) over each type's conversion.
macro_rules! feature_provider {
    ($($resolve:ident -> $ty:ty: $convert:expr;)*) => {
        #[async_trait]
        impl<E: Evaluator> FeatureProvider for FlagyardProvider<E> {
            /// Starts the provider and returns at once (OpenFeature holds a write lock
            /// while this runs); use `wait_until_ready` to wait for a document.
            async fn initialize(&mut self, _context: &EvaluationContext) {
                self.start();
            }

            fn status(&self) -> OfStatus {
                match FlagyardProvider::status(self) {
                    ProviderStatus::NotReady => OfStatus::NotReady,
                    ProviderStatus::Ready => OfStatus::Ready,
                    ProviderStatus::Stale => OfStatus::STALE,
                    ProviderStatus::Error => OfStatus::Error,
                }
            }

            fn metadata(&self) -> &ProviderMetadata {
                self.openfeature_metadata()
            }

            $(
                async fn $resolve(
                    &self,
                    key: &str,
                    ctx: &EvaluationContext,
                ) -> EvaluationResult<ResolutionDetails<$ty>> {
                    self.resolve_openfeature(key, ctx, $convert)
                }
            )*
        }
    };
}

feature_provider! {
    resolve_bool_value -> bool: |v| bool::from_flag_value(v);
    resolve_int_value -> i64: |v| i64::from_flag_value(v);
    resolve_float_value -> f64: |v| f64::from_flag_value(v);
    resolve_string_value -> String: |v| String::from_flag_value(v);
    resolve_struct_value -> StructValue: struct_of;
}

/// An object variant as an OpenFeature struct; anything else is no struct.
fn struct_of(v: &FlagValue) -> Option<StructValue> {
    match v {
        FlagValue::Object(json) => json_to_struct(json),
        _ => None,
    }
}
