//! The scheduler: periodic jobs, each run on one node at a time.
//!
//! Health checks, the session and worker reapers and the repository sync must run on a
//! timer — but when several artel processes share one database, only one of them may run a
//! given job at a time (two health checks would restart the same dead service twice). So
//! every run first takes a Postgres **session-level advisory lock** keyed by its
//! [`JobKind`] ([`lock_key`]), on a connection of its own from the pool, and gives it back
//! on that same connection when the run is over, whether the job succeeded, failed or
//! panicked. A node that finds the lock taken skips that run: another node is doing the work,
//! which is not an error. A connection whose unlock did not go through is closed instead of
//! returned to the pool, and closing a session releases its locks.
//!
//! ```text
//! scheduler (actor)
//!   timer per job ─Tick─▶ launch ─spawn─▶ run: try lock ─▶ job ─▶ unlock ─▶ report
//!   RunJob ───────────▶ launch ─spawn─▶ … (the handler waits for the report)
//! ```
//!
//! Runs are tokio tasks, not handler bodies: a slow job never makes the actor look stuck, a
//! panic in a job is caught and reported as a failure, and a failing job is logged at `warn`
//! and simply runs again on its next tick. A job never overlaps with itself on one node: a
//! tick that finds the previous run still going skips. The last outcome of each job is kept
//! in [`JobReports`], for `/metrics` and the CLI.

use crate::store::Store;
use artel_messages::scheduler::{JobKind, JobReport, RunJob};
use artel_messages::{Failure, Request, Timestamp};
use artel_supervisors::{Actor, Addr, ChildSpec, Context, Handler};
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use parking_lot::{Mutex, RwLock};
use serde::Serialize;
use sqlx::pool::PoolConnection;
use sqlx::{PgPool, Postgres};
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

/// The summary of a run skipped because another node holds the job's lock.
pub const SKIPPED_ELSEWHERE: &str = "skipped: another node is running this job";
/// The summary of a run skipped because this node's previous run is still going.
pub const SKIPPED_HERE: &str = "skipped: the previous run is still going";
/// How long a [`RunJob`] may wait for its run before the scheduler counts as stuck.
pub const RUN_NOW_DEADLINE: Duration = Duration::from_secs(15 * 60);

/// The advisory lock key of a job: `"artel_j"` in ASCII plus one letter per kind, so keys are
/// stable across releases and cannot collide with the event journal's lock.
pub const fn lock_key(kind: JobKind) -> i64 {
    const BASE: i64 = 0x6172_7465_6c5f_6a00; // "artel_j\0"
    let letter = match kind {
        JobKind::RepoSync => b'r',
        JobKind::HealthCheck => b'h',
        JobKind::SessionReaper => b's',
        JobKind::WorkerReaper => b'w',
    };
    BASE | letter as i64
}

/// What one run of a job does: a one-line summary, or a classified failure.
type RunFn = dyn Fn() -> BoxFuture<'static, Result<String, Failure>> + Send + Sync;

/// A periodic job: its kind and how to run it once. Cheap to clone.
#[derive(Clone)]
pub struct Job {
    /// Which job (also its lock key).
    kind: JobKind,
    /// Starts one run.
    run: Arc<RunFn>,
}

impl Job {
    /// A job of `kind` whose every run is `run()`: a future answering a one-line summary of
    /// what it did (`synced 4 repositories`) or a [`Failure`].
    pub fn new<F, Fut>(kind: JobKind, run: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<String, Failure>> + Send + 'static,
    {
        Self {
            kind,
            run: Arc::new(move || Box::pin(run())),
        }
    }

    /// Which job this is.
    pub fn kind(&self) -> JobKind {
        self.kind
    }
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job").field("kind", &self.kind).finish()
    }
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunOutcome {
    /// The job ran and did its work; the summary says what it did.
    Succeeded,
    /// The job failed or panicked; the summary is the reason. Its next tick tries again.
    Failed,
    /// Another node held the job's lock; this node did nothing.
    Skipped,
}

/// The last run of one job on this node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LastRun {
    /// How it ended.
    pub outcome: RunOutcome,
    /// When it ran and what it did (or why it failed, or that it was skipped).
    pub report: JobReport,
}

/// The last run of each job on this node (cheap to clone; clones share the reports).
#[derive(Clone, Default)]
pub struct JobReports(Arc<RwLock<HashMap<JobKind, LastRun>>>);

impl JobReports {
    /// The last run of `kind`, if it ran (or was skipped) since this process started.
    pub fn get(&self, kind: JobKind) -> Option<LastRun> {
        self.0.read().get(&kind).cloned()
    }

    /// The last run of every job that has one, in [`JobKind::ALL`] order.
    pub fn all(&self) -> Vec<LastRun> {
        let runs = self.0.read();
        JobKind::ALL
            .iter()
            .filter_map(|kind| runs.get(kind).cloned())
            .collect()
    }

    fn record(&self, outcome: RunOutcome, report: JobReport) {
        self.0
            .write()
            .insert(report.job, LastRun { outcome, report });
    }
}

/// "What did each job do last?" — answers [`JobReports::all`].
#[derive(Debug, Clone, Copy)]
pub struct LastReports;

impl Request for LastReports {
    type Reply = Vec<LastRun>;
}

/// "Run `job` now, on schedule" — sent by the scheduler's own timers. Unlike [`RunJob`] it
/// does not wait for the run.
#[derive(Debug, Clone, Copy)]
pub struct Tick {
    /// Which job.
    pub job: JobKind,
}

impl Request for Tick {
    type Reply = ();
}

/// What outlives one run of the actor: runs in flight and the last reports.
#[derive(Default)]
struct Shared {
    /// Jobs with a run in flight on this node.
    running: Mutex<HashSet<JobKind>>,
    /// The last run of each job.
    reports: JobReports,
}

/// Runs each job on its interval, one node at a time (see the module docs).
///
/// Cheap to clone: the supervisor's factory clones it for every restart, and the clones share
/// the runs in flight and the reports.
#[derive(Clone)]
pub struct Scheduler {
    /// Where the advisory locks are taken.
    store: Store,
    /// The jobs and their intervals, one per kind.
    jobs: Vec<(Job, Duration)>,
    /// Runs in flight and the last reports, across restarts.
    shared: Arc<Shared>,
}

impl Scheduler {
    /// A scheduler with no jobs yet, taking its locks in `store`'s database.
    pub fn new(store: Store) -> Self {
        Self {
            store,
            jobs: Vec::new(),
            shared: Arc::default(),
        }
    }

    /// Adds `job`, run every `every` (first one interval after start). A zero interval arms
    /// no timer: the job runs on [`RunJob`] only. A second job of the same kind replaces the
    /// first (one kind, one lock).
    pub fn job(mut self, job: Job, every: Duration) -> Self {
        self.jobs.retain(|(j, _)| j.kind != job.kind);
        self.jobs.push((job, every));
        self
    }

    /// The kinds of the jobs it runs, in the order they were added.
    pub fn kinds(&self) -> Vec<JobKind> {
        self.jobs.iter().map(|(job, _)| job.kind).collect()
    }

    /// The last run of each job, readable while the scheduler runs.
    pub fn reports(&self) -> JobReports {
        self.shared.reports.clone()
    }

    /// Its child spec under `name` (role `scheduler`).
    pub fn child_spec(self, name: impl Into<String>) -> ChildSpec {
        self.child_spec_with_addr(name).1
    }

    /// Its address and child spec under `name` (role `scheduler`); the address takes
    /// [`RunJob`] and [`LastReports`] and stays valid across restarts.
    pub fn child_spec_with_addr(self, name: impl Into<String>) -> (Addr<Self>, ChildSpec) {
        let (addr, spec) = ChildSpec::actor(name, move || self.clone());
        (addr, spec.role("scheduler"))
    }

    fn find(&self, kind: JobKind) -> Option<&Job> {
        self.jobs
            .iter()
            .find(|(job, _)| job.kind == kind)
            .map(|(job, _)| job)
    }

    /// Starts a run of `job` as a task, unless one is in flight on this node (`None`).
    fn launch(&self, job: &Job) -> Option<tokio::task::JoinHandle<Result<JobReport, Failure>>> {
        let running = InFlight::claim(&self.shared, job.kind)?;
        let (store, job) = (self.store.clone(), job.clone());
        let reports = self.shared.reports.clone();
        Some(tokio::spawn(async move {
            let _running = running;
            run_once(store.pool(), &job, &reports).await
        }))
    }
}

/// A job's run in flight on this node; dropping it (however the run ends) frees the slot.
struct InFlight {
    shared: Arc<Shared>,
    kind: JobKind,
}

impl InFlight {
    fn claim(shared: &Arc<Shared>, kind: JobKind) -> Option<Self> {
        shared.running.lock().insert(kind).then(|| Self {
            shared: shared.clone(),
            kind,
        })
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.shared.running.lock().remove(&self.kind);
    }
}

/// One run: take the lock (or skip), run the job with panics caught, give the lock back,
/// record and log the outcome.
async fn run_once(pool: &PgPool, job: &Job, reports: &JobReports) -> Result<JobReport, Failure> {
    let started_at = Timestamp::now();
    let report = |summary: String| JobReport {
        job: job.kind,
        started_at,
        finished_at: Timestamp::now(),
        summary,
    };
    let lock = match AdvisoryLock::try_take(pool, lock_key(job.kind)).await {
        Ok(Some(lock)) => lock,
        Ok(None) => {
            tracing::debug!(job = %job.kind, "another node is running this job: skipped");
            let skipped = report(SKIPPED_ELSEWHERE.to_owned());
            reports.record(RunOutcome::Skipped, skipped.clone());
            return Ok(skipped);
        }
        Err(err) => {
            let failure = Failure::retryable(format!("cannot take the job's lock: {err}"));
            return Err(failed(job.kind, failure, report, reports));
        }
    };
    let run = job.run.clone();
    let result = AssertUnwindSafe(async move { run().await })
        .catch_unwind()
        .await
        .unwrap_or_else(|panic| {
            Err(Failure::retryable(format!(
                "the job panicked: {}",
                panic_message(panic.as_ref())
            )))
        });
    lock.give_back().await;
    match result {
        Ok(summary) => {
            tracing::debug!(job = %job.kind, %summary, "job ran");
            let done = report(summary);
            reports.record(RunOutcome::Succeeded, done.clone());
            Ok(done)
        }
        Err(failure) => Err(failed(job.kind, failure, report, reports)),
    }
}

/// Logs and records a failed run; returns its failure.
fn failed(
    kind: JobKind,
    failure: Failure,
    report: impl FnOnce(String) -> JobReport,
    reports: &JobReports,
) -> Failure {
    tracing::warn!(job = %kind, reason = %failure.reason, "job failed; its next tick tries again");
    reports.record(RunOutcome::Failed, report(failure.reason.clone()));
    failure
}

/// The text of a panic's payload.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".to_owned())
}

/// A session-level advisory lock held on one pooled connection.
///
/// Given back with [`AdvisoryLock::give_back`]; if that does not happen (the run's task was
/// dropped) or does not go through, the connection is detached from the pool and dropped,
/// which ends the session and so releases the lock — it never returns to the pool locked.
struct AdvisoryLock {
    /// The connection that holds the lock; `None` once given back.
    conn: Option<PoolConnection<Postgres>>,
    /// The lock's key.
    key: i64,
}

impl AdvisoryLock {
    /// Takes the lock if no session holds it; `None` when one does.
    async fn try_take(pool: &PgPool, key: i64) -> Result<Option<Self>, sqlx::Error> {
        let mut lock = Self {
            conn: Some(pool.acquire().await?),
            key,
        };
        let Some(conn) = lock.conn.as_mut() else {
            return Ok(None);
        };
        let taken: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(key)
            .fetch_one(&mut **conn)
            .await?;
        if taken {
            Ok(Some(lock))
        } else {
            // Not ours: the connection goes back to the pool as it came.
            drop(lock.conn.take());
            Ok(None)
        }
    }

    /// Releases the lock on the connection that took it, then returns the connection to the
    /// pool; closes the connection instead when the release does not go through.
    async fn give_back(mut self) {
        let Some(mut conn) = self.conn.take() else {
            return;
        };
        let released: Result<bool, sqlx::Error> =
            sqlx::query_scalar("SELECT pg_advisory_unlock($1)")
                .bind(self.key)
                .fetch_one(&mut *conn)
                .await;
        match released {
            Ok(true) => {}
            outcome => {
                tracing::warn!(
                    key = self.key,
                    ?outcome,
                    "cannot release a job's lock: closing its connection"
                );
                let _ = sqlx::Connection::close(conn.detach()).await;
            }
        }
    }
}

impl Drop for AdvisoryLock {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            drop(conn.detach());
        }
    }
}

impl Actor for Scheduler {
    async fn started(&mut self, ctx: &mut Context<Self>) -> Result<(), Failure> {
        for (job, every) in &self.jobs {
            if !every.is_zero() {
                let kind = job.kind;
                ctx.every(*every, move || Tick { job: kind });
            }
        }
        Ok(())
    }
}

impl Handler<Tick> for Scheduler {
    async fn handle(&mut self, msg: Tick, _ctx: &mut Context<Self>) {
        let Some(job) = self.find(msg.job) else {
            return;
        };
        if self.launch(job).is_none() {
            tracing::debug!(job = %msg.job, "{SKIPPED_HERE}");
        }
    }
}

impl Handler<RunJob> for Scheduler {
    async fn handle(
        &mut self,
        msg: RunJob,
        _ctx: &mut Context<Self>,
    ) -> Result<JobReport, Failure> {
        let Some(job) = self.find(msg.job) else {
            let known: Vec<&str> = self.jobs.iter().map(|(j, _)| j.kind.as_str()).collect();
            return Err(Failure::fatal(format!(
                "this scheduler has no job `{}`; it runs: {}",
                msg.job,
                if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.join(", ")
                }
            )));
        };
        let now = Timestamp::now();
        let Some(run) = self.launch(job) else {
            return Ok(JobReport {
                job: msg.job,
                started_at: now,
                finished_at: now,
                summary: SKIPPED_HERE.to_owned(),
            });
        };
        run.await
            .unwrap_or_else(|err| Err(Failure::retryable(format!("the job's run was lost: {err}"))))
    }

    fn deadline(&self, _msg: &RunJob) -> Option<Duration> {
        Some(RUN_NOW_DEADLINE)
    }
}

impl Handler<LastReports> for Scheduler {
    async fn handle(&mut self, _msg: LastReports, _ctx: &mut Context<Self>) -> Vec<LastRun> {
        self.shared.reports.all()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_keys_are_distinct_and_stable() {
        let keys: HashSet<i64> = JobKind::ALL.iter().map(|k| lock_key(*k)).collect();
        assert_eq!(keys.len(), JobKind::ALL.len());
        assert_eq!(lock_key(JobKind::HealthCheck), 0x6172_7465_6c5f_6a68);
    }

    #[test]
    fn a_job_is_in_flight_once_per_node() {
        let shared = Arc::new(Shared::default());
        let first = InFlight::claim(&shared, JobKind::RepoSync);
        assert!(first.is_some());
        assert!(InFlight::claim(&shared, JobKind::RepoSync).is_none());
        assert!(InFlight::claim(&shared, JobKind::HealthCheck).is_some());
        drop(first);
        assert!(InFlight::claim(&shared, JobKind::RepoSync).is_some());
    }

    #[test]
    fn panic_messages_are_read() {
        let payload: Box<dyn std::any::Any + Send> = Box::new("boom");
        assert_eq!(panic_message(payload.as_ref()), "boom");
        let payload: Box<dyn std::any::Any + Send> = Box::new(String::from("bang"));
        assert_eq!(panic_message(payload.as_ref()), "bang");
    }
}
