//! How long a results request takes with 1,000,000 exposures and 100,000
//! conversions stored (issue budget: under 100 ms): a server on loopback
//! with its SQLite events file, the events posted to its collector in
//! batches of 10,000, then `GET /v1/admin/experiments/{flag}` measured.
//!
//! `cargo bench -p flagyard-server --bench experiments` (setting up takes
//! about a minute in a release build).

use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use flagyard_server::{Server, ServerConfig};
use serde_json::{Value, json};

const TOKEN: &str = "bench-token";
const USERS: u64 = 1_000_000;
const CONVERTING: u64 = 10; // one user in ten converts

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let flags = dir.path().join("flags.json");
    std::fs::write(
        &flags,
        r#"{"flags": {"checkout": {"state": "ENABLED", "variants": {"a": "a", "b": "b"},
            "defaultVariant": "a", "targeting": {"fractional": [["a", 50], ["b", 50]]}}}}"#,
    )
    .expect("flags");
    let mut config = ServerConfig::new(dir.path().join("db.sqlite"));
    config.listen = "127.0.0.1:0".parse().expect("addr");
    config.admin_token = Some(TOKEN.into());
    config.seed_file = Some(flags);
    let client = reqwest::Client::new();
    let base = runtime.block_on(async {
        let server = Server::bind(config).await.expect("server binds");
        let base = format!("http://{}", server.local_addr());
        tokio::spawn(server.run(std::future::pending()));
        let created = client
            .post(format!("{base}/v1/admin/experiments"))
            .bearer_auth(TOKEN)
            .json(&json!({"flag": "checkout", "metrics": ["purchase"], "control": "a"}))
            .send()
            .await
            .expect("create");
        assert_eq!(created.status(), 201);
        let start: Value = created.json().await.expect("JSON");
        let at = start["start"].as_u64().expect("start") + 1;
        let began = Instant::now();
        let mut batch = Vec::with_capacity(10_000);
        let mut sent = 0;
        for user in 0..USERS {
            let key = format!("u{user}");
            let variant = if user % 2 == 0 { "a" } else { "b" };
            batch.push(json!({"kind": "exposure", "flag": "checkout", "variant": variant,
                              "reason": "SPLIT", "targetingKey": key, "at": at}));
            if user % CONVERTING == 0 {
                batch.push(json!({"kind": "tracking", "name": "purchase",
                                  "targetingKey": key, "at": at + 1}));
            }
            if batch.len() >= 9_999 || user + 1 == USERS {
                let body = json!({"batchId": format!("bench-{sent}"), "events": batch});
                let response = client
                    .post(format!("{base}/v1/events"))
                    .json(&body)
                    .send()
                    .await
                    .expect("collector");
                assert_eq!(response.status(), 200);
                sent += 1;
                batch.clear();
            }
        }
        // The first request waits for the tallies to read everything.
        let first = Instant::now();
        let results: Value = client
            .get(format!("{base}/v1/admin/experiments/checkout"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("results")
            .json()
            .await
            .expect("JSON");
        assert_eq!(results["users"], USERS, "{results}");
        eprintln!(
            "experiments: {} events in {sent} batches posted in {:.1?}; the first results after them {:.1?}",
            USERS + USERS / CONVERTING,
            first - began,
            first.elapsed()
        );
        base
    });
    let url = format!("{base}/v1/admin/experiments/checkout");
    let mut group = c.benchmark_group("experiments");
    group.measurement_time(Duration::from_secs(5));
    group.bench_function(
        "results, 1,000,000 exposures and 100,000 conversions",
        |b| {
            b.to_async(&runtime).iter(|| async {
                let response = client
                    .get(&url)
                    .bearer_auth(TOKEN)
                    .send()
                    .await
                    .expect("results");
                assert_eq!(response.status(), 200);
                response.bytes().await.expect("body")
            });
        },
    );
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
