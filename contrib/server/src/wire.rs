//! Every JSON body the server answers, as types: docs/PROTOCOL.md in code.

use serde::Serialize;
use serde_json::Value;

/// An API error: `{"error": "..."}`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody<'a> {
    /// What went wrong.
    pub error: &'a str,
    /// A refused document's problems.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problems: Option<Vec<ProblemItem>>,
    /// A `412`'s current document version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    /// A `412`'s current document ETag.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub etag: Option<&'a str>,
    /// A flag write's `412`: the flag's current ETag.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flag_etag: Option<&'a str>,
}

impl<'a> ErrorBody<'a> {
    /// `{"error": message}`.
    pub fn new(error: &'a str) -> ErrorBody<'a> {
        ErrorBody {
            error,
            problems: None,
            version: None,
            etag: None,
            flag_etag: None,
        }
    }
}

/// One problem or lint: `{"flag"?, "pointer", "reason"}`.
#[derive(Debug, Clone, Serialize)]
pub struct ProblemItem {
    /// The flag concerned, if inside one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flag: Option<String>,
    /// JSON pointer to the value, from the document root.
    pub pointer: String,
    /// What is wrong.
    pub reason: String,
}

impl From<&flagyard_core::Problem> for ProblemItem {
    fn from(p: &flagyard_core::Problem) -> Self {
        ProblemItem {
            flag: p.flag.clone(),
            pointer: p.pointer.clone(),
            reason: p.message.clone(),
        }
    }
}

/// An accepted change: `{"version", "etag", "warnings"}`.
#[derive(Debug, Serialize)]
pub struct Written {
    /// The version now served.
    pub version: u64,
    /// Its strong ETag.
    pub etag: String,
    /// What the lints found in the document written (accepted anyway, as
    /// flagd would accept it).
    pub warnings: Vec<ProblemItem>,
}

/// A flag's preview: how a draft definition evaluates for a context, as OFREP
/// answers it, with the draft's problems (it would be refused) and lints.
#[derive(Debug, Serialize)]
pub struct Preview<'a> {
    /// The OFREP answer for the context.
    pub evaluation: OfrepEntry<'a>,
    /// What would refuse the draft.
    pub problems: Vec<ProblemItem>,
    /// What the lints find in it.
    pub warnings: Vec<ProblemItem>,
}

/// An accepted pancake operation: `{"ok": true}`.
#[derive(Debug, Serialize)]
pub struct Done {
    /// Always `true`.
    pub ok: bool,
}

/// A cleared override group: `{"ok": true, "cleared": N}`.
#[derive(Debug, Serialize)]
pub struct Cleared {
    /// Always `true`.
    pub ok: bool,
    /// How many overrides were removed.
    pub cleared: usize,
}

/// Every switch, flag and sample (flask-pancake's state) and the extension name.
#[derive(Debug, Serialize)]
pub struct PancakeListing {
    /// Switches, flags, samples and unreadable keys.
    #[serde(flatten)]
    pub state: flagyard_storage::pancake::PancakeState,
    /// The flask-pancake extension name.
    pub extension: String,
}

/// A page of history: `{"history": [...]}`, newest first.
#[derive(Debug, Serialize)]
pub struct HistoryPage {
    /// The entries.
    pub history: Vec<HistoryItem>,
}

/// One history entry.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryItem {
    /// The version the change produced.
    pub version: u64,
    /// When, in milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// Who.
    pub actor: String,
    /// What (`put-document`, `set-flag`, ...).
    pub action: String,
    /// On what (a flag key, a switch name, ...).
    pub detail: String,
    /// Which environment (document history).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// What changed: `[{"flag"|"evaluator"|"field": name, "before", "after"}]`
    /// (document history written since diffs are recorded).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<Value>,
}

impl From<flagyard_storage::HistoryEntry> for HistoryItem {
    fn from(h: flagyard_storage::HistoryEntry) -> Self {
        HistoryItem {
            version: h.version,
            at_ms: h.at_ms,
            actor: h.actor,
            action: h.action,
            detail: h.detail,
            environment: None,
            diff: serde_json::from_str(&h.diff).ok(),
        }
    }
}

impl FromIterator<flagyard_storage::HistoryEntry> for HistoryPage {
    fn from_iter<I: IntoIterator<Item = flagyard_storage::HistoryEntry>>(entries: I) -> Self {
        HistoryPage {
            history: entries.into_iter().map(HistoryItem::from).collect(),
        }
    }
}

/// OFREP: one flag's evaluation.
#[derive(Debug, Serialize)]
pub struct OfrepFlag<'a> {
    /// The flag key.
    pub key: &'a str,
    /// The value; absent to defer to the caller's code default (OFREP ADR 6).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<&'a flagyard_core::FlagValue>,
    /// Why (`STATIC`, `TARGETING_MATCH`, ...).
    pub reason: &'static str,
    /// The variant; always present (null when none): some OFREP clients
    /// index it unconditionally.
    pub variant: Option<&'a str>,
    /// The flag's metadata.
    pub metadata: &'a flagyard_core::FlagMetadata,
}

/// OFREP: an evaluation error (`key` absent for request-level errors).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OfrepError<'a> {
    /// The flag key, for flag-level errors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<&'a str>,
    /// The OFREP error code (`FLAG_NOT_FOUND`, `INVALID_CONTEXT`, ...); absent
    /// for authentication and rate-limit errors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<&'a str>,
    /// What went wrong.
    pub error_details: &'a str,
}

/// OFREP: one entry of a bulk answer, a value or an error.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum OfrepEntry<'a> {
    /// An evaluation.
    Flag(OfrepFlag<'a>),
    /// A flag-level error.
    Error(OfrepError<'a>),
}

/// OFREP: the bulk answer, `{"flags": [...], "eventStreams": [...]}`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OfrepBulk<F> {
    /// Every flag's entry ([`OfrepEntry`]), sorted by key: any sequence,
    /// so the server can evaluate each flag as it is written.
    pub flags: F,
    /// Where to hear that the flags changed (OFREP ADR-0008).
    pub event_streams: [OfrepEventStream; 1],
}

/// OFREP ADR-0008: a change-notification stream, an SSE endpoint on this
/// server (`origin` left out: the client's OFREP base URL's).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OfrepEventStream {
    /// Always `sse`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// `{"requestUri": "/ofrep/v1/changes?channel=…"}`.
    pub endpoint: OfrepEndpoint,
    /// Seconds a hidden client waits before closing the stream.
    pub inactivity_delay_sec: u32,
}

/// OFREP ADR-0008: the path and query of an event stream.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OfrepEndpoint {
    /// Path and query, starting with `/`.
    pub request_uri: String,
}

/// OFREP ADR-0008: an event's data, `{"type": "refetchEvaluation", "etag": …}`.
#[derive(Debug, Serialize)]
pub struct OfrepChange<'a> {
    /// Always `refetchEvaluation`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The document's ETag (the client sends it back as `flagConfigEtag`).
    pub etag: &'a str,
}

/// `GET /readyz` when ready: `{"status": "ready", "version": N}`.
#[derive(Debug, Serialize)]
pub struct Ready {
    /// Always `ready`.
    pub status: &'static str,
    /// The version being served.
    pub version: u64,
}

/// Who the admin token belongs to: `GET /v1/admin/whoami`.
#[derive(Debug, Serialize)]
pub struct WhoAmI {
    /// The token's name (the actor in history).
    pub name: String,
    /// Its role.
    pub role: crate::credentials::Role,
    /// The environments an editor may change (empty: every one).
    pub environments: Vec<String>,
}

/// One environment: `GET /v1/admin/environments`.
#[derive(Debug, Serialize)]
pub struct EnvironmentItem {
    /// Its name.
    pub name: String,
    /// The version served.
    pub version: u64,
    /// Its strong ETag.
    pub etag: String,
    /// How many flags its document holds.
    pub flags: usize,
}

/// Every environment, by name.
#[derive(Debug, Serialize)]
pub struct EnvironmentList {
    /// The environments.
    pub environments: Vec<EnvironmentItem>,
}

/// A created environment: `POST /v1/admin/environments`.
#[derive(Debug, Serialize)]
pub struct EnvironmentCreated {
    /// The environment.
    #[serde(flatten)]
    pub environment: EnvironmentItem,
    /// `false` when it existed already.
    pub created: bool,
}

/// Every credential, declared and stored: `GET /v1/admin/credentials`.
#[derive(Debug, Serialize)]
pub struct CredentialList {
    /// The credentials (never their tokens).
    pub credentials: Vec<crate::credentials::CredentialView>,
}

/// A created or rotated credential, with its token (shown this once).
#[derive(Debug, Serialize)]
pub struct CredentialIssued {
    /// The credential.
    pub credential: crate::credentials::CredentialView,
    /// The token: `Authorization: Bearer <token>`.
    pub token: String,
}

/// A promotion: the target's new version and what was copied.
#[derive(Debug, Serialize)]
pub struct Promoted {
    /// The target environment's version.
    pub version: u64,
    /// Its strong ETag.
    pub etag: String,
    /// The source environment's version, recorded in its history.
    #[serde(rename = "sourceVersion")]
    pub source_version: u64,
    /// The flags copied.
    pub flags: Vec<String>,
}
