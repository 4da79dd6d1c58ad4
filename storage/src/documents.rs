//! The versioned document and its history, as every backend stores them.

/// The current document and its version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDocument {
    /// Increases by one with every accepted change.
    pub version: u64,
    /// The document (JSON text).
    pub body: String,
}

/// One change to write: the new document and who made it, for the history.
///
/// # Example
/// ```
/// use flagyard_storage::Change;
///
/// let change = Change::new(r#"{"flags": {}}"#, "ada", "put-document", "");
/// assert_eq!(change.actor, "ada");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The new document (JSON text).
    pub body: String,
    /// Who (the admin API's actor, `seed`, `cache`, ...).
    pub actor: String,
    /// What kind of change (`put-document`, `set-flag`, `delete-flag`, `seed`).
    pub action: String,
    /// Details, such as the flag key.
    pub detail: String,
    /// What changed, as JSON text (the server's diff: the flags and other
    /// parts it touched, before and after); empty when not recorded.
    pub diff: String,
}

impl Change {
    /// A change of the document to `body`.
    pub fn new(
        body: impl Into<String>,
        actor: impl Into<String>,
        action: impl Into<String>,
        detail: impl Into<String>,
    ) -> Change {
        Change {
            body: body.into(),
            actor: actor.into(),
            action: action.into(),
            detail: detail.into(),
            diff: String::new(),
        }
    }

    flagyard_core::setters! {
        /// The same change with `diff` (JSON text) recorded beside it.
        with_diff(diff: impl Into<String>) => diff = diff.into();
    }
}

/// One accepted change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    /// The version the change produced.
    pub version: u64,
    /// When (Unix milliseconds).
    pub at_ms: u64,
    /// Who (the admin API's actor, `seed`, `cache`, ...).
    pub actor: String,
    /// What kind of change (`put-document`, `set-flag`, `delete-flag`, `seed`).
    pub action: String,
    /// Details, such as the flag key.
    pub detail: String,
    /// What changed, as JSON text (see [`Change::diff`]); empty for entries
    /// written without one.
    pub diff: String,
}

/// How many history entries a document log keeps by default (SQLite and
/// Redis alike); older entries, and the bodies they hold, are dropped.
pub const DEFAULT_HISTORY_KEEP: usize = 1000;

/// The environment a server without environments serves, and the one a
/// database made before environments existed migrates to.
pub const DEFAULT_ENVIRONMENT: &str = "default";

/// A valid environment name: 1 to 64 characters of `a-z`, `0-9`, `-` and `_`,
/// starting with a letter or digit (it appears in URL paths and Redis keys).
///
/// # Example
/// ```
/// use flagyard_storage::EnvironmentName;
///
/// let staging: EnvironmentName = "staging".parse().unwrap();
/// assert_eq!(staging.as_str(), "staging");
/// assert!("Prod env".parse::<EnvironmentName>().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EnvironmentName(String);

/// A name that cannot be an environment's, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("environment name {name:?}: {reason}")]
#[non_exhaustive]
pub struct InvalidEnvironmentName {
    /// The name refused.
    pub name: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl EnvironmentName {
    /// The [`DEFAULT_ENVIRONMENT`].
    pub fn default_environment() -> EnvironmentName {
        EnvironmentName(DEFAULT_ENVIRONMENT.to_string())
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for EnvironmentName {
    type Err = InvalidEnvironmentName;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        let refuse = |reason| {
            Err(InvalidEnvironmentName {
                name: name.to_string(),
                reason,
            })
        };
        if name.is_empty() || name.len() > 64 {
            return refuse("must be 1 to 64 characters");
        }
        if !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        {
            return refuse("only a-z, 0-9, '-' and '_' are allowed");
        }
        if !name.as_bytes()[0].is_ascii_alphanumeric() {
            return refuse("must start with a letter or a digit");
        }
        Ok(EnvironmentName(name.to_string()))
    }
}

impl std::fmt::Display for EnvironmentName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Maps keyed by name are looked up with a plain `&str` (no parsing, no
/// allocation): the name's order and hash are its string's.
impl std::borrow::Borrow<str> for EnvironmentName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for EnvironmentName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}
