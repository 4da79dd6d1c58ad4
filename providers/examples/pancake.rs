//! A Rust service reading flask-pancake's switches, flags and samples: the
//! values come from a local mirror of Redis, through OpenFeature and the
//! synchronous getters, and are printed again on every change.
//!
//! ```sh
//! cargo run -p flagyard --features pancake --example pancake -- [redis://127.0.0.1:6379] [--seconds N]
//! ```
//!
//! While it runs, change things with `flagyard pancake …`, the `/admin` page of
//! `flagyard serve --pancake …`, or a flask-pancake app on the same Redis.

use std::sync::mpsc;
use std::time::Duration;

use flagyard::core::EvaluationContext;
use flagyard::{FlagyardProvider, PancakeSource, ProviderEvent};
use open_feature::OpenFeature;

fn print_state(provider: &FlagyardProvider) {
    let user = |key: &str| EvaluationContext::new().with_targeting_key(key);
    let new_ui = provider.get_bool_details("NEW_UI", false, &user("ada"));
    let beta_ada = provider.get_bool("BETA", false, &user("ada"));
    let beta_bob = provider.get_bool("BETA", false, &user("bob"));
    let checks = 10_000;
    let hits = (0..checks)
        .filter(|_| provider.get_bool("ROLLOUT", false, &user("ada")))
        .count();
    println!(
        "NEW_UI={} ({})  BETA: ada={beta_ada} bob={beta_bob}  ROLLOUT: {:.1}% of {checks} checks",
        new_ui.value,
        new_ui.reason,
        hits as f64 * 100.0 / checks as f64
    );
}

#[tokio::main]
async fn main() -> Result<(), flagyard::BuildError> {
    let mut redis = "redis://127.0.0.1:6379".to_string();
    let mut seconds = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seconds" => seconds = args.next().and_then(|s| s.parse::<u64>().ok()),
            other => redis = other.to_string(),
        }
    }

    // Declare what the service uses, with defaults (stored where Redis has
    // nothing yet, as flask-pancake does on first use).
    let provider = FlagyardProvider::builder()
        .source(
            PancakeSource::builder(&redis)
                .switch("NEW_UI", false)
                .flag("BETA", false)
                .sample("ROLLOUT", 25.0)
                .build()?,
        )
        .on_error(|e| eprintln!("on_error: {e}"))
        .build()?;
    let (tx, changes) = mpsc::channel();
    let _subscription = provider.subscribe(move |event| {
        if let ProviderEvent::ConfigurationChanged { flags_changed } = event {
            let _ = tx.send(flags_changed.clone());
        }
    });
    OpenFeature::singleton_mut()
        .await
        .set_provider(provider.clone())
        .await;
    let ready = provider.wait_until_ready(Duration::from_secs(5)).await;
    println!(
        "pancake mirror of {redis}: ready={} ({})",
        ready.success, ready.reason
    );

    // Through the OpenFeature client…
    let client = OpenFeature::singleton().await.create_client();
    let ctx = open_feature::EvaluationContext::default().with_targeting_key("ada");
    let details = client
        .get_bool_details("NEW_UI", Some(&ctx), None)
        .await
        .map(|d| format!("{} ({:?})", d.value, d.reason));
    println!("OpenFeature NEW_UI for ada: {details:?}");

    // …and the synchronous getters, on every change.
    print_state(&provider);
    let deadline = seconds.map(|s| std::time::Instant::now() + Duration::from_secs(s));
    loop {
        let wait = deadline.map_or(Duration::from_secs(3600), |d| {
            d.saturating_duration_since(std::time::Instant::now())
        });
        match changes.recv_timeout(wait) {
            Ok(changed) => {
                print!("changed {changed:?}: ");
                print_state(&provider);
            }
            Err(mpsc::RecvTimeoutError::Timeout) if deadline.is_some() => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    provider.close();
    Ok(())
}
