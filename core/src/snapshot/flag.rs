//! One compiled flag.

use std::sync::Arc;

use crate::logic::Node;
use crate::resolution::{FlagMetadata, Reason};
use crate::value::{FlagValue, ValueKind};

/// One compiled flag.
#[derive(Debug)]
pub struct CompiledFlag {
    pub(super) key: Box<str>,
    pub(super) enabled: bool,
    pub(super) variants: Box<[(Box<str>, FlagValue)]>,
    pub(super) default_variant: Option<usize>,
    pub(super) targeting: Targeting,
    /// The reason a targeting match reports: SPLIT for rules that use `sample`.
    pub(super) match_reason: Reason,
    pub(super) metadata: FlagMetadata,
    pub(super) kind: Option<ValueKind>,
    /// Set when the flag's definition is invalid: every evaluation answers PARSE_ERROR.
    pub(super) broken: Option<Arc<str>>,
    /// Hash of everything that decides this flag's answers (its definition, the
    /// set metadata, and the evaluators when it uses `$ref`).
    pub(super) fingerprint: u64,
    /// [`served_identity`](crate::served_identity) of each variant, in the
    /// variants' order, then of no variant (the code default).
    pub(super) identities: Box<[u64]>,
}

#[derive(Debug)]
pub(super) enum Targeting {
    None,
    Rule(Node),
    Invalid(Arc<str>),
}

impl CompiledFlag {
    /// The flag key.
    pub fn key(&self) -> &str {
        &self.key
    }
    /// Whether the flag's state is `ENABLED`.
    pub fn enabled(&self) -> bool {
        self.enabled
    }
    /// The variant values by name, in document order.
    pub fn variants(&self) -> impl Iterator<Item = (&str, &FlagValue)> {
        self.variants.iter().map(|(k, v)| (&**k, v))
    }
    /// The default variant's name, if any.
    pub fn default_variant(&self) -> Option<&str> {
        self.default_variant.map(|i| &*self.variants[i].0)
    }
    /// The variants' common type (`None` for a broken flag).
    pub fn kind(&self) -> Option<ValueKind> {
        self.kind
    }
    /// Whether the flag has a targeting rule.
    pub fn has_targeting(&self) -> bool {
        !matches!(self.targeting, Targeting::None)
    }
    /// The merged metadata.
    pub fn metadata(&self) -> &FlagMetadata {
        &self.metadata
    }
    /// A hash of everything that decides this flag's answers; equal fingerprints
    /// mean the flag did not change between two documents.
    pub fn fingerprint(&self) -> u64 {
        self.fingerprint
    }

    #[inline]
    pub(super) fn variant_index(&self, name: &str) -> Option<usize> {
        // A name produced by a linked literal is the variant's own string:
        // found by address, without comparing bytes.
        let by_address = self
            .variants
            .iter()
            .position(|(k, _)| std::ptr::eq(k.as_ptr(), name.as_ptr()) && k.len() == name.len());
        by_address.or_else(|| self.variants.iter().position(|(k, _)| &**k == name))
    }
}
