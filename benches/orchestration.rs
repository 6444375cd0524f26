//! What artel's orchestration costs per workflow step, with a no-op agent.
//!
//! Every step of a task is journaled before and after it runs (two writes), announced as
//! events (two appends, serialized for ordering), and planned from the journal (one read of
//! the task, one of its steps). This bench runs engineering tasks whose steps do nothing, so
//! what it measures is exactly that bookkeeping plus the actor hops — the overhead a real
//! agent's work sits on top of. The baseline, measured in the same run on the same pool, is
//! one Postgres round trip (`SELECT 1`), so the figure reads as "one step costs N round
//! trips" and survives the noise of a shared machine.
//!
//! Needs the test Postgres (`. .ci/services.sh`, or `ARTEL_TEST_DATABASE_URL`). Run:
//! `cargo bench -p artel-benches --bench orchestration`; `ARTEL_BENCH_QUICK=1` or `--test`
//! runs tiny counts.

use artel_actors::bus::EventFeed;
use artel_actors::store::{EventScope, NewTask, Store};
use artel_actors::workflow::{StepCall, StepRunner, WorkflowPolicy, Workflows};
use artel_messages::{EventBody, Failure, ProjectId, TaskId, TaskKind, TaskStatus};
use artel_supervisors::Supervisor;
use serde_json::{Value, json};
use sqlx::{Connection, Executor, PgConnection};
use std::collections::HashSet;
use std::time::{Duration, Instant};

const FALLBACK_URL: &str = "postgres://postgres@127.0.0.1:54329/postgres";

/// A step that does nothing: the agent, the tests and the deploy all take no time.
struct Noop;

impl StepRunner for Noop {
    async fn run(&self, _call: StepCall) -> Result<Value, Failure> {
        Ok(json!({"success": true}))
    }
}

async fn fresh_store() -> Store {
    let admin = std::env::var("ARTEL_TEST_DATABASE_URL").unwrap_or_else(|_| FALLBACK_URL.into());
    let mut conn = PgConnection::connect(&admin)
        .await
        .unwrap_or_else(|e| panic!("no Postgres at {admin} ({e}); run `. .ci/services.sh`"));
    let name = format!("artel_bench_{}", uuid::Uuid::new_v4().simple());
    conn.execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .expect("create the bench database");
    let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
    let store = Store::connect(&format!("{base}/{name}"))
        .await
        .expect("connect");
    store.migrate().await.expect("migrate");
    store
}

/// Submits `count` tasks, `parallel` at a time, and waits for all to complete.
async fn run_tasks(
    workflows: &Workflows<Noop>,
    store: &Store,
    project: ProjectId,
    count: usize,
    parallel: usize,
) -> Duration {
    let mut feed = EventFeed::new(
        store,
        EventScope::Project(project),
        store.latest_event_id().await.expect("events"),
    );
    let started = Instant::now();
    let mut pending: HashSet<TaskId> = HashSet::new();
    let mut submitted = 0;
    while submitted < count || !pending.is_empty() {
        while submitted < count && pending.len() < parallel {
            let id = TaskId::new();
            workflows
                .submit(NewTask {
                    id,
                    project,
                    kind: TaskKind::Engineering,
                    description: "bench".into(),
                    session: None,
                })
                .await
                .expect("submit");
            pending.insert(id);
            submitted += 1;
        }
        let event = feed.next().await.expect("event");
        if let (
            EventBody::TaskStatusChanged {
                to: TaskStatus::Completed,
                ..
            },
            Some(task),
        ) = (&event.body, event.task)
        {
            pending.remove(&task);
        }
    }
    started.elapsed()
}

fn main() {
    let quick = std::env::var_os("ARTEL_BENCH_QUICK").is_some()
        || std::env::args().any(|a| a == "--test" || a == "--list");
    let (sequential, parallel_tasks, round_trips) = if quick {
        (5, 8, 50)
    } else {
        (200, 400, 5_000)
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let store = fresh_store().await;
        let user = store.ensure_user("bench", "bench@localhost").await.unwrap();
        let project = store
            .create_project(user.id, "bench", "orchestration bench")
            .await
            .unwrap();
        let (workflows, subtree) = Workflows::subtree(store.clone(), Noop, WorkflowPolicy::default());
        let tree = Supervisor::new("bench").child(subtree.into_child()).start().await;

        // Warm the pool and the code paths.
        run_tasks(&workflows, &store, project.id, 5, 1).await;

        let started = Instant::now();
        for _ in 0..round_trips {
            sqlx::query("SELECT 1").execute(store.pool()).await.unwrap();
        }
        let round_trip = started.elapsed() / round_trips as u32;

        let one_at_a_time = run_tasks(&workflows, &store, project.id, sequential, 1).await;
        let per_step = one_at_a_time / (sequential as u32 * 3);
        let eight = run_tasks(&workflows, &store, project.id, parallel_tasks, 8).await;
        let per_step_8 = eight / (parallel_tasks as u32 * 3);

        println!("orchestration summary");
        println!("  postgres round trip (SELECT 1, mean of {round_trips}): {round_trip:?}");
        println!(
            "  one task at a time: {sequential} tasks × 3 steps in {one_at_a_time:?} → \
             {per_step:?} per step = {:.1} round trips",
            per_step.as_secs_f64() / round_trip.as_secs_f64()
        );
        println!(
            "  8 tasks at a time: {parallel_tasks} tasks × 3 steps in {eight:?} → \
             {per_step_8:?} per step of wall time ({:.0} steps/s)",
            (parallel_tasks * 3) as f64 / eight.as_secs_f64()
        );
        println!(
            "  target ≤ 25 ms per step: {}",
            if per_step <= Duration::from_millis(25) {
                "met"
            } else {
                "NOT met"
            }
        );
        tree.shutdown().await;
        store.close().await;
    });
}
