//! Flagyard quick-start: a provider that follows a flag file, keeps a disk cache,
//! serves OpenFeature and the synchronous fast path, and prints every change.
//!
//! ```sh
//! cargo run -p flagyard --example quickstart -- [FLAG_FILE] [--cache DIR] [--seconds N]
//! ```
//!
//! Edit the flag file while it runs: the listener fires and the printed values
//! change. Delete it or write garbage into it: the last good values stay and the
//! error is printed. Start it with the file missing: the cached flags serve at once.

use std::time::{Duration, Instant};

use flagyard::core::EvaluationContext;
use flagyard::{DiskStore, FileSource, FlagyardProvider, ProviderEvent};
use open_feature::OpenFeature;

struct Args {
    flags: String,
    cache: Option<String>,
    seconds: Option<u64>,
}

fn args() -> Args {
    let mut out = Args {
        flags: "examples/flags.json".into(),
        cache: None,
        seconds: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--cache" => out.cache = it.next(),
            "--seconds" => out.seconds = it.next().and_then(|s| s.parse().ok()),
            other => out.flags = other.to_string(),
        }
    }
    out
}

#[tokio::main]
async fn main() -> Result<(), flagyard::BuildError> {
    let args = args();
    let cache = match &args.cache {
        Some(dir) => DiskStore::builder().directory(dir).build(),
        None => DiskStore::new(),
    };
    println!("flags: {}  cache: {}", args.flags, cache.path().display());

    // 1. Compose the provider: a watched file, a disk cache, an error hook.
    let provider = FlagyardProvider::builder()
        .source(FileSource::new(&args.flags))
        .store(cache)
        .on_error(|e| eprintln!("on_error: {e}"))
        .build()?;

    // 2. A change listener (told at once if the cache already made it ready).
    let _subscription = provider.subscribe(|event| match event {
        ProviderEvent::ConfigurationChanged { flags_changed } => {
            println!("listener: changed {flags_changed:?}")
        }
        other => println!("listener: {other:?}"),
    });

    // 3. Hand a clone to OpenFeature; initialize returns at once.
    OpenFeature::singleton_mut()
        .await
        .set_provider(provider.clone())
        .await;
    let ready = provider.wait_until_ready(Duration::from_secs(2)).await;
    println!("ready: {} ({})", ready.success, ready.reason);
    let client = OpenFeature::singleton().await.create_client();

    let staff = EvaluationContext::new()
        .with_targeting_key("ada")
        .with_attribute("email", "ada@example.com")
        .with_attribute("appVersion", "2.1.0");
    let of_staff = open_feature::EvaluationContext::default()
        .with_targeting_key("ada")
        .with_custom_field("email", "ada@example.com");

    let started = Instant::now();
    let mut last = String::new();
    loop {
        // 4. The synchronous fast path: no await, no I/O, never fails.
        let line = format!(
            "sync: new-checkout={} banner-color={} max-items={} | openfeature: new-checkout={}",
            provider.get_bool("new-checkout", false, &staff),
            provider.get_string("banner-color", "none", &staff),
            provider.get_i64("max-items", 0, &staff),
            // 5. The OpenFeature client.
            client
                .get_bool_value("new-checkout", Some(&of_staff), None)
                .await
                .unwrap_or(false),
        );
        if line != last {
            println!("{line}");
            last = line;
        }
        if args
            .seconds
            .is_some_and(|s| started.elapsed() >= Duration::from_secs(s))
        {
            break;
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(250)) => {}
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    provider.close();
    println!("closed");
    Ok(())
}
