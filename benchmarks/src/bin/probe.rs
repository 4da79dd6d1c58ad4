//! Instruction counts per read, for callgrind (deterministic where wall-clock
//! time is not): `probe WORK N` runs N reads of one work item.
//!
//! ```sh
//! cargo build --release --bin probe
//! for n in 100000 200000; do
//!   valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file=/tmp/cg.$n \
//!     target/release/probe fy-rule $n
//!   grep '^totals:' /tmp/cg.$n-01   # the main thread only
//! done   # (difference of the totals) / 100000 = instructions per read
//! ```
//! Count the main thread only: the whole process includes background
//! threads whose work depends on run time, not on the reads.
//! Work items: `floor-static`, `floor-rule`, `floor-split`, `floor-large`,
//! `fy-static`, `fy-rule`, `fy-split`, `fy-large` (the rule among 10,000 more
//! flags), `snap-rule`, `snap-eval`; with exposures recorded (a `NoopSink`):
//! `sum-static`, `sum-rule`, `sum-split`, `sum-large` (summary mode),
//! `full-static`, `full-rule` (full mode), `track`. A recording item first
//! reads every user with pauses so its drain keeps up (the counted reads are
//! the steady state's); full mode's back-to-back reads then mostly find the
//! thread's queue full, as in the side-by-side run, and the event counts are
//! printed to stderr. For costs per source line or instruction, build with
//! `--config 'profile.release.debug="line-tables-only"'` and run callgrind
//! with `--dump-instr=yes`.

use std::collections::HashMap;
use std::hint::black_box;

use arc_swap::ArcSwap;
use flagyard::core::{ExposureMode, FractionalVersion, TrackingDetails};
use flagyard::{FlagyardProvider, NoopSink};

#[path = "../docs.rs"]
#[allow(dead_code)] // the probe reads only the documents and the users
mod docs;
#[path = "../floor.rs"]
mod floor;

use floor::{HandRule, hand_written};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let what = args[1].as_str();
    let n: usize = args[2].parse().unwrap();
    // The side-by-side run's documents, users and floors.
    let users = docs::users();
    let recording = |large: bool, mode: Option<ExposureMode>| {
        let builder = FlagyardProvider::builder()
            .bootstrap_document(docs::flagd(large).to_string())
            .offline(true)
            .fractional(FractionalVersion::V3);
        match mode {
            Some(mode) => builder.sink(NoopSink).exposures(mode).build(),
            None => builder.build(),
        }
        .expect("provider builds")
    };
    let provider = |large: bool| recording(large, None);
    let (fy, fy_large) = (provider(false), provider(true));
    // Only the item's provider records (a recording provider keeps a lane per thread).
    let mode = match what.split('-').next() {
        Some("sum") => Some(ExposureMode::Summary),
        Some("full" | "track") => Some(ExposureMode::Full),
        _ => None,
    };
    let rec = recording(what.ends_with("large"), mode);
    let snap = fy.snapshot().unwrap();
    let floor: ArcSwap<HashMap<String, HandRule>> = ArcSwap::from_pointee(
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
    let read = |floor: &ArcSwap<HashMap<String, HandRule>>, key: &str, u| {
        floor
            .load()
            .get(black_box(key))
            .is_some_and(|rule| hand_written(rule, key, u))
    };
    // A recording provider first sees every user, with pauses for its drain
    // to empty the thread's queue, so the reads counted are the steady
    // state's (not the first-seen exposures a full queue drops).
    if mode.is_some() {
        for _ in 0..100 {
            let dropped = rec.event_stats().dropped;
            for u in &users {
                black_box(rec.get_bool("email-rule", false, u));
                black_box(rec.get_bool("static-bool", false, u));
                black_box(rec.with_str("split", "", u, str::len));
                std::thread::sleep(std::time::Duration::from_micros(2));
            }
            std::thread::sleep(std::time::Duration::from_millis(30));
            if rec.event_stats().dropped == dropped {
                break;
            }
        }
    }
    let mut hits = 0usize;
    for i in 0..n {
        let u = &users[i % docs::USERS];
        let r = match what {
            "fy-rule" => fy.get_bool(black_box("email-rule"), false, u),
            "fy-static" => fy.get_bool(black_box("static-bool"), false, u),
            "fy-large" => fy_large.get_bool(black_box("email-rule"), false, u),
            "fy-split" => fy.with_str(black_box("split"), "", u, |s| s.len() == 3),
            "sum-static" | "full-static" => rec.get_bool(black_box("static-bool"), false, u),
            "sum-rule" | "sum-large" | "full-rule" => {
                rec.get_bool(black_box("email-rule"), false, u)
            }
            "sum-split" => rec.with_str(black_box("split"), "", u, |s| s.len() == 3),
            "track" => {
                rec.track(black_box("purchase"), u, TrackingDetails::new().value(9.5));
                true
            }
            "snap-rule" => snap.resolve(black_box("email-rule"), false, u).value,
            "snap-eval" => snap.evaluate(black_box("email-rule"), u).value.is_some(),
            "floor-static" => read(&floor, "static-bool", u),
            "floor-rule" => read(&floor, "email-rule", u),
            "floor-split" => read(&floor, "split", u),
            "floor-large" => read(&floor_large, "email-rule", u),
            _ => panic!("unknown work item {what}"),
        };
        hits += r as usize;
    }
    println!("{hits}");
    eprintln!("events: {:?}", rec.event_stats());
}
