//! Measures a flagd RPC-mode client resolving through Flagyard's gRPC beside the
//! same client over OFREP HTTP (issue 18: gRPC at least OFREP's throughput).
//!
//! ```sh
//! cargo run --release -p flagyard-server --example flagd_throughput -- [SECONDS] [TASKS] [--in-process]
//! ```
//!
//! Starts a server on loopback (open reads, one flag with a targeting rule) in
//! a process of its own, as `flagyard serve` runs (`--in-process`: on this
//! process's runtime, beside the clients, as the first measurements did),
//! then, with flagd's own Rust provider (`open-feature-flagd`, cache off),
//! resolves the flag from TASKS concurrent tasks (default 16) for SECONDS
//! (default 5) per round, alternating RPC (`flagd.evaluation.v1` on the gRPC
//! port) and REST (OFREP on the HTTP port) for two rounds each, and prints
//! each mode's best round in resolutions per second and their ratio, as text
//! and JSON.

use std::io::BufRead;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use flagyard_server::{Server, ServerConfig};
use open_feature::EvaluationContext;
use open_feature::provider::FeatureProvider;
use open_feature_flagd::{FlagdOptions, FlagdProvider, ResolverType};
use serde_json::json;

/// One round: resolutions per second from `tasks` tasks for `seconds`.
async fn round(provider: Arc<FlagdProvider>, tasks: usize, seconds: u64) -> f64 {
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
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
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

/// A server process, killed when dropped.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let raw: Vec<String> = std::env::args().skip(1).collect();
    let dir = tempfile::tempdir().expect("temp dir");
    if raw.first().map(String::as_str) == Some("--server-child") {
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
    let args: Vec<u64> = raw.iter().filter_map(|a| a.parse().ok()).collect();
    let seconds = args.first().copied().unwrap_or(5);
    let tasks = args.get(1).copied().unwrap_or(16) as usize;

    let (http_port, grpc_port, _child) = if in_process {
        let server = bind(dir.path()).await;
        let ports = (
            server.local_addr().port(),
            server.grpc_addr().expect("gRPC").port(),
        );
        tokio::spawn(server.run(std::future::pending()));
        (ports.0, ports.1, None)
    } else {
        let mut child = std::process::Command::new(std::env::current_exe().expect("exe"))
            .arg("--server-child")
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("server child starts");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("server child says where it listens");
        let ports: Vec<u16> = line
            .split_whitespace()
            .filter_map(|w| w.parse().ok())
            .collect();
        assert_eq!(ports.len(), 2, "the child printed {line:?}");
        (ports[0], ports[1], Some(Child(child)))
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
    let (mut best_rpc, mut best_rest) = (0f64, 0f64);
    for _ in 0..2 {
        best_rpc = best_rpc.max(round(Arc::clone(&rpc), tasks, seconds).await);
        best_rest = best_rest.max(round(Arc::clone(&rest), tasks, seconds).await);
    }
    println!(
        "open-feature-flagd 0.3, {tasks} tasks, best of 2 rounds of {seconds} s, loopback, \
         server {server_runs}:\n  \
         RPC  (gRPC, flagd.evaluation.v1): {best_rpc:>9.0} resolutions/s\n  \
         REST (OFREP over HTTP/1.1):       {best_rest:>9.0} resolutions/s\n  \
         RPC / REST: {:.2}",
        best_rpc / best_rest
    );
    println!(
        "{}",
        json!({"tasks": tasks, "seconds": seconds, "server_process": !in_process, "rpc_per_s": best_rpc.round(),
               "rest_per_s": best_rest.round(), "ratio": best_rpc / best_rest})
    );
}
