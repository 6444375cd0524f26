//! The scheduler: periodic jobs, one supervised actor per job, each run on one node at a time.
//!
//! Health checks, the session and worker reapers and the repository sync must run on a
//! timer. Each job is its own actor under the `scheduler` supervisor (`one_for_one`), with its
//! own child spec, so a job that panics or hangs is restarted alone, after its own backoff,
//! while its siblings keep ticking:
//!
//! ```text
//! scheduler            supervisor, one_for_one
//! ├── health-check     scheduler_job: permanent, own backoff, deadline sized to the job
//! ├── session-reaper   scheduler_job
//! ├── worker-reaper    scheduler_job
//! └── repo-sync        scheduler_job
//!
//! job actor:  timer ─Tick─▶ run: try lock ─▶ job ─▶ unlock ─▶ report
//!             RunJob ─────▶ run (the caller gets the report)
//! ```
//!
//! A run happens inside its job's actor, in the handler, so the runtime's rules are the job's
//! rules ([`Job`] sets the two numbers that differ per job):
//! - **a returned failure** is recorded, logged at `warn`, and the job runs again on its next
//!   tick: the actor does not restart (a database blip is not a reason to);
//! - **a panic** is recorded as a failed run, the job's lock is given back, and the panic goes
//!   on to the runtime: the actor fails and its child spec restarts it after its backoff;
//! - **a run past its deadline** is cancelled by the runtime (the actor counts as stuck and
//!   restarts the same way); the cancelled run is recorded as failed and its lock's
//!   connection is closed, which releases the lock.
//!
//! A job never overlaps with itself on one node: its actor runs one message at a time, and a
//! tick that fired while the previous run was still going is skipped rather than run late (so
//! a slow run is not followed by a burst of queued ones). A [`RunJob`] asked for during a run
//! waits for it and then runs.
//!
//! When several artel processes share one database, only one of them may run a given job at a
//! time (two health checks would restart the same dead service twice). So every run first
//! takes a Postgres **session-level advisory lock** keyed by its [`JobKind`] ([`lock_key`]),
//! on a connection of its own from the pool, and gives it back on that same connection when
//! the run is over, whether the job succeeded, failed or panicked. A node that finds the lock
//! taken skips that run: another node is doing the work, which is not an error. A connection
//! whose unlock did not go through (or whose run was cancelled) is closed instead of returned
//! to the pool, and closing a session releases its locks.
//!
//! The last outcome of each job is kept in [`JobReports`], for `/metrics` and the CLI; the
//! [`SchedulerHandle`] runs a job now and reads them.

use crate::store::Store;
use artel_messages::scheduler::{JobKind, JobReport, RunJob};
use artel_messages::{Classify, Failure, Request, Timestamp};
use artel_supervisors::exit::panic_message;
use artel_supervisors::{
    Actor, Addr, Backoff, ChildSpec, Context, Handler, Intensity, Restart, Strategy, Supervisor,
};
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use parking_lot::RwLock;
use serde::Serialize;
use sqlx::pool::PoolConnection;
use sqlx::{PgPool, Postgres};
use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// The summary of a run skipped because another node holds the job's lock.
pub const SKIPPED_ELSEWHERE: &str = "skipped: another node is running this job";
/// The summary of a run that was cancelled before it finished: past its deadline, or artel
/// stopping.
pub const CUT_OFF: &str = "cut off: the run did not finish (past its deadline, or stopped)";
/// Why a tick does not run: it fired while this node's previous run was still going.
const SKIPPED_HERE: &str = "skipped: the previous run is still going";

/// The role of every job's node in the tree.
const JOB_ROLE: &str = "scheduler_job";

/// The scheduler supervisor's restart intensity. Each job's backoff starts at 1 s or more and
/// doubles, and a restarted job first ticks one interval (at least 1 s) after it starts, so even
/// a job that panics on every run restarts at most about 7 times in its first minute and fewer
/// later: 24 restarts within 60 s is more than the four jobs together reach, so one broken job
/// never takes its siblings down by escalation.
pub const SCHEDULER_INTENSITY: Intensity = Intensity {
    max_restarts: 24,
    within: Duration::from_secs(60),
};

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

/// The name of a job's node in the tree.
fn node_name(kind: JobKind) -> &'static str {
    match kind {
        JobKind::HealthCheck => "health-check",
        JobKind::SessionReaper => "session-reaper",
        JobKind::WorkerReaper => "worker-reaper",
        JobKind::RepoSync => "repo-sync",
    }
}

/// How long one run of a job may take before its actor counts as stuck, by default.
fn default_deadline(kind: JobKind) -> Duration {
    match kind {
        // Restarts each dead service and waits for it to answer, one after another.
        JobKind::HealthCheck => Duration::from_secs(10 * 60),
        // One UPDATE.
        JobKind::SessionReaper => Duration::from_secs(60),
        // Stops workers of finished tasks and removes stray sandboxes.
        JobKind::WorkerReaper => Duration::from_secs(5 * 60),
        // Reads the head of `main` in every project's repository.
        JobKind::RepoSync => Duration::from_secs(5 * 60),
    }
}

/// The backoff between restarts of a job's actor, by default: short for the health check (a
/// dead service waits for it), longer for the housekeeping jobs. Reset after 15 minutes up, a
/// span longer than the default intervals, so a job that panics on every tick keeps backing off.
fn default_backoff(kind: JobKind) -> Backoff {
    let (initial, max) = match kind {
        JobKind::HealthCheck => (Duration::from_secs(1), Duration::from_secs(60)),
        JobKind::SessionReaper | JobKind::WorkerReaper => {
            (Duration::from_secs(5), Duration::from_secs(5 * 60))
        }
        JobKind::RepoSync => (Duration::from_secs(10), Duration::from_secs(10 * 60)),
    };
    Backoff {
        initial,
        multiplier: 2.0,
        max,
        jitter: 0.2,
        reset_after: Duration::from_secs(15 * 60),
    }
}

/// What one run of a job does: a one-line summary, or a classified failure.
type RunFn = dyn Fn() -> BoxFuture<'static, Result<String, Failure>> + Send + Sync;

/// A periodic job: its kind, how to run it once, and its actor's deadline and backoff.
/// Cheap to clone.
#[derive(Clone)]
pub struct Job {
    /// Which job (also its lock key and its node's name).
    kind: JobKind,
    /// Starts one run.
    run: Arc<RunFn>,
    /// How long one run may take before its actor counts as stuck and restarts.
    deadline: Duration,
    /// The backoff between restarts of its actor.
    backoff: Backoff,
}

impl Job {
    /// A job of `kind` whose every run is `run()`: a future answering a one-line summary of
    /// what it did (`synced 4 repositories`) or a [`Failure`]. Its deadline and backoff are
    /// the defaults for its kind (see the README's restart-policy table).
    pub fn new<F, Fut>(kind: JobKind, run: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<String, Failure>> + Send + 'static,
    {
        Self {
            kind,
            run: Arc::new(move || Box::pin(run())),
            deadline: default_deadline(kind),
            backoff: default_backoff(kind),
        }
    }

    /// How long one run may take before its actor counts as stuck and restarts.
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// The backoff between restarts of its actor (after a panic or a run past its deadline).
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// Which job this is.
    pub fn kind(&self) -> JobKind {
        self.kind
    }
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("kind", &self.kind)
            .field("deadline", &self.deadline)
            .field("backoff", &self.backoff)
            .finish()
    }
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunOutcome {
    /// The job ran and did its work; the summary says what it did.
    Succeeded,
    /// The job failed, panicked or was cut off; the summary is the reason. A failure is tried
    /// again on the next tick; a panic or a cut-off run also restarts the job's actor.
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

/// Builds the scheduler: its jobs and their intervals (see the module docs).
pub struct Scheduler {
    /// Where the advisory locks are taken.
    store: Store,
    /// The jobs and their intervals, one per kind, in the order they were added.
    jobs: Vec<(Job, Duration)>,
}

impl Scheduler {
    /// A scheduler with no jobs yet, taking its locks in `store`'s database.
    pub fn new(store: Store) -> Self {
        Self {
            store,
            jobs: Vec::new(),
        }
    }

    /// Adds `job`, run every `every` (first one interval after its actor starts). A zero
    /// interval arms no timer: the job runs on [`RunJob`] only. A second job of the same kind
    /// replaces the first (one kind, one lock, one node).
    pub fn job(mut self, job: Job, every: Duration) -> Self {
        self.jobs.retain(|(j, _)| j.kind != job.kind);
        self.jobs.push((job, every));
        self
    }

    /// The `scheduler` supervisor named `name` (`one_for_one`, [`SCHEDULER_INTENSITY`]), one
    /// child per job in the order they were added, and the handle that runs them on demand
    /// and reads their reports (valid across restarts).
    pub fn into_supervisor(self, name: impl Into<String>) -> (SchedulerHandle, Supervisor) {
        let reports = JobReports::default();
        let mut tree = Supervisor::new(name)
            .strategy(Strategy::OneForOne)
            .intensity(SCHEDULER_INTENSITY);
        let mut jobs = Vec::with_capacity(self.jobs.len());
        for (job, every) in self.jobs {
            let kind = job.kind;
            let (addr, spec) = JobActor::child_spec(self.store.clone(), job, every, &reports);
            jobs.push((kind, addr));
            tree = tree.child(spec);
        }
        let handle = SchedulerHandle {
            jobs: jobs.into(),
            reports,
        };
        (handle, tree)
    }
}

/// Runs a scheduler's jobs now and reads their last reports. Cheap to clone.
#[derive(Clone)]
pub struct SchedulerHandle {
    /// Each job's actor, in the order the jobs were added.
    jobs: Arc<[(JobKind, Addr<JobActor>)]>,
    /// The last run of each job.
    reports: JobReports,
}

impl SchedulerHandle {
    /// Runs `msg.job` now in its actor (after the run in progress, if any) and answers what it
    /// did. A failed run answers its failure; a run that panicked or passed its deadline
    /// answers a retryable failure saying so (its actor is restarting); a job this scheduler
    /// does not run is a fatal failure naming the ones it does.
    pub async fn run(&self, msg: RunJob) -> Result<JobReport, Failure> {
        let Some((_, addr)) = self.jobs.iter().find(|(kind, _)| *kind == msg.job) else {
            let known: Vec<&str> = self.jobs.iter().map(|(kind, _)| kind.as_str()).collect();
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
        addr.call(msg).await.map_err(|err| err.to_failure())?
    }

    /// The last run of each job, readable while the scheduler runs.
    pub fn reports(&self) -> &JobReports {
        &self.reports
    }
}

/// "Run the job, on schedule" — sent by the job actor's own timer.
#[derive(Debug, Clone, Copy)]
struct Tick {
    /// When the timer fired: a tick older than the end of the last run is skipped.
    fired_at: Instant,
}

impl Request for Tick {
    type Reply = ();
}

/// One job's actor: runs its job on its interval and on [`RunJob`].
struct JobActor {
    /// Where the advisory lock is taken.
    store: Store,
    /// The job it runs.
    job: Job,
    /// Its interval; zero arms no timer.
    every: Duration,
    /// Where each run's outcome goes (shared by the scheduler's jobs, across restarts).
    reports: JobReports,
    /// When this actor was last free to run: built, or its last run ended. A tick that fired
    /// before it found a run going (or was queued by an earlier run of the actor).
    idle_since: Instant,
}

impl JobActor {
    /// The actor's address and child spec: permanent, under the job's node name, with the
    /// job's deadline and backoff.
    fn child_spec(
        store: Store,
        job: Job,
        every: Duration,
        reports: &JobReports,
    ) -> (Addr<Self>, ChildSpec) {
        let (kind, deadline, backoff) = (job.kind, job.deadline, job.backoff);
        let reports = reports.clone();
        let (addr, spec) = ChildSpec::actor(node_name(kind), move || JobActor {
            store: store.clone(),
            job: job.clone(),
            every,
            reports: reports.clone(),
            idle_since: Instant::now(),
        });
        let spec = spec
            .role(JOB_ROLE)
            .restart(Restart::Permanent)
            .backoff(backoff)
            .deadline(Some(deadline));
        (addr, spec)
    }

    /// One run, after which ticks that fired during it are stale.
    async fn run(&mut self) -> Result<JobReport, Failure> {
        let result = run_once(self.store.pool(), &self.job, &self.reports).await;
        self.idle_since = Instant::now();
        result
    }
}

impl Actor for JobActor {
    async fn started(&mut self, ctx: &mut Context<Self>) -> Result<(), Failure> {
        if !self.every.is_zero() {
            ctx.every(self.every, || Tick {
                fired_at: Instant::now(),
            });
        }
        Ok(())
    }
}

impl Handler<Tick> for JobActor {
    async fn handle(&mut self, msg: Tick, _ctx: &mut Context<Self>) {
        if msg.fired_at < self.idle_since {
            tracing::debug!(job = %self.job.kind, "{SKIPPED_HERE}");
            return;
        }
        // Recorded and logged by the run; the next tick tries again.
        let _ = self.run().await;
    }
}

impl Handler<RunJob> for JobActor {
    async fn handle(
        &mut self,
        _msg: RunJob,
        _ctx: &mut Context<Self>,
    ) -> Result<JobReport, Failure> {
        self.run().await
    }
}

/// One run: take the lock (or skip), run the job, give the lock back, record and log the
/// outcome. A panic in the job is recorded and given back to the runtime, which restarts the
/// job's actor; a run cancelled at its deadline is recorded by [`Unfinished`].
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
    let unfinished = Unfinished {
        kind: job.kind,
        started_at,
        reports,
    };
    let result = AssertUnwindSafe((job.run)()).catch_unwind().await;
    lock.give_back().await;
    std::mem::forget(unfinished);
    match result {
        Ok(Ok(summary)) => {
            tracing::debug!(job = %job.kind, %summary, "job ran");
            let done = report(summary);
            reports.record(RunOutcome::Succeeded, done.clone());
            Ok(done)
        }
        Ok(Err(failure)) => Err(failed(job.kind, failure, report, reports)),
        Err(panic) => {
            let reason = format!("the job panicked: {}", panic_message(panic.as_ref()));
            tracing::warn!(job = %job.kind, %reason, "job panicked; its actor restarts after its backoff");
            reports.record(RunOutcome::Failed, report(reason));
            std::panic::resume_unwind(panic)
        }
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

/// A run in progress. Forgotten when the run ends; dropped only when the run is cancelled
/// (past its deadline, or aborted at shutdown), and then it records the run as [`CUT_OFF`].
struct Unfinished<'a> {
    kind: JobKind,
    started_at: Timestamp,
    reports: &'a JobReports,
}

impl Drop for Unfinished<'_> {
    fn drop(&mut self) {
        tracing::warn!(job = %self.kind, "{CUT_OFF}");
        self.reports.record(
            RunOutcome::Failed,
            JobReport {
                job: self.kind,
                started_at: self.started_at,
                finished_at: Timestamp::now(),
                summary: CUT_OFF.to_owned(),
            },
        );
    }
}

/// A session-level advisory lock held on one pooled connection.
///
/// Given back with [`AdvisoryLock::give_back`]; if that does not happen (the run was
/// cancelled) or does not go through, the connection is detached from the pool and dropped,
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn lock_keys_are_distinct_and_stable() {
        let keys: HashSet<i64> = JobKind::ALL.iter().map(|k| lock_key(*k)).collect();
        assert_eq!(keys.len(), JobKind::ALL.len());
        assert_eq!(lock_key(JobKind::HealthCheck), 0x6172_7465_6c5f_6a68);
    }

    #[test]
    fn node_names_are_distinct() {
        let names: HashSet<&str> = JobKind::ALL.iter().map(|k| node_name(*k)).collect();
        assert_eq!(names.len(), JobKind::ALL.len());
    }
}
