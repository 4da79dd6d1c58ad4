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
//! 10,000 clients (issue 19: p99 ≤ 50 ms, ≤ 16 KiB of server memory per idle
//! connection, returned when they leave):
//!
//! ```sh
//! cargo run --release -p flagyard-server --example propagation -- 50 5000 5000
//! ```
//!
//! Starts the server as a process of its own (this program again, with
//! `--server-child`) on a free port with a temporary database, raises the
//! open-file limit of both to the hard limit, connects the clients (in waves,
//! retrying a refused connection as a provider would), makes CHANGES (default
//! 50) admin writes one after another, and for each records the time from
//! sending the write to each client seeing the new version. Prints p50/p90/
//! p99/max per protocol and overall, the server's resident memory per idle
//! connection (after they connected, against before), its CPU time per
//! change, and its memory once every client has left; as text and JSON.

use std::sync::Arc;
use std::time::{Duration, Instant};

use flagyard_server::{Server, ServerConfig};
use futures_util::StreamExt;
use serde_json::json;
use tokio::sync::{Mutex, mpsc};

#[path = "support/server_child.rs"]
mod server_child;
use server_child::ServerChild;

/// The allocator the `flagyard` binary serves with (its `jemalloc` feature).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

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

/// Raises the open-file limit to the hard limit (10,000 clients need as many
/// descriptors on each side); says so when the hard limit is too low.
fn raise_file_limit(needed: u64) {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) if limit < needed => eprintln!(
            "open-file limit {limit} is below the {needed} this run needs; raise the hard limit (ulimit -Hn)"
        ),
        Ok(_) => {}
        Err(e) => eprintln!("could not raise the open-file limit: {e}"),
    }
}

/// In the child: `--server-child DB REDIS|- PREFIX CLIENTS` runs one server
/// and prints `listening HTTP GRPC`.
async fn server_child(args: &[String]) {
    raise_file_limit(args[3].parse::<u64>().unwrap_or(0) + 100);
    let mut config = ServerConfig::new(&args[0]);
    config.listen = "127.0.0.1:0".parse().expect("addr");
    config.admin_token = Some(TOKEN.into());
    config.redis_url = (args[1] != "-").then(|| args[1].clone());
    config.redis_prefix = args[2].clone();
    config.grpc_listen = Some("127.0.0.1:0".parse().expect("addr"));
    // Room for every client and the admin writes.
    config.max_connections = 25_000;
    let server = Server::bind(config).await.expect("server");
    println!(
        "listening http://{} http://{}",
        server.local_addr(),
        server.grpc_addr().expect("gRPC")
    );
    server
        .run(std::future::pending())
        .await
        .expect("server runs");
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let raw: Vec<String> = std::env::args().skip(1).collect();
    if raw.first().map(String::as_str) == Some("--server-child") {
        server_child(&raw[1..]).await;
        return;
    }
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

    let total = sse_clients + ws_clients + grpc_clients;
    raise_file_limit(total as u64 + 1_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let prefix = format!("propagation-{}", std::process::id());
    let start = |name: &str| {
        let sqlite = dir.path().join(format!("{name}.sqlite"));
        let total = total.to_string();
        let (child, line) = ServerChild::start(&[
            sqlite.as_os_str(),
            redis_url.as_deref().unwrap_or("-").as_ref(),
            prefix.as_ref(),
            total.as_ref(),
        ]);
        let mut words = line.split_whitespace().skip(1);
        let (base, grpc) = (
            words.next().expect("HTTP address").to_string(),
            words.next().expect("gRPC address").to_string(),
        );
        (child, base, grpc)
    };
    // Writes go to `writer`; clients follow `base` (the same server, or a second
    // one sharing the Redis).
    let (writer_child, writer, writer_grpc) = start("a");
    let (reader_child, base, grpc) = if redis_url.is_some() {
        let (child, base, grpc) = start("b");
        (Some(child), base, grpc)
    } else {
        (None, writer.clone(), writer_grpc)
    };
    let server = reader_child.as_ref().unwrap_or(&writer_child);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rss_before = server.rss_kib();

    // Each client reports (protocol, version, when seen).
    let (seen_tx, mut seen_rx) = mpsc::unbounded_channel::<(&'static str, u64, Instant)>();
    let ready = Arc::new(Mutex::new(0usize));
    // Connections being opened at once: more would overflow the server's
    // accept queue, and a dropped SYN is retried only after a second.
    let connecting = Arc::new(tokio::sync::Semaphore::new(256));
    let mut clients = Vec::with_capacity(total);
    // One HTTP client for every SSE stream (each stream holds a connection).
    let sse_http = reqwest::Client::new();
    for _ in 0..sse_clients {
        let (url, tx, ready, http, connecting) = (
            format!("{base}/v1/stream"),
            seen_tx.clone(),
            Arc::clone(&ready),
            sse_http.clone(),
            Arc::clone(&connecting),
        );
        clients.push(tokio::spawn(async move {
            let permit = connecting.acquire_owned().await.expect("semaphore open");
            let mut attempts = 0;
            let response = loop {
                attempts += 1;
                match http.get(&url).send().await {
                    Ok(response) => break response,
                    Err(_) if attempts < 50 => tokio::time::sleep(Duration::from_millis(100)).await,
                    Err(e) => panic!("SSE did not connect after {attempts} attempts: {e}"),
                }
            };
            drop(permit);
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
        }));
    }
    for _ in 0..ws_clients {
        let (url, tx, ready, connecting) = (
            format!("{}/v1/ws", base.replace("http://", "ws://")),
            seen_tx.clone(),
            Arc::clone(&ready),
            Arc::clone(&connecting),
        );
        clients.push(tokio::spawn(async move {
            let permit = connecting.acquire_owned().await.expect("semaphore open");
            let mut attempts = 0;
            let mut socket = loop {
                attempts += 1;
                match tokio_tungstenite::connect_async(url.as_str()).await {
                    Ok((socket, _)) => break socket,
                    Err(_) if attempts < 50 => tokio::time::sleep(Duration::from_millis(100)).await,
                    Err(e) => panic!("WebSocket did not connect after {attempts} attempts: {e}"),
                }
            };
            drop(permit);
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
        }));
    }
    // A gRPC client reports the change number the document carries (SyncFlags
    // messages have no version), 0 before the first change.
    for _ in 0..grpc_clients {
        let (url, tx, ready, connecting) = (
            grpc.clone(),
            seen_tx.clone(),
            Arc::clone(&ready),
            Arc::clone(&connecting),
        );
        clients.push(tokio::spawn(async move {
            let permit = connecting.acquire_owned().await.expect("semaphore open");
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
            drop(permit);
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
        }));
    }
    drop(seen_tx);
    let deadline = Instant::now() + Duration::from_secs(120);
    while *ready.lock().await < total {
        assert!(Instant::now() < deadline, "clients did not connect");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    while seen_rx.try_recv().is_ok() {}
    // Idle connections, settled.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_connected = server.rss_kib();
    let cpu_before = server.cpu();

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
    let cpu_per_change = server.cpu().saturating_sub(cpu_before) / changes.max(1) as u32;
    let rss_after_changes = server.rss_kib();
    for client in &clients {
        client.abort();
    }
    drop(clients);
    // The server notices the closed connections and frees what they held;
    // the allocator returns it to the system within its decay time (jemalloc:
    // 10 s). Watched for 15 s, at most.
    let mut rss_left = server.rss_kib();
    for _ in 0..15 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        rss_left = server.rss_kib();
        if rss_left.saturating_sub(rss_before) < (rss_connected.saturating_sub(rss_before)) / 10 {
            break;
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
    let per_connection = |kib: u64| kib.saturating_sub(rss_before) as f64 / total.max(1) as f64;
    println!(
        "server: RSS {:.1} MiB before the clients, {:.1} MiB with them ({:.1} KiB per idle connection), \
         {:.1} MiB after the changes, {:.1} MiB once they left ({:.1} KiB per connection kept); \
         CPU {:.2} ms per change",
        rss_before as f64 / 1024.0,
        rss_connected as f64 / 1024.0,
        per_connection(rss_connected),
        rss_after_changes as f64 / 1024.0,
        rss_left as f64 / 1024.0,
        per_connection(rss_left),
        cpu_per_change.as_secs_f64() * 1000.0,
    );
    let report = json!({
        "server": {
            "rss_kib_before": rss_before,
            "rss_kib_connected": rss_connected,
            "rss_kib_after_changes": rss_after_changes,
            "rss_kib_after_leaving": rss_left,
            "kib_per_idle_connection": per_connection(rss_connected),
            "kib_per_connection_after_leaving": per_connection(rss_left),
            "cpu_ms_per_change": cpu_per_change.as_secs_f64() * 1000.0,
        },
        "changes": changes,
        "sse": summary("SSE", sse),
        "websocket": summary("WebSocket", ws),
        "grpc_sync": summary("SyncFlags", sync),
        "all": summary("all", all),
    });
    println!("{report}");
}
