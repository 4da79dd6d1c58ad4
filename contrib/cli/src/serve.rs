//! `flagyard serve`: the flag server.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use flagyard_server::{Server, ServerConfig, default_db_path, shutdown_signal};

/// `flagyard serve` options.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Seed an empty database with this flag document.
    #[arg(long)]
    flags: Option<PathBuf>,
    /// The SQLite database (default `$XDG_DATA_HOME/flagyard/server.sqlite`).
    #[arg(long, conflicts_with = "store")]
    db: Option<PathBuf>,
    /// Keep the document in Redis instead (`redis://host:port/db`): any number
    /// of servers pointed at the same Redis share it, and a change made on one
    /// reaches the clients of all. From the environment, a password in the
    /// URL stays out of `ps`.
    #[arg(
        long,
        value_name = "redis://…",
        env = "FLAGYARD_STORE",
        hide_env_values = true
    )]
    store: Option<String>,
    /// Key prefix in Redis.
    #[arg(long, default_value = "flagyard")]
    redis_prefix: String,
    /// History entries kept (older ones and their document bodies are
    /// dropped on each write).
    #[arg(long, default_value_t = flagyard::storage::DEFAULT_HISTORY_KEEP)]
    history_keep: usize,
    /// Manage flask-pancake's switches, flags and samples in this Redis
    /// through the admin API and the /admin page.
    #[arg(long, value_name = "redis://…", env = "FLAGYARD_PANCAKE_REDIS")]
    pancake: Option<String>,
    /// The flask-pancake extension name.
    #[arg(long, default_value = "pancake")]
    pancake_extension: String,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8013")]
    listen: SocketAddr,
    /// Bearer token for the admin API; without one, writes are refused.
    #[arg(long, env = "FLAGYARD_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// Require this key for reads (Authorization: Bearer or X-API-Key).
    #[arg(long, env = "FLAGYARD_SDK_KEY", hide_env_values = true)]
    sdk_key: Option<String>,
    /// Seconds between SSE heartbeats and WebSocket pings.
    #[arg(long, default_value_t = 15)]
    heartbeat: u64,
    /// OFREP requests per second for all clients together (default: unlimited).
    #[arg(long)]
    ofrep_rate_limit: Option<u32>,
    /// A browser origin allowed to open /v1/ws besides the server's own
    /// (repeatable; `*` allows any).
    #[arg(long = "allow-origin", value_name = "ORIGIN")]
    allow_origins: Vec<String>,
    /// A `Host` requests must name (repeatable; with the port, as clients
    /// send it). Without any, every host is served; set it to refuse DNS
    /// rebinding.
    #[arg(long = "allow-host", value_name = "HOST[:PORT]")]
    allow_hosts: Vec<String>,
    /// Open connections at most; one more is answered 503.
    #[arg(long, default_value_t = 10_000)]
    max_connections: usize,
    /// Seconds for a request's headers (and an idle keep-alive connection's
    /// next request), and for each read of a request body.
    #[arg(long, default_value_t = 10)]
    request_timeout: u64,
    /// Seconds a shutdown (SIGINT/SIGTERM) waits for open requests.
    #[arg(long, default_value_t = 5)]
    shutdown_deadline: u64,
    /// The SQLite file collected events (`POST /v1/events`) are kept in;
    /// default beside --db, `<name>-events.sqlite`.
    #[arg(long, value_name = "FILE")]
    events_db: Option<std::path::PathBuf>,
    /// Days collected events are kept.
    #[arg(long, default_value_t = 30)]
    events_keep_days: u64,
    /// Collected events kept at most (the oldest are deleted first).
    #[arg(long, default_value_t = 10_000_000)]
    events_max: u64,
    /// Also append every collected event to this file, one JSON object per
    /// line (resumes where it stopped after a restart).
    #[arg(long, value_name = "FILE")]
    events_jsonl: Option<std::path::PathBuf>,
    /// Also post collected events in batches to this URL, signed with
    /// --events-webhook-secret (X-Flagyard-Signature: sha256=HMAC).
    #[arg(long, value_name = "URL", requires = "events_webhook_secret")]
    events_webhook: Option<String>,
    /// The webhook's HMAC-SHA256 key.
    #[arg(long, env = "FLAGYARD_EVENTS_WEBHOOK_SECRET", hide_env_values = true)]
    events_webhook_secret: Option<String>,
    /// Log lines as text (coloured only on a terminal) or one JSON object each.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

/// How `flagyard serve` writes its log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line (for log collectors).
    Json,
}

pub(crate) fn serve(args: ServeArgs) -> Result<ExitCode, String> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let log = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match args.log_format {
        LogFormat::Json => log.json().init(),
        // Colours only where a person reads them.
        LogFormat::Text => log
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
    }
    let mut config = ServerConfig::new(args.db.unwrap_or_else(default_db_path));
    if let Some(store) = args.store {
        if !(store.starts_with("redis://")
            || store.starts_with("rediss://")
            || store.starts_with("redis+unix://"))
        {
            return Err(format!(
                "--store '{}': expected a redis:// URL (SQLite is the default; use --db)",
                flagyard::storage::masked_url(&store)
            ));
        }
        config.redis_url = Some(store);
        config.redis_prefix = args.redis_prefix;
    }
    config.history_keep = args.history_keep.max(1);
    config.pancake_url = args.pancake;
    config.pancake_extension = args.pancake_extension;
    config.listen = args.listen;
    config.seed_file = args.flags;
    config.admin_token = args.admin_token.filter(|t| !t.is_empty());
    config.sdk_key = args.sdk_key.filter(|k| !k.is_empty());
    config.heartbeat = Duration::from_secs(args.heartbeat.max(1));
    config.ofrep_rate_limit = args.ofrep_rate_limit;
    config.max_connections = args.max_connections;
    config.allowed_origins = args.allow_origins;
    config.allowed_hosts = args.allow_hosts;
    config.header_timeout = Duration::from_secs(args.request_timeout.max(1));
    config.body_timeout = Duration::from_secs(args.request_timeout.max(1));
    config.shutdown_deadline = Duration::from_secs(args.shutdown_deadline);
    config.events_db_path = args.events_db;
    if let Some(path) = args.events_jsonl {
        config
            .forward
            .push(flagyard_server::Forward::JsonLines(path));
    }
    if let (Some(url), Some(secret)) = (args.events_webhook, args.events_webhook_secret) {
        reqwest::Url::parse(&url).map_err(|e| format!("--events-webhook {url:?}: {e}"))?;
        config
            .forward
            .push(flagyard_server::Forward::Webhook { url, secret });
    }
    config.events_retention = flagyard::storage::Retention {
        max_age_ms: args.events_keep_days.saturating_mul(24 * 3600 * 1000),
        max_events: args.events_max,
    };
    let runtime =
        tokio::runtime::Runtime::new().map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(async move {
        let store = match &config.redis_url {
            Some(url) => flagyard::storage::masked_url(url),
            None => config.db_path.display().to_string(),
        };
        let writes = if config.admin_token.is_some() {
            "enabled"
        } else {
            "disabled (no --admin-token)"
        };
        let server = Server::bind(config).await.map_err(|e| e.to_string())?;
        let served = server.state().current();
        let addr = server.local_addr();
        eprintln!(
            "flagyard: serving http://{addr} (store {store}, {} flags at version {}, \
             admin writes {writes}; admin page http://{addr}/admin)",
            served.snapshot.keys().len(),
            served.version
        );
        server
            .run(shutdown_signal())
            .await
            .map_err(|e| e.to_string())?;
        eprintln!("flagyard: stopped");
        Ok(ExitCode::SUCCESS)
    })
}
