//! The Docker worker runtime (bollard): one container per worker from the locally built
//! worker image (`artel worker-image build`), with the worker's limits enforced by the
//! kernel's cgroups rather than by `ulimit` alone.
//!
//! A container is created and started idle (`sleep infinity`) when the worker is created;
//! each command is a `docker exec` in it. The container:
//! - is labelled `managed-by=artel`, `artel-owner` (this artel instance), `artel-worker`,
//!   `artel-project`, `artel-task`, and named `artel-worker-<worker id>`;
//! - runs as uid 64000, with every capability dropped and `no-new-privileges`;
//! - has a read-only root, a private `/tmp` tmpfs, and the worker's host workspace mounted
//!   read-write at `/workspace` (the roles prepare checkouts there, as for local workers);
//! - has no network, no Docker socket, a memory limit without swap, and a pids limit;
//! - runs each command under the CPU-time and file-size `ulimit`s, and is killed when the
//!   wall-clock timeout passes or the worker is stopped.
//!
//! A command killed by the memory cgroup ends as a failure that says so (the cgroup's
//! `oom_kill` counter is read from the host, cgroup v1 or v2).
//!
//! **Warm pool.** With [`DockerConfig::warm`] set, the runtime keeps that many containers
//! created, started and idle (`artel-pool-<id>`, labelled `artel-pool`), each with its own
//! empty workspace. A worker whose spec fits the pool (the configured image and the pool's
//! memory and pids limits, no network) takes one: the container is renamed
//! `artel-worker-<worker id>` and its workspace directory moved to the worker's (a bind
//! mount follows the directory, not its path), and the pool makes a new one in the
//! background. Docker labels are fixed at creation, so a pooled container carries no
//! `artel-worker`/`artel-project`/`artel-task` labels: its name says which worker it is, and
//! the worker's row its project and task. Anything else gets a container made for it.
//!
//! **Strays.** [`DockerRuntime::remove_strays`] removes this instance's containers that no
//! live worker holds and the pool does not hold: at start (what a killed artel left,
//! including its pool) and from the scheduler's worker-reaper job.

use super::{
    Job, OutputStream, RunEnd, RunEvent, Sandbox, SandboxInfo, WorkerError, check_relative_cwd,
};
use artel_messages::WorkerId;
use artel_messages::worker_manager::{WorkerRuntime, WorkerSpec};
use bollard::Docker;
use bollard::container::{
    Config, CreateContainerOptions, KillContainerOptions, ListContainersOptions, LogOutput,
    RemoveContainerOptions,
};
use bollard::exec::{CreateExecOptions, StartExecResults};
use bollard::models::HostConfig;
use futures_util::StreamExt as _;
use std::collections::{HashMap, HashSet, VecDeque};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::{mpsc, watch};

/// The uid (and gid) worker containers run as; the worker image's `worker` user.
pub const WORKER_UID: u32 = 64_000;

/// Label every worker container carries.
pub const MANAGED_BY: (&str, &str) = ("managed-by", "artel");

/// How the Docker runtime is set up.
#[derive(Debug, Clone)]
pub struct DockerConfig {
    /// Where the workers' host workspaces live (each `<root>/<worker id>/work`).
    pub root: PathBuf,
    /// The worker image.
    pub image: String,
    /// This artel instance's name: only its own containers are reaped.
    pub owner: String,
    /// The warm pool, if any.
    pub warm: Option<WarmPool>,
}

/// How many idle containers to keep ready, and the container limits they are made with (a
/// spec with other limits gets a container of its own).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WarmPool {
    /// Containers kept ready.
    pub size: usize,
    /// Their memory limit, in bytes.
    pub memory_bytes: u64,
    /// Their pids limit.
    pub pids: u32,
}

/// What a worker container is made with: the image and the limits Docker enforces for the
/// container's life (per-command limits are applied to each `exec`). The warm pool holds
/// containers of one shape; a worker whose shape differs gets a container made for it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Shape {
    image: String,
    memory_bytes: u64,
    pids: u32,
    network: bool,
}

impl Shape {
    /// The shape `spec` asks for, `image` being the configured worker image.
    fn of(spec: &WorkerSpec, image: &str) -> Self {
        Self {
            image: spec.image.clone().unwrap_or_else(|| image.to_owned()),
            memory_bytes: spec.limits.memory_bytes,
            pids: spec.limits.pids,
            network: spec.network,
        }
    }
}

/// How old an unheld container must be before a periodic sweep removes it.
const STRAY_MIN_AGE: std::time::Duration = std::time::Duration::from_secs(60);

/// Label of the warm pool's containers.
pub const POOL_LABEL: &str = "artel-pool";

/// The warm pool's state, shared by the runtime's clones and its refill task.
struct Pool {
    /// Containers kept ready.
    size: usize,
    /// The shape of every pooled container: the configured image, offline.
    shape: Shape,
    /// Started containers waiting for a worker, oldest first.
    ready: std::sync::Mutex<VecDeque<Warm>>,
    /// Names of the pool's containers, being made or ready: the stray sweep leaves them.
    known: std::sync::Mutex<HashSet<String>>,
    /// Wakes the refill task; dropped with the pool, which ends the task.
    refill: mpsc::Sender<()>,
    /// Set by [`DockerRuntime::drain_pool`]: nothing more is made or kept.
    closed: std::sync::atomic::AtomicBool,
}

/// A ready container of the pool.
struct Warm {
    container: String,
    dir: PathBuf,
}

impl Pool {
    fn take(&self) -> Option<Warm> {
        if self.closed.load(std::sync::atomic::Ordering::SeqCst) {
            return None;
        }
        let warm = lock(&self.ready).pop_front();
        let _ = self.refill.try_send(());
        warm
    }

    fn holds(&self, name: &str) -> bool {
        lock(&self.known).contains(name)
    }
}

fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The Docker runtime.
#[derive(Clone)]
pub struct DockerRuntime {
    docker: Docker,
    config: DockerConfig,
    pool: Option<Arc<Pool>>,
}

/// One worker's container.
#[derive(Debug)]
pub struct DockerSandbox {
    container: String,
    dir: PathBuf,
    work: PathBuf,
}

impl DockerSandbox {
    /// The container's name.
    pub fn container(&self) -> &str {
        &self.container
    }
}

fn docker_error(what: &'static str) -> impl FnOnce(bollard::errors::Error) -> WorkerError {
    move |err| WorkerError::Io {
        what,
        source: io::Error::other(err.to_string()),
    }
}

/// The container of worker `worker`.
pub fn container_name(worker: WorkerId) -> String {
    format!("artel-worker-{worker}")
}

impl DockerRuntime {
    /// Connects to the local daemon (`DOCKER_HOST` or the default socket), negotiating the
    /// API version, and checks that the worker image exists.
    pub async fn connect(config: DockerConfig) -> Result<Self, WorkerError> {
        let docker = Docker::connect_with_local_defaults()
            .map_err(docker_error("connecting to the Docker daemon"))?
            .negotiate_version()
            .await
            .map_err(docker_error("talking to the Docker daemon"))?;
        docker.inspect_image(&config.image).await.map_err(|err| {
            WorkerError::Setup(format!(
                "the worker image {} is missing ({err}): run `artel worker-image build`",
                config.image
            ))
        })?;
        tokio::fs::create_dir_all(&config.root)
            .await
            .map_err(|source| WorkerError::Workspace {
                path: config.root.clone(),
                source,
            })?;
        let mut runtime = Self {
            docker,
            config,
            pool: None,
        };
        if let Some(warm) = runtime.config.warm.filter(|w| w.size > 0) {
            let (refill, wake) = mpsc::channel(1);
            let pool = Arc::new(Pool {
                size: warm.size,
                shape: Shape {
                    image: runtime.config.image.clone(),
                    memory_bytes: warm.memory_bytes,
                    pids: warm.pids,
                    network: false,
                },
                ready: Default::default(),
                known: Default::default(),
                refill,
                closed: Default::default(),
            });
            let _ = pool.refill.try_send(());
            tokio::spawn(refill_pool(runtime.clone(), Arc::downgrade(&pool), wake));
            runtime.pool = Some(pool);
        }
        Ok(runtime)
    }

    /// How many warm containers are ready now.
    pub fn warm_ready(&self) -> usize {
        self.pool.as_ref().map_or(0, |pool| lock(&pool.ready).len())
    }

    /// Closes the pool and removes its containers, ready or being made (artel's shutdown);
    /// what a killed process leaves is swept at the next start.
    pub async fn drain_pool(&self) {
        let Some(pool) = &self.pool else {
            return;
        };
        pool.closed.store(true, std::sync::atomic::Ordering::SeqCst);
        let ready: Vec<Warm> = lock(&pool.ready).drain(..).collect();
        for warm in ready {
            self.discard(&warm.container, &warm.dir).await;
            lock(&pool.known).remove(&warm.container);
        }
        // A container being made right now removes itself once made (the pool is closed);
        // wait for that, so a process that exits next leaves nothing behind.
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(15);
        while !lock(&pool.known).is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// Makes one warm container and puts it in the pool.
    async fn make_warm(&self, pool: &Pool) -> Result<(), WorkerError> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let name = format!("artel-pool-{id}");
        let dir = self.config.root.join(format!("pool-{id}"));
        lock(&pool.known).insert(name.clone());
        let labels = HashMap::from([
            (MANAGED_BY.0.to_owned(), MANAGED_BY.1.to_owned()),
            ("artel-owner".to_owned(), self.config.owner.clone()),
            (POOL_LABEL.to_owned(), "ready".to_owned()),
        ]);
        let made = self.make_container(&name, &dir, labels, &pool.shape).await;
        match made {
            Ok(work) => {
                debug_assert!(work.starts_with(&dir));
                if pool.closed.load(std::sync::atomic::Ordering::SeqCst) {
                    // Drained while this one was being made.
                    self.discard(&name, &dir).await;
                    lock(&pool.known).remove(&name);
                    return Ok(());
                }
                lock(&pool.ready).push_back(Warm {
                    container: name,
                    dir,
                });
                Ok(())
            }
            Err(err) => {
                lock(&pool.known).remove(&name);
                Err(err)
            }
        }
    }

    /// Gives a warm container to `worker`: renamed after it, its workspace moved to the
    /// worker's directory.
    async fn adopt(
        &self,
        pool: &Pool,
        warm: Warm,
        worker: WorkerId,
    ) -> Result<DockerSandbox, WorkerError> {
        let name = container_name(worker);
        let dir = self.config.root.join(worker.to_string());
        let renamed = self
            .docker
            .rename_container(
                &warm.container,
                bollard::container::RenameContainerOptions { name: name.clone() },
            )
            .await;
        lock(&pool.known).remove(&warm.container);
        if let Err(err) = renamed {
            self.discard(&warm.container, &warm.dir).await;
            return Err(docker_error("renaming a warm container")(err));
        }
        // A container that died while it waited (the daemon restarted) is no worker.
        let running = self
            .docker
            .inspect_container(&name, None)
            .await
            .ok()
            .and_then(|c| c.state)
            .and_then(|state| state.running)
            .unwrap_or(false);
        if !running {
            self.discard(&name, &warm.dir).await;
            return Err(WorkerError::Setup(format!(
                "the warm container {} is not running any more",
                warm.container
            )));
        }
        if let Err(source) = tokio::fs::rename(&warm.dir, &dir).await {
            self.discard(&name, &warm.dir).await;
            return Err(WorkerError::Workspace { path: dir, source });
        }
        Ok(DockerSandbox {
            container: name,
            work: dir.join("work"),
            dir,
        })
    }

    /// The settings it runs with.
    pub fn config(&self) -> &DockerConfig {
        &self.config
    }

    /// Removes every worker container of this instance (labelled `artel-worker` or
    /// `artel-pool`; service containers are not its business), created at least `min_age`
    /// ago, that neither a live worker of `live` nor the warm pool holds — what a crashed artel left
    /// behind, its warm pool included. `min_age` keeps a sweep that runs beside spawns from
    /// racing a worker created after `live` was read. Answers how many it removed.
    pub async fn remove_strays(
        &self,
        live: &[WorkerId],
        min_age: std::time::Duration,
    ) -> Result<usize, WorkerError> {
        let mut filters = HashMap::new();
        filters.insert(
            "label".to_owned(),
            vec![
                format!("{}={}", MANAGED_BY.0, MANAGED_BY.1),
                format!("artel-owner={}", self.config.owner),
            ],
        );
        let containers = self
            .docker
            .list_containers(Some(ListContainersOptions {
                all: true,
                filters,
                ..Default::default()
            }))
            .await
            .map_err(docker_error("listing worker containers"))?;
        let live: HashSet<String> = live.iter().map(ToString::to_string).collect();
        let now = chrono::Utc::now().timestamp();
        let min_age_secs = i64::try_from(min_age.as_secs()).unwrap_or(i64::MAX);
        let mut removed = 0;
        for container in containers {
            let name = container
                .names
                .as_ref()
                .and_then(|names| names.first())
                .map(|n| n.trim_start_matches('/').to_owned())
                .unwrap_or_default();
            // Only worker and pool containers: services carry the same owner label.
            let labels = container.labels.as_ref();
            let is_worker = labels
                .is_some_and(|l| l.contains_key("artel-worker") || l.contains_key(POOL_LABEL));
            if !is_worker || self.pool.as_ref().is_some_and(|pool| pool.holds(&name)) {
                continue;
            }
            let young = container
                .created
                .is_some_and(|created| created > now.saturating_sub(min_age_secs));
            if young {
                continue;
            }
            // A container made for its worker is labelled; a pooled one is named after it.
            let worker = container
                .labels
                .as_ref()
                .and_then(|l| l.get("artel-worker"))
                .cloned()
                .or_else(|| name.strip_prefix("artel-worker-").map(str::to_owned));
            if worker.is_some_and(|w| live.contains(&w)) {
                continue;
            }
            let Some(id) = container.id else { continue };
            // A pool container of a previous run has a workspace of its own to remove.
            match name.strip_prefix("artel-pool-") {
                Some(pool_id) => {
                    let dir = self.config.root.join(format!("pool-{pool_id}"));
                    self.discard(&id, &dir).await;
                }
                None => self.remove(&id).await,
            }
            removed += 1;
        }
        Ok(removed)
    }

    async fn remove(&self, container: &str) {
        let removed = self
            .docker
            .remove_container(
                container,
                Some(RemoveContainerOptions {
                    force: true,
                    v: true,
                    ..Default::default()
                }),
            )
            .await;
        if let Err(err) = removed
            && !err.to_string().contains("No such container")
        {
            tracing::warn!(container, error = %err, "cannot remove a worker container");
        }
    }

    async fn kill(&self, container: &str) {
        let _ = self
            .docker
            .kill_container(container, Some(KillContainerOptions { signal: "KILL" }))
            .await;
    }

    /// How many times the container's memory cgroup has killed a process, if the host
    /// exposes it (cgroup v1 with the cgroupfs driver, or v2).
    async fn oom_kills(&self, container: &str) -> Option<u64> {
        let id = self
            .docker
            .inspect_container(container, None)
            .await
            .ok()?
            .id?;
        let candidates = [
            (
                format!("/sys/fs/cgroup/memory/docker/{id}/memory.oom_control"),
                "oom_kill ",
            ),
            (
                format!("/sys/fs/cgroup/docker/{id}/memory.events"),
                "oom_kill ",
            ),
            (
                format!("/sys/fs/cgroup/system.slice/docker-{id}.scope/memory.events"),
                "oom_kill ",
            ),
        ];
        for (path, key) in candidates {
            if let Ok(text) = tokio::fs::read_to_string(&path).await {
                return text
                    .lines()
                    .find_map(|l| l.strip_prefix(key))
                    .and_then(|n| n.trim().parse().ok());
            }
        }
        None
    }
}

impl DockerRuntime {
    /// Creates and starts an idle container named `name` of `shape`, with its workspace
    /// `<dir>/work` bound at `/workspace`; answers the workspace. Nothing is left behind on
    /// failure.
    async fn make_container(
        &self,
        name: &str,
        dir: &Path,
        labels: HashMap<String, String>,
        shape: &Shape,
    ) -> Result<PathBuf, WorkerError> {
        let work = dir.join("work");
        let io_err = |path: &Path| {
            let path = path.to_owned();
            move |source| WorkerError::Workspace { path, source }
        };
        tokio::fs::create_dir_all(&work)
            .await
            .map_err(io_err(&work))?;
        std::os::unix::fs::chown(&work, Some(WORKER_UID), Some(WORKER_UID))
            .map_err(io_err(&work))?;
        let memory = i64::try_from(shape.memory_bytes).unwrap_or(i64::MAX);
        let network = shape.network;
        let config = Config {
            image: Some(shape.image.clone()),
            cmd: Some(vec!["sleep".to_owned(), "infinity".to_owned()]),
            user: Some(format!("{WORKER_UID}:{WORKER_UID}")),
            working_dir: Some("/workspace".to_owned()),
            labels: Some(labels),
            network_disabled: Some(!network),
            host_config: Some(HostConfig {
                memory: Some(memory),
                memory_swap: Some(memory),
                pids_limit: Some(i64::from(shape.pids)),
                readonly_rootfs: Some(true),
                tmpfs: Some(HashMap::from([(
                    "/tmp".to_owned(),
                    "rw,nosuid,nodev,size=64m".to_owned(),
                )])),
                network_mode: Some(if network { "bridge" } else { "none" }.to_owned()),
                cap_drop: Some(vec!["ALL".to_owned()]),
                security_opt: Some(vec!["no-new-privileges".to_owned()]),
                binds: Some(vec![format!("{}:/workspace:rw", work.display())]),
                init: Some(true),
                ..Default::default()
            }),
            ..Default::default()
        };
        let created = self
            .docker
            .create_container(
                Some(CreateContainerOptions {
                    name: name.to_owned(),
                    platform: None,
                }),
                config,
            )
            .await;
        if let Err(err) = created {
            let _ = tokio::fs::remove_dir_all(dir).await;
            return Err(docker_error("creating a worker container")(err));
        }
        if let Err(err) = self.docker.start_container::<String>(name, None).await {
            self.discard(name, dir).await;
            return Err(docker_error("starting a worker container")(err));
        }
        Ok(work)
    }

    /// Removes a container and the directory holding its workspace, as far as they exist.
    async fn discard(&self, container: &str, dir: &Path) {
        self.remove(container).await;
        let _ = tokio::fs::remove_dir_all(dir).await;
    }
}

/// Keeps the pool full: wakes when a container is taken (or at start), makes containers
/// until `size` are ready, and ends when the pool is dropped. A failure to make one is
/// logged and tried again after a pause that doubles up to 30 s (the daemon may be
/// restarting); workers meanwhile get containers made for them.
async fn refill_pool(
    runtime: DockerRuntime,
    pool: std::sync::Weak<Pool>,
    mut wake: mpsc::Receiver<()>,
) {
    let runtime = DockerRuntime {
        pool: None,
        ..runtime
    };
    const FIRST_PAUSE: std::time::Duration = std::time::Duration::from_secs(1);
    while wake.recv().await.is_some() {
        let mut pause = FIRST_PAUSE;
        loop {
            let Some(pool) = pool.upgrade() else { return };
            if pool.closed.load(std::sync::atomic::Ordering::SeqCst) {
                return;
            }
            if lock(&pool.ready).len() >= pool.size {
                break;
            }
            match runtime.make_warm(&pool).await {
                Ok(()) => pause = FIRST_PAUSE,
                Err(err) => {
                    tracing::warn!(error = %err, retry_in = ?pause, "cannot make a warm worker container");
                    drop(pool);
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(std::time::Duration::from_secs(30));
                }
            }
        }
    }
}

impl crate::health::Probe for DockerRuntime {
    fn name(&self) -> &'static str {
        "docker"
    }

    fn check(&self) -> futures_util::future::BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            self.docker
                .ping()
                .await
                .map(drop)
                .map_err(|e| format!("the Docker daemon does not answer: {e}"))
        })
    }
}

/// `ulimit`s for what cgroups do not cover here (CPU time, file size, core dumps).
fn limit_script(job: &Job) -> String {
    let limits = &job.limits;
    format!(
        "ulimit -c 0 && ulimit -t {cpu} && ulimit -f {blocks} && exec \"$0\" \"$@\"",
        cpu = limits.cpu_seconds.max(1),
        blocks = limits.file_size_bytes.div_ceil(512).max(1),
    )
}

impl Sandbox for DockerRuntime {
    type Instance = DockerSandbox;

    fn kind(&self) -> WorkerRuntime {
        WorkerRuntime::Docker
    }

    async fn create(
        &self,
        worker: WorkerId,
        spec: &WorkerSpec,
    ) -> Result<DockerSandbox, WorkerError> {
        let shape = Shape::of(spec, &self.config.image);
        if let Some(pool) = self.pool.as_ref().filter(|pool| pool.shape == shape)
            && let Some(warm) = pool.take()
        {
            match self.adopt(pool, warm, worker).await {
                Ok(sandbox) => return Ok(sandbox),
                Err(err) => {
                    tracing::warn!(%worker, error = %err, "a warm container could not be adopted; making one")
                }
            }
        }
        let dir = self.config.root.join(worker.to_string());
        let name = container_name(worker);
        let labels = HashMap::from([
            (MANAGED_BY.0.to_owned(), MANAGED_BY.1.to_owned()),
            ("artel-owner".to_owned(), self.config.owner.clone()),
            ("artel-worker".to_owned(), worker.to_string()),
            ("artel-project".to_owned(), spec.project.to_string()),
            ("artel-task".to_owned(), spec.task.to_string()),
        ]);
        let work = self.make_container(&name, &dir, labels, &shape).await?;
        Ok(DockerSandbox {
            container: name,
            dir,
            work,
        })
    }

    fn describe(&self, sandbox: &DockerSandbox) -> SandboxInfo {
        SandboxInfo {
            workspace: Some(sandbox.work.clone()),
            uid: Some(WORKER_UID),
        }
    }

    async fn run(
        &self,
        sandbox: &DockerSandbox,
        job: Job,
        events: mpsc::Sender<RunEvent>,
        mut cancel: watch::Receiver<bool>,
    ) -> Result<RunEnd, WorkerError> {
        let cwd = match job.cwd.as_deref() {
            Some(cwd) => Path::new("/workspace").join(check_relative_cwd(cwd)?),
            None => PathBuf::from("/workspace"),
        };
        let mut cmd = vec![
            "sh".to_owned(),
            "-c".to_owned(),
            limit_script(&job),
            job.program.clone(),
        ];
        cmd.extend(job.args.iter().cloned());
        let mut env = vec![
            "PATH=/usr/local/bin:/usr/bin:/bin".to_owned(),
            "HOME=/workspace".to_owned(),
            "TMPDIR=/tmp".to_owned(),
            "LANG=C.UTF-8".to_owned(),
        ];
        env.extend(job.env.iter().map(|(k, v)| format!("{k}={v}")));
        let oom_before = self.oom_kills(&sandbox.container).await.unwrap_or(0);
        let exec = self
            .docker
            .create_exec(
                &sandbox.container,
                CreateExecOptions {
                    cmd: Some(cmd),
                    env: Some(env),
                    working_dir: Some(cwd.display().to_string()),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    ..Default::default()
                },
            )
            .await
            .map_err(|err| WorkerError::Spawn {
                program: job.program.clone(),
                source: io::Error::other(err.to_string()),
            })?;
        let started = self
            .docker
            .start_exec(&exec.id, None)
            .await
            .map_err(|err| WorkerError::Spawn {
                program: job.program.clone(),
                source: io::Error::other(err.to_string()),
            })?;
        let StartExecResults::Attached { mut output, .. } = started else {
            return Err(WorkerError::Spawn {
                program: job.program,
                source: io::Error::other("the exec did not attach"),
            });
        };
        let _ = events
            .send(RunEvent::Started {
                handle: format!("container:{}", sandbox.container),
            })
            .await;
        let mut lines = Lines::new(job.max_line_bytes);
        let timeout = tokio::time::sleep(job.limits.wall_clock_timeout());
        tokio::pin!(timeout);
        let (mut timed_out, mut cancelled) = (false, false);
        loop {
            tokio::select! {
                chunk = output.next() => match chunk {
                    Some(Ok(LogOutput::StdOut { message })) => {
                        lines.feed(OutputStream::Stdout, &message, &events).await;
                    }
                    Some(Ok(LogOutput::StdErr { message })) => {
                        lines.feed(OutputStream::Stderr, &message, &events).await;
                    }
                    Some(Ok(_)) => {}
                    Some(Err(_)) | None => break,
                },
                () = &mut timeout, if !timed_out && !cancelled => {
                    timed_out = true;
                    self.kill(&sandbox.container).await;
                }
                changed = cancel.changed(), if !timed_out && !cancelled => {
                    if changed.is_ok() && *cancel.borrow() {
                        cancelled = true;
                        self.kill(&sandbox.container).await;
                    }
                }
            }
        }
        lines.flush(&events).await;
        let code = self
            .docker
            .inspect_exec(&exec.id)
            .await
            .ok()
            .and_then(|i| i.exit_code);
        let oom_killed = !timed_out
            && !cancelled
            && self.oom_kills(&sandbox.container).await.unwrap_or(0) > oom_before;
        // `sh` reports a child killed by signal N as 128 + N.
        let (exit_code, signal) = match code.and_then(|c| i32::try_from(c).ok()) {
            Some(c) if c > 128 && c < 160 => (None, Some(c - 128)),
            Some(c) if !timed_out && !cancelled => (Some(c), None),
            _ => (None, Some(9)),
        };
        Ok(RunEnd {
            exit_code,
            signal,
            timed_out,
            cancelled,
            oom_killed,
        })
    }

    async fn reap(&self, workspace: Option<&Path>, _uid: Option<u32>) {
        // The workspace is `<root>/<worker id>/work`: its worker names the container.
        let Some(dir) = workspace
            .filter(|w| w.starts_with(&self.config.root))
            .and_then(Path::parent)
        else {
            return;
        };
        if let Some(worker) = dir.file_name().and_then(|n| n.to_str()) {
            self.remove(&format!("artel-worker-{worker}")).await;
        }
        if let Err(err) = tokio::fs::remove_dir_all(dir).await
            && err.kind() != io::ErrorKind::NotFound
        {
            tracing::warn!(workspace = %dir.display(), error = %err, "cannot remove an orphaned workspace");
        }
    }

    async fn sweep(&self, live: &[WorkerId]) -> Result<usize, WorkerError> {
        self.remove_strays(live, STRAY_MIN_AGE).await
    }

    async fn shutdown(&self) {
        self.drain_pool().await;
    }

    async fn destroy(&self, sandbox: &DockerSandbox) -> Result<(), WorkerError> {
        self.remove(&sandbox.container).await;
        match tokio::fs::remove_dir_all(&sandbox.dir).await {
            Ok(()) => Ok(()),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(WorkerError::Workspace {
                path: sandbox.dir.clone(),
                source,
            }),
        }
    }
}

/// Splits a stream of output chunks into lines, cut at the line limit.
struct Lines {
    max: usize,
    partial: HashMap<u8, Vec<u8>>,
}

impl Lines {
    fn new(max: usize) -> Self {
        Self {
            max: max.max(1),
            partial: HashMap::new(),
        }
    }

    fn key(stream: OutputStream) -> u8 {
        match stream {
            OutputStream::Stdout => 1,
            OutputStream::Stderr => 2,
        }
    }

    async fn feed(&mut self, stream: OutputStream, chunk: &[u8], events: &mpsc::Sender<RunEvent>) {
        let buffer = self.partial.entry(Self::key(stream)).or_default();
        buffer.extend_from_slice(chunk);
        let mut complete = Vec::new();
        while let Some(at) = buffer.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buffer.drain(..=at).collect();
            complete.push(line[..line.len() - 1].to_vec());
        }
        // A line longer than ten times the limit is cut now, so memory stays bounded.
        if buffer.len() > self.max * 10 {
            complete.push(std::mem::take(buffer));
        }
        for line in complete {
            self.send(stream, line, events).await;
        }
    }

    async fn send(&self, stream: OutputStream, line: Vec<u8>, events: &mpsc::Sender<RunEvent>) {
        let cut_bytes = line.len().saturating_sub(self.max);
        let mut kept = &line[..line.len().min(self.max)];
        while std::str::from_utf8(kept).is_err() && !kept.is_empty() {
            kept = &kept[..kept.len() - 1];
        }
        let text = String::from_utf8_lossy(kept).into_owned();
        let _ = events
            .send(RunEvent::Line {
                stream,
                text,
                cut_bytes,
            })
            .await;
    }

    async fn flush(&mut self, events: &mpsc::Sender<RunEvent>) {
        for stream in [OutputStream::Stdout, OutputStream::Stderr] {
            if let Some(rest) = self.partial.remove(&Self::key(stream))
                && !rest.is_empty()
            {
                self.send(stream, rest, events).await;
            }
        }
    }
}

/// The runtime artel runs workers with, chosen at start (`workers.runtime`): local processes
/// or Docker containers. One enum rather than a trait object, because [`Sandbox`]'s methods
/// return `impl Future`.
pub enum AnyRuntime {
    /// Local processes ([`ProcessRuntime`](super::ProcessRuntime)).
    Process(super::ProcessRuntime),
    /// Docker containers.
    Docker(DockerRuntime),
}

/// A sandbox of either runtime.
#[derive(Debug)]
pub enum AnySandbox {
    /// A local-process sandbox.
    Process(super::process::ProcessSandbox),
    /// A container.
    Docker(DockerSandbox),
}

impl From<super::ProcessRuntime> for AnyRuntime {
    fn from(runtime: super::ProcessRuntime) -> Self {
        Self::Process(runtime)
    }
}

impl From<DockerRuntime> for AnyRuntime {
    fn from(runtime: DockerRuntime) -> Self {
        Self::Docker(runtime)
    }
}

fn mismatch(have: WorkerRuntime) -> WorkerError {
    WorkerError::Setup(format!(
        "a sandbox of another runtime was handed to the {have} runtime"
    ))
}

impl Sandbox for AnyRuntime {
    type Instance = AnySandbox;

    fn kind(&self) -> WorkerRuntime {
        match self {
            Self::Process(r) => r.kind(),
            Self::Docker(r) => r.kind(),
        }
    }

    async fn create(&self, worker: WorkerId, spec: &WorkerSpec) -> Result<AnySandbox, WorkerError> {
        match self {
            Self::Process(r) => r.create(worker, spec).await.map(AnySandbox::Process),
            Self::Docker(r) => r.create(worker, spec).await.map(AnySandbox::Docker),
        }
    }

    fn describe(&self, instance: &AnySandbox) -> SandboxInfo {
        match (self, instance) {
            (Self::Process(r), AnySandbox::Process(s)) => r.describe(s),
            (Self::Docker(r), AnySandbox::Docker(s)) => r.describe(s),
            _ => SandboxInfo::default(),
        }
    }

    async fn run(
        &self,
        instance: &AnySandbox,
        job: Job,
        events: mpsc::Sender<RunEvent>,
        cancel: watch::Receiver<bool>,
    ) -> Result<RunEnd, WorkerError> {
        match (self, instance) {
            (Self::Process(r), AnySandbox::Process(s)) => r.run(s, job, events, cancel).await,
            (Self::Docker(r), AnySandbox::Docker(s)) => r.run(s, job, events, cancel).await,
            _ => Err(mismatch(self.kind())),
        }
    }

    async fn destroy(&self, instance: &AnySandbox) -> Result<(), WorkerError> {
        match (self, instance) {
            (Self::Process(r), AnySandbox::Process(s)) => r.destroy(s).await,
            (Self::Docker(r), AnySandbox::Docker(s)) => r.destroy(s).await,
            _ => Err(mismatch(self.kind())),
        }
    }

    async fn reap(&self, workspace: Option<&Path>, uid: Option<u32>) {
        match self {
            Self::Process(r) => r.reap(workspace, uid).await,
            Self::Docker(r) => r.reap(workspace, uid).await,
        }
    }

    async fn sweep(&self, live: &[WorkerId]) -> Result<usize, WorkerError> {
        match self {
            Self::Process(r) => r.sweep(live).await,
            Self::Docker(r) => r.sweep(live).await,
        }
    }

    async fn shutdown(&self) {
        match self {
            Self::Process(r) => r.shutdown().await,
            Self::Docker(r) => r.shutdown().await,
        }
    }
}
