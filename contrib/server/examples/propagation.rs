//! Measures how fast a change made through the admin API reaches stream clients:
//! 100 SSE and 100 WebSocket clients on loopback (DESIGN §8: p99 ≤ 10 ms), and
//! flagd `SyncFlags` streams with `--grpc N` (issue 18: 1,000 with p99 ≤ 20 ms).
//!
//! ```sh
//! cargo run --release -p flagyard-server --example propagation -- [CHANGES] [SSE_CLIENTS] [WS_CLIENTS]
//! # 1,000 gRPC SyncFlags streams only
//! cargo run --release -p flagyard-server --example propagation -- --grpc 1000 50 0 0
//! # two servers on one Redis: writes to A, clients on B
//! cargo run --release -p flagyard-server --example propagation -- --redis redis://127.0.0.1:6379 [CHANGES] [SSE] [WS]
//! ```
//!
//! Starts a server on a free port with a temporary database, connects the
//! clients, makes CHANGES (default 50) admin writes one after another, and for
//! each records the time from sending the write to each client seeing the new
//! version. Prints p50/p90/p99/max per protocol and overall, as text and JSON.

use std::sync::Arc;
use std::time::{Duration, Instant};

use flagyard_server::{Server, ServerConfig};
use futures_util::StreamExt;
use serde_json::json;
use tokio::sync::{Mutex, mpsc};

const TOKEN: &str = "bench";

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn summary(name: &str, mut samples: Vec<Duration>) -> serde_json::Value {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let (p50, p90, p99, max) = (
        percentile(&samples, 50.0),
        percentile(&samples, 90.0),
        percentile(&samples, 99.0),
        samples.last().copied().unwrap_or_default(),
    );
    println!(
        "{name:>9}: {:>6} deliveries  p50 {:>7.3} ms  p90 {:>7.3} ms  p99 {:>7.3} ms  max {:>7.3} ms",
        samples.len(),
        ms(p50),
        ms(p90),
        ms(p99),
        ms(max)
    );
    json!({"deliveries": samples.len(), "p50_ms": ms(p50), "p90_ms": ms(p90), "p99_ms": ms(p99), "max_ms": ms(max)})
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let raw: Vec<String> = std::env::args().skip(1).collect();
    let redis_url = raw
        .iter()
        .position(|a| a == "--redis")
        .and_then(|i| raw.get(i + 1).cloned());
    let grpc_clients = raw
        .iter()
        .position(|a| a == "--grpc")
        .and_then(|i| raw.get(i + 1))
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or(0);
    let args: Vec<usize> = raw
        .iter()
        .enumerate()
        .filter(|(i, _)| *i == 0 || raw[i - 1] != "--grpc")
        .filter_map(|(_, a)| a.parse().ok())
        .collect();
    let changes = args.first().copied().unwrap_or(50);
    let sse_clients = args.get(1).copied().unwrap_or(100);
    let ws_clients = args.get(2).copied().unwrap_or(100);

    let dir = tempfile::tempdir().expect("temp dir");
    let start = |name: &str| {
        let mut config = ServerConfig::new(dir.path().join(format!("{name}.sqlite")));
        config.listen = "127.0.0.1:0".parse().expect("addr");
        config.admin_token = Some(TOKEN.into());
        config.redis_url = redis_url.clone();
        config.redis_prefix = format!("propagation-{}", std::process::id());
        config.grpc_listen = Some("127.0.0.1:0".parse().expect("addr"));
        async move {
            let server = Server::bind(config).await.expect("server");
            let base = format!("http://{}", server.local_addr());
            let grpc = format!("http://{}", server.grpc_addr().expect("gRPC"));
            tokio::spawn(server.run(std::future::pending()));
            (base, grpc)
        }
    };
    // Writes go to `writer`; clients follow `base` (the same server, or a second
    // one sharing the Redis).
    let (writer, writer_grpc) = start("a").await;
    let (base, grpc) = if redis_url.is_some() {
        start("b").await
    } else {
        (writer.clone(), writer_grpc)
    };

    // Each client reports (protocol, version, when seen).
    let (seen_tx, mut seen_rx) = mpsc::unbounded_channel::<(&'static str, u64, Instant)>();
    let ready = Arc::new(Mutex::new(0usize));
    for _ in 0..sse_clients {
        let (url, tx, ready) = (
            format!("{base}/v1/stream"),
            seen_tx.clone(),
            Arc::clone(&ready),
        );
        tokio::spawn(async move {
            let response = reqwest::Client::new()
                .get(url)
                .send()
                .await
                .expect("sse connects");
            let mut body = response.bytes_stream();
            let mut buffer = String::new();
            let mut counted = false;
            while let Some(Ok(chunk)) = body.next().await {
                let now = Instant::now();
                buffer.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(end) = buffer.find("\n\n") {
                    let event: String = buffer.drain(..end + 2).collect();
                    if let Some(id) = event.lines().find_map(|l| l.strip_prefix("id: ")) {
                        let version: u64 = id.trim().parse().unwrap_or(0);
                        if !counted {
                            counted = true;
                            *ready.lock().await += 1;
                        }
                        let _ = tx.send(("sse", version, now));
                    }
                }
            }
        });
    }
    for _ in 0..ws_clients {
        let (url, tx, ready) = (
            format!("{}/v1/ws", base.replace("http://", "ws://")),
            seen_tx.clone(),
            Arc::clone(&ready),
        );
        tokio::spawn(async move {
            let (mut socket, _) = tokio_tungstenite::connect_async(url)
                .await
                .expect("ws connects");
            let mut counted = false;
            while let Some(Ok(message)) = socket.next().await {
                let now = Instant::now();
                if let tokio_tungstenite::tungstenite::Message::Text(text) = message {
                    let version = serde_json::from_str::<serde_json::Value>(&text)
                        .ok()
                        .and_then(|v| v["version"].as_u64())
                        .unwrap_or(0);
                    if !counted {
                        counted = true;
                        *ready.lock().await += 1;
                    }
                    let _ = tx.send(("ws", version, now));
                }
            }
        });
    }
    // A gRPC client reports the change number the document carries (SyncFlags
    // messages have no version), 0 before the first change.
    for _ in 0..grpc_clients {
        let (url, tx, ready) = (grpc.clone(), seen_tx.clone(), Arc::clone(&ready));
        tokio::spawn(async move {
            use flagyard_flagd_proto::sync::SyncFlagsRequest;
            use flagyard_flagd_proto::sync::flag_sync_service_client::FlagSyncServiceClient;
            // A thousand connections at once can meet a full accept queue:
            // a refused or reset attempt is tried again, as a provider would.
            let mut attempts = 0;
            let mut stream = loop {
                attempts += 1;
                let opened = async {
                    let mut client = FlagSyncServiceClient::connect(url.clone()).await.ok()?;
                    client.sync_flags(SyncFlagsRequest::default()).await.ok()
                };
                match opened.await {
                    Some(response) => break response.into_inner(),
                    None if attempts < 20 => tokio::time::sleep(Duration::from_millis(100)).await,
                    None => panic!("SyncFlags did not open after {attempts} attempts"),
                }
            };
            let mut counted = false;
            while let Ok(Some(message)) = stream.message().await {
                let now = Instant::now();
                // As cheap as the SSE clients' `id:` line: the number after
                // `"change":` (the only such key in the document).
                let change = message
                    .flag_configuration
                    .split_once("\"change\":")
                    .and_then(|(_, rest)| {
                        let digits = rest.trim_start();
                        let end = digits
                            .find(|c: char| !c.is_ascii_digit())
                            .unwrap_or(digits.len());
                        digits[..end].parse().ok()
                    })
                    .unwrap_or(0);
                if !counted {
                    counted = true;
                    *ready.lock().await += 1;
                }
                let _ = tx.send(("grpc", change, now));
            }
        });
    }
    drop(seen_tx);
    let total = sse_clients + ws_clients + grpc_clients;
    let deadline = Instant::now() + Duration::from_secs(60);
    while *ready.lock().await < total {
        assert!(Instant::now() < deadline, "clients did not connect");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    while seen_rx.try_recv().is_ok() {}

    let client = reqwest::Client::new();
    let (mut sse, mut ws, mut sync) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..changes {
        let change = i as u64 + 1;
        let body = json!({"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": if i % 2 == 0 { "on" } else { "off" }, "metadata": {"change": change}});
        let sent = Instant::now();
        let reply: serde_json::Value = client
            .put(format!("{writer}/v1/admin/flags/bench"))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
            .await
            .expect("admin write")
            .json()
            .await
            .expect("reply");
        let version = reply["version"].as_u64().expect("version");
        let mut got = 0;
        while got < total {
            let (kind, v, at) = tokio::time::timeout(Duration::from_secs(10), seen_rx.recv())
                .await
                .expect("every client sees the change")
                .expect("clients alive");
            if v != if kind == "grpc" { change } else { version } {
                continue;
            }
            got += 1;
            let latency = at.saturating_duration_since(sent);
            match kind {
                "sse" => sse.push(latency),
                "ws" => ws.push(latency),
                _ => sync.push(latency),
            }
        }
    }
    match &redis_url {
        Some(url) => println!(
            "{changes} changes through server A's admin API, {sse_clients} SSE + {ws_clients} WebSocket + {grpc_clients} gRPC SyncFlags clients on server B, one Redis ({url})"
        ),
        None => println!(
            "{changes} changes through the admin API, {sse_clients} SSE + {ws_clients} WebSocket + {grpc_clients} gRPC SyncFlags clients on loopback"
        ),
    }
    let all: Vec<Duration> = sse.iter().chain(&ws).chain(&sync).copied().collect();
    let report = json!({
        "changes": changes,
        "sse": summary("SSE", sse),
        "websocket": summary("WebSocket", ws),
        "grpc_sync": summary("SyncFlags", sync),
        "all": summary("all", all),
    });
    println!("{report}");
}
