//! # What a pipeline step costs artel itself: orchestration overhead per step
//!
//! A step of a task is more than its work: the workflow actor reads the task and its journal,
//! plans the next step, journals the attempt `running` (a transaction that takes the task's
//! row lock), announces `step_started`, runs the step, journals it `succeeded` and announces
//! `step_succeeded`; around the steps, a task is created, announced, moved to `running` and
//! finally to `completed`. This bench prices all of that with a [`StepRunner`] that returns at
//! once (a no-op agent, no tests, no deploy), through the real [`Workflows::subtree`] on a
//! real Postgres — so what it measures is exactly the overhead a real agent's work sits on.
//!
//! - **one at a time**: K engineering tasks (scaffold → develop → test) submitted one after
//!   another, each waited for until `completed`; per step = total ÷ (K × 3). The events each
//!   task produced, timed as they arrive on the store's in-process bus, split that into its
//!   phases (submit → first step, step start → end, step end → next start, last step →
//!   completed).
//! - **8 at a time**: the same with 8 tasks in flight; per step of wall time and steps/s.
//! - **with role actors**: each of the above twice — once with the step done inside the
//!   workflow actor ([`Noop`]), once with every task staffed with three role actors and each
//!   step a message to one of them (`NoopCrew`, the real pipeline's shape) — so the ratio is
//!   what the crew as supervised actors costs.
//! - **baseline**: one Postgres round trip on the same pool in the same run — `SELECT 1`, and
//!   a one-row autocommitted `INSERT` (a write, as most of a step's statements are) — so the
//!   figure reads as "one step costs ≈ N round trips" and survives a noisy, shared machine.
//!
//! Each measurement is taken in 3 rounds taking turns; the summary gives the median round.
//! Completion is observed on the store's broadcast bus (no polling, no extra queries).
//!
//! Needs Postgres: `ARTEL_TEST_DATABASE_URL` (default `postgres://postgres@127.0.0.1:54329/
//! postgres`, the one `. .ci/services.sh` starts). A fresh database is created, migrated with
//! `Store::migrate`, and dropped at the end. Run:
//!
//! ```sh
//! cargo bench -p artel-benches --bench pipeline
//! ```
//!
//! `--test` (`cargo test --benches`, `cargo bench -- --test`) or `ARTEL_BENCH_QUICK=1` runs
//! tiny counts; `--list` lists nothing and exits. The target: ≤ 5 ms of orchestration overhead
//! per step with the crew as role actors.

use artel_actors::store::{NewTask, Store, TaskRecord};
use artel_actors::workflow::{
    Staffing, StepCall, StepError, StepRunner, WorkflowPolicy, Workflows,
};
use artel_messages::{
    Event, EventBody, Failure, ProjectId, Request, StepKind, TaskId, TaskKind, TaskStatus,
};
use artel_supervisors::{Actor, Addr, ChildSpec, Context, Handler, Supervisor, SupervisorHandle};
use serde_json::{Value, json};
use sqlx::Executor;
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};
use tokio::sync::broadcast::error::RecvError;

#[path = "support/database.rs"]
mod database;
use database::{drop_database, fresh_database};

/// Steps of an engineering task without rework.
const STEPS: u32 = 3;
/// Rounds of each measurement; the summary reports the median.
const ROUNDS: usize = 3;
/// Tasks in flight in the concurrent variant.
const PARALLEL: usize = 8;
/// The issue's target for orchestration overhead per step.
const TARGET: Duration = Duration::from_millis(5);

/// A step that does nothing: the agent, the tests and the deploy take no time. The test
/// step's `success` keeps the plan from sending the work back.
#[derive(Clone)]
struct Noop;

impl StepRunner for Noop {
    async fn run(&self, _call: StepCall) -> Result<Value, StepError> {
        Ok(json!({ "success": true }))
    }
}

/// The crew's shape at no cost: every task is staffed with three role actors (scaffolder,
/// developer, tester) that answer at once, and each step is a message to one of them, as in
/// the real pipeline — so the difference from [`Noop`] is what the crew as actors costs.
#[derive(Clone)]
struct NoopCrew;

/// A role actor that answers every step at once.
struct Echo;

impl Actor for Echo {}

/// "Do this step."
struct Do;

impl Request for Do {
    type Reply = Value;
}

impl Handler<Do> for Echo {
    async fn handle(&mut self, _msg: Do, _ctx: &mut Context<Self>) -> Value {
        json!({ "success": true })
    }
}

/// One task's three role actors.
struct CrewRunner {
    hands: [Addr<Echo>; 3],
}

impl StepRunner for CrewRunner {
    async fn run(&self, call: StepCall) -> Result<Value, StepError> {
        let hand = match call.step {
            StepKind::Scaffold => &self.hands[0],
            StepKind::Develop => &self.hands[1],
            _ => &self.hands[2],
        };
        hand.call(Do)
            .await
            .map_err(|e| StepError::Role(Failure::retryable(e.to_string())))
    }
}

impl Staffing for NoopCrew {
    type Runner = CrewRunner;
    fn staff(&self, task: &TaskRecord) -> (CrewRunner, Vec<ChildSpec>) {
        let role = |name: &str| {
            let (addr, spec) = ChildSpec::actor_with_capacity(name, 4, || Echo);
            let spec = spec
                .role(name)
                .label("task", task.id.to_string())
                .label("project", task.project.to_string());
            (addr, spec)
        };
        let (a, sa) = role("scaffolder");
        let (b, sb) = role("developer");
        let (c, sc) = role("tester");
        (CrewRunner { hands: [a, b, c] }, vec![sa, sb, sc])
    }
}

/// How many of everything to run.
struct Counts {
    sequential: usize,
    parallel: usize,
    round_trips: u32,
}

impl Counts {
    fn from_args() -> Option<Self> {
        let args: Vec<String> = std::env::args().collect();
        if args.iter().any(|a| a == "--list") {
            return None;
        }
        let quick = std::env::var_os("ARTEL_BENCH_QUICK").is_some_and(|v| v != "0")
            || args.iter().any(|a| a == "--test");
        Some(if quick {
            Self {
                sequential: 5,
                parallel: 16,
                round_trips: 50,
            }
        } else {
            Self {
                sequential: 200,
                parallel: 400,
                round_trips: 2_000,
            }
        })
    }
}

/// When each event of one task arrived, for the breakdown.
#[derive(Debug, Default)]
struct Timeline {
    submitted: Option<Instant>,
    started: Vec<Instant>,
    succeeded: Vec<Instant>,
    completed: Option<Instant>,
}

/// One run: how long it took, and each task's timeline.
struct Run {
    wall: Duration,
    timelines: HashMap<TaskId, Timeline>,
}

/// Submits `count` engineering tasks on `project`, `parallel` in flight at a time, and waits
/// until every one is `completed` (seen on the store's bus).
async fn run_tasks<S: Staffing>(
    workflows: &Workflows<S>,
    store: &Store,
    project: ProjectId,
    count: usize,
    parallel: usize,
) -> Run {
    // Subscribed before the first submit: no event of these tasks can be missed.
    let mut bus = store.subscribe();
    let mut timelines: HashMap<TaskId, Timeline> = HashMap::new();
    let mut pending: HashSet<TaskId> = HashSet::new();
    let mut submitted = 0;
    let started = Instant::now();
    while submitted < count || !pending.is_empty() {
        while submitted < count && pending.len() < parallel {
            let id = TaskId::new();
            timelines.entry(id).or_default().submitted = Some(Instant::now());
            workflows
                .submit(NewTask {
                    id,
                    project,
                    kind: TaskKind::Engineering,
                    description: "bench".into(),
                    session: None,
                })
                .await
                .expect("submit a task");
            pending.insert(id);
            submitted += 1;
        }
        match bus.recv().await {
            Ok(event) => record(&event, &mut timelines, &mut pending),
            // Fell behind the bus: ask the journal which tasks are done instead.
            Err(RecvError::Lagged(_)) => {
                let ids: Vec<TaskId> = pending.iter().copied().collect();
                for id in ids {
                    let task = store.task(id).await.expect("read a task");
                    if task.is_some_and(|t| t.status == TaskStatus::Completed) {
                        pending.remove(&id);
                    }
                }
            }
            Err(RecvError::Closed) => panic!("the store's bus closed"),
        }
    }
    Run {
        wall: started.elapsed(),
        timelines,
    }
}

fn record(event: &Event, timelines: &mut HashMap<TaskId, Timeline>, pending: &mut HashSet<TaskId>) {
    let Some(task) = event.task else { return };
    let Some(timeline) = timelines.get_mut(&task) else {
        return;
    };
    let now = Instant::now();
    match &event.body {
        EventBody::StepStarted { .. } => timeline.started.push(now),
        EventBody::StepSucceeded { .. } => timeline.succeeded.push(now),
        EventBody::TaskStatusChanged { to, reason, .. } => match to {
            TaskStatus::Completed => {
                timeline.completed = Some(now);
                pending.remove(&task);
            }
            TaskStatus::Failed | TaskStatus::Cancelled | TaskStatus::NeedsHuman => {
                panic!("a bench task ended {to}: {reason:?}")
            }
            _ => {}
        },
        _ => {}
    }
}

/// Mean durations of each phase of a task, over the tasks of a sequential run.
#[derive(Debug, Default, Clone, Copy)]
struct Breakdown {
    /// `submit` called → first `step_started` seen.
    submit_to_first_step: Duration,
    /// `step_started` → `step_succeeded` of the same step (the no-op run, `finish_step` and
    /// the event).
    step_start_to_end: Duration,
    /// `step_succeeded` → the next step's `step_started` (the actor hop, two reads, the
    /// `running` transaction and the event).
    between_steps: Duration,
    /// last `step_succeeded` → `completed` seen.
    last_step_to_completed: Duration,
}

fn mean(spans: &[Duration]) -> Duration {
    if spans.is_empty() {
        return Duration::ZERO;
    }
    spans.iter().sum::<Duration>() / spans.len() as u32
}

fn breakdown(run: &Run) -> Breakdown {
    let (mut first, mut within, mut between, mut last) = (vec![], vec![], vec![], vec![]);
    for t in run.timelines.values() {
        let (Some(submitted), Some(completed)) = (t.submitted, t.completed) else {
            continue;
        };
        if t.started.len() != STEPS as usize || t.succeeded.len() != STEPS as usize {
            continue;
        }
        first.push(t.started[0] - submitted);
        for i in 0..t.started.len() {
            within.push(t.succeeded[i] - t.started[i]);
            if i + 1 < t.started.len() {
                between.push(t.started[i + 1] - t.succeeded[i]);
            }
        }
        last.push(completed - t.succeeded[t.succeeded.len() - 1]);
    }
    Breakdown {
        submit_to_first_step: mean(&first),
        step_start_to_end: mean(&within),
        between_steps: mean(&between),
        last_step_to_completed: mean(&last),
    }
}

/// Mean time of one `SELECT 1`, and of one autocommitted one-row `INSERT`, on the pool.
async fn round_trips(store: &Store, count: u32) -> (Duration, Duration) {
    let pool = store.pool();
    let started = Instant::now();
    for _ in 0..count {
        sqlx::query("SELECT 1")
            .execute(pool)
            .await
            .expect("SELECT 1");
    }
    let select = started.elapsed() / count;
    let started = Instant::now();
    for i in 0..count {
        sqlx::query("INSERT INTO bench_writes (n) VALUES ($1)")
            .bind(i64::from(i))
            .execute(pool)
            .await
            .expect("INSERT");
    }
    (select, started.elapsed() / count)
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values.get(values.len() / 2).copied().unwrap_or_default()
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

async fn start<S: Staffing>(store: &Store, staffing: S) -> (Workflows<S>, SupervisorHandle) {
    let (workflows, subtree) =
        Workflows::subtree(store.clone(), staffing, WorkflowPolicy::default());
    let tree = Supervisor::new("bench")
        .child(subtree.into_child())
        .start()
        .await;
    (workflows, tree)
}

fn main() {
    let Some(counts) = Counts::from_args() else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(bench(counts));
}

async fn bench(counts: Counts) {
    let started = Instant::now();
    let (store, admin, name) = fresh_database().await;
    store
        .pool()
        .execute("CREATE TABLE bench_writes (id bigserial PRIMARY KEY, n bigint NOT NULL)")
        .await
        .expect("the writes table");
    let user = store
        .ensure_user("bench", "bench@localhost")
        .await
        .expect("a user");
    let project = store
        .create_project(user.id, "bench", "orchestration bench")
        .await
        .expect("a project")
        .id;
    let (workflows, tree) = start(&store, Noop).await;
    let (crew, crew_tree) = start(&store, NoopCrew).await;

    // Warm the pool's connections and the code paths.
    run_tasks(&workflows, &store, project, 5, 1).await;
    run_tasks(&workflows, &store, project, PARALLEL, PARALLEL).await;
    run_tasks(&crew, &store, project, 5, 1).await;

    let (mut selects, mut inserts, mut sequential, mut parallel) = (vec![], vec![], vec![], vec![]);
    let (mut crewed, mut crewed_8) = (vec![], vec![]);
    let mut breakdowns = vec![];
    for round in 1..=ROUNDS {
        let (select, insert) = round_trips(&store, counts.round_trips).await;
        let one = run_tasks(&workflows, &store, project, counts.sequential, 1).await;
        let with_crew = run_tasks(&crew, &store, project, counts.sequential, 1).await;
        let eight = run_tasks(&workflows, &store, project, counts.parallel, PARALLEL).await;
        let eight_crew = run_tasks(&crew, &store, project, counts.parallel, PARALLEL).await;
        let per_step = one.wall / (counts.sequential as u32 * STEPS);
        let per_step_crew = with_crew.wall / (counts.sequential as u32 * STEPS);
        let per_step_8 = eight.wall / (counts.parallel as u32 * STEPS);
        let per_step_8_crew = eight_crew.wall / (counts.parallel as u32 * STEPS);
        println!(
            "round {round}: SELECT 1 {}, INSERT {}, one at a time {} per step (with role actors \
             {}), {PARALLEL} at a time {} per step of wall time (with role actors {})",
            ms(select),
            ms(insert),
            ms(per_step),
            ms(per_step_crew),
            ms(per_step_8),
            ms(per_step_8_crew)
        );
        selects.push(select);
        inserts.push(insert);
        sequential.push(per_step);
        parallel.push(per_step_8);
        crewed.push(per_step_crew);
        crewed_8.push(per_step_8_crew);
        breakdowns.push((per_step_crew, breakdown(&with_crew)));
    }
    crew_tree.shutdown().await;
    tree.shutdown().await;
    store.close().await;
    drop_database(&admin, &name).await;

    let select = median(selects);
    let insert = median(inserts);
    let per_step = median(sequential.clone());
    let per_step_8 = median(parallel);
    let per_step_crew = median(crewed);
    let per_step_8_crew = median(crewed_8);
    breakdowns.sort_by_key(|(d, _)| *d);
    let parts = breakdowns[breakdowns.len() / 2].1;
    let ratio = |d: Duration, unit: Duration| d.as_secs_f64() / unit.as_secs_f64().max(1e-9);

    println!();
    println!(
        "=== pipeline: orchestration overhead per step (no-op agent), median of {ROUNDS} rounds ==="
    );
    println!(
        "postgres round trip          SELECT 1: {}   one-row INSERT (autocommit): {}   (mean of {} each)",
        ms(select),
        ms(insert),
        counts.round_trips
    );
    println!(
        "one task at a time           {} tasks x {STEPS} steps: {} per step = {:.1} SELECT-1 round trips = {:.1} INSERTs (steps in the workflow)",
        counts.sequential,
        ms(per_step),
        ratio(per_step, select),
        ratio(per_step, insert)
    );
    println!(
        "  with role actors           {} per step = {:.2}x of steps in the workflow (a subtree of 3 role actors per task, a message per step)",
        ms(per_step_crew),
        ratio(per_step_crew, per_step)
    );
    println!(
        "  per task (role actors)     submit -> first step {}; step start -> end {}; step end -> next start {}; last step -> completed {}",
        ms(parts.submit_to_first_step),
        ms(parts.step_start_to_end),
        ms(parts.between_steps),
        ms(parts.last_step_to_completed)
    );
    println!(
        "{PARALLEL} tasks at a time            {} tasks x {STEPS} steps: {} per step of wall time ({:.0} steps/s); with role actors {} ({:.2}x)",
        counts.parallel,
        ms(per_step_8),
        1.0 / per_step_8.as_secs_f64().max(1e-9),
        ms(per_step_8_crew),
        ratio(per_step_8_crew, per_step_8)
    );
    println!(
        "target <= {} per step   {} ({} one at a time, with role actors)",
        ms(TARGET),
        if per_step_crew <= TARGET {
            "MET"
        } else {
            "NOT MET"
        },
        ms(per_step_crew)
    );
    println!(
        "wall time                    {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
