//! The local deploy target: a service is a process on 127.0.0.1, on a port from a range.
//!
//! Each service runs
//!
//! - **from its workdir**, which is handed (`chown -R`) to the user services run as, with
//!   `HOME` pointing there;
//! - **with a scrubbed environment**: only `PATH`, `LANG`, `HOME`, the spec's variables
//!   (resolved secrets) and `PORT`, `HOST=127.0.0.1`, `DATA_DIR`, `DATA_FILE` — nothing of
//!   artel's own environment (database URL, master key, provider keys) reaches it;
//! - **with a data directory that survives redeploys**: `<root>/data/<project>/`, owned by
//!   the services' user; `DATA_FILE` is `data.json` in it;
//! - **in its own process group**, so stopping it (SIGTERM, then SIGKILL after a grace)
//!   stops everything it started;
//! - **as an unprivileged user when artel is root** ([`DEFAULT_SERVICE_UID`] by default), so
//!   generated code never runs as root. All services share that user: they are isolated from
//!   artel, not from each other;
//! - **with its output appended to `<root>/logs/<deployment>.log`** (readable by artel only),
//!   whose last lines explain a failed health check.
//!
//! The store records each service's port (an allocation) and process group leader. A task
//! per service waits for its exit, records it and kills what is left of its group, so
//! [`LocalTarget::exited`] can tell the scheduler's health job which services died.
//!
//! Dropping every clone of a [`LocalTarget`] abandons its services (they keep running, as
//! after a crash); [`LocalTarget::stop_all`] is the orderly shutdown.

use super::groups;
use super::health::{self, Verdict};
use super::{DeployError, ExitWatch, Restored, RunningService, ServiceExit, ServiceSpec};
use crate::store::{DeploymentRecord, Store};
use artel_messages::deployer::{DeployTarget, Health};
use artel_messages::{DeploymentId, ProjectId};
use nix::errno::Errno;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::io;
use std::ops::RangeInclusive;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use tokio::process::{Child, Command};
use tokio::sync::watch;

/// The ports services get by default.
pub const DEFAULT_PORTS: RangeInclusive<u16> = 18000..=18999;
/// The uid services run as when artel runs as root: no passwd entry needed, and outside the
/// worker-manager's uid range.
pub const DEFAULT_SERVICE_UID: u32 = 64_999;
/// The gid services run as when artel runs as root (`nogroup` on Debian).
pub const DEFAULT_SERVICE_GID: u32 = 65_534;
/// How long a new service has to answer its health check.
pub const DEFAULT_HEALTH_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a stopped service has between SIGTERM and SIGKILL.
pub const DEFAULT_STOP_GRACE: Duration = Duration::from_secs(5);

/// Services' `LANG`.
const LANG: &str = "C.UTF-8";
/// How long to wait for a group to vanish after SIGKILL.
const KILL_WAIT: Duration = Duration::from_secs(3);
/// How much of a log's end a failed health check quotes.
const LOG_TAIL_BYTES: u64 = 4096;
/// How many lines of a log's end a failed health check quotes.
const LOG_TAIL_LINES: usize = 20;

/// How the local target runs services.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalTargetConfig {
    /// Where logs (`logs/`) and per-project data (`data/`) live: `<data_dir>/deployments`.
    /// It must not be under a directory the services' uid cannot traverse (e.g. `/root`).
    pub root: PathBuf,
    /// The ports services may get.
    pub ports: RangeInclusive<u16>,
    /// `(uid, gid)` services run as; `None` runs them as artel's own user. Needs root.
    pub run_as: Option<(u32, u32)>,
    /// How long a new service has to answer its health check.
    pub health_timeout: Duration,
    /// How long a stopped service has between SIGTERM and SIGKILL.
    pub stop_grace: Duration,
    /// Services' `PATH`, also where the program is looked up.
    pub path: String,
}

impl LocalTargetConfig {
    /// The defaults, with logs and data below `root`: ports [`DEFAULT_PORTS`], services run
    /// as [`DEFAULT_SERVICE_UID`]:[`DEFAULT_SERVICE_GID`] when artel is root (else as
    /// artel's user), a 20 s health timeout, a 5 s stop grace.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        let root_user = nix::unistd::geteuid().is_root();
        Self {
            root: root.into(),
            ports: DEFAULT_PORTS,
            run_as: root_user.then_some((DEFAULT_SERVICE_UID, DEFAULT_SERVICE_GID)),
            health_timeout: DEFAULT_HEALTH_TIMEOUT,
            stop_grace: DEFAULT_STOP_GRACE,
            path: "/usr/local/bin:/usr/bin:/bin".to_owned(),
        }
    }

    /// Refuses a configuration that cannot work or would run generated code as root.
    fn validate(&self) -> Result<(), DeployError> {
        if !self.root.is_absolute() {
            return Err(DeployError::Config(format!(
                "the deployments root {} is not an absolute path",
                self.root.display()
            )));
        }
        if self.ports.is_empty() || *self.ports.start() == 0 {
            return Err(DeployError::Config(format!(
                "the port range {}..={} is empty or starts at 0",
                self.ports.start(),
                self.ports.end()
            )));
        }
        let root_user = nix::unistd::geteuid().is_root();
        match self.run_as {
            Some((0, _)) => Err(DeployError::Config(
                "services must not run as root (uid 0)".into(),
            )),
            Some(_) if !root_user => Err(DeployError::Config(
                "running services as another user needs artel to run as root".into(),
            )),
            None if root_user => Err(DeployError::Config(
                "artel runs as root: give services an unprivileged uid (run_as)".into(),
            )),
            _ => Ok(()),
        }
    }
}

/// Runs deployed services as local processes. Cheap to clone; clones share the services.
#[derive(Clone)]
pub struct LocalTarget {
    inner: Arc<Inner>,
}

struct Inner {
    config: LocalTargetConfig,
    store: Store,
    http: reqwest::Client,
    /// The uid services run as: what a leftover process must run as to be killed.
    uid: u32,
    /// The services started by this target and not stopped since.
    services: Mutex<HashMap<DeploymentId, Service>>,
}

/// One started service: its process group leader and the wait for its exit (aborted,
/// leaving the process running, when the service is forgotten without being stopped).
struct Service {
    pid: u32,
    watch: ExitWatch,
}

impl std::fmt::Debug for LocalTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalTarget")
            .field("config", &self.inner.config)
            .field("services", &self.inner.services.lock().len())
            .finish()
    }
}

impl LocalTarget {
    /// A target running services as `config` says, recording them in `store` (which needs
    /// the master key for [`restore_live`](Self::restore_live) of services with secrets).
    pub fn new(config: LocalTargetConfig, store: Store) -> Result<Self, DeployError> {
        config.validate()?;
        let http = health::client().map_err(DeployError::Http)?;
        let uid = config
            .run_as
            .map_or_else(|| nix::unistd::getuid().as_raw(), |(uid, _)| uid);
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                store,
                http,
                uid,
                services: Mutex::default(),
            }),
        })
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &LocalTargetConfig {
        &self.inner.config
    }

    /// The file a deployment's output is appended to.
    pub fn log_path(&self, deployment: DeploymentId) -> PathBuf {
        self.inner
            .config
            .root
            .join("logs")
            .join(format!("{deployment}.log"))
    }

    /// The directory whose contents survive a project's redeploys (`DATA_DIR`).
    pub fn data_dir(&self, project: ProjectId) -> PathBuf {
        self.inner
            .config
            .root
            .join("data")
            .join(project.to_string())
    }

    /// Starts the deployment's service: allocates a port (the one the deployment already
    /// holds, if any), hands the workdir to the services' user, spawns the command in its
    /// own process group and records port and pid in the store. An earlier run of the same
    /// deployment — by this target, or left behind by a crashed artel — is stopped first.
    /// Does not wait for it to answer: see [`wait_healthy`](Self::wait_healthy).
    #[tracing::instrument(skip(self, spec), fields(deployment = %spec.deployment, project = %spec.project))]
    pub async fn start(&self, spec: ServiceSpec) -> Result<RunningService, DeployError> {
        let program = spec
            .command
            .first()
            .filter(|program| !program.is_empty())
            .ok_or_else(|| DeployError::BadCommand("the command is empty".into()))?
            .clone();
        check_workdir(&spec.workdir).await?;
        self.stop_process(spec.deployment).await?;
        if let Some(record) = self.inner.store.deployment(spec.deployment).await? {
            self.kill_leftover(&record).await?;
        }
        let data_dir = self.prepare_dirs(&spec).await?;
        let port = self
            .inner
            .store
            .allocate_port(spec.project, spec.deployment, self.config().ports.clone())
            .await?;
        match self.spawn(&spec, &program, port, &data_dir).await {
            Ok(running) => Ok(running),
            Err(err) => {
                self.inner.store.release_ports(spec.deployment).await?;
                Err(err)
            }
        }
    }

    /// Polls `GET url + path` until it answers 2xx (healthy), the health timeout passes, or
    /// the deployment's process exits (unhealthy, with the end of its log in `detail`).
    #[tracing::instrument(skip(self))]
    pub async fn wait_healthy(&self, url: &str, path: &str, deployment: DeploymentId) -> Health {
        let exit = self.exit_watch(deployment);
        let timeout = self.config().health_timeout;
        match health::poll(&self.inner.http, url, path, timeout, exit).await {
            Verdict::Healthy(code) => Health {
                healthy: true,
                status_code: Some(code),
                detail: None,
            },
            Verdict::Exited(detail) => self.unhealthy(deployment, None, detail).await,
            Verdict::TimedOut(code, detail) => self.unhealthy(deployment, code, detail).await,
        }
    }

    /// Stops the deployment's service — SIGTERM to its process group, SIGKILL after the stop
    /// grace — and releases its port. Also kills a group a crashed artel left for it.
    /// Stopping a stopped deployment does nothing.
    #[tracing::instrument(skip(self))]
    pub async fn stop(&self, deployment: DeploymentId) -> Result<(), DeployError> {
        self.stop_process(deployment).await?;
        if let Some(record) = self.inner.store.deployment(deployment).await? {
            self.kill_leftover(&record).await?;
        }
        self.inner.store.release_ports(deployment).await?;
        Ok(())
    }

    /// Stops every service of this target, for artel's shutdown. Deployments stay `live` in
    /// the store and keep their ports, so the next start restarts them where they were.
    #[tracing::instrument(skip(self))]
    pub async fn stop_all(&self) {
        let deployments: Vec<DeploymentId> = self.inner.services.lock().keys().copied().collect();
        let stops = deployments.into_iter().map(|deployment| async move {
            if let Err(err) = self.stop_process(deployment).await {
                tracing::warn!(%deployment, error = %err, "cannot stop a deployed service");
            }
        });
        futures_util::future::join_all(stops).await;
    }

    /// At artel's start: starts every local deployment the store says is live again (killing what
    /// a crashed artel left of it first, reusing its port when it can) and checks its health.
    /// Secrets come from the store by name. One outcome per deployment; a deployment that
    /// does not come up stays `live` in the store (its previous one is gone) for the
    /// scheduler's health job and the user to see.
    #[tracing::instrument(skip(self))]
    pub async fn restore_live(&self) -> Result<Vec<Restored>, DeployError> {
        let live = self.inner.store.live_deployments().await?;
        let live: Vec<_> = live
            .into_iter()
            .filter(|record| record.target == DeployTarget::Local)
            .collect();
        let restores = live.iter().map(|record| async move {
            Restored {
                deployment: record.id,
                project: record.project,
                outcome: self.restore(record).await,
            }
        });
        Ok(futures_util::future::join_all(restores).await)
    }

    /// What to run for a stored deployment: its workdir and command, and its secrets' values
    /// read from the store. For restarting a service, e.g. one that [`exited`](Self::exited).
    pub async fn spec_for(&self, record: &DeploymentRecord) -> Result<ServiceSpec, DeployError> {
        super::service_spec(&self.inner.store, record).await
    }

    /// How the deployment's process ended, if this target started it and it exited by
    /// itself (a stopped service is forgotten, not reported).
    pub fn exited(&self, deployment: DeploymentId) -> Option<ServiceExit> {
        let services = self.inner.services.lock();
        services
            .get(&deployment)
            .and_then(|service| service.watch.ended())
    }

    /// True while this target runs the deployment's service.
    pub fn is_running(&self, deployment: DeploymentId) -> bool {
        let services = self.inner.services.lock();
        services
            .get(&deployment)
            .is_some_and(|service| service.watch.ended().is_none())
    }

    /// Starts one stored live deployment again and checks it; keeps its URL in the store
    /// current.
    async fn restore(
        &self,
        record: &DeploymentRecord,
    ) -> Result<(RunningService, Health), DeployError> {
        let spec = self.spec_for(record).await?;
        let running = self.start(spec).await?;
        let health = self.wait_healthy(&running.url, &record.health_path, record.id);
        let health = super::check_restored(&self.inner.store, record, &running.url, health).await?;
        Ok((running, health))
    }

    /// Creates the directories a service needs and hands its workdir and data directory to
    /// the services' user; answers the data directory.
    async fn prepare_dirs(&self, spec: &ServiceSpec) -> Result<PathBuf, DeployError> {
        let root = &self.config().root;
        let ids = self.config().run_as;
        let data_dir = self.data_dir(spec.project);
        // The services' user passes through root and data/ (without listing them) to its
        // own data directory; logs/ is artel's alone.
        make_dir(root, 0o711, None).await?;
        make_dir(&root.join("logs"), 0o700, None).await?;
        make_dir(&root.join("data"), 0o711, None).await?;
        make_dir(&data_dir, 0o700, ids).await?;
        if let Some((uid, gid)) = ids {
            let workdir = spec.workdir.clone();
            tokio::task::spawn_blocking(move || chown_tree(&workdir, uid, gid))
                .await
                .map_err(|err| DeployError::Io {
                    what: "handing the workdir to the services' user".into(),
                    source: io::Error::other(err),
                })??;
        }
        Ok(data_dir)
    }

    /// Spawns the service on `port` and starts watching it.
    async fn spawn(
        &self,
        spec: &ServiceSpec,
        program: &str,
        port: u16,
        data_dir: &Path,
    ) -> Result<RunningService, DeployError> {
        let log = self.log_path(spec.deployment);
        let (stdout, stderr) = open_log(&log, &spec.command).await?;
        let mut command = Command::new(program);
        command
            .args(&spec.command[1..])
            .env_clear()
            .env("PATH", &self.config().path)
            .env("LANG", LANG)
            .env("HOME", &spec.workdir)
            .envs(&spec.env)
            .env("PORT", port.to_string())
            .env("HOST", "127.0.0.1")
            .env("DATA_DIR", data_dir)
            .env("DATA_FILE", data_dir.join("data.json"))
            .current_dir(&spec.workdir)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .kill_on_drop(false)
            .process_group(0);
        if let Some((uid, gid)) = self.config().run_as {
            command.uid(uid).gid(gid);
        }
        let child = command.spawn().map_err(|source| DeployError::Spawn {
            program: program.to_owned(),
            source,
        })?;
        let pid = child.id().ok_or_else(|| DeployError::Spawn {
            program: program.to_owned(),
            source: io::Error::other("the service exited before its pid was read"),
        })?;
        let (report, exit) = watch::channel(None);
        let waiter = tokio::spawn(watch_exit(
            child,
            pid,
            spec.deployment,
            self.inner.store.clone(),
            report,
        ));
        let service = Service {
            pid,
            watch: ExitWatch { exit, waiter },
        };
        if let Err(err) = self
            .inner
            .store
            .set_deployment_running(spec.deployment, port, pid)
            .await
        {
            self.end(spec.deployment, service).await?;
            return Err(err.into());
        }
        tracing::info!(port, pid, "service started");
        self.inner.services.lock().insert(spec.deployment, service);
        Ok(RunningService {
            deployment: spec.deployment,
            port,
            pid,
            url: format!("http://127.0.0.1:{port}"),
            log,
        })
    }

    /// Stops the process this target runs for the deployment, if any (ports are kept).
    async fn stop_process(&self, deployment: DeploymentId) -> Result<(), DeployError> {
        let service = self.inner.services.lock().remove(&deployment);
        match service {
            Some(service) => self.end(deployment, service).await,
            None => Ok(()),
        }
    }

    /// Ends a service's process group: SIGTERM, the grace, SIGKILL if the leader is still
    /// there (its watcher kills the rest of the group once it exits); forgets its pid.
    async fn end(&self, deployment: DeploymentId, service: Service) -> Result<(), DeployError> {
        let mut exit = service.watch.exit.clone();
        if exit.borrow().is_none() {
            signal_group(service.pid, Signal::SIGTERM)?;
            let grace = self.config().stop_grace;
            let ended = tokio::time::timeout(grace, exit.wait_for(Option::is_some))
                .await
                .is_ok();
            if !ended {
                tracing::warn!(%deployment, pid = service.pid, "service ignored SIGTERM; killing it");
                signal_group(service.pid, Signal::SIGKILL)?;
                let _ = tokio::time::timeout(KILL_WAIT, exit.wait_for(Option::is_some)).await;
            }
        }
        self.inner
            .store
            .clear_deployment_pid(deployment, service.pid)
            .await?;
        Ok(())
    }

    /// Kills the process group the store records for the deployment when this target did
    /// not start it (artel crashed since) and it is still the service's: a living member
    /// runs as the services' uid inside the deployment's workdir. Another owner's group is
    /// left alone. Then forgets the pid.
    async fn kill_leftover(&self, record: &DeploymentRecord) -> Result<(), DeployError> {
        let Some(pgid) = record.pid else {
            return Ok(());
        };
        let ours = {
            let services = self.inner.services.lock();
            services.get(&record.id).is_some_and(|s| s.pid == pgid)
        };
        if ours {
            return Ok(());
        }
        let members = groups::members(pgid);
        let uid = self.inner.uid;
        let belongs = record
            .workdir
            .as_deref()
            .is_some_and(|workdir| members.iter().any(|m| m.belongs_to(uid, workdir)));
        if belongs {
            tracing::warn!(deployment = %record.id, pgid, "killing a service left by an earlier artel");
            signal_group(pgid, Signal::SIGTERM)?;
            if !wait_group_gone(pgid, self.config().stop_grace).await {
                signal_group(pgid, Signal::SIGKILL)?;
                wait_group_gone(pgid, KILL_WAIT).await;
            }
        } else if !members.is_empty() {
            tracing::warn!(deployment = %record.id, pgid, "the recorded process group is someone else's now; left alone");
        }
        self.inner
            .store
            .clear_deployment_pid(record.id, pgid)
            .await?;
        Ok(())
    }

    /// A receiver of the deployment's exit, if this target runs it.
    fn exit_watch(&self, deployment: DeploymentId) -> Option<watch::Receiver<Option<ServiceExit>>> {
        let services = self.inner.services.lock();
        services.get(&deployment).map(|s| s.watch.exit.clone())
    }

    /// An unhealthy verdict with the end of the deployment's log appended to `detail`.
    async fn unhealthy(
        &self,
        deployment: DeploymentId,
        status_code: Option<u16>,
        detail: String,
    ) -> Health {
        let log = self.log_path(deployment);
        let tail = log_tail(&log).await;
        let detail = health::with_tail(detail, &log.display().to_string(), &tail);
        Health {
            healthy: false,
            status_code,
            detail: Some(detail),
        }
    }
}

/// Waits for a service's process to exit, then kills what is left of its group, reports the
/// exit and forgets the pid in the store.
async fn watch_exit(
    mut child: Child,
    pid: u32,
    deployment: DeploymentId,
    store: Store,
    report: watch::Sender<Option<ServiceExit>>,
) {
    let end = match child.wait().await {
        Ok(status) => ServiceExit::from(status),
        Err(err) => {
            tracing::warn!(%deployment, error = %err, "cannot wait for a deployed service");
            ServiceExit {
                code: None,
                signal: None,
            }
        }
    };
    if let Err(err) = signal_group(pid, Signal::SIGKILL) {
        tracing::warn!(%deployment, error = %err, "cannot kill what is left of a service");
    }
    tracing::info!(%deployment, pid, "deployed service {end}");
    report.send_replace(Some(end));
    if let Err(err) = store.clear_deployment_pid(deployment, pid).await {
        tracing::warn!(%deployment, error = %err, "cannot record that a service ended");
    }
}

/// Sends `signal` to process group `pgid`; a group that is gone already is fine.
fn signal_group(pgid: u32, signal: Signal) -> Result<(), DeployError> {
    let raw = i32::try_from(pgid).map_err(|_| DeployError::Signal {
        pgid,
        source: Errno::EINVAL,
    })?;
    match killpg(Pid::from_raw(raw), signal) {
        Ok(()) | Err(Errno::ESRCH) => Ok(()),
        Err(source) => Err(DeployError::Signal { pgid, source }),
    }
}

/// Waits up to `limit` for every living member of group `pgid` to be gone; true if they are.
async fn wait_group_gone(pgid: u32, limit: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if groups::members(pgid).is_empty() {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Refuses a workdir that is not an existing directory given by an absolute path.
async fn check_workdir(workdir: &Path) -> Result<(), DeployError> {
    let bad = |reason: String| DeployError::BadWorkdir {
        path: workdir.to_owned(),
        reason,
    };
    if !workdir.is_absolute() {
        return Err(bad("not an absolute path".into()));
    }
    match tokio::fs::metadata(workdir).await {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(bad("not a directory".into())),
        Err(err) => Err(bad(err.to_string())),
    }
}

/// Creates `dir` (and its parents) with `mode`, owned by `ids` when given.
async fn make_dir(dir: &Path, mode: u32, ids: Option<(u32, u32)>) -> Result<(), DeployError> {
    let io_err = |what: &str| {
        let what = format!("{what} {}", dir.display());
        move |source| DeployError::Io { what, source }
    };
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(io_err("creating"))?;
    tokio::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode))
        .await
        .map_err(io_err("setting the mode of"))?;
    if let Some((uid, gid)) = ids {
        std::os::unix::fs::chown(dir, Some(uid), Some(gid)).map_err(io_err("handing over"))?;
    }
    Ok(())
}

/// `chown -R uid:gid dir`, never following a symlink (a link is re-owned itself).
fn chown_tree(dir: &Path, uid: u32, gid: u32) -> Result<(), DeployError> {
    let io_err = |path: &Path| {
        let what = format!("handing {} to the services' user", path.display());
        move |source| DeployError::Io { what, source }
    };
    std::os::unix::fs::lchown(dir, Some(uid), Some(gid)).map_err(io_err(dir))?;
    for entry in std::fs::read_dir(dir).map_err(io_err(dir))? {
        let path = entry.map_err(io_err(dir))?.path();
        let meta = std::fs::symlink_metadata(&path).map_err(io_err(&path))?;
        if meta.is_dir() {
            chown_tree(&path, uid, gid)?;
        } else {
            std::os::unix::fs::lchown(&path, Some(uid), Some(gid)).map_err(io_err(&path))?;
        }
    }
    Ok(())
}

/// Opens (appending) the deployment's log with a line marking this start; answers it twice,
/// for stdout and stderr.
async fn open_log(log: &Path, command: &[String]) -> Result<(Stdio, Stdio), DeployError> {
    let io_err = |source| DeployError::Io {
        what: format!("opening the log {}", log.display()),
        source,
    };
    let mut file = tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(log)
        .await
        .map_err(io_err)?;
    let marker = format!(
        "--- artel: starting {:?} at {} ---\n",
        command,
        artel_messages::Timestamp::now()
    );
    file.write_all(marker.as_bytes()).await.map_err(io_err)?;
    let file = file.into_std().await;
    let second = file.try_clone().map_err(io_err)?;
    Ok((Stdio::from(file), Stdio::from(second)))
}

/// The last lines of a log (at most [`LOG_TAIL_LINES`] of its last [`LOG_TAIL_BYTES`]);
/// empty when it cannot be read.
async fn log_tail(log: &Path) -> String {
    let read = async {
        let mut file = tokio::fs::File::open(log).await?;
        let len = file.metadata().await?.len();
        file.seek(io::SeekFrom::Start(len.saturating_sub(LOG_TAIL_BYTES)))
            .await?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).await?;
        io::Result::Ok(bytes)
    };
    let Ok(bytes) = read.await else {
        return String::new();
    };
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn services_never_run_as_root_and_ranges_are_checked() {
        let mut config = LocalTargetConfig::new("/srv/artel/deployments");
        config.run_as = Some((0, 0));
        assert!(matches!(config.validate(), Err(DeployError::Config(_))));
        let mut config = LocalTargetConfig::new("/srv/artel/deployments");
        #[allow(clippy::reversed_empty_ranges)]
        {
            config.ports = 10..=9;
        }
        assert!(matches!(config.validate(), Err(DeployError::Config(_))));
        let config = LocalTargetConfig::new("relative/dir");
        assert!(matches!(config.validate(), Err(DeployError::Config(_))));
        assert!(
            LocalTargetConfig::new("/srv/artel/deployments")
                .validate()
                .is_ok()
        );
    }

    #[tokio::test]
    async fn a_log_tail_keeps_the_last_lines() {
        let path = std::env::temp_dir().join(format!("artel-tail-{}.log", uuid::Uuid::new_v4()));
        let text: String = (0..100).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&path, text).unwrap();
        let tail = log_tail(&path).await;
        assert!(
            tail.starts_with("line 80\n") && tail.ends_with("line 99"),
            "{tail}"
        );
        std::fs::remove_file(&path).unwrap();
        assert_eq!(log_tail(&path).await, "");
    }
}
