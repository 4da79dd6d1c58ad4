//! Evaluation cost of the four work items of DESIGN §8, beside the floor measured
//! in the same run: an `ArcSwap<HashMap<String, bool>>` lookup and the same rules
//! hand-written in Rust. Each call uses the next context of a pool of 10,000 users.
//!
//! Run: `cargo bench -p flagyard-core --bench evaluate`. The memory figure (live
//! heap of a 10,000-flag snapshot) is printed first.

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::HashMap;
use std::hint::black_box;
use std::sync::atomic::{AtomicIsize, Ordering};

use arc_swap::ArcSwap;
use criterion::{Criterion, criterion_group, criterion_main};
use flagyard_core::murmur3::Murmur3;
use flagyard_core::{EvaluationContext, Snapshot};
use serde_json::{Value, json};

/// Counts live heap bytes, for the memory-per-flag figure.
struct Counting;
static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const USERS: usize = 10_000;
const FLAGS: usize = 10_000;

fn users() -> Vec<EvaluationContext> {
    (0..USERS)
        .map(|i| {
            let domain = if i % 10 == 0 {
                "example.com"
            } else {
                "mail.test"
            };
            EvaluationContext::new()
                .with_targeting_key(format!("user-{i}"))
                .with_attribute("email", format!("user{i}@{domain}"))
                .with_attribute("plan", if i % 3 == 0 { "pro" } else { "free" })
        })
        .collect()
}

fn static_flag() -> Value {
    json!({"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "on"})
}

fn rule_flag() -> Value {
    json!({"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off",
           "targeting": {"if": [{"ends_with": [{"var": "email"}, "@example.com"]}, "on", "off"]}})
}

fn fractional_flag() -> Value {
    json!({"state": "ENABLED", "variants": {"red": "red", "blue": "blue"}, "defaultVariant": "red",
           "targeting": {"fractional": [["red", 50], ["blue", 50]]}})
}

/// The small document: the three flags of the work items.
fn small_document() -> Value {
    json!({"flags": {"static-bool": static_flag(), "email-rule": rule_flag(), "split": fractional_flag()}})
}

/// 10,000 flags, a third of each kind, with the rule flag among them.
fn large_document() -> Value {
    let mut flags = serde_json::Map::new();
    for i in 0..FLAGS {
        let flag = match i % 3 {
            0 => static_flag(),
            1 => rule_flag(),
            _ => fractional_flag(),
        };
        flags.insert(format!("flag-{i}"), flag);
    }
    flags.insert("email-rule".into(), rule_flag());
    json!({"flags": flags})
}

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

fn report_memory() {
    let text = large_document().to_string();
    let before = live();
    let snapshot = Snapshot::parse(&text).expect("large document loads");
    // The parsed JSON is freed on a background thread; let it finish.
    std::thread::sleep(std::time::Duration::from_millis(500));
    let bytes = live() - before;
    let flags = snapshot.len();
    println!(
        "memory: snapshot of {flags} flags = {bytes} bytes live heap = {:.0} bytes/flag (document text {} bytes)",
        bytes as f64 / flags as f64,
        text.len()
    );
    drop(snapshot);
}

/// Hand-written rules: what the work items cost with no evaluator at all.
enum HandRule {
    Static(bool),
    EndsWith(&'static str),
    Split50,
}

fn floor_eval(rule: &HandRule, key: &str, ctx: &EvaluationContext) -> u8 {
    match rule {
        HandRule::Static(b) => u8::from(*b),
        HandRule::EndsWith(suffix) => {
            let email = ctx.attributes().get("email").and_then(Value::as_str);
            u8::from(email.is_some_and(|e| e.ends_with(suffix)))
        }
        HandRule::Split50 => {
            let mut h = Murmur3::new(0);
            h.write(key.as_bytes());
            h.write(ctx.targeting_key().unwrap_or("").as_bytes());
            u8::from(((u64::from(h.finish()) * 100) >> 32) >= 50)
        }
    }
}

fn benches(c: &mut Criterion) {
    report_memory();
    let users = users();
    let mut next = 0usize;
    let mut pick = move || {
        next = (next + 1) % USERS;
        next
    };

    let small = ArcSwap::from_pointee(
        Snapshot::from_value(&small_document(), &Default::default()).expect("loads"),
    );
    let large = ArcSwap::from_pointee(
        Snapshot::from_value(&large_document(), &Default::default()).expect("loads"),
    );
    let floor_bools: ArcSwap<HashMap<String, bool>> = ArcSwap::from_pointee(
        (0..FLAGS)
            .map(|i| (format!("flag-{i}"), i % 2 == 0))
            .chain([("static-bool".to_string(), true)])
            .collect(),
    );
    let floor_rules: ArcSwap<HashMap<String, HandRule>> = ArcSwap::from_pointee(
        [
            ("static-bool".to_string(), HandRule::Static(true)),
            ("email-rule".to_string(), HandRule::EndsWith("@example.com")),
            ("split".to_string(), HandRule::Split50),
        ]
        .into_iter()
        .collect(),
    );
    let floor_rules_large: ArcSwap<HashMap<String, HandRule>> = ArcSwap::from_pointee(
        (0..FLAGS)
            .map(|i| (format!("flag-{i}"), HandRule::Static(true)))
            .chain([("email-rule".to_string(), HandRule::EndsWith("@example.com"))])
            .collect(),
    );

    let mut group = c.benchmark_group("evaluate");
    group.bench_function("floor/hashmap-bool", |b| {
        b.iter(|| {
            let ctx = &users[pick()];
            black_box(ctx);
            black_box(floor_bools.load().get(black_box("static-bool")).copied())
        })
    });
    for (item, key) in [
        ("static-bool", "static-bool"),
        ("ends-with-rule", "email-rule"),
        ("fractional-50-50", "split"),
    ] {
        group.bench_function(format!("floor/hand-written/{item}"), |b| {
            b.iter(|| {
                let ctx = &users[pick()];
                let rules = floor_rules.load();
                black_box(rules.get(black_box(key)).map(|r| floor_eval(r, key, ctx)))
            })
        });
    }
    group.bench_function("floor/hand-written/rule-among-10k", |b| {
        b.iter(|| {
            let ctx = &users[pick()];
            let rules = floor_rules_large.load();
            black_box(
                rules
                    .get(black_box("email-rule"))
                    .map(|r| floor_eval(r, "email-rule", ctx)),
            )
        })
    });

    group.bench_function("flagyard/static-bool", |b| {
        b.iter(|| {
            let ctx = &users[pick()];
            black_box(
                small
                    .load()
                    .resolve(black_box("static-bool"), false, ctx)
                    .value,
            )
        })
    });
    group.bench_function("flagyard/ends-with-rule", |b| {
        b.iter(|| {
            let ctx = &users[pick()];
            black_box(
                small
                    .load()
                    .resolve(black_box("email-rule"), false, ctx)
                    .value,
            )
        })
    });
    group.bench_function("flagyard/fractional-50-50", |b| {
        b.iter(|| {
            let ctx = &users[pick()];
            let snapshot = small.load();
            black_box(snapshot.resolve(black_box("split"), "", ctx).value.len())
        })
    });
    group.bench_function("flagyard/rule-among-10k", |b| {
        b.iter(|| {
            let ctx = &users[pick()];
            black_box(
                large
                    .load()
                    .resolve(black_box("email-rule"), false, ctx)
                    .value,
            )
        })
    });
    group.finish();
}

/// A pancake flag with 1,000 user overrides (half on, half off) and two
/// samples, as `PancakeSource` generates them.
fn pancake_document() -> Value {
    let on: Vec<String> = (0..USERS)
        .step_by(20)
        .map(|i| format!("user-{i}"))
        .collect();
    let off: Vec<String> = (10..USERS)
        .step_by(20)
        .map(|i| format!("user-{i}"))
        .collect();
    let boolean = |targeting: Value| {
        json!({"state": "ENABLED", "variants": {"on": true, "off": false},
               "defaultVariant": "off", "targeting": targeting})
    };
    json!({"flags": {
        "BETA": boolean(json!({"if": [
            {"in": [{"var": "targetingKey"}, on]}, "on",
            {"in": [{"var": "targetingKey"}, off]}, "off"]})),
        "ROLLOUT": boolean(json!({"if": [{"sample": [25.0]}, "on", "off"]})),
        "STICKY": boolean(json!({"if": [{"sample": [25.0, {"var": "targetingKey"}]}, "on", "off"]})),
    }})
}

fn pancake_benches(c: &mut Criterion) {
    let users = users();
    let mut next = 0usize;
    let mut pick = move || {
        next = (next + 1) % USERS;
        next
    };
    let snapshot = ArcSwap::from_pointee(
        Snapshot::from_value(&pancake_document(), &Default::default()).expect("loads"),
    );
    // The floor: the same answers from a map of hand-written rules behind ArcSwap.
    enum Floor {
        Overrides(HashMap<String, bool>),
        Random(f64),
        Sticky(f64),
    }
    let overrides: HashMap<String, bool> = (0..USERS)
        .step_by(10)
        .map(|i| (format!("user-{i}"), i % 20 == 0))
        .collect();
    let floor: ArcSwap<HashMap<String, Floor>> = ArcSwap::from_pointee(HashMap::from([
        ("BETA".to_string(), Floor::Overrides(overrides)),
        ("ROLLOUT".to_string(), Floor::Random(25.0)),
        ("STICKY".to_string(), Floor::Sticky(25.0)),
    ]));
    let floor_eval = |rule: &Floor, key: &str, ctx: &EvaluationContext| match rule {
        Floor::Overrides(ids) => ctx
            .targeting_key()
            .and_then(|k| ids.get(k).copied())
            .unwrap_or(false),
        Floor::Random(ratio) => fastrand::f64() * 100.0 < *ratio,
        Floor::Sticky(ratio) => {
            let mut h = Murmur3::new(0);
            h.write(key.as_bytes());
            h.write(ctx.targeting_key().unwrap_or_default().as_bytes());
            f64::from(h.finish()) / 4_294_967_296.0 * 100.0 < *ratio
        }
    };
    let mut group = c.benchmark_group("pancake");
    for (item, key) in [
        ("flag-1000-overrides", "BETA"),
        ("sample-random", "ROLLOUT"),
        ("sample-sticky", "STICKY"),
    ] {
        group.bench_function(format!("floor/{item}"), |b| {
            b.iter(|| {
                let ctx = &users[pick()];
                let rules = floor.load();
                black_box(rules.get(black_box(key)).map(|r| floor_eval(r, key, ctx)))
            })
        });
        group.bench_function(format!("flagyard/{item}"), |b| {
            b.iter(|| {
                let ctx = &users[pick()];
                black_box(snapshot.load().resolve(black_box(key), false, ctx).value)
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = evaluate;
    config = Criterion::default()
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(2));
    targets = benches, pancake_benches
}
criterion_main!(evaluate);
