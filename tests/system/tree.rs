//! The live tree through the front door, while work runs: two users, each with a key of their
//! own, each start a job from a chat session. Each user's tree (`GET /api/v1/tree` and
//! `artel tree`) shows their own session and task nodes — with status, mailbox and what they
//! serve — and the bare path to them, and not one id of the other user's work; an operator's
//! tree shows both; `/metrics`, which asks for no key, names neither. The agent holds each job in its develop step until the test lets it go,
//! so the nodes are there to read.

use crate::api::{Client, make_user, start};
use crate::new::{Home, JOB};
use crate::support::{eventually, eventually_some};
use serde_json::{Value, json};
use std::process::Command;

/// An agent that waits (at most two minutes) until `{gate}` exists, then commits.
const HELD_AGENT: &str = r#"#!/bin/sh
set -e
i=0
while [ ! -e '{gate}' ] && [ "$i" -lt 600 ]; do sleep 0.2; i=$((i + 1)); done
printf 'VERSION = 1\n' > version.py
git add -A
git commit -q -m "held, then let go"
"#;

/// What one user started: ids as the API shows them.
struct Work {
    session: String,
    project: String,
    task: String,
}

impl Work {
    fn ids(&self) -> [&str; 3] {
        [&self.session, &self.project, &self.task]
    }
}

/// Opens a session for `user`, asks for a service, and waits for the engineering task.
async fn ask(user: &Client, request: &str) -> Work {
    let (status, session) = user
        .post("/api/v1/sessions", json!({ "channel": "dashboard" }))
        .await;
    assert_eq!(status, 201, "{session}");
    let session = session["id"].as_str().unwrap().to_owned();
    let (status, reply) = user
        .post(
            &format!("/api/v1/sessions/{session}/messages"),
            json!({ "text": request }),
        )
        .await;
    assert_eq!(status, 200, "{reply}");
    let (task, project) = eventually_some(JOB, "the session's engineering task", || async {
        let (_, tasks) = user.get("/api/v1/tasks").await;
        let items = tasks["items"].as_array()?;
        let task = items.iter().find(|t| t["kind"] == "engineering")?;
        Some((task["id"].clone(), task["project"].clone()))
    })
    .await;
    Work {
        session,
        project: project.as_str().unwrap().to_owned(),
        task: task.as_str().unwrap().to_owned(),
    }
}

/// Every node of `tree` (or of the subtree at one node), depth first.
fn nodes(tree: &Value) -> Vec<&Value> {
    fn walk<'a>(node: &'a Value, out: &mut Vec<&'a Value>) {
        out.push(node);
        for child in node["children"].as_array().into_iter().flatten() {
            walk(child, out);
        }
    }
    let mut out = Vec::new();
    match tree["roots"].as_array() {
        Some(roots) => roots.iter().for_each(|root| walk(root, &mut out)),
        None => walk(tree, &mut out),
    }
    out
}

/// The node of `tree` labelled `key = value`.
fn labelled<'a>(tree: &'a Value, key: &str, value: &str) -> Option<&'a Value> {
    nodes(tree).into_iter().find(|n| n["labels"][key] == value)
}

/// Asserts `tree` shows `own` work live and holds no id of `foreign` work.
fn assert_own_part(tree: &Value, own: &Work, foreign: &Work, whose: &str) {
    let text = tree.to_string();
    for id in foreign.ids() {
        assert!(!text.contains(id), "{whose}'s tree holds {id}: {text}");
    }
    let session = labelled(tree, "session", &own.session)
        .unwrap_or_else(|| panic!("{whose}'s session node: {text}"));
    assert_eq!(session["name"], format!("session/{}", own.session));
    assert_eq!(session["role"], "session");
    assert_eq!(session["status"], "running");
    assert!(session["mailbox_capacity"].as_u64().is_some(), "{session}");
    assert!(session["uptime_ms"].as_u64().is_some(), "{session}");
    let task =
        labelled(tree, "task", &own.task).unwrap_or_else(|| panic!("{whose}'s task node: {text}"));
    assert_eq!(task["labels"]["project"], own.project.as_str(), "{task}");
    let developer = nodes(task)
        .into_iter()
        .find(|n| n["role"] == "developer")
        .unwrap_or_else(|| panic!("{whose}'s task's developer: {task}"));
    assert_eq!(
        developer["labels"]["task"],
        own.task.as_str(),
        "{developer}"
    );
    assert_eq!(developer["status"], "running", "{developer}");
    assert!(developer["mailbox_depth"].as_u64().is_some(), "{developer}");
    assert!(
        developer["mailbox_capacity"].as_u64().is_some(),
        "{developer}"
    );
    assert!(developer["restarts"].as_u64().is_some(), "{developer}");

    // The way to them is a bare path: no error, no labels, nothing off the path.
    let sessions = nodes(tree)
        .into_iter()
        .find(|n| n["name"] == "sessions")
        .unwrap_or_else(|| panic!("the path to the session: {text}"));
    assert_eq!(sessions["path_only"], true, "{sessions}");
    assert!(sessions.get("labels").is_none(), "{sessions}");
    assert!(sessions["last_error"].is_null(), "{sessions}");
    assert_eq!(
        sessions["children"].as_array().map(Vec::len),
        Some(1),
        "only the way to their session: {sessions}"
    );
    assert_nothing_foreign(&tree["roots"], false, own, whose);
    for node in nodes(tree) {
        for shared in ["scheduler", "herald", "gateways"] {
            assert_ne!(node["name"], shared, "{whose}: {text}");
        }
    }
}

/// Asserts every node at or below `node` is `own` work, below it, or a bare path.
fn assert_nothing_foreign(node: &Value, under_own: bool, own: &Work, whose: &str) {
    if let Some(nodes) = node.as_array() {
        for child in nodes {
            assert_nothing_foreign(child, under_own, own, whose);
        }
        return;
    }
    let labels = &node["labels"];
    let own_here = labels["session"] == own.session.as_str() || labels["task"] == own.task.as_str();
    let shown = under_own || own_here;
    assert!(
        shown || node["path_only"] == true,
        "{whose} sees a node that is not theirs: {node}"
    );
    assert_nothing_foreign(&node["children"], shown, own, whose);
}

#[tokio::test(flavor = "multi_thread")]
async fn each_key_sees_only_its_own_part_of_the_live_tree_and_an_operator_sees_all() {
    let home = Home::new("tree").await;
    let gate = home.data_dir.with_extension("scripts").join("let-go");
    let agent = home.script(
        "held-agent.sh",
        &HELD_AGENT.replace("{gate}", gate.to_str().unwrap()),
    );
    let artel = start(
        &home,
        &[
            ("ARTEL_AGENT__KIND", "cli"),
            ("ARTEL_AGENT__COMMAND", agent.to_str().unwrap()),
        ],
    )
    .await;
    let operator = Client::new(&artel.url, Some(&artel.key));
    let (_, alice_key) = make_user(&operator, "alice").await;
    let (_, bob_key) = make_user(&operator, "bob").await;
    let (_, carol_key) = make_user(&operator, "carol").await;
    let alice = Client::new(&artel.url, Some(&alice_key));
    let bob = Client::new(&artel.url, Some(&bob_key));
    let carol = Client::new(&artel.url, Some(&carol_key));

    let alices = ask(&alice, "A URL shortener with a REST API").await;
    let bobs = ask(&bob, "A todo list API").await;
    assert_ne!(alices.project, bobs.project);

    // The operator sees both users' sessions and tasks, live.
    let whole = eventually_some(JOB, "both tasks' nodes in the operator's tree", || async {
        let (status, tree) = operator.get("/api/v1/tree").await;
        assert_eq!(status, 200, "{tree}");
        [&alices, &bobs]
            .iter()
            .all(|w| {
                labelled(&tree, "task", &w.task).is_some()
                    && labelled(&tree, "session", &w.session).is_some()
            })
            .then_some(tree)
    })
    .await;
    assert!(
        nodes(&whole).iter().all(|n| n.get("path_only").is_none()),
        "an operator's tree withholds nothing"
    );
    assert!(nodes(&whole).iter().any(|n| n["name"] == "scheduler"));

    let (status, alices_tree) = alice.get("/api/v1/tree").await;
    assert_eq!(status, 200, "{alices_tree}");
    assert_own_part(&alices_tree, &alices, &bobs, "alice");
    let (status, bobs_tree) = bob.get("/api/v1/tree").await;
    assert_eq!(status, 200, "{bobs_tree}");
    assert_own_part(&bobs_tree, &bobs, &alices, "bob");
    let (status, carols_tree) = carol.get("/api/v1/tree").await;
    assert_eq!(status, 200, "{carols_tree}");
    assert_eq!(carols_tree, json!({ "roots": [] }), "carol runs nothing");

    // `/metrics` asks for no key: it counts the nodes of users' work but names none.
    let metrics = reqwest::get(format!("{}/metrics", artel.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("artel_tree_nodes{status=\"running\"}"),
        "{metrics}"
    );
    for id in alices.ids().into_iter().chain(bobs.ids()) {
        assert!(!metrics.contains(id), "{id} in {metrics}");
    }

    // `artel tree` reads the same scoped tree, as JSON and as text.
    let tree_cli = |key: &str, json: bool| {
        let mut args = vec!["tree", "--once", "--server", &artel.url];
        if json {
            args.push("--json");
        }
        let out = Command::new(env!("CARGO_BIN_EXE_artel"))
            .args(&args)
            .env("ARTEL_API_KEY", key)
            .output()
            .expect("artel tree runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let cli: Value = serde_json::from_str(&tree_cli(&alice_key, true)).unwrap();
    assert_own_part(&cli, &alices, &bobs, "alice through the CLI");
    let text = tree_cli(&alice_key, false);
    assert!(
        text.contains(&format!("session={}", alices.session)),
        "{text}"
    );
    assert!(text.contains(&format!("task={}", alices.task)), "{text}");
    assert!(text.contains("mailbox "), "{text}");
    for id in bobs.ids() {
        assert!(!text.contains(id), "{text}");
    }
    let text = tree_cli(&carol_key, false);
    assert!(text.contains("Nothing of yours runs now"), "{text}");

    // Let the jobs finish.
    std::fs::write(&gate, "").unwrap();
    for (user, work) in [(&alice, &alices), (&bob, &bobs)] {
        eventually(JOB, "the task to leave develop", || async move {
            let (_, detail) = user.get(&format!("/api/v1/tasks/{}", work.task)).await;
            detail["steps"].as_array().is_some_and(|s| {
                s.iter()
                    .any(|s| s["kind"] == "develop" && s["status"] == "succeeded")
            })
        })
        .await;
    }
    artel.terminate();
}
