//! `flagyard pancake` as a process against a real redis-server.

use std::process::{Command, Output};

use flagyard_conformance::redis_server::TestRedis;

mod common;
use common::bin;

fn pancake(url: &str, args: &[&str]) -> Output {
    Command::new(bin())
        .args(["pancake", "--redis", url, "--actor", "tester"])
        .args(args)
        .output()
        .expect("flagyard pancake runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn pancake_commands_change_state_and_refuse_bad_input() {
    let Some(redis) = TestRedis::start() else {
        return;
    };
    let url = redis.url();
    for (args, said) in [
        (&["switch", "enable", "new_ui"][..], "switch NEW_UI enabled"),
        (&["flag", "disable", "beta"], "flag BETA disabled"),
        (
            &["flag", "enable-user", "beta", "ada"],
            "flag BETA enabled for user ada",
        ),
        (
            &["flag", "disable-user", "beta", "red", "--group", "team"],
            "flag BETA disabled for team red",
        ),
        (
            &["sample", "set", "rollout", "25"],
            "sample ROLLOUT set to 25%",
        ),
    ] {
        let out = pancake(&url, args);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        assert_eq!(text(&out.stdout).trim(), said);
    }
    let list = text(&pancake(&url, &["list"]).stdout);
    let lines: Vec<&str> = list.lines().map(str::trim_end).collect();
    assert_eq!(
        lines,
        [
            "switch  NEW_UI                   on",
            "flag    BETA                     off       team:red=off user:ada=on",
            "sample  ROLLOUT                  25%",
        ]
    );

    // Bad input: exit 1, the reason on stderr, nothing changed.
    for (args, reason) in [
        (
            &["sample", "set", "rollout", "140"][..],
            "ratio 140 is outside 0-100",
        ),
        (
            &["switch", "clear", "missing"],
            "switch MISSING does not exist",
        ),
        (&["switch", "enable", "a:b"], "contains ':'"),
        (
            &["flag", "clear-user", "beta", "bob"],
            "no override for user \"bob\"",
        ),
    ] {
        let out = pancake(&url, args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(
            text(&out.stderr).contains(reason),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
    assert_eq!(
        text(&pancake(&url, &["list"]).stdout),
        list,
        "a refused command changed state"
    );

    let history = text(&pancake(&url, &["history", "--limit", "2"]).stdout);
    let rows: Vec<&str> = history.lines().collect();
    assert_eq!(rows.len(), 2, "{history}");
    assert!(
        // The sample did not exist: its first write is recorded as `create`.
        rows[0].contains("tester")
            && rows[0].contains("create")
            && rows[0].contains("sample ROLLOUT"),
        "{history}"
    );

    // An unreachable Redis is an error naming it (exit 2).
    let out = pancake("redis://127.0.0.1:1", &["list"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("redis://127.0.0.1:1"),
        "{}",
        text(&out.stderr)
    );
}
