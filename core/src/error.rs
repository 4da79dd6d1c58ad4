//! Errors and problems found in flag documents.

use std::fmt;

/// Why a whole document was rejected. The last good document stays in use.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum DocumentError {
    /// The text is not JSON.
    #[error("not valid JSON at line {line}, column {column}: {message}")]
    Json {
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// What serde_json reported.
        message: String,
    },
    /// The text is larger than the configured limit.
    #[error("document is {size} bytes, over the {limit}-byte limit")]
    TooLarge {
        /// The document's size in bytes.
        size: usize,
        /// The limit in bytes.
        limit: usize,
    },
    /// The document (or another value that must be an object) is not a JSON object.
    #[error("{what} must be a JSON object, found {found}")]
    NotAnObject {
        /// What was expected to be an object.
        what: &'static str,
        /// What was found instead.
        found: &'static str,
    },
    /// The document has no `flags` member.
    #[error("document has no \"flags\" object")]
    MissingFlags,
    /// `flags` is not an object keyed by flag key.
    #[error(
        "\"flags\" must be an object keyed by flag key, found {found} (the array form is only valid in documents whose $schema is flagd.json)"
    )]
    FlagsNotObject {
        /// What was found instead.
        found: &'static str,
    },
}

impl DocumentError {
    pub(crate) fn from_json(err: &serde_json::Error) -> Self {
        let message = err.to_string();
        // serde_json appends " at line L column C"; keep only the reason.
        let message = match message.rfind(" at line ") {
            Some(i) => message[..i].to_string(),
            None => message,
        };
        let message = if message == "recursion limit exceeded" {
            "nested deeper than 128 levels".to_string()
        } else {
            message
        };
        DocumentError::Json {
            line: err.line(),
            column: err.column(),
            message,
        }
    }
}

/// A problem in one part of a document that did not stop the rest from loading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The flag concerned, if the problem is inside a flag.
    pub flag: Option<String>,
    /// JSON pointer (RFC 6901) to the offending value, from the document root.
    pub pointer: String,
    /// What is wrong.
    pub message: String,
}

impl Problem {
    /// Several problems as one line, `; `-separated (for logs and refusals).
    pub fn join(problems: &[Problem]) -> String {
        let list: Vec<String> = problems.iter().map(ToString::to_string).collect();
        list.join("; ")
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.flag {
            Some(flag) => write!(f, "flag '{flag}' at {}: {}", self.pointer, self.message),
            None => write!(f, "at {}: {}", self.pointer, self.message),
        }
    }
}

/// Escapes one JSON-pointer segment (borrowed when nothing needs escaping).
pub(crate) fn pointer_segment(segment: &str) -> std::borrow::Cow<'_, str> {
    if segment.contains(['~', '/']) {
        std::borrow::Cow::Owned(segment.replace('~', "~0").replace('/', "~1"))
    } else {
        std::borrow::Cow::Borrowed(segment)
    }
}
