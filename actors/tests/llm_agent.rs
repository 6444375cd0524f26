//! The built-in LLM agent (`agent.kind = llm`) in the real pipeline — real Postgres, real
//! worker processes with their own uids, the real provider client — against the scripted
//! loopback peer:
//!
//! - the scripted model's tool calls build the service, artel commits and tests it; every
//!   call is in `llm_requests`; a project secret the model printed never reaches the model;
//! - a budget reached → `needs_human` with "spent $X of $Y"; resuming approves and completes;
//! - the same failing action → a warning, then `needs_human` saying what it was stuck on;
//! - a context overflow condenses the history and goes on;
//! - a 429 fails the Developer retryably; its restart waits the server's `retry-after` (longer
//!   than its own backoff), asks again and completes;
//! - a model that hangs past the timeout: the restarted Developer resumes from the journal,
//!   replays the journaled tool calls into the fresh checkout and re-asks only the lost turn.

mod support;

use artel_actors::runtime::{Runtime, RuntimeOptions};
use artel_actors::settings::{ModelPrice, Settings};
use artel_actors::store::{LlmRequestRow, MasterKey, NewTask, Store};
use artel_actors::worker_manager::process::DEFAULT_GID;
use artel_actors::worker_manager::{
    ProcessConfig, ProcessRuntime, RunAs, WorkerManager, WorkerManagerConfig,
};
use artel_messages::{ProjectId, SecretValue, StepKind, StepStatus, TaskId, TaskKind, TaskStatus};
use artel_supervisors::{Backoff, Supervisor, SupervisorHandle};
use serde_json::{Value, json};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::Duration;
use support::TestDb;
use support::llm_peer::{Fault, LlmPeer, OverflowShape, Reply, Turn};

/// Worker uids of this binary: beyond `pipeline.rs`'s block (2.3e9…).
const FIRST_UID: u32 = 2_350_000_000;
const UID_COUNT: u32 = 1_000;
/// Deploy ports of this binary (none are used: no deploy here, but settings need a range).
const FIRST_PORT: u16 = 24_000;
const JOB: Duration = Duration::from_secs(180);
const SECRET: &str = "s3cr3t-value-xyz-42";

/// The skeleton's catch-all, and the same with a `/hello` route before it.
const SKELETON_ELSE: &str = "        else:\n            status, payload = 404";
const HELLO_ELSE: &str = "        elif self.path == \"/hello\":\n            status, payload = 200, {\"message\": \"hello\"}\n        else:\n            status, payload = 404";

struct DataDir(PathBuf);

impl DataDir {
    fn new(tag: &str) -> Self {
        let path =
            std::env::temp_dir().join(format!("artel-llm-agent-{tag}-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir(&path).expect("create the data dir");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            .expect("make the data dir traversable");
        Self(path)
    }
}

impl Drop for DataDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn settings(dir: &DataDir, slot: u16, peer: &LlmPeer) -> Settings {
    let mut settings = Settings {
        data_dir: dir.0.clone(),
        ..Settings::default()
    };
    settings.agent.kind = "llm".into();
    // No user here to confirm the spec.
    settings.analyst.confirm = false;
    settings.llm.base_url = Some(peer.openai_base());
    settings.llm.model = Some("scripted".into());
    settings.llm.api_key = Some(SecretValue::new("sk-agent-test-key-0001"));
    settings.llm.timeout_secs = 5;
    settings.deploy.first_port = FIRST_PORT + slot * 100;
    settings.deploy.last_port = FIRST_PORT + slot * 100 + 99;
    settings.workers.first_uid = FIRST_UID + u32::from(slot) * UID_COUNT;
    settings.workers.uid_count = UID_COUNT;
    settings
}

struct Artel {
    store: Store,
    runtime: Runtime,
    tree: SupervisorHandle,
}

async fn start(db: &TestDb, settings: &Settings) -> Artel {
    settings.validate().expect("test settings are valid");
    let store = db.store.clone().with_master_key(MasterKey::generate());
    let mut process = ProcessConfig::new(settings.data_dir.join("workers"));
    process.run_as = RunAs::UidRange {
        first: settings.workers.first_uid,
        count: settings.workers.uid_count,
        gid: DEFAULT_GID,
    };
    let workers = WorkerManager::new(
        store.clone(),
        ProcessRuntime::new(process)
            .expect("the process runtime (these tests run as root)")
            .into(),
        WorkerManagerConfig::default(),
    );
    let targets = artel_actors::runtime::deploy_targets(settings, &store)
        .await
        .expect("the deploy targets");
    let mut runtime = Runtime::assemble(
        settings,
        &store,
        workers,
        targets,
        RuntimeOptions::default(),
    )
    .await
    .expect("the runtime assembles");
    let unused = || Supervisor::new("unused");
    let worker_manager = std::mem::replace(&mut runtime.worker_manager, unused().into_child());
    let deployers = std::mem::replace(&mut runtime.deployers_tree, unused());
    let workflows_tree = std::mem::replace(&mut runtime.workflows_tree, unused());
    let tree = Supervisor::new("artel")
        .child(worker_manager)
        .child(deployers.into_child())
        .child(workflows_tree.into_child().backoff(Backoff::none()))
        .start()
        .await;
    Artel {
        store,
        runtime,
        tree,
    }
}

impl Artel {
    async fn task(&self, name: &str) -> (ProjectId, TaskId) {
        let user = self
            .store
            .ensure_user("ada", "ada@localhost")
            .await
            .expect("user");
        let project = self
            .store
            .create_project(user.id, name, "a service that says hello")
            .await
            .expect("project")
            .id;
        self.store
            .set_secret(project, "API_TOKEN", &SecretValue::new(SECRET))
            .await
            .expect("a secret");
        let task = self
            .runtime
            .workflows
            .submit(NewTask {
                id: TaskId::new(),
                project,
                kind: TaskKind::Engineering,
                description: "a service that says hello".into(),
                session: None,
            })
            .await
            .expect("submit")
            .id;
        (project, task)
    }

    async fn settle(&self, task: TaskId) -> TaskStatus {
        let deadline = tokio::time::Instant::now() + JOB;
        loop {
            let status = self
                .store
                .task(task)
                .await
                .expect("read the task")
                .map(|t| t.status);
            if let Some(status) = status
                && !matches!(status, TaskStatus::Queued | TaskStatus::Running)
            {
                return status;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "task {task} still {status:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn steps(&self, task: TaskId) -> Vec<(StepKind, StepStatus, Option<Value>)> {
        self.store
            .steps(task)
            .await
            .expect("steps")
            .into_iter()
            .map(|s| (s.step, s.status, s.output))
            .collect()
    }

    async fn failures(&self, task: TaskId) -> String {
        let steps = self.store.steps(task).await.unwrap_or_default();
        steps
            .iter()
            .filter_map(|s| s.failure.as_ref().map(|f| format!("{}: {f}", s.step)))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The file at `path` in the develop step's last commit.
    async fn committed_file(&self, dir: &DataDir, task: TaskId, path: &str) -> String {
        let steps = self.steps(task).await;
        let commit = steps
            .iter()
            .rev()
            .find_map(|(step, _, out)| {
                (*step == StepKind::Develop)
                    .then(|| out.as_ref()?.get("commit")?.as_str().map(str::to_owned))
                    .flatten()
            })
            .expect("a develop commit");
        let repos = dir.0.join("repos");
        // The bare repository (the directory may hold others, e.g. lock files).
        let repo = std::fs::read_dir(&repos)
            .expect("repos")
            .flatten()
            .map(|e| e.path())
            .find(|p| p.join("HEAD").is_file())
            .expect("a repository");
        let out = std::process::Command::new("git")
            .arg("--git-dir")
            .arg(&repo)
            .args(["show", &format!("{commit}:{path}")])
            .output()
            .expect("git show");
        assert!(
            out.status.success(),
            "git show {commit}:{path} in {}: {}",
            repo.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    async fn stop(self) {
        self.tree.shutdown().await;
        self.runtime.target.stop_all().await;
    }
}

fn bash(id: &str, command: &str) -> Turn {
    Reply::tool_call(id, "bash", json!({ "command": command }))
        .usage(1000, 100, 0)
        .turn()
}

fn finish(id: &str) -> Turn {
    Reply::tool_call(id, "finish", json!({"summary": "Added GET /hello"}))
        .usage(1000, 50, 0)
        .turn()
}

fn edit_hello(id: &str) -> Turn {
    Reply::tool_call(
        id,
        "str_replace_based_edit_tool",
        json!({"command": "str_replace", "path": "app.py", "old_str": SKELETON_ELSE, "new_str": HELLO_ELSE}),
    )
    .usage(1000, 100, 0)
    .turn()
}

fn bodies(peer: &LlmPeer) -> Vec<Value> {
    peer.requests().into_iter().map(|r| r.body).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_scripted_model_builds_the_service_and_every_call_is_recorded() {
    let db = TestDb::new().await;
    let dir = DataDir::new("build");
    let peer = LlmPeer::start([
        bash("c1", "ls && cat artel.json"),
        edit_hello("c2"),
        bash(
            "c3",
            "printf 'token=%s-%s\\n' s3cr3t value-xyz-42; python3 -m unittest 2>&1 | tail -3",
        ),
        finish("c4"),
    ])
    .await;
    let artel = start(&db, &settings(&dir, 0, &peer)).await;
    let (project, task) = artel.task("hello").await;
    let status = artel.settle(task).await;
    assert_eq!(
        status,
        TaskStatus::Completed,
        "{}",
        artel.failures(task).await
    );
    let kinds: Vec<_> = artel.steps(task).await.iter().map(|s| (s.0, s.1)).collect();
    assert_eq!(
        kinds,
        [
            (StepKind::WriteSpec, StepStatus::Succeeded),
            (StepKind::Scaffold, StepStatus::Succeeded),
            (StepKind::Develop, StepStatus::Succeeded),
            (StepKind::Test, StepStatus::Succeeded),
        ]
    );
    let app = artel.committed_file(&dir, task, "app.py").await;
    assert!(app.contains("/hello"), "{app}");

    let requests = bodies(&peer);
    assert_eq!(requests.len(), 4);
    let tools: Vec<&str> = requests[0]["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .filter_map(|t| t["function"]["name"].as_str())
        .collect();
    assert_eq!(tools, ["bash", "str_replace_based_edit_tool", "finish"]);
    let everything: String = peer.requests().iter().map(|r| r.everything()).collect();
    assert!(
        !everything.contains(SECRET),
        "a secret value reached the model"
    );
    assert!(
        requests[3].to_string().contains("token=***"),
        "{}",
        requests[3]
    );
    assert!(
        requests[1].to_string().contains("\\\"health\\\""),
        "the manifest was shown"
    );

    let usage = artel.store.task_llm_usage(task).await.expect("usage");
    assert_eq!(usage.requests, 4);
    assert_eq!(usage.tokens_in, 4000);
    assert_eq!(usage.tokens_out, 350);
    assert_eq!(
        artel.store.project_llm_usage(project).await.expect("usage"),
        usage
    );
    assert_eq!(peer.remaining(), 0);
    artel.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_reached_budget_waits_for_approval_and_then_completes() {
    let db = TestDb::new().await;
    let dir = DataDir::new("budget");
    let peer = LlmPeer::start([
        Reply::tool_call("c1", "str_replace_based_edit_tool", json!({"command": "str_replace", "path": "app.py", "old_str": SKELETON_ELSE, "new_str": HELLO_ELSE}))
            .usage(3000, 1000, 0)
            .turn(),
        finish("c2"),
    ])
    .await;
    let mut settings = settings(&dir, 1, &peer);
    // One micro-USD per token: the first call's worst case (~10k output + the prompt) fits
    // $0.015, the second's on top of the first's 4000 does not.
    settings.llm.max_output_tokens = 10_000;
    settings.llm.prices.insert(
        "scripted".into(),
        ModelPrice {
            input: 1.0,
            output: 1.0,
            cached_input: None,
        },
    );
    settings.agent.budget_usd = Some(0.015);
    let artel = start(&db, &settings).await;
    let (_, task) = artel.task("budget").await;
    assert_eq!(
        artel.settle(task).await,
        TaskStatus::NeedsHuman,
        "{}",
        artel.failures(task).await
    );
    let steps = artel.steps(task).await;
    let paused = steps
        .iter()
        .rev()
        .find_map(|s| {
            s.2.as_ref()?
                .get("needs_human")?
                .as_str()
                .map(str::to_owned)
        })
        .expect("the develop step says why it paused");
    assert!(
        paused.contains("spent $0.0040 of $0.0150") && paused.contains("approve $0.0150 more"),
        "{paused}"
    );
    assert_eq!(peer.requests().len(), 1, "it never went over");

    artel
        .runtime
        .workflows
        .resume(task, None)
        .await
        .expect("the user approves");
    assert_eq!(
        artel.settle(task).await,
        TaskStatus::Completed,
        "{}",
        artel.failures(task).await
    );
    assert_eq!(peer.requests().len(), 2);
    let app = artel.committed_file(&dir, task, "app.py").await;
    assert!(app.contains("/hello"), "{app}");
    let raise = artel.store.budget_raise(task).await.expect("raise");
    assert_eq!(raise.micro_usd, 15_000);
    artel.stop().await;
}

/// Settings with prices of one micro-USD per token and `cap` applied by `apply`.
fn priced(dir: &DataDir, slot: u16, peer: &LlmPeer, apply: impl FnOnce(&mut Settings)) -> Settings {
    let mut settings = settings(dir, slot, peer);
    settings.llm.prices.insert(
        "scripted".into(),
        ModelPrice {
            input: 1.0,
            output: 1.0,
            cached_input: None,
        },
    );
    apply(&mut settings);
    settings
}

/// Records `micro_usd` spent by an earlier call of `project` (no task).
async fn spent_before(artel: &Artel, project: ProjectId, micro_usd: u64) {
    artel
        .store
        .record_llm_request(&LlmRequestRow {
            project: Some(project),
            task: None,
            role: "Developer".into(),
            provider: "openai".into(),
            model: "scripted".into(),
            tokens_in: micro_usd,
            tokens_out: 0,
            tokens_cached: 0,
            cost_micro_usd: micro_usd,
            latency_ms: 1,
            status: "ok",
            error: None,
        })
        .await
        .expect("record an earlier call");
}

/// What the develop step said when it paused.
async fn paused_reason(artel: &Artel, task: TaskId) -> String {
    artel
        .steps(task)
        .await
        .iter()
        .rev()
        .find_map(|s| {
            s.2.as_ref()?
                .get("needs_human")?
                .as_str()
                .map(str::to_owned)
        })
        .expect("the develop step says why it paused")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_daily_budget_spans_a_users_projects_and_their_own_key_is_used() {
    let db = TestDb::new().await;
    let dir = DataDir::new("daily");
    let peer = LlmPeer::start([edit_hello("c1"), finish("c2")]).await;
    let settings = priced(&dir, 5, &peer, |s| s.llm.user_daily_budget_usd = Some(0.02));
    let artel = start(&db, &settings).await;
    let user = artel
        .store
        .ensure_user("ada", "ada@localhost")
        .await
        .expect("user");
    artel
        .store
        .set_user_llm_key(
            user.id,
            artel_actors::settings::LlmProvider::Openai,
            &SecretValue::new("sk-ada-own-key-777"),
        )
        .await
        .expect("ada stores her own key");
    // Earlier today another of ada's projects spent $0.015 of her $0.02.
    let other = artel
        .store
        .create_project(user.id, "earlier", "an earlier service")
        .await
        .expect("project")
        .id;
    spent_before(&artel, other, 15_000).await;

    let (_, task) = artel.task("daily").await;
    assert_eq!(
        artel.settle(task).await,
        TaskStatus::NeedsHuman,
        "{}",
        artel.failures(task).await
    );
    let paused = paused_reason(&artel, task).await;
    assert!(
        paused.contains("budget for today") && paused.contains("spent $0.0150 of $0.0200"),
        "{paused}"
    );
    assert!(paused.contains("approve $0.0200 more"), "{paused}");
    assert!(
        peer.requests().is_empty(),
        "it never went over: no call made"
    );

    artel
        .runtime
        .workflows
        .resume(task, None)
        .await
        .expect("ada approves");
    assert_eq!(
        artel.settle(task).await,
        TaskStatus::Completed,
        "{}",
        artel.failures(task).await
    );
    let requests = peer.requests();
    assert_eq!(requests.len(), 2);
    for request in &requests {
        assert_eq!(
            request.header("authorization"),
            Some("Bearer sk-ada-own-key-777"),
            "her key, not the system key"
        );
        assert!(!request.everything().contains("sk-agent-test-key-0001"));
    }
    artel.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_project_budget_counts_every_task_and_approving_raises_it() {
    let db = TestDb::new().await;
    let dir = DataDir::new("project-budget");
    let peer = LlmPeer::start([edit_hello("c1"), finish("c2")]).await;
    let settings = priced(&dir, 6, &peer, |s| s.llm.project_budget_usd = Some(0.02));
    let artel = start(&db, &settings).await;
    let (project, task) = artel.task("project-budget").await;
    // An earlier task of the project spent $0.019; the request is already running, so the
    // spending lands before its first call or during it: either way the cap is crossed.
    spent_before(&artel, project, 19_000).await;
    let status = artel.settle(task).await;
    assert_eq!(
        status,
        TaskStatus::NeedsHuman,
        "{}",
        artel.failures(task).await
    );
    let paused = paused_reason(&artel, task).await;
    assert!(paused.contains("budget for this project"), "{paused}");
    artel
        .runtime
        .workflows
        .resume(task, None)
        .await
        .expect("the owner approves");
    assert_eq!(
        artel.settle(task).await,
        TaskStatus::Completed,
        "{}",
        artel.failures(task).await
    );
    let spending = artel
        .store
        .spending(project, Some(task))
        .await
        .expect("spending");
    assert_eq!(
        spending.project_extra, 20_000,
        "approving raised the project's cap"
    );
    assert_eq!(spending.task_extra, 0, "not the task's");
    artel.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stuck_model_is_warned_then_handed_to_a_human() {
    let db = TestDb::new().await;
    let dir = DataDir::new("stuck");
    let failing = (1..=6).map(|i| bash(&format!("c{i}"), "python3 missing.py"));
    let peer = LlmPeer::start(failing).await;
    let artel = start(&db, &settings(&dir, 2, &peer)).await;
    let (_, task) = artel.task("stuck").await;
    assert_eq!(
        artel.settle(task).await,
        TaskStatus::NeedsHuman,
        "{}",
        artel.failures(task).await
    );
    let steps = artel.steps(task).await;
    let reason = steps
        .iter()
        .rev()
        .find_map(|s| {
            s.2.as_ref()?
                .get("needs_human")?
                .as_str()
                .map(str::to_owned)
        })
        .expect("why");
    assert!(
        reason.contains("stuck") && reason.contains("python3 missing.py"),
        "{reason}"
    );
    let requests = bodies(&peer);
    assert_eq!(requests.len(), 6);
    assert!(
        requests[3].to_string().contains("you seem stuck"),
        "warned after the third"
    );
    assert!(!requests[2].to_string().contains("you seem stuck"));
    artel.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_overflow_condenses_the_history_and_goes_on() {
    let db = TestDb::new().await;
    let dir = DataDir::new("overflow");
    let peer = LlmPeer::start([
        bash("c1", "ls"),
        bash("c2", "cat app.py"),
        bash("c3", "cat artel.json"),
        edit_hello("c4"),
        Turn::Fault(Fault::ContextOverflow(OverflowShape::OpenAi)),
        finish("c5"),
    ])
    .await;
    let artel = start(&db, &settings(&dir, 3, &peer)).await;
    let (_, task) = artel.task("overflow").await;
    assert_eq!(
        artel.settle(task).await,
        TaskStatus::Completed,
        "{}",
        artel.failures(task).await
    );
    let requests = bodies(&peer);
    assert_eq!(requests.len(), 6);
    let len = |r: &Value| r["messages"].as_array().map_or(0, Vec::len);
    assert!(len(&requests[5]) < len(&requests[4]), "condensed");
    assert!(requests[5].to_string().contains("were left out"));
    assert_eq!(requests[5]["messages"][0]["role"], "system");
    artel.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rate_limit_restarts_the_developer_which_then_completes() {
    let db = TestDb::new().await;
    let dir = DataDir::new("ratelimit");
    let peer = LlmPeer::start([
        edit_hello("c1"),
        Turn::Fault(Fault::RateLimited(vec![("retry-after", "4".into())])),
        finish("c2"),
    ])
    .await;
    let artel = start(&db, &settings(&dir, 4, &peer)).await;
    let (_, task) = artel.task("ratelimit").await;
    // When each request arrived, seen from here.
    let mut arrivals = Vec::new();
    let deadline = tokio::time::Instant::now() + JOB;
    while arrivals.len() < 3 && tokio::time::Instant::now() < deadline {
        if peer.requests().len() > arrivals.len() {
            arrivals.push(tokio::time::Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        artel.settle(task).await,
        TaskStatus::Completed,
        "{}",
        artel.failures(task).await
    );
    // The Developer's own backoff is 2 s (±20 %): the restart waited the server's 4 s.
    let waited = arrivals[2] - arrivals[1];
    assert!(
        waited >= Duration::from_millis(3900),
        "restarted after {waited:?}"
    );
    let develops: Vec<_> = artel
        .steps(task)
        .await
        .into_iter()
        .filter(|s| s.0 == StepKind::Develop)
        .map(|s| s.1)
        .collect();
    assert_eq!(develops, [StepStatus::Failed, StepStatus::Succeeded]);
    let requests = bodies(&peer);
    assert_eq!(requests.len(), 3);
    // The restarted Developer asked again with the same conversation: nothing journaled was
    // asked twice, and the edit made before the 429 was replayed into the fresh checkout.
    assert_eq!(requests[1]["messages"], requests[2]["messages"]);
    let app = artel.committed_file(&dir, task, "app.py").await;
    assert!(app.contains("/hello"), "{app}");
    let usage = artel.store.task_llm_usage(task).await.expect("usage");
    assert_eq!(usage.requests, 3, "the 429 is recorded too");
    artel.stop().await;
}
