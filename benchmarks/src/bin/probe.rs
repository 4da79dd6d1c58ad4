//! Instruction counts per read, for callgrind (deterministic where wall-clock
//! time is not): `probe WORK N` runs N reads of one work item.
//!
//! ```sh
//! cargo build --release --bin probe
//! for n in 100000 200000; do
//!   valgrind --tool=callgrind --callgrind-out-file=/dev/null target/release/probe fy-rule $n
//! done   # (difference of "Collected") / 100000 = instructions per read
//! ```
//! Work items: `floor-static`, `floor-rule`, `floor-split`, `floor-large`,
//! `fy-static`, `fy-rule`, `fy-split`, `fy-large` (the rule among 10,000 more
//! flags), `snap-rule`, `snap-eval`.

use arc_swap::ArcSwap;
use flagyard::FlagyardProvider;
use flagyard::core::EvaluationContext;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::hint::black_box;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let what = args[1].as_str();
    let n: usize = args[2].parse().unwrap();
    let users: Vec<EvaluationContext> = (0..10_000)
        .map(|i| {
            let domain = if i % 10 == 0 {
                "example.com"
            } else {
                "mail.test"
            };
            EvaluationContext::new()
                .with_targeting_key(format!("user-{i}"))
                .with_attribute("email", format!("user{i}@{domain}"))
        })
        .collect();
    let doc = json!({"flags": {
        "static-bool": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "on"},
        "email-rule": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off",
           "targeting": {"if": [{"ends_with": [{"var": "email"}, "@example.com"]}, "on", "off"]}},
        "split": {"state": "ENABLED", "variants": {"red": "red", "blue": "blue"}, "defaultVariant": "red",
           "targeting": {"fractional": [["red", 50], ["blue", 50]]}}}});
    let mut large = doc.clone();
    for i in 0..10_000 {
        let flag = if i % 2 == 0 {
            doc["flags"]["static-bool"].clone()
        } else {
            doc["flags"]["email-rule"].clone()
        };
        large["flags"][format!("flag-{i}")] = flag;
    }
    let fy_large = FlagyardProvider::builder()
        .bootstrap_document(large.to_string())
        .offline(true)
        .build()
        .expect("provider builds");
    let floor_large: ArcSwap<HashMap<String, u8>> = ArcSwap::from_pointee(
        (0..10_000)
            .map(|i| (format!("flag-{i}"), 0u8))
            .chain([("email-rule".to_string(), 1)])
            .collect(),
    );
    let fy = FlagyardProvider::builder()
        .bootstrap_document(doc.to_string())
        .offline(true)
        .fractional(flagyard::core::FractionalVersion::V3)
        .build()
        .expect("provider builds");
    let snap = fy.snapshot().unwrap();
    let floor: ArcSwap<HashMap<String, u8>> = ArcSwap::from_pointee(
        [
            ("static-bool".to_string(), 0u8),
            ("email-rule".to_string(), 1),
            ("split".to_string(), 2),
        ]
        .into_iter()
        .collect(),
    );
    let mut hits = 0usize;
    for i in 0..n {
        let u = &users[i % 10_000];
        let r = match what {
            "fy-rule" => fy.get_bool(black_box("email-rule"), false, u),
            "fy-static" => fy.get_bool(black_box("static-bool"), false, u),
            "snap-rule" => snap.resolve(black_box("email-rule"), false, u).value,
            "snap-eval" => snap.evaluate(black_box("email-rule"), u).value.is_some(),
            "floor-rule" => floor
                .load()
                .get(black_box("email-rule"))
                .map(|_| {
                    u.attributes
                        .get("email")
                        .and_then(Value::as_str)
                        .is_some_and(|e| e.ends_with("@example.com"))
                })
                .unwrap_or(false),
            "fy-large" => fy_large.get_bool(black_box("email-rule"), false, u),
            "floor-large" => floor_large
                .load()
                .get(black_box("email-rule"))
                .map(|_| {
                    u.attributes
                        .get("email")
                        .and_then(Value::as_str)
                        .is_some_and(|e| e.ends_with("@example.com"))
                })
                .unwrap_or(false),
            "floor-split" => floor
                .load()
                .get(black_box("split"))
                .map(|_| {
                    let (flag, user) = (
                        b"split".as_slice(),
                        u.targeting_key.as_deref().unwrap_or("").as_bytes(),
                    );
                    let mut buffer = [0u8; 64];
                    buffer[0] = 0x82;
                    buffer[1] = 0x60 | flag.len() as u8;
                    buffer[2..2 + flag.len()].copy_from_slice(flag);
                    let at = 2 + flag.len();
                    buffer[at] = 0x60 | user.len() as u8;
                    buffer[at + 1..at + 1 + user.len()].copy_from_slice(user);
                    let mut h = flagyard::core::murmur3::Murmur3::new(0);
                    h.write(&buffer[..at + 1 + user.len()]);
                    ((u64::from(h.finish()) * 100) >> 32) < 50
                })
                .unwrap_or(false),
            "fy-split" => fy.with_str(black_box("split"), "", u, |s| s.len() == 3),
            "floor-static" => floor.load().get(black_box("static-bool")).is_some(),
            _ => panic!(),
        };
        hits += r as usize;
    }
    println!("{hits}");
}
