//! Owned resolution details, returned by the provider's `*_details` getters.

use flagyard_core::{ErrorCode, EvalError, FlagMetadata, Reason, Resolution};

/// Everything about one evaluation, owned (safe to keep after the document changes).
#[derive(Debug, Clone, PartialEq)]
pub struct Details<T> {
    /// The value (the code default when none was served).
    pub value: T,
    /// The variant served.
    pub variant: Option<String>,
    /// Why this value.
    pub reason: Reason,
    /// The error, if any.
    pub error: Option<EvalError>,
    /// The flag's metadata, merged with its flag set's.
    pub metadata: FlagMetadata,
}

impl<T> Details<T> {
    /// The error code, if any.
    pub fn error_code(&self) -> Option<ErrorCode> {
        self.error.as_ref().map(|e| e.code)
    }
}

impl<T> From<Resolution<'_, T>> for Details<T> {
    fn from(r: Resolution<'_, T>) -> Self {
        Details {
            value: r.value,
            variant: r.variant.map(str::to_string),
            reason: r.reason,
            error: r.error,
            metadata: r.metadata.clone(),
        }
    }
}
