//! `google.protobuf.Struct` and `Value` to and from JSON.

use prost_types::value::Kind;
use prost_types::{ListValue, Struct, Value};
use serde_json::{Map, Number};

/// A JSON value as a protobuf `Value` (numbers become doubles, as
/// protobuf's JSON mapping has them).
pub fn to_proto(value: &serde_json::Value) -> Value {
    let kind = match value {
        serde_json::Value::Null => Kind::NullValue(0),
        serde_json::Value::Bool(b) => Kind::BoolValue(*b),
        serde_json::Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or(0.0)),
        serde_json::Value::String(s) => Kind::StringValue(s.clone()),
        serde_json::Value::Array(items) => Kind::ListValue(ListValue {
            values: items.iter().map(to_proto).collect(),
        }),
        serde_json::Value::Object(map) => Kind::StructValue(to_struct(map)),
    };
    Value { kind: Some(kind) }
}

/// A JSON object as a protobuf `Struct`.
pub fn to_struct(map: &Map<String, serde_json::Value>) -> Struct {
    Struct {
        fields: map.iter().map(|(k, v)| (k.clone(), to_proto(v))).collect(),
    }
}

/// A protobuf `Value` as JSON (a whole double becomes an integer, so a
/// context's `age: 42` compares as flagd compares it).
pub fn from_proto(value: &Value) -> serde_json::Value {
    match &value.kind {
        None | Some(Kind::NullValue(_)) => serde_json::Value::Null,
        Some(Kind::BoolValue(b)) => serde_json::Value::Bool(*b),
        Some(Kind::NumberValue(n)) => number(*n),
        Some(Kind::StringValue(s)) => serde_json::Value::String(s.clone()),
        Some(Kind::ListValue(list)) => {
            serde_json::Value::Array(list.values.iter().map(from_proto).collect())
        }
        Some(Kind::StructValue(s)) => serde_json::Value::Object(from_struct(s)),
    }
}

/// A protobuf `Struct` as a JSON object.
pub fn from_struct(s: &Struct) -> Map<String, serde_json::Value> {
    s.fields
        .iter()
        .map(|(k, v)| (k.clone(), from_proto(v)))
        .collect()
}

fn number(n: f64) -> serde_json::Value {
    if n.fract() == 0.0 && n.abs() < 9.007_199_254_740_992e15 {
        serde_json::Value::Number(Number::from(n as i64))
    } else {
        Number::from_f64(n).map_or(serde_json::Value::Null, serde_json::Value::Number)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trips_through_struct() {
        let json = serde_json::json!({"a": 1, "b": [true, null, "x"], "c": {"d": 2.5}});
        let serde_json::Value::Object(map) = &json else {
            unreachable!("an object literal")
        };
        assert_eq!(
            serde_json::Value::Object(from_struct(&to_struct(map))),
            json
        );
    }
}
