//! The secret-leak test (issue 19): a whole job with a user secret and a generated one —
//! engineering by the built-in LLM agent on a scripted loopback model, then a deploy that
//! hands both to the service — and afterwards neither value appears in artel's log (at
//! `debug`), any event, any API answer, `/metrics`, the tree, or any request the model got.
//! The service's own environment holds both: that is where they belong, and it is how the
//! test learns the generated value.

use crate::api::{Client, live_deployment};
use crate::llm_agent::llm_peer::{LlmPeer, Reply};
use crate::llm_agent::{WRITE_APP, bash};
use crate::new::Home;
use crate::support::Artel;
use serde_json::{Value, json};
use std::time::Duration;

const JOB: Duration = Duration::from_secs(180);
const USER_SECRET: &str = "wx-0c9f3e71b2d84a56-leakcheck";

/// The model's edit of `artel.json`: the service reads a user secret and a generated one.
const DECLARE_ENV: &str = r#"python3 - <<'PY'
import json
m = json.load(open("artel.json"))
m["env"] = m.get("env", []) + [
    {"name": "WEATHER_API_KEY", "source": "user", "required": True, "description": "the weather API key"},
    {"name": "SESSION_SECRET", "source": "generated", "required": True, "description": "signs sessions"},
]
json.dump(m, open("artel.json", "w"), indent=2)
PY
echo declared"#;

/// The value of `name` in the environment of the process whose environment holds `needle`.
fn env_of_process_holding(needle: &str, name: &str) -> Option<String> {
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else {
            continue;
        };
        let vars: Vec<String> = environ
            .split(|b| *b == 0)
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .collect();
        if vars.iter().any(|v| v.ends_with(needle)) {
            let prefix = format!("{name}=");
            return vars
                .iter()
                .find_map(|v| v.strip_prefix(&prefix).map(str::to_owned));
        }
    }
    None
}

/// Every answer a key holder can read about the project, as text.
async fn everything_the_api_shows(artel: &Artel, project: &str) -> String {
    let operator = Client::new(&artel.url, Some(&artel.key));
    let mut paths = vec![
        "/api/v1/me".to_owned(),
        "/api/v1/projects".to_owned(),
        format!("/api/v1/projects/{project}"),
        format!("/api/v1/projects/{project}/tasks"),
        format!("/api/v1/projects/{project}/deployments"),
        format!("/api/v1/projects/{project}/secrets"),
        format!("/api/v1/projects/{project}/usage"),
        "/api/v1/tasks".to_owned(),
        "/api/v1/events?limit=1000".to_owned(),
        "/api/v1/workers".to_owned(),
        "/api/v1/targets".to_owned(),
        "/api/v1/tree".to_owned(),
    ];
    let (_, tasks) = operator
        .get(&format!("/api/v1/projects/{project}/tasks"))
        .await;
    for task in tasks["items"].as_array().into_iter().flatten() {
        let id = task["id"].as_str().unwrap_or_default();
        paths.push(format!("/api/v1/tasks/{id}"));
        paths.push(format!("/api/v1/tasks/{id}/usage"));
    }
    let mut all = String::new();
    for path in paths {
        let (status, body) = operator.get(&path).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        all.push_str(&format!("GET {path}\n{body}\n"));
    }
    let metrics = reqwest::get(format!("{}/metrics", artel.url))
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("metrics text");
    all.push_str(&metrics);
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_secret_appears_in_no_log_event_api_answer_metric_tree_or_model_request() {
    let home = Home::new("leak").await;
    let turns = [
        // What the agent's worker can see: its environment goes back to the model.
        bash("c1", "env | sort; cat artel.json"),
        bash("c2", WRITE_APP),
        bash("c3", DECLARE_ENV),
        Reply::tool_call(
            "c4",
            "finish",
            json!({"summary": "hello, with two secrets"}),
        )
        .usage(900, 30, 0)
        .turn(),
    ];
    let peer = LlmPeer::start(turns).await;
    let base = peer.openai_base();
    let env = home.env();
    let mut all: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    all.extend_from_slice(&[
        ("ARTEL_LOG", "debug"),
        ("ARTEL_AGENT__KIND", "llm"),
        ("ARTEL_LLM__PROVIDER", "openai"),
        ("ARTEL_LLM__BASE_URL", base.as_str()),
        ("ARTEL_LLM__API_KEY", "sk-leak-test-provider-key"),
        ("ARTEL_LLM__MODEL", "scripted-coder"),
    ]);
    let artel = Artel::up_logged(&all);
    let operator = Client::new(&artel.url, Some(&artel.key));
    let (status, body) = operator
        .post("/api/v1/projects", json!({ "name": "weather" }))
        .await;
    assert_eq!(status, 201, "{body}");
    // The user's secret exists before any code is written, so every step could leak it.
    let (status, body) = operator
        .send(
            reqwest::Method::PUT,
            "/api/v1/projects/weather/secrets/WEATHER_API_KEY",
            Some(json!({ "value": USER_SECRET })),
        )
        .await;
    assert_eq!(status, 204, "{body}");

    let (status, task) = operator
        .post(
            "/api/v1/projects/weather/tasks",
            json!({ "kind": "engineering", "description": "a weather service that says hello" }),
        )
        .await;
    assert_eq!(status, 202, "{task}");
    let engineering = task["id"].as_str().expect("task id").to_owned();
    crate::support::eventually(JOB, "the engineering task to succeed", || {
        let (operator, engineering) = (&operator, &engineering);
        async move {
            let (_, detail) = operator.get(&format!("/api/v1/tasks/{engineering}")).await;
            assert!(
                !["failed", "cancelled", "needs_human"]
                    .contains(&detail["task"]["status"].as_str().unwrap_or("")),
                "{detail}"
            );
            detail["task"]["status"] == "completed"
        }
    })
    .await;
    let (status, task) = operator
        .post(
            "/api/v1/projects/weather/tasks",
            json!({ "kind": "deploy", "description": "ship it" }),
        )
        .await;
    assert_eq!(status, 202, "{task}");
    let live = crate::support::eventually_some(JOB, "a live deployment", || {
        live_deployment(&operator, "weather")
    })
    .await;
    let url = live["url"].as_str().expect("url").to_owned();
    let (status, _) = crate::new::get(&format!("{url}/hello")).await;
    assert_eq!(status, 200, "the service serves");

    // The service has both values; that is the only place they are.
    let generated = env_of_process_holding(USER_SECRET, "SESSION_SECRET")
        .expect("the service runs with WEATHER_API_KEY and SESSION_SECRET in its environment");
    assert!(generated.len() >= 32, "{generated}");

    let shown = everything_the_api_shows(&artel, "weather").await;
    let events: Vec<String> = {
        let mut db = home.db().await;
        sqlx::query_scalar("SELECT payload::text FROM events")
            .fetch_all(&mut db)
            .await
            .expect("events")
    };
    let llm_rows: Vec<String> = {
        let mut db = home.db().await;
        sqlx::query_scalar("SELECT row_to_json(r)::text FROM llm_requests r")
            .fetch_all(&mut db)
            .await
            .expect("llm_requests")
    };
    let requests: Vec<Value> = peer.requests().into_iter().map(|r| r.body).collect();
    assert!(
        requests.len() >= 4,
        "the model was asked {} times",
        requests.len()
    );
    let asked = serde_json::to_string(&requests).expect("requests as text");
    assert!(
        asked.contains("ARTEL_") || asked.contains("PATH="),
        "the model saw the worker's environment (the probe works)"
    );
    let log = artel.log.clone().expect("kept log");
    let stdout = artel.terminate();
    let log = log.lock().expect("log").clone();
    assert!(log.lines().count() > 50, "artel logged at debug:\n{log}");

    for (what, value) in [
        ("the user secret", USER_SECRET),
        ("the generated secret", generated.as_str()),
    ] {
        let places = [
            ("the log", log.as_str()),
            ("stdout", stdout.as_str()),
            ("the API, /metrics and the tree", shown.as_str()),
            ("the model's requests", asked.as_str()),
        ];
        for (place, text) in places {
            assert!(!text.contains(value), "{what} is in {place}");
        }
        assert!(
            events.iter().all(|e| !e.contains(value)),
            "{what} is in an event"
        );
        assert!(
            llm_rows.iter().all(|r| !r.contains(value)),
            "{what} is in llm_requests"
        );
    }
}
