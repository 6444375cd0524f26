//! Durable workflows against a real Postgres: steps journaled before and after, resumed after
//! a crash — including a `kill -9` of the process running them — with every effect once.

mod support;

use artel_actors::store::{EventScope, NewTask, Store};
use artel_actors::workflow::{StepCall, StepError, StepRunner, WorkflowPolicy, Workflows};
use artel_messages::{
    EventBody, EventId, Failure, ProjectId, StepKind, StepStatus, TaskId, TaskKind, TaskStatus,
};
use artel_supervisors::{Backoff, Supervisor};
use serde_json::{Value, json};
use sqlx::Executor;
use std::process::{Command, Stdio};
use std::time::Duration;
use support::TestDb;

/// Steps whose effects are rows in `test_effects`, keyed by the effect key (so an effect done
/// twice would show as a conflict ignored), and whose every execution is a row in
/// `test_executions`. `develop` does its effect and then takes `develop_ms` to finish.
#[derive(Clone)]
struct CountingRunner {
    store: Store,
    develop_ms: u64,
    /// Fail this step with this failure on every attempt.
    failing: Option<(StepKind, Failure)>,
}

impl StepRunner for CountingRunner {
    async fn run(&self, call: StepCall) -> Result<Value, StepError> {
        let pool = self.store.pool();
        sqlx::query("INSERT INTO test_executions (step) VALUES ($1)")
            .bind(call.step.as_str())
            .execute(pool)
            .await
            .map_err(|e| Failure::retryable(e.to_string()))?;
        if let Some((step, failure)) = &self.failing
            && *step == call.step
        {
            return Err(failure.clone().into());
        }
        sqlx::query("INSERT INTO test_effects (key, step) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(&call.effect_key)
            .bind(call.step.as_str())
            .execute(pool)
            .await
            .map_err(|e| Failure::retryable(e.to_string()))?;
        if call.step == StepKind::Develop {
            tokio::time::sleep(Duration::from_millis(self.develop_ms)).await;
        }
        let mut output = json!({ "after": call.step.as_str(), "input": call.input });
        if call.step == StepKind::WriteSpec {
            // A spec taken as written, as with `analyst.confirm = false`.
            output["confirmed"] = json!(true);
        }
        Ok(output)
    }
}

async fn effect_tables(store: &Store) {
    store
        .pool()
        .execute(
            "CREATE TABLE IF NOT EXISTS test_effects (key text PRIMARY KEY, step text NOT NULL); \
             CREATE TABLE IF NOT EXISTS test_executions (id bigserial, step text NOT NULL)",
        )
        .await
        .unwrap();
}

async fn count(store: &Store, sql: &str, step: &str) -> i64 {
    sqlx::query_scalar(sql)
        .bind(step)
        .fetch_one(store.pool())
        .await
        .unwrap()
}

async fn project(store: &Store) -> ProjectId {
    let user = store.create_user("ada", None).await.unwrap();
    store
        .create_project(user.id, "shortener", "a URL shortener")
        .await
        .unwrap()
        .id
}

fn new_task(id: TaskId, project: ProjectId) -> NewTask {
    NewTask {
        id,
        project,
        kind: TaskKind::Engineering,
        description: "make me a URL shortener".into(),
        session: None,
    }
}

async fn wait_for_status(store: &Store, task: TaskId, want: TaskStatus) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let status = store.task(task).await.unwrap().unwrap().status;
        if status == want {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "task stayed {status}, wanted {want}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn event_kinds(store: &Store, task: TaskId) -> Vec<String> {
    // The final status change is announced just after it commits: give it a moment.
    for _ in 0..50 {
        let kinds = event_kinds_now(store, task).await;
        if kinds.last().is_some_and(|k| k == "task_status_changed") {
            return kinds;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    event_kinds_now(store, task).await
}

async fn event_kinds_now(store: &Store, task: TaskId) -> Vec<String> {
    store
        .events_since(EventScope::Task(task), EventId::new(0), 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.body.kind().to_owned())
        .collect()
}

fn fast_policy() -> WorkflowPolicy {
    WorkflowPolicy {
        max_step_attempts: 3,
        step_deadline: Duration::from_secs(30),
        ..WorkflowPolicy::default()
    }
}

/// Starts the workflows subtree the way artel does, with fast backoff.
async fn start(
    store: &Store,
    runner: CountingRunner,
) -> (
    Workflows<CountingRunner>,
    artel_supervisors::SupervisorHandle,
) {
    let (workflows, subtree) = Workflows::subtree(store.clone(), runner, fast_policy());
    let root = Supervisor::new("artel")
        .child(subtree.into_child().backoff(Backoff::none()))
        .start()
        .await;
    (workflows, root)
}

#[tokio::test]
async fn a_task_runs_its_steps_in_order_and_completes() {
    let db = TestDb::new().await;
    effect_tables(&db.store).await;
    let project = project(&db.store).await;
    let runner = CountingRunner {
        store: db.store.clone(),
        develop_ms: 0,
        failing: None,
    };
    let (workflows, root) = start(&db.store, runner).await;
    let task = TaskId::new();
    workflows.submit(new_task(task, project)).await.unwrap();
    wait_for_status(&db.store, task, TaskStatus::Completed).await;

    let steps = db.store.steps(task).await.unwrap();
    let done: Vec<(StepKind, StepStatus)> = steps.iter().map(|s| (s.step, s.status)).collect();
    assert_eq!(
        done,
        [
            (StepKind::WriteSpec, StepStatus::Succeeded),
            (StepKind::Scaffold, StepStatus::Succeeded),
            (StepKind::Develop, StepStatus::Succeeded),
            (StepKind::Test, StepStatus::Succeeded)
        ]
    );
    // Each step got the outputs of the steps before it, by step name.
    assert_eq!(steps[1].input["write_spec"]["after"], "write_spec");
    assert_eq!(steps[2].input["scaffold"]["after"], "scaffold");
    assert_eq!(steps[3].input["develop"]["after"], "develop");
    assert_eq!(steps[3].input["scaffold"]["after"], "scaffold");
    assert_eq!(
        event_kinds(&db.store, task).await,
        [
            "task_created",
            "task_status_changed",
            "step_started",
            "step_succeeded",
            "step_started",
            "step_succeeded",
            "step_started",
            "step_succeeded",
            "step_started",
            "step_succeeded",
            "task_status_changed"
        ]
    );
    root.shutdown().await;
}

#[tokio::test]
async fn a_step_that_keeps_failing_fails_its_task_with_the_error() {
    let db = TestDb::new().await;
    effect_tables(&db.store).await;
    let project = project(&db.store).await;
    let runner = CountingRunner {
        store: db.store.clone(),
        develop_ms: 0,
        failing: Some((
            StepKind::Test,
            Failure::retryable("worker pool unreachable"),
        )),
    };
    let (workflows, root) = start(&db.store, runner).await;
    let task = TaskId::new();
    workflows.submit(new_task(task, project)).await.unwrap();
    wait_for_status(&db.store, task, TaskStatus::Failed).await;

    let record = db.store.task(task).await.unwrap().unwrap();
    let failure = record.failure.expect("a failed task says why");
    assert!(
        failure.reason.contains("worker pool unreachable") && failure.reason.contains("test"),
        "{failure:?}"
    );
    // Three attempts (the first and two supervised restarts), then it stopped trying.
    let executions = "SELECT count(*) FROM test_executions WHERE step = $1";
    assert_eq!(count(&db.store, executions, "test").await, 3);
    assert_eq!(count(&db.store, executions, "develop").await, 1);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        count(&db.store, executions, "test").await,
        3,
        "no silent loop"
    );
    root.shutdown().await;
}

#[tokio::test]
async fn a_fatal_step_failure_fails_the_task_at_once() {
    let db = TestDb::new().await;
    effect_tables(&db.store).await;
    let project = project(&db.store).await;
    let runner = CountingRunner {
        store: db.store.clone(),
        develop_ms: 0,
        failing: Some((
            StepKind::Scaffold,
            Failure::fatal("no template matches the request"),
        )),
    };
    let (workflows, root) = start(&db.store, runner).await;
    let task = TaskId::new();
    workflows.submit(new_task(task, project)).await.unwrap();
    wait_for_status(&db.store, task, TaskStatus::Failed).await;
    let executions = "SELECT count(*) FROM test_executions WHERE step = $1";
    assert_eq!(count(&db.store, executions, "scaffold").await, 1);
    root.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// kill -9 in the middle of a step.

const CHILD_DB: &str = "ARTEL_CRASH_TEST_DB";
const CHILD_TASK: &str = "ARTEL_CRASH_TEST_TASK";
const CHILD_PROJECT: &str = "ARTEL_CRASH_TEST_PROJECT";

/// The "artel process" of the crash test: when the crash test runs this test binary again
/// with the variables set, it starts the workflows subtree, submits the task (a no-op when it
/// already exists) and runs until killed or until the task is done. Without them it does
/// nothing.
#[tokio::test]
async fn crash_test_child_process() {
    let (Ok(url), Ok(task), Ok(project)) = (
        std::env::var(CHILD_DB),
        std::env::var(CHILD_TASK),
        std::env::var(CHILD_PROJECT),
    ) else {
        return;
    };
    let store = Store::connect(&url).await.unwrap();
    let runner = CountingRunner {
        store: store.clone(),
        develop_ms: 3_000,
        failing: None,
    };
    let task: TaskId = task.parse().unwrap();
    let project: ProjectId = project.parse().unwrap();
    let (workflows, root) = start(&store, runner).await;
    workflows.submit(new_task(task, project)).await.unwrap();
    wait_for_status(&store, task, TaskStatus::Completed).await;
    root.shutdown().await;
}

fn spawn_child(db: &TestDb, task: TaskId, project: ProjectId) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "crash_test_child_process", "--nocapture"])
        .env(CHILD_DB, db.url())
        .env(CHILD_TASK, task.to_string())
        .env(CHILD_PROJECT, project.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the test binary runs as the child process")
}

#[tokio::test]
async fn kill_9_in_the_middle_of_a_step_then_restart_completes_with_every_effect_once() {
    let db = TestDb::new().await;
    effect_tables(&db.store).await;
    let project = project(&db.store).await;
    let task = TaskId::new();

    let mut first = spawn_child(&db, task, project);
    // Wait until `develop` has done its effect and is still running (it takes 3 s), then kill.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let effects = count(
            &db.store,
            "SELECT count(*) FROM test_effects WHERE step = $1",
            "develop",
        )
        .await;
        if effects == 1 {
            break;
        }
        assert!(first.try_wait().unwrap().is_none(), "child exited early");
        assert!(
            tokio::time::Instant::now() < deadline,
            "develop never started"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.kill().unwrap(); // SIGKILL
    first.wait().unwrap();
    let journal = db.store.steps(task).await.unwrap();
    let develop = journal
        .iter()
        .find(|s| s.step == StepKind::Develop)
        .unwrap();
    assert_eq!(develop.status, StepStatus::Running, "killed mid-step");

    let mut second = spawn_child(&db, task, project);
    let status = tokio::task::spawn_blocking(move || second.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "the restarted process completes the task");
    let record = db.store.task(task).await.unwrap().unwrap();
    assert_eq!(record.status, TaskStatus::Completed);

    let effects = "SELECT count(*) FROM test_effects WHERE step = $1";
    let executions = "SELECT count(*) FROM test_executions WHERE step = $1";
    for step in ["scaffold", "develop", "test"] {
        assert_eq!(
            count(&db.store, effects, step).await,
            1,
            "{step} effect once"
        );
    }
    assert_eq!(
        count(&db.store, executions, "scaffold").await,
        1,
        "never redone"
    );
    assert_eq!(count(&db.store, executions, "develop").await, 2, "resumed");
    assert_eq!(count(&db.store, executions, "test").await, 1);

    let events = db
        .store
        .events_since(EventScope::Task(task), EventId::new(0), 1000)
        .await
        .unwrap();
    assert!(
        events.iter().any(|e| matches!(
            e.body,
            EventBody::StepResumed {
                step: StepKind::Develop,
                attempt: 1
            }
        )),
        "the events show the resume"
    );
}
