//! The versioned document and its history, as every backend stores them.

/// The current document and its version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDocument {
    /// Increases by one with every accepted change.
    pub version: u64,
    /// The document (JSON text).
    pub body: String,
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
