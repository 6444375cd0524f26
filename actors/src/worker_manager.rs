//! The WorkerManager: spawns sandboxes with limits, runs one command in each, streams its
//! output as events, and stops them — with at most N busy at once and the rest queued FIFO.
//!
//! Workers are where agents and test commands run, and the systems artel replaces ran them
//! without limits, without a queue and without telling anyone what happened (the seeds' audit
//! item 10). Here:
//!
//! - **Lifecycle.** A worker is `started` (row written) → `ready` (sandbox made) → `busy`
//!   (its one command runs) → `completed` (the command exited, with whatever code) or
//!   `failed` (the sandbox could not be made, or the command was killed: a limit signal, the
//!   wall-clock timeout) → `stopped` (sandbox destroyed). A program that meets a limit and
//!   *exits* (e.g. on a failed allocation) completes with its exit code: only the runtime's
//!   kills are the sandbox failing. Every change is checked with
//!   [`WorkerStatus::can_transition_to`], written to the `workers` row and published as a
//!   `worker_status_changed` event. A worker runs one command: a new job gets a new, clean
//!   worker (the Docker runtime may hand it a warm container made ahead, never a used one).
//! - **Queue.** [`WorkerManagerConfig::max_busy`] commands run at once; the others wait in
//!   the order they asked, their workers still `ready`, and
//!   [`WorkerManager::queue_position`] says where each stands (1 = next).
//! - **Output.** Every line a command prints becomes a `worker_output` event, in order per
//!   stream. It is bounded, never silently: a line longer than
//!   [`OutputPolicy::max_line_bytes`] is cut and says how much was cut, and after
//!   [`OutputPolicy::max_events`] lines a command's further lines are not published — one
//!   closing event per stream says how many were held back. The outcome carries each
//!   stream's last lines either way.
//! - **Runtimes.** The sandbox itself is behind the [`Sandbox`] trait: [`process`] is the
//!   local-process runtime (own directory, scrubbed environment, rlimits, process-group
//!   kill, own uid under root); [`docker`] runs each worker in a container (with a warm
//!   pool). The local-process runtime cannot take the network away from a worker: a spec's
//!   `network: false` is enforced by the Docker runtime only.
//!
//! [`WorkerManagerActor`] is **the one road to a sandbox**: roles, the scheduler's reaper
//! and the API hold a [`Workers`] client, and every spawn, command, stop and reap is a
//! message in the actor's mailbox. The actor is a gate: it admits each request at once and
//! runs the work beside itself (deferred replies), so commands run side by side up to
//! `max_busy` while the actor stays free for a stop; the commands waiting for a slot are its
//! backlog in the tree and in `/metrics`. [`WorkerManager`] is the logic the actor runs (its
//! state outlives the actor's restarts), and what the process that owns it uses for start-up
//! reaping and shutdown. Failures are classified [`WorkerError`]s, crossing actor boundaries
//! as [`Failure`]s; role code never retries: a retryable failure goes back to the caller,
//! whose child spec decides.

pub mod docker;
mod queue;
mod records;

pub mod process;
pub mod remote;

use crate::store::{Store, StoreError};
use artel_messages::dto::WorkerDto;
use artel_messages::event::{EventBody, NewEvent};
use artel_messages::worker_manager::{
    CommandOutcome, OutputStream, RunCommand, SpawnWorker, StopWorker, WorkerCommand, WorkerLimits,
    WorkerReply, WorkerRuntime, WorkerSpec,
};
use artel_messages::{Classify, ErrorClass, Failure, Timestamp, WorkerId, WorkerStatus};
use artel_supervisors::{
    Actor, Addr, CallError, ChildSpec, Context, Deferred, Handler, Later, Request,
};
use nix::sys::signal::Signal;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::Future;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use tokio::sync::{mpsc, watch};

pub use process::bwrap::SandboxMode;
pub use process::{ProcessConfig, ProcessRuntime, ProcessSandbox, RunAs};

/// How many output lines may wait between a runtime and the event journal before the
/// command's pipe fills and the command itself waits (backpressure, not loss).
const OUTPUT_CHANNEL: usize = 256;

/// Everything the worker-manager can fail with, classified for supervisors.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The spawn request cannot be carried out as written.
    #[error("invalid worker spec: {0}")]
    InvalidSpec(String),
    /// The spec asks for a runtime this manager does not have.
    #[error("this worker-manager runs `{have}` workers, not `{asked}`")]
    UnsupportedRuntime {
        /// The runtime asked for.
        asked: WorkerRuntime,
        /// The runtime configured.
        have: WorkerRuntime,
    },
    /// No worker has this id.
    #[error("worker {0} does not exist")]
    NotFound(WorkerId),
    /// A command was sent to a worker that is not waiting for one (it ran its command, or
    /// failed, or was stopped).
    #[error("worker {worker} is {status}, not ready for a command")]
    NotReady {
        /// The worker.
        worker: WorkerId,
        /// Its status.
        status: WorkerStatus,
    },
    /// A second command was sent while the worker's first one is queued or running.
    #[error("worker {0} already has a command queued or running")]
    Busy(WorkerId),
    /// A working directory that leaves the worker's directory, or does not exist.
    #[error("working directory `{cwd}` refused: {reason}")]
    BadCwd {
        /// The `cwd` asked for.
        cwd: String,
        /// Why it was refused.
        reason: String,
    },
    /// A secret the spec names is not stored for the project.
    #[error("secret `{0}` is not set for this project")]
    MissingSecret(String),
    /// The worker was stopped while its command was queued or running.
    #[error("worker {worker} was stopped while its command was queued or running")]
    Stopped {
        /// The worker.
        worker: WorkerId,
    },
    /// A lifecycle change the catalog's rules refuse: a bug in the manager.
    #[error("worker {worker} cannot move from `{from}` to `{to}`")]
    InvalidTransition {
        /// The worker.
        worker: WorkerId,
        /// Its status.
        from: WorkerStatus,
        /// The status asked for.
        to: WorkerStatus,
    },
    /// The runtime is misconfigured (no usable shell, uids without root).
    #[error("worker runtime not usable: {0}")]
    Setup(String),
    /// Every uid of the worker range is held by a live worker.
    #[error("all {count} worker uids are in use")]
    NoFreeUid {
        /// The size of the range.
        count: u32,
    },
    /// The workspace could not be made or removed.
    #[error("workspace {path}")]
    Workspace {
        /// The directory.
        path: PathBuf,
        /// What the file system said.
        #[source]
        source: io::Error,
    },
    /// The command's process could not be started.
    #[error("cannot start `{program}`")]
    Spawn {
        /// The program.
        program: String,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// Other I/O around a running command.
    #[error("{what}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// The store failed (its own class applies).
    #[error("worker store")]
    Store(#[from] StoreError),
}

impl Classify for WorkerError {
    fn class(&self) -> ErrorClass {
        match self {
            Self::Workspace { .. }
            | Self::Spawn { .. }
            | Self::Io { .. }
            | Self::NoFreeUid { .. } => ErrorClass::Retryable,
            Self::Store(err) => err.class(),
            Self::InvalidSpec(_)
            | Self::UnsupportedRuntime { .. }
            | Self::NotFound(_)
            | Self::NotReady { .. }
            | Self::Busy(_)
            | Self::BadCwd { .. }
            | Self::MissingSecret(_)
            | Self::Stopped { .. }
            | Self::InvalidTransition { .. }
            | Self::Setup(_) => ErrorClass::Fatal,
        }
    }
}

/// One command for a runtime to run: the request plus everything the manager resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// The program, looked up on the worker's `PATH`.
    pub program: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// Working directory relative to the worker's directory (checked by
    /// [`check_relative_cwd`]; a runtime also refuses symlinks out).
    pub cwd: Option<String>,
    /// The spec's variables and the named secrets' values, set over the runtime's scrubbed
    /// base environment.
    pub env: BTreeMap<String, String>,
    /// The limits to enforce.
    pub limits: WorkerLimits,
    /// Longest output line kept, in bytes.
    pub max_line_bytes: usize,
}

/// What a runtime reports while a command runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunEvent {
    /// The command started; `handle` names it on the host (e.g. `pgid:1234`).
    Started {
        /// The process group or container id.
        handle: String,
    },
    /// One line of output.
    Line {
        /// Standard output or error.
        stream: OutputStream,
        /// The line, without its newline, cut at the line limit.
        text: String,
        /// How many bytes of the line were cut off.
        cut_bytes: usize,
    },
}

/// How a command ended, as a runtime saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunEnd {
    /// The exit code; `None` when killed (by a signal, the timeout or a stop).
    pub exit_code: Option<i32>,
    /// The signal that ended it, if one did.
    pub signal: Option<i32>,
    /// The wall-clock timeout killed it.
    pub timed_out: bool,
    /// A stop killed it.
    pub cancelled: bool,
    /// The memory limit killed it (runtimes that can tell: Docker's memory cgroup).
    pub oom_killed: bool,
}

/// Where a sandbox is, for records and callers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SandboxInfo {
    /// The worker's directory on this host, if it has one.
    pub workspace: Option<PathBuf>,
    /// The uid its processes run as, if it has its own.
    pub uid: Option<u32>,
}

/// A worker runtime: makes sandboxes, runs one command in one, destroys it. The seam where
/// a Docker runtime plugs in next to [`ProcessRuntime`].
pub trait Sandbox: Send + Sync + 'static {
    /// One worker's sandbox.
    type Instance: Send + Sync + 'static;

    /// Which runtime this is; specs asking for another are refused.
    fn kind(&self) -> WorkerRuntime;

    /// Makes `worker`'s sandbox; nothing runs in it yet.
    fn create(
        &self,
        worker: WorkerId,
        spec: &WorkerSpec,
    ) -> impl Future<Output = Result<Self::Instance, WorkerError>> + Send;

    /// Where the sandbox is.
    fn describe(&self, instance: &Self::Instance) -> SandboxInfo;

    /// Runs `job` to its end under its limits, sending [`RunEvent`]s to `events` (awaiting
    /// room: never dropping). Ends early, killing everything the command started, when the
    /// wall-clock timeout passes or `cancel` turns true; dropping the future kills too.
    fn run(
        &self,
        instance: &Self::Instance,
        job: Job,
        events: mpsc::Sender<RunEvent>,
        cancel: watch::Receiver<bool>,
    ) -> impl Future<Output = Result<RunEnd, WorkerError>> + Send;

    /// Kills whatever is left and removes the sandbox.
    fn destroy(
        &self,
        instance: &Self::Instance,
    ) -> impl Future<Output = Result<(), WorkerError>> + Send;

    /// Cleans up after a worker whose sandbox a previous process created and never destroyed:
    /// kills what is left of it and removes its workspace, as far as this runtime can do so
    /// safely from what was recorded.
    fn reap(&self, workspace: Option<&Path>, uid: Option<u32>) -> impl Future<Output = ()> + Send;

    /// Removes sandboxes of this instance that no worker of `live` holds (a runtime whose
    /// sandboxes can outlive their records: containers). Answers how many it removed.
    fn sweep(&self, live: &[WorkerId]) -> impl Future<Output = Result<usize, WorkerError>> + Send {
        let _ = live;
        async { Ok(0) }
    }

    /// Releases what the runtime holds beyond workers (a warm pool), at shutdown.
    fn shutdown(&self) -> impl Future<Output = ()> + Send {
        async {}
    }
}

/// Refuses a working directory that is absolute or climbs out (`..`); answers it as a
/// relative path.
pub fn check_relative_cwd(cwd: &str) -> Result<PathBuf, WorkerError> {
    let path = Path::new(cwd);
    let bad = |reason: &str| WorkerError::BadCwd {
        cwd: cwd.to_owned(),
        reason: reason.to_owned(),
    };
    let mut relative = PathBuf::new();
    for part in path.components() {
        match part {
            Component::Normal(name) => relative.push(name),
            Component::CurDir => {}
            Component::ParentDir => return Err(bad("`..` is not allowed")),
            Component::RootDir | Component::Prefix(_) => {
                return Err(bad("it must be relative to the worker's directory"));
            }
        }
    }
    Ok(relative)
}

/// How command output becomes events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputPolicy {
    /// Longest line published, in bytes; the rest is cut, and the event says how much.
    pub max_line_bytes: usize,
    /// Lines published as events per command (both streams together); further lines are
    /// counted and reported in one closing event per stream.
    pub max_events: usize,
    /// Lines of each stream kept for the outcome's tail.
    pub tail_lines: usize,
}

impl Default for OutputPolicy {
    fn default() -> Self {
        Self {
            max_line_bytes: 4096,
            max_events: 5000,
            tail_lines: 50,
        }
    }
}

/// How the manager behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerManagerConfig {
    /// Commands running at once; the rest wait in FIFO order.
    pub max_busy: usize,
    /// How output becomes events.
    pub output: OutputPolicy,
}

impl Default for WorkerManagerConfig {
    fn default() -> Self {
        Self {
            max_busy: 4,
            output: OutputPolicy::default(),
        }
    }
}

/// A worker this manager holds.
struct Live<I> {
    dto: WorkerDto,
    spec: WorkerSpec,
    instance: Option<Arc<I>>,
    /// Turned true by a stop: a queued or running command gives up and is killed.
    cancel: watch::Sender<bool>,
    /// Held by a command from queueing to its end; a stop waits for it.
    run_lock: Arc<tokio::sync::Mutex<()>>,
}

struct Inner<R: Sandbox> {
    store: Store,
    runtime: R,
    config: WorkerManagerConfig,
    /// The process's instance name, recorded on each worker so a restart can reap its own
    /// orphans; `None` records nothing and reaps nothing.
    owner: Option<String>,
    slots: queue::Slots,
    workers: Mutex<HashMap<WorkerId, Live<R::Instance>>>,
}

/// The worker-manager's logic: a cheap-to-clone handle over the live workers, the queue and
/// the runtime. See the module docs.
pub struct WorkerManager<R: Sandbox = docker::AnyRuntime> {
    inner: Arc<Inner<R>>,
}

impl<R: Sandbox> Clone for WorkerManager<R> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<R: Sandbox> std::fmt::Debug for WorkerManager<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerManager")
            .field("runtime", &self.inner.runtime.kind())
            .field("config", &self.inner.config)
            .field("busy", &self.inner.slots.busy())
            .field("queued", &self.inner.slots.waiting().len())
            .finish_non_exhaustive()
    }
}

/// What a command's output came to.
#[derive(Debug, Default)]
struct Published {
    stdout_tail: String,
    stderr_tail: String,
}

impl<R: Sandbox> WorkerManager<R> {
    /// A manager running workers on `runtime`, recording them in `store`.
    pub fn new(store: Store, runtime: R, config: WorkerManagerConfig) -> Self {
        Self::build(store, runtime, config, None)
    }

    /// A manager that records `owner` (this process's stable instance name) on every worker,
    /// so that after a crash the next run of the same instance can [reap](Self::reap_orphans)
    /// what was left behind.
    pub fn owned_by(
        store: Store,
        runtime: R,
        config: WorkerManagerConfig,
        owner: impl Into<String>,
    ) -> Self {
        Self::build(store, runtime, config, Some(owner.into()))
    }

    fn build(store: Store, runtime: R, config: WorkerManagerConfig, owner: Option<String>) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                runtime,
                slots: queue::Slots::new(config.max_busy),
                config,
                owner,
                workers: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Stops every worker a previous run of this instance left running (artel was killed or
    /// crashed): kills what is left of it, removes its workspace, and records it `stopped`
    /// with the reason. Call it at start, before serving. Returns how many were reaped.
    pub async fn reap_orphans(&self) -> Result<usize, WorkerError> {
        let Some(owner) = self.inner.owner.as_deref() else {
            return Ok(0);
        };
        let orphans = records::orphans(&self.inner.store, owner).await?;
        for orphan in &orphans {
            self.inner
                .runtime
                .reap(orphan.workspace.as_deref().map(Path::new), orphan.uid)
                .await;
            let dto = records::set_status(
                &self.inner.store,
                orphan.id,
                WorkerStatus::Stopped,
                None,
                Some("orphaned: the artel process running it ended (crash or kill); reaped at its next start"),
            )
            .await?;
            self.emit(
                &dto,
                EventBody::WorkerStatusChanged {
                    worker: orphan.id,
                    status: WorkerStatus::Stopped,
                },
            )
            .await?;
        }
        if !orphans.is_empty() {
            tracing::warn!(
                reaped = orphans.len(),
                owner,
                "reaped workers a previous run left behind"
            );
        }
        Ok(orphans.len())
    }

    /// Removes the runtime's sandboxes that no worker of this manager holds: what a killed
    /// artel left (at start) or what slipped past a stop (periodically, from the scheduler's
    /// worker reaper). Answers how many it removed.
    pub async fn sweep_strays(&self) -> Result<usize, WorkerError> {
        let live: Vec<WorkerId> = self.workers().keys().copied().collect();
        self.inner.runtime.sweep(&live).await
    }

    /// Releases the runtime's warm pool, for artel's shutdown.
    pub async fn shutdown(&self) {
        self.inner.runtime.shutdown().await;
    }

    /// The runtime it runs workers on.
    pub fn runtime(&self) -> &R {
        &self.inner.runtime
    }

    fn workers(&self) -> MutexGuard<'_, HashMap<WorkerId, Live<R::Instance>>> {
        // Every holder leaves the map consistent (no await, no panic mid-update).
        self.inner
            .workers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// A live worker as the manager sees it now; `None` once stopped (ask the store then).
    pub fn worker(&self, id: WorkerId) -> Option<WorkerDto> {
        self.workers().get(&id).map(|live| live.dto.clone())
    }

    /// Where a live worker's sandbox is.
    pub fn sandbox(&self, id: WorkerId) -> Option<SandboxInfo> {
        let workers = self.workers();
        let instance = workers.get(&id)?.instance.as_ref()?;
        Some(self.inner.runtime.describe(instance))
    }

    /// Where `worker`'s command waits for a slot: 1 for next in line; `None` when it is not
    /// waiting (running, finished, or never asked).
    pub fn queue_position(&self, worker: WorkerId) -> Option<usize> {
        self.inner.slots.position(worker)
    }

    /// The workers whose commands wait for a slot, next in line first.
    pub fn queue(&self) -> Vec<WorkerId> {
        self.inner.slots.waiting()
    }

    /// How many commands run right now.
    pub fn busy(&self) -> usize {
        self.inner.slots.busy()
    }

    /// Spawns a worker: writes its row, makes its sandbox, answers it `ready`. A sandbox
    /// that cannot be made leaves the worker `failed` (stop it to release it).
    #[tracing::instrument(skip(self, spec), fields(project = %spec.project, task = %spec.task))]
    pub async fn spawn(&self, spec: WorkerSpec) -> Result<WorkerDto, WorkerError> {
        self.check_spec(&spec).await?;
        let id = WorkerId::new();
        let dto =
            records::insert(&self.inner.store, id, &spec, self.inner.owner.as_deref()).await?;
        let (cancel, _) = watch::channel(false);
        self.workers().insert(
            id,
            Live {
                dto: dto.clone(),
                spec: spec.clone(),
                instance: None,
                cancel,
                run_lock: Arc::new(tokio::sync::Mutex::new(())),
            },
        );
        self.emit(
            &dto,
            EventBody::WorkerStatusChanged {
                worker: id,
                status: WorkerStatus::Started,
            },
        )
        .await?;
        let instance = match self.inner.runtime.create(id, &spec).await {
            Ok(instance) => instance,
            Err(err) => {
                self.transition(id, WorkerStatus::Failed, Some(err.to_failure()), None)
                    .await?;
                return Err(err);
            }
        };
        let info = self.inner.runtime.describe(&instance);
        let orphan = match self.workers().get_mut(&id) {
            Some(live) => {
                live.instance = Some(Arc::new(instance));
                None
            }
            None => Some(instance),
        };
        if let Some(instance) = orphan {
            // Stopped while its sandbox was being made: release what was just made.
            self.inner.runtime.destroy(&instance).await?;
            return Err(WorkerError::Stopped { worker: id });
        }
        let workspace = info.workspace.as_ref().map(|p| p.to_string_lossy());
        records::set_sandbox(&self.inner.store, id, workspace.as_deref(), info.uid).await?;
        self.transition(id, WorkerStatus::Ready, None, None).await
    }

    async fn check_spec(&self, spec: &WorkerSpec) -> Result<(), WorkerError> {
        let have = self.inner.runtime.kind();
        if spec.runtime != have {
            return Err(WorkerError::UnsupportedRuntime {
                asked: spec.runtime,
                have,
            });
        }
        let limits = &spec.limits;
        for (name, value) in [
            ("cpu_seconds", limits.cpu_seconds),
            ("memory_bytes", limits.memory_bytes),
            ("pids", u64::from(limits.pids)),
            ("file_size_bytes", limits.file_size_bytes),
            ("wall_clock_timeout_secs", limits.wall_clock_timeout_secs),
        ] {
            if value == 0 {
                return Err(WorkerError::InvalidSpec(format!("limit {name} is 0")));
            }
        }
        for name in spec.env.keys().chain(&spec.secrets) {
            let mut chars = name.chars();
            let valid = chars
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                return Err(WorkerError::InvalidSpec(format!(
                    "`{name}` is not an environment variable name"
                )));
            }
        }
        if let Some(value) = spec.env.values().find(|v| v.contains('\0')) {
            return Err(WorkerError::InvalidSpec(format!(
                "an environment value contains a NUL byte: {value:?}"
            )));
        }
        if !spec.secrets.is_empty() {
            let stored = self.inner.store.secret_names(spec.project).await?;
            if let Some(missing) = spec.secrets.iter().find(|s| !stored.contains(s)) {
                return Err(WorkerError::MissingSecret(missing.clone()));
            }
        }
        Ok(())
    }

    /// Runs `command` in its ready worker: waits for a slot (FIFO), marks the worker `busy`,
    /// publishes its output as events, and marks it `completed` (it exited) or `failed` (it
    /// was killed: a limit or the timeout). A non-zero exit is an outcome, not an error.
    #[tracing::instrument(skip(self, command), fields(worker = %command.worker, program = %command.program))]
    pub async fn run(&self, command: RunCommand) -> Result<CommandOutcome, WorkerError> {
        let id = command.worker;
        let (run_lock, cancel, spec) = {
            let workers = self.workers();
            let live = workers.get(&id).ok_or(WorkerError::NotFound(id))?;
            (
                live.run_lock.clone(),
                live.cancel.subscribe(),
                live.spec.clone(),
            )
        };
        let _running = run_lock
            .try_lock_owned()
            .map_err(|_| WorkerError::Busy(id))?;
        let instance = {
            let workers = self.workers();
            let live = workers.get(&id).ok_or(WorkerError::NotFound(id))?;
            if *cancel.borrow() {
                return Err(WorkerError::Stopped { worker: id });
            }
            match (&live.instance, live.dto.status) {
                (Some(instance), WorkerStatus::Ready) => instance.clone(),
                (_, status) => return Err(WorkerError::NotReady { worker: id, status }),
            }
        };
        if let Some(cwd) = &command.cwd {
            check_relative_cwd(cwd)?;
        }
        let mut env = spec.env.clone();
        for name in &spec.secrets {
            let value = self
                .inner
                .store
                .reveal_secret(spec.project, name)
                .await
                .map_err(|err| match err.is_not_found() {
                    true => WorkerError::MissingSecret(name.clone()),
                    false => WorkerError::Store(err),
                })?;
            env.insert(name.clone(), value.expose().to_owned());
        }
        let job = Job {
            program: command.program,
            args: command.args,
            cwd: command.cwd,
            env,
            limits: spec.limits,
            max_line_bytes: self.inner.config.output.max_line_bytes,
        };

        let slot = {
            let mut cancel = cancel.clone();
            let stopped = async move {
                if cancel.wait_for(|stop| *stop).await.is_err() {
                    std::future::pending::<()>().await;
                }
            };
            tokio::select! {
                slot = self.inner.slots.acquire(id) => slot,
                () = stopped => return Err(WorkerError::Stopped { worker: id }),
            }
        };
        let busy = self.transition(id, WorkerStatus::Busy, None, None).await?;
        let started_at = Timestamp::now();
        let (events, lines) = mpsc::channel(OUTPUT_CHANNEL);
        let publisher = tokio::spawn(publish(
            self.inner.store.clone(),
            busy,
            self.inner.config.output,
            lines,
        ));
        let end = self
            .inner
            .runtime
            .run(&instance, job, events, cancel.clone())
            .await;
        let published = publisher.await.unwrap_or_else(|err| {
            tracing::warn!(error = %err, "the output publisher ended abnormally");
            Published::default()
        });
        let finished_at = Timestamp::now();
        let end = match end {
            Ok(end) => end,
            Err(err) => {
                self.transition(id, WorkerStatus::Failed, Some(err.to_failure()), None)
                    .await?;
                return Err(err);
            }
        };
        if end.cancelled {
            // The stop that cancelled it moves the worker to `stopped`.
            return Err(WorkerError::Stopped { worker: id });
        }
        let (status, failure) = match killed_reason(&end, &spec.limits) {
            Some(reason) => (WorkerStatus::Failed, Some(Failure::fatal(reason))),
            None => (WorkerStatus::Completed, None),
        };
        self.transition(id, status, failure, None).await?;
        drop(slot);
        Ok(CommandOutcome {
            worker: id,
            exit_code: end.exit_code,
            timed_out: end.timed_out,
            stdout_tail: published.stdout_tail,
            stderr_tail: published.stderr_tail,
            started_at,
            finished_at,
        })
    }

    /// The newest workers of `owner`'s projects (everyone's for `None`), from the store:
    /// this manager's and every other one's.
    pub async fn list(
        &self,
        owner: Option<artel_messages::UserId>,
        limit: u32,
    ) -> Result<Vec<WorkerDto>, WorkerError> {
        Ok(records::list(&self.inner.store, owner, limit).await?)
    }

    /// One worker's stored record, if it exists.
    pub async fn record(&self, id: WorkerId) -> Result<Option<WorkerDto>, WorkerError> {
        Ok(records::load(&self.inner.store, id).await?)
    }

    /// Stops a worker: kills a queued or running command, destroys the sandbox, marks it
    /// `stopped`. Stopping a stopped worker answers it again, unchanged. A worker known only
    /// to the store (from before a restart) is marked stopped; its leftovers are the
    /// worker-reaper's.
    #[tracing::instrument(skip(self))]
    pub async fn stop(&self, worker: WorkerId, reason: &str) -> Result<WorkerDto, WorkerError> {
        let found = {
            let workers = self.workers();
            workers.get(&worker).map(|live| {
                live.cancel.send_replace(true);
                live.run_lock.clone()
            })
        };
        let Some(run_lock) = found else {
            return self.stop_unknown(worker, reason).await;
        };
        let _quiet = run_lock.lock().await;
        let instance = self
            .workers()
            .get(&worker)
            .and_then(|live| live.instance.clone());
        if let Some(instance) = instance
            && let Err(err) = self.inner.runtime.destroy(&instance).await
        {
            let status = self.worker(worker).map(|dto| dto.status);
            if status.is_some_and(|s| s.can_transition_to(WorkerStatus::Failed)) {
                self.transition(worker, WorkerStatus::Failed, Some(err.to_failure()), None)
                    .await?;
            }
            return Err(err);
        }
        let dto = self
            .transition(worker, WorkerStatus::Stopped, None, Some(reason))
            .await?;
        self.workers().remove(&worker);
        Ok(dto)
    }

    async fn stop_unknown(&self, worker: WorkerId, reason: &str) -> Result<WorkerDto, WorkerError> {
        let dto = records::load(&self.inner.store, worker)
            .await?
            .ok_or(WorkerError::NotFound(worker))?;
        if dto.status == WorkerStatus::Stopped {
            return Ok(dto);
        }
        let dto = records::set_status(
            &self.inner.store,
            worker,
            WorkerStatus::Stopped,
            None,
            Some(reason),
        )
        .await?;
        self.emit(
            &dto,
            EventBody::WorkerStatusChanged {
                worker,
                status: WorkerStatus::Stopped,
            },
        )
        .await?;
        Ok(dto)
    }

    /// Answers one catalog command, for the actor and the worker-manager streams.
    pub async fn handle(&self, command: WorkerCommand) -> WorkerReply {
        match command {
            WorkerCommand::Spawn(SpawnWorker { spec }) => {
                self.spawn(spec).await.map_err(|e| e.to_failure()).into()
            }
            WorkerCommand::Run(run) => self.run(run).await.map_err(|e| e.to_failure()).into(),
            WorkerCommand::Stop(StopWorker { worker, reason }) => self
                .stop(worker, &reason)
                .await
                .map_err(|e| e.to_failure())
                .into(),
        }
    }

    /// Moves a live worker to `to`: checked, written, published.
    async fn transition(
        &self,
        id: WorkerId,
        to: WorkerStatus,
        failure: Option<Failure>,
        stop_reason: Option<&str>,
    ) -> Result<WorkerDto, WorkerError> {
        let from = self
            .worker(id)
            .map(|dto| dto.status)
            .ok_or(WorkerError::NotFound(id))?;
        if !from.can_transition_to(to) {
            return Err(WorkerError::InvalidTransition {
                worker: id,
                from,
                to,
            });
        }
        let dto =
            records::set_status(&self.inner.store, id, to, failure.as_ref(), stop_reason).await?;
        if let Some(live) = self.workers().get_mut(&id) {
            live.dto = dto.clone();
        }
        if let Some(failure) = &failure {
            tracing::info!(worker = %id, reason = %failure.reason, "worker failed");
        }
        self.emit(
            &dto,
            EventBody::WorkerStatusChanged {
                worker: id,
                status: to,
            },
        )
        .await?;
        Ok(dto)
    }

    async fn emit(&self, worker: &WorkerDto, body: EventBody) -> Result<(), WorkerError> {
        let event = NewEvent::new(body)
            .project(worker.project)
            .task(worker.task);
        self.inner.store.append_event(event).await?;
        Ok(())
    }
}

/// Why a command's end fails its worker: killed by the timeout or a signal (a limit, most
/// often). `None` for an exit, whatever its code.
fn killed_reason(end: &RunEnd, limits: &WorkerLimits) -> Option<String> {
    if end.oom_killed {
        return Some(format!(
            "killed by the memory limit ({} bytes)",
            limits.memory_bytes
        ));
    }
    if end.timed_out {
        return Some(format!(
            "timed out after {}s: its process group was killed",
            limits.wall_clock_timeout_secs
        ));
    }
    if end.exit_code.is_some() {
        return None;
    }
    let Some(signal) = end.signal else {
        return Some("ended without an exit code or a signal".to_owned());
    };
    let name =
        Signal::try_from(signal).map_or_else(|_| format!("signal {signal}"), |s| s.to_string());
    let why = match Signal::try_from(signal) {
        Ok(Signal::SIGXCPU) => format!(": the CPU limit ({}s)", limits.cpu_seconds),
        Ok(Signal::SIGKILL) => format!(": the CPU hard limit ({}s) or a kill", limits.cpu_seconds),
        Ok(Signal::SIGXFSZ) => format!(": the file size limit ({} bytes)", limits.file_size_bytes),
        _ => String::new(),
    };
    Some(format!("killed by {name}{why}"))
}

/// Keeps the last lines of a stream.
#[derive(Debug, Default)]
struct Tail {
    lines: VecDeque<String>,
}

impl Tail {
    fn push(&mut self, line: &str, keep: usize) {
        if keep == 0 {
            return;
        }
        if self.lines.len() == keep {
            self.lines.pop_front();
        }
        self.lines.push_back(line.to_owned());
    }

    fn text(&self) -> String {
        self.lines
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Turns a command's [`RunEvent`]s into events and tails, in arrival order, until the
/// runtime closes the channel.
async fn publish(
    store: Store,
    worker: WorkerDto,
    policy: OutputPolicy,
    mut from: mpsc::Receiver<RunEvent>,
) -> Published {
    let mut tails = [Tail::default(), Tail::default()];
    let mut held_back = [0usize; 2];
    let mut published = 0usize;
    let mut lost = 0usize;
    let append = |stream: OutputStream, line: String| {
        let event = NewEvent::new(EventBody::WorkerOutput {
            worker: worker.id,
            stream,
            line,
        })
        .project(worker.project)
        .task(worker.task);
        let store = store.clone();
        async move { store.append_event(event).await }
    };
    while let Some(event) = from.recv().await {
        match event {
            RunEvent::Started { handle } => {
                if let Err(err) = records::set_handle(&store, worker.id, Some(&handle)).await {
                    tracing::warn!(error = %err, "cannot record the command's handle");
                }
            }
            RunEvent::Line {
                stream,
                text,
                cut_bytes,
            } => {
                let index = stream_index(stream);
                tails[index].push(&text, policy.tail_lines);
                if published >= policy.max_events {
                    held_back[index] += 1;
                    continue;
                }
                published += 1;
                let line = if cut_bytes > 0 {
                    format!("{text} … [{cut_bytes} more bytes of this line cut]")
                } else {
                    text
                };
                if let Err(err) = append(stream, line).await {
                    lost += 1;
                    tracing::warn!(error = %err, lost, "an output line could not be journaled");
                }
            }
        }
    }
    for stream in [OutputStream::Stdout, OutputStream::Stderr] {
        let count = held_back[stream_index(stream)];
        if count > 0 {
            let note = format!(
                "[artel] {count} more lines of {stream} were not published as events (at most \
                 {} per command); the outcome keeps the last {} lines",
                policy.max_events, policy.tail_lines
            );
            if let Err(err) = append(stream, note).await {
                tracing::warn!(error = %err, "the held-back note could not be journaled");
            }
        }
    }
    if lost > 0 {
        tracing::warn!(worker = %worker.id, lost, "output lines missing from the journal");
    }
    Published {
        stdout_tail: tails[0].text(),
        stderr_tail: tails[1].text(),
    }
}

fn stream_index(stream: OutputStream) -> usize {
    match stream {
        OutputStream::Stdout => 0,
        OutputStream::Stderr => 1,
    }
}

/// Where a live worker's sandbox is, asked of the worker-manager (answered at once).
#[derive(Debug, Clone, Copy)]
pub struct SandboxOf(pub WorkerId);

impl Request for SandboxOf {
    type Reply = Option<SandboxInfo>;
}

/// "How long is the line?": the commands running and the workers waiting for a slot.
#[derive(Debug, Clone, Copy)]
pub struct QueueState;

impl Request for QueueState {
    type Reply = Queue;
}

/// The worker-manager's line of commands, as [`QueueState`] answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queue {
    /// Commands running now.
    pub busy: usize,
    /// Workers whose commands wait for a slot, next in line first (position 1 = index 0).
    pub waiting: Vec<WorkerId>,
}

/// Stop these workers (their task is over) and remove the sandboxes no worker holds: the
/// worker-reaper job's one message. Answers how many of each.
#[derive(Debug, Clone)]
pub struct Reap {
    /// Workers whose task is over.
    pub finished: Vec<WorkerId>,
}

impl Request for Reap {
    type Reply = Result<Reaped, Failure>;
}

/// What a [`Reap`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reaped {
    /// Live workers of finished tasks stopped.
    pub stopped: usize,
    /// Sandboxes no worker held, removed.
    pub strays: usize,
}

/// The supervised worker-manager, **the one road to a sandbox**: every spawn, command, stop
/// and reap is a message in its mailbox.
///
/// It is a gate, not a worker: each handler admits its request at once and hands the work
/// to [`Context::spawn_reply`] ([`Deferred`] requests), so a command that runs for minutes
/// never holds up a stop or a spawn behind it, and the actor is always free to answer. The
/// commands waiting for a slot (`workers.max_busy`) are its backlog in the tree and in
/// `/metrics`; their FIFO positions are [`QueueState`]'s answer. Its state (workers, queue)
/// lives in the [`WorkerManager`] the factory hands every run, so a restart of the actor
/// loses no worker; work in flight when a run ends is dropped (its callers hear `Stopped`,
/// and a dropped command kills its process group).
pub struct WorkerManagerActor<R: Sandbox = docker::AnyRuntime> {
    manager: WorkerManager<R>,
}

impl<R: Sandbox> WorkerManagerActor<R> {
    /// An actor answering through `manager`.
    pub fn new(manager: WorkerManager<R>) -> Self {
        Self { manager }
    }

    /// The `worker-manager` node and the road to it: permanent, role `worker-manager`, a
    /// mailbox of [`WORKER_MANAGER_MAILBOX`], its queue of waiting commands as backlog, and a
    /// short handler deadline (handlers only admit; the work's limits are the runtime's).
    pub fn child_spec(
        name: impl Into<String>,
        manager: WorkerManager<R>,
    ) -> (Workers<R>, ChildSpec) {
        let runtime = manager.runtime().kind();
        let store = manager.inner.store.clone();
        let waiting = manager.clone();
        let (addr, spec) =
            ChildSpec::actor_with_capacity(name, WORKER_MANAGER_MAILBOX, move || {
                Self::new(manager.clone())
            });
        let spec = spec
            .role("worker-manager")
            .deadline(Some(std::time::Duration::from_secs(30)))
            .backlog(move || waiting.inner.slots.waiting().len());
        (
            Workers {
                addr,
                runtime,
                store,
            },
            spec,
        )
    }
}

/// The worker-manager's mailbox bound: every task's roles talk to it, so it is deeper than
/// a role's.
pub const WORKER_MANAGER_MAILBOX: usize = 1024;

impl<R: Sandbox> Actor for WorkerManagerActor<R> {}

impl<R: Sandbox> Handler<Deferred<SpawnWorker>> for WorkerManagerActor<R> {
    async fn handle(
        &mut self,
        msg: Deferred<SpawnWorker>,
        ctx: &mut Context<Self>,
    ) -> Later<Result<WorkerDto, Failure>> {
        let manager = self.manager.clone();
        ctx.spawn_reply(async move { manager.spawn(msg.0.spec).await.map_err(|e| e.to_failure()) })
    }
}

impl<R: Sandbox> Handler<Deferred<RunCommand>> for WorkerManagerActor<R> {
    async fn handle(
        &mut self,
        msg: Deferred<RunCommand>,
        ctx: &mut Context<Self>,
    ) -> Later<Result<CommandOutcome, Failure>> {
        let manager = self.manager.clone();
        ctx.spawn_reply(async move { manager.run(msg.0).await.map_err(|e| e.to_failure()) })
    }
}

impl<R: Sandbox> Handler<Deferred<StopWorker>> for WorkerManagerActor<R> {
    async fn handle(
        &mut self,
        msg: Deferred<StopWorker>,
        ctx: &mut Context<Self>,
    ) -> Later<Result<WorkerDto, Failure>> {
        let manager = self.manager.clone();
        let StopWorker { worker, reason } = msg.0;
        ctx.spawn_reply(async move {
            manager
                .stop(worker, &reason)
                .await
                .map_err(|e| e.to_failure())
        })
    }
}

impl<R: Sandbox> Handler<Deferred<WorkerCommand>> for WorkerManagerActor<R> {
    async fn handle(
        &mut self,
        msg: Deferred<WorkerCommand>,
        ctx: &mut Context<Self>,
    ) -> Later<WorkerReply> {
        let manager = self.manager.clone();
        ctx.spawn_reply(async move { manager.handle(msg.0).await })
    }
}

impl<R: Sandbox> Handler<Deferred<Reap>> for WorkerManagerActor<R> {
    async fn handle(
        &mut self,
        msg: Deferred<Reap>,
        ctx: &mut Context<Self>,
    ) -> Later<Result<Reaped, Failure>> {
        let manager = self.manager.clone();
        ctx.spawn_reply(async move {
            let mut stopped = 0;
            for id in msg.0.finished {
                if manager.worker(id).is_some()
                    && manager.stop(id, "its task is over").await.is_ok()
                {
                    stopped += 1;
                }
            }
            let strays = manager.sweep_strays().await.map_err(|e| e.to_failure())?;
            Ok(Reaped { stopped, strays })
        })
    }
}

impl<R: Sandbox> Handler<SandboxOf> for WorkerManagerActor<R> {
    async fn handle(&mut self, msg: SandboxOf, _ctx: &mut Context<Self>) -> Option<SandboxInfo> {
        self.manager.sandbox(msg.0)
    }

    fn handle_now(
        &mut self,
        msg: SandboxOf,
        _ctx: &mut Context<Self>,
    ) -> Result<Option<SandboxInfo>, SandboxOf> {
        Ok(self.manager.sandbox(msg.0))
    }
}

impl<R: Sandbox> Handler<QueueState> for WorkerManagerActor<R> {
    async fn handle(&mut self, _msg: QueueState, _ctx: &mut Context<Self>) -> Queue {
        self.queue_now()
    }

    fn handle_now(
        &mut self,
        _msg: QueueState,
        _ctx: &mut Context<Self>,
    ) -> Result<Queue, QueueState> {
        Ok(self.queue_now())
    }
}

impl<R: Sandbox> WorkerManagerActor<R> {
    fn queue_now(&self) -> Queue {
        Queue {
            busy: self.manager.busy(),
            waiting: self.manager.queue(),
        }
    }
}

/// The road to a sandbox: what roles, jobs and the API hold to reach the worker-manager
/// actor. Cheap to clone; every action is a message in the actor's mailbox. Reads of the
/// store's worker records (lists for the API) go to the store, the source of truth.
pub struct Workers<R: Sandbox = docker::AnyRuntime> {
    addr: Addr<WorkerManagerActor<R>>,
    runtime: WorkerRuntime,
    store: Store,
}

impl<R: Sandbox> Clone for Workers<R> {
    fn clone(&self) -> Self {
        Self {
            addr: self.addr.clone(),
            runtime: self.runtime,
            store: self.store.clone(),
        }
    }
}

impl<R: Sandbox> std::fmt::Debug for Workers<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workers")
            .field("runtime", &self.runtime)
            .field("mailbox", &self.addr.depth())
            .finish_non_exhaustive()
    }
}

/// A call to the worker-manager that did not get an answer, as a classified failure.
fn unanswered(err: CallError) -> Failure {
    Failure {
        class: err.class(),
        reason: format!("the worker-manager did not answer: {err}"),
        retry_after_ms: None,
    }
}

impl<R: Sandbox> Workers<R> {
    /// The runtime the worker-manager runs workers on.
    pub fn runtime(&self) -> WorkerRuntime {
        self.runtime
    }

    /// Spawns a worker ([`SpawnWorker`]).
    pub async fn spawn(&self, spec: WorkerSpec) -> Result<WorkerDto, Failure> {
        self.addr
            .call_later(SpawnWorker { spec })
            .await
            .unwrap_or_else(|e| Err(unanswered(e)))
    }

    /// Runs one command in a ready worker and waits for it, its turn in the queue included
    /// ([`RunCommand`]).
    pub async fn run(&self, command: RunCommand) -> Result<CommandOutcome, Failure> {
        self.addr
            .call_later(command)
            .await
            .unwrap_or_else(|e| Err(unanswered(e)))
    }

    /// Stops a worker ([`StopWorker`]).
    pub async fn stop(&self, worker: WorkerId, reason: &str) -> Result<WorkerDto, Failure> {
        self.addr
            .call_later(StopWorker {
                worker,
                reason: reason.to_owned(),
            })
            .await
            .unwrap_or_else(|e| Err(unanswered(e)))
    }

    /// Answers one catalog command (the worker-manager streams' path).
    pub async fn handle(&self, command: WorkerCommand) -> WorkerReply {
        self.addr
            .call_later(command)
            .await
            .unwrap_or_else(|e| WorkerReply::Failed(unanswered(e)))
    }

    /// Stops the live workers among `finished` and removes stray sandboxes ([`Reap`]).
    pub async fn reap(&self, finished: Vec<WorkerId>) -> Result<Reaped, Failure> {
        self.addr
            .call_later(Reap { finished })
            .await
            .unwrap_or_else(|e| Err(unanswered(e)))
    }

    /// Where a live worker's sandbox is ([`SandboxOf`]).
    pub async fn sandbox(&self, worker: WorkerId) -> Result<Option<SandboxInfo>, Failure> {
        self.addr.call(SandboxOf(worker)).await.map_err(unanswered)
    }

    /// The commands running and the workers waiting for a slot ([`QueueState`]).
    pub async fn queue(&self) -> Result<Queue, Failure> {
        self.addr.call(QueueState).await.map_err(unanswered)
    }

    /// Messages waiting in the worker-manager's mailbox.
    pub fn mailbox_depth(&self) -> usize {
        self.addr.depth()
    }

    /// The newest workers of `owner`'s projects (everyone's for `None`), from the store.
    pub async fn list(
        &self,
        owner: Option<artel_messages::UserId>,
        limit: u32,
    ) -> Result<Vec<WorkerDto>, Failure> {
        records::list(&self.store, owner, limit)
            .await
            .map_err(|e| e.to_failure())
    }

    /// One worker's stored record, if it exists.
    pub async fn record(&self, id: WorkerId) -> Result<Option<WorkerDto>, Failure> {
        records::load(&self.store, id)
            .await
            .map_err(|e| e.to_failure())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn working_directories_stay_inside() {
        assert_eq!(
            check_relative_cwd("src/./app").unwrap(),
            PathBuf::from("src/app")
        );
        assert_eq!(check_relative_cwd(".").unwrap(), PathBuf::new());
        for bad in ["/etc", "../x", "a/../../b"] {
            let err = check_relative_cwd(bad).unwrap_err();
            assert_eq!(err.class(), ErrorClass::Fatal, "{bad}");
        }
    }

    #[test]
    fn kills_are_failures_and_exits_are_not() {
        let limits = WorkerLimits {
            cpu_seconds: 2,
            memory_bytes: 1 << 20,
            pids: 8,
            file_size_bytes: 1 << 20,
            wall_clock_timeout_secs: 3,
        };
        let exit = RunEnd {
            exit_code: Some(1),
            signal: None,
            timed_out: false,
            cancelled: false,
            oom_killed: false,
        };
        assert_eq!(killed_reason(&exit, &limits), None);
        let cpu = RunEnd {
            exit_code: None,
            signal: Some(Signal::SIGXCPU as i32),
            ..exit
        };
        assert!(
            killed_reason(&cpu, &limits)
                .unwrap()
                .contains("CPU limit (2s)")
        );
        let timeout = RunEnd {
            exit_code: None,
            signal: Some(9),
            timed_out: true,
            cancelled: false,
            oom_killed: false,
        };
        assert!(
            killed_reason(&timeout, &limits)
                .unwrap()
                .starts_with("timed out after 3s")
        );
    }

    #[test]
    fn spawn_trouble_is_retryable_and_bad_requests_fatal() {
        let spawn = WorkerError::Spawn {
            program: "x".into(),
            source: io::Error::other("EAGAIN"),
        };
        assert_eq!(spawn.to_failure().class, ErrorClass::Retryable);
        assert_eq!(spawn.to_failure().reason, "cannot start `x`: EAGAIN");
        assert_eq!(
            WorkerError::InvalidSpec("x".into()).class(),
            ErrorClass::Fatal
        );
        assert_eq!(
            WorkerError::Busy(WorkerId::new()).class(),
            ErrorClass::Fatal
        );
    }

    #[test]
    fn tails_keep_the_last_lines() {
        let mut tail = Tail::default();
        for line in ["a", "b", "c"] {
            tail.push(line, 2);
        }
        assert_eq!(tail.text(), "b\nc");
    }
}
