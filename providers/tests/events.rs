//! Events for the sink: `track`, the exposure modes (full, summary, off),
//! summary counts and first-seen exposures across threads, bots, and the
//! tracking limits.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use flagyard::core::{
    EvaluationContext, Event, ExposureMode, Reason, Sink, SinkError, SummaryCount, TrackingDetails,
};
use flagyard::{FlagyardProvider, FlagyardProviderBuilder, MemorySink, USER_AGENT_ATTRIBUTE};

const DOCUMENT: &str = r#"{"flags": {
  "new-checkout": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off",
     "targeting": {"if": [{"ends_with": [{"var": "email"}, "@example.com"]}, "on", "off"]}},
  "color": {"state": "ENABLED", "variants": {"red": "red", "blue": "blue"}, "defaultVariant": "red"}
}, "metadata": {"flagSetId": "shop"}}"#;

const GOOGLEBOT: &str = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";
const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";

fn builder(sink: &MemorySink) -> FlagyardProviderBuilder {
    FlagyardProvider::builder()
        .bootstrap_document(DOCUMENT)
        .offline(true)
        .sink(sink.clone())
}

fn user(i: usize) -> EvaluationContext {
    let domain = if i.is_multiple_of(2) {
        "example.com"
    } else {
        "mail.test"
    };
    EvaluationContext::new()
        .with_targeting_key(format!("user-{i}"))
        .with_attribute("email", format!("u{i}@{domain}"))
        .with_attribute(USER_AGENT_ATTRIBUTE, FIREFOX)
}

fn tracking(events: &[Event]) -> Vec<&flagyard::core::TrackingEvent> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Tracking(t) => Some(t),
            _ => None,
        })
        .collect()
}

fn exposures(events: &[Event]) -> Vec<&flagyard::core::ExposureEvent> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Exposure(x) => Some(x),
            _ => None,
        })
        .collect()
}

fn summary_counts(events: &[Event]) -> Vec<SummaryCount> {
    let mut counts: Vec<SummaryCount> = Vec::new();
    for event in events {
        if let Event::Summary(s) = event {
            assert!(s.start <= s.end);
            for c in &s.counts {
                match counts
                    .iter_mut()
                    .find(|k| (&k.flag, &k.variant, k.reason) == (&c.flag, &c.variant, c.reason))
                {
                    Some(k) => k.count += c.count,
                    None => counts.push(c.clone()),
                }
            }
        }
    }
    counts.sort_by(|a, b| (&a.flag, &a.variant).cmp(&(&b.flag, &b.variant)));
    counts
}

#[test]
fn track_records_the_name_the_user_the_value_and_the_fields() {
    let sink = MemorySink::new();
    let provider = builder(&sink).build().expect("builds");
    provider.track(
        "purchase",
        &user(7),
        TrackingDetails::new().value(49.9).field("currency", "EUR"),
    );
    provider.track("signup", &EvaluationContext::new(), TrackingDetails::new());
    provider.close();
    let events = sink.events();
    let tracked = tracking(&events);
    assert_eq!(tracked.len(), 2, "{events:?}");
    assert_eq!(tracked[0].name, "purchase");
    assert_eq!(tracked[0].targeting_key.as_deref(), Some("user-7"));
    assert_eq!(tracked[0].details.value, Some(49.9));
    assert_eq!(tracked[0].details.fields["currency"], "EUR");
    assert_eq!(tracked[1].name, "signup");
    assert_eq!(tracked[1].targeting_key, None);
    // Without a sink, tracking does nothing (and does not fail).
    let plain = FlagyardProvider::from_document(DOCUMENT).expect("builds");
    plain.track("purchase", &user(1), TrackingDetails::new().value(1.0));
    assert_eq!(plain.event_stats(), Default::default());
}

#[test]
fn long_names_are_cut_and_large_details_dropped_each_reported_once() {
    let sink = MemorySink::new();
    let reports = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen = Arc::clone(&reports);
    let provider = builder(&sink)
        .on_error(move |e| seen.lock().expect("lock").push(e.to_string()))
        .build()
        .expect("builds");
    let long = "é".repeat(150);
    provider.track(&long, &user(1), TrackingDetails::new());
    provider.track(&long, &user(2), TrackingDetails::new());
    let big = TrackingDetails::new().field("blob", "x".repeat(5_000));
    provider.track("upload", &user(1), big.clone());
    provider.track("upload", &user(2), big);
    // Just under the limit passes.
    let fits = TrackingDetails::new().field("blob", "x".repeat(4_980));
    provider.track("upload", &user(3), fits);
    provider.close();
    let events = sink.events();
    let tracked = tracking(&events);
    assert_eq!(
        tracked.len(),
        3,
        "two truncated, one that fits: {tracked:?}"
    );
    assert_eq!(tracked[0].name, "é".repeat(100));
    assert_eq!(tracked[1].name.chars().count(), 100);
    assert_eq!(tracked[2].targeting_key.as_deref(), Some("user-3"));
    let stats = provider.event_stats();
    assert_eq!((stats.names_truncated, stats.details_dropped), (2, 2));
    let reports = reports.lock().expect("lock");
    assert_eq!(reports.len(), 2, "{reports:?}");
    assert!(
        reports.iter().any(|r| r.contains("over 100 characters")),
        "{reports:?}"
    );
    assert!(
        reports
            .iter()
            .any(|r| r.contains("over the 5000-byte limit") && r.contains("upload")),
        "{reports:?}"
    );
}

#[test]
fn summaries_count_every_evaluation_and_send_each_user_s_first_exposure_once() {
    let sink = MemorySink::new();
    let provider = builder(&sink)
        .exposures(ExposureMode::Summary)
        .build()
        .expect("builds");
    // Two threads, 10 users each evaluated 50 times per thread.
    std::thread::scope(|scope| {
        for _ in 0..2 {
            let provider = provider.clone();
            scope.spawn(move || {
                for round in 0..50_u32 {
                    for i in 0..10 {
                        let ctx = user(i);
                        assert_eq!(
                            provider.get_bool("new-checkout", false, &ctx),
                            i.is_multiple_of(2)
                        );
                        if round.is_multiple_of(5) {
                            assert_eq!(provider.get_string("color", "none", &ctx), "red");
                        }
                    }
                }
            });
        }
    });
    provider.close();
    let events = sink.events();
    let counts = summary_counts(&events);
    let found: Vec<(&str, Option<&str>, Reason, u64)> = counts
        .iter()
        .map(|c| (c.flag.as_str(), c.variant.as_deref(), c.reason, c.count))
        .collect();
    assert_eq!(
        found,
        [
            ("color", Some("red"), Reason::Static, 2 * 10 * 10),
            (
                "new-checkout",
                Some("off"),
                Reason::TargetingMatch,
                2 * 50 * 5
            ),
            (
                "new-checkout",
                Some("on"),
                Reason::TargetingMatch,
                2 * 50 * 5
            ),
        ]
    );
    assert!(
        counts.iter().all(|c| c.version.is_none()),
        "a bootstrap document has no version"
    );
    assert!(
        exposures(&events)
            .iter()
            .all(|e| e.flag_set_id.as_deref() == Some("shop")),
        "the flag set comes from the document's metadata"
    );
    // One exposure per (flag, variant, user), across both threads.
    let exposed = exposures(&events);
    assert_eq!(exposed.len(), 10 + 10, "{exposed:?}");
    let mut keys: Vec<(String, Option<String>)> = exposed
        .iter()
        .map(|e| (e.flag.clone(), e.targeting_key.clone()))
        .collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 20);
}

#[test]
fn providers_read_in_turn_on_one_thread_each_record_into_their_own_sink() {
    // A thread keeps a lane per provider and finds the one it used last
    // without a search: reads that alternate between providers, and a
    // provider built after another was closed, must each reach their own.
    let (full_sink, summary_sink, tracking_sink) =
        (MemorySink::new(), MemorySink::new(), MemorySink::new());
    let full = builder(&full_sink)
        .exposures(ExposureMode::Full)
        .dedup_exposures(false)
        .build()
        .expect("builds");
    let summary = builder(&summary_sink)
        .exposures(ExposureMode::Summary)
        .build()
        .expect("builds");
    let tracker = builder(&tracking_sink)
        .exposures(ExposureMode::Off)
        .build()
        .expect("builds");
    for round in 0..30 {
        for i in 0..4 {
            let ctx = user(i);
            full.get_bool("new-checkout", false, &ctx);
            if round % 3 == 0 {
                // Several reads of one provider in a row, then the others.
                summary.get_bool("new-checkout", false, &ctx);
                summary.get_bool("new-checkout", false, &ctx);
            }
            tracker.track("purchase", &ctx, TrackingDetails::new().value(1.0));
        }
    }
    for provider in [&full, &summary, &tracker] {
        provider.close();
    }
    let full_events = full_sink.events();
    assert_eq!(exposures(&full_events).len(), 30 * 4);
    assert!(tracking(&full_events).is_empty() && summary_counts(&full_events).is_empty());
    let summary_events = summary_sink.events();
    let counted: u64 = summary_counts(&summary_events)
        .iter()
        .map(|c| c.count)
        .sum();
    assert_eq!(counted, 10 * 4 * 2);
    assert_eq!(
        exposures(&summary_events).len(),
        4,
        "one first-seen per user"
    );
    let tracking_events = tracking_sink.events();
    assert_eq!(tracking(&tracking_events).len(), 30 * 4);
    assert!(exposures(&tracking_events).is_empty());

    // A provider after those were closed records on the same thread as well.
    let later_sink = MemorySink::new();
    let later = builder(&later_sink)
        .exposures(ExposureMode::Full)
        .build()
        .expect("builds");
    for i in 0..5 {
        later.get_bool("new-checkout", false, &user(i));
    }
    later.close();
    assert_eq!(exposures(&later_sink.events()).len(), 5);
    assert_eq!(full.event_stats().dropped, 0);
}

#[test]
fn a_summary_is_sent_every_interval_not_only_at_close() {
    let sink = MemorySink::new();
    let provider = builder(&sink)
        .offline(false)
        .exposures(ExposureMode::Summary)
        .summary_interval(Duration::from_millis(50))
        .build()
        .expect("builds");
    for i in 0..10 {
        provider.get_bool("new-checkout", false, &user(i));
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !sink.events().iter().any(|e| matches!(e, Event::Summary(_))) {
        assert!(
            std::time::Instant::now() < deadline,
            "no summary within 5 s"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(
        summary_counts(&sink.events())
            .iter()
            .map(|c| c.count)
            .sum::<u64>(),
        10
    );
    provider.close();
}

#[test]
fn off_records_no_exposures_and_still_tracks() {
    let sink = MemorySink::new();
    let provider = builder(&sink)
        .exposures(ExposureMode::Off)
        .build()
        .expect("builds");
    for i in 0..20 {
        provider.get_bool("new-checkout", false, &user(i));
    }
    provider.track("purchase", &user(1), TrackingDetails::new());
    provider.close();
    let events = sink.events();
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(matches!(events[0], Event::Tracking(_)));
}

#[test]
fn bots_produce_no_events_and_may_be_served_the_code_default() {
    let bot = EvaluationContext::new()
        .with_targeting_key("crawler")
        .with_attribute("email", "bot@example.com")
        .with_attribute(USER_AGENT_ATTRIBUTE, GOOGLEBOT);
    let sink = MemorySink::new();
    let provider = builder(&sink).build().expect("builds");
    assert!(
        provider.get_bool("new-checkout", false, &bot),
        "filtered, but served normally by default"
    );
    provider.track("purchase", &bot, TrackingDetails::new());
    provider.get_bool("new-checkout", false, &user(2));
    provider.close();
    let events = sink.events();
    assert_eq!(exposures(&events).len(), 1, "only the person: {events:?}");
    assert!(tracking(&events).is_empty());
    assert_eq!(provider.event_stats().bots_filtered, 2);

    // Serving bots the code default, with no sink at all.
    let provider = FlagyardProvider::builder()
        .bootstrap_document(DOCUMENT)
        .offline(true)
        .serve_bots_default(true)
        .build()
        .expect("builds");
    assert!(!provider.get_bool("new-checkout", false, &bot));
    let details = provider.get_bool_details("new-checkout", false, &bot);
    assert_eq!((details.reason, details.variant), (Reason::Default, None));
    assert!(
        provider.get_bool("new-checkout", false, &user(2)),
        "people are served"
    );

    // Filtering off: the bot's exposure is recorded.
    let sink = MemorySink::new();
    let provider = builder(&sink).filter_bots(false).build().expect("builds");
    provider.get_bool("new-checkout", false, &bot);
    provider.close();
    assert_eq!(exposures(&sink.events()).len(), 1);
}

/// A sink that asks for summaries, as network sinks do.
#[derive(Debug, Clone, Default)]
struct RemoteLike(MemorySink);

impl Sink for RemoteLike {
    fn record(&self, event: Event) {
        self.0.record(event);
    }
    fn exposure_mode(&self) -> ExposureMode {
        ExposureMode::Summary
    }
    fn flush(&self) -> Result<(), SinkError> {
        Ok(())
    }
}

#[test]
fn the_sink_chooses_the_mode_unless_the_builder_does() {
    let sink = RemoteLike::default();
    let provider = FlagyardProvider::builder()
        .bootstrap_document(DOCUMENT)
        .offline(true)
        .sink(sink.clone())
        .build()
        .expect("builds");
    for _ in 0..3 {
        provider.get_bool("new-checkout", false, &user(1));
    }
    provider.close();
    let events = sink.0.events();
    assert_eq!(summary_counts(&events)[0].count, 3, "{events:?}");

    let sink = RemoteLike::default();
    let provider = FlagyardProvider::builder()
        .bootstrap_document(DOCUMENT)
        .offline(true)
        .sink(sink.clone())
        .exposures(ExposureMode::Full)
        .dedup_exposures(false)
        .build()
        .expect("builds");
    for _ in 0..3 {
        provider.get_bool("new-checkout", false, &user(1));
    }
    provider.close();
    let events = sink.0.events();
    assert_eq!(exposures(&events).len(), 3);
    assert!(!events.iter().any(|e| matches!(e, Event::Summary(_))));
}

#[test]
fn an_openfeature_context_tracks_through_the_provider_handle() {
    let sink = MemorySink::new();
    let provider = builder(&sink).build().expect("builds");
    // What an OpenFeature user holds: the merged context (global, client,
    // invocation; the later wins).
    let mut merged = open_feature::EvaluationContext::default().with_targeting_key("user-9");
    merged.merge_missing(
        &open_feature::EvaluationContext::default()
            .with_targeting_key("global-user")
            .with_custom_field("plan", "pro"),
    );
    provider.track(
        "purchase",
        &flagyard::OpenFeatureContext(&merged),
        TrackingDetails::new().value(5.0),
    );
    provider.close();
    let events = sink.events();
    let tracked = tracking(&events);
    assert_eq!(tracked.len(), 1);
    assert_eq!(tracked[0].targeting_key.as_deref(), Some("user-9"));
}
