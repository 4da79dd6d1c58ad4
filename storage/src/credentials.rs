//! [`StoredCredential`]: an SDK key or admin token as the flag server keeps
//! it — hashed, never the token itself.

/// An SDK key (reads one environment) or an admin token (a named role), as
/// stored: the SHA-256 of the token, never the token.
///
/// Kept beside the documents: in the SQLite file's `credentials` table, or
/// in Redis's `prefix:credentials` hash (shared by every server, changes
/// announced on `prefix:credentials:changes`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct StoredCredential {
    /// Stable identifier (`key_…`, `tok_…`), kept across rotations.
    pub id: String,
    /// The admin token's name (the actor in history), or the SDK key's label.
    pub name: String,
    /// `sdk` or `admin`.
    pub kind: String,
    /// An admin token's role (`viewer`, `editor`, `admin`); empty for keys.
    #[serde(default)]
    pub role: String,
    /// An SDK key's one environment, or the environments an editor may
    /// change (empty: every environment).
    #[serde(default)]
    pub environments: Vec<String>,
    /// Lower-case hex SHA-256 of the token.
    pub sha256: String,
    /// When it was created (Unix milliseconds).
    pub created_at_ms: u64,
    /// When it was revoked, if it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at_ms: Option<u64>,
}

impl StoredCredential {
    /// A credential with these fields, not revoked.
    pub fn new(
        id: impl Into<String>,
        name: impl Into<String>,
        kind: impl Into<String>,
        role: impl Into<String>,
        environments: Vec<String>,
        sha256: impl Into<String>,
        created_at_ms: u64,
    ) -> StoredCredential {
        StoredCredential {
            id: id.into(),
            name: name.into(),
            kind: kind.into(),
            role: role.into(),
            environments,
            sha256: sha256.into(),
            created_at_ms,
            revoked_at_ms: None,
        }
    }
}
