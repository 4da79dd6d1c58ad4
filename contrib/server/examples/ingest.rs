//! Measures how fast the collector takes events: batches of 500 gzip'd
//! events posted to `POST /v1/events` on loopback by a few concurrent
//! clients, into the server's SQLite events file (issue 14's budget: at
//! least 100,000 events/s).
//!
//! ```sh
//! cargo run --release -p flagyard-server --example ingest -- [SECONDS] [CLIENTS]
//! ```
//!
//! Starts a server on a free port with a temporary database, encodes the
//! batches beforehand (each with its own id, so the clients spend their time
//! posting), posts for SECONDS (default 5) from CLIENTS (default 2)
//! connections, then counts what the server kept. Prints events/s and the
//! batch latency (p50/p99), as text and JSON.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use flagyard_server::{Server, ServerConfig};
use serde_json::json;

const BATCH: usize = 500;

fn batch_body(id: usize) -> Vec<u8> {
    let events: Vec<serde_json::Value> = (0..BATCH)
        .map(|i| {
            let user = format!("user-{}", id * BATCH + i);
            if i % 10 == 0 {
                json!({"kind": "tracking", "name": "purchase", "targetingKey": user,
                       "value": 9.5, "at": 1_764_600_000_000_u64 + i as u64})
            } else {
                json!({"kind": "exposure", "flag": "new-checkout", "variant": "on",
                       "reason": "SPLIT", "targetingKey": user, "version": 7,
                       "at": 1_764_600_000_000_u64 + i as u64})
            }
        })
        .collect();
    let json = serde_json::to_vec(&json!({"batchId": format!("batch-{id}"), "events": events}))
        .expect("JSON");
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gzip.write_all(&json).expect("gzip");
    gzip.finish().expect("gzip")
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let seconds: u64 = args.first().and_then(|a| a.parse().ok()).unwrap_or(5);
    let clients: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(2);
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = ServerConfig::new(dir.path().join("bench.sqlite"));
    config.listen = "127.0.0.1:0".parse().expect("addr");
    config.admin_token = Some("bench".into());
    let server = Server::bind(config).await.expect("binds");
    let url = format!("http://{}/v1/events", server.local_addr());
    let state = server.state();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(server.run(async move {
        let _ = stopped.await;
    }));

    // Enough batches for 400,000 events/s over the run, encoded beforehand.
    let batches = (400_000 * seconds as usize) / BATCH;
    eprintln!("encoding {batches} batches of {BATCH} events …");
    let bodies: Arc<Vec<Vec<u8>>> = Arc::new((0..batches).map(batch_body).collect());
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (bodies, next, url) = (Arc::clone(&bodies), Arc::clone(&next), url.clone());
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut latencies = Vec::new();
            while Instant::now() < deadline {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(body) = bodies.get(i) else { break };
                let sent = Instant::now();
                let response = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .header("content-encoding", "gzip")
                    .body(body.clone())
                    .send()
                    .await
                    .expect("posted");
                assert!(response.status().is_success(), "{}", response.status());
                let answer: serde_json::Value = response.json().await.expect("JSON");
                assert_eq!(answer["accepted"], BATCH, "{answer}");
                latencies.push(sent.elapsed());
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.expect("client"));
    }
    let elapsed = started.elapsed();
    let kept = latencies.len() * BATCH;
    latencies.sort();
    let at = |p: f64| latencies[((latencies.len() - 1) as f64 * p) as usize];
    let rate = kept as f64 / elapsed.as_secs_f64();
    let stored = state.events().count().await.expect("count");
    assert_eq!(stored as usize, kept, "every accepted event is stored once");
    println!(
        "{kept} events in {:.2} s from {clients} clients: {:.0} events/s; batch p50 {:.2} ms, p99 {:.2} ms",
        elapsed.as_secs_f64(),
        rate,
        at(0.5).as_secs_f64() * 1000.0,
        at(0.99).as_secs_f64() * 1000.0
    );
    println!(
        "{}",
        json!({"events": kept, "seconds": elapsed.as_secs_f64(), "clients": clients,
               "events_per_second": rate, "batch_p50_ms": at(0.5).as_secs_f64() * 1000.0,
               "batch_p99_ms": at(0.99).as_secs_f64() * 1000.0})
    );
    let _ = stop.send(());
    let _ = running.await;
}
