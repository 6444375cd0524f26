//! Assembles a running artel from [`Settings`]: the database (managed or given), the store,
//! readiness probes, the runtime (`artel_actors::runtime`) and the supervision tree:
//!
//! ```text
//! artel up / artel new                    artel worker-manager
//! artel                  one_for_one      artel-worker-manager   one_for_one
//! ├── health                              ├── health
//! ├── worker-manager     the one road     ├── worker-manager     the one road
//! ├── remote-workers     (with Redis)     └── commands           stream consumer
//! │   └── replies
//! ├── deployers          local, docker
//! ├── workflows          tasks (<kind>/<task>: workflow + roles) + resumer
//! ├── sessions           herald + session/<id>
//! ├── scheduler          health-check, session-reaper, worker-reaper, repo-sync
//! └── gateways           (artel up only)
//!     ├── http
//!     └── telegram       (with telegram.token) rest_for_one
//!         ├── bot        poller, dispatcher, delivery
//!         └── chats      chat/<chat id> (dynamic; hibernate when idle)
//! ```
//!
//! The pipeline's roles reach their sandboxes through the in-process `worker-manager` actor
//! (they prepare each worker's checkout on this host); with Redis configured, `artel up` also
//! runs the reply consumer of the worker-manager streams (`remote-workers`), through which
//! `artel worker-manager` processes answer commands sent as envelopes. `main` and the system
//! tests start artel the same way, and
//! [`App::start`] reports the address it bound, so tests can ask for port 0.

use crate::api::ApiState;
use crate::api::auth::KeyCache;
use crate::api::events_ws::EventHub;
use crate::api::rate_limit::RateLimiter;
use crate::gateways::http::{HttpGateway, HttpState};
use anyhow::Context as _;
use artel_actors::deploy_target::Targets;
use artel_actors::health::{HealthMonitor, PostgresProbe, Probe, Readiness, RedisProbe};
use artel_actors::managed_postgres::ManagedPostgres;
use artel_actors::pipeline::Pipeline;
use artel_actors::runtime::Runtime;
use artel_actors::sessions::Sessions;
use artel_actors::settings::Settings;
use artel_actors::store::{MasterKey, Store};
use artel_actors::worker_manager::process::{ProcessConfig, ProcessRuntime, RunAs};
use artel_actors::worker_manager::remote::{RemoteWorkerManager, serve_commands};
use artel_actors::worker_manager::{WorkerManager, WorkerManagerActor, WorkerManagerConfig};
use artel_supervisors::stream_mailbox::GroupStart;
use artel_supervisors::{
    ChildSpec, ExitReason, Registry, StreamClient, StreamConfig, Supervisor, SupervisorHandle,
};
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How often readiness probes run.
const HEALTH_PERIOD: Duration = Duration::from_secs(2);

/// Which process this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `artel up`: the whole runtime and its front doors.
    Up,
    /// `artel new`: the whole runtime in this process, driven from the command line (no
    /// HTTP front door, so it runs next to an `artel up` on the same machine).
    New,
    /// `artel worker-manager`: serves worker commands from Redis.
    WorkerManager,
}

/// A running artel.
pub struct App {
    tree: SupervisorHandle,
    store: Store,
    managed: Option<ManagedPostgres>,
    address: Option<SocketAddr>,
    sessions: Option<Sessions<Pipeline>>,
    target: Option<Targets>,
    /// The in-process worker-manager: its warm pool is released at shutdown.
    workers: WorkerManager,
    draining: Arc<AtomicBool>,
    admin_key: Option<(String, PathBuf)>,
}

impl App {
    /// Starts everything; on return the HTTP front door is listening.
    pub async fn start(settings: Settings, mode: Mode) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&settings.data_dir).with_context(|| {
            format!(
                "cannot create the data dir {}; set ARTEL_DATA_DIR or data_dir in artel.toml",
                settings.data_dir.display()
            )
        })?;
        // Keys an older artel (or an operator) left readable become private at every start.
        let admin_key_file = settings.data_dir.join("admin.key");
        if admin_key_file.exists() {
            make_private(&admin_key_file)?;
        }
        let (url, managed) = match &settings.database.url {
            Some(url) => (url.expose().to_owned(), None),
            None => {
                let managed = ManagedPostgres::locate(&settings.data_dir)?;
                tracing::info!(dir = %managed.dir().display(), "no DATABASE_URL: starting the managed PostgreSQL");
                (managed.start().await?, Some(managed))
            }
        };
        let pool_size = settings
            .database
            .max_connections
            .unwrap_or(artel_actors::store::DEFAULT_MAX_CONNECTIONS);
        let store = Store::connect_sized(&url, pool_size)
            .await
            .context("cannot connect to PostgreSQL")?;
        store
            .migrate()
            .await
            .context("cannot migrate the database")?;
        let store = store.with_master_key(master_key(&settings)?);

        let readiness = Readiness::default();
        let mut probes: Vec<Box<dyn Probe>> = vec![Box::new(PostgresProbe(store.clone()))];
        if let Some(redis) = &settings.redis.url {
            let client = redis::Client::open(redis.expose())
                .context("REDIS_URL / redis.url is not a Redis URL")?;
            probes.push(Box::new(RedisProbe(client)));
        }
        // Every mode runs a local worker-manager (artel up and new for the pipeline's roles,
        // artel worker-manager for the streams); Docker workers make the daemon a dependency.
        let local = reaped_worker_manager(&settings, &store).await?;
        let local_workers = local.clone();
        if let artel_actors::worker_manager::docker::AnyRuntime::Docker(docker) = local.runtime() {
            probes.push(Box::new(docker.clone()));
        }
        // The deploy targets, made before the probes so a Docker deploy host is one of them.
        let targets = match mode {
            Mode::Up | Mode::New => {
                let targets = artel_actors::runtime::deploy_targets(&settings, &store)
                    .await
                    .map_err(|failure| anyhow::anyhow!("{failure}"))?;
                if let Some(docker) = targets.docker() {
                    probes.push(Box::new(docker.clone()));
                }
                Some(targets)
            }
            Mode::WorkerManager => None,
        };
        // The Telegram front door's readiness: what its poller last heard from the Bot API.
        let telegram_health = (mode == Mode::Up && settings.telegram.token.is_some())
            .then(crate::gateways::telegram::TelegramHealth::default);
        if let Some(health) = &telegram_health {
            probes.push(Box::new(health.clone()));
        }
        let probes = Arc::new(probes);

        let redis = match &settings.redis.url {
            Some(url) => Some(
                StreamClient::new(url.expose(), StreamConfig::default())
                    .context("REDIS_URL / redis.url")?,
            ),
            None if mode == Mode::WorkerManager => anyhow::bail!(
                "`artel worker-manager` serves commands from Redis: set --redis-url or REDIS_URL \
                 (and run `artel up` with the same Redis)"
            ),
            None => None,
        };

        let (_health, health) = ChildSpec::actor("health", {
            let (probes, readiness) = (probes.clone(), readiness.clone());
            move || HealthMonitor::new(probes.clone(), readiness.clone(), HEALTH_PERIOD)
        });
        let registry = Registry::new();
        let draining = Arc::new(AtomicBool::new(false));
        let mut admin_key = None;
        let mut address = None;
        let mut sessions = None;
        let mut target = None;
        let root = match mode {
            Mode::Up | Mode::New => {
                // With Redis, worker commands for other processes' workers travel as
                // envelopes; their replies come back through this consumer.
                let remote = match &redis {
                    Some(commands) => {
                        let replies = StreamClient::new(
                            settings
                                .redis
                                .url
                                .as_ref()
                                .map(|u| u.expose())
                                .unwrap_or_default(),
                            StreamConfig {
                                group_start: GroupStart::NewEntries,
                                ..StreamConfig::default()
                            },
                        )?;
                        let (client, replies) =
                            RemoteWorkerManager::new(commands, &replies, &settings.instance);
                        if let Err(failure) = client.prepare().await {
                            tracing::warn!(%failure, "cannot prepare the worker-manager reply group yet; it is created when Redis answers");
                        }
                        Some(
                            Supervisor::new("remote-workers")
                                .child(replies)
                                .into_child(),
                        )
                    }
                    None => None,
                };
                let targets = targets.context("deploy targets are made for this mode")?;
                let runtime =
                    Runtime::build_with_targets(&settings, &store, local.clone(), targets)
                        .await
                        .map_err(|failure| anyhow::anyhow!("cannot assemble artel: {failure}"))?;
                sessions = Some(runtime.sessions.clone());
                target = Some(runtime.target.clone());
                let mut root = Supervisor::new("artel")
                    .child(health.role("health"))
                    .child(runtime.worker_manager);
                if let Some(remote) = remote {
                    root = root.child(remote);
                }
                let mut root = root
                    .child(runtime.deployers_tree.into_child())
                    .child(runtime.workflows_tree.into_child())
                    .child(runtime.sessions_tree.into_child())
                    .child(runtime.scheduler_tree.into_child());
                if mode == Mode::Up {
                    let listener = TcpListener::bind(&settings.http.listen).with_context(|| {
                        format!(
                            "cannot listen on {}; is another artel running? Set \
                                 ARTEL_HTTP__LISTEN to another address",
                            settings.http.listen
                        )
                    })?;
                    address = Some(listener.local_addr()?);
                    admin_key = bootstrap_admin_key(&settings, &store).await?;
                    let redis_manager = redis_manager(&settings).await;
                    let limiter = rate_limiter(&settings, redis_manager.clone());
                    let api = actix_web::web::Data::new(ApiState {
                        store: store.clone(),
                        registry: registry.clone(),
                        sessions: runtime.sessions.clone(),
                        workflows: runtime.workflows.clone(),
                        target: runtime.target.clone(),
                        workers: runtime.workers.clone(),
                        keys: KeyCache::default(),
                        limiter,
                        bad_keys: crate::api::bad_keys::BadKeys::default(),
                        draining: draining.clone(),
                        max_body_bytes: settings.http.max_body_bytes,
                        hub: EventHub::start(&store),
                        telegram_api_url: settings.telegram.api_url.clone(),
                    });
                    let telegram = telegram_health
                        .map(|health| {
                            crate::gateways::telegram::Telegram::new(
                                &settings.telegram,
                                &settings.instance,
                                store.clone(),
                                runtime.sessions.clone(),
                                health,
                            )
                        })
                        .transpose()
                        .map_err(|failure| anyhow::anyhow!("{failure}"))?;
                    let (telegram, telegram_tree) = telegram.unzip();
                    let state = HttpState {
                        telegram: telegram.clone(),
                        api,
                        registry: registry.clone(),
                        readiness: readiness.clone(),
                        store: store.clone(),
                        http: Default::default(),
                        redis: redis_manager,
                    };
                    let (_http, http) = ChildSpec::actor("http", move || {
                        HttpGateway::new(listener.try_clone(), state.clone())
                    });
                    let mut gateways = Supervisor::new("gateways").child(http.role("gateway"));
                    if let Some(telegram) = telegram_tree {
                        gateways = gateways.child(telegram.into_child());
                    }
                    root = root.child(gateways.into_child());
                }
                root
            }
            Mode::WorkerManager => {
                let (workers, manager) = WorkerManagerActor::child_spec("worker-manager", local);
                let commands = redis
                    .as_ref()
                    .map(|client| {
                        serve_commands(client, workers, store.clone(), &settings.instance)
                    })
                    .context("no Redis client")?;
                Supervisor::new("artel-worker-manager")
                    .child(health.role("health"))
                    .child(manager)
                    .child(commands)
            }
        };
        let tree = root.start_in(registry).await;
        if tree.is_finished() {
            anyhow::bail!("artel's supervision tree failed to start; see the log above");
        }
        Ok(Self {
            tree,
            store,
            managed,
            address,
            sessions,
            target,
            workers: local_workers,
            draining,
            admin_key,
        })
    }

    /// The operator key this start created (shown once), and the file it was written to.
    pub fn admin_key(&self) -> Option<&(String, PathBuf)> {
        self.admin_key.as_ref()
    }

    /// Waits until no task's workflow runs here, up to `deadline`; answers whether that
    /// happened (false: some are still running and will resume on the next start).
    pub async fn wait_idle(&self, deadline: Duration) -> bool {
        let until = tokio::time::Instant::now() + deadline;
        loop {
            let busy = self
                .tree
                .registry()
                .snapshot()
                .find("artel/workflows/tasks")
                .map_or(0, |tasks| tasks.children.len());
            if busy == 0 {
                return true;
            }
            if tokio::time::Instant::now() >= until {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Stops accepting new work (SIGTERM's first step): the API answers 503 to requests
    /// that would start work and `/health/ready` reports draining, so a load balancer moves
    /// traffic away while in-flight requests and running steps finish.
    pub fn drain(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }

    /// Where workers and new deployments run, as a sentence for `artel new`.
    pub fn placement(&self) -> String {
        use artel_actors::worker_manager::Sandbox as _;
        use artel_messages::deployer::DeployTarget;
        use artel_messages::worker_manager::WorkerRuntime;
        let workers = match self.workers.runtime().kind() {
            WorkerRuntime::Docker => "workers run in Docker containers",
            WorkerRuntime::Process => "workers run as local processes",
        };
        let service = match self.target.as_ref().map(Targets::default_target) {
            Some(DeployTarget::Docker) => "the service will run in a Docker container",
            _ => "the service will run as a local process",
        };
        format!("{workers}; {service}")
    }

    /// The address the HTTP front door listens on (`artel up` only).
    pub fn address(&self) -> Option<SocketAddr> {
        self.address
    }

    /// The store (`artel new` reads the event journal from it).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The sessions (`artel up` and `artel new`).
    pub fn sessions(&self) -> Option<&Sessions<Pipeline>> {
        self.sessions.as_ref()
    }

    /// Waits until the tree gives up on its own (it only does by escalation).
    pub async fn failed(&mut self) -> ExitReason {
        self.tree.finished().await
    }

    /// Stops the tree in reverse start order, closes the pool and stops the managed database.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        if let Some(sessions) = &self.sessions {
            sessions.close();
        }
        let reason = self.tree.shutdown().await;
        tracing::info!(%reason, "supervision tree stopped");
        // Deployed services stop with artel and stay `live` in the store: the next start
        // restarts them.
        if let Some(target) = self.target {
            target.stop_all().await;
        }
        self.workers.shutdown().await;
        self.store.close().await;
        if let Some(managed) = self.managed {
            managed.stop().await?;
            tracing::info!("managed PostgreSQL stopped");
        }
        Ok(())
    }
}

/// The in-process worker-manager, workspaces in the data dir, on the runtime
/// `workers.runtime` chooses: local processes, Docker containers, or Docker when it answers.
async fn worker_manager(settings: &Settings, store: &Store) -> anyhow::Result<WorkerManager> {
    use artel_actors::settings::WorkerRuntimeChoice;
    use artel_actors::worker_manager::docker::{AnyRuntime, DockerConfig, DockerRuntime, WarmPool};
    let limits = artel_actors::runtime::worker_limits(settings);
    let docker = || {
        DockerRuntime::connect(DockerConfig {
            root: settings.data_dir.join("workers"),
            image: settings.workers.image.clone(),
            owner: settings.instance.clone(),
            warm: (settings.workers.warm_pool > 0).then_some(WarmPool {
                size: settings.workers.warm_pool,
                memory_bytes: limits.memory_bytes,
                pids: limits.pids,
            }),
        })
    };
    let runtime: AnyRuntime = match settings.workers.runtime {
        WorkerRuntimeChoice::Docker => docker()
            .await
            .context("workers.runtime = docker, but the Docker runtime cannot start")?
            .into(),
        WorkerRuntimeChoice::Auto => match docker().await {
            Ok(docker) => {
                tracing::info!("workers run in Docker containers");
                docker.into()
            }
            Err(err) => {
                tracing::info!(reason = %err, "workers run as local processes");
                process_runtime(settings)?.into()
            }
        },
        WorkerRuntimeChoice::Process => process_runtime(settings)?.into(),
    };
    Ok(WorkerManager::owned_by(
        store.clone(),
        runtime,
        WorkerManagerConfig {
            max_busy: settings.workers.max_busy,
            ..WorkerManagerConfig::default()
        },
        settings.instance.clone(),
    ))
}

/// The local-process runtime, dropping privileges to the configured uid range under root.
/// Sandboxed with bubblewrap (artel's data dir hidden) as `workers.sandbox` says, and
/// refused when the non-root rule forbids running the configured agent's code unsandboxed.
fn process_runtime(settings: &Settings) -> anyhow::Result<ProcessRuntime> {
    use artel_actors::settings::WorkerSandboxChoice;
    use artel_actors::worker_manager::SandboxMode;
    use artel_actors::worker_manager::process::bwrap::{CodeAuthor, Verdict, unsandboxed_verdict};
    let mut config = ProcessConfig::new(settings.data_dir.join("workers"));
    let root = nix::unistd::geteuid().is_root();
    if root {
        config.run_as = RunAs::UidRange {
            first: settings.workers.first_uid,
            count: settings.workers.uid_count,
            gid: artel_actors::worker_manager::process::DEFAULT_GID,
        };
    }
    config.sandbox = match settings.workers.sandbox {
        WorkerSandboxChoice::Auto => SandboxMode::Auto,
        WorkerSandboxChoice::Bwrap => SandboxMode::Bwrap,
        WorkerSandboxChoice::None => SandboxMode::None,
    };
    config.hidden = vec![settings.data_dir.clone()];
    let runtime =
        ProcessRuntime::new(config).context("cannot set up the local-process worker runtime")?;
    match unsandboxed_verdict(
        CodeAuthor::from_kind(&settings.agent.kind),
        root,
        runtime.sandboxed(),
        settings.workers.allow_unsandboxed,
    ) {
        Verdict::Run => {}
        Verdict::Warn(why) => tracing::warn!("{why}"),
        Verdict::Refuse(why) => anyhow::bail!(why),
    }
    if runtime.sandboxed() {
        tracing::info!("worker commands run inside bubblewrap");
    }
    Ok(runtime)
}

/// A worker-manager that has first reaped what a previous run of this instance left behind.
async fn reaped_worker_manager(
    settings: &Settings,
    store: &Store,
) -> anyhow::Result<WorkerManager> {
    let manager = worker_manager(settings, store).await?;
    manager
        .reap_orphans()
        .await
        .context("cannot reap the workers a previous run left behind")?;
    // Containers this instance made but never recorded (a crash between the two).
    if let artel_actors::worker_manager::docker::AnyRuntime::Docker(docker) = manager.runtime() {
        let strays = docker
            .remove_strays(&[], std::time::Duration::ZERO)
            .await
            .context("cannot remove the worker containers a previous run left behind")?;
        if strays > 0 {
            tracing::info!(
                strays,
                "removed worker containers a previous run left behind"
            );
        }
    }
    Ok(manager)
}

/// The master key from settings, or the key file in the data dir (created on first start).
fn master_key(settings: &Settings) -> anyhow::Result<MasterKey> {
    if let Some(text) = &settings.secrets.master_key {
        return MasterKey::parse(text.expose()).context("ARTEL_MASTER_KEY / secrets.master_key");
    }
    let path = settings
        .secrets
        .master_key_file
        .clone()
        .unwrap_or_else(|| settings.data_dir.join("master.key"));
    let key = MasterKey::load_or_create(&path).context("the master key file")?;
    make_private(&path)?;
    Ok(key)
}

/// Mode 0600 on a key file, whatever mode an older artel or an operator left it with.
fn make_private(path: &std::path::Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("cannot make {} private (mode 0600)", path.display()))
}

/// Makes sure an operator can reach the API: installs `http.admin_key` (`ARTEL_ADMIN_KEY`)
/// when given, or — on a first start, when no operator has a live key — creates one. A
/// created key is answered (to print once) and written to `<data_dir>/admin.key` with mode
/// 0600, where the command line on this machine finds it.
async fn bootstrap_admin_key(
    settings: &Settings,
    store: &Store,
) -> anyhow::Result<Option<(String, PathBuf)>> {
    use artel_actors::store::api_keys::is_well_formed;
    if let Some(key) = &settings.http.admin_key {
        let key = key.expose().trim();
        if !is_well_formed(key) {
            anyhow::bail!(
                "ARTEL_ADMIN_KEY / http.admin_key must be `artel_` followed by 40 lowercase hex \
                 digits (e.g. from `openssl rand -hex 20`)"
            );
        }
        if store.authenticate(key).await?.is_none() {
            let admin = store.ensure_admin().await?;
            store
                .insert_api_key(admin.id, "from ARTEL_ADMIN_KEY", key.to_owned())
                .await
                .context(
                    "ARTEL_ADMIN_KEY is already a key of a user who is not an operator, or \
                     revoked: choose another",
                )?;
        }
        return Ok(None);
    }
    if store.operator_key_exists().await? {
        return Ok(None);
    }
    let admin = store.ensure_admin().await?;
    let created = store.create_api_key(admin.id, "first start").await?;
    let path = settings.data_dir.join("admin.key");
    write_private(&path, &created.secret)
        .with_context(|| format!("cannot write the operator key to {}", path.display()))?;
    Ok(Some((created.secret, path)))
}

fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(text.as_bytes())?;
    file.write_all(b"\n")
}

/// A Redis connection for the front door (shared rate limits, stream lag), when configured
/// and reachable at start.
async fn redis_manager(settings: &Settings) -> Option<redis::aio::ConnectionManager> {
    let url = settings.redis.url.as_ref()?;
    let manager = match redis::Client::open(url.expose()) {
        Ok(client) => redis::aio::ConnectionManager::new(client).await,
        Err(err) => Err(err),
    };
    manager
        .inspect_err(|err| {
            tracing::warn!(error = %err, "the front door runs without Redis: rate limits stay in this process")
        })
        .ok()
}

/// Per-key rate limits: shared through Redis when there is one, in this process otherwise.
fn rate_limiter(settings: &Settings, redis: Option<redis::aio::ConnectionManager>) -> RateLimiter {
    let (rate, burst) = (
        settings.http.rate_limit_per_sec,
        settings.http.rate_limit_burst,
    );
    match redis {
        Some(manager) => RateLimiter::shared(rate, burst, manager),
        None => RateLimiter::local(rate, burst),
    }
}
