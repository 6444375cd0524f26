//! The scheduler against a real Postgres: one supervised actor per job; jobs run on their
//! intervals and on demand, never on two nodes at once (two schedulers on two stores of one
//! database); a failing job runs again on its next tick, and a panicking or hung one restarts
//! alone, after its own backoff, without keeping its lock.

mod support;

use artel_actors::scheduler::{
    CUT_OFF, Job, JobReports, RunOutcome, SKIPPED_ELSEWHERE, Scheduler, SchedulerHandle,
};
use artel_actors::store::Store;
use artel_messages::scheduler::{JobKind, RunJob};
use artel_messages::{ErrorClass, Failure};
use artel_supervisors::{
    Backoff, NodeKind, NodeSnapshot, NodeStatus, Supervisor, SupervisorHandle,
};
use parking_lot::Mutex;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use support::TestDb;

/// A job that counts its runs.
fn counting(kind: JobKind, runs: &Arc<AtomicUsize>) -> Job {
    let runs = runs.clone();
    Job::new(kind, move || {
        let runs = runs.clone();
        async move {
            let n = runs.fetch_add(1, Ordering::SeqCst) + 1;
            Ok(format!("counted {n}"))
        }
    })
}

/// Runs of one job, wherever they run: how many are going now, the most ever at once, and
/// when each started.
#[derive(Default)]
struct Runs {
    now: AtomicUsize,
    most: AtomicUsize,
    starts: Mutex<Vec<Instant>>,
}

impl Runs {
    fn count(&self) -> usize {
        self.starts.lock().len()
    }

    fn starts(&self) -> Vec<Instant> {
        self.starts.lock().clone()
    }

    /// Records the start of a run; answers its number (1-based).
    fn begin(&self) -> usize {
        let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.most.fetch_max(now, Ordering::SeqCst);
        let mut starts = self.starts.lock();
        starts.push(Instant::now());
        starts.len()
    }

    fn end(&self) {
        self.now.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A health-check job whose run `n` takes `took(n)`, recording its runs in `runs`.
fn timed(runs: &Arc<Runs>, took: fn(usize) -> Duration) -> Job {
    let runs = runs.clone();
    Job::new(JobKind::HealthCheck, move || {
        let runs = runs.clone();
        async move {
            let n = runs.begin();
            tokio::time::sleep(took(n)).await;
            runs.end();
            Ok(format!("slept (run {n})"))
        }
    })
}

/// A job whose every run takes 500 ms.
fn sleeping(runs: &Arc<Runs>) -> Job {
    timed(runs, |_| Duration::from_millis(500))
}

/// A job that fails its first `failures` runs, then succeeds; counts every run.
fn failing_at_first(kind: JobKind, failures: usize, runs: &Arc<AtomicUsize>) -> Job {
    let runs = runs.clone();
    Job::new(kind, move || {
        let runs = runs.clone();
        async move {
            let n = runs.fetch_add(1, Ordering::SeqCst) + 1;
            if n <= failures {
                Err(Failure::retryable(format!("run {n} failed")))
            } else {
                Ok(format!("run {n} worked"))
            }
        }
    })
}

/// A job that panics on its first `panics` runs, then succeeds; records every run.
fn panicking_at_first(kind: JobKind, panics: usize, runs: &Arc<Runs>) -> Job {
    let runs = runs.clone();
    Job::new(kind, move || {
        let runs = runs.clone();
        async move {
            let n = runs.begin();
            runs.end();
            if n <= panics {
                panic!("job exploded on run {n}");
            }
            Ok(format!("run {n} worked"))
        }
    })
}

/// A backoff of exactly `delay` before every restart.
fn fixed(delay: Duration) -> Backoff {
    Backoff {
        initial: delay,
        multiplier: 1.0,
        max: delay,
        jitter: 0.0,
        reset_after: Duration::from_secs(60),
    }
}

/// Starts `scheduler` as the `scheduler` subtree of a `test` root.
async fn start(scheduler: Scheduler) -> (SchedulerHandle, SupervisorHandle) {
    let (handle, subtree) = scheduler.into_supervisor("scheduler");
    let tree = Supervisor::new("test")
        .child(subtree.into_child())
        .start()
        .await;
    (handle, tree)
}

/// The node of job `name` (e.g. `health-check`) in the live tree.
fn job_node(tree: &SupervisorHandle, name: &str) -> NodeSnapshot {
    tree.registry()
        .snapshot()
        .find(&format!("test/scheduler/{name}"))
        .cloned()
        .unwrap_or_else(|| panic!("no node test/scheduler/{name}"))
}

fn run(job: JobKind) -> RunJob {
    RunJob { job }
}

/// Whether the last run of `kind` ended with `outcome`.
fn last_is(reports: &JobReports, kind: JobKind, outcome: RunOutcome) -> bool {
    reports.get(kind).is_some_and(|r| r.outcome == outcome)
}

/// Waits until `done()` or fails the test after `limit`.
async fn eventually(limit: Duration, what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Advisory locks held in the database right now (by any session).
async fn advisory_locks(store: &Store) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database \
         WHERE l.locktype = 'advisory' AND d.datname = current_database()",
    )
    .fetch_one(store.pool())
    .await
    .expect("read pg_locks")
}

/// Waits until no session holds an advisory lock.
async fn no_advisory_locks(store: &Store) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while advisory_locks(store).await > 0 {
        assert!(Instant::now() < deadline, "a job's lock was never released");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_scheduler_is_a_supervisor_with_one_actor_per_job() {
    let db = TestDb::new().await;
    let none = Arc::new(AtomicUsize::new(0));
    let scheduler = JobKind::ALL
        .iter()
        .fold(Scheduler::new(db.store.clone()), |s, kind| {
            s.job(counting(*kind, &none), Duration::ZERO)
        })
        .job(counting(JobKind::HealthCheck, &none), Duration::ZERO);
    let (_handle, tree) = start(scheduler).await;

    let snapshot = tree.registry().snapshot();
    let scheduler = snapshot.find("test/scheduler").expect("a scheduler node");
    assert_eq!(scheduler.kind, NodeKind::Supervisor);
    assert_eq!(scheduler.detail.as_deref(), Some("one_for_one"));
    let names: Vec<&str> = scheduler.children.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "repo-sync",
            "session-reaper",
            "worker-reaper",
            "health-check"
        ],
        "one node per job, in the order added; a second job of a kind replaces the first"
    );
    for job in &scheduler.children {
        assert_eq!(job.kind, NodeKind::Actor, "{}", job.name);
        assert_eq!(job.role, "scheduler_job", "{}", job.name);
        assert_eq!(job.status, NodeStatus::Running, "{}", job.name);
        assert!(job.mailbox_capacity.is_some(), "{}", job.name);
    }
    tree.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_runs_on_its_interval() {
    let db = TestDb::new().await;
    let runs = Arc::new(AtomicUsize::new(0));
    let scheduler = Scheduler::new(db.store.clone()).job(
        counting(JobKind::SessionReaper, &runs),
        Duration::from_millis(100),
    );
    let (handle, tree) = start(scheduler).await;

    eventually(Duration::from_secs(10), "three runs", || {
        runs.load(Ordering::SeqCst) >= 3
    })
    .await;
    let last = handle
        .reports()
        .get(JobKind::SessionReaper)
        .expect("a report of the last run");
    assert_eq!(last.outcome, RunOutcome::Succeeded);
    assert!(last.report.summary.starts_with("counted "), "{last:?}");
    tree.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn run_job_runs_now_and_answers_the_summary() {
    let db = TestDb::new().await;
    let runs = Arc::new(AtomicUsize::new(0));
    let scheduler = Scheduler::new(db.store.clone())
        .job(counting(JobKind::RepoSync, &runs), Duration::ZERO)
        .job(
            counting(JobKind::WorkerReaper, &Arc::default()),
            Duration::from_secs(3600),
        );
    let (handle, tree) = start(scheduler).await;

    let report = handle
        .run(run(JobKind::RepoSync))
        .await
        .expect("the job ran");
    assert_eq!(report.job, JobKind::RepoSync);
    assert_eq!(report.summary, "counted 1");
    assert!(report.started_at <= report.finished_at);
    assert_eq!(runs.load(Ordering::SeqCst), 1);

    let last = handle.reports().all();
    assert_eq!(
        last.len(),
        1,
        "only the job that ran has a report: {last:?}"
    );
    assert_eq!(last[0].report, report);
    assert_eq!(last[0].outcome, RunOutcome::Succeeded);

    let unknown = handle
        .run(run(JobKind::HealthCheck))
        .await
        .expect_err("no such job here");
    assert_eq!(unknown.class, ErrorClass::Fatal);
    assert!(
        unknown.reason.contains("health_check")
            && unknown.reason.contains("repo_sync, worker_reaper"),
        "says which jobs exist: {}",
        unknown.reason
    );
    assert_eq!(
        advisory_locks(&db.store).await,
        0,
        "the lock was given back"
    );
    tree.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn two_nodes_never_run_a_job_at_once() {
    let db = TestDb::new().await;
    let other_store = TestDb::connect(&db.admin, &db.name).await;
    let runs = Arc::new(Runs::default());
    let node_a = Scheduler::new(db.store.clone()).job(sleeping(&runs), Duration::from_millis(100));
    let node_b =
        Scheduler::new(other_store.clone()).job(sleeping(&runs), Duration::from_millis(100));
    let (a, tree_a) = start(node_a).await;
    let (b, tree_b) = start(node_b).await;

    let skipped = |handle: &SchedulerHandle| {
        last_is(handle.reports(), JobKind::HealthCheck, RunOutcome::Skipped)
    };
    let mut seen_skipped = 0;
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(2500) {
        if skipped(&a) || skipped(&b) {
            seen_skipped += 1;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tree_a.shutdown().await;
    tree_b.shutdown().await;

    assert_eq!(
        runs.most.load(Ordering::SeqCst),
        1,
        "two nodes ran the job at once"
    );
    let count = runs.count();
    assert!(
        (3..=6).contains(&count),
        "about one 500 ms run at a time in 2.5 s, got {count}"
    );
    assert!(
        seen_skipped > 0,
        "the node without the lock reports its runs skipped"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_node_without_the_lock_reports_skipped() {
    let db = TestDb::new().await;
    let other_store = TestDb::connect(&db.admin, &db.name).await;
    let runs = Arc::new(Runs::default());
    let (a, tree_a) =
        start(Scheduler::new(db.store.clone()).job(sleeping(&runs), Duration::ZERO)).await;
    let (b, tree_b) =
        start(Scheduler::new(other_store.clone()).job(sleeping(&runs), Duration::ZERO)).await;

    let first = a.run(run(JobKind::HealthCheck));
    let second = async {
        // Asked while the first node is surely inside its 500 ms run.
        tokio::time::sleep(Duration::from_millis(150)).await;
        b.run(run(JobKind::HealthCheck)).await
    };
    let (first, second) = tokio::join!(first, second);
    let first = first.expect("node a ran it");
    let second = second.expect("a skip is no error");
    assert_eq!(first.summary, "slept (run 1)");
    assert_eq!(second.summary, SKIPPED_ELSEWHERE);
    assert_eq!(runs.count(), 1);
    assert!(last_is(
        b.reports(),
        JobKind::HealthCheck,
        RunOutcome::Skipped
    ));

    // The lock is free again: node b takes it now.
    let again = b.run(run(JobKind::HealthCheck)).await.expect("ran");
    assert_eq!(again.summary, "slept (run 2)");
    assert_eq!(advisory_locks(&db.store).await, 0);
    tree_a.shutdown().await;
    tree_b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_never_overlaps_itself_and_ticks_during_a_run_are_skipped() {
    let db = TestDb::new().await;
    let runs = Arc::new(Runs::default());
    // Ticks every 100 ms; the first run takes a second, the others none.
    let slow_first = timed(&runs, |n| {
        Duration::from_millis(if n == 1 { 1000 } else { 0 })
    });
    let scheduler = Scheduler::new(db.store.clone()).job(slow_first, Duration::from_millis(100));
    let (handle, tree) = start(scheduler).await;

    eventually(Duration::from_secs(5), "the slow run is going", || {
        runs.now.load(Ordering::SeqCst) == 1
    })
    .await;
    // Asked during the slow run: it waits for that run, then runs its own.
    let report = handle
        .run(run(JobKind::HealthCheck))
        .await
        .expect("a run, not a skip");
    let starts = runs.starts();
    assert_eq!(report.summary, "slept (run 2)");
    assert!(
        starts[1] >= starts[0] + Duration::from_millis(1000),
        "run 2 started after run 1 ended"
    );
    let slow_ended = starts[1];
    tokio::time::sleep(Duration::from_millis(1000)).await;
    tree.shutdown().await;

    assert_eq!(runs.most.load(Ordering::SeqCst), 1, "runs overlapped");
    // About ten ticks fired during the slow run. Skipped, they are not run late in a burst:
    // the runs after it follow the timer, one per 100 ms tick.
    let starts = runs.starts();
    let burst = starts
        .iter()
        .filter(|s| **s > slow_ended && **s <= slow_ended + Duration::from_millis(300))
        .count();
    assert!(
        burst <= 4,
        "{burst} runs within 300 ms after the slow one: ticks queued during it ran late"
    );
    let after = starts.iter().filter(|s| **s > slow_ended).count();
    assert!(
        (5..=12).contains(&after),
        "the timer kept ticking after the slow run: {after} runs in 1 s"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_job_reports_and_its_next_tick_runs() {
    let db = TestDb::new().await;
    let other_store = TestDb::connect(&db.admin, &db.name).await;

    // On demand: the failure comes back to the caller, and the lock is free afterwards.
    let always = Arc::new(AtomicUsize::new(0));
    let (a, tree_a) = start(Scheduler::new(db.store.clone()).job(
        failing_at_first(JobKind::RepoSync, usize::MAX, &always),
        Duration::ZERO,
    ))
    .await;
    let failure = a
        .run(run(JobKind::RepoSync))
        .await
        .expect_err("the job failed");
    assert_eq!(failure.reason, "run 1 failed");
    assert_eq!(failure.class, ErrorClass::Retryable);
    let last = a.reports().all();
    assert_eq!(last[0].outcome, RunOutcome::Failed);
    assert_eq!(last[0].report.summary, "run 1 failed");
    assert_eq!(
        advisory_locks(&db.store).await,
        0,
        "released after a failure"
    );

    // The other node takes the lock next.
    let runs_b = Arc::new(AtomicUsize::new(0));
    let (b, tree_b) = start(
        Scheduler::new(other_store.clone())
            .job(counting(JobKind::RepoSync, &runs_b), Duration::ZERO),
    )
    .await;
    let report = b
        .run(run(JobKind::RepoSync))
        .await
        .expect("node b ran it after node a's failure");
    assert_eq!(report.summary, "counted 1");

    // On a timer: two failures, then the next ticks still run and succeed — in the same
    // actor run: a returned failure is the job's business, not a restart.
    let runs = Arc::new(AtomicUsize::new(0));
    let scheduler = Scheduler::new(db.store.clone()).job(
        failing_at_first(JobKind::WorkerReaper, 2, &runs),
        Duration::from_millis(100),
    );
    let (c, tree_c) = start(scheduler).await;
    eventually(Duration::from_secs(10), "a run after the failures", || {
        last_is(c.reports(), JobKind::WorkerReaper, RunOutcome::Succeeded)
    })
    .await;
    assert!(runs.load(Ordering::SeqCst) >= 3);
    let node = job_node(&tree_c, "worker-reaper");
    assert_eq!(node.restarts, 0, "a failed run restarts nothing");
    assert_eq!(node.last_error, None);
    assert_eq!(job_node(&tree_a, "repo-sync").restarts, 0);
    tree_a.shutdown().await;
    tree_b.shutdown().await;
    tree_c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_panicking_job_restarts_alone_after_its_backoff() {
    let db = TestDb::new().await;
    let backoff = Duration::from_millis(400);
    let every = Duration::from_millis(100);
    let panicky = Arc::new(Runs::default());
    let sibling = Arc::new(Runs::default());
    let scheduler = Scheduler::new(db.store.clone())
        .job(
            panicking_at_first(JobKind::HealthCheck, 1, &panicky).backoff(fixed(backoff)),
            every,
        )
        .job(
            panicking_at_first(JobKind::SessionReaper, 0, &sibling),
            every,
        )
        .job(counting(JobKind::RepoSync, &Arc::default()), Duration::ZERO);
    let (handle, tree) = start(scheduler).await;
    let up = Instant::now();

    eventually(Duration::from_secs(10), "the job runs again", || {
        last_is(
            handle.reports(),
            JobKind::HealthCheck,
            RunOutcome::Succeeded,
        )
    })
    .await;
    let runs = panicky.starts();
    assert!(runs.len() >= 2, "one panic, then a run that worked");
    assert!(
        runs[1] - runs[0] >= backoff + every,
        "the restart waited out its backoff, then one interval: {:?}",
        runs[1] - runs[0]
    );
    assert!(
        sibling
            .starts()
            .iter()
            .any(|s| *s > runs[0] && *s < runs[1]),
        "the sibling kept running while the job waited out its backoff"
    );

    let elapsed = up.elapsed();
    let node = job_node(&tree, "health-check");
    assert_eq!(node.restarts, 1, "{node:?}");
    assert_eq!(node.status, NodeStatus::Running);
    let error = node.last_error.as_deref().unwrap_or_default();
    assert!(error.contains("job exploded on run 1"), "{node:?}");
    for name in ["session-reaper", "repo-sync"] {
        let node = job_node(&tree, name);
        assert_eq!(node.restarts, 0, "{name} restarted: {node:?}");
        assert_eq!(node.last_error, None, "{name}");
        // Whole milliseconds both: an uptime never interrupted is at least the time since the
        // tree was up.
        let uptime = node.uptime_ms.expect("running");
        assert!(
            u128::from(uptime) >= elapsed.as_millis(),
            "{name} has been up since the start ({uptime} ms < {elapsed:?})"
        );
    }
    assert_eq!(
        tree.registry()
            .snapshot()
            .find("test/scheduler")
            .map(|n| n.restarts),
        Some(0),
        "the scheduler itself never restarted"
    );
    tree.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_panicking_run_is_reported_failed_and_gives_its_lock_back() {
    let db = TestDb::new().await;
    let other_store = TestDb::connect(&db.admin, &db.name).await;
    let scheduler = Scheduler::new(db.store.clone())
        .job(
            panicking_at_first(JobKind::HealthCheck, usize::MAX, &Arc::default()),
            Duration::ZERO,
        )
        .job(counting(JobKind::RepoSync, &Arc::default()), Duration::ZERO);
    let (handle, tree) = start(scheduler).await;

    let failure = handle
        .run(run(JobKind::HealthCheck))
        .await
        .expect_err("a panic is a failure");
    assert_eq!(failure.class, ErrorClass::Retryable);
    assert!(
        failure.reason.contains("panicked") && failure.reason.contains("job exploded on run 1"),
        "{}",
        failure.reason
    );
    let last = handle
        .reports()
        .get(JobKind::HealthCheck)
        .expect("the panicking run is reported");
    assert_eq!(last.outcome, RunOutcome::Failed);
    assert_eq!(
        last.report.summary,
        "the job panicked: job exploded on run 1"
    );

    // Its sibling answers at once, and the panicking job's actor restarts.
    let report = handle.run(run(JobKind::RepoSync)).await.expect("ran");
    assert_eq!(report.summary, "counted 1");
    eventually(Duration::from_secs(10), "the job's actor restarts", || {
        job_node(&tree, "health-check").restarts >= 1
    })
    .await;

    // The panicking run gave its lock back: another node runs that job now.
    let (other, other_tree) = start(Scheduler::new(other_store.clone()).job(
        counting(JobKind::HealthCheck, &Arc::default()),
        Duration::ZERO,
    ))
    .await;
    let report = other
        .run(run(JobKind::HealthCheck))
        .await
        .expect("the lock is free after a panic");
    assert_eq!(report.summary, "counted 1");
    tree.shutdown().await;
    other_tree.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_past_its_deadline_is_cut_off_and_its_actor_restarts() {
    let db = TestDb::new().await;
    let other_store = TestDb::connect(&db.admin, &db.name).await;
    let runs = Arc::new(Runs::default());
    // The first run hangs; its 300 ms deadline cuts it off.
    let hangs_once = timed(&runs, |n| {
        Duration::from_secs(if n == 1 { 3600 } else { 0 })
    })
    .deadline(Duration::from_millis(300))
    .backoff(fixed(Duration::from_millis(100)));
    let (handle, tree) =
        start(Scheduler::new(db.store.clone()).job(hangs_once, Duration::ZERO)).await;

    let failure = handle
        .run(run(JobKind::HealthCheck))
        .await
        .expect_err("the run was cut off");
    assert_eq!(failure.class, ErrorClass::Retryable);
    assert!(failure.reason.contains("deadline"), "{}", failure.reason);
    eventually(
        Duration::from_secs(5),
        "the cut-off run is reported",
        || {
            handle
                .reports()
                .get(JobKind::HealthCheck)
                .is_some_and(|r| r.outcome == RunOutcome::Failed && r.report.summary == CUT_OFF)
        },
    )
    .await;
    eventually(Duration::from_secs(5), "the stuck actor restarts", || {
        let node = job_node(&tree, "health-check");
        node.restarts == 1 && node.status == NodeStatus::Running
    })
    .await;
    let error = job_node(&tree, "health-check")
        .last_error
        .unwrap_or_default();
    assert!(error.contains("stuck"), "{error}");

    // The lock's connection was closed, so the lock is free for any node.
    no_advisory_locks(&db.store).await;
    let (other, other_tree) = start(Scheduler::new(other_store.clone()).job(
        counting(JobKind::HealthCheck, &Arc::default()),
        Duration::ZERO,
    ))
    .await;
    let report = other
        .run(run(JobKind::HealthCheck))
        .await
        .expect("the lock is free after a cut-off run");
    assert_eq!(report.summary, "counted 1");
    // And the restarted actor runs the job again.
    let again = handle.run(run(JobKind::HealthCheck)).await.expect("ran");
    assert_eq!(again.summary, "slept (run 2)");
    tree.shutdown().await;
    other_tree.shutdown().await;
}
