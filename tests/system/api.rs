//! The control plane's REST API through real HTTP against a real `artel up`: every endpoint's
//! success, validation error, 401 without a key, 404 across tenants, 413 on an oversized
//! body; 429 past a rate limit shared by two servers through Redis; the OpenAPI document
//! walked against the server; the first start's operator key; SIGTERM draining.

use crate::new::{Home, SLOW_AGENT, git};
use crate::support::{Artel, OwnRedis, eventually, free_port, new_key};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::Duration;

const JOB: Duration = Duration::from_secs(120);

/// One API client with one key.
pub(crate) struct Client {
    base: String,
    key: Option<String>,
    http: reqwest::Client,
}

impl Client {
    pub(crate) fn new(base: &str, key: Option<&str>) -> Self {
        Self {
            base: base.to_owned(),
            key: key.map(str::to_owned),
            http: reqwest::Client::new(),
        }
    }

    pub(crate) async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.base))
            .timeout(Duration::from_secs(30));
        if let Some(key) = &self.key {
            request = request.bearer_auth(key);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub(crate) async fn get(&self, path: &str) -> (u16, Value) {
        self.send(Method::GET, path, None).await
    }

    pub(crate) async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(Method::POST, path, Some(body)).await
    }

    /// Sends a raw body of `len` bytes of JSON-ish text.
    async fn oversized(&self, method: Method, path: &str, len: usize) -> u16 {
        let body = format!("{{\"text\":\"{}\"}}", "a".repeat(len));
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body);
        if let Some(key) = &self.key {
            request = request.bearer_auth(key);
        }
        request.send().await.expect("send").status().as_u16()
    }
}

/// Asserts an error answer: status and stable code.
fn assert_error(answer: &(u16, Value), status: u16, code: &str, what: &str) {
    assert_eq!(answer.0, status, "{what}: {}", answer.1);
    assert_eq!(answer.1["error"]["code"], code, "{what}: {}", answer.1);
    assert!(
        answer.1["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{what}: the error says what happened: {}",
        answer.1
    );
}

pub(crate) async fn start(home: &Home, extra: &[(&str, &str)]) -> Artel {
    let env = home.env();
    let mut all: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    all.extend_from_slice(extra);
    Artel::up(&all)
}

/// An operator makes a user; answers (user id, key).
pub(crate) async fn make_user(operator: &Client, name: &str) -> (String, String) {
    let (status, body) = operator
        .post(
            "/api/v1/users",
            json!({ "name": name, "email": format!("{name}@example.com") }),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["user"]["role"], "user");
    (
        body["user"]["id"].as_str().unwrap().to_owned(),
        body["key"]["key"].as_str().unwrap().to_owned(),
    )
}

pub(crate) async fn live_deployment(client: &Client, project: &str) -> Option<Value> {
    let (status, body) = client
        .get(&format!("/api/v1/projects/{project}/deployments"))
        .await;
    assert_eq!(status, 200, "{body}");
    body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["status"] == "live")
        .cloned()
}

async fn wait_live(client: &Client, project: &str, not_commit: Option<&str>) -> Value {
    let deadline = tokio::time::Instant::now() + JOB;
    loop {
        if let Some(live) = live_deployment(client, project).await
            && not_commit.is_none_or(|c| live["commit"] != c)
        {
            return live;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no new live deployment of {project}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_endpoint_answers_scoped_validated_and_authenticated() {
    let home = Home::new("api").await;
    let artel = start(&home, &[]).await;
    let operator = Client::new(&artel.url, Some(&artel.key));
    let anonymous = Client::new(&artel.url, None);
    let (alice_id, alice_key) = make_user(&operator, "alice").await;
    let (_, bob_key) = make_user(&operator, "bob").await;
    let alice = Client::new(&artel.url, Some(&alice_key));
    let bob = Client::new(&artel.url, Some(&bob_key));

    // Who am I; users are for operators.
    let (status, me) = alice.get("/api/v1/me").await;
    assert_eq!(status, 200);
    assert_eq!(me["user"]["id"], alice_id.as_str());
    assert_eq!(me["user"]["role"], "user");
    assert_error(
        &alice.post("/api/v1/users", json!({ "name": "eve" })).await,
        403,
        "forbidden",
        "a user making users",
    );
    assert_error(
        &operator
            .post("/api/v1/users", json!({ "name": "", "email": "x@y.z" }))
            .await,
        400,
        "validation_failed",
        "an empty name",
    );
    assert_error(
        &operator
            .post(
                "/api/v1/users",
                json!({ "name": "carol", "email": "alice@example.com" }),
            )
            .await,
        409,
        "conflict",
        "a taken e-mail",
    );

    // Projects.
    let (status, project) = alice
        .post(
            "/api/v1/projects",
            json!({ "name": "shop", "description": "a todo list API" }),
        )
        .await;
    assert_eq!(status, 201, "{project}");
    let project_id = project["id"].as_str().unwrap().to_owned();
    assert_error(
        &alice
            .post("/api/v1/projects", json!({ "name": "shop" }))
            .await,
        409,
        "conflict",
        "a duplicate name",
    );
    assert_error(
        &alice
            .post("/api/v1/projects", json!({ "name": "Not OK!" }))
            .await,
        400,
        "validation_failed",
        "a bad name",
    );
    assert_error(
        &alice
            .post("/api/v1/projects", json!({ "name": "x", "bogus": 1 }))
            .await,
        400,
        "validation_failed",
        "an unknown field",
    );
    assert_error(
        &alice.send(Method::POST, "/api/v1/projects", None).await,
        400,
        "bad_request",
        "no body",
    );
    let (status, list) = alice.get("/api/v1/projects").await;
    assert_eq!(status, 200);
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    let (_, bob_list) = bob.get("/api/v1/projects").await;
    assert_eq!(bob_list["items"], json!([]), "bob sees none of alice's");
    let (_, all) = operator.get("/api/v1/projects").await;
    assert_eq!(
        all["items"].as_array().unwrap().len(),
        1,
        "operators see all"
    );
    let (status, updated) = alice
        .send(
            Method::PATCH,
            "/api/v1/projects/shop",
            Some(json!({ "description": "todos, with due dates" })),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(updated["description"], "todos, with due dates");
    assert_error(
        &alice
            .send(
                Method::PATCH,
                "/api/v1/projects/shop",
                Some(json!({ "description": "x".repeat(2001) })),
            )
            .await,
        400,
        "validation_failed",
        "a long description",
    );
    for path in [
        format!("/api/v1/projects/{project_id}"),
        "/api/v1/projects/shop".to_owned(),
        format!("/api/v1/projects/{project_id}/tasks"),
        format!("/api/v1/projects/{project_id}/deployments"),
        format!("/api/v1/projects/{project_id}/secrets"),
    ] {
        assert_error(&bob.get(&path).await, 404, "not_found", &path);
        assert_error(&anonymous.get(&path).await, 401, "unauthorized", &path);
    }
    assert_error(
        &bob.send(
            Method::PATCH,
            &format!("/api/v1/projects/{project_id}"),
            Some(json!({ "description": "mine now" })),
        )
        .await,
        404,
        "not_found",
        "bob patching",
    );
    assert_error(
        &bob.send(
            Method::DELETE,
            &format!("/api/v1/projects/{project_id}"),
            None,
        )
        .await,
        404,
        "not_found",
        "bob deleting",
    );

    // Notes on a project's stream.
    let (status, note) = alice
        .post(
            "/api/v1/projects/shop/notes",
            json!({ "text": "deploy freeze" }),
        )
        .await;
    assert_eq!(status, 201, "{note}");
    assert_eq!(note["kind"], "note");
    assert_eq!(note["payload"]["author"], "alice");
    assert_error(
        &bob.post(
            &format!("/api/v1/projects/{project_id}/notes"),
            json!({ "text": "mine" }),
        )
        .await,
        404,
        "not_found",
        "bob noting alice's project",
    );
    assert_error(
        &alice
            .post("/api/v1/projects/shop/notes", json!({ "text": " " }))
            .await,
        400,
        "validation_failed",
        "an empty note",
    );

    // Secrets: write-only, scoped.
    let (status, _) = alice
        .send(
            Method::PUT,
            "/api/v1/projects/shop/secrets/STRIPE_KEY",
            Some(json!({ "value": "sk_live_do_not_show" })),
        )
        .await;
    assert_eq!(status, 204);
    let (_, names) = alice.get("/api/v1/projects/shop/secrets").await;
    assert_eq!(names["names"], json!(["STRIPE_KEY"]));
    assert!(!names.to_string().contains("sk_live"), "values never leave");
    assert_error(
        &alice
            .send(
                Method::PUT,
                "/api/v1/projects/shop/secrets/not-a-name",
                Some(json!({ "value": "v" })),
            )
            .await,
        400,
        "validation_failed",
        "a bad secret name",
    );
    assert_error(
        &bob.send(
            Method::PUT,
            &format!("/api/v1/projects/{project_id}/secrets/STRIPE_KEY"),
            Some(json!({ "value": "v" })),
        )
        .await,
        404,
        "not_found",
        "bob setting alice's secret",
    );
    let (status, _) = alice
        .send(
            Method::DELETE,
            "/api/v1/projects/shop/secrets/STRIPE_KEY",
            None,
        )
        .await;
    assert_eq!(status, 204);
    assert_error(
        &alice
            .send(
                Method::DELETE,
                "/api/v1/projects/shop/secrets/STRIPE_KEY",
                None,
            )
            .await,
        404,
        "not_found",
        "deleting a deleted secret",
    );

    // Sessions: a conversation builds and deploys a service.
    let (status, session) = alice
        .post("/api/v1/sessions", json!({ "channel": "dashboard" }))
        .await;
    assert_eq!(status, 201, "{session}");
    let session_id = session["id"].as_str().unwrap().to_owned();
    assert_error(
        &alice
            .post("/api/v1/sessions", json!({ "channel": "fax" }))
            .await,
        400,
        "validation_failed",
        "an unknown channel",
    );
    let (status, reply) = alice
        .post(
            &format!("/api/v1/sessions/{session_id}/messages"),
            json!({ "text": "A URL shortener with a REST API" }),
        )
        .await;
    assert_eq!(status, 200, "{reply}");
    assert!(
        !reply["items"].as_array().unwrap().is_empty(),
        "the ProductOwner answers: {reply}"
    );
    assert_eq!(reply["items"][0]["role"], "product_owner");
    assert_error(
        &alice
            .post(
                &format!("/api/v1/sessions/{session_id}/messages"),
                json!({ "text": "   " }),
            )
            .await,
        400,
        "validation_failed",
        "an empty line",
    );
    for answer in [
        bob.get(&format!("/api/v1/sessions/{session_id}")).await,
        bob.get(&format!("/api/v1/sessions/{session_id}/messages"))
            .await,
        bob.post(
            &format!("/api/v1/sessions/{session_id}/messages"),
            json!({ "text": "status" }),
        )
        .await,
    ] {
        assert_error(&answer, 404, "not_found", "bob in alice's session");
    }
    let deadline = tokio::time::Instant::now() + JOB;
    let built = loop {
        let (_, s) = alice.get(&format!("/api/v1/sessions/{session_id}")).await;
        if let Some(p) = s["project"].as_str() {
            break p.to_owned();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the session has no project: {s}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let (_, built_project) = alice.get(&format!("/api/v1/projects/{built}")).await;
    let built_name = built_project["name"].as_str().unwrap().to_owned();
    let live = wait_live(&alice, &built, None).await;
    let url = live["url"].as_str().unwrap().to_owned();
    let answers = reqwest::get(format!("{url}/api/links")).await.unwrap();
    assert_eq!(answers.status().as_u16(), 200, "the service answers");
    let (_, transcript) = alice
        .get(&format!("/api/v1/sessions/{session_id}/messages"))
        .await;
    let lines = transcript["items"].as_array().unwrap();
    assert!(
        lines
            .iter()
            .any(|l| l["text"].as_str().unwrap_or("").contains(&url)),
        "the transcript tells the URL: {transcript}"
    );

    // Tasks.
    let (_, tasks) = alice.get("/api/v1/tasks").await;
    let tasks = tasks["items"].as_array().unwrap().clone();
    assert_eq!(tasks.len(), 2, "engineering and its deploy: {tasks:?}");
    let task_id = tasks[0]["id"].as_str().unwrap().to_owned();
    let (status, detail) = alice.get(&format!("/api/v1/tasks/{task_id}")).await;
    assert_eq!(status, 200);
    assert!(!detail["steps"].as_array().unwrap().is_empty());
    let (_, completed) = alice.get("/api/v1/tasks?status=completed").await;
    assert_eq!(completed["items"].as_array().unwrap().len(), 2);
    assert_error(
        &alice.get("/api/v1/tasks?status=sideways").await,
        400,
        "bad_request",
        "an unknown status",
    );
    assert_error(
        &alice.get("/api/v1/tasks?limit=0").await,
        400,
        "validation_failed",
        "limit 0",
    );
    let (_, bobs) = bob.get("/api/v1/tasks").await;
    assert_eq!(bobs["items"], json!([]));
    for (method, path, body) in [
        (Method::GET, format!("/api/v1/tasks/{task_id}"), None),
        (
            Method::POST,
            format!("/api/v1/tasks/{task_id}/cancel"),
            Some(json!({})),
        ),
        (
            Method::POST,
            format!("/api/v1/tasks/{task_id}/retry"),
            Some(json!({ "guidance": "try harder" })),
        ),
    ] {
        let what = format!("bob: {method} {path}");
        assert_error(
            &bob.send(method, &path, body).await,
            404,
            "not_found",
            &what,
        );
    }
    assert_error(
        &alice
            .post(&format!("/api/v1/tasks/{task_id}/cancel"), json!({}))
            .await,
        409,
        "conflict",
        "cancelling a completed task",
    );
    assert_error(
        &alice
            .post(
                &format!("/api/v1/tasks/{task_id}/retry"),
                json!({ "guidance": "x".repeat(4001) }),
            )
            .await,
        400,
        "validation_failed",
        "long guidance",
    );
    assert_error(
        &alice
            .post(
                &format!("/api/v1/tasks/{task_id}/retry"),
                json!({ "guidance": "again" }),
            )
            .await,
        409,
        "conflict",
        "retrying a completed task",
    );
    assert_error(
        &alice
            .post(
                &format!("/api/v1/projects/{built}/tasks"),
                json!({ "kind": "teleport", "description": "x" }),
            )
            .await,
        400,
        "validation_failed",
        "an unknown task kind",
    );
    assert_error(
        &bob.post(
            &format!("/api/v1/projects/{built}/tasks"),
            json!({ "kind": "deploy", "description": "mine" }),
        )
        .await,
        404,
        "not_found",
        "bob deploying alice's project",
    );

    // Events: scoped and paged.
    let (status, page) = alice
        .get(&format!("/api/v1/events?project={built}&limit=5"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(page["items"].as_array().unwrap().len(), 5);
    let next = page["next"].as_i64().unwrap();
    let (_, page2) = alice
        .get(&format!(
            "/api/v1/events?project={built}&since={next}&limit=5"
        ))
        .await;
    assert!(page2["items"][0]["id"].as_i64().unwrap() > next);
    let (_, mine) = alice.get("/api/v1/events?limit=1000").await;
    assert!(mine["items"].as_array().unwrap().len() >= 10);
    let (_, bobs) = bob.get("/api/v1/events").await;
    assert_eq!(bobs["items"], json!([]), "bob sees none of alice's events");
    assert_error(
        &bob.get(&format!("/api/v1/events?project={built}")).await,
        404,
        "not_found",
        "bob's events of alice's project",
    );
    assert_error(
        &alice.get("/api/v1/events?since=-1").await,
        400,
        "validation_failed",
        "a negative since",
    );

    // Workers.
    let (_, workers) = alice.get("/api/v1/workers").await;
    let workers = workers["items"].as_array().unwrap().clone();
    assert!(!workers.is_empty(), "the build ran in workers");
    let worker = workers[0]["id"].as_str().unwrap();
    let (_, bobs) = bob.get("/api/v1/workers").await;
    assert_eq!(bobs["items"], json!([]));
    assert_error(
        &bob.post(&format!("/api/v1/workers/{worker}/stop"), json!({}))
            .await,
        404,
        "not_found",
        "bob stopping alice's worker",
    );
    let (status, stopped) = alice
        .post(&format!("/api/v1/workers/{worker}/stop"), json!({}))
        .await;
    assert_eq!(status, 200, "{stopped}");
    assert_eq!(stopped["status"], "stopped");

    // Deploy targets.
    let (status, targets) = alice.get("/api/v1/targets").await;
    assert_eq!(status, 200);
    assert_eq!(targets["items"][0]["kind"], "local");
    assert_eq!(targets["items"][0]["live"], 1);

    // Rollback: a second commit goes live, then the first serves again.
    let first_commit = live["commit"].as_str().unwrap().to_owned();
    assert_error(
        &alice
            .post(
                &format!("/api/v1/projects/{built}/deployments/rollback"),
                json!({}),
            )
            .await,
        409,
        "conflict",
        "nothing to roll back to",
    );
    let work = home.data_dir.join("second");
    git(
        &home.data_dir,
        &[
            "clone",
            "-q",
            home.repo(&built_name).to_str().unwrap(),
            work.to_str().unwrap(),
        ],
    );
    std::fs::write(work.join("NOTES.md"), "second version\n").unwrap();
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-qm", "a second version"]);
    git(&work, &["push", "-q", "origin", "HEAD:main"]);
    let (status, deploy) = alice
        .post(
            &format!("/api/v1/projects/{built}/tasks"),
            json!({ "kind": "deploy", "description": "ship the second version" }),
        )
        .await;
    assert_eq!(status, 202, "{deploy}");
    let second = wait_live(&alice, &built, Some(&first_commit)).await;
    assert_ne!(second["commit"], first_commit.as_str());
    let (status, rollback) = alice
        .post(
            &format!("/api/v1/projects/{built}/deployments/rollback"),
            json!({}),
        )
        .await;
    assert_eq!(status, 202, "{rollback}");
    assert_eq!(rollback["kind"], "deploy");
    let back = wait_live(&alice, &built, second["commit"].as_str()).await;
    assert_eq!(
        back["commit"],
        first_commit.as_str(),
        "the first commit serves again"
    );
    let back_url = back["url"].as_str().unwrap().to_owned();
    assert_eq!(
        reqwest::get(format!("{back_url}/api/links"))
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );

    // Their own LLM provider keys: write-only, per user.
    let (status, _) = alice
        .send(
            Method::PUT,
            "/api/v1/me/llm-keys/anthropic",
            Some(json!({ "api_key": "sk-ant-alices-own-0042" })),
        )
        .await;
    assert_eq!(status, 204);
    let (_, mine) = alice.get("/api/v1/me/llm-keys").await;
    assert_eq!(mine["providers"], json!(["anthropic"]));
    assert!(!mine.to_string().contains("sk-ant"), "keys never leave");
    let (_, bobs) = bob.get("/api/v1/me/llm-keys").await;
    assert_eq!(
        bobs["providers"],
        json!([]),
        "one user's key is not another's"
    );
    assert_error(
        &alice
            .send(
                Method::PUT,
                "/api/v1/me/llm-keys/gemini",
                Some(json!({ "api_key": "k" })),
            )
            .await,
        400,
        "validation_failed",
        "an unknown provider",
    );
    assert_error(
        &alice
            .send(
                Method::PUT,
                "/api/v1/me/llm-keys/openai",
                Some(json!({ "api_key": "two words" })),
            )
            .await,
        400,
        "validation_failed",
        "a key with a space",
    );
    let (status, _) = alice
        .send(Method::DELETE, "/api/v1/me/llm-keys/anthropic", None)
        .await;
    assert_eq!(status, 204);
    assert_error(
        &alice
            .send(Method::DELETE, "/api/v1/me/llm-keys/anthropic", None)
            .await,
        404,
        "not_found",
        "forgetting a forgotten key",
    );

    // Keys: created (shown once), listed without secrets, revoked.
    let (status, created) = alice
        .post("/api/v1/keys", json!({ "label": "laptop" }))
        .await;
    assert_eq!(status, 201, "{created}");
    let laptop = created["key"].as_str().unwrap().to_owned();
    let laptop_id = created["id"].as_str().unwrap().to_owned();
    let (_, keys) = alice.get("/api/v1/keys").await;
    assert_eq!(keys["items"].as_array().unwrap().len(), 2);
    assert!(
        !keys.to_string().contains(&laptop),
        "listings never show a key"
    );
    assert!(!keys.to_string().contains(&alice_key));
    assert_error(
        &alice
            .post("/api/v1/keys", json!({ "label": "x".repeat(101) }))
            .await,
        400,
        "validation_failed",
        "a long label",
    );
    let laptop_client = Client::new(&artel.url, Some(&laptop));
    assert_eq!(laptop_client.get("/api/v1/me").await.0, 200);
    assert_error(
        &bob.send(Method::DELETE, &format!("/api/v1/keys/{laptop_id}"), None)
            .await,
        404,
        "not_found",
        "bob revoking alice's key",
    );
    let (status, _) = alice
        .send(Method::DELETE, &format!("/api/v1/keys/{laptop_id}"), None)
        .await;
    assert_eq!(status, 204);
    assert_error(
        &laptop_client.get("/api/v1/me").await,
        401,
        "unauthorized",
        "a revoked key",
    );
    assert_error(
        &Client::new(&artel.url, Some(&new_key()))
            .get("/api/v1/me")
            .await,
        401,
        "unauthorized",
        "an unknown key",
    );
    assert_error(
        &Client::new(&artel.url, Some("not even a key"))
            .get("/api/v1/me")
            .await,
        401,
        "unauthorized",
        "garbage",
    );

    // The tree: readable by all (each key its own part, see `tree.rs`), restart and stop are
    // for operators.
    let (status, _) = alice.get("/api/v1/tree").await;
    assert_eq!(status, 200);
    let (status, tree) = operator.get("/api/v1/tree").await;
    assert_eq!(status, 200);
    let scheduler = tree["roots"][0]["children"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == "scheduler")
        .cloned()
        .expect("a scheduler node");
    let node = scheduler["id"].as_u64().unwrap();
    assert_error(
        &alice
            .post(&format!("/api/v1/tree/{node}/restart"), json!({}))
            .await,
        403,
        "forbidden",
        "a user restarting a node",
    );
    assert_error(
        &operator
            .post("/api/v1/tree/99999999/restart", json!({}))
            .await,
        404,
        "not_found",
        "an unknown node",
    );
    let root = tree["roots"][0]["id"].as_u64().unwrap();
    assert_error(
        &operator
            .post(&format!("/api/v1/tree/{root}/stop"), json!({}))
            .await,
        409,
        "conflict",
        "stopping the root",
    );
    let (status, done) = operator
        .post(&format!("/api/v1/tree/{node}/restart"), json!({}))
        .await;
    assert_eq!(status, 200, "{done}");
    eventually(
        Duration::from_secs(10),
        "the scheduler running again",
        || {
            let operator = &operator;
            async move {
                let (_, tree) = operator.get("/api/v1/tree").await;
                tree["roots"][0]["children"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|n| n["name"] == "scheduler" && n["status"] == "running")
            }
        },
    )
    .await;

    // 413 on every write endpoint; 401 comes before anything else.
    let big = 70 * 1024;
    for (method, path) in [
        (Method::POST, "/api/v1/users".to_owned()),
        (Method::POST, "/api/v1/keys".to_owned()),
        (Method::POST, "/api/v1/projects".to_owned()),
        (Method::PATCH, format!("/api/v1/projects/{built}")),
        (Method::POST, format!("/api/v1/projects/{built}/tasks")),
        (Method::PUT, format!("/api/v1/projects/{built}/secrets/BIG")),
        (Method::POST, format!("/api/v1/tasks/{task_id}/retry")),
        (
            Method::POST,
            format!("/api/v1/sessions/{session_id}/messages"),
        ),
    ] {
        let what = format!("{method} {path}");
        assert_eq!(
            operator.oversized(method.clone(), &path, big).await,
            413,
            "{what}"
        );
        assert_eq!(anonymous.oversized(method, &path, 10).await, 401, "{what}");
    }

    // Unknown routes answer the same error shape.
    assert_error(
        &alice.get("/api/v1/nothing-here").await,
        404,
        "not_found",
        "no route",
    );

    // Delete: the service stops and the project is gone.
    let (status, _) = alice
        .send(Method::DELETE, &format!("/api/v1/projects/{built}"), None)
        .await;
    assert_eq!(status, 204);
    assert_error(
        &alice.get(&format!("/api/v1/projects/{built}")).await,
        404,
        "not_found",
        "a deleted project",
    );
    assert!(
        reqwest::get(format!("{back_url}/api/links")).await.is_err(),
        "the deleted project's service is stopped"
    );
    artel.terminate();
}

#[tokio::test(flavor = "multi_thread")]
async fn rate_limits_are_per_key_and_shared_by_servers_through_redis() {
    let home = Home::new("ratelimit").await;
    let redis = OwnRedis::start(free_port());
    let redis_url = format!("redis://127.0.0.1:{}", redis.port);
    let key = new_key();
    let limits = [
        ("REDIS_URL", redis_url.as_str()),
        ("ARTEL_HTTP__RATE_LIMIT_PER_SEC", "1"),
        ("ARTEL_HTTP__RATE_LIMIT_BURST", "6"),
        ("ARTEL_ADMIN_KEY", key.as_str()),
    ];
    let a = start(
        &home,
        &[
            limits[0],
            limits[1],
            limits[2],
            limits[3],
            ("ARTEL_INSTANCE", "node-a"),
        ],
    )
    .await;
    let b = start(
        &home,
        &[
            limits[0],
            limits[1],
            limits[2],
            limits[3],
            ("ARTEL_INSTANCE", "node-b"),
        ],
    )
    .await;
    let (on_a, on_b) = (
        Client::new(&a.url, Some(&key)),
        Client::new(&b.url, Some(&key)),
    );
    let started = std::time::Instant::now();
    for i in 0..3 {
        assert_eq!(on_a.get("/api/v1/me").await.0, 200, "request {i} on a");
        assert_eq!(on_b.get("/api/v1/me").await.0, 200, "request {i} on b");
    }
    // Six within a few hundred ms: the shared burst is spent, on either server.
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "the test ran too slowly to tell"
    );
    let response = reqwest::Client::new()
        .get(format!("{}/api/v1/me", a.url))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 429);
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry_after), "Retry-After {retry_after}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");
    assert_error(
        &on_b.get("/api/v1/me").await,
        429,
        "rate_limited",
        "b shares the budget",
    );

    // Another key has its own bucket.
    let (status, other) = Client::new(&a.url, Some(&key))
        .post("/api/v1/users", json!({ "name": "dora" }))
        .await;
    assert!(status == 429, "still limited: {other}");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (status, dora) = on_b.post("/api/v1/users", json!({ "name": "dora" })).await;
    assert_eq!(status, 201, "a token came back after Retry-After: {dora}");
    let dora = Client::new(&a.url, dora["key"]["key"].as_str());
    for i in 0..6 {
        assert_eq!(dora.get("/api/v1/me").await.0, 200, "dora's request {i}");
    }
    // Health, metrics and the document are not limited.
    for _ in 0..20 {
        assert_eq!(
            reqwest::get(format!("{}/health", a.url))
                .await
                .unwrap()
                .status(),
            200
        );
    }
    a.terminate();
    b.terminate();
    drop(redis);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_openapi_document_is_valid_and_matches_what_the_server_serves() {
    let home = Home::new("openapi").await;
    let artel = start(&home, &[]).await;
    let (status, doc) = Client::new(&artel.url, None)
        .get("/api/v1/openapi.json")
        .await;
    assert_eq!(status, 200);
    assert_eq!(doc["openapi"], "3.1.0");
    // The reference validator accepts it (openapi-spec-validator, installed by .ci/services.sh).
    let file = home.data_dir.join("openapi.json");
    std::fs::write(&file, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
    let validated = std::process::Command::new("python3")
        .args(["-m", "openapi_spec_validator", "--schema", "3.1"])
        .arg(&file)
        .output()
        .expect("python3 runs");
    assert!(
        validated.status.success(),
        "openapi-spec-validator refused the document (is it installed? `. .ci/services.sh`): {}{}",
        String::from_utf8_lossy(&validated.stdout),
        String::from_utf8_lossy(&validated.stderr)
    );
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());

    // Every $ref resolves.
    let mut refs = Vec::new();
    collect_refs(&doc, &mut refs);
    assert!(!refs.is_empty());
    for r in &refs {
        let pointer = r
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("external ref {r}"));
        assert!(doc.pointer(pointer).is_some(), "unresolved $ref {r}");
    }

    let operator = Client::new(&artel.url, Some(&artel.key));
    let anonymous = Client::new(&artel.url, None);
    let mut operation_ids = BTreeSet::new();
    let mut walked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let id = op["operationId"].as_str().expect("an operationId");
            assert!(
                operation_ids.insert(id.to_owned()),
                "duplicate operationId {id}"
            );
            assert!(
                op["summary"].is_string() || op["description"].is_string(),
                "{id} says what it does"
            );
            // Path parameters are declared, and only those.
            let declared: BTreeSet<String> = op["parameters"]
                .as_array()
                .map(|ps| {
                    ps.iter()
                        .filter(|p| p["in"] == "path")
                        .map(|p| p["name"].as_str().unwrap().to_owned())
                        .collect()
                })
                .unwrap_or_default();
            let in_template: BTreeSet<String> = path
                .split('/')
                .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
                .map(str::to_owned)
                .collect();
            assert_eq!(declared, in_template, "{method} {path}");
            let documented: BTreeSet<u16> = op["responses"]
                .as_object()
                .unwrap()
                .keys()
                .map(|k| k.parse().unwrap())
                .collect();
            let concrete = path
                .replace("{project}", "no-such-project")
                .replace("{id}", "01a20000-0000-7000-8000-000000000000")
                .replace("{name}", "NO_SUCH_SECRET")
                .replace("{node}", "99999999");
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let body =
                matches!(method, Method::POST | Method::PUT | Method::PATCH).then(|| json!({}));
            let (status, answer) = operator.send(method.clone(), &concrete, body.clone()).await;
            assert!(
                documented.contains(&status),
                "{method} {concrete} answered {status} (documented: {documented:?}): {answer}"
            );
            if status >= 400 {
                assert!(
                    answer["error"]["code"].is_string(),
                    "{method} {concrete}: {answer}"
                );
            }
            if op.get("security").is_some() {
                let (status, _) = anonymous.send(method.clone(), &concrete, body).await;
                assert_eq!(status, 401, "{method} {concrete} without a key");
                assert!(
                    documented.contains(&401),
                    "{method} {path} documents its 401"
                );
            }
            walked += 1;
        }
    }
    assert!(walked >= 35, "walked {walked} operations");
    artel.terminate();
}

fn collect_refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("$ref", Value::String(r)) => out.push(r.clone()),
                    _ => collect_refs(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_first_start_prints_an_operator_key_once_and_keeps_it_private() {
    use std::os::unix::fs::PermissionsExt;
    let home = Home::new("adminkey").await;
    let env = home.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut first = Artel::up_without_admin_key(&env);
    let line = first.read_line();
    let key = line
        .trim()
        .rsplit(' ')
        .next()
        .filter(|k| k.starts_with("artel_"))
        .unwrap_or_else(|| panic!("the key is printed: {line:?}"))
        .to_owned();
    let file = home.data_dir.join("admin.key");
    assert_eq!(std::fs::read_to_string(&file).unwrap().trim(), key);
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "only its owner reads the key file");
    let (status, me) = Client::new(&first.url, Some(&key)).get("/api/v1/me").await;
    assert_eq!(status, 200);
    assert_eq!(me["user"]["role"], "operator");
    let rest = first.terminate();
    assert!(!rest.contains("artel_"), "{rest}");

    let again = Artel::up_without_admin_key(&env);
    let rest = again.terminate();
    assert!(
        !rest.contains("operator API key"),
        "a second start prints no key: {rest}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_drains_new_work_is_refused_and_the_running_step_finishes() {
    let home = Home::new("drain").await;
    let agent = home.script("slow-agent.sh", SLOW_AGENT);
    let agent = agent.to_str().unwrap();
    let artel = start(
        &home,
        &[
            ("ARTEL_AGENT__KIND", "cli"),
            ("ARTEL_AGENT__COMMAND", agent),
            ("ARTEL_HTTP__DRAIN_SECS", "60"),
        ],
    )
    .await;
    let operator = Client::new(&artel.url, Some(&artel.key));
    let (status, _) = operator
        .post("/api/v1/projects", json!({ "name": "slowpoke" }))
        .await;
    assert_eq!(status, 201);
    let (status, task) = operator
        .post(
            "/api/v1/projects/slowpoke/tasks",
            json!({ "kind": "engineering", "description": "a Telegram bot that says hi" }),
        )
        .await;
    assert_eq!(status, 202, "{task}");
    let task_id = task["id"].as_str().unwrap().to_owned();
    eventually(JOB, "the develop step running", || {
        let (operator, task_id) = (&operator, &task_id);
        async move {
            let (_, detail) = operator.get(&format!("/api/v1/tasks/{task_id}")).await;
            detail["steps"].as_array().is_some_and(|s| {
                s.iter()
                    .any(|s| s["kind"] == "develop" && s["status"] == "running")
            })
        }
    })
    .await;

    let pid = nix::unistd::Pid::from_raw(artel.pid() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_error(
        &operator
            .post(
                "/api/v1/projects/slowpoke/tasks",
                json!({ "kind": "deploy", "description": "now" }),
            )
            .await,
        503,
        "unavailable",
        "new work while draining",
    );
    let (status, ready) = Client::new(&artel.url, None).get("/health/ready").await;
    assert_eq!(status, 503);
    assert_eq!(ready["draining"], true);
    let (status, _) = operator.get(&format!("/api/v1/tasks/{task_id}")).await;
    assert_eq!(status, 200, "reads still work while draining");

    let rest = artel.terminate();
    assert!(rest.contains("artel stopped"), "{rest}");
    let mut db = home.db().await;
    let develop: String = sqlx::query_scalar(
        "SELECT status FROM task_steps WHERE task_id = $1::uuid AND step = 'develop' \
         ORDER BY id DESC LIMIT 1",
    )
    .bind(&task_id)
    .fetch_one(&mut db)
    .await
    .unwrap();
    assert_eq!(
        develop, "succeeded",
        "the running step finished before exit"
    );
}

/// The node at `path` (names that hold `/` match as many segments) in a tree's JSON.
fn tree_node<'a>(tree: &'a Value, path: &[&str]) -> Option<&'a Value> {
    let mut node = tree["roots"]
        .as_array()?
        .iter()
        .find(|r| r["name"] == path[0])?;
    for name in &path[1..] {
        node = node["children"]
            .as_array()?
            .iter()
            .find(|c| c["name"] == *name)?;
    }
    Some(node)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_tree_shows_a_running_tasks_crew_through_the_api() {
    let home = Home::new("crew").await;
    let agent = home.script("slow-agent.sh", SLOW_AGENT);
    let artel = start(
        &home,
        &[
            ("ARTEL_AGENT__KIND", "cli"),
            ("ARTEL_AGENT__COMMAND", agent.to_str().unwrap()),
        ],
    )
    .await;
    let operator = Client::new(&artel.url, Some(&artel.key));
    let (status, project) = operator
        .post("/api/v1/projects", json!({ "name": "crewed" }))
        .await;
    assert_eq!(status, 201, "{project}");
    let (status, task) = operator
        .post(
            "/api/v1/projects/crewed/tasks",
            json!({ "kind": "engineering", "description": "a Telegram bot that says hi" }),
        )
        .await;
    assert_eq!(status, 202, "{task}");
    let task_id = task["id"].as_str().unwrap().to_owned();
    let subtree = format!("engineering/{task_id}");

    // While the Developer's agent runs, the task's subtree shows its crew, each node with
    // its role, status, restarts, mailbox and what it serves.
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Value::Null));
    eventually(JOB, "the developer at work in the tree", || {
        let (operator, subtree, seen) = (&operator, &subtree, seen.clone());
        async move {
            let (_, tree) = operator.get("/api/v1/tree").await;
            let path = ["artel", "workflows", "tasks", subtree.as_str(), "developer"];
            let busy = tree_node(&tree, &path)
                .is_some_and(|d| d["status"] == "running" && d["uptime_ms"].is_u64());
            *seen.lock().unwrap() = tree;
            busy
        }
    })
    .await;
    let seen = seen.lock().unwrap().clone();
    let node = tree_node(&seen, &["artel", "workflows", "tasks", &subtree]).unwrap();
    assert_eq!(node["role"], "engineering_task");
    let crew: Vec<&str> = node["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        crew,
        ["workflow", "analyst", "scaffolder", "developer", "tester"]
    );
    for member in node["children"].as_array().unwrap() {
        assert_eq!(member["labels"]["task"], task_id.as_str(), "{member}");
        assert_eq!(member["labels"]["project"], project["id"], "{member}");
        assert!(member["mailbox_depth"].is_u64(), "{member}");
        assert!(member["mailbox_capacity"].is_u64(), "{member}");
        assert_eq!(member["restarts"], 0, "{member}");
    }
    let developer = tree_node(
        &seen,
        &["artel", "workflows", "tasks", &subtree, "developer"],
    );
    assert_eq!(developer.unwrap()["role"], "developer");
    // The work waiting for a worker is the worker-manager's backlog, here and in /metrics.
    assert!(tree_node(&seen, &["artel", "worker-manager"]).unwrap()["backlog"].is_u64());
    let metrics = reqwest::get(format!("{}/metrics", artel.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("artel_actor_backlog{node=\"artel/worker-manager\""),
        "{metrics}"
    );
    artel.terminate();
}

/// `GET /api/v1/me` with `key` from the source address `from`: (status, Retry-After).
async fn me_from(url: &str, key: &str, from: [u8; 4]) -> (u16, Option<u64>) {
    let response = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from(from))
        .build()
        .unwrap()
        .get(format!("{url}/api/v1/me"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().parse().unwrap());
    (response.status().as_u16(), retry_after)
}

#[tokio::test(flavor = "multi_thread")]
async fn an_address_guessing_keys_is_refused_with_429_and_others_are_not() {
    let home = Home::new("badkeys").await;
    let key = new_key();
    let artel = start(&home, &[("ARTEL_ADMIN_KEY", key.as_str())]).await;
    let here = [127, 0, 0, 1];
    assert_eq!(me_from(&artel.url, &key, here).await.0, 200, "cached now");
    // The burst (20) of unknown keys is answered 401, the same key again included.
    let again = new_key();
    for i in 0..20 {
        let guess = if i % 2 == 0 { new_key() } else { again.clone() };
        assert_eq!(
            me_from(&artel.url, &guess, here).await,
            (401, None),
            "guess {i}"
        );
    }
    let (status, retry_after) = me_from(&artel.url, &new_key(), here).await;
    assert_eq!(status, 429, "the 21st unknown key");
    let retry_after = retry_after.expect("a 429 says when to retry");
    assert!((1..=6).contains(&retry_after), "Retry-After {retry_after}");
    assert_eq!(me_from(&artel.url, &again, here).await.0, 429);
    // A key the server already checked keeps working; another address has its own budget.
    assert_eq!(me_from(&artel.url, &key, here).await.0, 200);
    assert_eq!(me_from(&artel.url, &new_key(), [127, 0, 0, 2]).await.0, 401);
    assert_eq!(me_from(&artel.url, &key, [127, 0, 0, 2]).await.0, 200);
    artel.terminate();
}
