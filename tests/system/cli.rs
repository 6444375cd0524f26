//! The command line, run as a user runs it.

use serde_json::Value;
use std::process::{Command, Output};

fn artel(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_artel"))
        .args(args)
        .env_remove("ARTEL_LOG")
        .output()
        .expect("the artel binary runs")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn help_names_every_command() {
    let out = artel(&["--help"]);
    assert!(out.status.success());
    let text = stdout(&out);
    for command in ["tree", "streams"] {
        assert!(text.contains(command), "--help lacks {command}: {text}");
    }
}

#[test]
fn the_demo_tree_shows_restarts_and_errors_live() {
    let out = artel(&["tree", "--demo", "--once", "--json", "--warmup-ms", "4000"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let snapshot: Value = serde_json::from_str(stdout(&out).trim()).expect("one JSON snapshot");
    let demo = &snapshot["roots"][0];
    assert_eq!(demo["name"], "demo");
    assert_eq!(demo["status"], "running");
    let child = |name: &str| -> &Value {
        demo["children"]
            .as_array()
            .and_then(|c| c.iter().find(|n| n["name"] == name))
            .unwrap_or_else(|| panic!("no {name} in {demo}"))
    };
    let crasher = child("crasher");
    assert!(crasher["restarts"].as_u64().unwrap() >= 1, "{crasher}");
    assert!(
        crasher["last_error"]
            .as_str()
            .unwrap()
            .contains("panicked: demo crash"),
        "{crasher}"
    );
    assert_eq!(crasher["mailbox_capacity"], 64);
    let pipeline = child("pipeline");
    assert_eq!(pipeline["detail"], "rest_for_one");
    let stages: Vec<&str> = pipeline["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap())
        .collect();
    assert_eq!(stages, ["sink", "transform", "source"]);
    // The demo's panics are logged through tracing (off by default), never as raw backtraces.
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("stack backtrace"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_demo_tree_refreshes_as_text() {
    let out = artel(&[
        "tree",
        "--demo",
        "--iterations",
        "3",
        "--interval-ms",
        "100",
    ]);
    assert!(out.status.success());
    let text = stdout(&out);
    assert_eq!(text.matches("demo  [one_for_one]").count(), 3, "{text}");
    assert!(text.contains("└── pipeline  [rest_for_one]"), "{text}");
}

#[test]
fn tree_without_a_server_says_what_to_do() {
    let out = artel(&["tree"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("artel tree --demo"), "{err}");
}

#[test]
fn bad_flags_are_refused_with_a_clear_error() {
    let out = artel(&["tree", "--demo", "--interval-ms", "1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--interval-ms"));
    let out = artel(&["--log", "[[[", "streams"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid --log"));
}

#[test]
fn streams_lists_the_registry() {
    let out = artel(&["streams", "--json"]);
    assert!(out.status.success());
    let streams: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let names: Vec<&str> = streams
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"artel.events"), "{names:?}");
    for stream in streams.as_array().unwrap() {
        for key in ["producer", "consumer", "payload", "dead_letter"] {
            assert!(stream.get(key).is_some(), "{stream} lacks {key}");
        }
    }
    let table = stdout(&artel(&["streams"]));
    assert!(table.starts_with("STREAM"), "{table}");
}
