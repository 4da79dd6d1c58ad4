//! Server configuration.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// How a [`Server`](crate::Server) runs.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Where to listen (default `127.0.0.1:8013`).
    pub listen: SocketAddr,
    /// Where flagd's gRPC services listen (`FlagSyncService` and the
    /// evaluation `Service`, one port); `None` (the default): not served.
    pub grpc_listen: Option<SocketAddr>,
    /// The SQLite database holding the document and its history (when no
    /// `redis_url` is set).
    pub db_path: PathBuf,
    /// Keep the document in Redis instead (`redis://host:port/db`), shared by
    /// every server pointed at it; changes fan out through pub/sub.
    pub redis_url: Option<String>,
    /// Key prefix in Redis (default `flagyard`).
    pub redis_prefix: String,
    /// History entries kept, in SQLite as in Redis (default 1,000); older
    /// entries and the document bodies they hold are dropped on each write.
    pub history_keep: usize,
    /// A document to seed an empty `default` environment with.
    pub seed_file: Option<PathBuf>,
    /// Environments served besides `default` (more can be added through the
    /// admin API; those the store holds are always served).
    pub environments: Vec<EnvironmentConfig>,
    /// A token with the `admin` role, named `admin` (`--admin-token`).
    pub admin_token: Option<String>,
    /// An SDK key of the `default` environment (`--sdk-key`). Once any SDK
    /// key exists, reads (`/v1/flags`, streams, OFREP) need one.
    pub sdk_key: Option<String>,
    /// SDK keys and admin tokens the configuration declares (hashed).
    pub credentials: Vec<crate::credentials::DeclaredCredential>,
    /// Interval of SSE heartbeat comments and WebSocket pings (default 15 s).
    pub heartbeat: Duration,
    /// OFREP requests allowed per second (all clients together); `None`: no limit.
    pub ofrep_rate_limit: Option<u32>,
    /// Largest document accepted by the admin API (default 5 MiB).
    pub max_document_bytes: usize,
    /// The `fractional` hashing the server evaluates with (OFREP, flagd's
    /// evaluation RPCs, the admin page): v2, flagd's today (the default), or
    /// v3, the accepted ADR that flagd's in-process engines are moving to —
    /// choose the one the in-process clients reading `SyncFlags` use, so
    /// both kinds of client put a user in the same bucket.
    pub fractional: flagyard_core::FractionalVersion,
    /// Origins a browser may open `/v1/ws` from besides the server's own
    /// (`https://app.example.com`; `*` allows any). A request without an
    /// `Origin` (not from a browser) is not checked.
    pub allowed_origins: Vec<String>,
    /// Browser origins (`https://app.example.com`; `*`: any) that may call the
    /// read endpoints (`/v1/flags`, `/v1/stream`, OFREP) from another origin:
    /// CORS answers for them; empty (the default): no CORS headers.
    pub cors_origins: Vec<String>,
    /// Host names (with the port, if not the default) requests must name in
    /// `Host`; empty: any (the default). Set it to refuse DNS rebinding.
    pub allowed_hosts: Vec<String>,
    /// Open connections at most (default 10,000); one more is answered `503`.
    pub max_connections: usize,
    /// Time for a request's headers to arrive, and for an idle keep-alive
    /// connection to start its next request (default 10 s).
    pub header_timeout: Duration,
    /// Time for each read of a request body (default 10 s).
    pub body_timeout: Duration,
    /// How long a graceful shutdown waits for open requests (default 5 s).
    pub shutdown_deadline: Duration,
    /// The Redis holding flask-pancake's switches, flags and samples, managed
    /// through `/v1/admin/pancake` and the `/admin` page; `None`: not offered.
    pub pancake_url: Option<String>,
    /// The flask-pancake extension name (default `pancake`).
    pub pancake_extension: String,
    /// The SQLite file the collector (`POST /v1/events`) keeps events in;
    /// `None`: beside `db_path`, named `<stem>-events.sqlite`.
    pub events_db_path: Option<PathBuf>,
    /// How long collected events are kept (default 30 days, 10 million events).
    pub events_retention: flagyard_storage::Retention,
    /// Where collected events are forwarded (JSON-lines files, webhooks).
    pub forward: Vec<crate::Forward>,
}

impl ServerConfig {
    /// The defaults, with the database at `db_path`.
    pub fn new(db_path: impl Into<PathBuf>) -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8013)),
            grpc_listen: None,
            db_path: db_path.into(),
            redis_url: None,
            redis_prefix: "flagyard".into(),
            history_keep: flagyard_storage::DEFAULT_HISTORY_KEEP,
            seed_file: None,
            environments: Vec::new(),
            admin_token: None,
            sdk_key: None,
            credentials: Vec::new(),
            heartbeat: Duration::from_secs(15),
            ofrep_rate_limit: None,
            max_document_bytes: 5 * 1024 * 1024,
            fractional: flagyard_core::FractionalVersion::V2,
            allowed_origins: Vec::new(),
            cors_origins: Vec::new(),
            allowed_hosts: Vec::new(),
            max_connections: 10_000,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            shutdown_deadline: Duration::from_secs(5),
            pancake_url: None,
            pancake_extension: "pancake".into(),
            events_db_path: None,
            events_retention: flagyard_storage::Retention::default(),
            forward: Vec::new(),
        }
    }
}

/// An environment the configuration declares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvironmentConfig {
    /// Its name.
    pub name: flagyard_storage::EnvironmentName,
    /// A document to seed it with while it is empty.
    pub seed_file: Option<PathBuf>,
}

impl ServerConfig {
    /// Where collected events are kept: `events_db_path`, else beside
    /// `db_path` (`server.sqlite` → `server-events.sqlite`).
    pub fn events_path(&self) -> PathBuf {
        if let Some(path) = &self.events_db_path {
            return path.clone();
        }
        let stem = self
            .db_path
            .file_stem()
            .map_or_else(|| "server".into(), |s| s.to_string_lossy().into_owned());
        self.db_path.with_file_name(format!("{stem}-events.sqlite"))
    }

    /// Every declared credential: `credentials`, and `admin_token` and
    /// `sdk_key` when set.
    pub fn declared_credentials(&self) -> Vec<crate::credentials::DeclaredCredential> {
        use crate::credentials::{DeclaredCredential, Role};
        let mut declared = self.credentials.clone();
        if let Some(token) = &self.admin_token {
            declared.push(DeclaredCredential::admin_token("admin", token, Role::Admin));
        }
        if let Some(key) = &self.sdk_key {
            declared.push(DeclaredCredential::sdk_key(
                "sdk-key",
                key,
                flagyard_storage::EnvironmentName::default_environment(),
            ));
        }
        declared
    }

    /// The largest request body read: a document at the limit plus room for
    /// formatting (64 KiB). The document itself is then held to
    /// `max_document_bytes`.
    pub fn max_body_bytes(&self) -> usize {
        self.max_document_bytes.saturating_add(64 * 1024)
    }
}

/// `$XDG_DATA_HOME/flagyard/server.sqlite` (else `~/.local/share/flagyard/...`).
pub fn default_db_path() -> PathBuf {
    flagyard_storage::data_directory().join("server.sqlite")
}
