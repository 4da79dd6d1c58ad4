//! An in-memory store.

use std::sync::{Arc, Mutex, PoisonError};

use flagyard_core::{Store, StoreError};

/// Keeps the last document in memory. Clones share the same slot, so a test can
/// hand one clone to a provider and inspect the other.
///
/// # Example
/// ```
/// use flagyard_core::Store;
/// use flagyard_storage::MemoryStore;
///
/// let store = MemoryStore::with_document(r#"{"flags": {}}"#);
/// assert_eq!(store.load().unwrap().as_deref(), Some(r#"{"flags": {}}"#));
/// ```
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    slot: Arc<Mutex<Option<String>>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// A store that already holds a document.
    pub fn with_document(document: impl Into<String>) -> Self {
        MemoryStore {
            slot: Arc::new(Mutex::new(Some(document.into()))),
        }
    }

    /// The document held now.
    pub fn document(&self) -> Option<String> {
        self.slot
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl Store for MemoryStore {
    fn describe(&self) -> String {
        "memory".into()
    }

    fn load(&self) -> Result<Option<String>, StoreError> {
        Ok(self.document())
    }

    fn save(&self, document: &str) -> Result<(), StoreError> {
        *self.slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(document.to_string());
        Ok(())
    }

    fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }
}
