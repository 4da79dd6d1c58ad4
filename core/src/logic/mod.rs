//! Targeting rules: JsonLogic (plus flagd's operators) compiled into typed nodes.
//!
//! [`compile`](compile::compile_rule) turns a rule's JSON into a [`Node`] tree once per
//! document, inlining `$ref`s and refusing rules that are too deep, too large or
//! that use an unknown operator. [`eval`] walks the tree against a
//! [`Context`](crate::Context) without parsing JSON and, for the common operators,
//! without allocating.

pub(crate) mod compile;
pub(crate) mod eval;
pub(crate) mod fractional;
pub mod murmur3;
pub(crate) mod semver;
#[cfg(test)]
mod tests;

pub(crate) use compile::{CompileCx, FlagLink, compile_rule, link_flag};

/// Which `fractional` hashing a snapshot uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum FractionalVersion {
    /// flagd's current behaviour: MurmurHash3 of the bucketing string
    /// (`flagKey + targetingKey` in the shorthand), `(hash × total) >> 32`.
    #[default]
    V2,
    /// The accepted flagd ADR: MurmurHash3 of the value's deterministic CBOR
    /// encoding (`[flagKey, targetingKey]` in the shorthand), non-string inputs allowed.
    V3,
}

impl std::str::FromStr for FractionalVersion {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "v2" | "V2" | "2" => Ok(FractionalVersion::V2),
            "v3" | "V3" | "3" => Ok(FractionalVersion::V3),
            other => Err(format!(
                "unknown fractional version '{other}' (expected v2 or v3)"
            )),
        }
    }
}

/// Operators, resolved from their names at compile time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    If,
    Eq,
    StrictEq,
    Ne,
    StrictNe,
    Not,
    Truthy,
    Or,
    And,
    Gt,
    Ge,
    Lt,
    Le,
    Max,
    Min,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Map,
    Filter,
    Reduce,
    All,
    None,
    Some,
    Merge,
    In,
    Cat,
    Substr,
    Missing,
    MissingSome,
    StartsWith,
    EndsWith,
    SemVer,
}

impl Op {
    pub(crate) fn from_name(name: &str) -> Option<Op> {
        Some(match name {
            "if" | "?:" => Op::If,
            "==" => Op::Eq,
            "===" => Op::StrictEq,
            "!=" => Op::Ne,
            "!==" => Op::StrictNe,
            "!" => Op::Not,
            "!!" => Op::Truthy,
            "or" => Op::Or,
            "and" => Op::And,
            ">" => Op::Gt,
            ">=" => Op::Ge,
            "<" => Op::Lt,
            "<=" => Op::Le,
            "max" => Op::Max,
            "min" => Op::Min,
            "+" => Op::Add,
            "-" => Op::Sub,
            "*" => Op::Mul,
            "/" => Op::Div,
            "%" => Op::Mod,
            "map" => Op::Map,
            "filter" => Op::Filter,
            "reduce" => Op::Reduce,
            "all" => Op::All,
            "none" => Op::None,
            "some" => Op::Some,
            "merge" => Op::Merge,
            "in" => Op::In,
            "cat" => Op::Cat,
            "substr" => Op::Substr,
            "missing" => Op::Missing,
            "missing_some" => Op::MissingSome,
            "starts_with" => Op::StartsWith,
            "ends_with" => Op::EndsWith,
            "sem_ver" => Op::SemVer,
            _ => return None,
        })
    }
}

/// A compiled rule node.
#[derive(Debug)]
pub(crate) enum Node {
    Null,
    Bool(bool),
    Num(f64),
    Str(Box<str>),
    /// A literal array or object (never a scalar).
    Json(Box<serde_json::Value>),
    /// An array with at least one non-literal element.
    Array(Box<[Node]>),
    Var(Box<VarNode>),
    /// `{"var": "name"}`: one top-level attribute, no default (the common case).
    Attr(Box<str>),
    /// `{"var": "targetingKey"}` without a default.
    TargetingKey,
    /// `{"var": "$flagd.flagKey"}`.
    FlagKey,
    /// A string literal in a result position that names one of the flag's
    /// variants: evaluates to the variant's own name, so the variant is found
    /// by address instead of by comparing strings.
    Variant(usize),
    /// `{"var": "$flagd.timestamp"}`.
    Timestamp,
    Op(Op, Box<[Node]>),
    Fractional(Box<fractional::FractionalNode>),
    /// `{"in": [needle, [literal strings…]]}` over a long list: a hash-set lookup.
    InSet(Box<InSetNode>),
    /// `{"sample": [percent, bucketBy?]}` (a Flagyard extension): true for
    /// `percent`% of checks, at random or hashed on `bucketBy`.
    Sample(Box<[Node]>),
}

/// Lists at least this long in `in` are compiled into a hash set.
pub(crate) const IN_SET_MIN_LEN: usize = 8;

#[derive(Debug)]
pub(crate) struct InSetNode {
    pub needle: Node,
    pub set: std::collections::HashSet<Box<str>, foldhash::fast::RandomState>,
}

impl Node {
    /// Whether the rule uses `sample` anywhere (its matches resolve with reason SPLIT).
    pub(crate) fn uses_sample(&self) -> bool {
        match self {
            Node::Sample(_) => true,
            Node::Array(items) | Node::Op(_, items) => items.iter().any(Node::uses_sample),
            Node::Var(var) => {
                var.default.as_ref().is_some_and(Node::uses_sample)
                    || matches!(&var.path, VarPath::Dynamic(path) if path.uses_sample())
            }
            Node::InSet(in_set) => in_set.needle.uses_sample(),
            _ => false,
        }
    }
}

#[derive(Debug)]
pub(crate) struct VarNode {
    pub path: VarPath,
    pub default: Option<Node>,
}

#[derive(Debug)]
pub(crate) enum VarPath {
    /// Dotted path split at compile time; empty means the whole data.
    Static(Box<[Box<str>]>),
    /// A path computed at evaluation time.
    Dynamic(Node),
}

impl Node {
    pub(crate) fn is_literal(&self) -> bool {
        matches!(
            self,
            Node::Null | Node::Bool(_) | Node::Num(_) | Node::Str(_) | Node::Json(_)
        )
    }
}
