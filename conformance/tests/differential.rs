//! Differential test: generated flags and contexts through Flagyard and the
//! published flagd evaluator cores — JavaScript `@openfeature/flagd-core`
//! (`fractional` v2 hashing) and Python `openfeature-flagd-core` (v3) —
//! installed by `scripts/test.sh`.
//!
//! A case counts where the two cores agree (for `fractional`, whose hashing
//! differs between them, each core is compared with Flagyard's profile of the
//! same generation). Flagyard must give the agreed answer — value, variant,
//! reason and error code — except for the documented differences in
//! [`DOCUMENTED`]. Answers where the cores disagree with each other are
//! counted and printed, not failed.
//!
//! Without the peers (no `FLAGYARD_TEST_PYTHON`, no `node`, or the npm package
//! not installed) the test skips with a message; under `CI=true` it fails.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use flagyard_core::{CompileOptions, EvaluationContext, FractionalVersion, Snapshot};
use serde_json::{Map, Value, json};

/// Flagyard's deliberate differences from answers both cores agree on:
/// (what, why). Each is matched by [`documented`] and listed in
/// docs/ARCHITECTURE.md.
const DOCUMENTED: &[(&str, &str)] = &[(
    "targeting that is not an object",
    "flagd's schema requires an object; Flagyard answers PARSE_ERROR for the flag, \
     where both cores treat a falsy value such as \"\" as no targeting",
)];

/// Which of [`DOCUMENTED`] a disagreement on `flag` is, if any.
fn documented(flag: &Value) -> Option<&'static str> {
    (!flag["targeting"].is_object()).then_some(DOCUMENTED[0].0)
}

const FLAGS: usize = 900;
const CONTEXTS_PER_FLAG: usize = 4;
/// The generator's seed; `FLAGYARD_DIFFERENTIAL_SEED` explores others.
const SEED: u64 = 0x5eed_f1a6;

/// Variant names a generated rule can produce: strings, and the text forms
/// of the numbers and booleans the generator uses.
const VARIANT_NAMES: &[&str] = &[
    "a", "b", "c", "x", "ab", "true", "false", "null", "0", "1", "2", "3", "10", "45", "-1", "1.5",
    "0.5", "100", "1e+21", "a,b", "1,2",
];

struct Gen {
    rng: fastrand::Rng,
}

impl Gen {
    fn pick<T: Clone>(&mut self, items: &[T]) -> T {
        items[self.rng.usize(..items.len())].clone()
    }

    fn number(&mut self) -> Value {
        self.pick(&[
            json!(0),
            json!(1),
            json!(2),
            json!(3),
            json!(10),
            json!(45),
            json!(-1),
            json!(1.5),
            json!(0.5),
            json!(100),
            json!(1e21),
            json!(-0.5),
        ])
    }

    fn scalar(&mut self) -> Value {
        match self.rng.u8(..8) {
            0 | 1 => self.number(),
            2 => json!(self.pick(&[
                "a",
                "b",
                "ab",
                "",
                "0",
                "1",
                "10",
                "2",
                "abc",
                "x@example.com"
            ])),
            3 => json!(self.rng.bool()),
            4 => Value::Null,
            5 => json!(self.pick(&["1.0.0", "2.1.3", "1.2.0-beta", "v1.2"])),
            6 => json!(self.pick(&["a", "b", "c"])),
            _ => self.number(),
        }
    }

    fn literal(&mut self) -> Value {
        match self.rng.u8(..10) {
            0 => json!([]),
            1 => {
                let n = self.rng.usize(1..4);
                Value::Array((0..n).map(|_| self.scalar()).collect())
            }
            2 => json!({}),
            _ => self.scalar(),
        }
    }

    fn var(&mut self) -> Value {
        let path = self.pick(&[
            "a",
            "b",
            "n",
            "s",
            "arr",
            "arr.0",
            "arr.1",
            "obj.x",
            "missing",
            "targetingKey",
            "$flagd.flagKey",
        ]);
        match self.rng.u8(..5) {
            0 => json!({"var": [path, self.scalar()]}),
            _ => json!({"var": path}),
        }
    }

    fn expr(&mut self, depth: u32) -> Value {
        if depth == 0 {
            return if self.rng.bool() {
                self.var()
            } else {
                self.literal()
            };
        }
        let d = depth - 1;
        let op = self.pick(&[
            "==",
            "!=",
            "===",
            "!==",
            "<",
            "<=",
            ">",
            ">=",
            "and",
            "or",
            "!",
            "!!",
            "if",
            "in",
            "cat",
            "substr",
            "+",
            "-",
            "*",
            "/",
            "%",
            "min",
            "max",
            "map",
            "filter",
            "reduce",
            "all",
            "none",
            "some",
            "merge",
            "missing",
            "missing_some",
            "starts_with",
            "ends_with",
            "sem_ver",
            "var",
            "lit",
        ]);
        match op {
            "lit" => self.literal(),
            "var" => self.var(),
            "!" | "!!" => json!({ op: [self.expr(d)] }),
            "<" | "<=" if self.rng.u8(..4) == 0 => {
                json!({ op: [self.expr(d), self.expr(d), self.expr(d)] })
            }
            "==" | "!=" | "===" | "!==" | "<" | "<=" | ">" | ">=" | "in" | "/" | "%" => {
                json!({ op: [self.expr(d), self.expr(d)] })
            }
            "and" | "or" | "cat" | "+" | "*" | "min" | "max" | "merge" | "missing" => {
                let n = self.rng.usize(1..4);
                json!({ op: (0..n).map(|_| self.expr(d)).collect::<Vec<_>>() })
            }
            "-" => {
                let n = self.rng.usize(1..3);
                json!({ op: (0..n).map(|_| self.expr(d)).collect::<Vec<_>>() })
            }
            "if" => {
                let n = self.pick(&[1usize, 2, 3, 5]);
                json!({ op: (0..n).map(|_| self.expr(d)).collect::<Vec<_>>() })
            }
            "substr" => {
                let mut args = vec![self.expr(d), self.number()];
                if self.rng.bool() {
                    args.push(self.number());
                }
                json!({ op: args })
            }
            "map" | "filter" | "all" | "none" | "some" => {
                let body = match self.rng.u8(..4) {
                    0 => json!({"var": ""}),
                    1 => json!({">": [{"var": ""}, self.number()]}),
                    2 => json!({"==": [{"var": ""}, self.scalar()]}),
                    _ => json!({"+": [{"var": ""}, 1]}),
                };
                json!({ op: [self.expr(d), body] })
            }
            "reduce" => json!({ op: [
                self.expr(d),
                {"+": [{"var": "current"}, {"var": "accumulator"}]},
                self.scalar()
            ] }),
            "missing_some" => json!({ op: [self.rng.usize(0..3), ["a", "b", "missing"]] }),
            "starts_with" | "ends_with" => json!({ op: [self.expr(d), self.expr(d)] }),
            _ => json!({ op: [
                self.expr(d),
                self.pick(&["=", "!=", "<", "<=", ">", ">=", "^", "~"]),
                self.pick(&["1.0.0", "1.2.0", "2.0.0", "1.2.0-beta"])
            ] }),
        }
    }

    fn fractional(&mut self) -> Value {
        let n = self.rng.usize(1..4);
        let mut buckets: Vec<Value> = (0..n)
            .map(|_| match self.rng.u8(..6) {
                0 => json!([self.pick(&["a", "b", "c"])]),
                1 => json!([self.pick(&["a", "b"]), self.pick(&[0, 1, 50, -5])]),
                2 => json!([self.scalar(), 10]),
                _ => json!([self.pick(&["a", "b", "c"]), self.rng.u32(1..100)]),
            })
            .collect();
        match self.rng.u8(..4) {
            0 => buckets.insert(0, self.var()),
            1 => buckets.insert(
                0,
                json!({"cat": [{"var": "$flagd.flagKey"}, {"var": "targetingKey"}]}),
            ),
            _ => {}
        }
        json!({ "fractional": buckets })
    }

    fn targeting(&mut self) -> Value {
        match self.rng.u8(..6) {
            0 => self.fractional(),
            1 | 2 => {
                json!({"if": [self.expr(2), self.pick(VARIANT_NAMES), self.pick(VARIANT_NAMES)]})
            }
            _ => {
                let depth = self.rng.u32(1..4);
                self.expr(depth)
            }
        }
    }

    fn context(&mut self) -> Value {
        let mut ctx = Map::new();
        match self.rng.u8(..5) {
            0 => {}
            1 => {
                ctx.insert("targetingKey".into(), json!(""));
            }
            _ => {
                let key = self.pick(&["user-1", "jon@company.com", "0", "ada"]);
                ctx.insert("targetingKey".into(), json!(key));
            }
        }
        for name in ["a", "b", "n", "s"] {
            if self.rng.u8(..4) != 0 {
                let value = if name == "n" {
                    self.number()
                } else {
                    self.literal()
                };
                ctx.insert(name.into(), value);
            }
        }
        if self.rng.bool() {
            let n = self.rng.usize(0..4);
            ctx.insert(
                "arr".into(),
                Value::Array((0..n).map(|_| self.scalar()).collect()),
            );
        }
        if self.rng.bool() {
            ctx.insert("obj".into(), json!({"x": self.scalar()}));
        }
        Value::Object(ctx)
    }

    fn flag(&mut self) -> Value {
        let variants: Map<String, Value> = VARIANT_NAMES
            .iter()
            .map(|name| (name.to_string(), json!(format!("value of {name}"))))
            .collect();
        let default = if self.rng.u8(..6) == 0 {
            Value::Null
        } else {
            json!(self.pick(&["a", "b", "0"]))
        };
        json!({"state": "ENABLED", "variants": variants, "defaultVariant": default,
               "targeting": self.targeting()})
    }
}

/// The peers, or why the test cannot run.
fn peers() -> Result<(String, PathBuf), String> {
    let python = std::env::var("FLAGYARD_TEST_PYTHON")
        .ok()
        .filter(|p| !p.is_empty())
        .ok_or("FLAGYARD_TEST_PYTHON is not set (scripts/test.sh installs openfeature-flagd-core and sets it)")?;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("differential");
    if !dir.join("node_modules/@openfeature/flagd-core").is_dir() {
        return Err(format!(
            "@openfeature/flagd-core is not installed in {} (scripts/test.sh runs npm ci there)",
            dir.display()
        ));
    }
    let node = Command::new("node").arg("--version").output();
    if !node.is_ok_and(|o| o.status.success()) {
        return Err("node is not installed (scripts/test.sh installs nodejs)".into());
    }
    Ok((python, dir))
}

/// Runs one peer over the items; one list of answers per item.
fn run_peer(program: &str, script: &Path, input: &str, cwd: &Path) -> Vec<Vec<Value>> {
    use std::io::Write;
    let mut child = Command::new(program)
        .arg(script)
        .current_dir(cwd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {program} {}: {e}", script.display()));
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let text = input.to_string();
    let writer = std::thread::spawn(move || stdin.write_all(text.as_bytes()));
    let output = child.wait_with_output().expect("peer runs");
    writer
        .join()
        .expect("writer thread")
        .expect("peer reads its input");
    assert!(
        output.status.success(),
        "{} failed: {}",
        script.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .expect("peer writes UTF-8")
        .lines()
        .map(|line| serde_json::from_str(line).expect("peer writes JSON lines"))
        .collect()
}

fn flagyard_answers(item: &Value, version: FractionalVersion) -> Vec<Value> {
    let options = CompileOptions::default().fractional(version);
    let document = item["document"].to_string();
    let contexts = item["contexts"].as_array().expect("contexts");
    let Ok(snapshot) = Snapshot::parse_with(&document, &options) else {
        return contexts.iter().map(|_| json!({"refused": true})).collect();
    };
    contexts
        .iter()
        .map(|ctx| {
            let mut context = EvaluationContext::new();
            for (name, value) in ctx.as_object().expect("context object") {
                match (name.as_str(), value) {
                    ("targetingKey", Value::String(key)) => {
                        context = context.with_targeting_key(key.clone());
                    }
                    _ => context = context.with_attribute(name.clone(), value.clone()),
                }
            }
            let r = snapshot.resolve("flag", "DEFAULT", &context);
            json!({
                "value": r.value,
                "variant": r.variant(),
                "reason": r.reason.as_str(),
                "errorCode": r.error_code().map(|c| c.as_str()),
            })
        })
        .collect()
}

/// The parts compared: value, variant, reason, error code.
fn same(a: &Value, b: &Value) -> bool {
    ["value", "variant", "reason", "errorCode"]
        .iter()
        .all(|k| a.get(k).unwrap_or(&Value::Null) == b.get(k).unwrap_or(&Value::Null))
}

#[test]
fn flagyard_gives_the_answers_the_published_cores_agree_on() {
    let (python, dir) = match peers() {
        Ok(peers) => peers,
        Err(why) => {
            assert!(
                std::env::var("CI").map_or(true, |v| v != "true"),
                "the differential test cannot run under CI: {why}"
            );
            eprintln!("SKIPPED differential test: {why}");
            return;
        }
    };
    let mut generator = Gen {
        rng: fastrand::Rng::with_seed(
            std::env::var("FLAGYARD_DIFFERENTIAL_SEED")
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(SEED),
        ),
    };
    let items: Vec<Value> = (0..FLAGS)
        .map(|_| {
            let flag = generator.flag();
            let contexts: Vec<Value> = (0..CONTEXTS_PER_FLAG)
                .map(|_| generator.context())
                .collect();
            json!({"document": {"flags": {"flag": flag}}, "flag": "flag", "type": "string",
                   "contexts": contexts})
        })
        .collect();
    let input = Value::Array(items.clone()).to_string();
    let js = run_peer("node", &dir.join("flagd_core_peer.js"), &input, &dir);
    let py = run_peer(&python, &dir.join("flagd_core_peer.py"), &input, &dir);
    assert_eq!(js.len(), items.len(), "the JS core answered every flag");
    assert_eq!(py.len(), items.len(), "the Python core answered every flag");

    let (mut agreed, mut cores_differ, mut documented_count) = (0usize, 0usize, 0usize);
    let mut failures = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let flag = &item["document"]["flags"]["flag"];
        let fractional = flag["targeting"].to_string().contains("\"fractional\"");
        let v2 = flagyard_answers(item, FractionalVersion::V2);
        let v3 = flagyard_answers(item, FractionalVersion::V3);
        for (c, ctx) in item["contexts"]
            .as_array()
            .expect("contexts")
            .iter()
            .enumerate()
        {
            let (js, py) = (&js[i][c], &py[i][c]);
            if js.get("errorCode") == Some(&json!("THROWN"))
                || py.get("errorCode") == Some(&json!("THROWN"))
            {
                cores_differ += 1;
                continue;
            }
            // What to hold Flagyard to: both cores' answer where they agree;
            // for `fractional`, each core against its own generation.
            let checks: Vec<(&str, &Value, &Value)> = if fractional {
                vec![
                    ("JS core (v2)", js, &v2[c]),
                    ("Python core (v3)", py, &v3[c]),
                ]
            } else if same(js, py) {
                vec![
                    ("both cores (v2)", js, &v2[c]),
                    ("both cores (v3)", js, &v3[c]),
                ]
            } else {
                cores_differ += 1;
                continue;
            };
            agreed += 1;
            for (who, want, got) in checks {
                if same(want, got) {
                    continue;
                }
                if documented(flag).is_some() {
                    documented_count += 1;
                    continue;
                }
                failures.push(format!(
                    "flag {i} context {c}: {who} say {want}, Flagyard says {got}\n  targeting {}\n  context {ctx}",
                    flag["targeting"]
                ));
            }
        }
    }
    eprintln!(
        "differential: {agreed} answers compared, {cores_differ} where the cores differ (not compared), \
         {documented_count} documented differences, {} failures",
        failures.len()
    );
    assert!(
        agreed > FLAGS * CONTEXTS_PER_FLAG * 2 / 5,
        "too few answers the cores agree on ({agreed}): the generator or the peers are off"
    );
    assert!(
        failures.is_empty(),
        "{} disagreements (documented: {:?}):\n{}",
        failures.len(),
        DOCUMENTED,
        failures
            .iter()
            .take(25)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}
