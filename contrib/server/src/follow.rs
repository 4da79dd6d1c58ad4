//! [`Follow`]: what every stream of documents follows — its environment's
//! changes, until the server stops or the credential it was opened with is
//! revoked. SSE, WebSocket and gRPC's `SyncFlags` and `EventStream` use it.

use std::sync::Arc;

use tokio::sync::broadcast::error::RecvError;

use crate::access::ReadAccess;
use crate::environment::Environment;
use crate::published::Published;
use crate::state::AppState;

/// The next document to send, or `None` when the server stops. A subscriber
/// that fell behind gets the newest document (intermediate ones are superseded).
pub(crate) async fn next_document(follow: &mut Follow) -> Option<Arc<Published>> {
    loop {
        tokio::select! {
            received = follow.rx.recv() => match received {
                Ok(published) => return Some(published),
                Err(RecvError::Lagged(_)) => return Some(follow.environment.current()),
                Err(RecvError::Closed) => return None,
            },
            changed = follow.shutdown.changed() => {
                if changed.is_err() || *follow.shutdown.borrow() {
                    return None;
                }
            }
            changed = follow.revocations.changed() => {
                if changed.is_err() {
                    return None;
                }
                if let Some(id) = &follow.credential
                    && !follow.state.credentials.is_valid(id)
                {
                    tracing::info!(credential = %id, "stream closed: its credential was revoked");
                    return None;
                }
            }
        }
    }
}

/// What a stream follows: its environment's changes, until the server
/// stops or the credential it was opened with is revoked.
pub(crate) struct Follow {
    pub(crate) state: Arc<AppState>,
    pub(crate) environment: Arc<Environment>,
    pub(crate) credential: Option<String>,
    pub(crate) rx: tokio::sync::broadcast::Receiver<Arc<Published>>,
    pub(crate) shutdown: tokio::sync::watch::Receiver<bool>,
    pub(crate) revocations: tokio::sync::watch::Receiver<u64>,
}

impl Follow {
    pub(crate) fn new(state: Arc<AppState>, read: ReadAccess) -> Follow {
        Follow {
            rx: read.environment.subscribe(),
            shutdown: state.shutdown.clone(),
            revocations: state.credentials.watch_revocations(),
            environment: read.environment,
            credential: read.credential,
            state,
        }
    }
}
