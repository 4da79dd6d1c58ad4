//! [`Environment`]: one of the server's environments — its published
//! document, where that is kept, and the streams following it.

use std::sync::Arc;

use arc_swap::ArcSwap;
use flagyard_storage::{EnvironmentName, RedisDocuments};
use tokio::sync::broadcast;

use crate::log::DocumentLog;
use crate::published::Published;

/// One environment: its own document, version, history, ETag and streams.
#[derive(Debug)]
pub struct Environment {
    pub(crate) name: EnvironmentName,
    current: ArcSwap<Published>,
    pub(crate) log: Arc<dyn DocumentLog>,
    /// This environment in the shared Redis, whose announcements the server
    /// follows.
    pub(crate) shared: Option<RedisDocuments>,
    changes: broadcast::Sender<Arc<Published>>,
    /// Serializes this environment's writes.
    pub(crate) writes: tokio::sync::Mutex<()>,
}

impl Environment {
    pub(crate) fn new(
        log: Arc<dyn DocumentLog>,
        shared: Option<RedisDocuments>,
        published: Arc<Published>,
    ) -> Environment {
        Environment {
            name: log.name().clone(),
            current: ArcSwap::new(published),
            log,
            shared,
            changes: broadcast::channel(64).0,
            writes: tokio::sync::Mutex::new(()),
        }
    }

    /// The environment's name.
    pub fn name(&self) -> &EnvironmentName {
        &self.name
    }

    /// The document being served.
    pub fn current(&self) -> Arc<Published> {
        self.current.load_full()
    }

    /// Every document published from now on.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Arc<Published>> {
        self.changes.subscribe()
    }

    /// Serves `published` and sends it to the streams.
    pub(crate) fn publish(&self, published: Arc<Published>) {
        self.current.store(Arc::clone(&published));
        let _ = self.changes.send(published);
    }
}
