//! A service that evaluates a flag and tracks purchases for 1,000 simulated
//! users, sending its events to a flag server's collector through
//! `HttpSink` with a spool — stop the server for a while mid-run and nothing
//! is lost.
//!
//! ```sh
//! # terminal 1: the server with the example flags
//! FLAGYARD_ADMIN_TOKEN=change-me cargo run -q -p flagyard-cli -- serve --flags examples/flags.json
//! # terminal 2: the service (about 20 s)
//! cargo run -q -p flagyard --features http-sink --example shop -- [http://127.0.0.1:8013]
//! # terminal 3: what arrived
//! FLAGYARD_ADMIN_TOKEN=change-me cargo run -q -p flagyard-cli -- admin events --name purchase --limit 5
//! ```

use std::time::Duration;

use flagyard::core::{EvaluationContext, TrackingDetails};
use flagyard::{FlagyardProvider, HttpSink, SseSource};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "http://127.0.0.1:8013".into());
    let spool = std::env::temp_dir().join("flagyard-shop-spool");
    let sink = HttpSink::builder(format!("{server}/v1/events"))
        .spool(&spool)
        .close_deadline(Duration::from_secs(15))
        .build()?;
    let provider = FlagyardProvider::builder()
        .source(SseSource::builder(format!("{server}/v1/stream")).build()?)
        .sink(sink.clone())
        .on_error(|e| eprintln!("shop: {e}"))
        .build()?;
    provider.wait_until_ready(Duration::from_secs(5)).await;

    let (mut exposed, mut purchases) = (0, 0);
    for round in 0..20 {
        for i in 0..50 {
            let n = round * 50 + i;
            let email = if n % 10 == 0 {
                "example.com"
            } else {
                "mail.test"
            };
            let user = EvaluationContext::new()
                .with_targeting_key(format!("user-{n}"))
                .with_attribute("email", format!("user{n}@{email}"));
            let color = provider.get_string("banner-color", "red", &user);
            exposed += 1;
            // A made-up conversion: one user in four buys, a bit more with green.
            let buys = n % 4 == 0 || (color == "#27ae60" && n % 7 == 0);
            if buys {
                provider.track(
                    "purchase",
                    &user,
                    TrackingDetails::new()
                        .value(10.0 + (n % 50) as f64)
                        .field("color", color),
                );
                purchases += 1;
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    println!("shop: {exposed} users evaluated, {purchases} purchases tracked; closing");
    // Summaries and the last events go now; what the collector cannot take
    // within the deadline stays in the spool for the next start.
    tokio::task::spawn_blocking(move || provider.close()).await?;
    let stats = sink.stats();
    println!(
        "shop: delivered {}, pending {} (in {}), dropped {}, retries {}",
        stats.delivered,
        stats.pending,
        spool.display(),
        stats.dropped,
        stats.retries
    );
    Ok(())
}
