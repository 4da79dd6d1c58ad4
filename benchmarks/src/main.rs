//! Flagyard against the anchors, on the same work, in one run.
//!
//! `cargo run --release` (from `benchmarks/`) prints a table and writes
//! `results.json`. See the README and docs/BENCHMARKS.md.

mod alloc;
mod cold;
mod docs;
mod floor;
mod server;
mod timing;

use std::collections::HashMap;
use std::hint::black_box;

use arc_swap::ArcSwap;
use async_trait::async_trait;
use flagyard::core::{ExposureMode, TrackingDetails};
use flagyard::{FlagyardProvider, NoopSink};
use open_feature::provider::{FeatureProvider, ProviderMetadata, ResolutionDetails};
use open_feature::{EvaluationContext as OfContext, EvaluationResult, OpenFeature, StructValue};
use open_feature_flagd::resolver::in_process::resolver::FileResolver;
use open_feature_flagd::{FlagdOptions, FlagdProvider, ResolverType};
use serde_json::json;
use unleash_yggdrasil::state::EnrichedContext;
use unleash_yggdrasil::{Context as UnleashContext, EngineState, UpdateMessage};

use floor::{HandRule, hand_written};
use timing::{Measurement, contender, measure_together};

#[global_allocator]
static ALLOCATOR: alloc::Counting = alloc::Counting;

/// The work items.
const ITEMS: [(&str, &str); 4] = [
    ("static boolean", "static-bool"),
    ("ends_with rule", "email-rule"),
    ("50/50 fractional", "split"),
    ("rule among 10,000 flags", "email-rule"),
];

struct ConstantProvider(ProviderMetadata);

#[async_trait]
impl FeatureProvider for ConstantProvider {
    fn metadata(&self) -> &ProviderMetadata {
        &self.0
    }
    async fn resolve_bool_value(
        &self,
        _: &str,
        _: &OfContext,
    ) -> EvaluationResult<ResolutionDetails<bool>> {
        Ok(ResolutionDetails::new(true))
    }
    async fn resolve_int_value(
        &self,
        _: &str,
        _: &OfContext,
    ) -> EvaluationResult<ResolutionDetails<i64>> {
        Ok(ResolutionDetails::new(1))
    }
    async fn resolve_float_value(
        &self,
        _: &str,
        _: &OfContext,
    ) -> EvaluationResult<ResolutionDetails<f64>> {
        Ok(ResolutionDetails::new(1.0))
    }
    async fn resolve_string_value(
        &self,
        _: &str,
        _: &OfContext,
    ) -> EvaluationResult<ResolutionDetails<String>> {
        Ok(ResolutionDetails::new("red".to_string()))
    }
    async fn resolve_struct_value(
        &self,
        _: &str,
        _: &OfContext,
    ) -> EvaluationResult<ResolutionDetails<StructValue>> {
        Ok(ResolutionDetails::new(StructValue::default()))
    }
}

/// `track()` as a caller pays it when its thread's queue has room: batches
/// of 256 calls (the queue holds 1,024), each followed by a 25 ms pause in
/// which the provider's drain (every 10 ms) empties the queue. The table's
/// `track()` row calls it back to back, ten million times a second, so the
/// queue is full and most calls are the dropping path. Median, min and max
/// ns per call over the batches.
///
/// `pause` says how the caller waits between batches: asleep (the thread
/// leaves its core; on this VM the first call after waking costs microseconds
/// whatever it calls) or busy (spinning on the clock, as a thread that serves
/// requests stays on its core).
fn track_with_room(
    provider: &FlagyardProvider,
    users: &[flagyard::core::EvaluationContext],
    pause: Pause,
) -> (f64, f64, f64) {
    const PAUSE: std::time::Duration = std::time::Duration::from_millis(25);
    let mut per_call: Vec<f64> = (0..200)
        .map(|batch| {
            match pause {
                Pause::Asleep => std::thread::sleep(PAUSE),
                Pause::Busy => {
                    let from = std::time::Instant::now();
                    while from.elapsed() < PAUSE {
                        std::hint::spin_loop();
                    }
                }
            }
            let started = std::time::Instant::now();
            for i in 0..256 {
                provider.track(
                    black_box("purchase"),
                    &users[(batch * 256 + i) % users.len()],
                    TrackingDetails::new().value(black_box(9.5)),
                );
            }
            started.elapsed().as_nanos() as f64 / 256.0
        })
        .collect();
    per_call.sort_by(f64::total_cmp);
    (per_call[100], per_call[0], per_call[199])
}

/// How [`track_with_room`]'s caller waits between batches.
#[derive(Clone, Copy)]
enum Pause {
    Asleep,
    Busy,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("cold-start-child") {
        cold::child(&args[2..]);
        return;
    }
    if args.get(1).map(String::as_str) == Some("server-child") {
        server::child(&args[2..]);
        return;
    }
    if args.get(1).map(String::as_str) == Some("server") {
        // The server section alone.
        let dir = tempfile::tempdir().expect("temp dir");
        let (text, _) = server::measure(dir.path());
        println!("{text}");
        return;
    }
    alloc::enable();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let small_path = dir.path().join("small.json");
    let large_path = dir.path().join("large.json");
    std::fs::write(&small_path, docs::flagd(false).to_string()).expect("write");
    std::fs::write(&large_path, docs::flagd(true).to_string()).expect("write");

    let users = docs::users();
    let of_users: Vec<OfContext> = users.iter().map(docs::of_context).collect();
    let unleash_users: Vec<UnleashContext> = users.iter().map(docs::unleash_context).collect();

    // --- Flagyard -----------------------------------------------------------
    // The contrib flagd provider buckets `fractional` the v3 way (CBOR), so
    // Flagyard runs v3 too: the same answers for the same work.
    // `None`: no sink; else a sink and this exposure mode.
    let flagyard = |large: bool, sink: Option<ExposureMode>| {
        let builder = FlagyardProvider::builder()
            .bootstrap_document(docs::flagd(large).to_string())
            .offline(true)
            .fractional(flagyard::core::FractionalVersion::V3);
        match sink {
            Some(mode) => builder.sink(NoopSink).exposures(mode).build(),
            None => builder.build(),
        }
        .expect("provider builds")
    };
    let flagyard_small = flagyard(false, None);
    let flagyard_large = flagyard(true, None);
    let recording_small = flagyard(false, Some(ExposureMode::Full));
    if args.get(1).map(String::as_str) == Some("track") {
        // `track`: the track() section alone, five rounds of each pause.
        for _ in 0..5 {
            for (pause, name) in [(Pause::Asleep, "asleep"), (Pause::Busy, "busy")] {
                let (median, min, max) = track_with_room(&recording_small, &users, pause);
                println!(
                    "track() with room, caller {name} between batches: \
                     median {median:.1} ns, min {min:.1}, max {max:.1}"
                );
            }
        }
        return;
    }
    let recording_large = flagyard(true, Some(ExposureMode::Full));
    let summary_small = flagyard(false, Some(ExposureMode::Summary));
    let summary_large = flagyard(true, Some(ExposureMode::Summary));

    // --- Anchors --------------------------------------------------------------
    let flagd_options = |path: &std::path::Path| FlagdOptions {
        resolver_type: ResolverType::File,
        source_configuration: Some(path.display().to_string()),
        cache_settings: None,
        ..Default::default()
    };
    let (flagd_small, flagd_large, resolver_small, resolver_large) = runtime.block_on(async {
        (
            FlagdProvider::new(flagd_options(&small_path))
                .await
                .expect("flagd provider (small)"),
            FlagdProvider::new(flagd_options(&large_path))
                .await
                .expect("flagd provider (large)"),
            FileResolver::new(small_path.display().to_string(), None)
                .await
                .expect("flagd resolver (small)"),
            FileResolver::new(large_path.display().to_string(), None)
                .await
                .expect("flagd resolver (large)"),
        )
    });
    let clients = runtime.block_on(async {
        let mut api = OpenFeature::singleton_mut().await;
        api.set_named_provider(
            "constant",
            ConstantProvider(ProviderMetadata::new("constant")),
        )
        .await;
        api.set_named_provider("flagd-small", flagd_small).await;
        api.set_named_provider("flagd-large", flagd_large).await;
        api.set_named_provider("flagyard-small", flagyard_small.clone())
            .await;
        api.set_named_provider("flagyard-large", flagyard_large.clone())
            .await;
        api.set_named_provider("flagyard-rec-small", recording_small.clone())
            .await;
        api.set_named_provider("flagyard-rec-large", recording_large.clone())
            .await;
        [
            "constant",
            "flagd-small",
            "flagd-large",
            "flagyard-small",
            "flagyard-large",
            "flagyard-rec-small",
            "flagyard-rec-large",
        ]
        .map(|name| (name, api.create_named_client(name)))
        .into_iter()
        .collect::<HashMap<_, _>>()
    });
    let ygg_small = EngineState::default();
    let _ = ygg_small.take_state(UpdateMessage::FullResponse(
        serde_json::from_value(docs::unleash(false)).expect("unleash features"),
    ));
    let ygg_large = EngineState::default();
    let _ = ygg_large.take_state(UpdateMessage::FullResponse(
        serde_json::from_value(docs::unleash(true)).expect("unleash features"),
    ));

    let floor_bools: ArcSwap<HashMap<String, bool>> = ArcSwap::from_pointee(
        (0..docs::LARGE)
            .map(|i| (format!("flag-{i}"), i % 2 == 0))
            .chain([("static-bool".into(), true)])
            .collect(),
    );
    let floor_small: ArcSwap<HashMap<String, HandRule>> = ArcSwap::from_pointee(
        [
            ("static-bool".to_string(), HandRule::Static),
            ("email-rule".into(), HandRule::EndsWith),
            ("split".into(), HandRule::Split),
        ]
        .into_iter()
        .collect(),
    );
    let floor_large: ArcSwap<HashMap<String, HandRule>> = ArcSwap::from_pointee(
        (0..docs::LARGE)
            .map(|i| (format!("flag-{i}"), HandRule::Static))
            .chain([("email-rule".to_string(), HandRule::EndsWith)])
            .collect(),
    );

    // --- Correctness: every implementation gives the same answers ------------
    for (i, u) in users.iter().enumerate().take(200) {
        let floor_rule = hand_written(&HandRule::EndsWith, "email-rule", u);
        assert_eq!(
            floor_rule,
            flagyard_small.get_bool("email-rule", false, u),
            "the hand-written rule and flagyard disagree for user {i}"
        );
        let floor_split = hand_written(&HandRule::Split, "split", u);
        let served = flagyard_small.get_string("split", "", u);
        assert_eq!(
            floor_split,
            served == docs::SPLIT_FIRST,
            "the hand-written split and flagyard disagree for user {i} ({served})"
        );
        let want_rule = flagyard_small.get_bool("email-rule", false, u);
        let ygg = ygg_small
            .check_enabled(&EnrichedContext::from(
                &unleash_users[i],
                "email-rule",
                None,
            ))
            .unwrap_or(false);
        assert_eq!(
            ygg, want_rule,
            "yggdrasil and flagyard disagree on the rule for user {i}"
        );
        let flagd: bool = runtime
            .block_on(resolver_small.resolve_bool_value("email-rule", &of_users[i]))
            .map(|d| d.value)
            .unwrap_or(false);
        assert_eq!(
            flagd, want_rule,
            "flagd and flagyard disagree on the rule for user {i}"
        );
        let flagd_split = runtime
            .block_on(resolver_small.resolve_string_value("split", &of_users[i]))
            .map(|d| d.value)
            .unwrap_or_default();
        assert_eq!(
            flagd_split,
            flagyard_small.get_string("split", "", u),
            "flagd and flagyard disagree on the split for user {i}"
        );
    }

    let mut results: Vec<Measurement> = Vec::new();
    // The next user of the pool; shared by every contender of an item.
    let next = std::cell::Cell::new(0usize);
    let pick = || {
        next.set((next.get() + 1) % docs::USERS);
        next.get()
    };
    for (item, key) in ITEMS {
        let large = item.starts_with("rule among");
        let fractional = key == "split";
        let (fy, rec, sum, resolver, ygg, client_fy, client_flagd, floor) = if large {
            (
                &flagyard_large,
                &recording_large,
                &summary_large,
                &resolver_large,
                &ygg_large,
                &clients["flagyard-large"],
                &clients["flagd-large"],
                &floor_large,
            )
        } else {
            (
                &flagyard_small,
                &recording_small,
                &summary_small,
                &resolver_small,
                &ygg_small,
                &clients["flagyard-small"],
                &clients["flagd-small"],
                &floor_small,
            )
        };
        let constant = &clients["constant"];
        let client_rec = if large {
            &clients["flagyard-rec-large"]
        } else {
            &clients["flagyard-rec-small"]
        };
        let floor_name = if key == "static-bool" {
            "floor: ArcSwap<HashMap> lookup"
        } else {
            "floor: hand-written rule"
        };
        let mut group = Vec::new();
        if key == "static-bool" {
            group.push(contender(floor_name, "floor", || {
                black_box(&users[pick()]);
                black_box(floor_bools.load().get(black_box(key)).copied())
            }));
        } else {
            group.push(contender(floor_name, "floor", || {
                let u = &users[pick()];
                black_box(
                    floor
                        .load()
                        .get(black_box(key))
                        .map(|r| hand_written(r, key, u)),
                )
            }));
        }
        group.push(contender("yggdrasil (unleash-yggdrasil)", "anchor", || {
            let u = &unleash_users[pick()];
            if fractional {
                black_box(ygg.get_variant(black_box(key), u, &None).name.len());
            } else {
                black_box(ygg.check_enabled(&EnrichedContext::from(u, black_box(key), None)));
            }
        }));
        group.push(contender(
            "flagd provider, resolver called directly",
            "anchor",
            || {
                let u = &of_users[pick()];
                if fractional {
                    black_box(
                        runtime
                            .block_on(resolver.resolve_string_value(black_box(key), u))
                            .map(|d| d.value.len())
                            .ok(),
                    );
                } else {
                    black_box(
                        runtime
                            .block_on(resolver.resolve_bool_value(black_box(key), u))
                            .map(|d| d.value)
                            .ok(),
                    );
                }
            },
        ));
        group.push(contender(
            "OpenFeature client → flagd provider",
            "anchor",
            || {
                let u = &of_users[pick()];
                if fractional {
                    black_box(
                        runtime
                            .block_on(client_flagd.get_string_value(black_box(key), Some(u), None))
                            .map(|v| v.len())
                            .ok(),
                    );
                } else {
                    black_box(
                        runtime
                            .block_on(client_flagd.get_bool_value(black_box(key), Some(u), None))
                            .ok(),
                    );
                }
            },
        ));
        group.push(contender(
            "OpenFeature client → constant provider",
            "sdk",
            || {
                let u = &of_users[pick()];
                if fractional {
                    black_box(
                        runtime
                            .block_on(constant.get_string_value(black_box(key), Some(u), None))
                            .map(|v| v.len())
                            .ok(),
                    );
                } else {
                    black_box(
                        runtime
                            .block_on(constant.get_bool_value(black_box(key), Some(u), None))
                            .ok(),
                    );
                }
            },
        ));
        group.push(contender("Flagyard sync path", "flagyard", || {
            let u = &users[pick()];
            if fractional {
                black_box(fy.with_str(black_box(key), "", u, str::len));
            } else {
                black_box(fy.get_bool(black_box(key), false, u));
            }
        }));
        group.push(contender(
            "Flagyard sync path + exposure events",
            "flagyard",
            || {
                let u = &users[pick()];
                if fractional {
                    black_box(rec.with_str(black_box(key), "", u, str::len));
                } else {
                    black_box(rec.get_bool(black_box(key), false, u));
                }
            },
        ));
        group.push(contender(
            "Flagyard sync path + exposure summaries",
            "flagyard",
            || {
                let u = &users[pick()];
                if fractional {
                    black_box(sum.with_str(black_box(key), "", u, str::len));
                } else {
                    black_box(sum.get_bool(black_box(key), false, u));
                }
            },
        ));
        if !large && key == "static-bool" {
            // Once: tracking does not depend on the work item.
            group.push(contender("Flagyard track()", "flagyard", || {
                let u = &users[pick()];
                rec.track(
                    black_box("purchase"),
                    u,
                    TrackingDetails::new().value(black_box(9.5)),
                );
            }));
        }
        group.push(contender(
            "OpenFeature client → Flagyard",
            "flagyard",
            || {
                let u = &of_users[pick()];
                if fractional {
                    black_box(
                        runtime
                            .block_on(client_fy.get_string_value(black_box(key), Some(u), None))
                            .map(|v| v.len())
                            .ok(),
                    );
                } else {
                    black_box(
                        runtime
                            .block_on(client_fy.get_bool_value(black_box(key), Some(u), None))
                            .ok(),
                    );
                }
            },
        ));
        group.push(contender(
            "OpenFeature client → Flagyard + exposure events",
            "flagyard",
            || {
                let u = &of_users[pick()];
                if fractional {
                    black_box(
                        runtime
                            .block_on(client_rec.get_string_value(black_box(key), Some(u), None))
                            .map(|v| v.len())
                            .ok(),
                    );
                } else {
                    black_box(
                        runtime
                            .block_on(client_rec.get_bool_value(black_box(key), Some(u), None))
                            .ok(),
                    );
                }
            },
        ));
        results.extend(measure_together(item, group));
    }

    let threads = vec![
        timing::scaling("floor: hand-written rule", |i| {
            black_box(
                floor_small
                    .load()
                    .get("email-rule")
                    .map(|r| hand_written(r, "email-rule", &users[i])),
            );
        }),
        timing::scaling("yggdrasil", |i| {
            black_box(ygg_small.check_enabled(&EnrichedContext::from(
                &unleash_users[i],
                "email-rule",
                None,
            )));
        }),
        timing::scaling("Flagyard sync path", |i| {
            black_box(flagyard_small.get_bool("email-rule", false, &users[i]));
        }),
    ];
    let memory = alloc::memory_per_flag(&large_path);
    let cold = cold::measure(dir.path());
    let track = track_with_room(&recording_small, &users, Pause::Asleep);
    let track_busy = track_with_room(&recording_small, &users, Pause::Busy);
    let mut report = timing::report(&results, &threads, &memory, &cold);
    // `reads`: the read path's sections alone (no servers, no Unleash Edge).
    if args.get(1).map(String::as_str) != Some("reads") {
        let (server_text, server_json) = server::measure(dir.path());
        report.0.push_str(&server_text);
        report.1["server"] = server_json;
    }
    println!("{}", report.0);
    println!(
        "track() with room in the queue (200 batches of 256 calls, the drain emptying \
         the queue between batches): median {:.1} ns, min {:.1}, max {:.1}; \
         the caller busy between batches: median {:.1} ns, min {:.1}, max {:.1}",
        track.0, track.1, track.2, track_busy.0, track_busy.1, track_busy.2
    );
    std::fs::write(
        "results.json",
        serde_json::to_string_pretty(&report.1).expect("json"),
    )
    .expect("write results.json");
    println!("results written to benchmarks/results.json");
    let _ = json!(null);
}
