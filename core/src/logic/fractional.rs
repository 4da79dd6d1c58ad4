//! flagd's `fractional` operator, with the v2 and v3 hashing of DESIGN §2.

use serde_json::Value;

use super::FractionalVersion;
use super::Node;
use super::compile::FlagLink;
use super::eval::{Data, Env, Selected, Val};
use super::murmur3::Murmur3;
use crate::context::Context;

/// The largest total weight flagd accepts (weights are summed as i32).
const MAX_TOTAL_WEIGHT: u64 = i32::MAX as u64;

#[derive(Debug)]
pub(crate) struct FractionalNode {
    /// The bucketing expression, when the first argument is not itself a bucket.
    seed: Option<Node>,
    /// The bucket nodes.
    buckets: Vec<Node>,
    /// When every bucket is a literal: parsed once (`None` inside when invalid).
    parsed: Option<Option<StaticBuckets>>,
    /// The hasher after the flag key part of the shorthand's input (v2: the
    /// key; v3: the CBOR array head and the key), set by [`link`](Self::link)
    /// when the node sits where it decides the flag's variant.
    flag_prefix: Option<(FractionalVersion, Murmur3)>,
}

#[derive(Debug)]
struct StaticBuckets {
    /// Bucket values (usually variant names) with their weights, and the index
    /// of the flag variant each names (set by `link`).
    entries: Vec<(Value, u64, Option<usize>)>,
    total: u64,
}

fn is_bucket_node(node: &Node) -> bool {
    matches!(node, Node::Array(_)) || matches!(node, Node::Json(j) if j.is_array())
}

impl FractionalNode {
    /// Notes which flag variant each literal bucket names, and hashes the
    /// flag's key now for the shorthand.
    pub(crate) fn link<V>(&mut self, flag: &FlagLink<'_, V>) {
        if let Some(Some(buckets)) = &mut self.parsed {
            for (name, _, index) in &mut buckets.entries {
                if let Value::String(name) = name {
                    *index = flag.variants.iter().position(|(v, _)| **v == **name);
                }
            }
        }
        self.flag_prefix = Some((flag.fractional, flag_prefix(flag.fractional, flag.key)));
    }

    pub(crate) fn new(mut nodes: Vec<Node>) -> FractionalNode {
        let seed = match nodes.first() {
            Some(first) if !is_bucket_node(first) => Some(nodes.remove(0)),
            _ => None,
        };
        let parsed = nodes.iter().all(|n| matches!(n, Node::Json(_))).then(|| {
            let vals: Vec<Val<'_>> = nodes
                .iter()
                .map(|n| match n {
                    Node::Json(j) => Val::from_json(j),
                    _ => Val::Null,
                })
                .collect();
            parse_buckets(vals.iter()).map(|entries| StaticBuckets {
                total: entries.iter().map(|(_, w)| *w).sum(),
                entries: entries
                    .into_iter()
                    .map(|(name, w)| (val_to_json(&name), w, None))
                    .collect(),
            })
        });
        FractionalNode {
            seed,
            buckets: nodes,
            parsed,
            flag_prefix: None,
        }
    }

    pub(crate) fn eval<'a, C: Context + ?Sized>(
        &'a self,
        env: &Env<'a, C>,
        data: Data<'a, '_>,
    ) -> Val<'a> {
        match self.select(env, data) {
            Selected::Variant(i) => env
                .variants
                .get(i)
                .map_or(Val::Null, |(name, _)| Val::Str(name)),
            Selected::Value(value) => value,
        }
    }

    /// The bucket chosen: a linked variant by index (literal buckets naming
    /// variants, the common case), or the bucket's value.
    pub(crate) fn select<'a, C: Context + ?Sized>(
        &'a self,
        env: &Env<'a, C>,
        data: Data<'a, '_>,
    ) -> Selected<'a> {
        // Linked to this flag, for the hashing evaluated with: the flag key's
        // part of the shorthand's input is hashed already.
        let prefix = match &self.flag_prefix {
            Some((version, prefix)) if *version == env.fractional => Some(prefix),
            _ => None,
        };
        // A seed expression that yields an array is a bucket after all.
        let mut leading_bucket: Option<Val<'a>> = None;
        let seed = match &self.seed {
            None => None,
            Some(seed) => match env.eval(seed, data) {
                value @ (Val::Array(_) | Val::Json(Value::Array(_))) => {
                    leading_bucket = Some(value);
                    None
                }
                value => Some(value),
            },
        };
        let hasher = match seed {
            None => match hash_shorthand(prefix, env) {
                Some(hasher) => hasher,
                None => return Selected::Value(Val::Null),
            },
            Some(Val::Null) => return Selected::Value(Val::Null),
            Some(value) => {
                let mut hasher = Murmur3::new(0);
                match env.fractional {
                    FractionalVersion::V2 => match value.as_str() {
                        Some(s) => hasher.write(s.as_bytes()),
                        None => return Selected::Value(Val::Null),
                    },
                    FractionalVersion::V3 => cbor::write_val(&mut hasher, &value),
                }
                hasher
            }
        };
        let hash = hasher.finish();
        if let (Some(parsed), None) = (&self.parsed, &leading_bucket) {
            return match parsed {
                Some(b) => match pick(hash, b.total, b.entries.iter().map(|e| (e, e.1))) {
                    // A bucket linked to a variant selects it by index.
                    Some((_, _, Some(i))) => Selected::Variant(*i),
                    Some((name, _, None)) => Selected::Value(Val::from_json(name)),
                    None => Selected::Value(Val::Null),
                },
                None => Selected::Value(Val::Null),
            };
        }
        let mut vals: Vec<Val<'a>> = Vec::with_capacity(self.buckets.len() + 1);
        vals.extend(leading_bucket);
        vals.extend(self.buckets.iter().map(|n| env.eval(n, data)));
        let Some(entries) = parse_buckets(vals.iter()) else {
            return Selected::Value(Val::Null);
        };
        let total = entries.iter().map(|(_, w)| *w).sum();
        let chosen = pick(
            hash,
            total,
            entries.iter().enumerate().map(|(i, (_, w))| (i, *w)),
        );
        Selected::Value(match chosen {
            Some(i) => entries
                .into_iter()
                .nth(i)
                .map_or(Val::Null, |(name, _)| name),
            None => Val::Null,
        })
    }
}

/// The hasher fed the shorthand's bucketing input (v2: `flagKey +
/// targetingKey`, v3: `[flagKey, targetingKey]` as CBOR); `None` when the
/// targeting key is missing or empty. `prefix`: the
/// hasher after the flag key's part, computed when the rule was linked.
#[inline]
fn hash_shorthand<C: Context + ?Sized>(
    prefix: Option<&Murmur3>,
    env: &Env<'_, C>,
) -> Option<Murmur3> {
    // A missing or empty targeting key buckets nobody (the published cores
    // agree; flagd's Go v2 hashed an empty key, the testbed is silent).
    let key = env.ctx.targeting_key().filter(|key| !key.is_empty())?;
    let mut hasher = match prefix {
        Some(prefix) => prefix.clone(),
        None => flag_prefix(env.fractional, env.flag_key),
    };
    match env.fractional {
        FractionalVersion::V2 => hasher.write(key.as_bytes()),
        FractionalVersion::V3 => cbor::write_text(&mut hasher, key),
    }
    Some(hasher)
}

/// The hasher after the flag key's part of the shorthand's input: v2 the
/// key's bytes, v3 the CBOR head of a two-element array and the key as text.
fn flag_prefix(version: FractionalVersion, flag_key: &str) -> Murmur3 {
    let mut hasher = Murmur3::new(0);
    match version {
        FractionalVersion::V2 => hasher.write(flag_key.as_bytes()),
        FractionalVersion::V3 => {
            cbor::write_head(&mut hasher, 4, 2);
            cbor::write_text(&mut hasher, flag_key);
        }
    }
    hasher
}

/// Parses `[name, weight?]` buckets; `None` if any is malformed or the total is out of range.
fn parse_buckets<'a: 'v, 'v>(
    buckets: impl Iterator<Item = &'v Val<'a>>,
) -> Option<Vec<(Val<'a>, u64)>> {
    let mut out = Vec::new();
    let mut total: u64 = 0;
    for bucket in buckets {
        let (name, weight) = match bucket {
            // `[name]` or `[name, weight]`; longer ones are refused, as the
            // published cores refuse them.
            Val::Json(Value::Array(items)) if items.len() <= 2 => (
                items.first().map(Val::from_json)?,
                items.get(1).map(Val::from_json),
            ),
            Val::Array(items) if items.len() <= 2 => {
                (items.first()?.clone(), items.get(1).cloned())
            }
            _ => return None,
        };
        // Bucket values are variant names; booleans and numbers are allowed too
        // (flagd lets `fractional` serve as a condition), and `null`, a bucket
        // that serves the default variant (as the published cores allow).
        if !matches!(
            name,
            Val::Str(_) | Val::String(_) | Val::Bool(_) | Val::Num(_) | Val::Null
        ) {
            return None;
        }
        let weight = match weight {
            None => 1,
            Some(Val::Num(w)) if w.fract() == 0.0 && w.is_finite() => {
                if w < 0.0 {
                    0
                } else if w > MAX_TOTAL_WEIGHT as f64 {
                    return None;
                } else {
                    w as u64
                }
            }
            Some(_) => return None,
        };
        total += weight;
        if total > MAX_TOTAL_WEIGHT {
            return None;
        }
        out.push((name, weight));
    }
    if out.is_empty() {
        return None;
    }
    Some(out)
}

/// `bucket = (hash × total) >> 32`; the first variant whose running total exceeds it.
fn pick<T>(hash: u32, total: u64, entries: impl Iterator<Item = (T, u64)>) -> Option<T> {
    if total == 0 {
        return None;
    }
    let bucket = (u64::from(hash) * total) >> 32;
    let mut running = 0;
    for (name, weight) in entries {
        running += weight;
        if running > bucket {
            return Some(name);
        }
    }
    None
}

fn val_to_json(value: &Val<'_>) -> Value {
    match value {
        Val::Bool(b) => Value::Bool(*b),
        Val::Num(n) => serde_json::Number::from_f64(*n).map_or(Value::Null, Value::Number),
        other => other
            .as_str()
            .map_or(Value::Null, |s| Value::String(s.to_string())),
    }
}

/// Deterministic CBOR (RFC 8949 §4.2.1) written straight into the hasher.
pub(crate) mod cbor {
    use super::Murmur3;
    use crate::logic::eval::Val;
    use serde_json::Value;

    pub(crate) fn write_head(h: &mut Murmur3, major: u8, arg: u64) {
        let m = major << 5;
        if arg < 24 {
            h.write(&[m | arg as u8]);
        } else if arg <= 0xff {
            h.write(&[m | 24, arg as u8]);
        } else if arg <= 0xffff {
            let b = (arg as u16).to_be_bytes();
            h.write(&[m | 25, b[0], b[1]]);
        } else if arg <= 0xffff_ffff {
            let b = (arg as u32).to_be_bytes();
            h.write(&[m | 26, b[0], b[1], b[2], b[3]]);
        } else {
            h.write(&[m | 27]);
            h.write(&arg.to_be_bytes());
        }
    }

    pub(crate) fn write_text(h: &mut Murmur3, s: &str) {
        write_head(h, 3, s.len() as u64);
        h.write(s.as_bytes());
    }

    /// Numbers: integral values in [-2^63, 2^64) as integers (±0 → 0), the rest as
    /// the shortest float that holds them exactly.
    pub(crate) fn write_number(h: &mut Murmur3, n: f64) {
        if n.is_finite()
            && n.fract() == 0.0
            && (-9_223_372_036_854_775_808.0..18_446_744_073_709_551_616.0).contains(&n)
        {
            if n >= 0.0 {
                write_head(h, 0, n as u64);
            } else {
                let magnitude = (-1i128 - n as i128) as u64;
                write_head(h, 1, magnitude);
            }
            return;
        }
        if n.is_nan() {
            h.write(&[0xf9, 0x7e, 0x00]);
            return;
        }
        let half = half::f16::from_f64(n);
        if half.to_f64() == n {
            let b = half.to_bits().to_be_bytes();
            h.write(&[0xf9, b[0], b[1]]);
            return;
        }
        let single = n as f32;
        if f64::from(single) == n {
            h.write(&[0xfa]);
            h.write(&single.to_bits().to_be_bytes());
            return;
        }
        h.write(&[0xfb]);
        h.write(&n.to_bits().to_be_bytes());
    }

    pub(crate) fn write_json(h: &mut Murmur3, value: &Value) {
        match value {
            Value::Null => h.write(&[0xf6]),
            Value::Bool(b) => h.write(&[if *b { 0xf5 } else { 0xf4 }]),
            Value::Number(n) => {
                if let Some(u) = n.as_u64() {
                    write_head(h, 0, u);
                } else if let Some(i) = n.as_i64() {
                    write_head(h, 1, (-1 - i128::from(i)) as u64);
                } else {
                    write_number(h, n.as_f64().unwrap_or(f64::NAN));
                }
            }
            Value::String(s) => write_text(h, s),
            Value::Array(items) => {
                write_head(h, 4, items.len() as u64);
                for item in items {
                    write_json(h, item);
                }
            }
            Value::Object(map) => {
                let mut entries: Vec<(&String, &Value)> = map.iter().collect();
                // Encoded text keys sort by length first, then bytewise.
                entries.sort_by(|a, b| {
                    a.0.len()
                        .cmp(&b.0.len())
                        .then_with(|| a.0.as_bytes().cmp(b.0.as_bytes()))
                });
                write_head(h, 5, entries.len() as u64);
                for (k, v) in entries {
                    write_text(h, k);
                    write_json(h, v);
                }
            }
        }
    }

    pub(crate) fn write_val(h: &mut Murmur3, value: &Val<'_>) {
        match value {
            Val::Null => h.write(&[0xf6]),
            Val::Bool(b) => h.write(&[if *b { 0xf5 } else { 0xf4 }]),
            Val::Num(n) => write_number(h, *n),
            Val::Str(s) => write_text(h, s),
            Val::String(s) => write_text(h, s),
            Val::Json(j) => write_json(h, j),
            Val::Array(items) => {
                write_head(h, 4, items.len() as u64);
                for item in items {
                    write_val(h, item);
                }
            }
        }
    }
}
