//! `flagyard watch`: what an app sees from a source.

use std::io::Write;
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::{Duration, SystemTime};

use clap::Args;
use flagyard::core::{EvaluationContext, Source};
use flagyard::{
    FileSource, FlagyardProvider, PancakeSource, PollingSource, ProviderEvent, ProviderStatus,
    SseSource, WebSocketSource,
};
use serde_json::{Value, json};

/// `flagyard watch` options.
#[derive(Debug, Args)]
pub(crate) struct WatchArgs {
    /// `http(s)://…/v1/flags` (polling), `http(s)://…/v1/stream` (SSE),
    /// `ws(s)://…/v1/ws` (WebSocket), `file://PATH`, or
    /// `pancake:redis://HOST:PORT` (flask-pancake's switches, flags and samples).
    #[arg(long)]
    source: String,
    /// Send this SDK key.
    #[arg(long, env = "FLAGYARD_SDK_KEY", hide_env_values = true)]
    sdk_key: Option<String>,
    /// Polling interval in seconds.
    #[arg(long, default_value_t = 5)]
    interval: u64,
    /// The flask-pancake extension name (pancake sources).
    #[arg(long, default_value = "pancake")]
    extension: String,
    /// Turn Redis keyspace notifications on, so writes by flask-pancake or
    /// redis-cli are seen at once instead of at the next rescan (pancake sources).
    #[arg(long)]
    keyspace_events: bool,
    /// Stop after this many seconds (default: run until interrupted).
    #[arg(long)]
    seconds: Option<u64>,
}

fn source(args: &WatchArgs) -> Result<Box<dyn Source>, String> {
    let url = args.source.as_str();
    let key = args.sdk_key.clone();
    let built = |e: flagyard::BuildError| e.to_string();
    if let Some(redis) = url.strip_prefix("pancake:") {
        let source = PancakeSource::builder(redis)
            .extension(args.extension.clone())
            .enable_keyspace_events(args.keyspace_events)
            .build()
            .map_err(built)?;
        return Ok(Box::new(source));
    }
    if let Some(path) = url.strip_prefix("file://") {
        return Ok(Box::new(FileSource::new(path)));
    }
    if url.starts_with("ws://") || url.starts_with("wss://") {
        let mut s = WebSocketSource::builder(url);
        if let Some(k) = key {
            s = s.sdk_key(k);
        }
        return Ok(Box::new(s.build().map_err(built)?));
    }
    if url.starts_with("http://") || url.starts_with("https://") {
        if url.trim_end_matches('/').ends_with("/stream") {
            let mut s = SseSource::builder(url);
            if let Some(k) = key {
                s = s.sdk_key(k);
            }
            return Ok(Box::new(s.build().map_err(built)?));
        }
        let mut s = PollingSource::builder(url).interval(Duration::from_secs(args.interval.max(1)));
        if let Some(k) = key {
            s = s.sdk_key(k);
        }
        return Ok(Box::new(s.build().map_err(built)?));
    }
    Err(format!(
        "unsupported --source '{url}': use http(s)://, ws(s)://, file:// or pancake:redis://"
    ))
}

fn now() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

pub(crate) fn watch(args: WatchArgs) -> Result<ExitCode, String> {
    let source = source(&args)?;
    let runtime =
        tokio::runtime::Runtime::new().map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(async move {
        let (tx, rx) = mpsc::channel::<Value>();
        let stop = tx.clone();
        let errors = tx.clone();
        // Every error the provider reports is a line of its own; status lines
        // are printed only when the status really changes.
        let provider = FlagyardProvider::builder()
            .source(source)
            .preload(false)
            .on_error(move |e| {
                let _ = errors.send(json!({
                    "error": e.message(), "origin": format!("{:?}", e.origin()), "at": now()
                }));
            })
            .build()
            .map_err(|e| e.to_string())?;
        let handle = provider.clone();
        let printed = std::sync::Mutex::new(None::<ProviderStatus>);
        let _subscription = provider.subscribe(move |event| {
            let version = handle.document_version();
            let status = match event {
                ProviderEvent::Ready => Some(ProviderStatus::Ready),
                ProviderEvent::Stale { .. } => Some(ProviderStatus::Stale),
                ProviderEvent::Error { .. } => Some(handle.status()),
                ProviderEvent::ConfigurationChanged { .. } => None,
            };
            if let Some(status) = status {
                let mut printed = printed.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                if *printed == Some(status) {
                    // Not a transition (a rejected document while Ready):
                    // its message is already an error line.
                    return;
                }
                *printed = Some(status);
            }
            let line = match event {
                ProviderEvent::Ready => json!({
                    "status": "Ready", "version": version,
                    "flags": handle.snapshot().map_or(0, |s| s.len()), "at": now()
                }),
                ProviderEvent::ConfigurationChanged { flags_changed } => {
                    // The changed flags' values for an empty context (null: removed,
                    // or no value without a context).
                    let empty = EvaluationContext::new();
                    let values: serde_json::Map<String, Value> = handle
                        .snapshot()
                        .map(|snapshot| {
                            flags_changed
                                .iter()
                                .map(|key| {
                                    let value = snapshot.evaluate(key, &empty).value;
                                    (key.clone(), value.map_or(Value::Null, |v| v.to_json()))
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    json!({ "version": version, "changed": flags_changed, "values": values, "at": now() })
                }
                ProviderEvent::Stale { message } => {
                    json!({ "status": "Stale", "message": message, "at": now() })
                }
                ProviderEvent::Error { message } => {
                    json!({ "status": format!("{:?}", handle.status()), "message": message, "at": now() })
                }
            };
            let _ = tx.send(line);
        });
        provider.start();
        let printer = std::thread::spawn(move || {
            let mut out = std::io::stdout().lock();
            for line in rx {
                if line.is_null() {
                    return;
                }
                if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
                    return;
                }
            }
        });
        match args.seconds {
            Some(s) => tokio::time::sleep(Duration::from_secs(s)).await,
            None => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
        provider.close();
        let _ = stop.send(Value::Null);
        let _ = printer.join();
        Ok(ExitCode::SUCCESS)
    })
}
