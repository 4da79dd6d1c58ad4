//! Operator table: each rule evaluated against one context.

use serde_json::{Value, json};

use super::FractionalVersion;
use super::compile::{CompileCx, compile_rule};
use super::eval::{Data, Env, Val};
use crate::{EvaluationContext, Limits};

fn val_json(v: &Val<'_>) -> Value {
    match v {
        Val::Null => Value::Null,
        Val::Bool(b) => json!(b),
        Val::Num(n) => json!(n),
        Val::Str(s) => json!(s),
        Val::String(s) => json!(s),
        Val::Json(j) => (*j).clone(),
        Val::Array(items) => Value::Array(items.iter().map(val_json).collect()),
    }
}

fn run(rule: Value, ctx: &EvaluationContext) -> Value {
    let limits = Limits::default();
    let mut cx = CompileCx::new(None, &limits);
    let node = compile_rule(&rule, &mut cx).unwrap_or_else(|e| panic!("{rule}: {e:?}"));
    let env = Env {
        ctx,
        flag_key: "the-flag",
        variants: &[],
        fractional: FractionalVersion::V2,
    };
    val_json(&env.eval(&node, Data::Root))
}

fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y))
        }
        _ => a == b,
    }
}

#[test]
fn operator_table() {
    let ctx = EvaluationContext::new()
        .with_targeting_key("user-7")
        .with_attribute("email", "ada@example.com")
        .with_attribute("age", 41)
        .with_attribute("tags", json!(["beta", "staff"]))
        .with_attribute(
            "user",
            json!({"name": "ada", "roles": ["admin"], "n": [1, 2, 3]}),
        )
        .with_attribute("empty", "");
    let cases: Vec<(Value, Value)> = vec![
        (json!({"var": "email"}), json!("ada@example.com")),
        (json!({"var": "user.name"}), json!("ada")),
        (json!({"var": "user.roles.0"}), json!("admin")),
        (json!({"var": ["missing", "dflt"]}), json!("dflt")),
        (json!({"var": "targetingKey"}), json!("user-7")),
        (json!({"var": "$flagd.flagKey"}), json!("the-flag")),
        (json!({"var": {"cat": ["us", "er.name"]}}), json!("ada")),
        (json!({"==": [1, "1"]}), json!(true)),
        (json!({"===": [1, "1"]}), json!(false)),
        (json!({"!=": [{"var": "age"}, 41]}), json!(false)),
        (json!({"!==": ["a", "a"]}), json!(false)),
        // `null` against a number or boolean is 0, as the published flagd
        // cores have it (JavaScript's `==` would say false).
        (json!({"==": [null, 0]}), json!(true)),
        (json!({"==": [null, false]}), json!(true)),
        (json!({"!=": [false, null]}), json!(false)),
        (json!({"==": [null, ""]}), json!(false)),
        (json!({"==": [null, 1]}), json!(false)),
        (json!({"==": [true, 1]}), json!(true)),
        (json!({"!": [[]]}), json!(true)),
        (json!({"!!": ["0"]}), json!(true)),
        (json!({"or": [0, "", "x"]}), json!("x")),
        (json!({"and": [1, 0, 2]}), json!(0)),
        (json!({">": [{"var": "age"}, 40]}), json!(true)),
        (json!({">=": ["b", "a"]}), json!(true)),
        (json!({"<": [1, 2, 3]}), json!(true)),
        (json!({"<=": [1, 1, 0]}), json!(false)),
        (json!({"<": ["10", 9]}), json!(false)),
        (json!({"max": [1, 3, 2]}), json!(3)),
        (json!({"min": [1, 3, 2]}), json!(1)),
        (json!({"+": [1, "2", 3.5]}), json!(6.5)),
        (json!({"-": [5]}), json!(-5)),
        (json!({"-": [5, 7]}), json!(-2)),
        (json!({"*": [2, 3, 4]}), json!(24)),
        (json!({"/": [7, 2]}), json!(3.5)),
        (json!({"%": [7, 4]}), json!(3)),
        (
            json!({"map": [{"var": "user.n"}, {"*": [{"var": ""}, 2]}]}),
            json!([2, 4, 6]),
        ),
        (
            json!({"filter": [{"var": "user.n"}, {">": [{"var": ""}, 1]}]}),
            json!([2, 3]),
        ),
        (
            json!({"reduce": [{"var": "user.n"}, {"+": [{"var": "current"}, {"var": "accumulator"}]}, 10]}),
            json!(16),
        ),
        (
            json!({"all": [{"var": "user.n"}, {">": [{"var": ""}, 0]}]}),
            json!(true),
        ),
        (json!({"all": [[], {">": [{"var": ""}, 0]}]}), json!(false)),
        (
            json!({"none": [{"var": "tags"}, {"==": [{"var": ""}, "x"]}]}),
            json!(true),
        ),
        (
            json!({"some": [{"var": "tags"}, {"==": [{"var": ""}, "staff"]}]}),
            json!(true),
        ),
        (json!({"merge": [[1, 2], 3, [[4]]]}), json!([1, 2, 3, [4]])),
        (json!({"in": ["staff", {"var": "tags"}]}), json!(true)),
        (json!({"in": ["example", {"var": "email"}]}), json!(true)),
        (json!({"in": ["x", ["a", "b"]]}), json!(false)),
        (
            json!({"cat": ["a", 1, true, null, 2.5]}),
            json!("a1truenull2.5"),
        ),
        // Numbers are spelled as JavaScript's String(n).
        (
            json!({"cat": [1e21, "|", 1.5e-7, "|", 0.000001, "|", 123456789012345680000.0, "|", -0.0, "|", 2.0, "|", -1.25e-10, "|", 1e300]}),
            json!("1e+21|1.5e-7|0.000001|123456789012345680000|0|2|-1.25e-10|1e+300"),
        ),
        (json!({"substr": ["flagyard", 4]}), json!("yard")),
        (json!({"substr": ["flagyard", -4]}), json!("yard")),
        (json!({"substr": ["flagyard", 1, 3]}), json!("lag")),
        (json!({"substr": ["flagyard", 0, -4]}), json!("flag")),
        // Huge counts saturate instead of overflowing (found by the
        // differential test: a panic in debug builds, a bad slice in release).
        (json!({"substr": ["flagyard", 2, 1e21]}), json!("agyard")),
        (json!({"substr": ["flagyard", 1e21, 1e21]}), json!("")),
        (json!({"substr": ["flagyard", -1e21, 2]}), json!("fl")),
        (
            json!({"missing": ["email", "nope", "empty"]}),
            json!(["nope", "empty"]),
        ),
        (json!({"missing_some": [1, ["email", "nope"]]}), json!([])),
        (
            json!({"missing_some": [2, ["email", "nope"]]}),
            json!(["nope"]),
        ),
        (json!({"if": [false, 1, true, 2, 3]}), json!(2)),
        (json!({"if": [false, 1]}), Value::Null),
        (json!({"?:": [true, "y", "n"]}), json!("y")),
        (
            json!({"starts_with": [{"var": "email"}, "ada"]}),
            json!(true),
        ),
        (
            json!({"ends_with": [{"var": "email"}, "@example.com"]}),
            json!(true),
        ),
        (json!({"ends_with": [{"var": "age"}, "1"]}), Value::Null),
        (json!({"ends_with": [{"var": "email"}]}), Value::Null),
        (
            json!({"starts_with": [{"var": "email"}, "ADA"]}),
            json!(false),
        ),
        (json!({"sem_ver": ["1.2.3", ">=", "1.2.0"]}), json!(true)),
        (json!({"sem_ver": ["1.2.3", "~", "1.3.0"]}), json!(false)),
        (json!({"sem_ver": ["x", "=", "1.0.0"]}), Value::Null),
        (json!({"fractional": [["only"]]}), json!("only")),
        (
            json!({"fractional": [{"var": "missing"}, ["a", 1]]}),
            Value::Null,
        ),
        (json!({"fractional": [["a", 1.5], ["b", 1]]}), Value::Null),
        (json!({"fractional": [["a", 0], ["b", 0]]}), Value::Null),
        (json!({"fractional": [["a", -5], ["b", 1]]}), json!("b")),
        (
            json!({"fractional": [["a", 2147483647], ["b", 1]]}),
            Value::Null,
        ),
        (json!([1, {"var": "age"}]), json!([1, 41])),
        (json!({"a": 1, "b": 2}), json!({"a": 1, "b": 2})),
    ];
    for (rule, want) in cases {
        let got = run(rule.clone(), &ctx);
        assert!(same(&got, &want), "{rule} gave {got}, want {want}");
    }
}

#[test]
fn timestamp_is_unix_seconds() {
    let got = run(
        json!({"var": "$flagd.timestamp"}),
        &EvaluationContext::new(),
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as f64;
    let ts = got.as_f64().expect("a number");
    assert!((ts - now).abs() <= 2.0, "timestamp {ts} vs now {now}");
}

#[test]
fn unknown_operators_and_refs_are_compile_errors() {
    let limits = Limits::default();
    let evaluators = serde_json::Map::from_iter([("loop".to_string(), json!({"$ref": "loop"}))]);
    for (rule, words) in [
        (
            json!({"if": [{"nope": [1]}, "a"]}),
            "unknown operator 'nope'",
        ),
        (json!({"$ref": "missing"}), "unknown evaluator 'missing'"),
        (json!({"$ref": "loop"}), "cycle"),
        (json!({"$ref": 7}), "$ref must name"),
    ] {
        let mut cx = CompileCx::new(Some(&evaluators), &limits);
        let err = compile_rule(&rule, &mut cx).expect_err("must not compile");
        assert!(err.message.contains(words), "{rule}: {}", err.message);
    }
    let mut cx = CompileCx::new(None, &limits);
    let err = compile_rule(&json!({"if": [{"nope": [1]}, "a"]}), &mut cx).expect_err("error");
    assert_eq!(err.pointer, "/if/0/nope");
}

#[test]
fn in_over_a_long_literal_list_is_a_set_lookup_with_the_same_answers() {
    let list: Vec<String> = (0..20).map(|i| format!("user-{i}")).collect();
    let rule = json!({"in": [{"var": "targetingKey"}, list]});
    let limits = Limits::default();
    let node = compile_rule(&rule, &mut CompileCx::new(None, &limits)).expect("compiles");
    assert!(matches!(node, super::Node::InSet(_)), "{node:?}");
    for (key, want) in [
        ("user-0", true),
        ("user-19", true),
        ("user-20", false),
        ("user", false),
    ] {
        let ctx = EvaluationContext::new().with_targeting_key(key);
        assert_eq!(run(rule.clone(), &ctx), json!(want), "{key}");
    }
    // A number never strictly equals a string; a short list stays an `in`.
    let ctx = EvaluationContext::new().with_attribute("n", 3);
    assert_eq!(
        run(
            json!({"in": [{"var": "n"}, ["3","1","2","4","5","6","7","8"]]}),
            &ctx
        ),
        json!(false)
    );
    assert_eq!(run(json!({"in": ["b", ["a", "b"]]}), &ctx), json!(true));
}

#[test]
fn sample_hashes_on_the_bucket_value_or_draws_at_random() {
    let checks = 20_000;
    for percent in [0.0, 25.0, 100.0] {
        let random = (0..checks)
            .filter(|_| run(json!({"sample": [percent]}), &EvaluationContext::new()) == json!(true))
            .count() as f64;
        let hashed = (0..checks)
            .filter(|i| {
                let ctx = EvaluationContext::new().with_targeting_key(format!("user-{i}"));
                run(json!({"sample": [percent, {"var": "targetingKey"}]}), &ctx) == json!(true)
            })
            .count() as f64;
        for (mode, count) in [("random", random), ("hashed", hashed)] {
            let share = count / checks as f64 * 100.0;
            assert!(
                (share - percent).abs() < 1.5,
                "{mode} at {percent}%: {share:.2}%"
            );
        }
    }
    // Hashed: the same key always gets the same answer.
    let ctx = EvaluationContext::new().with_targeting_key("ada");
    let first = run(json!({"sample": [50, {"var": "targetingKey"}]}), &ctx);
    for _ in 0..50 {
        assert_eq!(
            run(json!({"sample": [50, {"var": "targetingKey"}]}), &ctx),
            first
        );
    }
    let limits = Limits::default();
    for (rule, words) in [
        (json!({"sample": [140]}), "outside 0-100"),
        (json!({"sample": []}), "takes a percentage"),
    ] {
        let err = compile_rule(&rule, &mut CompileCx::new(None, &limits)).expect_err("rejected");
        assert!(err.message.contains(words), "{rule}: {}", err.message);
    }
}
