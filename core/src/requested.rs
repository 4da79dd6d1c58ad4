//! Resolving by a type named at run time (the CLI, the testbed runner, OFREP).

use std::fmt;
use std::str::FromStr;

use serde_json::Value;

use crate::context::{Context, json_kind};
use crate::resolution::Resolution;
use crate::snapshot::Snapshot;

/// A flag type named at run time. Parses `bool`/`boolean`, `int`/`integer`,
/// `float`, `string` and `object`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RequestedType {
    /// `bool` / `boolean`.
    Bool,
    /// `int` / `integer`.
    Int,
    /// `float`.
    Float,
    /// `string`.
    String,
    /// `object`.
    Object,
}

impl FromStr for RequestedType {
    type Err = UnknownType;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "bool" | "boolean" => RequestedType::Bool,
            "int" | "integer" => RequestedType::Int,
            "float" | "number" | "double" => RequestedType::Float,
            "string" => RequestedType::String,
            "object" | "json" | "structure" => RequestedType::Object,
            _ => return Err(UnknownType(s.to_string())),
        })
    }
}

impl fmt::Display for RequestedType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RequestedType::Bool => "boolean",
            RequestedType::Int => "integer",
            RequestedType::Float => "float",
            RequestedType::String => "string",
            RequestedType::Object => "object",
        })
    }
}

/// A type name that is none of the supported spellings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown type '{0}' (expected bool|boolean, int|integer, float, string or object)")]
pub struct UnknownType(pub String);

/// A code default that does not match the requested type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("default value must be {what} for type {expected}, found {found}")]
pub struct DefaultTypeError {
    /// The requested type.
    pub expected: RequestedType,
    /// What the default should have been.
    pub what: &'static str,
    /// What it was.
    pub found: &'static str,
}

impl Snapshot {
    /// Resolves a flag as a type named at run time, with a JSON default of that type.
    /// The value in the result is JSON.
    ///
    /// # Example
    /// ```
    /// use flagyard_core::{RequestedType, Snapshot};
    /// use serde_json::json;
    ///
    /// let snapshot = Snapshot::parse(r#"{"flags": {"limit": {
    ///     "state": "ENABLED", "variants": {"low": 10, "high": 100}, "defaultVariant": "high"}}}"#).unwrap();
    /// let details = snapshot.resolve_as("limit", RequestedType::Int, &json!(5), &()).unwrap();
    /// assert_eq!(details.value, json!(100));
    /// ```
    pub fn resolve_as<'s, C: Context + ?Sized>(
        &'s self,
        key: &str,
        ty: RequestedType,
        default: &Value,
        ctx: &C,
    ) -> Result<Resolution<'s, Value>, DefaultTypeError> {
        let wrong = |what: &'static str| DefaultTypeError {
            expected: ty,
            what,
            found: json_kind(default),
        };
        Ok(match ty {
            RequestedType::Bool => {
                let d = default.as_bool().ok_or_else(|| wrong("a boolean"))?;
                self.resolve(key, d, ctx).map(Value::Bool)
            }
            RequestedType::Int => {
                let d = default.as_i64().ok_or_else(|| wrong("an integer"))?;
                self.resolve(key, d, ctx).map(Value::from)
            }
            RequestedType::Float => {
                let d = default.as_f64().ok_or_else(|| wrong("a number"))?;
                self.resolve(key, d, ctx)
                    .map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number))
            }
            RequestedType::String => {
                if !default.is_string() {
                    return Err(wrong("a string"));
                }
                self.resolve_map(key, default.clone(), ctx, |s: &str| {
                    Value::String(s.to_string())
                })
            }
            RequestedType::Object => {
                if !default.is_object() && !default.is_array() {
                    return Err(wrong("an object"));
                }
                self.resolve_map(key, default.clone(), ctx, |v: &Value| v.clone())
            }
        })
    }
}

/// The wire shape of resolution details, fields in this order.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct DetailsOut<'r> {
    value: &'r Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    variant: Option<&'r str>,
    reason: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_code: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_message: Option<&'r str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    flag_metadata: Option<serde_json::Map<String, Value>>,
}

/// Serializes as `{"value", "variant", "reason", "errorCode", "errorMessage",
/// "flagMetadata"}`, in that order, absent fields omitted.
impl serde::Serialize for Resolution<'_, Value> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        DetailsOut {
            value: &self.value,
            variant: self.variant.as_deref(),
            reason: self.reason.as_str(),
            error_code: self.error.as_ref().map(|e| e.code.as_str()),
            error_message: self.error.as_ref().map(|e| e.message.as_str()),
            flag_metadata: (!self.metadata.is_empty()).then(|| {
                self.metadata
                    .iter()
                    .map(|(k, v)| (k.clone(), v.to_json()))
                    .collect()
            }),
        }
        .serialize(serializer)
    }
}

impl Resolution<'_, Value> {
    /// The details as JSON (see the `Serialize` impl for the shape).
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

impl crate::resolution::Evaluation<'_> {
    /// The details as JSON, like [`Resolution::to_json`]; `value` is `null` when the
    /// code default would be served (no default variant, disabled, or an error).
    pub fn to_json(&self) -> Value {
        self.as_resolution().to_json()
    }

    /// The untyped evaluation as a JSON-valued resolution (serializable in the
    /// wire shape); `value` is `null` where the code default would be served.
    pub fn as_resolution(&self) -> Resolution<'_, Value> {
        self.clone()
            .map(|value| value.map_or(Value::Null, crate::value::FlagValue::to_json))
    }
}
