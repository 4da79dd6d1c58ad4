//! An A/B test end to end: simulated users of a shop evaluate the example's
//! `banner-color` flag (a 50/50 `fractional` split of `red` and `green`)
//! through a Flagyard provider following a running server, and some of them
//! buy — green buyers 10 % more often than red ones, a true relative lift
//! the experiment's results should find. The provider's `HttpSink` sends the
//! exposures (one per user and variant) and the `purchase_completed` and
//! `revenue` tracking events to the server's collector.
//!
//! ```sh
//! # terminal 1: the server with the example flags
//! FLAGYARD_ADMIN_TOKEN=change-me cargo run -q -p flagyard-cli -- serve --flags examples/flags.json
//! # terminal 2: the experiment, the users (about 10 s), the results
//! export FLAGYARD_ADMIN_TOKEN=change-me
//! cargo run -q -p flagyard-cli -- experiment create banner-color \
//!     --metric purchase_completed --metric revenue:value --control red
//! cargo run -q -p flagyard-server --example ab_test -- [--users 20000] [--seed 7] [--lift 0.10]
//! cargo run -q -p flagyard-cli -- experiment results banner-color
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use flagyard::core::{EvaluationContext, TrackingDetails};
use flagyard::{FlagyardProvider, HttpSink, SseSource};

/// What to simulate.
#[derive(Debug, Clone)]
pub(crate) struct Simulation {
    /// The server's base URL.
    pub(crate) server: String,
    /// Its SDK key, if it wants one.
    pub(crate) sdk_key: Option<String>,
    /// The flag (a split whose variants are `control` and another).
    pub(crate) flag: String,
    /// The variant without the lift.
    pub(crate) control: String,
    /// Users, each evaluating the flag once.
    pub(crate) users: u64,
    /// Seeds who buys and for how much (the split itself is the flag's).
    pub(crate) seed: u64,
    /// The control's conversion rate.
    pub(crate) base_rate: f64,
    /// The other variants' relative lift over it (0.10: 10 % more buyers).
    pub(crate) lift: f64,
    /// Users' keys start with this (so that runs can use fresh users).
    pub(crate) key_prefix: String,
}

impl Default for Simulation {
    fn default() -> Self {
        Simulation {
            server: "http://127.0.0.1:8013".into(),
            sdk_key: None,
            flag: "banner-color".into(),
            control: "red".into(),
            users: 20_000,
            seed: 7,
            base_rate: 0.30,
            lift: 0.10,
            key_prefix: "user".into(),
        }
    }
}

/// What the simulation did, per variant.
#[derive(Debug, Default)]
pub(crate) struct Simulated {
    /// Users served each variant.
    pub(crate) exposed: BTreeMap<String, u64>,
    /// Users who bought.
    pub(crate) converted: BTreeMap<String, u64>,
    /// Events the sink delivered.
    pub(crate) delivered: u64,
    /// Events it could not (pending or dropped at close).
    pub(crate) undelivered: u64,
}

/// Runs the users through a provider on `simulation.server`, then closes it
/// (which delivers every event).
pub(crate) async fn simulate(
    simulation: &Simulation,
) -> Result<Simulated, Box<dyn std::error::Error>> {
    let server = simulation.server.trim_end_matches('/');
    let mut sink = HttpSink::builder(format!("{server}/v1/events"))
        .batch_size(2000)
        .interval(Duration::from_millis(200))
        .capacity(200_000)
        .close_deadline(Duration::from_secs(30));
    let mut source = SseSource::builder(format!("{server}/v1/stream"));
    if let Some(key) = &simulation.sdk_key {
        sink = sink.sdk_key(key);
        source = source.sdk_key(key);
    }
    let sink = sink.build()?;
    let provider = FlagyardProvider::builder()
        .source(source.build()?)
        .sink(sink.clone())
        .exposure_queue(1 << 17)
        .on_error(|e| eprintln!("ab_test: {e}"))
        .build()?;
    if !provider
        .wait_until_ready(Duration::from_secs(10))
        .await
        .success
    {
        return Err(format!("{server}: the provider did not become ready").into());
    }
    let mut rng = fastrand::Rng::with_seed(simulation.seed);
    let mut out = Simulated::default();
    for i in 0..simulation.users {
        let user =
            EvaluationContext::new().with_targeting_key(format!("{}-{i}", simulation.key_prefix));
        let details = provider.get_string_details(&simulation.flag, "", &user);
        let Some(variant) = details.variant.map(|v| v.into_owned()) else {
            return Err(format!(
                "{}: no variant served ({:?})",
                simulation.flag, details.error
            )
            .into());
        };
        *out.exposed.entry(variant.clone()).or_default() += 1;
        let rate = if variant == simulation.control {
            simulation.base_rate
        } else {
            simulation.base_rate * (1.0 + simulation.lift)
        };
        if rng.f64() < rate {
            *out.converted.entry(variant.clone()).or_default() += 1;
            provider.track("purchase_completed", &user, TrackingDetails::new());
            let basket = 20.0 + rng.f64() * 60.0;
            provider.track("revenue", &user, TrackingDetails::new().value(basket));
        }
        // Let the sink keep up (its queue holds 131,072 events).
        if i % 5000 == 4999 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    tokio::task::spawn_blocking(move || provider.close()).await?;
    let stats = sink.stats();
    out.delivered = stats.delivered;
    out.undelivered = stats.pending + stats.dropped;
    Ok(out)
}

#[allow(dead_code)] // Included by tests/experiments.rs, which has its own main.
#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut simulation = Simulation::default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--users" => simulation.users = value()?.parse()?,
            "--seed" => simulation.seed = value()?.parse()?,
            "--lift" => simulation.lift = value()?.parse()?,
            "--sdk-key" => simulation.sdk_key = Some(value()?),
            "--prefix" => simulation.key_prefix = value()?,
            server if !server.starts_with('-') => simulation.server = server.to_string(),
            other => return Err(format!("unknown option {other}").into()),
        }
    }
    let done = simulate(&simulation).await?;
    for (variant, users) in &done.exposed {
        let converted = done.converted.get(variant).copied().unwrap_or(0);
        println!("ab_test: {variant}: {users} users, {converted} bought");
    }
    println!(
        "ab_test: {} events delivered, {} not",
        done.delivered, done.undelivered
    );
    Ok(())
}
