//! Batches, medians, thread scaling and the report.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub struct Measurement {
    pub item: &'static str,
    pub name: String,
    pub kind: &'static str,
    pub median: f64,
    pub min: f64,
    pub max: f64,
    /// Median over the batches of (this batch ÷ the floor's batch of the same
    /// round): adjacent in time, so drift in the machine's speed cancels.
    pub paired_floor_ratio: f64,
}

const BATCHES: usize = 9;
const BATCH_TIME: Duration = Duration::from_millis(60);

/// One implementation of a work item: runs `n` operations and says how long
/// they took (the loop is monomorphized per implementation, so the only
/// indirect call is once per batch).
pub struct Contender<'a> {
    name: String,
    kind: &'static str,
    batch: Box<dyn FnMut(usize) -> Duration + 'a>,
}

/// An implementation to measure.
pub fn contender<'a, R>(
    name: &str,
    kind: &'static str,
    mut op: impl FnMut() -> R + 'a,
) -> Contender<'a> {
    Contender {
        name: name.to_string(),
        kind,
        batch: Box::new(move |n| {
            let t = Instant::now();
            for _ in 0..n {
                std::hint::black_box(op());
            }
            t.elapsed()
        }),
    }
}

/// Calibrates each contender's batch to ~60 ms, then runs the batches
/// interleaved — batch 1 of every contender, then batch 2, ... — so that a
/// burst of load from elsewhere on the machine falls on every contender
/// alike and the same-run ratios stay meaningful. Median ns/op of 9 batches.
pub fn measure_together(
    item: &'static str,
    mut contenders: Vec<Contender<'_>>,
) -> Vec<Measurement> {
    let sizes: Vec<usize> = contenders
        .iter_mut()
        .map(|c| {
            let mut n = 64usize;
            loop {
                let e = (c.batch)(n);
                if e >= BATCH_TIME / 4 {
                    break ((n as f64) * (BATCH_TIME.as_secs_f64() / e.as_secs_f64())).max(1.0)
                        as usize;
                }
                n *= 4;
            }
        })
        .collect();
    let mut per_op: Vec<Vec<f64>> = vec![Vec::with_capacity(BATCHES); contenders.len()];
    for _ in 0..BATCHES {
        for (k, c) in contenders.iter_mut().enumerate() {
            let n = sizes[k];
            per_op[k].push((c.batch)(n).as_nanos() as f64 / n as f64);
        }
    }
    let floor = contenders.iter().position(|c| c.kind == "floor");
    let paired: Vec<f64> = per_op
        .iter()
        .map(|times| {
            let Some(f) = floor else { return f64::NAN };
            let mut ratios: Vec<f64> = times
                .iter()
                .zip(&per_op[f])
                .map(|(t, floor)| t / floor)
                .collect();
            ratios.sort_by(f64::total_cmp);
            ratios[BATCHES / 2]
        })
        .collect();
    contenders
        .iter()
        .zip(per_op)
        .zip(paired)
        .map(|((c, mut times), paired_floor_ratio)| {
            times.sort_by(f64::total_cmp);
            let m = Measurement {
                item,
                name: c.name.clone(),
                kind: c.kind,
                median: times[BATCHES / 2],
                min: times[0],
                max: times[BATCHES - 1],
                paired_floor_ratio,
            };
            eprintln!("  {:<26} {:<44} {:>10.1} ns/op", m.item, m.name, m.median);
            m
        })
        .collect()
}

/// Throughput with 1 and 2 threads (each thread walks the user pool).
pub fn scaling(name: &str, op: impl Fn(usize) + Sync) -> Value {
    let run = |threads: usize| -> f64 {
        let per_thread = 2_000_000usize;
        let t = Instant::now();
        std::thread::scope(|s| {
            for k in 0..threads {
                let op = &op;
                s.spawn(move || {
                    for i in 0..per_thread {
                        op((i * 7 + k * 13) % super::docs::USERS);
                    }
                });
            }
        });
        (threads * per_thread) as f64 / t.elapsed().as_secs_f64()
    };
    let _warm = run(1);
    let one = run(1);
    let two = run(2);
    eprintln!(
        "  threads: {name}: 1 thread {one:.0} ops/s, 2 threads {two:.0} ops/s ({:.2}×)",
        two / one
    );
    json!({"implementation": name, "item": "ends_with rule", "one_thread_ops_per_s": one, "two_threads_ops_per_s": two, "scaling": two / one})
}

/// The text table and the JSON document.
pub fn report(
    results: &[Measurement],
    threads: &[Value],
    memory: &[Value],
    cold: &[Value],
) -> (String, Value) {
    let mut text = String::new();
    let mut rows = Vec::new();
    let mut current = "";
    for m in results {
        if m.item != current {
            current = m.item;
            let _ = writeln!(text, "\n{current}");
            let _ = writeln!(
                text,
                "  {:<44} {:>10} {:>10} {:>10} {:>12} {:>10}",
                "implementation", "median ns", "min", "max", "÷ best anchor", "÷ floor (paired)"
            );
        }
        let same: Vec<&Measurement> = results.iter().filter(|r| r.item == m.item).collect();
        let best_anchor = same
            .iter()
            .filter(|r| r.kind == "anchor")
            .map(|r| r.median)
            .fold(f64::INFINITY, f64::min);
        let (vs_anchor, vs_floor) = (m.median / best_anchor, m.paired_floor_ratio);
        let _ = writeln!(
            text,
            "  {:<44} {:>10.1} {:>10.1} {:>10.1} {:>11.2}× {:>9.2}×",
            m.name, m.median, m.min, m.max, vs_anchor, vs_floor
        );
        rows.push(json!({"item": m.item, "implementation": m.name, "kind": m.kind, "median_ns": m.median,
                         "min_ns": m.min, "max_ns": m.max, "ratio_to_best_anchor": vs_anchor, "ratio_to_floor": vs_floor}));
    }
    let _ = writeln!(text, "\n2-thread scaling (ends_with rule)");
    for t in threads {
        let _ = writeln!(
            text,
            "  {:<44} {:>12.0} ops/s → {:>12.0} ops/s  {:.2}×",
            t["implementation"].as_str().unwrap_or(""),
            t["one_thread_ops_per_s"].as_f64().unwrap_or(0.0),
            t["two_threads_ops_per_s"].as_f64().unwrap_or(0.0),
            t["scaling"].as_f64().unwrap_or(0.0)
        );
    }
    let _ = writeln!(text, "\nmemory for 10,003 flags");
    for m in memory {
        let _ = writeln!(
            text,
            "  {:<44} live heap {:>8.0} B/flag   RSS growth {:>8.0} B/flag",
            m["implementation"].as_str().unwrap_or(""),
            m["heap_per_flag"].as_f64().unwrap_or(0.0),
            m["rss_per_flag"].as_f64().unwrap_or(0.0)
        );
    }
    let _ = writeln!(
        text,
        "\ncold start, process start → first correct read, 10,003 flags, no source"
    );
    for c in cold {
        let _ = writeln!(
            text,
            "  {:<44} median {:>7.1} ms  (min {:.1}, max {:.1})",
            format!("from {}", c["store"].as_str().unwrap_or("")),
            c["median_ms"].as_f64().unwrap_or(0.0),
            c["min_ms"].as_f64().unwrap_or(0.0),
            c["max_ms"].as_f64().unwrap_or(0.0)
        );
    }
    let budgets = budgets(results, threads, memory, cold);
    let _ = writeln!(text, "\nbudgets (issues 7 and 11)");
    for b in &budgets {
        let _ = writeln!(
            text,
            "  {:<7} {}",
            if b["met"].as_bool().unwrap_or(false) {
                "met"
            } else {
                "MISSED"
            },
            b["budget"].as_str().unwrap_or("")
        );
    }
    (
        text,
        json!({"evaluation": rows, "threads": threads, "memory": memory, "cold_start": cold, "budgets": budgets}),
    )
}

fn budgets(
    results: &[Measurement],
    threads: &[Value],
    memory: &[Value],
    cold: &[Value],
) -> Vec<Value> {
    let mut out = Vec::new();
    let median = |item: &str, name: &str| {
        results
            .iter()
            .find(|r| r.item == item && r.name == name)
            .map_or(f64::NAN, |r| r.median)
    };
    let mut items: Vec<&str> = results.iter().map(|r| r.item).collect();
    items.dedup();
    for item in items {
        let sync = median(item, "Flagyard sync path");
        let best_anchor = results
            .iter()
            .filter(|r| r.item == item && r.kind == "anchor")
            .map(|r| r.median)
            .fold(f64::INFINITY, f64::min);
        let floor = results
            .iter()
            .find(|r| r.item == item && r.kind == "floor")
            .map_or(f64::NAN, |r| r.median);
        out.push(json!({"budget": format!("{item}: sync path faster than every anchor ({sync:.1} vs best anchor {best_anchor:.1} ns)"), "met": sync < best_anchor}));
        let paired = results
            .iter()
            .find(|r| r.item == item && r.name == "Flagyard sync path")
            .map_or(f64::NAN, |r| r.paired_floor_ratio);
        out.push(json!({"budget": format!("{item}: sync path within 1.5x the floor ({paired:.2}x paired per batch; {:.2}x of the medians)", sync / floor), "met": paired <= 1.5}));
        let of = median(item, "OpenFeature client → Flagyard");
        let constant = median(item, "OpenFeature client → constant provider");
        out.push(json!({"budget": format!("{item}: OpenFeature client at most 10% over the constant provider (+{:.1}%)", (of / constant - 1.0) * 100.0), "met": of <= constant * 1.10}));
    }
    if let Some(t) = threads
        .iter()
        .find(|t| t["implementation"] == "Flagyard sync path")
    {
        let scaling = t["scaling"].as_f64().unwrap_or(0.0);
        out.push(json!({"budget": format!("2-thread scaling at least 1.8x ({scaling:.2}x)"), "met": scaling >= 1.8}));
    }
    if let Some(m) = memory
        .iter()
        .find(|m| m["implementation"] == "Flagyard snapshot")
    {
        let heap = m["heap_per_flag"].as_f64().unwrap_or(f64::INFINITY);
        out.push(json!({"budget": format!("memory under 1 KB per flag ({heap:.0} B live heap)"), "met": heap < 1024.0}));
    }
    for c in cold {
        let ms = c["median_ms"].as_f64().unwrap_or(f64::INFINITY);
        out.push(json!({"budget": format!("cold start from {} ≤ 15 ms (issue 19) ({ms:.1} ms)", c["store"].as_str().unwrap_or("")), "met": ms <= 15.0}));
    }
    out
}
