//! `flagyard serve`: the flag server.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use flagyard_server::{EnvironmentConfig, Server, ServerConfig, default_db_path, shutdown_signal};

use crate::config_file::ConfigFile;

/// `flagyard serve` options.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// A configuration file (TOML): every option below as a key, and the
    /// environments, SDK keys and admin tokens (docs/CONFIGURATION.md).
    /// Flags and environment variables override it.
    #[arg(long, value_name = "FILE", env = "FLAGYARD_CONFIG")]
    config: Option<PathBuf>,
    /// Seed an empty `default` environment with this flag document.
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
    /// Key prefix in Redis [default: flagyard].
    #[arg(long)]
    redis_prefix: Option<String>,
    /// History entries kept per environment (older ones and their document
    /// bodies are dropped on each write) [default: 1000].
    #[arg(long)]
    history_keep: Option<usize>,
    /// Manage flask-pancake's switches, flags and samples in this Redis
    /// through the admin API and the /admin page.
    #[arg(long, value_name = "redis://…", env = "FLAGYARD_PANCAKE_REDIS")]
    pancake: Option<String>,
    /// The flask-pancake extension name [default: pancake].
    #[arg(long)]
    pancake_extension: Option<String>,
    /// Address to listen on [default: 127.0.0.1:8013].
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Also serve flagd's gRPC protocols here (`flagd.sync.v1.FlagSyncService`
    /// for in-process flagd providers, `flagd.evaluation.v1.Service` for RPC
    /// ones), for example 127.0.0.1:8015 [default: not served].
    #[arg(long, value_name = "ADDR")]
    grpc_listen: Option<SocketAddr>,
    /// A token with the admin role, named `admin` in history; without any
    /// admin token, writes are refused.
    #[arg(long, env = "FLAGYARD_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// An SDK key of the `default` environment; once any SDK key exists,
    /// reads need one (Authorization: Bearer or X-API-Key).
    #[arg(long, env = "FLAGYARD_SDK_KEY", hide_env_values = true)]
    sdk_key: Option<String>,
    /// Seconds between SSE heartbeats and WebSocket pings [default: 15].
    #[arg(long)]
    heartbeat: Option<u64>,
    /// OFREP requests per second for all clients together (default: unlimited).
    #[arg(long)]
    ofrep_rate_limit: Option<u32>,
    /// The `fractional` hashing the server evaluates with: v2 (flagd today)
    /// or v3 (the accepted ADR, which flagd's newer in-process engines use);
    /// match the in-process clients that read `SyncFlags` [default: v2].
    #[arg(long, value_name = "v2|v3")]
    fractional: Option<flagyard::core::FractionalVersion>,
    /// A browser origin allowed to open /v1/ws besides the server's own
    /// (repeatable; `*` allows any).
    #[arg(long = "allow-origin", value_name = "ORIGIN")]
    allow_origins: Vec<String>,
    /// A browser origin that may call the read endpoints (/v1/flags,
    /// /v1/stream, OFREP) from another site: CORS (repeatable; `*` allows
    /// any) [default: none].
    #[arg(long = "cors-origin", value_name = "ORIGIN")]
    cors_origins: Vec<String>,
    /// A `Host` requests must name (repeatable; with the port, as clients
    /// send it). Without any, every host is served; set it to refuse DNS
    /// rebinding.
    #[arg(long = "allow-host", value_name = "HOST[:PORT]")]
    allow_hosts: Vec<String>,
    /// Open connections at most; one more is answered 503 [default: 10000].
    #[arg(long)]
    max_connections: Option<usize>,
    /// Seconds for a request's headers (and an idle keep-alive connection's
    /// next request), and for each read of a request body [default: 10].
    #[arg(long)]
    request_timeout: Option<u64>,
    /// Seconds a shutdown (SIGINT/SIGTERM) waits for open requests
    /// [default: 5].
    #[arg(long)]
    shutdown_deadline: Option<u64>,
    /// The SQLite file collected events (`POST /v1/events`) are kept in;
    /// default beside --db, `<name>-events.sqlite`.
    #[arg(long, value_name = "FILE")]
    events_db: Option<std::path::PathBuf>,
    /// Days collected events are kept [default: 30].
    #[arg(long)]
    events_keep_days: Option<u64>,
    /// Collected events kept at most (the oldest are deleted first)
    /// [default: 10000000].
    #[arg(long)]
    events_max: Option<u64>,
    /// Also append every collected event to this file, one JSON object per
    /// line (resumes where it stopped after a restart).
    #[arg(long, value_name = "FILE")]
    events_jsonl: Option<std::path::PathBuf>,
    /// Also post collected events in batches to this URL, signed with
    /// --events-webhook-secret (X-Flagyard-Signature: sha256=HMAC).
    #[arg(long, value_name = "URL")]
    events_webhook: Option<String>,
    /// The webhook's HMAC-SHA256 key.
    #[arg(long, env = "FLAGYARD_EVENTS_WEBHOOK_SECRET", hide_env_values = true)]
    events_webhook_secret: Option<String>,
    /// Log lines as text (coloured only on a terminal) or one JSON object
    /// each [default: text].
    #[arg(long, value_enum)]
    log_format: Option<LogFormat>,
}

/// How `flagyard serve` writes its log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line (for log collectors).
    Json,
}

pub(crate) fn serve(args: ServeArgs) -> Result<ExitCode, String> {
    let file = match &args.config {
        Some(path) => ConfigFile::read(path)?,
        None => ConfigFile::default(),
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let log = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match args
        .log_format
        .or(file.log_format)
        .unwrap_or(LogFormat::Text)
    {
        LogFormat::Json => log.json().init(),
        // Colours only where a person reads them.
        LogFormat::Text => log
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
    }
    let config = settings(args, file)?;
    let runtime =
        tokio::runtime::Runtime::new().map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(async move {
        let store = match &config.redis_url {
            Some(url) => flagyard::storage::masked_url(url),
            None => config.db_path.display().to_string(),
        };
        let server = Server::bind(config).await.map_err(|e| e.to_string())?;
        let state = server.state();
        let writes = if state.credentials().any_admin() {
            "enabled"
        } else {
            "disabled (no --admin-token)"
        };
        let environments: Vec<String> = state
            .environments()
            .iter()
            .map(|env| {
                let served = env.current();
                format!(
                    "{}: {} flags at version {}",
                    env.name(),
                    served.snapshot.keys().len(),
                    served.version
                )
            })
            .collect();
        let addr = server.local_addr();
        let grpc = server
            .grpc_addr()
            .map_or_else(String::new, |a| format!("; flagd gRPC {a}"));
        eprintln!(
            "flagyard: serving http://{addr} (store {store}; {}; \
             admin writes {writes}; admin page http://{addr}/admin{grpc})",
            environments.join(", ")
        );
        server
            .run(shutdown_signal())
            .await
            .map_err(|e| e.to_string())?;
        eprintln!("flagyard: stopped");
        Ok(ExitCode::SUCCESS)
    })
}

/// The server's configuration: each option from the command line (or its
/// environment variable), else the file, else its default.
fn settings(args: ServeArgs, file: ConfigFile) -> Result<ServerConfig, String> {
    let credentials = file.credentials()?;
    let mut config = ServerConfig::new(args.db.or(file.db).unwrap_or_else(default_db_path));
    if let Some(store) = args.store.or(file.store) {
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
    }
    if let Some(prefix) = args.redis_prefix.or(file.redis_prefix) {
        config.redis_prefix = prefix;
    }
    if let Some(keep) = args.history_keep.or(file.history_keep) {
        config.history_keep = keep.max(1);
    }
    config.pancake_url = args.pancake.or(file.pancake);
    if let Some(extension) = args.pancake_extension.or(file.pancake_extension) {
        config.pancake_extension = extension;
    }
    if let Some(listen) = args.listen.or(file.listen) {
        config.listen = listen;
    }
    config.grpc_listen = args.grpc_listen.or(file.grpc_listen);
    config.seed_file = args.flags.or(file.flags);
    config.environments = file
        .environments
        .into_iter()
        .map(|e| EnvironmentConfig {
            name: e.name,
            seed_file: e.flags,
        })
        .collect();
    config.credentials = credentials;
    config.admin_token = args
        .admin_token
        .or(file.admin_token)
        .filter(|t| !t.is_empty());
    config.sdk_key = args.sdk_key.or(file.sdk_key).filter(|k| !k.is_empty());
    if let Some(seconds) = args.heartbeat.or(file.heartbeat) {
        config.heartbeat = Duration::from_secs(seconds.max(1));
    }
    config.ofrep_rate_limit = args.ofrep_rate_limit.or(file.ofrep_rate_limit);
    if let Some(version) = args.fractional.or(file.fractional) {
        config.fractional = version;
    }
    if let Some(max) = args.max_connections.or(file.max_connections) {
        config.max_connections = max;
    }
    // Repeatable flags replace the file's list when given.
    config.allowed_origins = if args.allow_origins.is_empty() {
        file.allow_origin.unwrap_or_default()
    } else {
        args.allow_origins
    };
    config.cors_origins = if args.cors_origins.is_empty() {
        file.cors_origin.unwrap_or_default()
    } else {
        args.cors_origins
    };
    config.allowed_hosts = if args.allow_hosts.is_empty() {
        file.allow_host.unwrap_or_default()
    } else {
        args.allow_hosts
    };
    if let Some(seconds) = args.request_timeout.or(file.request_timeout) {
        config.header_timeout = Duration::from_secs(seconds.max(1));
        config.body_timeout = Duration::from_secs(seconds.max(1));
    }
    if let Some(seconds) = args.shutdown_deadline.or(file.shutdown_deadline) {
        config.shutdown_deadline = Duration::from_secs(seconds);
    }
    config.events_db_path = args.events_db.or(file.events_db);
    if let Some(path) = args.events_jsonl.or(file.events_jsonl) {
        config
            .forward
            .push(flagyard_server::Forward::JsonLines(path));
    }
    match (
        args.events_webhook.or(file.events_webhook),
        args.events_webhook_secret.or(file.events_webhook_secret),
    ) {
        (Some(url), Some(secret)) => {
            reqwest::Url::parse(&url).map_err(|e| format!("--events-webhook {url:?}: {e}"))?;
            config
                .forward
                .push(flagyard_server::Forward::Webhook { url, secret });
        }
        (Some(_), None) => {
            return Err(
                "--events-webhook needs --events-webhook-secret (or events-webhook-secret in the file)"
                    .into(),
            );
        }
        _ => {}
    }
    let defaults = flagyard::storage::Retention::default();
    config.events_retention = flagyard::storage::Retention {
        max_age_ms: args
            .events_keep_days
            .or(file.events_keep_days)
            .map_or(defaults.max_age_ms, |days| {
                days.saturating_mul(24 * 3600 * 1000)
            }),
        max_events: args
            .events_max
            .or(file.events_max)
            .unwrap_or(defaults.max_events),
    };
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        serve: ServeArgs,
    }

    fn file(text: &str) -> ConfigFile {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("flagyard.toml");
        std::fs::write(&path, text).expect("write");
        ConfigFile::read(&path).expect("valid")
    }

    #[test]
    fn a_flag_wins_over_the_file_and_the_file_over_the_default() {
        let text = "listen = \"127.0.0.1:9001\"\nheartbeat = 7\nmax-connections = 50\n\
                    allow-origin = [\"https://a.example\"]\n";
        let args = Cli::parse_from([
            "serve",
            "--listen",
            "127.0.0.1:9002",
            "--allow-origin",
            "https://b.example",
        ])
        .serve;
        let config = settings(args, file(text)).expect("settings");
        assert_eq!(config.listen.port(), 9002, "the flag");
        assert_eq!(config.heartbeat, Duration::from_secs(7), "the file");
        assert_eq!(config.max_connections, 50, "the file");
        assert_eq!(
            config.allowed_origins,
            ["https://b.example"],
            "the flag's list replaces the file's"
        );
        assert_eq!(
            config.shutdown_deadline,
            Duration::from_secs(5),
            "the default"
        );
        let args = Cli::parse_from(["serve"]).serve;
        let config = settings(args, file(text)).expect("settings");
        assert_eq!(config.listen.port(), 9001);
        assert_eq!(config.allowed_origins, ["https://a.example"]);
    }
}
