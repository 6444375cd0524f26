//! `artel new` with the built-in LLM agent (`ARTEL_AGENT__KIND=llm`) against a scripted model
//! on loopback: the model only calls `bash` and `finish`, writes `app.py` from the scaffold's
//! skeleton, artel tests and deploys it, and every call is recorded in `llm_requests`. A 429
//! storm first: each 429 restarts the Developer after the server's delay, then it succeeds.
//! The provider key never reaches the worker, and a project secret never reaches the model.

#[path = "../../actors/tests/support/llm_peer.rs"]
#[allow(dead_code)]
pub mod llm_peer;

use crate::new::{Home, get};
use llm_peer::{Fault, LlmPeer, Reply, Turn};
use serde_json::json;
use std::time::Duration;

const KEY: &str = "sk-system-test-key-5c1e";

/// The skeleton's `app.py` given a `/hello` route, by the model's `bash` call.
pub(crate) const WRITE_APP: &str = r#"python3 - <<'PY'
app = open("app.py").read()
route = '        elif self.path == "/hello":\n            status, payload = 200, {"message": "hello"}\n'
assert "        else:\n" in app, "not the skeleton"
open("app.py", "w").write(app.replace("        else:\n", route + "        else:\n", 1))
PY
python3 -m unittest 2>&1 | tail -3"#;

pub(crate) fn bash(id: &str, command: &str) -> Turn {
    Reply::tool_call(id, "bash", json!({ "command": command }))
        .usage(1200, 300, 200)
        .turn()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn artel_new_with_the_llm_agent_builds_tests_and_deploys_what_the_model_wrote() {
    let home = Home::new("llm-agent").await;
    let storm = (0..2).map(|_| Turn::Fault(Fault::RateLimited(vec![("retry-after", "5".into())])));
    let work = [
        bash("c1", "cat artel.json; head -20 app.py"),
        bash("c2", WRITE_APP),
        // What the worker's environment holds: committed, so the test can look for the key.
        bash("c3", "env | sort > WORKER_ENV.txt; echo written"),
        Reply::tool_call("c4", "finish", json!({"summary": "GET /hello says hello"}))
            .usage(1500, 40, 0)
            .turn(),
    ];
    let peer = LlmPeer::start(storm.chain(work)).await;
    let base = peer.openai_base();
    let env = [
        ("ARTEL_AGENT__KIND", "llm"),
        ("ARTEL_ANALYST__CONFIRM", "false"),
        ("ARTEL_LLM__PROVIDER", "openai"),
        ("ARTEL_LLM__BASE_URL", base.as_str()),
        ("ARTEL_LLM__API_KEY", KEY),
        ("ARTEL_LLM__MODEL", "scripted-coder"),
    ];
    let started = std::time::Instant::now();
    let mut run = home.new_job("a service that says hello", &env);
    let url = tokio::task::block_in_place(|| run.wait_live());
    let (status, body) = get(&format!("{url}/hello")).await;
    assert_eq!(
        (status, body["message"].as_str()),
        (200, Some("hello")),
        "{body}"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(9_500),
        "two 429s with retry-after 5 were waited out (the Developer's own backoff is 2 s, 4 s)"
    );

    let requests = peer.requests();
    assert_eq!(requests.len(), 6, "two 429s, then four turns");
    assert_eq!(
        requests[0].header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
    assert_eq!(requests[2].body["model"], "scripted-coder");

    let mut db = home.db().await;
    let rows: Vec<(String, String, String, i32)> =
        sqlx::query_as("SELECT role, model, status, tokens_in FROM llm_requests ORDER BY id")
            .fetch_all(&mut db)
            .await
            .expect("llm_requests");
    let statuses: Vec<&str> = rows.iter().map(|r| r.2.as_str()).collect();
    assert_eq!(
        statuses,
        ["rate_limited", "rate_limited", "ok", "ok", "ok", "ok"]
    );
    assert!(
        rows.iter()
            .all(|r| r.0 == "Developer" && r.1 == "scripted-coder")
    );
    assert_eq!(rows.iter().map(|r| r.3).sum::<i32>(), 1200 * 3 + 1500);
    let tasks: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM llm_requests r JOIN tasks t ON t.id = r.task_id \
         WHERE t.kind = 'engineering'",
    )
    .fetch_one(&mut db)
    .await
    .expect("count");
    assert_eq!(tasks, 6, "every call is the engineering task's");

    let project = crate::new::project_of(&run);
    let repo = home.repo(&project);
    let log = crate::new::git(&repo, &["log", "--all", "-p"]);
    assert!(
        log.contains("WORKER_ENV.txt"),
        "the model's file was committed"
    );
    assert!(!log.contains(KEY), "the provider key reached the worker");
    tokio::task::block_in_place(|| run.terminate());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_mid_agent_then_up_resumes_from_the_journal_without_asking_again() {
    let home = Home::new("llm-crash").await;
    let peer = LlmPeer::start([
        bash("c1", WRITE_APP),
        // artel is killed while this runs.
        bash("c2", "sleep 60"),
        Reply::tool_call("c3", "finish", json!({"summary": "GET /hello says hello"}))
            .usage(1500, 40, 0)
            .turn(),
    ])
    .await;
    let base = peer.openai_base();
    let env = [
        ("ARTEL_AGENT__KIND", "llm"),
        ("ARTEL_ANALYST__CONFIRM", "false"),
        ("ARTEL_LLM__BASE_URL", base.as_str()),
        ("ARTEL_LLM__API_KEY", KEY),
        ("ARTEL_LLM__MODEL", "scripted-coder"),
    ];
    let run = home.new_job("a service that says hello", &env);
    let deadline = std::time::Instant::now() + crate::new::JOB;
    while peer.requests().len() < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "the model was never asked twice"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The second answer (the `sleep`) is journaled once its tool call runs.
    tokio::time::sleep(Duration::from_secs(2)).await;
    tokio::task::block_in_place(|| run.kill());

    let up = home.up(&env);
    crate::support::eventually(crate::new::JOB, "the resumed job to deploy", || {
        let database = home.database.clone();
        async move {
            use sqlx::Connection;
            let mut db = sqlx::PgConnection::connect(&database).await.unwrap();
            let live: i64 =
                sqlx::query_scalar("SELECT count(*) FROM deployments WHERE status = 'live'")
                    .fetch_one(&mut db)
                    .await
                    .unwrap();
            live == 1
        }
    })
    .await;
    let requests = peer.requests();
    assert_eq!(requests.len(), 3, "no journaled turn was asked again");
    let last = requests[2].body.to_string();
    assert!(
        last.contains("interrupted"),
        "the cut call was answered: {last}"
    );
    let mut db = home.db().await;
    let url: String = sqlx::query_scalar("SELECT url FROM deployments WHERE status = 'live'")
        .fetch_one(&mut db)
        .await
        .expect("the live deployment");
    let (status, body) = get(&format!("{url}/hello")).await;
    assert_eq!(
        (status, body["message"].as_str()),
        (200, Some("hello")),
        "the file written before the crash was replayed into the fresh checkout: {body}"
    );
    tokio::task::block_in_place(|| up.terminate());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_turn_budget_reached_asks_the_user_whose_yes_approves_and_completes() {
    let home = Home::new("llm-budget").await;
    let peer = LlmPeer::start([
        bash("c1", WRITE_APP),
        bash("c2", "git status --short"),
        Reply::tool_call("c3", "finish", json!({"summary": "GET /hello says hello"}))
            .usage(1500, 40, 0)
            .turn(),
    ])
    .await;
    let base = peer.openai_base();
    let env = [
        ("ARTEL_AGENT__KIND", "llm"),
        ("ARTEL_ANALYST__CONFIRM", "false"),
        ("ARTEL_AGENT__MAX_TURNS", "2"),
        ("ARTEL_LLM__BASE_URL", base.as_str()),
        ("ARTEL_LLM__MODEL", "scripted-coder"),
    ];
    let mut run = home.new_job("a service that says hello", &env);
    tokio::task::block_in_place(|| {
        run.wait_for("I need your help with", crate::new::JOB);
    });
    let asked = run.seen.join("\n");
    assert!(
        asked.contains("used 2 of its 2 turns; approve 2 more turns or cancel"),
        "{asked}"
    );
    assert_eq!(peer.requests().len(), 2, "it never went over");
    run.say("yes");
    let url = tokio::task::block_in_place(|| run.wait_live());
    let (status, body) = get(&format!("{url}/hello")).await;
    assert_eq!(
        (status, body["message"].as_str()),
        (200, Some("hello")),
        "{body}"
    );
    assert_eq!(peer.requests().len(), 3);
    tokio::task::block_in_place(|| run.terminate());
}
