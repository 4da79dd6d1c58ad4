//! Evaluation contexts: what targeting rules read.
//!
//! The evaluator reads a context through the small [`Context`] trait, so callers
//! can evaluate against their own context type (the `flagyard` crate implements it
//! for OpenFeature's `EvaluationContext`) without copying it per call.

use std::hash::BuildHasher;

use arrayvec::ArrayString;
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
    /// [`targeting_key_hash`] of the targeting key: what exposure
    /// de-duplication keys on for every recorded evaluation. Override it when
    /// a context can keep it computed (as [`EvaluationContext`] does).
    #[inline]
    fn targeting_key_hash(&self) -> u64 {
        targeting_key_hash(self.targeting_key())
    }
}

/// A simple owned context: a targeting key plus JSON attributes.
///
/// The fields are private so that what a recording read asks of every
/// context is computed once, when the context is built, and never goes stale:
/// the targeting key's hash ([`Context::targeting_key_hash`], what exposure
/// de-duplication keys on) and whether a user agent is present (what bot
/// filtering asks). Both are read from the context itself, without following
/// a pointer, as LaunchDarkly's SDKs precompute a context's keys.
///
/// # Example
/// ```
/// use flagyard_core::EvaluationContext;
///
/// let ctx = EvaluationContext::new()
///     .with_targeting_key("user-42")
///     .with_attribute("email", "ada@example.com");
/// assert_eq!(ctx.targeting_key(), Some("user-42"));
/// assert_eq!(ctx.attributes()["email"], "ada@example.com");
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EvaluationContext {
    targeting_key: Option<TargetingKey>,
    attributes: Map<String, Value>,
    has_user_agent: bool,
}

/// A targeting key with its [`targeting_key_hash`], computed when it is set.
#[derive(Debug, Clone, PartialEq)]
struct TargetingKey {
    text: KeyText,
    hash: u64,
}

/// Keys up to this many bytes are kept inside the context.
const INLINE_KEY: usize = 44;

/// A targeting key's text: inside the context when short (user ids, UUIDs,
/// most e-mail addresses), so recording an event reads the context's own
/// cache lines and follows no pointer to a cold allocation (with 10,000
/// users, `track()` went from ~180 to ~105 ns; docs/BENCHMARKS.md, run 9).
#[derive(Debug, Clone, PartialEq)]
enum KeyText {
    Inline(ArrayString<INLINE_KEY>),
    Heap(String),
}

impl TargetingKey {
    fn new(text: String) -> TargetingKey {
        let hash = targeting_key_hash(Some(&text));
        let text = match ArrayString::from(&text) {
            Ok(inline) => KeyText::Inline(inline),
            Err(_) => KeyText::Heap(text),
        };
        TargetingKey { text, hash }
    }

    #[inline]
    fn as_str(&self) -> &str {
        match &self.text {
            KeyText::Inline(text) => text,
            KeyText::Heap(text) => text,
        }
    }
}

/// The hash of a targeting key that exposure de-duplication keys on
/// ([`Context::targeting_key_hash`]): the same on every thread and every run;
/// no key hashes to 0.
#[inline]
pub fn targeting_key_hash(key: Option<&str>) -> u64 {
    match key {
        Some(key) => crate::resolution::FIXED_HASHER.hash_one(key.as_bytes()) | 1,
        None => 0,
    }
}

impl EvaluationContext {
    /// An empty context.
    pub fn new() -> Self {
        Self::default()
    }

    crate::setters! {
        /// Sets the targeting key.
        with_targeting_key(key: impl Into<String>) => targeting_key = Some(TargetingKey::new(key.into()));
    }

    /// Adds one attribute.
    pub fn with_attribute(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.insert_attribute(name, value);
        self
    }

    /// The targeting key (`targetingKey`), if any.
    #[inline]
    pub fn targeting_key(&self) -> Option<&str> {
        self.targeting_key.as_ref().map(TargetingKey::as_str)
    }

    /// Sets or clears the targeting key.
    pub fn set_targeting_key(&mut self, key: Option<String>) {
        self.targeting_key = key.map(TargetingKey::new);
    }

    /// The other attributes.
    #[inline]
    pub fn attributes(&self) -> &Map<String, Value> {
        &self.attributes
    }

    /// Adds or replaces one attribute; returns the value it replaced.
    pub fn insert_attribute(
        &mut self,
        name: impl Into<String>,
        value: impl Into<Value>,
    ) -> Option<Value> {
        let name = name.into();
        let user_agent = name == USER_AGENT_ATTRIBUTE;
        let old = self.attributes.insert(name, value.into());
        self.has_user_agent |= user_agent;
        old
    }

    /// Removes one attribute; returns its value.
    pub fn remove_attribute(&mut self, name: &str) -> Option<Value> {
        let old = self.attributes.remove(name);
        if name == USER_AGENT_ATTRIBUTE {
            self.has_user_agent = false;
        }
        old
    }

    /// Builds a context from a JSON object; a string `targetingKey` member becomes
    /// the targeting key. Anything but an object (or `null`) is refused.
    pub fn from_json(value: Value) -> Result<Self, crate::DocumentError> {
        match value {
            Value::Null => Ok(Self::default()),
            Value::Object(mut attributes) => {
                let targeting_key = match attributes.remove("targetingKey") {
                    Some(Value::String(s)) => Some(TargetingKey::new(s)),
                    Some(other) => {
                        // Keep a non-string targetingKey visible to rules, as flagd does.
                        attributes.insert("targetingKey".into(), other);
                        None
                    }
                    None => None,
                };
                Ok(Self {
                    targeting_key,
                    has_user_agent: attributes.contains_key(USER_AGENT_ATTRIBUTE),
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
    #[inline]
    fn targeting_key(&self) -> Option<&str> {
        EvaluationContext::targeting_key(self)
    }

    fn attribute(&self, name: &str) -> Option<AttrValue<'_>> {
        self.attributes.get(name).map(AttrValue::from_json)
    }
    #[inline]
    fn attribute_str(&self, name: &str) -> Option<&str> {
        self.attributes.get(name)?.as_str()
    }
    /// Known when the context was built: a context without a user agent
    /// answers without reading its attributes.
    #[inline]
    fn user_agent(&self) -> Option<&str> {
        if !self.has_user_agent {
            return None;
        }
        self.attribute_str(USER_AGENT_ATTRIBUTE)
    }
    /// Computed when the key was set.
    #[inline]
    fn targeting_key_hash(&self) -> u64 {
        self.targeting_key.as_ref().map_or(0, |k| k.hash)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A context answering through the trait's default methods only.
    struct Plain<'a>(&'a EvaluationContext);

    impl Context for Plain<'_> {
        fn targeting_key(&self) -> Option<&str> {
            self.0.targeting_key()
        }
        fn attribute(&self, name: &str) -> Option<AttrValue<'_>> {
            self.0.attribute(name)
        }
    }

    /// What an `EvaluationContext` keeps computed must be what the trait's
    /// defaults compute from its fields, however it was built or changed.
    fn assert_consistent(ctx: &EvaluationContext) {
        let plain = Plain(ctx);
        assert_eq!(
            ctx.targeting_key_hash(),
            plain.targeting_key_hash(),
            "{ctx:?}"
        );
        assert_eq!(Context::user_agent(ctx), plain.user_agent(), "{ctx:?}");
    }

    #[test]
    fn the_kept_key_hash_and_user_agent_follow_every_change() {
        let mut ctx = EvaluationContext::new();
        assert_consistent(&ctx);
        assert_eq!(ctx.targeting_key_hash(), 0, "no key hashes to 0");
        ctx = ctx
            .with_targeting_key("user-1")
            .with_attribute("email", "a@b.c");
        assert_consistent(&ctx);
        assert_ne!(ctx.targeting_key_hash(), 0);
        assert_ne!(
            ctx.targeting_key_hash(),
            EvaluationContext::new()
                .with_targeting_key("user-2")
                .targeting_key_hash()
        );
        ctx = ctx.with_attribute(USER_AGENT_ATTRIBUTE, "Googlebot/2.1");
        assert_consistent(&ctx);
        assert_eq!(Context::user_agent(&ctx), Some("Googlebot/2.1"));
        assert_eq!(
            ctx.insert_attribute(USER_AGENT_ATTRIBUTE, "Firefox"),
            Some(Value::from("Googlebot/2.1"))
        );
        assert_eq!(Context::user_agent(&ctx), Some("Firefox"));
        assert_eq!(
            ctx.remove_attribute(USER_AGENT_ATTRIBUTE),
            Some(Value::from("Firefox"))
        );
        assert_consistent(&ctx);
        assert_eq!(Context::user_agent(&ctx), None);
        // A user agent that is not a string is no user agent, as before.
        ctx.insert_attribute(USER_AGENT_ATTRIBUTE, 7);
        assert_consistent(&ctx);
        ctx.set_targeting_key(Some("user-3".into()));
        assert_consistent(&ctx);
        assert_eq!(ctx.targeting_key(), Some("user-3"));
        ctx.set_targeting_key(None);
        assert_consistent(&ctx);
        assert_eq!(ctx.targeting_key_hash(), 0);
    }

    #[test]
    fn short_and_long_targeting_keys_read_back_whole() {
        let uuid = "0b7e5c2a-1f3d-4c8e-9a6b-2d4f6e8a0c1e";
        for key in [
            "",
            "u",
            uuid,
            &"k".repeat(INLINE_KEY),
            &"k".repeat(INLINE_KEY + 1),
            &"é".repeat(INLINE_KEY / 2 + 1),
            "ünïcödé-user",
        ] {
            let ctx = EvaluationContext::new().with_targeting_key(key);
            assert_eq!(ctx.targeting_key(), Some(key));
            let inline = matches!(
                ctx.targeting_key.as_ref().map(|k| &k.text),
                Some(KeyText::Inline(_))
            );
            assert_eq!(inline, key.len() <= INLINE_KEY, "{key:?}");
            assert_consistent(&ctx);
            assert_eq!(ctx.clone(), ctx);
        }
    }

    #[test]
    fn a_context_from_json_keeps_its_key_hash_and_user_agent() {
        let ctx = EvaluationContext::from_json(serde_json::json!({
            "targetingKey": "user-9",
            USER_AGENT_ATTRIBUTE: "curl/8.0",
        }))
        .unwrap();
        assert_consistent(&ctx);
        assert_eq!(ctx.targeting_key(), Some("user-9"));
        assert_eq!(Context::user_agent(&ctx), Some("curl/8.0"));
        assert_eq!(
            ctx,
            EvaluationContext::new()
                .with_targeting_key("user-9")
                .with_attribute(USER_AGENT_ATTRIBUTE, "curl/8.0")
        );
        let keyless = EvaluationContext::from_json(serde_json::json!({"targetingKey": 5})).unwrap();
        assert_consistent(&keyless);
        assert_eq!(keyless.attributes()["targetingKey"], 5);
    }
}
