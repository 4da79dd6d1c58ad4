//! [`Follow`]: what every stream of documents follows — its environment's
//! changes, until the server stops or the credential it was opened with is
//! revoked. SSE, WebSocket and gRPC's `SyncFlags` and `EventStream` use it.

use std::sync::Arc;

use tokio::sync::broadcast::error::RecvError;

use crate::access::ReadAccess;
use crate::environment::Environment;
use crate::metrics::{Connected, Protocol};
use crate::published::Published;
use crate::state::AppState;

/// The next document to send, or `None` when the server stops. A subscriber
/// that fell behind gets the newest document (intermediate ones are superseded).
pub(crate) async fn next_document(follow: &mut Follow) -> Option<Arc<Published>> {
    loop {
        tokio::select! {
            received = follow.rx.recv() => match received {
                Ok(published) => {
                    follow.state.metrics.delivered(published.at.elapsed());
                    return Some(published);
                }
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
    /// Counted in `/metrics` while it lives.
    _connected: Connected,
}

impl Follow {
    pub(crate) fn new(state: Arc<AppState>, read: ReadAccess, protocol: Protocol) -> Follow {
        Follow {
            _connected: state.metrics.stream(protocol),
            rx: read.environment.subscribe(),
            shutdown: state.shutdown.clone(),
            revocations: state.credentials.watch_revocations(),
            environment: read.environment,
            credential: read.credential.map(|p| p.id.clone()),
            state,
        }
    }
}

/// The environment's document now, then each newer version, until the server
/// stops or the credential is revoked; each with whether it is the first.
/// What SSE, `SyncFlags` and `EventStream` send.
pub(crate) fn documents(
    follow: Follow,
) -> impl futures_util::Stream<Item = (Arc<Published>, bool)> + Send {
    let first = follow.environment.current();
    futures_util::stream::unfold(
        (follow, Some(first), None::<u64>),
        |(mut follow, pending, last)| async move {
            if follow.state.stopping() {
                return None;
            }
            let published = match pending {
                Some(p) => p,
                None => loop {
                    let p = next_document(&mut follow).await?;
                    if last.is_none_or(|last| p.version > last) {
                        break p;
                    }
                },
            };
            let version = published.version;
            Some(((published, last.is_none()), (follow, None, Some(version))))
        },
    )
}
