//! Evaluation of compiled nodes against a context.

use std::borrow::Cow;
use std::fmt::{self, Write as _};

use serde_json::Value;

use super::{FractionalVersion, Node, Op, VarPath, semver};
use crate::context::{AttrValue, Context};

/// A value during evaluation; borrows from the snapshot and the context (`'a`).
///
/// Invariant: `Json` only holds arrays and objects; scalars use their own variants.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Val<'a> {
    Null,
    Bool(bool),
    Num(f64),
    Str(&'a str),
    String(String),
    Json(&'a Value),
    Array(Vec<Val<'a>>),
}

impl<'a> Val<'a> {
    pub(crate) fn from_json(value: &'a Value) -> Val<'a> {
        match value {
            Value::Array(_) | Value::Object(_) => Val::Json(value),
            scalar => Val::from_attr(AttrValue::from_json(scalar)),
        }
    }

    fn from_attr(value: AttrValue<'a>) -> Val<'a> {
        match value {
            AttrValue::Null => Val::Null,
            AttrValue::Bool(b) => Val::Bool(b),
            AttrValue::Number(n) => Val::Num(n),
            AttrValue::Str(s) => Val::Str(s),
            AttrValue::Json(j) => Val::from_json(j),
        }
    }

    pub(crate) fn as_str(&self) -> Option<&str> {
        match self {
            Val::Str(s) => Some(s),
            Val::String(s) => Some(s),
            _ => None,
        }
    }

    pub(crate) fn is_null(&self) -> bool {
        matches!(self, Val::Null)
    }

    /// JsonLogic truthiness (JavaScript's, except that `[]` is false).
    pub(crate) fn truthy(&self) -> bool {
        match self {
            Val::Null => false,
            Val::Bool(b) => *b,
            Val::Num(n) => *n != 0.0 && !n.is_nan(),
            Val::Str(s) => !s.is_empty(),
            Val::String(s) => !s.is_empty(),
            Val::Json(Value::Array(a)) => !a.is_empty(),
            Val::Json(_) => true,
            Val::Array(a) => !a.is_empty(),
        }
    }

    /// JavaScript's `Number(x)`.
    fn to_number(&self) -> f64 {
        match self {
            Val::Null => 0.0,
            Val::Bool(b) => f64::from(u8::from(*b)),
            Val::Num(n) => *n,
            Val::Str(s) => str_to_number(s),
            Val::String(s) => str_to_number(s),
            Val::Json(Value::Array(a)) => match a.as_slice() {
                [] => 0.0,
                [one] => Val::from_json(one).to_number(),
                _ => f64::NAN,
            },
            Val::Json(_) => f64::NAN,
            Val::Array(a) => match a.as_slice() {
                [] => 0.0,
                [one] => one.to_number(),
                _ => f64::NAN,
            },
        }
    }

    /// JavaScript's `String(x)`, borrowing where it can.
    pub(crate) fn to_text(&self) -> Cow<'_, str> {
        match self {
            Val::Str(s) => Cow::Borrowed(s),
            Val::String(s) => Cow::Borrowed(s),
            _ => {
                let mut out = String::new();
                self.write_text(&mut out);
                Cow::Owned(out)
            }
        }
    }

    fn write_text(&self, out: &mut String) {
        match self {
            Val::Null => out.push_str("null"),
            Val::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Val::Num(n) => {
                // Writing to a `String` cannot fail.
                let _ = write_number(*n, out);
            }
            Val::Str(s) => out.push_str(s),
            Val::String(s) => out.push_str(s),
            Val::Json(Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    // JavaScript prints null inside arrays as an empty string.
                    if !item.is_null() {
                        Val::from_json(item).write_text(out);
                    }
                }
            }
            Val::Json(_) => out.push_str("[object Object]"),
            Val::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    if !item.is_null() {
                        item.write_text(out);
                    }
                }
            }
        }
    }

    fn is_array(&self) -> bool {
        matches!(self, Val::Array(_) | Val::Json(Value::Array(_)))
    }

    /// Elements of an array value (nothing for non-arrays).
    fn elements(&self) -> Vec<Val<'a>> {
        match self {
            Val::Json(Value::Array(items)) => items.iter().map(Val::from_json).collect(),
            Val::Array(items) => items.clone(),
            _ => Vec::new(),
        }
    }

    fn into_elements(self) -> Vec<Val<'a>> {
        match self {
            Val::Json(Value::Array(items)) => items.iter().map(Val::from_json).collect(),
            Val::Array(items) => items,
            _ => Vec::new(),
        }
    }
}

/// Writes a number as JavaScript's `String(n)` does (ECMAScript
/// Number::toString): the shortest digits that read back as `n`, in plain
/// notation for exponents from -7 to 20 and as `1.5e+21` / `1e-7` outside.
pub(crate) fn write_number(n: f64, out: &mut impl fmt::Write) -> fmt::Result {
    if n.is_nan() {
        return out.write_str("NaN");
    }
    if n.is_infinite() {
        return out.write_str(if n > 0.0 { "Infinity" } else { "-Infinity" });
    }
    if n == 0.0 {
        // -0 too.
        return out.write_str("0");
    }
    if n < 0.0 {
        out.write_char('-')?;
    }
    // Rust's `{:e}` gives the shortest round-trip digits: `d[.ddd]e<exp>`.
    let mut scientific = StackText::default();
    write!(scientific, "{:e}", n.abs())?;
    let text = scientific.as_str();
    let (mantissa, exponent) = text.split_once('e').unwrap_or((text, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let (first, rest) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = first.len() + rest.len();
    let k = digits as i32;
    // The value is 0.DIGITS × 10^point.
    let point = exponent + 1;
    let all = first.chars().chain(rest.chars());
    if k <= point && point <= 21 {
        for c in all {
            out.write_char(c)?;
        }
        for _ in 0..point - k {
            out.write_char('0')?;
        }
    } else if 0 < point && point <= 21 {
        for (i, c) in all.enumerate() {
            if i as i32 == point {
                out.write_char('.')?;
            }
            out.write_char(c)?;
        }
    } else if -6 < point && point <= 0 {
        out.write_str("0.")?;
        for _ in 0..-point {
            out.write_char('0')?;
        }
        for c in all {
            out.write_char(c)?;
        }
    } else {
        out.write_str(first)?;
        if !rest.is_empty() {
            out.write_char('.')?;
            out.write_str(rest)?;
        }
        let sign = if point - 1 < 0 { '-' } else { '+' };
        write!(out, "e{sign}{}", (point - 1).abs())?;
    }
    Ok(())
}

/// Text written on the stack: a number's spelling, with no allocation.
#[derive(Default)]
pub(crate) struct StackText {
    bytes: [u8; 32],
    len: usize,
}

impl StackText {
    /// The text written so far.
    pub(crate) fn as_str(&self) -> &str {
        // Only whole `&str`s are ever copied in, so the bytes are UTF-8.
        std::str::from_utf8(&self.bytes[..self.len]).unwrap_or("")
    }
}

impl fmt::Write for StackText {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        let slot = self.bytes.get_mut(self.len..end).ok_or(fmt::Error)?;
        slot.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

fn str_to_number(s: &str) -> f64 {
    let t = s.trim();
    if t.is_empty() {
        return 0.0;
    }
    t.parse::<f64>().unwrap_or(f64::NAN)
}

/// JavaScript's `==` on the values JsonLogic produces, but for `null`: the
/// published flagd cores compare `null` with a number or a boolean as the
/// number 0 (`null == 0`, `null == false`), where JavaScript says no.
fn loose_eq(a: &Val<'_>, b: &Val<'_>) -> bool {
    match (a, b) {
        (Val::Null, Val::Null) => true,
        (Val::Null, Val::Num(_) | Val::Bool(_)) | (Val::Num(_) | Val::Bool(_), Val::Null) => {
            a.to_number() == b.to_number()
        }
        (Val::Null, _) | (_, Val::Null) => false,
        (Val::Bool(x), Val::Bool(y)) => x == y,
        (Val::Num(x), Val::Num(y)) => x == y,
        (Val::Bool(_), _) => loose_eq(&Val::Num(a.to_number()), b),
        (_, Val::Bool(_)) => loose_eq(a, &Val::Num(b.to_number())),
        _ if a.as_str().is_some() && b.as_str().is_some() => a.as_str() == b.as_str(),
        (Val::Num(x), _) if b.as_str().is_some() => *x == b.to_number(),
        (_, Val::Num(y)) if a.as_str().is_some() => a.to_number() == *y,
        // An array or object against a primitive compares its string form.
        (Val::Json(_) | Val::Array(_), Val::Num(_))
        | (Val::Num(_), Val::Json(_) | Val::Array(_)) => a.to_number() == b.to_number(),
        (Val::Json(_) | Val::Array(_), _) if b.as_str().is_some() => a.to_text() == b.to_text(),
        (_, Val::Json(_) | Val::Array(_)) if a.as_str().is_some() => a.to_text() == b.to_text(),
        _ => false,
    }
}

/// JavaScript's `===`.
fn strict_eq(a: &Val<'_>, b: &Val<'_>) -> bool {
    match (a, b) {
        (Val::Null, Val::Null) => true,
        (Val::Bool(x), Val::Bool(y)) => x == y,
        (Val::Num(x), Val::Num(y)) => x == y,
        _ => match (a.as_str(), b.as_str()) {
            (Some(x), Some(y)) => x == y,
            _ => false,
        },
    }
}

/// JavaScript's relational comparison: arrays and objects become their
/// string forms first (`["30"]` is `"30"`, `{}` is `"[object Object]"`);
/// then two strings compare as strings, anything else as numbers.
fn compare(a: &Val<'_>, b: &Val<'_>) -> Option<std::cmp::Ordering> {
    let primitive = |v: &Val<'_>| -> Option<String> {
        matches!(
            v,
            Val::Array(_) | Val::Json(Value::Array(_) | Value::Object(_))
        )
        .then(|| v.to_text().into_owned())
    };
    let (pa, pb) = (primitive(a), primitive(b));
    let x = pa.as_deref().or(a.as_str());
    let y = pb.as_deref().or(b.as_str());
    match (x, y) {
        (Some(x), Some(y)) => Some(x.cmp(y)),
        _ => a.to_number().partial_cmp(&b.to_number()),
    }
}

/// Where `var` reads from: the context, or an element inside `map`/`filter`/`reduce`/...
#[derive(Clone, Copy)]
pub(crate) enum Data<'a, 'b> {
    Root,
    Item(&'b Val<'a>),
    Reduce {
        current: &'b Val<'a>,
        accumulator: &'b Val<'a>,
    },
}

/// Everything an evaluation needs besides the node.
pub(crate) struct Env<'a, C: ?Sized> {
    pub ctx: &'a C,
    pub flag_key: &'a str,
    /// The flag's variants, for [`Node::Variant`].
    pub variants: &'a [(Box<str>, crate::value::FlagValue)],
    pub fractional: FractionalVersion,
}

/// What a flag's rule selected: a variant by index (a literal linked to the
/// variant at compile time), or any other value (a variant name to look up,
/// `null`, or something that names no variant).
pub(crate) enum Selected<'a> {
    /// The variant at this index.
    Variant(usize),
    /// A value.
    Value(Val<'a>),
}

impl<'a, C: Context + ?Sized> Env<'a, C> {
    /// Evaluates a flag's rule down to the variant it selects. The common
    /// shapes — `if` chains whose branches are variant names — end at a
    /// variant index without building, comparing or dropping a value.
    #[inline]
    pub(crate) fn select(&self, rule: &'a Node, data: Data<'a, '_>) -> Selected<'a> {
        let mut node = rule;
        'rule: loop {
            match node {
                Node::Variant(i) => return Selected::Variant(*i),
                Node::Op(Op::If, args) => {
                    let mut i = 0;
                    while i + 1 < args.len() {
                        if self.eval_bool(&args[i], data) {
                            node = &args[i + 1];
                            continue 'rule;
                        }
                        i += 2;
                    }
                    match args.get(i) {
                        Some(otherwise) => node = otherwise,
                        None => return Selected::Value(Val::Null),
                    }
                }
                Node::Fractional(f) => return f.select(self, data),
                other => return Selected::Value(self.eval(other, data)),
            }
        }
    }

    pub(crate) fn eval(&self, node: &'a Node, data: Data<'a, '_>) -> Val<'a> {
        match node {
            Node::Null => Val::Null,
            Node::Bool(b) => Val::Bool(*b),
            Node::Num(n) => Val::Num(*n),
            Node::Str(s) => Val::Str(s),
            Node::Json(j) => Val::Json(j),
            Node::Array(items) => Val::Array(items.iter().map(|n| self.eval(n, data)).collect()),
            Node::FlagKey => Val::Str(self.flag_key),
            Node::Variant(i) => self
                .variants
                .get(*i)
                .map_or(Val::Null, |(name, _)| Val::Str(name)),
            Node::Attr(name) => match data {
                Data::Root => self.ctx.attribute(name).map_or(Val::Null, Val::from_attr),
                _ => self.lookup(std::iter::once(&**name), data),
            },
            Node::TargetingKey => match (data, self.ctx.targeting_key()) {
                (Data::Root, Some(key)) => Val::Str(key),
                _ => self.lookup(std::iter::once("targetingKey"), data),
            },
            Node::Timestamp => Val::Num(unix_seconds()),
            Node::Var(var) => {
                let found = match &var.path {
                    VarPath::Static(segments) => self.lookup(segments.iter().map(|s| &**s), data),
                    VarPath::Dynamic(path) => {
                        let path = self.eval(path, data);
                        let text = path.to_text();
                        if text.is_empty() {
                            self.lookup(std::iter::empty(), data)
                        } else {
                            self.lookup(text.split('.'), data)
                        }
                    }
                };
                match (found, &var.default) {
                    (Val::Null, Some(default)) => self.eval(default, data),
                    (found, _) => found,
                }
            }
            // The common rule shape, `if(condition, then, else)`, without
            // entering the general operator dispatch.
            Node::Op(Op::If, args) if args.len() == 3 => {
                if self.eval_bool(&args[0], data) {
                    self.eval(&args[1], data)
                } else {
                    self.eval(&args[2], data)
                }
            }
            Node::Op(op, args) => self.eval_op(*op, args, data),
            Node::Fractional(f) => f.eval(self, data),
            Node::InSet(in_set) => {
                let needle = self.eval(&in_set.needle, data);
                Val::Bool(needle.as_str().is_some_and(|s| in_set.set.contains(s)))
            }
            Node::Sample(args) => self.sample(args, data),
        }
    }

    /// `{"sample": [percent, bucketBy?]}`: a uniform draw in [0, 100) below
    /// `percent`; the draw is MurmurHash3 of the flag key followed by `bucketBy`'s
    /// text when it is given and not null (the same key always gets the same
    /// answer for a flag, independently of other flags), random otherwise.
    fn sample(&self, args: &'a [Node], data: Data<'a, '_>) -> Val<'a> {
        let percent = self.eval(&args[0], data).to_number();
        if percent.is_nan() {
            return Val::Null;
        }
        let bucket = args.get(1).map(|node| self.eval(node, data));
        let draw = match &bucket {
            Some(value) if !value.is_null() => {
                let mut hasher = super::murmur3::Murmur3::new(0);
                hasher.write(self.flag_key.as_bytes());
                hasher.write(value.to_text().as_bytes());
                f64::from(hasher.finish()) / 4_294_967_296.0 * 100.0
            }
            _ => fastrand::f64() * 100.0,
        };
        Val::Bool(draw < percent)
    }

    /// Resolves a dotted path against the data; `Null` when absent.
    fn lookup<'p>(
        &self,
        mut segments: impl Iterator<Item = &'p str>,
        data: Data<'a, '_>,
    ) -> Val<'a> {
        let start: Val<'a> = match data {
            Data::Root => {
                let Some(first) = segments.next() else {
                    // The whole context has no borrowed JSON form; rules never need it.
                    return Val::Null;
                };
                if first == "targetingKey"
                    && let Some(key) = self.ctx.targeting_key()
                {
                    return descend_rest(Val::Str(key), segments);
                }
                // `$flagd` is the evaluator's own: the flag key and the time
                // (also behind a `var` with a default or a computed path).
                if first == "$flagd" {
                    let value = match segments.next() {
                        Some("flagKey") => Val::Str(self.flag_key),
                        Some("timestamp") => Val::Num(unix_seconds()),
                        _ => return Val::Null,
                    };
                    return descend_rest(value, segments);
                }
                match self.ctx.attribute(first) {
                    Some(v) => Val::from_attr(v),
                    None => return Val::Null,
                }
            }
            Data::Item(item) => item.clone(),
            Data::Reduce {
                current,
                accumulator,
            } => match segments.next() {
                None => Val::Null,
                Some("current") => current.clone(),
                Some("accumulator") => accumulator.clone(),
                Some(_) => return Val::Null,
            },
        };
        descend_rest(start, segments)
    }

    fn eval_op(&self, op: Op, args: &'a [Node], data: Data<'a, '_>) -> Val<'a> {
        let arg = |i: usize| -> Val<'a> { args.get(i).map_or(Val::Null, |n| self.eval(n, data)) };
        match op {
            Op::If => {
                let mut i = 0;
                while i + 1 < args.len() {
                    if self.eval_bool(&args[i], data) {
                        return self.eval(&args[i + 1], data);
                    }
                    i += 2;
                }
                if i < args.len() {
                    self.eval(&args[i], data)
                } else {
                    Val::Null
                }
            }
            Op::Eq => Val::Bool(loose_eq(&arg(0), &arg(1))),
            Op::Ne => Val::Bool(!loose_eq(&arg(0), &arg(1))),
            Op::StrictEq => Val::Bool(strict_eq(&arg(0), &arg(1))),
            Op::StrictNe => Val::Bool(!strict_eq(&arg(0), &arg(1))),
            Op::Not => Val::Bool(!args.first().is_some_and(|n| self.eval_bool(n, data))),
            Op::Truthy => Val::Bool(args.first().is_some_and(|n| self.eval_bool(n, data))),
            Op::Or => {
                let mut last = Val::Null;
                for node in args {
                    last = self.eval(node, data);
                    if last.truthy() {
                        return last;
                    }
                }
                last
            }
            Op::And => {
                let mut last = Val::Null;
                for node in args {
                    last = self.eval(node, data);
                    if !last.truthy() {
                        return last;
                    }
                }
                last
            }
            Op::Gt => Val::Bool(compare(&arg(0), &arg(1)) == Some(std::cmp::Ordering::Greater)),
            Op::Ge => Val::Bool(matches!(
                compare(&arg(0), &arg(1)),
                Some(std::cmp::Ordering::Greater | std::cmp::Ordering::Equal)
            )),
            Op::Lt | Op::Le => {
                let ok = |o: Option<std::cmp::Ordering>| match o {
                    Some(std::cmp::Ordering::Less) => true,
                    Some(std::cmp::Ordering::Equal) => op == Op::Le,
                    _ => false,
                };
                let (a, b) = (arg(0), arg(1));
                if args.len() >= 3 {
                    let c = arg(2);
                    Val::Bool(ok(compare(&a, &b)) && ok(compare(&b, &c)))
                } else {
                    Val::Bool(ok(compare(&a, &b)))
                }
            }
            Op::Max | Op::Min => {
                let mut best: Option<f64> = None;
                for node in args {
                    let n = self.eval(node, data).to_number();
                    if n.is_nan() {
                        // As JavaScript's Math.max: NaN, which names no
                        // variant (the cores answer an error too).
                        return Val::Num(f64::NAN);
                    }
                    best = Some(match best {
                        None => n,
                        Some(b) if op == Op::Max => b.max(n),
                        Some(b) => b.min(n),
                    });
                }
                best.map_or(Val::Null, Val::Num)
            }
            Op::Add => Val::Num(args.iter().map(|n| self.eval(n, data).to_number()).sum()),
            Op::Mul => Val::Num(
                args.iter()
                    .map(|n| self.eval(n, data).to_number())
                    .product(),
            ),
            Op::Sub => match args.len() {
                0 => Val::Null,
                1 => Val::Num(-arg(0).to_number()),
                _ => Val::Num(arg(0).to_number() - arg(1).to_number()),
            },
            Op::Div => Val::Num(arg(0).to_number() / arg(1).to_number()),
            Op::Mod => Val::Num(arg(0).to_number() % arg(1).to_number()),
            Op::Map | Op::Filter | Op::All | Op::None | Op::Some => {
                self.eval_iteration(op, args, data)
            }
            Op::Reduce => {
                let items = arg(0).into_elements();
                let Some(body) = args.get(1) else {
                    return Val::Null;
                };
                let mut accumulator = arg(2);
                for current in &items {
                    accumulator = self.eval(
                        body,
                        Data::Reduce {
                            current,
                            accumulator: &accumulator,
                        },
                    );
                }
                accumulator
            }
            Op::Merge => {
                let mut out = Vec::new();
                for node in args {
                    let v = self.eval(node, data);
                    if v.is_array() {
                        out.extend(v.into_elements());
                    } else {
                        out.push(v);
                    }
                }
                Val::Array(out)
            }
            Op::In => {
                let (needle, haystack) = (arg(0), arg(1));
                if let Some(h) = haystack.as_str() {
                    return Val::Bool(h.contains(&*needle.to_text()));
                }
                match &haystack {
                    Val::Json(Value::Array(items)) => {
                        Val::Bool(items.iter().any(|i| strict_eq(&needle, &Val::from_json(i))))
                    }
                    Val::Array(items) => Val::Bool(items.iter().any(|i| strict_eq(&needle, i))),
                    _ => Val::Bool(false),
                }
            }
            Op::Cat => {
                let mut out = String::new();
                for node in args {
                    self.eval(node, data).write_text(&mut out);
                }
                Val::String(out)
            }
            Op::Substr => {
                let source = arg(0);
                let text = source.to_text();
                let chars: Vec<char> = text.chars().collect();
                let len = chars.len() as i64;
                let start = arg(1).to_number();
                let start = if start.is_nan() { 0 } else { start as i64 };
                // Saturating: a huge count (`1e21` becomes `i64::MAX`) must not
                // overflow into a bad slice.
                let start = if start < 0 {
                    len.saturating_add(start).max(0)
                } else {
                    start.min(len)
                };
                let end = if args.len() >= 3 {
                    let n = arg(2).to_number();
                    let n = if n.is_nan() { 0 } else { n as i64 };
                    if n < 0 {
                        len.saturating_add(n).max(start)
                    } else {
                        start.saturating_add(n).min(len)
                    }
                } else {
                    len
                };
                Val::String(
                    chars[start as usize..end.max(start) as usize]
                        .iter()
                        .collect(),
                )
            }
            Op::Missing => {
                let keys: Vec<Val<'a>> = if args.len() == 1 || arg(0).is_array() {
                    let first = arg(0);
                    if first.is_array() {
                        first.into_elements()
                    } else {
                        vec![first]
                    }
                } else {
                    args.iter().map(|n| self.eval(n, data)).collect()
                };
                Val::Array(self.missing_keys(keys, data))
            }
            Op::MissingSome => {
                let need = arg(0).to_number();
                let keys = arg(1).into_elements();
                let total = keys.len();
                let missing = self.missing_keys(keys, data);
                if (total - missing.len()) as f64 >= need {
                    Val::Array(Vec::new())
                } else {
                    Val::Array(missing)
                }
            }
            Op::StartsWith | Op::EndsWith => self
                .string_test(op, args, data)
                .map_or(Val::Null, Val::Bool),
            Op::SemVer => {
                if args.len() != 3 {
                    return Val::Null;
                }
                let (a, operator, b) = (arg(0), arg(1), arg(2));
                match operator.as_str() {
                    Some(operator) => {
                        semver::compare_values(&a, operator, &b).map_or(Val::Null, Val::Bool)
                    }
                    None => Val::Null,
                }
            }
        }
    }

    /// Evaluates a condition straight to its truthiness, skipping the `Val` where
    /// the operator yields a boolean anyway (the hot path of `if` rules).
    #[inline]
    fn eval_bool(&self, node: &'a Node, data: Data<'a, '_>) -> bool {
        match node {
            Node::Op(op @ (Op::StartsWith | Op::EndsWith), args) => {
                self.string_test(*op, args, data).unwrap_or(false)
            }
            _ => self.eval(node, data).truthy(),
        }
    }

    /// `starts_with` / `ends_with`: exactly two string arguments, else `None` (null).
    #[inline]
    fn string_test(&self, op: Op, args: &'a [Node], data: Data<'a, '_>) -> Option<bool> {
        let [subject, affix] = args else {
            return None;
        };
        // The common form, a top-level attribute against a literal: read
        // straight from the context, no `Val` built.
        if let (Node::Attr(name), Data::Root, Node::Str(literal)) = (subject, data, affix) {
            let subject = self.ctx.attribute_str(name)?;
            return Some(affix_test(op, subject, literal));
        }
        self.string_test_evaluated(op, subject, affix, data)
    }

    /// `starts_with`/`ends_with` whose operands are expressions.
    #[inline(never)]
    fn string_test_evaluated(
        &self,
        op: Op,
        subject: &'a Node,
        affix: &'a Node,
        data: Data<'a, '_>,
    ) -> Option<bool> {
        let subject_val;
        let subject: &str = match (subject, data) {
            (Node::Attr(name), Data::Root) => self.ctx.attribute_str(name)?,
            (other, _) => {
                subject_val = self.eval(other, data);
                subject_val.as_str()?
            }
        };
        let affix_val;
        let affix = match affix {
            Node::Str(literal) => &**literal,
            other => {
                affix_val = self.eval(other, data);
                affix_val.as_str()?
            }
        };
        Some(affix_test(op, subject, affix))
    }

    fn eval_iteration(&self, op: Op, args: &'a [Node], data: Data<'a, '_>) -> Val<'a> {
        let source = args.first().map_or(Val::Null, |n| self.eval(n, data));
        let items = source.elements();
        let Some(body) = args.get(1) else {
            return if op == Op::Map || op == Op::Filter {
                Val::Array(Vec::new())
            } else {
                Val::Bool(false)
            };
        };
        match op {
            Op::Map => Val::Array(
                items
                    .iter()
                    .map(|item| self.eval(body, Data::Item(item)))
                    .collect(),
            ),
            Op::Filter => Val::Array(
                items
                    .iter()
                    .filter(|item| self.eval(body, Data::Item(item)).truthy())
                    .cloned()
                    .collect(),
            ),
            Op::All => Val::Bool(
                !items.is_empty()
                    && items
                        .iter()
                        .all(|item| self.eval(body, Data::Item(item)).truthy()),
            ),
            Op::None => Val::Bool(
                !items
                    .iter()
                    .any(|item| self.eval(body, Data::Item(item)).truthy()),
            ),
            _ => Val::Bool(
                items
                    .iter()
                    .any(|item| self.eval(body, Data::Item(item)).truthy()),
            ),
        }
    }

    fn missing_keys(&self, keys: Vec<Val<'a>>, data: Data<'a, '_>) -> Vec<Val<'a>> {
        keys.into_iter()
            .filter(|key| {
                let text = key.to_text();
                let found = if text.is_empty() {
                    Val::Null
                } else {
                    self.lookup(text.split('.'), data)
                };
                match found {
                    Val::Null => true,
                    other => other.as_str() == Some(""),
                }
            })
            .collect()
    }
}

fn descend_rest<'a, 'p>(mut current: Val<'a>, segments: impl Iterator<Item = &'p str>) -> Val<'a> {
    for segment in segments {
        current = match current {
            Val::Json(Value::Object(map)) => match map.get(segment) {
                Some(v) => Val::from_json(v),
                None => return Val::Null,
            },
            Val::Json(Value::Array(items)) => {
                match segment.parse::<usize>().ok().and_then(|i| items.get(i)) {
                    Some(v) => Val::from_json(v),
                    None => return Val::Null,
                }
            }
            Val::Array(mut items) => match segment.parse::<usize>() {
                Ok(i) if i < items.len() => items.swap_remove(i),
                _ => return Val::Null,
            },
            _ => return Val::Null,
        };
    }
    current
}

fn unix_seconds() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs() as f64)
}

/// `starts_with` or `ends_with`.
#[inline]
fn affix_test(op: Op, subject: &str, affix: &str) -> bool {
    if op == Op::StartsWith {
        subject.starts_with(affix)
    } else {
        subject.ends_with(affix)
    }
}
