//! Evaluation contexts: what targeting rules read.
//!
//! The evaluator reads a context through the small [`Context`] trait, so callers
//! can evaluate against their own context type (the `flagyard` crate implements it
//! for OpenFeature's `EvaluationContext`) without copying it per call.

use serde_json::{Map, Value};

/// The context attribute holding the user agent (SignaKit's name), which a
/// provider's bot filtering reads ([`Context::user_agent`]).
pub const USER_AGENT_ATTRIBUTE: &str = "$userAgent";

/// A borrowed view of one context attribute.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AttrValue<'a> {
    /// JSON `null`.
    Null,
    /// A boolean.
    Bool(bool),
    /// A number (JsonLogic numbers are IEEE doubles).
    Number(f64),
    /// A string.
    Str(&'a str),
    /// Any JSON value, including arrays and objects that rules may descend into.
    Json(&'a Value),
}

/// What the evaluator needs from an evaluation context.
///
/// # Example
/// ```
/// use flagyard_core::{AttrValue, Context};
///
/// struct Tenant { id: String, plan: &'static str }
///
/// impl Context for Tenant {
///     fn targeting_key(&self) -> Option<&str> { Some(&self.id) }
///     fn attribute(&self, name: &str) -> Option<AttrValue<'_>> {
///         (name == "plan").then_some(AttrValue::Str(self.plan))
///     }
/// }
/// ```
pub trait Context {
    /// The targeting key, if the context has one.
    fn targeting_key(&self) -> Option<&str>;
    /// One top-level attribute by name; `None` when absent.
    fn attribute(&self, name: &str) -> Option<AttrValue<'_>>;
    /// A top-level attribute that is a string, borrowed (what `starts_with`
    /// and `ends_with` read); `None` when absent or not a string. Override it
    /// when a context can answer without building an [`AttrValue`].
    #[inline]
    fn attribute_str(&self, name: &str) -> Option<&str> {
        match self.attribute(name)? {
            AttrValue::Str(s) => Some(s),
            AttrValue::Json(Value::String(s)) => Some(s),
            _ => None,
        }
    }
    /// The [`USER_AGENT_ATTRIBUTE`] if it is a string: what bot filtering
    /// reads on every recorded evaluation, and usually absent. Override it
    /// when a context can tell that faster than a lookup.
    #[inline]
    fn user_agent(&self) -> Option<&str> {
        self.attribute_str(USER_AGENT_ATTRIBUTE)
    }
}

/// A simple owned context: a targeting key plus JSON attributes.
///
/// # Example
/// ```
/// use flagyard_core::EvaluationContext;
///
/// let ctx = EvaluationContext::new()
///     .with_targeting_key("user-42")
///     .with_attribute("email", "ada@example.com");
/// assert_eq!(ctx.targeting_key.as_deref(), Some("user-42"));
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EvaluationContext {
    /// The targeting key (`targetingKey`).
    pub targeting_key: Option<String>,
    /// The other attributes.
    pub attributes: Map<String, Value>,
}

impl EvaluationContext {
    /// An empty context.
    pub fn new() -> Self {
        Self::default()
    }

    crate::setters! {
        /// Sets the targeting key.
        with_targeting_key(key: impl Into<String>) => targeting_key = Some(key.into());
    }

    /// Adds one attribute.
    pub fn with_attribute(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.attributes.insert(name.into(), value.into());
        self
    }

    /// Builds a context from a JSON object; a string `targetingKey` member becomes
    /// the targeting key. Anything but an object (or `null`) is refused.
    pub fn from_json(value: Value) -> Result<Self, crate::DocumentError> {
        match value {
            Value::Null => Ok(Self::default()),
            Value::Object(mut attributes) => {
                let targeting_key = match attributes.remove("targetingKey") {
                    Some(Value::String(s)) => Some(s),
                    Some(other) => {
                        // Keep a non-string targetingKey visible to rules, as flagd does.
                        attributes.insert("targetingKey".into(), other);
                        None
                    }
                    None => None,
                };
                Ok(Self {
                    targeting_key,
                    attributes,
                })
            }
            other => Err(crate::DocumentError::NotAnObject {
                what: "evaluation context",
                found: json_kind(&other),
            }),
        }
    }
}

impl Context for EvaluationContext {
    fn targeting_key(&self) -> Option<&str> {
        self.targeting_key.as_deref()
    }

    fn attribute(&self, name: &str) -> Option<AttrValue<'_>> {
        self.attributes.get(name).map(AttrValue::from_json)
    }
    #[inline]
    fn attribute_str(&self, name: &str) -> Option<&str> {
        self.attributes.get(name)?.as_str()
    }
    /// A few attributes are scanned with `==`, which compares lengths before
    /// bytes, so the usual answer (absent) costs no string comparison; the
    /// map's ordered search compares bytes at every step.
    #[inline]
    fn user_agent(&self) -> Option<&str> {
        if self.attributes.len() <= 8 {
            return self
                .attributes
                .iter()
                .find(|(name, _)| *name == USER_AGENT_ATTRIBUTE)
                .and_then(|(_, value)| value.as_str());
        }
        self.attribute_str(USER_AGENT_ATTRIBUTE)
    }
}

impl<'a> AttrValue<'a> {
    /// Views a JSON value; scalars become their own variants.
    pub fn from_json(value: &'a Value) -> AttrValue<'a> {
        match value {
            Value::Null => AttrValue::Null,
            Value::Bool(b) => AttrValue::Bool(*b),
            Value::Number(n) => AttrValue::Number(n.as_f64().unwrap_or(f64::NAN)),
            Value::String(s) => AttrValue::Str(s),
            Value::Array(_) | Value::Object(_) => AttrValue::Json(value),
        }
    }
}

/// The empty context.
impl Context for () {
    fn targeting_key(&self) -> Option<&str> {
        None
    }
    fn attribute(&self, _name: &str) -> Option<AttrValue<'_>> {
        None
    }
}

pub(crate) fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
