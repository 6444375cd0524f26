//! The command line against a running `artel up`: `artel new` submits to it, and `status`,
//! `projects`, `deploy`, `logs` and `tree` read and act through its API, with `--json`; a bad
//! key and a missing server are clear errors.

use crate::new::Home;
use crate::support::{Artel, free_port};
use serde_json::Value;
use std::process::{Command, Output};
use std::time::Duration;

fn artel(args: &[&str], server: &str, key: &str) -> Output {
    run(args, server, Some(key))
}

/// `artel` with no API key anywhere (no flag, no variable, no key file).
fn without_key(args: &[&str], server: &str) -> Output {
    run(args, server, None)
}

fn run(args: &[&str], server: &str, key: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_artel"));
    command
        .args(args)
        .env("ARTEL_SERVER", server)
        .env_remove("ARTEL_API_KEY")
        .env(
            "ARTEL_DATA_DIR",
            std::env::temp_dir().join("artel-cli-nowhere"),
        )
        .env_remove("DATABASE_URL");
    if let Some(key) = key {
        command.env("ARTEL_API_KEY", key);
    }
    command.output().expect("artel runs")
}

fn ok(output: &Output, what: &str) -> String {
    assert!(
        output.status.success(),
        "{what}: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn json(output: &Output, what: &str) -> Value {
    serde_json::from_str(&ok(output, what)).unwrap_or_else(|e| panic!("{what}: not JSON: {e}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_command_line_drives_a_running_server() {
    let home = Home::new("cliclient").await;
    let env = home.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let server = Artel::up(&env);
    let (url, key) = (server.url.clone(), server.key.clone());

    // `artel new` finds the server and submits to it: the job runs there.
    let out = tokio::task::spawn_blocking({
        let (url, key) = (url.clone(), key.clone());
        move || artel(&["new", "--exit-when-done", "A todo list API"], &url, &key)
    })
    .await
    .unwrap();
    let text = ok(&out, "artel new");
    assert!(text.contains(&format!("submitting to {url}")), "{text}");
    let live = text
        .lines()
        .find_map(|l| l.split("live at ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no live URL in {text}"))
        .to_owned();
    let answer = reqwest::get(format!("{live}/api/todos")).await.unwrap();
    assert_eq!(answer.status().as_u16(), 200);

    let projects = json(&artel(&["projects", "--json"], &url, &key), "projects");
    let project = &projects[0];
    let name = project["project"]["name"].as_str().unwrap().to_owned();
    assert_eq!(project["live_url"], live.as_str());
    assert_eq!(project["latest_task"]["status"], "completed");

    let status = json(&artel(&["status", "--json"], &url, &key), "status");
    assert_eq!(status["ready"], true);
    assert_eq!(status["live"][0]["url"], live.as_str());
    assert_eq!(status["tasks_by_status"]["completed"], 2);

    let out = tokio::task::spawn_blocking({
        let (url, key, name) = (url.clone(), key.clone(), name.clone());
        move || artel(&["deploy", &name], &url, &key)
    })
    .await
    .unwrap();
    let text = ok(&out, "deploy");
    assert!(text.contains("✓ live at http://127.0.0.1:"), "{text}");

    let tasks: Value = server.get("/api/v1/tasks").await.1;
    let task = tasks["items"][0]["id"].as_str().unwrap().to_owned();
    let text = ok(&artel(&["logs", &task], &url, &key), "logs");
    assert!(text.contains("deploy started"), "{text}");
    assert!(text.contains("running → completed"), "{text}");
    let events = json(
        &artel(&["logs", &task, "--follow", "--json"], &url, &key),
        "logs --json",
    );
    assert!(events.as_array().unwrap().len() >= 5);

    let tree = json(&artel(&["tree", "--once", "--json"], &url, &key), "tree");
    let root = &tree["roots"][0];
    assert!(
        root["children"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["name"] == "sessions")
    );

    // A wrong key, and no server.
    let out = artel(
        &["projects"],
        &url,
        "artel_0000000000000000000000000000000000000000",
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("API key"), "{err}");
    // No key at all: the server's 401 becomes "how to get one".
    let out = without_key(&["projects"], &url);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("wants an API key") && err.contains("--api-key"),
        "{err}"
    );
    // No server, and no key either: the missing server is what is said.
    let nowhere = format!("http://127.0.0.1:{}", free_port());
    let out = artel(&["status"], &nowhere, &key);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no artel server answers"), "{err}");
    let out = without_key(&["projects"], &nowhere);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no artel server answers"), "{err}");
    tokio::time::sleep(Duration::from_millis(10)).await;
    server.terminate();
}
