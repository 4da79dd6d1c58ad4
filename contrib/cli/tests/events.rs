//! Events from a provider's `HttpSink` to a real `flagyard serve`: every
//! event arrives exactly once while the server is killed (SIGKILL) and
//! restarted twice, with the spool on; bots are filtered; `close()` delivers
//! what is buffered; `flagyard admin events` shows them.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{bin, serve, serve_at};
use flagyard::core::{EvaluationContext, ExposureMode, TrackingDetails};
use flagyard::{FlagyardProvider, HttpSink, ReconnectPolicy, USER_AGENT_ATTRIBUTE};
use serde_json::Value;

const DOCUMENT: &str = r#"{"flags": {
  "new-checkout": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off",
     "targeting": {"fractional": [["on", 50], ["off", 50]]}}
}}"#;

const SDK_KEY: &str = "sdk-key";

/// Every kept event of `kind`, through the admin API, page by page.
fn all_events(base: &str, kind: &str) -> Vec<Value> {
    let client = reqwest::blocking::Client::new();
    let mut out = Vec::new();
    let mut before: Option<u64> = None;
    loop {
        let mut url = format!("{base}/v1/admin/events?kind={kind}&limit=1000");
        if let Some(before) = before {
            url.push_str(&format!("&before={before}"));
        }
        let page: Value = client
            .get(&url)
            .bearer_auth("tok")
            .send()
            .and_then(|r| r.error_for_status())
            .and_then(|r| r.json())
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        out.extend(page["events"].as_array().expect("events").iter().cloned());
        match page["next"].as_u64() {
            Some(next) => before = Some(next),
            None => return out,
        }
    }
}

fn port_of(base: &str) -> u16 {
    base.rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("a port")
}

#[test]
fn every_event_arrives_once_while_the_collector_is_killed_and_restarted_twice() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("server.sqlite");
    let (server, base) = serve(&db, &["--sdk-key", SDK_KEY]);
    let mut server = Some(server);
    let listen = format!("127.0.0.1:{}", port_of(&base));

    let sink = HttpSink::builder(format!("{base}/v1/events"))
        .sdk_key(SDK_KEY)
        .spool(dir.path().join("spool"))
        .batch_size(500)
        .interval(Duration::from_millis(100))
        .reconnect(ReconnectPolicy::fast(Duration::from_millis(50)))
        .close_deadline(Duration::from_secs(30))
        .build()
        .expect("sink");
    let provider = FlagyardProvider::builder()
        .bootstrap_document(DOCUMENT)
        .sink(sink.clone())
        .exposures(ExposureMode::Full)
        .dedup_exposures(false)
        .exposure_queue(1 << 17)
        .build()
        .expect("provider");

    // 100,000 evaluations (each of its own user) and 10,000 purchases, over
    // about five seconds, while the collector dies twice.
    let load = {
        let provider = provider.clone();
        std::thread::spawn(move || {
            for chunk in 0..100 {
                for i in 0..1000 {
                    let user = format!("user-{}", chunk * 1000 + i);
                    let ctx = EvaluationContext::new()
                        .with_targeting_key(user.clone())
                        .with_attribute(USER_AGENT_ATTRIBUTE, "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0");
                    provider.get_bool("new-checkout", false, &ctx);
                    if i % 10 == 0 {
                        provider.track("purchase", &ctx, TrackingDetails::new().value(9.5));
                    }
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    for _ in 0..2 {
        std::thread::sleep(Duration::from_millis(1200));
        let mut running = server.take().expect("running");
        running.kill().expect("SIGKILL");
        running.wait().expect("reaped");
        std::thread::sleep(Duration::from_millis(800));
        let (restarted, _) = serve_at(&listen, &db, &["--sdk-key", SDK_KEY]);
        server = Some(restarted);
    }
    load.join().expect("load ran");
    let started = Instant::now();
    provider.close();
    println!(
        "close took {:?}; sink {:?}",
        started.elapsed(),
        sink.stats()
    );
    let stats = sink.stats();
    assert_eq!(
        (stats.dropped, stats.pending, stats.refused),
        (0, 0, 0),
        "{stats:?}"
    );
    assert!(stats.retries > 0, "the outages were noticed: {stats:?}");
    assert_eq!(provider.event_stats().dropped, 0);

    let exposures = all_events(&base, "exposure");
    let tracking = all_events(&base, "tracking");
    let mut users: Vec<&str> = exposures
        .iter()
        .map(|e| e["event"]["targetingKey"].as_str().expect("key"))
        .collect();
    users.sort_unstable();
    users.dedup();
    assert_eq!(
        (exposures.len(), users.len(), tracking.len()),
        (100_000, 100_000, 10_000),
        "every event once"
    );
    assert!(tracking.iter().all(|t| t["event"]["value"] == 9.5));

    // The CLI shows them.
    let output = Command::new(bin())
        .args([
            "admin", "--server", &base, "--token", "tok", "events", "--name", "purchase",
            "--limit", "3",
        ])
        .output()
        .expect("flagyard admin events");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert_eq!(lines.len(), 3);
    assert!(lines.iter().all(|l| l["event"]["name"] == "purchase"));
    assert!(
        lines[0]["id"].as_u64() < lines[2]["id"].as_u64(),
        "newest last"
    );

    let mut running = server.take().expect("running");
    running.kill().expect("kill");
    running.wait().expect("reaped");
}
