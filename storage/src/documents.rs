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
        }
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
}

/// How many history entries a document log keeps by default (SQLite and
/// Redis alike); older entries, and the bodies they hold, are dropped.
pub const DEFAULT_HISTORY_KEEP: usize = 1000;
