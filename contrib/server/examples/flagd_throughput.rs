//! Measures a flagd RPC-mode client resolving through Flagyard's gRPC beside the
//! same client over OFREP HTTP (issue 18: gRPC at least OFREP's throughput).
//!
//! ```sh
//! cargo run --release -p flagyard-server --example flagd_throughput -- [SECONDS] [TASKS] [--in-process] [--anchor]
//! ```
//!
//! Starts a server on loopback (open reads, one flag with a targeting rule) in
//! a process of its own, as `flagyard serve` runs (`--in-process`: on this
//! process's runtime, beside the clients, as the first measurements did),
//! then, with flagd's own Rust provider (`open-feature-flagd`, cache off),
//! resolves the flag from TASKS concurrent tasks (default 16) for SECONDS
//! (default 5) per round, alternating RPC (`flagd.evaluation.v1` on the gRPC
//! port) and REST (OFREP on the HTTP port) for two rounds each, and prints
//! each mode's best round in resolutions per second, the CPU time each side
//! spent per resolution (this process's and the server's), and their ratio,
//! as text and JSON. `FT_SERVER_WORKERS=N` sets the server process's tokio
//! worker count, `TOKIO_WORKER_THREADS=N` the clients' (tokio's own setting). `--anchor` adds, in the same alternation, the same client
//! against the anchor (`support/anchor_server.rs`: plain tonic and plain axum
//! answering a constant, in a process of their own), which bounds what any
//! server on those stacks could give that client.

use std::ffi::OsStr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use flagyard_server::{Server, ServerConfig};
use open_feature::EvaluationContext;
use open_feature::provider::FeatureProvider;
use open_feature_flagd::{FlagdOptions, FlagdProvider, ResolverType};
use serde_json::json;

#[path = "support/anchor_server.rs"]
mod anchor_server;
#[path = "support/server_child.rs"]
mod server_child;
use server_child::{ServerChild, own_cpu};

/// The allocator the `flagyard` binary serves with (its `jemalloc` feature).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// One round's figures.
#[derive(Clone, Copy, Default)]
struct Round {
    per_s: f64,
    /// CPU time per resolution in this (the clients') process, in µs.
    client_us: f64,
    /// CPU time per resolution in the server's process, in µs (0 in process).
    server_us: f64,
}

/// One round: resolutions per second from `tasks` tasks for `seconds`, and the
/// CPU each side spent per resolution.
async fn round(
    provider: Arc<FlagdProvider>,
    tasks: usize,
    seconds: u64,
    server: Option<&ServerChild>,
) -> Round {
    let cpu_before = (own_cpu(), server.map(ServerChild::cpu).unwrap_or_default());
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut handles = Vec::new();
    for t in 0..tasks {
        let (provider, done) = (Arc::clone(&provider), Arc::clone(&done));
        handles.push(tokio::spawn(async move {
            let ctx = EvaluationContext::default()
                .with_targeting_key(format!("user-{t}"))
                .with_custom_field("email", "ada@example.com");
            while Instant::now() < deadline {
                let resolved = provider
                    .resolve_bool_value("banner", &ctx)
                    .await
                    .expect("resolves");
                assert!(resolved.value, "the rule serves on");
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let started = Instant::now();
    for handle in handles {
        handle.await.expect("task");
    }
    let resolutions = done.load(Ordering::Relaxed).max(1) as f64;
    let micros = |d: Duration| d.as_secs_f64() * 1e6 / resolutions;
    Round {
        per_s: resolutions / started.elapsed().as_secs_f64(),
        client_us: micros(own_cpu().saturating_sub(cpu_before.0)),
        server_us: micros(
            server
                .map(ServerChild::cpu)
                .unwrap_or_default()
                .saturating_sub(cpu_before.1),
        ),
    }
}

/// The server: open reads, one flag with a targeting rule, in `dir`.
async fn bind(dir: &Path) -> Server {
    let seed = dir.join("flags.json");
    let document = json!({"flags": {"banner": {
        "state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off",
        "targeting": {"if": [{"ends_with": [{"var": "email"}, "@example.com"]}, "on", "off"]}
    }}});
    std::fs::write(&seed, document.to_string()).expect("seed");
    let mut config = ServerConfig::new(dir.join("db.sqlite"));
    config.listen = "127.0.0.1:0".parse().expect("addr");
    config.grpc_listen = Some("127.0.0.1:0".parse().expect("addr"));
    config.seed_file = Some(seed);
    Server::bind(config).await.expect("server")
}

/// A server child and the two ports (HTTP, gRPC) it printed.
fn ports_of((child, line): (ServerChild, String)) -> (ServerChild, (u16, u16)) {
    let ports: Vec<u16> = line
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    assert_eq!(ports.len(), 2, "the child printed {line:?}");
    (child, (ports[0], ports[1]))
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let raw: Vec<String> = std::env::args().skip(1).collect();
    let dir = tempfile::tempdir().expect("temp dir");
    let child_of = raw.first().map(String::as_str) == Some("--server-child");
    if child_of && raw.iter().any(|a| a == "--anchor") {
        anchor_server::serve().await;
        return;
    }
    if child_of {
        // In the child: serve, and say where.
        let server = bind(dir.path()).await;
        println!(
            "listening {} {}",
            server.local_addr().port(),
            server.grpc_addr().expect("gRPC").port()
        );
        server
            .run(std::future::pending())
            .await
            .expect("server runs");
        return;
    }
    let in_process = raw.iter().any(|a| a == "--in-process");
    let with_anchor = raw.iter().any(|a| a == "--anchor");
    let args: Vec<u64> = raw.iter().filter_map(|a| a.parse().ok()).collect();
    let seconds = args.first().copied().unwrap_or(5);
    let tasks = args.get(1).copied().unwrap_or(16) as usize;

    let (http_port, grpc_port, child) = if in_process {
        let server = bind(dir.path()).await;
        let ports = (
            server.local_addr().port(),
            server.grpc_addr().expect("gRPC").port(),
        );
        tokio::spawn(server.run(std::future::pending()));
        (ports.0, ports.1, None)
    } else {
        let (child, ports) = ports_of(ServerChild::start(&[]));
        (ports.0, ports.1, Some(child))
    };
    let server_runs = if in_process {
        "in this process"
    } else {
        "in its own process"
    };

    let provider = |resolver_type: ResolverType, port: u16| async move {
        let options = FlagdOptions {
            host: "127.0.0.1".into(),
            port,
            resolver_type,
            cache_settings: None,
            ..Default::default()
        };
        Arc::new(FlagdProvider::new(options).await.expect("provider"))
    };
    let rpc = provider(ResolverType::Rpc, grpc_port).await;
    let rest = provider(ResolverType::Rest, http_port).await;
    // The anchor: the same client against plain tonic and plain axum.
    let anchor = if with_anchor {
        let (child, ports) = ports_of(ServerChild::start(&[OsStr::new("--anchor")]));
        let rpc = provider(ResolverType::Rpc, ports.1).await;
        let rest = provider(ResolverType::Rest, ports.0).await;
        Some((child, rpc, rest))
    } else {
        None
    };
    let (mut best_rpc, mut best_rest) = (Round::default(), Round::default());
    let (mut anchor_rpc, mut anchor_rest) = (Round::default(), Round::default());
    let best = |best: &mut Round, this: Round| {
        if this.per_s > best.per_s {
            *best = this;
        }
    };
    for _ in 0..2 {
        best(
            &mut best_rpc,
            round(Arc::clone(&rpc), tasks, seconds, child.as_ref()).await,
        );
        best(
            &mut best_rest,
            round(Arc::clone(&rest), tasks, seconds, child.as_ref()).await,
        );
        if let Some((anchor, rpc, rest)) = &anchor {
            best(
                &mut anchor_rpc,
                round(Arc::clone(rpc), tasks, seconds, Some(anchor)).await,
            );
            best(
                &mut anchor_rest,
                round(Arc::clone(rest), tasks, seconds, Some(anchor)).await,
            );
        }
    }
    let cpu = |r: Round| {
        if in_process {
            format!("{:.1} µs CPU per resolution", r.client_us)
        } else {
            format!(
                "CPU per resolution: client {:.1} µs, server {:.1} µs",
                r.client_us, r.server_us
            )
        }
    };
    println!(
        "open-feature-flagd 0.3, {tasks} tasks, best of 2 rounds of {seconds} s, loopback, \
         server {server_runs}:\n  \
         RPC  (gRPC, flagd.evaluation.v1): {:>9.0} resolutions/s ({})\n  \
         REST (OFREP over HTTP/1.1):       {:>9.0} resolutions/s ({})\n  \
         RPC / REST: {:.2}",
        best_rpc.per_s,
        cpu(best_rpc),
        best_rest.per_s,
        cpu(best_rest),
        best_rpc.per_s / best_rest.per_s
    );
    let anchor_json = anchor.as_ref().map(|_| {
        let own = |r: Round| {
            format!(
                "CPU per resolution: client {:.1} µs, server {:.1} µs",
                r.client_us, r.server_us
            )
        };
        println!(
            "  anchor, same rounds (plain tonic / plain axum answering a constant, own process):\n  \
             RPC  (gRPC):                      {:>9.0} resolutions/s ({})\n  \
             REST (OFREP):                     {:>9.0} resolutions/s ({})\n  \
             anchor RPC / anchor REST: {:.2}; Flagyard ÷ anchor: RPC {:.2}, REST {:.2}; \
             anchor RPC / Flagyard REST: {:.2}",
            anchor_rpc.per_s,
            own(anchor_rpc),
            anchor_rest.per_s,
            own(anchor_rest),
            anchor_rpc.per_s / anchor_rest.per_s,
            best_rpc.per_s / anchor_rpc.per_s,
            best_rest.per_s / anchor_rest.per_s,
            anchor_rpc.per_s / best_rest.per_s,
        );
        json!({"rpc_per_s": anchor_rpc.per_s.round(), "rest_per_s": anchor_rest.per_s.round(),
               "rpc_cpu_us": {"client": anchor_rpc.client_us, "server": anchor_rpc.server_us},
               "rest_cpu_us": {"client": anchor_rest.client_us, "server": anchor_rest.server_us}})
    });
    println!(
        "{}",
        json!({"anchor": anchor_json, "tasks": tasks, "seconds": seconds, "server_process": !in_process, "rpc_per_s": best_rpc.per_s.round(),
               "rest_per_s": best_rest.per_s.round(), "ratio": best_rpc.per_s / best_rest.per_s,
               "rpc_cpu_us": {"client": best_rpc.client_us, "server": best_rpc.server_us},
               "rest_cpu_us": {"client": best_rest.client_us, "server": best_rest.server_us}})
    );
}
