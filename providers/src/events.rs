//! Provider status and events, with subscriptions that end when dropped.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};

/// Where a provider stands.
///
/// There is no `Fatal`: every source keeps retrying (a refused SDK key is
/// `Error` with a slow retry, since the key can be fixed on the server), so no
/// state is unrecoverable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProviderStatus {
    /// No document yet: reads answer the code default with `PROVIDER_NOT_READY`.
    NotReady,
    /// Serving a document, and its sources are healthy.
    Ready,
    /// Serving the last good document while its source is unavailable.
    Stale,
    /// No document and the source reported an error, or the source's
    /// credentials were refused (it keeps retrying).
    Error,
}

impl ProviderStatus {
    pub(crate) fn to_u8(self) -> u8 {
        self as u8
    }

    pub(crate) fn from_u8(v: u8) -> Self {
        match v {
            0 => ProviderStatus::NotReady,
            1 => ProviderStatus::Ready,
            2 => ProviderStatus::Stale,
            _ => ProviderStatus::Error,
        }
    }
}

/// What a provider tells its subscribers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderEvent {
    /// The first document is being served, or the source recovered.
    Ready,
    /// A new document changed exactly these flags (added, removed or changed), sorted.
    ConfigurationChanged {
        /// The keys.
        flags_changed: Vec<String>,
    },
    /// The source is unavailable; the last good document is still served.
    Stale {
        /// Why.
        message: String,
    },
    /// Something failed (a bad document, an unavailable source with nothing cached).
    Error {
        /// Why.
        message: String,
    },
}

type Handler = Arc<dyn Fn(&ProviderEvent) + Send + Sync>;

/// The subscribers of one provider.
#[derive(Default)]
pub(crate) struct EventBus {
    next_id: AtomicU64,
    handlers: Mutex<Vec<(u64, Handler)>>,
}

impl EventBus {
    pub(crate) fn add(self: &Arc<Self>, handler: Handler) -> Subscription {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.handlers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((id, handler));
        Subscription {
            bus: Arc::downgrade(self),
            id,
        }
    }

    /// Calls every handler; a panicking handler is logged and does not stop the others.
    pub(crate) fn emit(&self, event: &ProviderEvent) {
        let handlers: Vec<Handler> = self
            .handlers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(_, h)| Arc::clone(h))
            .collect();
        for handler in handlers {
            call(&handler, event);
        }
    }
}

pub(crate) fn call(handler: &Handler, event: &ProviderEvent) {
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handler(event)));
    if result.is_err() {
        tracing::error!(?event, "a flagyard event handler panicked");
    }
}

/// A subscription to a provider's events; dropping it unsubscribes.
#[must_use = "dropping a Subscription unsubscribes at once"]
pub struct Subscription {
    bus: Weak<EventBus>,
    id: u64,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("id", &self.id)
            .finish()
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Some(bus) = self.bus.upgrade() {
            bus.handlers
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .retain(|(id, _)| *id != self.id);
        }
    }
}
