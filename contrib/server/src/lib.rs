//! # flagyard-server
//!
//! The flag server behind `flagyard serve`: holds one flag document in SQLite
//! (created on first run) and publishes it over `GET /v1/flags` (strong ETag),
//! Server-Sent Events (`/v1/stream`), WebSocket (`/v1/ws`) and OFREP, with an
//! admin API behind a bearer token. The wire protocol is in `docs/PROTOCOL.md`.
//!
//! ```no_run
//! use flagyard_server::{Server, ServerConfig};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let mut config = ServerConfig::new("flags.sqlite");
//! config.admin_token = Some("s3cret".into());
//! let server = Server::bind(config).await?;
//! println!("listening on {}", server.local_addr());
//! server.run(async { let _ = tokio::signal::ctrl_c().await; }).await?;
//! # Ok(()) }
//! ```

mod access;
mod body;
mod config;
mod connections;
mod credentials;
mod diff;
mod environment;
mod error;
mod events;
mod follow;
mod forward;
mod grpc;
mod grpc_threads;
mod limiter;
mod log;
mod metrics;
mod precondition;
mod published;
mod results;
mod routes;
mod state;
mod statistics;
mod strict;
mod validation;
pub mod wire;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

pub use access::{
    AdminAccess, EditAccess, Editor, InEnvironment, MinimumRole, Owner, OwnerAccess, ReadAccess,
    RoleAccess, SwitchAccess, Viewer,
};
pub use body::ApiJson;
pub use config::{EnvironmentConfig, ServerConfig, default_db_path};
pub use credentials::{
    CredentialStore, CredentialView, Credentials, DeclaredCredential, Grant, NewCredential,
    Principal, Role, sha256_hex,
};
pub use environment::Environment;
pub use error::{ApiError, ServerError};
pub use events::{Batch, EventLog};
pub use forward::Forward;
pub use log::{DocumentLog, LogFuture};
pub use published::Published;
pub use routes::router;
pub use state::AppState;
pub use validation::Invalid;

/// A bound, not yet running server.
#[derive(Debug)]
pub struct Server {
    listener: tokio::net::TcpListener,
    /// flagd's gRPC services, when `grpc_listen` is set.
    grpc: Option<tokio::net::TcpListener>,
    state: Arc<AppState>,
    stop: tokio::sync::watch::Sender<bool>,
}

impl Server {
    /// Opens the database (seeding or initializing it) and binds the address.
    pub async fn bind(config: ServerConfig) -> Result<Server, ServerError> {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let addr = config.listen;
        let state = AppState::open(config, stopped).await?;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| ServerError::Bind { addr, source })?;
        let grpc = match state.config.grpc_listen {
            Some(addr) => Some(
                tokio::net::TcpListener::bind(addr)
                    .await
                    .map_err(|source| ServerError::Bind { addr, source })?,
            ),
            None => None,
        };
        Ok(Server {
            listener,
            grpc,
            state,
            stop,
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// The address flagd's gRPC services are bound to, when they are served.
    pub fn grpc_addr(&self) -> Option<SocketAddr> {
        self.grpc.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// The shared state (the current document, for embedding).
    pub fn state(&self) -> Arc<AppState> {
        Arc::clone(&self.state)
    }

    /// Serves until `shutdown` completes, then closes the streams and waits for
    /// in-flight requests. The database is consistent at every point (each
    /// change is one transaction).
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let stop = self.stop;
        let app = router(Arc::clone(&self.state));
        if let Some(docs) = &self.state.shared {
            tokio::spawn(follow_redis(Arc::clone(&self.state), docs.clone()));
        }
        tokio::spawn(prune_events(Arc::clone(&self.state)));
        tokio::spawn(tally_events(Arc::clone(&self.state)));
        let mut grpc_task = None;
        if let Some(listener) = self.grpc {
            let shutdown = self.state.shutdown.clone();
            let router = grpc::router(Arc::clone(&self.state));
            let addr = listener.local_addr()?;
            tracing::info!(%addr, "flagd gRPC services listening (FlagSyncService, evaluation Service)");
            let threads = grpc_threads::GrpcThreads::start(&router, &shutdown)?;
            grpc_task = Some(tokio::spawn(threads.serve(listener, shutdown)));
        }
        for target in self.state.config.forward.clone() {
            tokio::spawn(forward::run(Arc::clone(&self.state), target));
        }
        tracing::info!(addr = %self.listener.local_addr()?, "flagyard server listening");
        let config = &self.state.config;
        let limits = connections::ConnectionLimits {
            max_connections: config.max_connections,
            header_timeout: config.header_timeout,
            body_timeout: config.body_timeout,
            shutdown_deadline: config.shutdown_deadline,
        };
        let deadline = limits.shutdown_deadline;
        let served = connections::serve(self.listener, app, limits, async move {
            shutdown.await;
            tracing::info!("shutting down: closing streams");
            let _ = stop.send(true);
        })
        .await;
        // The gRPC side stopped with the same signal: wait for it too (its
        // streams end at once), so the port is free when `run` returns.
        if let Some(task) = grpc_task {
            let abort = task.abort_handle();
            if tokio::time::timeout(deadline, task).await.is_err() {
                tracing::warn!("the gRPC server did not stop within the shutdown deadline");
                abort.abort();
            }
        }
        served
    }
}

/// Deletes the events the retention no longer keeps: at start and every
/// minute, until the server stops.
async fn prune_events(state: Arc<AppState>) {
    let mut shutdown = state.shutdown.clone();
    let mut every = tokio::time::interval(std::time::Duration::from_secs(60));
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = shutdown.changed() => return,
        }
        match state.events.prune(state.config.events_retention).await {
            Ok(0) => {}
            Ok(deleted) => tracing::info!(deleted, "events past their retention deleted"),
            Err(e) => tracing::warn!(error = %e, "cannot prune the collected events"),
        }
    }
}

/// Reads new events into the experiments' tallies as they arrive (and every
/// second, for the events other servers on a shared Redis keep), until the
/// server stops.
async fn tally_events(state: Arc<AppState>) {
    let mut shutdown = state.shutdown.clone();
    loop {
        if let Err(e) = routes::catch_up(&state).await {
            tracing::warn!(error = %e, "cannot read the events into the experiments' tallies");
        }
        tokio::select! {
            () = state.events_added.notified() => {}
            () = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// Follows the other servers' writes through Redis pub/sub (with a periodic
/// version check in case a message was missed) and serves them locally;
/// reconnects with the sources' backoff until the server stops.
async fn follow_redis(state: Arc<AppState>, docs: flagyard_storage::RedisDocuments) {
    let mut shutdown = state.shutdown.clone();
    let follower = RedisFollower { state, docs };
    let report = |e: flagyard_core::ProviderError| {
        tracing::warn!(error = %e, "redis fan-out interrupted; reconnecting");
    };
    tokio::select! {
        () = flagyard::keep_connected(flagyard::ReconnectPolicy::default(), report, follower) => {}
        _ = shutdown.changed() => {}
    }
}

/// The Redis follower's connections.
struct RedisFollower {
    state: Arc<AppState>,
    docs: flagyard_storage::RedisDocuments,
}

impl RedisFollower {
    /// Brings everything this server serves up to the shared store: new
    /// environments, each environment's newest version, the credentials.
    async fn catch_up(&self) -> Result<(), ServerError> {
        self.state.discover_environments().await?;
        for env in self.state.environments() {
            self.state.refresh(&env).await?;
        }
        self.state.credentials.reload().await?;
        Ok(())
    }

    async fn connection(
        &self,
        backoff: &mut flagyard::Backoff,
    ) -> Result<std::convert::Infallible, ServerError> {
        use futures_util::StreamExt;
        let mut pubsub = self.docs.subscribe_everything().await?;
        self.catch_up().await?;
        self.state.set_store_reachable(true);
        backoff.connected();
        let credentials = self.docs.credentials_channel();
        let mut messages = pubsub.on_message();
        let mut check = tokio::time::interval(std::time::Duration::from_secs(5));
        loop {
            tokio::select! {
                message = messages.next() => {
                    let Some(message) = message else {
                        return Err(ServerError::FanOutClosed);
                    };
                    let channel = message.get_channel_name();
                    if channel == credentials {
                        self.state.credentials.reload().await?;
                        continue;
                    }
                    let env = self
                        .state
                        .environments()
                        .into_iter()
                        .find(|env| env.shared.as_ref().is_some_and(|s| s.changes_channel() == channel));
                    match env {
                        Some(env) => self.state.refresh(&env).await?,
                        // An environment another server just made.
                        None => self.catch_up().await?,
                    }
                }
                _ = check.tick() => self.catch_up().await?,
            }
        }
    }
}

impl flagyard::Session for RedisFollower {
    async fn run(&mut self, backoff: &mut flagyard::Backoff) -> flagyard::SessionEnd {
        let Err(why) = self.connection(backoff).await;
        self.state.set_store_reachable(false);
        let error = flagyard_core::ProviderError::new(
            flagyard_core::ErrorOrigin::Store,
            true,
            format!("redis fan-out: {why}"),
        );
        flagyard::SessionEnd::Lost(error.with_source(why))
    }
}

/// Completes on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
