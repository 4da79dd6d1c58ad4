//! How fast a pancake change reaches a PancakeSource provider: a write made
//! through Flagyard (announced on pub/sub) and one made by another program
//! (a raw SET, seen through keyspace notifications), with a small state and
//! with 10,000 user overrides in Redis. Prints p50/p99/max per case.
//!
//! ```sh
//! redis-server --port 6390 --save '' &
//! cargo run --release -p flagyard --features pancake --example pancake_propagation -- redis://127.0.0.1:6390
//! ```
//!
//! It writes under the extension `propagation` and deletes its keys at the end.

use std::time::{Duration, Instant};

use flagyard::storage::pancake::{Kind, Pancake};
use flagyard::{FlagyardProvider, PancakeSource};

const ROUNDS: usize = 200;
const EXT: &str = "propagation";

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

async fn wait_for(provider: &FlagyardProvider, on: bool) -> Duration {
    let started = Instant::now();
    while provider.get_bool("SWITCH", !on, &()) != on {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "change never arrived"
        );
        tokio::task::yield_now().await;
    }
    started.elapsed()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "redis://127.0.0.1:6379".into());
    let pancake = Pancake::open(&url, EXT).await.expect("redis connects");
    let client = redis::Client::open(url.as_str()).expect("url");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("redis connects");
    pancake
        .set_active(Kind::Switch, "switch", false, "bench")
        .await
        .expect("write");
    let provider = FlagyardProvider::builder()
        .source(
            PancakeSource::builder(&url)
                .extension(EXT)
                .enable_keyspace_events(true)
                .build()
                .expect("valid source"),
        )
        .build()
        .expect("provider builds");
    assert!(
        provider
            .wait_until_ready(Duration::from_secs(5))
            .await
            .success
    );

    for overrides in [0usize, 10_000] {
        if overrides > 0 {
            for i in 0..overrides {
                let _: () = redis::cmd("SET")
                    .arg(format!("FLAG:{EXT}:k:user:BIG:user-{i}"))
                    .arg(if i % 2 == 0 { "1" } else { "0" })
                    .query_async(&mut conn)
                    .await
                    .expect("set");
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        for (case, outside) in [
            ("Flagyard write (pub/sub)", false),
            ("raw SET (keyspace)", true),
        ] {
            let mut times = Vec::with_capacity(ROUNDS);
            for round in 0..ROUNDS {
                let on = round % 2 == 0;
                let started = Instant::now();
                if outside {
                    let _: () = redis::cmd("SET")
                        .arg(format!("SWITCH:{EXT}:SWITCH"))
                        .arg(if on { "1" } else { "0" })
                        .query_async(&mut conn)
                        .await
                        .expect("set");
                } else if on {
                    pancake
                        .set_active(Kind::Switch, "switch", true, "bench")
                        .await
                        .expect("write");
                } else {
                    pancake
                        .set_active(Kind::Switch, "switch", false, "bench")
                        .await
                        .expect("write");
                }
                wait_for(&provider, on).await;
                times.push(started.elapsed());
            }
            times.sort();
            println!(
                "{overrides:>6} overrides, {case:<26} p50 {:>8.2?}  p99 {:>8.2?}  max {:>8.2?}",
                percentile(&times, 0.5),
                percentile(&times, 0.99),
                times[times.len() - 1]
            );
        }
    }
    provider.close();
    let _: () = redis::cmd("EVAL")
        .arg("for _, k in ipairs(redis.call('KEYS', ARGV[1])) do redis.call('DEL', k) end")
        .arg(0)
        .arg(format!("*:{EXT}:*"))
        .query_async(&mut conn)
        .await
        .expect("cleanup");
}
