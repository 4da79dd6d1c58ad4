//! Forwarding collected events to a JSON-lines file or a webhook. Each
//! forwarder reads the store after a cursor of its own (kept in the events
//! file), so it resumes where it stopped after a restart: every event is
//! forwarded at least once, in arrival order, in batches of up to 500.
//!
//! A webhook gets `POST {"events": [...]}` (the admin API's shape) with
//! `X-Flagyard-Signature: sha256=<hex HMAC-SHA256 of the body with the
//! secret>` and `X-Flagyard-Delivery: <first id>-<last id>`; a 2xx moves the
//! cursor on; a network error, 408, 429 or 5xx is retried with the sources'
//! backoff; another answer is logged and the batch skipped.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use flagyard_storage::{EventQuery, StoredEvent};
use hmac::{Hmac, Mac};
use serde_json::json;

use crate::state::AppState;

/// Where collected events are forwarded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Forward {
    /// Appended to a file, one JSON object per line (`{"id", "receivedAt", "environment", "event"}`).
    JsonLines(PathBuf),
    /// Posted in batches to a URL, signed with `secret`.
    Webhook {
        /// The receiver (`http://` or `https://`).
        url: String,
        /// The HMAC-SHA256 key.
        secret: String,
    },
}

impl Forward {
    /// The forwarder's cursor name in the events file.
    fn cursor_name(&self) -> String {
        match self {
            Forward::JsonLines(path) => format!("jsonl:{}", path.display()),
            Forward::Webhook { url, .. } => format!("webhook:{url}"),
        }
    }
}

const BATCH: usize = 500;

/// A failed delivery: worth retrying, or not.
enum Failure {
    Retry(String),
    Skip(String),
}

/// The JSON form of kept events, as the admin API answers them.
fn lines(events: &[StoredEvent]) -> Vec<serde_json::Value> {
    events
        .iter()
        .map(|e| json!({"id": e.id, "receivedAt": e.received_at, "environment": e.environment, "event": e.event}))
        .collect()
}

/// `sha256=<hex>` of `body` under `secret`.
pub(crate) fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length"));
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}

async fn deliver(
    target: &Forward,
    client: &reqwest::Client,
    events: &[StoredEvent],
) -> Result<(), Failure> {
    match target {
        Forward::JsonLines(path) => {
            let mut text = String::new();
            for line in lines(events) {
                text.push_str(&line.to_string());
                text.push('\n');
            }
            let path = path.clone();
            tokio::task::spawn_blocking(move || {
                let mut file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)?;
                file.write_all(text.as_bytes())?;
                file.sync_data()
            })
            .await
            .map_err(|e| Failure::Retry(e.to_string()))?
            .map_err(|e| Failure::Retry(format!("{}: {e}", target.cursor_name())))
        }
        Forward::Webhook { url, secret } => {
            let body = serde_json::to_vec(&json!({"events": lines(events)}))
                .map_err(|e| Failure::Skip(e.to_string()))?;
            let (first, last) = (events[0].id, events[events.len() - 1].id);
            let response = client
                .post(url)
                .header("content-type", "application/json")
                .header("x-flagyard-signature", signature(secret, &body))
                .header("x-flagyard-delivery", format!("{first}-{last}"))
                .body(body)
                .send()
                .await
                .map_err(|e| Failure::Retry(format!("webhook {url}: {e}")))?;
            let status = response.status().as_u16();
            match status {
                200..=299 => Ok(()),
                408 | 429 | 500..=599 => Err(Failure::Retry(format!("webhook {url}: {status}"))),
                _ => Err(Failure::Skip(format!("webhook {url}: {status}"))),
            }
        }
    }
}

/// Forwards to `target` until the server stops.
pub(crate) async fn run(state: Arc<AppState>, target: Forward) {
    let name = target.cursor_name();
    let mut shutdown = state.shutdown.clone();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap_or_default();
    let mut backoff = flagyard::Backoff::new(flagyard::ReconnectPolicy::default());
    let mut failing = false;
    let mut cursor: Option<u64> = None;
    loop {
        let wait = async {
            tokio::select! {
                () = state.events_added.notified() => {}
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        };
        let last = match cursor {
            Some(last) => last,
            None => match state.events.cursor(name.clone()).await {
                Ok(last) => *cursor.insert(last),
                Err(e) => {
                    tracing::warn!(forward = %name, error = %e, "cannot read the forwarding cursor");
                    tokio::select! {
                        () = tokio::time::sleep(backoff.failed()) => continue,
                        _ = shutdown.changed() => return,
                    }
                }
            },
        };
        let query = EventQuery {
            after: Some(last),
            limit: Some(BATCH),
            ..EventQuery::default()
        };
        let events = match state.events.query(query).await {
            Ok(events) => events,
            Err(e) => {
                tracing::warn!(forward = %name, error = %e, "cannot read the events to forward");
                Vec::new()
            }
        };
        if events.is_empty() {
            tokio::select! {
                () = wait => continue,
                _ = shutdown.changed() => return,
            }
        }
        let newest = events[events.len() - 1].id;
        let outcome = deliver(&target, &client, &events).await;
        let delay = match outcome {
            Ok(()) => {
                if failing {
                    tracing::info!(forward = %name, "forwarding again");
                }
                failing = false;
                backoff.connected();
                None
            }
            Err(Failure::Skip(why)) => {
                tracing::error!(forward = %name, skipped = events.len(), "{why}: the batch is skipped");
                None
            }
            Err(Failure::Retry(why)) => {
                if !failing {
                    tracing::warn!(forward = %name, "{why}; retrying");
                }
                failing = true;
                Some(backoff.failed())
            }
        };
        match delay {
            None => {
                cursor = Some(newest);
                if let Err(e) = state.events.set_cursor(name.clone(), newest).await {
                    tracing::warn!(forward = %name, error = %e, "cannot save the forwarding cursor");
                }
            }
            Some(delay) => {
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    _ = shutdown.changed() => return,
                }
            }
        }
    }
}
