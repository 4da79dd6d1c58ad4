//! JSON → [`Node`] compilation with `$ref` inlining and limits.

use serde_json::{Map, Value};

use super::fractional::FractionalNode;
use super::{IN_SET_MIN_LEN, InSetNode, Node, Op, VarNode, VarPath};
use crate::{FractionalVersion, Limits};

/// Why a rule could not be compiled, with the JSON pointer (relative to the rule)
/// where the problem is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RuleError {
    pub pointer: String,
    pub message: String,
}

impl RuleError {
    fn new(message: impl Into<String>) -> Self {
        RuleError {
            pointer: String::new(),
            message: message.into(),
        }
    }

    fn under(mut self, segment: &str) -> Self {
        let escaped = segment.replace('~', "~0").replace('/', "~1");
        self.pointer = format!("/{escaped}{}", self.pointer);
        self
    }
}

/// Compilation state for one rule.
pub(crate) struct CompileCx<'d> {
    pub evaluators: Option<&'d Map<String, Value>>,
    pub limits: &'d Limits,
    nodes: usize,
    ref_stack: Vec<&'d str>,
}

impl<'d> CompileCx<'d> {
    pub(crate) fn new(evaluators: Option<&'d Map<String, Value>>, limits: &'d Limits) -> Self {
        CompileCx {
            evaluators,
            limits,
            nodes: 0,
            ref_stack: Vec::new(),
        }
    }
}

/// Compiles one targeting rule. `{}` is "no targeting" and is handled by the caller.
pub(crate) fn compile_rule<'d>(rule: &'d Value, cx: &mut CompileCx<'d>) -> Result<Node, RuleError> {
    compile(rule, cx, 0)
}

fn compile<'d>(value: &'d Value, cx: &mut CompileCx<'d>, depth: usize) -> Result<Node, RuleError> {
    if depth > cx.limits.max_rule_depth {
        return Err(RuleError::new(format!(
            "rule nested deeper than {} levels",
            cx.limits.max_rule_depth
        )));
    }
    cx.nodes += 1;
    if cx.nodes > cx.limits.max_rule_nodes {
        return Err(RuleError::new(format!(
            "rule has more than {} nodes (after inlining $ref)",
            cx.limits.max_rule_nodes
        )));
    }
    Ok(match value {
        Value::Null => Node::Null,
        Value::Bool(b) => Node::Bool(*b),
        Value::Number(n) => Node::Num(n.as_f64().unwrap_or(f64::NAN)),
        Value::String(s) => {
            check_string(s, cx)?;
            Node::Str(s.as_str().into())
        }
        Value::Array(items) => {
            let nodes = compile_list(items, cx, depth)?;
            if nodes.iter().all(Node::is_literal) {
                Node::Json(Box::new(value.clone()))
            } else {
                Node::Array(nodes.into_boxed_slice())
            }
        }
        Value::Object(map) => match map.iter().next() {
            Some((name, args)) if map.len() == 1 => {
                compile_operation(name, args, cx, depth).map_err(|e| e.under(name))?
            }
            _ => {
                // Objects that are not a single-key operation are data literals.
                for (k, v) in map {
                    check_literal(v, cx, depth + 1).map_err(|e| e.under(k))?;
                }
                Node::Json(Box::new(value.clone()))
            }
        },
    })
}

fn compile_list<'d>(
    items: &'d [Value],
    cx: &mut CompileCx<'d>,
    depth: usize,
) -> Result<Vec<Node>, RuleError> {
    items
        .iter()
        .enumerate()
        .map(|(i, item)| compile(item, cx, depth + 1).map_err(|e| e.under(&i.to_string())))
        .collect()
}

/// Checks the limits inside a data literal without compiling it.
fn check_literal(value: &Value, cx: &mut CompileCx<'_>, depth: usize) -> Result<(), RuleError> {
    if depth > cx.limits.max_rule_depth {
        return Err(RuleError::new(format!(
            "rule nested deeper than {} levels",
            cx.limits.max_rule_depth
        )));
    }
    cx.nodes += 1;
    match value {
        Value::String(s) => check_string(s, cx),
        Value::Array(items) => items.iter().enumerate().try_for_each(|(i, v)| {
            check_literal(v, cx, depth + 1).map_err(|e| e.under(&i.to_string()))
        }),
        Value::Object(map) => map
            .iter()
            .try_for_each(|(k, v)| check_literal(v, cx, depth + 1).map_err(|e| e.under(k))),
        _ => Ok(()),
    }
}

fn check_string(s: &str, cx: &CompileCx<'_>) -> Result<(), RuleError> {
    if s.len() > cx.limits.max_string_bytes {
        return Err(RuleError::new(format!(
            "string of {} bytes is over the {}-byte limit",
            s.len(),
            cx.limits.max_string_bytes
        )));
    }
    Ok(())
}

/// The argument list of an operation: an array is the list, anything else is one argument.
fn arg_list(args: &Value) -> &[Value] {
    match args {
        Value::Array(items) => items,
        other => std::slice::from_ref(other),
    }
}

fn compile_operation<'d>(
    name: &str,
    args: &'d Value,
    cx: &mut CompileCx<'d>,
    depth: usize,
) -> Result<Node, RuleError> {
    match name {
        "$ref" => compile_ref(args, cx, depth),
        "var" => compile_var(args, cx, depth),
        "fractional" => {
            let nodes = compile_list(arg_list(args), cx, depth)?;
            Ok(Node::Fractional(Box::new(FractionalNode::new(nodes))))
        }
        "sample" => {
            let nodes = compile_list(arg_list(args), cx, depth)?;
            if !(1..=2).contains(&nodes.len()) {
                return Err(RuleError::new(
                    "sample takes a percentage (0-100) and optionally a value to bucket by",
                ));
            }
            if let Node::Num(percent) = nodes[0]
                && !(0.0..=100.0).contains(&percent)
            {
                return Err(RuleError::new(format!(
                    "sample percentage {percent} is outside 0-100"
                ))
                .under("0"));
            }
            Ok(Node::Sample(nodes.into_boxed_slice()))
        }
        "in" => {
            let mut nodes = compile_list(arg_list(args), cx, depth)?;
            if let [_, Node::Json(list)] = nodes.as_slice()
                && let Value::Array(items) = &**list
                && items.len() >= IN_SET_MIN_LEN
                && items.iter().all(Value::is_string)
            {
                let set = items
                    .iter()
                    .filter_map(|item| item.as_str().map(Box::from))
                    .collect();
                nodes.truncate(1);
                if let Some(needle) = nodes.pop() {
                    return Ok(Node::InSet(Box::new(InSetNode { needle, set })));
                }
            }
            Ok(Node::Op(Op::In, nodes.into_boxed_slice()))
        }
        _ => {
            let op = Op::from_name(name)
                .ok_or_else(|| RuleError::new(format!("unknown operator '{name}'")))?;
            let nodes = compile_list(arg_list(args), cx, depth)?;
            Ok(Node::Op(op, nodes.into_boxed_slice()))
        }
    }
}

fn compile_ref<'d>(
    args: &'d Value,
    cx: &mut CompileCx<'d>,
    depth: usize,
) -> Result<Node, RuleError> {
    let Value::String(name) = args else {
        return Err(RuleError::new("$ref must name an evaluator with a string"));
    };
    let (key, rule) = cx
        .evaluators
        .and_then(|evaluators| evaluators.get_key_value(name.as_str()))
        .ok_or_else(|| RuleError::new(format!("$ref to unknown evaluator '{name}'")))?;
    if cx.ref_stack.contains(&key.as_str()) {
        return Err(RuleError::new(format!(
            "$ref cycle: evaluator '{name}' refers back to itself"
        )));
    }
    cx.ref_stack.push(key.as_str());
    let node = compile(rule, cx, depth + 1);
    cx.ref_stack.pop();
    node.map_err(|e| RuleError {
        pointer: e.pointer,
        message: format!("in evaluator '{name}': {}", e.message),
    })
}

fn compile_var<'d>(
    args: &'d Value,
    cx: &mut CompileCx<'d>,
    depth: usize,
) -> Result<Node, RuleError> {
    let list = arg_list(args);
    let (path_value, default) = match list {
        [] => (None, None),
        [path] => (Some(path), None),
        [path, default, ..] => (Some(path), Some(default)),
    };
    let default = match default {
        Some(d) => Some(compile(d, cx, depth + 1).map_err(|e| e.under("1"))?),
        None => None,
    };
    let path = match path_value {
        None | Some(Value::Null) => VarPath::Static(Box::new([])),
        Some(Value::String(s)) => {
            if default.is_none() {
                match s.as_str() {
                    "$flagd.flagKey" => return Ok(Node::FlagKey),
                    "$flagd.timestamp" => return Ok(Node::Timestamp),
                    "targetingKey" => return Ok(Node::TargetingKey),
                    name if !name.is_empty() && !name.contains('.') => {
                        check_string(name, cx)?;
                        return Ok(Node::Attr(name.into()));
                    }
                    _ => {}
                }
            }
            check_string(s, cx)?;
            VarPath::Static(split_path(s))
        }
        Some(Value::Number(n)) => VarPath::Static(Box::new([n.to_string().into_boxed_str()])),
        Some(other) => VarPath::Dynamic(compile(other, cx, depth + 1).map_err(|e| e.under("0"))?),
    };
    Ok(Node::Var(Box::new(VarNode { path, default })))
}

pub(crate) fn split_path(path: &str) -> Box<[Box<str>]> {
    if path.is_empty() {
        return Box::new([]);
    }
    path.split('.').map(Box::from).collect()
}

/// What a rule is linked to: the flag it belongs to, as
/// [`link_flag`] needs it.
pub(crate) struct FlagLink<'f, V> {
    /// The flag's key (`fractional` hashes it first).
    pub(crate) key: &'f str,
    /// The flag's variants.
    pub(crate) variants: &'f [(Box<str>, V)],
    /// The `fractional` hashing the snapshot evaluates with.
    pub(crate) fractional: FractionalVersion,
}

/// Rewrites string literals in result positions (the rule itself, the branches
/// of `if`) that name a variant into [`Node::Variant`], and lets `fractional`
/// there hash the flag's key once, now, instead of on every evaluation.
pub(crate) fn link_flag<V>(node: &mut Node, flag: &FlagLink<'_, V>) {
    match node {
        Node::Str(s) => {
            if let Some(i) = flag.variants.iter().position(|(name, _)| **name == **s) {
                *node = Node::Variant(i);
            }
        }
        Node::Fractional(fractional) => fractional.link(flag),
        Node::Op(Op::If, args) => {
            let len = args.len();
            for (i, arg) in args.iter_mut().enumerate() {
                // Odd positions are branches; a trailing even one is the else.
                if i % 2 == 1 || (i == len - 1 && len % 2 == 1) {
                    link_flag(arg, flag);
                }
            }
        }
        _ => {}
    }
}
