//! The scheduler against a real Postgres: jobs run on their intervals and on demand, never on
//! two nodes at once (two schedulers on two stores of one database), and a failing or
//! panicking job neither stops the scheduler nor keeps its lock.

mod support;

use artel_actors::scheduler::{
    Job, LastReports, RunOutcome, SKIPPED_ELSEWHERE, SKIPPED_HERE, Scheduler,
};
use artel_actors::store::Store;
use artel_messages::scheduler::{JobKind, RunJob};
use artel_messages::{ErrorClass, Failure};
use artel_supervisors::{Addr, Supervisor, SupervisorHandle};
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

/// Runs of one job across nodes: how many are going now, and the most ever at once.
#[derive(Default)]
struct Overlap {
    now: AtomicUsize,
    most: AtomicUsize,
    runs: AtomicUsize,
}

/// A job that takes 500 ms and records how many of its runs overlap, wherever they run.
fn sleeping(overlap: &Arc<Overlap>) -> Job {
    let overlap = overlap.clone();
    Job::new(JobKind::HealthCheck, move || {
        let overlap = overlap.clone();
        async move {
            let now = overlap.now.fetch_add(1, Ordering::SeqCst) + 1;
            overlap.most.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(500)).await;
            overlap.now.fetch_sub(1, Ordering::SeqCst);
            overlap.runs.fetch_add(1, Ordering::SeqCst);
            Ok("slept".to_owned())
        }
    })
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

/// A job that panics on its first `panics` runs, then succeeds; counts every run.
fn panicking_at_first(kind: JobKind, panics: usize, runs: &Arc<AtomicUsize>) -> Job {
    let runs = runs.clone();
    Job::new(kind, move || {
        let runs = runs.clone();
        async move {
            let n = runs.fetch_add(1, Ordering::SeqCst) + 1;
            if n <= panics {
                panic!("job exploded on run {n}");
            }
            Ok(format!("run {n} worked"))
        }
    })
}

async fn start(scheduler: Scheduler) -> (Addr<Scheduler>, SupervisorHandle) {
    let (addr, spec) = scheduler.child_spec_with_addr("scheduler");
    let tree = Supervisor::new("test").child(spec).start().await;
    (addr, tree)
}

/// Waits until `done()` or fails the test after `limit`.
async fn eventually(limit: Duration, what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
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

#[tokio::test(flavor = "multi_thread")]
async fn a_job_runs_on_its_interval() {
    let db = TestDb::new().await;
    let runs = Arc::new(AtomicUsize::new(0));
    let scheduler = Scheduler::new(db.store.clone()).job(
        counting(JobKind::SessionReaper, &runs),
        Duration::from_millis(100),
    );
    let reports = scheduler.reports();
    let (_addr, tree) = start(scheduler).await;

    eventually(Duration::from_secs(10), "three runs", || {
        runs.load(Ordering::SeqCst) >= 3
    })
    .await;
    let last = reports
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
    let (addr, tree) = start(scheduler).await;

    let report = addr
        .call(RunJob {
            job: JobKind::RepoSync,
        })
        .await
        .expect("the scheduler answers")
        .expect("the job ran");
    assert_eq!(report.job, JobKind::RepoSync);
    assert_eq!(report.summary, "counted 1");
    assert!(report.started_at <= report.finished_at);
    assert_eq!(runs.load(Ordering::SeqCst), 1);

    let last = addr.call(LastReports).await.expect("the scheduler answers");
    assert_eq!(
        last.len(),
        1,
        "only the job that ran has a report: {last:?}"
    );
    assert_eq!(last[0].report, report);
    assert_eq!(last[0].outcome, RunOutcome::Succeeded);

    let unknown = addr
        .call(RunJob {
            job: JobKind::HealthCheck,
        })
        .await
        .expect("the scheduler answers")
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
    let overlap = Arc::new(Overlap::default());
    let node_a =
        Scheduler::new(db.store.clone()).job(sleeping(&overlap), Duration::from_millis(100));
    let node_b =
        Scheduler::new(other_store.clone()).job(sleeping(&overlap), Duration::from_millis(100));
    let (reports_a, reports_b) = (node_a.reports(), node_b.reports());
    let (_a, tree_a) = start(node_a).await;
    let (_b, tree_b) = start(node_b).await;

    let skipped = |reports: &artel_actors::scheduler::JobReports| {
        reports
            .get(JobKind::HealthCheck)
            .is_some_and(|r| r.outcome == RunOutcome::Skipped)
    };
    let seen_skipped = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(2500) {
        if skipped(&reports_a) || skipped(&reports_b) {
            seen_skipped.fetch_add(1, Ordering::SeqCst);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tree_a.shutdown().await;
    tree_b.shutdown().await;

    assert_eq!(
        overlap.most.load(Ordering::SeqCst),
        1,
        "two nodes ran the job at once"
    );
    let runs = overlap.runs.load(Ordering::SeqCst);
    assert!(
        (3..=6).contains(&runs),
        "about one 500 ms run at a time in 2.5 s, got {runs}"
    );
    assert!(
        seen_skipped.load(Ordering::SeqCst) > 0,
        "the node without the lock reports its runs skipped"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_node_without_the_lock_reports_skipped() {
    let db = TestDb::new().await;
    let other_store = TestDb::connect(&db.admin, &db.name).await;
    let overlap = Arc::new(Overlap::default());
    let (a, tree_a) =
        start(Scheduler::new(db.store.clone()).job(sleeping(&overlap), Duration::ZERO)).await;
    let (b, tree_b) =
        start(Scheduler::new(other_store.clone()).job(sleeping(&overlap), Duration::ZERO)).await;

    let run = RunJob {
        job: JobKind::HealthCheck,
    };
    let first = a.call(run.clone());
    let second = async {
        // Asked while the first node is surely inside its 500 ms run.
        tokio::time::sleep(Duration::from_millis(150)).await;
        b.call(run.clone()).await
    };
    let (first, second) = tokio::join!(first, second);
    let first = first.expect("node a answers").expect("node a ran it");
    let second = second.expect("node b answers").expect("a skip is no error");
    assert_eq!(first.summary, "slept");
    assert_eq!(second.summary, SKIPPED_ELSEWHERE);
    assert_eq!(overlap.runs.load(Ordering::SeqCst), 1);

    // The lock is free again: node b takes it now.
    let again = b.call(run).await.expect("node b answers").expect("ran");
    assert_eq!(again.summary, "slept");
    assert_eq!(advisory_locks(&db.store).await, 0);
    tree_a.shutdown().await;
    tree_b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_does_not_overlap_itself_on_one_node() {
    let db = TestDb::new().await;
    let overlap = Arc::new(Overlap::default());
    // Ticks every 100 ms, runs of 500 ms: most ticks find the previous run still going.
    let scheduler =
        Scheduler::new(db.store.clone()).job(sleeping(&overlap), Duration::from_millis(100));
    let (addr, tree) = start(scheduler).await;

    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        assert!(
            Instant::now() < deadline,
            "RunJob never met a run in flight"
        );
        eventually(Duration::from_secs(5), "a tick's run is in flight", || {
            overlap.now.load(Ordering::SeqCst) == 1
        })
        .await;
        let report = addr
            .call(RunJob {
                job: JobKind::HealthCheck,
            })
            .await
            .expect("answers")
            .expect("a skip or a run");
        if report.summary == SKIPPED_HERE {
            break;
        }
    }
    tokio::time::sleep(Duration::from_millis(1200)).await;
    tree.shutdown().await;
    assert_eq!(overlap.most.load(Ordering::SeqCst), 1, "runs overlapped");
    assert!(overlap.runs.load(Ordering::SeqCst) >= 2);
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
        .call(RunJob {
            job: JobKind::RepoSync,
        })
        .await
        .expect("answers")
        .expect_err("the job failed");
    assert_eq!(failure.reason, "run 1 failed");
    assert_eq!(failure.class, ErrorClass::Retryable);
    let last = a.call(LastReports).await.expect("answers");
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
        .call(RunJob {
            job: JobKind::RepoSync,
        })
        .await
        .expect("answers")
        .expect("node b ran it after node a's failure");
    assert_eq!(report.summary, "counted 1");

    // On a timer: two failures, then the next ticks still run and succeed.
    let runs = Arc::new(AtomicUsize::new(0));
    let scheduler = Scheduler::new(db.store.clone()).job(
        failing_at_first(JobKind::WorkerReaper, 2, &runs),
        Duration::from_millis(100),
    );
    let reports = scheduler.reports();
    let (_c, tree_c) = start(scheduler).await;
    eventually(Duration::from_secs(10), "a run after the failures", || {
        reports
            .get(JobKind::WorkerReaper)
            .is_some_and(|r| r.outcome == RunOutcome::Succeeded)
    })
    .await;
    assert!(runs.load(Ordering::SeqCst) >= 3);
    tree_a.shutdown().await;
    tree_b.shutdown().await;
    tree_c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_panicking_job_does_not_take_the_scheduler_down() {
    let db = TestDb::new().await;
    let other_store = TestDb::connect(&db.admin, &db.name).await;
    let panics = Arc::new(AtomicUsize::new(0));
    let ticking = Arc::new(AtomicUsize::new(0));
    let steady = Arc::new(AtomicUsize::new(0));
    let scheduler = Scheduler::new(db.store.clone())
        .job(
            panicking_at_first(JobKind::HealthCheck, usize::MAX, &panics),
            Duration::ZERO,
        )
        .job(
            panicking_at_first(JobKind::SessionReaper, 2, &ticking),
            Duration::from_millis(100),
        )
        .job(counting(JobKind::RepoSync, &steady), Duration::ZERO);
    let reports = scheduler.reports();
    let (addr, tree) = start(scheduler).await;

    let failure = addr
        .call(RunJob {
            job: JobKind::HealthCheck,
        })
        .await
        .expect("the scheduler survives to answer")
        .expect_err("a panic is a failure");
    assert!(
        failure.reason.contains("panicked") && failure.reason.contains("job exploded on run 1"),
        "{}",
        failure.reason
    );

    // The same actor still answers, and the ticking job recovers after its panics.
    let report = addr
        .call(RunJob {
            job: JobKind::RepoSync,
        })
        .await
        .expect("answers")
        .expect("ran");
    assert_eq!(report.summary, "counted 1");
    eventually(Duration::from_secs(10), "the ticking job recovers", || {
        reports
            .get(JobKind::SessionReaper)
            .is_some_and(|r| r.outcome == RunOutcome::Succeeded)
    })
    .await;
    let snapshot = tree.registry().snapshot();
    let node = snapshot
        .find("test/scheduler")
        .expect("the scheduler is in the tree");
    assert_eq!(node.restarts, 0, "the scheduler never restarted");

    // The panicking run gave its lock back: another node runs that job now.
    let (other, other_tree) = start(Scheduler::new(other_store.clone()).job(
        counting(JobKind::HealthCheck, &Arc::default()),
        Duration::ZERO,
    ))
    .await;
    let report = other
        .call(RunJob {
            job: JobKind::HealthCheck,
        })
        .await
        .expect("answers")
        .expect("the lock is free after a panic");
    assert_eq!(report.summary, "counted 1");
    tree.shutdown().await;
    other_tree.shutdown().await;
}
