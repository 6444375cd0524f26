//! The real pipeline, assembled by [`Runtime::build`] as the binary assembles it, against a
//! real Postgres, real worker processes (each with its own uid) and real deployed services:
//!
//! - under `workers.max_busy = 2`, five engineering tasks never have more than two commands
//!   running — neither as `busy` rows nor as live processes of the worker uids — and all five
//!   complete;
//! - an agent that outlives `workers.timeout_secs` (and leaves a background child) fails its
//!   task and leaves no process of the worker uids behind;
//! - a deployed service whose process group is killed is restarted by the scheduler's health
//!   job and answers again.
//!
//! Each test has its own data dir, worker uid range and deploy port range, so they run side
//! by side with each other and with the other test binaries.

mod support;

use artel_actors::jobs;
use artel_actors::runtime::{Runtime, RuntimeOptions};
use artel_actors::settings::Settings;
use artel_actors::store::{MasterKey, NewTask, Store};
use artel_actors::worker_manager::process::DEFAULT_GID;
use artel_actors::worker_manager::{
    ProcessConfig, ProcessRuntime, RunAs, WorkerManager, WorkerManagerConfig,
};
use artel_messages::{ProjectId, StepKind, StepStatus, TaskId, TaskKind, TaskStatus};
use artel_supervisors::{Backoff, Supervisor, SupervisorHandle};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use support::TestDb;

/// The first worker uid of this binary's tests: outside the ranges of `worker_manager.rs`
/// (2.0e9…) and the system tests (2.1e9…). Each test takes its own block of [`UID_COUNT`].
const FIRST_UID: u32 = 2_300_000_000;
/// Uids per test.
const UID_COUNT: u32 = 1_000;
/// The first deploy port of this binary's tests; each test takes its own block of 100.
const FIRST_PORT: u16 = 23_000;
/// How long a whole job may take on a loaded 2-core machine.
const JOB: Duration = Duration::from_secs(180);

/// A data dir under `/tmp` (mode 0755: workers and services run as other uids and must
/// traverse it), removed when the test ends.
struct DataDir(PathBuf);

impl DataDir {
    fn new(tag: &str) -> Self {
        let path =
            std::env::temp_dir().join(format!("artel-pipeline-{tag}-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir(&path).expect("create the data dir");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            .expect("make the data dir traversable");
        Self(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }

    /// Writes an executable agent script beside the data dir (workers may not see the data
    /// dir itself); answers its path.
    fn agent_script(&self, body: &str) -> PathBuf {
        let path = self.0.with_extension("agent.sh");
        std::fs::write(&path, format!("#!/bin/sh\nset -e\n{body}\n")).expect("write the agent");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            .expect("make the agent executable");
        path
    }
}

impl Drop for DataDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(self.0.with_extension("agent.sh"));
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The worker uids of test number `slot`.
fn uid_range(slot: u32) -> std::ops::Range<u32> {
    let first = FIRST_UID + slot * UID_COUNT;
    first..first + UID_COUNT
}

/// Settings for test number `slot`: its data dir, its ports, the given agent.
fn settings(dir: &DataDir, slot: u16, agent: Option<&Path>) -> Settings {
    let mut settings = Settings {
        data_dir: dir.path().to_owned(),
        ..Settings::default()
    };
    if let Some(agent) = agent {
        settings.agent.kind = "cli".to_owned();
        settings.agent.command = Some(agent.display().to_string());
    }
    // These tests drive the workflow without a user: the spec is taken as written.
    settings.analyst.confirm = false;
    settings.deploy.first_port = FIRST_PORT + slot * 100;
    settings.deploy.last_port = FIRST_PORT + slot * 100 + 99;
    settings.workers.first_uid = uid_range(u32::from(slot)).start;
    settings.workers.uid_count = UID_COUNT;
    settings.validate().expect("test settings are valid");
    settings
}

/// artel's runtime on `db`, with a worker-manager of its own uid range, and its `workflows`
/// subtree started under a root supervisor (as `artel new` starts it; no scheduler: the
/// health test runs the job itself).
struct Artel {
    store: Store,
    runtime: Runtime,
    tree: SupervisorHandle,
}

async fn start(db: &TestDb, settings: &Settings) -> Artel {
    start_with(db, settings, RuntimeOptions::default()).await
}

/// [`start`] with a role hook or role policies of the test's own.
async fn start_with(db: &TestDb, settings: &Settings, options: RuntimeOptions) -> Artel {
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
        WorkerManagerConfig {
            max_busy: settings.workers.max_busy,
            ..WorkerManagerConfig::default()
        },
    );
    let targets = artel_actors::runtime::deploy_targets(settings, &store)
        .await
        .expect("the deploy targets");
    let mut runtime = Runtime::assemble(settings, &store, workers, targets, options)
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
    async fn project(&self, name: &str) -> ProjectId {
        let user = self
            .store
            .ensure_user("ada", "ada@localhost")
            .await
            .expect("user");
        self.store
            .create_project(user.id, name, "a URL shortener")
            .await
            .expect("project")
            .id
    }

    /// Waits until `task` is `want` or stopped moving on its own (failed, cancelled, or
    /// waiting for the user); answers its status.
    async fn settle(&self, task: TaskId, want: TaskStatus) -> TaskStatus {
        let deadline = tokio::time::Instant::now() + JOB;
        loop {
            let status = self
                .store
                .task(task)
                .await
                .expect("read the task")
                .map(|t| t.status);
            if let Some(status) = status
                && (status == want || !matches!(status, TaskStatus::Queued | TaskStatus::Running))
            {
                return status;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "task {task} still {status:?} after {JOB:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The failures of `task`'s steps, for assertion messages.
    async fn failures(&self, task: TaskId) -> String {
        let steps = self.store.steps(task).await.unwrap_or_default();
        steps
            .iter()
            .filter_map(|s| s.failure.as_ref().map(|f| format!("{}: {f}", s.step)))
            .collect::<Vec<_>>()
            .join("\n")
    }

    async fn stop(self) {
        self.tree.shutdown().await;
        self.runtime.target.stop_all().await;
    }
}

/// What the template agent builds in these tests.
const SHORTENER: &str = "A URL shortener with a REST API";

/// A request that is not a resource API (a bot): the CLI agents of these tests, which only
/// take notes, are held to the skeleton's health path and nothing more.
const BOT: &str = "A Telegram bot that greets people";

fn engineering(project: ProjectId, request: &str) -> NewTask {
    NewTask {
        id: TaskId::new(),
        project,
        kind: TaskKind::Engineering,
        description: request.into(),
        session: None,
    }
}

/// A live process of the host, as `/proc/<pid>/status` shows it.
#[derive(Debug)]
struct Proc {
    #[expect(dead_code, reason = "shown in assertion messages, through Debug")]
    pid: u32,
    uid: u32,
    name: String,
    zombie: bool,
}

/// Every process whose real uid is in `uids`.
fn processes_of(uids: &std::ops::Range<u32>) -> Vec<Proc> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        // A process may exit between the listing and the read.
        let Ok(status) = std::fs::read_to_string(entry.path().join("status")) else {
            continue;
        };
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .map(str::trim)
                .unwrap_or_default()
                .to_owned()
        };
        let Some(uid) = field("Uid:")
            .split_whitespace()
            .next()
            .and_then(|u| u.parse().ok())
        else {
            continue;
        };
        if uids.contains(&uid) {
            found.push(Proc {
                pid,
                uid,
                name: field("Name:"),
                zombie: field("State:").starts_with('Z'),
            });
        }
    }
    found
}

/// The most seen at once while sampling.
#[derive(Debug, Default, Clone, Copy)]
struct Peaks {
    samples: u32,
    busy_rows: i64,
    uids_running: usize,
    processes: usize,
}

/// Samples every 50 ms, until `done`: `busy` worker rows, and the live (non-zombie)
/// processes of `uids` and how many distinct uids they run as (one per running command).
async fn sample(store: Store, uids: std::ops::Range<u32>, done: Arc<AtomicBool>) -> Peaks {
    let mut peaks = Peaks::default();
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    while !done.load(Ordering::SeqCst) {
        tick.tick().await;
        let busy: i64 = sqlx::query_scalar("SELECT count(*) FROM workers WHERE status = 'busy'")
            .fetch_one(store.pool())
            .await
            .expect("count busy workers");
        let live: Vec<Proc> = processes_of(&uids)
            .into_iter()
            .filter(|p| !p.zombie)
            .collect();
        let distinct: std::collections::BTreeSet<u32> = live.iter().map(|p| p.uid).collect();
        peaks.samples += 1;
        peaks.busy_rows = peaks.busy_rows.max(busy);
        peaks.uids_running = peaks.uids_running.max(distinct.len());
        peaks.processes = peaks.processes.max(live.len());
    }
    peaks
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn five_tasks_under_a_limit_of_two_never_run_more_than_two_commands() {
    let db = TestDb::new().await;
    let dir = DataDir::new("limit");
    let agent = dir.agent_script(
        "sleep 1\n\
         printf '%s\\n' \"$ARTEL_TASK\" > NOTES.md\n\
         git add -A && git commit -qm 'agent: notes'",
    );
    let mut settings = settings(&dir, 0, Some(&agent));
    settings.workers.max_busy = 2;
    let artel = start(&db, &settings).await;

    let uids = uid_range(0);
    let done = Arc::new(AtomicBool::new(false));
    let sampler = tokio::spawn(sample(artel.store.clone(), uids.clone(), done.clone()));

    let mut tasks = Vec::new();
    for i in 0..5 {
        let project = artel.project(&format!("svc{i}")).await;
        let task = artel
            .runtime
            .workflows
            .submit(engineering(project, BOT))
            .await
            .expect("submit");
        tasks.push(task.id);
    }
    let mut statuses = Vec::new();
    for task in &tasks {
        statuses.push(artel.settle(*task, TaskStatus::Completed).await);
    }
    done.store(true, Ordering::SeqCst);
    let peaks = sampler.await.expect("the sampler");
    eprintln!("limit 2, 5 tasks: {peaks:?}");

    for (task, status) in tasks.iter().zip(&statuses) {
        assert_eq!(
            *status,
            TaskStatus::Completed,
            "task {task}:\n{}",
            artel.failures(*task).await
        );
        let steps: Vec<(StepKind, StepStatus)> = artel
            .store
            .steps(*task)
            .await
            .expect("steps")
            .iter()
            .map(|s| (s.step, s.status))
            .collect();
        assert_eq!(
            steps,
            [
                (StepKind::WriteSpec, StepStatus::Succeeded),
                (StepKind::Scaffold, StepStatus::Succeeded),
                (StepKind::Develop, StepStatus::Succeeded),
                (StepKind::Test, StepStatus::Succeeded),
            ]
        );
    }
    assert!(peaks.samples >= 20, "sampled too rarely: {peaks:?}");
    assert!(peaks.busy_rows <= 2, "more than 2 busy workers: {peaks:?}");
    assert!(
        peaks.uids_running <= 2,
        "processes of more than 2 workers at once: {peaks:?}"
    );
    // Ten commands (an agent and a test run per task), each agent a second long: two ran
    // side by side at some point — the limit is used, not merely respected.
    assert_eq!(peaks.busy_rows, 2, "the limit was never reached: {peaks:?}");
    let leftovers: Vec<Proc> = processes_of(&uids)
        .into_iter()
        .filter(|p| !p.zombie)
        .collect();
    assert!(leftovers.is_empty(), "left behind: {leftovers:?}");
    artel.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_timed_out_agent_leaves_no_process_behind() {
    let db = TestDb::new().await;
    let dir = DataDir::new("timeout");
    // A child in the background (in the command's group) and the agent itself, both far
    // longer than the timeout.
    let agent = dir.agent_script("sleep 300 &\nsleep 300");
    let mut settings = settings(&dir, 1, Some(&agent));
    settings.workers.timeout_secs = 2;
    settings.workflows.max_step_attempts = 1;
    let artel = start(&db, &settings).await;

    let project = artel.project("sleepy").await;
    let uids = uid_range(1);
    let started = tokio::time::Instant::now();
    let task = artel
        .runtime
        .workflows
        .submit(engineering(project, BOT))
        .await
        .expect("submit")
        .id;
    // The agent's processes do appear while it runs (the scan sees them)…
    let sleeping = |procs: &[Proc]| procs.iter().any(|p| p.name == "sleep" && !p.zombie);
    let mut seen = Vec::new();
    while !sleeping(&seen) && started.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(20)).await;
        seen = processes_of(&uids);
    }
    assert!(sleeping(&seen), "the agent's processes: {seen:?}");
    let status = artel.settle(task, TaskStatus::Failed).await;
    let elapsed = started.elapsed();
    assert_eq!(status, TaskStatus::Failed);
    let steps = artel.store.steps(task).await.expect("steps");
    let develop = steps
        .iter()
        .find(|s| s.step == StepKind::Develop)
        .expect("a develop step");
    assert_eq!(develop.status, StepStatus::Failed);
    let failure = develop.failure.as_ref().expect("its failure").to_string();
    assert!(failure.contains("ran out of time"), "{failure}");
    assert!(
        elapsed < Duration::from_secs(60),
        "a 2 s timeout took {elapsed:?} to fail the task"
    );

    // …and none lives on once the task failed: not the agent, not its background child.
    let alive: Vec<Proc> = processes_of(&uids)
        .into_iter()
        .filter(|p| !p.zombie)
        .collect();
    assert!(alive.is_empty(), "left running: {alive:?}");
    // The dead are gone once reaped: the background child was orphaned to the host's init,
    // which may take a moment (its zombie still holds the uid meanwhile).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut dead = processes_of(&uids);
    while !dead.is_empty() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        dead = processes_of(&uids);
    }
    assert!(dead.is_empty(), "never reaped: {dead:?}");
    let workers: Vec<String> = sqlx::query_scalar("SELECT status FROM workers WHERE task_id = $1")
        .bind(task.as_uuid())
        .fetch_all(artel.store.pool())
        .await
        .expect("the task's workers");
    assert!(!workers.is_empty(), "the task had a worker");
    assert!(
        workers.iter().all(|s| s == "stopped" || s == "failed"),
        "worker rows: {workers:?}"
    );
    let dirs = std::fs::read_dir(dir.path().join("workers"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(dirs, 0, "worker directories are removed");
    artel.stop().await;
}

/// Kills the process groups it holds when dropped: a service this test started must not
/// outlive a failed assertion (an abandoned target leaves its services running).
#[derive(Default)]
struct KillOnDrop(Vec<u32>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        for pid in &self.0 {
            if let Ok(pid) = i32::try_from(*pid) {
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
    }
}

/// `GET url`; answers the status code, or `None` when nothing answers.
async fn get(url: &str) -> Option<u16> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(2))
        .build()
        .ok()?;
    client
        .get(url)
        .send()
        .await
        .ok()
        .map(|r| r.status().as_u16())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_health_job_restarts_a_service_whose_process_group_was_killed() {
    let db = TestDb::new().await;
    let dir = DataDir::new("health");
    let settings = settings(&dir, 2, None);
    let artel = start(&db, &settings).await;

    let project = artel.project("shortener").await;
    let deploy = TaskId::new();
    let task = artel
        .runtime
        .workflows
        .submit_with_follow_up(engineering(project, SHORTENER), deploy)
        .await
        .expect("submit")
        .id;
    let status = artel.settle(task, TaskStatus::Completed).await;
    assert_eq!(
        status,
        TaskStatus::Completed,
        "{}",
        artel.failures(task).await
    );
    let status = artel.settle(deploy, TaskStatus::Completed).await;
    assert_eq!(
        status,
        TaskStatus::Completed,
        "{}",
        artel.failures(deploy).await
    );

    let live = artel
        .store
        .live_deployment(project)
        .await
        .expect("read the deployment")
        .expect("a live deployment");
    let url = live.url.clone().expect("a live deployment has a URL");
    let health = format!("{}{}", url.trim_end_matches('/'), live.health_path);
    assert_eq!(get(&health).await, Some(200), "{health} answers");
    let pid = live.pid.expect("a live deployment has a pid");
    let mut services = KillOnDrop::default();
    services.0.push(pid);
    let summary = jobs::check_deployments(
        &artel.store,
        &artel.runtime.target,
        &artel.runtime.deployers,
    )
    .await
    .expect("the health job");
    assert!(summary.contains("0 restarted"), "{summary}");

    let pgid = nix::unistd::Pid::from_raw(i32::try_from(pid).expect("a pid fits i32"));
    nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL).expect("kill the service");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let summary = loop {
        let summary = jobs::check_deployments(
            &artel.store,
            &artel.runtime.target,
            &artel.runtime.deployers,
        )
        .await
        .expect("the health job");
        // Until the target sees the exit, the service counts as running.
        if !summary.contains("0 restarted") || tokio::time::Instant::now() >= deadline {
            break summary;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(summary.contains("1 restarted"), "{summary}");
    assert!(summary.contains("0 failed"), "{summary}");

    let again = artel
        .store
        .live_deployment(project)
        .await
        .expect("read the deployment")
        .expect("still live");
    assert_eq!(again.id, live.id, "the same deployment, restarted");
    services.0.extend(again.pid);
    assert_ne!(again.pid, Some(pid), "a new process");
    let url = again.url.clone().expect("a URL");
    let health = format!("{}{}", url.trim_end_matches('/'), again.health_path);
    assert_eq!(get(&health).await, Some(200), "{health} answers again");
    assert!(
        artel.runtime.target.local().is_running(again.id),
        "the target runs it"
    );
    artel.stop().await;
    // Stopped cleanly: nothing to kill (and the pids may be someone else's by now).
    services.0.clear();
}

// ---------------------------------------------------------------------------------------------
// The crew as supervised actors.

/// The agent every crew test runs: takes `secs`, then commits a note.
fn slow_agent(dir: &DataDir, secs: u32) -> PathBuf {
    dir.agent_script(&format!(
        "sleep {secs}\n\
         printf '%s\\n' \"$ARTEL_TASK\" > NOTES.md\n\
         git add -A && git commit -qm 'agent: notes'"
    ))
}

impl Artel {
    /// The live tree.
    fn tree(&self) -> artel_supervisors::TreeSnapshot {
        self.tree.registry().snapshot()
    }

    /// `task`'s subtree, while it runs.
    fn task_node(&self, task: TaskId) -> Option<artel_supervisors::NodeSnapshot> {
        self.tree()
            .find(&format!("artel/workflows/tasks/engineering/{task}"))
            .cloned()
    }

    /// The attempts of `task`'s `step`, as (status, failure) in order.
    async fn attempts(&self, task: TaskId, step: StepKind) -> Vec<(StepStatus, String)> {
        self.store
            .steps(task)
            .await
            .expect("the journal")
            .into_iter()
            .filter(|s| s.step == step)
            .map(|s| (s.status, s.failure.map(|f| f.reason).unwrap_or_default()))
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_tree_shows_each_tasks_crew_and_the_worker_queue() {
    let db = TestDb::new().await;
    let dir = DataDir::new("crew-tree");
    let agent = slow_agent(&dir, 2);
    let mut settings = settings(&dir, 3, Some(&agent));
    settings.workers.max_busy = 1;
    let artel = start(&db, &settings).await;

    let mut tasks = Vec::new();
    for i in 0..3 {
        let project = artel.project(&format!("crew{i}")).await;
        let task = artel
            .runtime
            .workflows
            .submit(engineering(project, BOT))
            .await
            .expect("submit");
        tasks.push((task.id, project));
    }
    // One worker slot, three tasks: one command runs and two wait — the worker-manager's
    // backlog — while every task's subtree shows its workflow and its role actors.
    let deadline = tokio::time::Instant::now() + JOB;
    loop {
        let tree = artel.tree();
        let queued = tree
            .find("artel/worker-manager")
            .and_then(|n| n.backlog)
            .expect("the worker-manager shows its backlog");
        if queued == 2 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the worker-manager never showed two waiting:\n{}",
            tree.render()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for (task, project) in &tasks {
        let node = artel
            .task_node(*task)
            .expect("the task's subtree is in the tree");
        assert_eq!(node.role, "engineering_task");
        let names: Vec<&str> = node.children.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            ["workflow", "analyst", "scaffolder", "developer", "tester"]
        );
        for child in &node.children {
            assert_eq!(
                child.labels.get("task"),
                Some(&task.to_string()),
                "{child:?}"
            );
            assert_eq!(child.labels.get("project"), Some(&project.to_string()));
            assert!(child.mailbox_depth.is_some() && child.mailbox_capacity.is_some());
            assert_eq!(child.restarts, 0);
        }
        let developer = node.find("developer").expect("a developer node");
        assert_eq!(developer.role, "developer");
    }
    for (task, _) in &tasks {
        assert_eq!(
            artel.settle(*task, TaskStatus::Completed).await,
            TaskStatus::Completed,
            "{}",
            artel.failures(*task).await
        );
    }
    // A finished task's subtree leaves the tree with it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while tasks.iter().any(|(t, _)| artel.task_node(*t).is_some()) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{}",
            artel.tree().render()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    artel.stop().await;
}

/// A hook that misbehaves once in `role` (`how`), and lets the tester wait at `gate` the
/// first time so the test can read the tree while the task is still up.
fn misbehave_once(
    role: &'static str,
    how: fn() -> futures_util::future::BoxFuture<'static, ()>,
    gate: Arc<tokio::sync::Notify>,
) -> artel_actors::roles::role::RoleHook {
    let once = Arc::new(AtomicBool::new(false));
    let gated = Arc::new(AtomicBool::new(false));
    Arc::new(move |name| {
        if name == role && !once.swap(true, Ordering::SeqCst) {
            return how();
        }
        if name == "tester" && !gated.swap(true, Ordering::SeqCst) {
            let gate = gate.clone();
            return Box::pin(async move {
                let _ = tokio::time::timeout(Duration::from_secs(30), gate.notified()).await;
            });
        }
        Box::pin(async {})
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_developer_that_panics_once_is_restarted_by_its_spec_and_the_task_completes() {
    let db = TestDb::new().await;
    let dir = DataDir::new("crew-panic");
    let settings = settings(&dir, 4, None);
    let gate = Arc::new(tokio::sync::Notify::new());
    let hook = misbehave_once(
        "developer",
        || Box::pin(async { panic!("a bug in the developer") }),
        gate.clone(),
    );
    let artel = start_with(
        &db,
        &settings,
        RuntimeOptions {
            hook: Some(hook),
            policies: None,
        },
    )
    .await;
    let project = artel.project("panicky").await;
    let task = artel
        .runtime
        .workflows
        .submit(engineering(project, SHORTENER))
        .await
        .expect("submit")
        .id;

    // While the tester waits at the gate: the developer was restarted once, by its own
    // spec; the workflow and the other roles were not.
    let deadline = tokio::time::Instant::now() + JOB;
    let node = loop {
        if let Some(node) = artel.task_node(task)
            && node.find("developer").is_some_and(|d| d.restarts == 1)
            && artel.attempts(task, StepKind::Test).await.len() == 1
        {
            break node;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{}",
            artel.tree().render()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let developer = node.find("developer").unwrap();
    assert!(
        developer
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("a bug in the developer")),
        "{developer:?}"
    );
    for other in ["workflow", "analyst", "scaffolder", "tester"] {
        assert_eq!(node.find(other).unwrap().restarts, 0, "{other} restarted");
    }
    gate.notify_one();

    assert_eq!(
        artel.settle(task, TaskStatus::Completed).await,
        TaskStatus::Completed,
        "{}",
        artel.failures(task).await
    );
    let develop = artel.attempts(task, StepKind::Develop).await;
    assert_eq!(develop.len(), 2, "one attempt more: {develop:?}");
    assert_eq!(develop[0].0, StepStatus::Failed);
    assert!(develop[0].1.contains("panicked"), "{develop:?}");
    assert_eq!(develop[1].0, StepStatus::Succeeded);
    artel.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_role_stuck_past_its_deadline_is_restarted_and_the_task_completes() {
    let db = TestDb::new().await;
    let dir = DataDir::new("crew-stuck");
    let settings = settings(&dir, 5, None);
    let mut policies = artel_actors::roles::policy::RolePolicies::from_settings(&settings);
    policies.developer.deadline = Duration::from_secs(2);
    policies.developer.backoff = Backoff::none();
    let gate = Arc::new(tokio::sync::Notify::new());
    // Hangs like a wedged LLM call: far past the developer's 2 s deadline.
    let hook = misbehave_once(
        "developer",
        || Box::pin(tokio::time::sleep(Duration::from_secs(600))),
        gate.clone(),
    );
    gate.notify_one();
    let artel = start_with(
        &db,
        &settings,
        RuntimeOptions {
            hook: Some(hook),
            policies: Some(policies),
        },
    )
    .await;
    let project = artel.project("wedged").await;
    let task = artel
        .runtime
        .workflows
        .submit(engineering(project, SHORTENER))
        .await
        .expect("submit")
        .id;
    assert_eq!(
        artel.settle(task, TaskStatus::Completed).await,
        TaskStatus::Completed,
        "{}",
        artel.failures(task).await
    );
    let develop = artel.attempts(task, StepKind::Develop).await;
    assert_eq!(develop.len(), 2, "{develop:?}");
    assert!(
        develop[0].1.contains("stuck past its 2s deadline"),
        "{develop:?}"
    );
    artel.stop().await;
}

// ---------------------------------------------------------------------------------------------
// The Tester holds every agent to real tests.

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cli_agent_whose_manifest_tests_nothing_does_not_pass_the_tester() {
    let db = TestDb::new().await;
    let dir = DataDir::new("notests");
    // The agent's own manifest says its tests are `true`: a command that cannot fail.
    let agent = dir.agent_script(
        "python3 -c 'import json; m = json.load(open(\"artel.json\")); m[\"test\"] = [\"true\"]; \
         json.dump(m, open(\"artel.json\", \"w\"))'\n\
         git add -A && git commit -qm 'agent: tests are true'",
    );
    let mut settings = settings(&dir, 6, Some(&agent));
    settings.workflows.max_rework_iterations = 1;
    let artel = start(&db, &settings).await;
    let project = artel.project("trusting").await;
    let task = artel
        .runtime
        .workflows
        .submit(engineering(project, BOT))
        .await
        .expect("submit")
        .id;
    assert_eq!(
        artel.settle(task, TaskStatus::NeedsHuman).await,
        TaskStatus::NeedsHuman,
        "{}",
        artel.failures(task).await
    );
    let steps = artel.store.steps(task).await.expect("steps");
    let test = steps
        .iter()
        .find(|s| s.step == StepKind::Test)
        .expect("the tests ran");
    let report = test.output.as_ref().expect("a report");
    assert_eq!(report["success"], false, "{report}");
    assert!(
        report["output_tail"]
            .as_str()
            .is_some_and(|t| t.contains("no unittest or pytest summary")),
        "{report}"
    );
    artel.stop().await;
}
