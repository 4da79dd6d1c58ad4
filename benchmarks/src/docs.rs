//! The same flags for every implementation, and the user pool.

use flagyard::core::EvaluationContext;
use open_feature::EvaluationContext as OfContext;
use serde_json::{Value, json};
use unleash_yggdrasil::Context as UnleashContext;

pub const USERS: usize = 10_000;
pub const LARGE: usize = 10_000;
/// The first bucket of the 50/50 split (the hand-written floor says whether a user lands in it).
pub const SPLIT_FIRST: &str = "red";

pub fn users() -> Vec<EvaluationContext> {
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
        })
        .collect()
}

pub fn of_context(u: &EvaluationContext) -> OfContext {
    let email = u.attributes()["email"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    OfContext::default()
        .with_targeting_key(u.targeting_key().unwrap_or_default())
        .with_custom_field("email", email)
}

pub fn unleash_context(u: &EvaluationContext) -> UnleashContext {
    let email = u.attributes()["email"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    UnleashContext {
        user_id: u.targeting_key().map(str::to_string),
        properties: Some([("email".to_string(), email)].into_iter().collect()),
        ..Default::default()
    }
}

fn flagd_static() -> Value {
    json!({"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "on"})
}

fn flagd_rule() -> Value {
    json!({"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off",
           "targeting": {"if": [{"ends_with": [{"var": "email"}, "@example.com"]}, "on", "off"]}})
}

/// The flagd document: the three work-item flags, and with `large` 10,000 more.
pub fn flagd(large: bool) -> Value {
    let mut flags = serde_json::Map::new();
    flags.insert("static-bool".into(), flagd_static());
    flags.insert("email-rule".into(), flagd_rule());
    flags.insert(
        "split".into(),
        json!({"state": "ENABLED", "variants": {"red": "red", "blue": "blue"}, "defaultVariant": "red",
               "targeting": {"fractional": [["red", 50], ["blue", 50]]}}),
    );
    if large {
        for i in 0..LARGE {
            flags.insert(
                format!("flag-{i}"),
                if i % 2 == 0 {
                    flagd_static()
                } else {
                    flagd_rule()
                },
            );
        }
    }
    json!({ "flags": flags })
}

fn unleash_static(name: &str) -> Value {
    json!({"name": name, "enabled": true, "strategies": [{"name": "default"}]})
}

fn unleash_rule(name: &str) -> Value {
    json!({"name": name, "enabled": true, "strategies": [{"name": "default",
        "constraints": [{"contextName": "email", "operator": "STR_ENDS_WITH", "values": ["@example.com"]}]}]})
}

/// The equivalent Unleash toggles.
pub fn unleash(large: bool) -> Value {
    let mut features = vec![
        unleash_static("static-bool"),
        unleash_rule("email-rule"),
        json!({"name": "split", "enabled": true,
               "strategies": [{"name": "flexibleRollout", "parameters": {"rollout": "100", "stickiness": "userId", "groupId": "split"}}],
               "variants": [
                   {"name": "red", "weight": 500, "weightType": "variable", "stickiness": "userId"},
                   {"name": "blue", "weight": 500, "weightType": "variable", "stickiness": "userId"}]}),
    ];
    if large {
        for i in 0..LARGE {
            let name = format!("flag-{i}");
            features.push(if i % 2 == 0 {
                unleash_static(&name)
            } else {
                unleash_rule(&name)
            });
        }
    }
    json!({"version": 2, "features": features})
}

/// The server section's document: `n` flags named `flag-{i}`, a third each
/// static, an `ends_with` rule and a 50/50 split.
pub fn flagd_n(n: usize) -> Value {
    let flags: serde_json::Map<String, Value> = (0..n)
        .map(|i| {
            let flag = match i % 3 {
                0 => flagd_static(),
                1 => flagd_rule(),
                _ => json!({"state": "ENABLED", "variants": {"red": "red", "blue": "blue"},
                            "defaultVariant": "red",
                            "targeting": {"fractional": [["red", 50], ["blue", 50]]}}),
            };
            (format!("flag-{i}"), flag)
        })
        .collect();
    json!({ "flags": flags })
}

/// [`flagd_n`]'s flags as Unleash toggles (its client-features format, which
/// Unleash Edge's offline mode bootstraps from).
pub fn unleash_n(n: usize) -> Value {
    let features: Vec<Value> = (0..n)
        .map(|i| {
            let name = format!("flag-{i}");
            match i % 3 {
                0 => unleash_static(&name),
                1 => unleash_rule(&name),
                _ => json!({"name": name, "enabled": true,
                    "strategies": [{"name": "flexibleRollout", "parameters": {"rollout": "100", "stickiness": "userId", "groupId": name}}],
                    "variants": [
                        {"name": "red", "weight": 500, "weightType": "variable", "stickiness": "userId"},
                        {"name": "blue", "weight": 500, "weightType": "variable", "stickiness": "userId"}]}),
            }
        })
        .collect();
    json!({"version": 2, "features": features})
}
