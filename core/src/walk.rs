//! Iterative walks over JSON values: safe on values of any depth (documents
//! built in memory are not bounded by the parser's nesting limit).

use std::hash::{Hash, Hasher};

use serde_json::Value;

/// Whether `value` nests deeper than `limit` (scalars have depth 0).
pub(crate) fn deeper_than(value: &Value, limit: usize) -> bool {
    let mut stack: Vec<(&Value, usize)> = vec![(value, 0)];
    while let Some((v, depth)) = stack.pop() {
        let children: Box<dyn Iterator<Item = &Value>> = match v {
            Value::Array(items) => Box::new(items.iter()),
            Value::Object(map) => Box::new(map.values()),
            _ => continue,
        };
        if depth + 1 > limit {
            return true;
        }
        stack.extend(children.map(|c| (c, depth + 1)));
    }
    false
}

/// Feeds a structural hash of `value` into `hasher`; returns whether any object
/// in it has a `$ref` key.
pub(crate) fn hash_json(value: &Value, hasher: &mut impl Hasher) -> bool {
    let mut has_ref = false;
    let mut stack: Vec<&Value> = vec![value];
    while let Some(v) = stack.pop() {
        match v {
            Value::Null => 0u8.hash(hasher),
            Value::Bool(b) => (1u8, *b).hash(hasher),
            Value::Number(n) => {
                2u8.hash(hasher);
                match (n.as_i64(), n.as_u64()) {
                    (Some(i), _) => (0u8, i).hash(hasher),
                    (None, Some(u)) => (1u8, u).hash(hasher),
                    (None, None) => (2u8, n.as_f64().unwrap_or(f64::NAN).to_bits()).hash(hasher),
                }
            }
            Value::String(s) => (3u8, s).hash(hasher),
            Value::Array(items) => {
                (4u8, items.len()).hash(hasher);
                stack.extend(items.iter().rev());
            }
            Value::Object(map) => {
                (5u8, map.len()).hash(hasher);
                for (k, _) in map {
                    has_ref |= k == "$ref";
                    k.hash(hasher);
                }
                stack.extend(map.values().rev());
            }
        }
    }
    has_ref
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn hash(v: &Value) -> (u64, bool) {
        let mut h = std::hash::DefaultHasher::new();
        let r = hash_json(v, &mut h);
        (h.finish(), r)
    }

    #[test]
    fn depth_and_hash() {
        assert!(!deeper_than(&json!(1), 0));
        assert!(!deeper_than(&json!({"a": [1]}), 2));
        assert!(deeper_than(&json!({"a": [[1]]}), 2));
        assert_eq!(hash(&json!({"a": [1, 2]})), hash(&json!({"a": [1, 2]})));
        assert_ne!(hash(&json!({"a": [1, 2]})).0, hash(&json!({"a": [2, 1]})).0);
        assert_ne!(hash(&json!(["ab", "c"])).0, hash(&json!(["a", "bc"])).0);
        assert!(hash(&json!({"if": [{"$ref": "x"}]})).1);
    }
}
