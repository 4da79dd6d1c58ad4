//! Variant values, pre-built once per document.

use std::sync::Arc;

/// The value of one flag variant, built once when a document is compiled.
///
/// Strings and objects are reference-counted so a snapshot can hand them out
/// without copying; numbers keep the integer/float distinction of the JSON text.
#[derive(Debug, Clone, PartialEq)]
pub enum FlagValue {
    /// A boolean variant.
    Bool(bool),
    /// A JSON number without fraction or exponent that fits in an `i64`.
    Int(i64),
    /// Any other JSON number.
    Float(f64),
    /// A string variant.
    String(Arc<str>),
    /// A structured (JSON object) variant.
    Object(Arc<serde_json::Value>),
}

impl FlagValue {
    /// Builds a variant value from JSON; arrays and `null` are not variant values.
    pub fn from_json(value: &serde_json::Value) -> Option<FlagValue> {
        use serde_json::Value;
        match value {
            Value::Bool(b) => Some(FlagValue::Bool(*b)),
            Value::Number(n) => match n.as_i64() {
                Some(i) => Some(FlagValue::Int(i)),
                None => n.as_f64().map(FlagValue::Float),
            },
            Value::String(s) => Some(FlagValue::String(Arc::from(s.as_str()))),
            Value::Object(_) => Some(FlagValue::Object(Arc::new(value.clone()))),
            Value::Null | Value::Array(_) => None,
        }
    }

    /// The value as JSON.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            FlagValue::Bool(b) => serde_json::Value::Bool(*b),
            FlagValue::Int(i) => serde_json::Value::from(*i),
            FlagValue::Float(f) => serde_json::Number::from_f64(*f)
                .map(serde_json::Value::Number)
                .unwrap_or(serde_json::Value::Null),
            FlagValue::String(s) => serde_json::Value::String(s.to_string()),
            FlagValue::Object(o) => (**o).clone(),
        }
    }

    /// The kind of this value.
    pub fn kind(&self) -> ValueKind {
        match self {
            FlagValue::Bool(_) => ValueKind::Bool,
            FlagValue::Int(_) | FlagValue::Float(_) => ValueKind::Number,
            FlagValue::String(_) => ValueKind::String,
            FlagValue::Object(_) => ValueKind::Object,
        }
    }
}

/// A boolean, number or string of a flag value or of flag metadata, as JSON
/// writes it: a non-finite float, which JSON cannot hold, as `null`.
pub(crate) enum Scalar<'a> {
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(&'a str),
}

impl serde::Serialize for Scalar<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match *self {
            Scalar::Bool(b) => serializer.serialize_bool(b),
            Scalar::Int(i) => serializer.serialize_i64(i),
            Scalar::Float(f) if f.is_finite() => serializer.serialize_f64(f),
            Scalar::Float(_) => serializer.serialize_none(),
            Scalar::Str(s) => serializer.serialize_str(s),
        }
    }
}

/// Written as the JSON it was read from (see [`Scalar`]), without building a
/// `serde_json::Value` first.
impl serde::Serialize for FlagValue {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let scalar = match self {
            FlagValue::Object(o) => return o.serialize(serializer),
            FlagValue::Bool(b) => Scalar::Bool(*b),
            FlagValue::Int(i) => Scalar::Int(*i),
            FlagValue::Float(f) => Scalar::Float(*f),
            FlagValue::String(s) => Scalar::Str(s),
        };
        scalar.serialize(serializer)
    }
}

/// The four variant types of the flagd schema (integers and floats are both numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ValueKind {
    /// `true` / `false`.
    Bool,
    /// Integer or float.
    Number,
    /// A string.
    String,
    /// A JSON object.
    Object,
}

impl std::fmt::Display for ValueKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ValueKind::Bool => "boolean",
            ValueKind::Number => "number",
            ValueKind::String => "string",
            ValueKind::Object => "object",
        })
    }
}

/// A type a flag can be requested as; implemented for `bool`, `i64`, `f64`,
/// `&str` and `&serde_json::Value` (borrowed from the snapshot), and `String` and
/// `serde_json::Value` (copied).
///
/// The integer and float conversions follow flagd's resolver: both accept any
/// number variant; an integer request of a float variant truncates toward zero.
pub trait FlagType<'s>: Sized {
    /// The name used in error messages (`boolean`, `integer`, ...).
    const NAME: &'static str;
    /// Converts a variant value, or `None` on a type mismatch.
    fn from_flag_value(value: &'s FlagValue) -> Option<Self>;
}

impl<'s> FlagType<'s> for bool {
    const NAME: &'static str = "boolean";
    fn from_flag_value(value: &'s FlagValue) -> Option<Self> {
        match value {
            FlagValue::Bool(b) => Some(*b),
            _ => None,
        }
    }
}

impl<'s> FlagType<'s> for i64 {
    const NAME: &'static str = "integer";
    fn from_flag_value(value: &'s FlagValue) -> Option<Self> {
        match value {
            FlagValue::Int(i) => Some(*i),
            // flagd resolves integers through float64 and truncates.
            FlagValue::Float(f) if f.is_finite() && f.abs() < 9.223_372_036_854_776e18 => {
                Some(*f as i64)
            }
            _ => None,
        }
    }
}

impl<'s> FlagType<'s> for f64 {
    const NAME: &'static str = "float";
    fn from_flag_value(value: &'s FlagValue) -> Option<Self> {
        match value {
            FlagValue::Int(i) => Some(*i as f64),
            FlagValue::Float(f) => Some(*f),
            _ => None,
        }
    }
}

impl<'s> FlagType<'s> for &'s str {
    const NAME: &'static str = "string";
    fn from_flag_value(value: &'s FlagValue) -> Option<Self> {
        match value {
            FlagValue::String(s) => Some(s),
            _ => None,
        }
    }
}

impl<'s> FlagType<'s> for &'s serde_json::Value {
    const NAME: &'static str = "object";
    fn from_flag_value(value: &'s FlagValue) -> Option<Self> {
        match value {
            FlagValue::Object(o) => Some(o),
            _ => None,
        }
    }
}

/// An owned copy of a string variant (the provider's `get_string`).
impl<'s> FlagType<'s> for String {
    const NAME: &'static str = "string";
    fn from_flag_value(value: &'s FlagValue) -> Option<Self> {
        <&str>::from_flag_value(value).map(str::to_string)
    }
}

/// An owned copy of an object variant (the provider's `get_json`).
impl<'s> FlagType<'s> for serde_json::Value {
    const NAME: &'static str = "object";
    fn from_flag_value(value: &'s FlagValue) -> Option<Self> {
        <&serde_json::Value>::from_flag_value(value).cloned()
    }
}

impl From<bool> for FlagValue {
    fn from(v: bool) -> Self {
        FlagValue::Bool(v)
    }
}

impl From<i64> for FlagValue {
    fn from(v: i64) -> Self {
        FlagValue::Int(v)
    }
}

impl From<i32> for FlagValue {
    fn from(v: i32) -> Self {
        FlagValue::Int(i64::from(v))
    }
}

impl From<f64> for FlagValue {
    fn from(v: f64) -> Self {
        FlagValue::Float(v)
    }
}

impl From<&str> for FlagValue {
    fn from(v: &str) -> Self {
        FlagValue::String(Arc::from(v))
    }
}

impl From<String> for FlagValue {
    fn from(v: String) -> Self {
        FlagValue::String(Arc::from(v))
    }
}

/// Objects become object values; scalars their own kinds; arrays and `null`
/// (not variant values in flagd) become objects holding them under `"value"`.
impl From<serde_json::Value> for FlagValue {
    fn from(v: serde_json::Value) -> Self {
        match FlagValue::from_json(&v) {
            Some(value) => value,
            None => FlagValue::Object(Arc::new(serde_json::json!({ "value": v }))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MetadataValue;

    #[test]
    fn serializes_as_the_json_it_was_read_from() {
        let object = serde_json::json!({"a": [1, 2.5, "x"], "b": null});
        let values = [
            FlagValue::Bool(true),
            FlagValue::Int(-7),
            FlagValue::Float(0.25),
            FlagValue::Float(f64::NAN),
            FlagValue::String("red".into()),
            FlagValue::Object(Arc::new(object)),
        ];
        for value in values {
            let written = serde_json::to_value(&value).expect("serializes");
            assert_eq!(written, value.to_json(), "{value:?}");
        }
        let metadata = [
            MetadataValue::Bool(false),
            MetadataValue::Int(3),
            MetadataValue::Float(1.5),
            MetadataValue::Float(f64::INFINITY),
            MetadataValue::String("team".into()),
        ];
        for value in metadata {
            let written = serde_json::to_value(&value).expect("serializes");
            assert_eq!(written, value.to_json(), "{value:?}");
        }
    }
}
