//! [`Evaluator`]: how a compiled document turns a flag key and a context into
//! a resolution.

use crate::context::Context;
use crate::error::{DocumentError, Problem};
use crate::options::CompileOptions;
use crate::resolution::{Evaluation, Served};
use crate::snapshot::Snapshot;
use crate::value::FlagValue;

/// A compiled flag document that evaluates flags: what the provider runtime
/// serves reads from. The flagd evaluator ([`Snapshot`]) is the implementation
/// Flagyard ships; the runtime is generic over this trait (static dispatch, so
/// the read path pays nothing for it).
///
/// Evaluation is pure: a function of the compiled document, the flag key and the
/// context, never failing (problems are in the result) and never blocking.
pub trait Evaluator: Send + Sync + Sized + 'static {
    /// Compiles a document. Only a document that cannot be used at all is an
    /// `Err`; problems in single flags are listed by [`problems`](Self::problems).
    fn compile(document: &str, options: &CompileOptions) -> Result<Self, DocumentError>;
    /// Evaluates one flag.
    fn evaluate<C: Context + ?Sized>(&self, key: &str, ctx: &C) -> Evaluation<'_>;
    /// The value of the variant one flag serves, without the details (`None`:
    /// the code default applies) — what the getters use when no exposures are
    /// recorded. The default takes it from [`evaluate`](Self::evaluate);
    /// override it when the value alone is cheaper.
    #[inline]
    fn value<C: Context + ?Sized>(&self, key: &str, ctx: &C) -> Option<&FlagValue> {
        self.evaluate(key, ctx).value
    }
    /// The value, variant and reason one flag serves, without the error and
    /// the metadata — what the getters use when exposures are recorded. The
    /// default takes them from [`evaluate`](Self::evaluate).
    #[inline]
    fn served<C: Context + ?Sized>(&self, key: &str, ctx: &C) -> Served<'_> {
        let evaluation = self.evaluate(key, ctx);
        Served {
            value: evaluation.value,
            identity: crate::served_identity(key, evaluation.variant.as_deref()),
            variant: evaluation.variant,
            reason: evaluation.reason,
        }
    }
    /// The set a flag belongs to (flagd's `flagSetId` metadata, the flag's or
    /// the document's), for events. The default says none.
    fn flag_set_id(&self, key: &str) -> Option<&str> {
        let _ = key;
        None
    }
    /// Every flag key, sorted.
    fn flag_keys(&self) -> Vec<&str>;
    /// The keys of flags added, removed or changed since `previous`, sorted.
    fn changed_flags(&self, previous: &Self) -> Vec<String>;
    /// What was wrong in single flags when compiling (those flags answer `PARSE_ERROR`).
    fn problems(&self) -> &[Problem];
    /// The keys of flags whose definition or targeting is invalid (they answer
    /// `PARSE_ERROR`), sorted; the runtime keeps such a flag's last good definition.
    /// The default says none.
    fn broken_flags(&self) -> Vec<&str> {
        Vec::new()
    }
}

impl Evaluator for Snapshot {
    fn compile(document: &str, options: &CompileOptions) -> Result<Self, DocumentError> {
        Snapshot::parse_with(document, options)
    }
    #[inline]
    fn evaluate<C: Context + ?Sized>(&self, key: &str, ctx: &C) -> Evaluation<'_> {
        Snapshot::evaluate(self, key, ctx)
    }
    #[inline]
    fn value<C: Context + ?Sized>(&self, key: &str, ctx: &C) -> Option<&FlagValue> {
        Snapshot::value(self, key, ctx)
    }
    #[inline]
    fn served<C: Context + ?Sized>(&self, key: &str, ctx: &C) -> Served<'_> {
        Snapshot::served(self, key, ctx)
    }
    fn flag_set_id(&self, key: &str) -> Option<&str> {
        match self.flag(key)?.metadata().get("flagSetId")? {
            crate::resolution::MetadataValue::String(id) => Some(id),
            _ => None,
        }
    }
    fn flag_keys(&self) -> Vec<&str> {
        self.keys()
    }
    fn changed_flags(&self, previous: &Self) -> Vec<String> {
        Snapshot::changed_flags(self, previous)
    }
    fn problems(&self) -> &[Problem] {
        Snapshot::problems(self)
    }
    fn broken_flags(&self) -> Vec<&str> {
        Snapshot::broken_flags(self)
    }
}
