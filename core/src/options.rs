//! Compile options and limits.

use crate::logic::FractionalVersion;

/// Limits that protect compilation from hostile or accidental input.
///
/// Anything over a limit is refused with an error naming the limit; nothing
/// recurses without bound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest document text accepted, in bytes (default 5 MiB, DESIGN §4's payload cap).
    pub max_document_bytes: usize,
    /// Deepest nesting of a targeting rule (default 64).
    pub max_rule_depth: usize,
    /// Most nodes in one flag's rule after `$ref` inlining (default 100,000).
    pub max_rule_nodes: usize,
    /// Longest string inside a rule, in bytes (default 1 MiB).
    pub max_string_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_document_bytes: 5 * 1024 * 1024,
            max_rule_depth: 64,
            max_rule_nodes: 100_000,
            max_string_bytes: 1024 * 1024,
        }
    }
}

/// How a document is compiled into a [`Snapshot`](crate::Snapshot).
///
/// # Example
/// ```
/// use flagyard_core::{CompileOptions, FractionalVersion, Snapshot};
///
/// let options = CompileOptions::default().fractional(FractionalVersion::V3);
/// let snapshot = Snapshot::parse_with(r#"{"flags": {}}"#, &options).unwrap();
/// assert_eq!(snapshot.options().fractional, FractionalVersion::V3);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompileOptions {
    /// The `fractional` hashing (v2 by default).
    pub fractional: FractionalVersion,
    /// Size and depth limits.
    pub limits: Limits,
}

impl CompileOptions {
    crate::setters! {
        /// Sets the `fractional` hashing.
        fractional(version: FractionalVersion) => fractional = version;

        /// Sets the limits.
        limits(limits: Limits) => limits = limits;
    }
}
