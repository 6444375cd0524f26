//! The Docker deploy target (bollard): a service is a container built from the project's own
//! Dockerfile, on the local Docker daemon or a remote Docker host, with its port published.
//!
//! ```text
//!   Deployer ──start──▶ DockerTarget ── tar workdir ─▶ POST /build (BASE=<base image>)
//!                                    ── create + start artel-service-<deployment>
//!                                         publish <publish_address>:<port> → 8000/tcp
//!            ──wait_healthy──▶ polls http://<public_host>:<port><health> until 2xx,
//!                              the timeout, or the container exits (then: its last log lines)
//!            ──stop──────────▶ docker stop (grace) → rm → rmi; port released
//! ```
//!
//! Each service container
//! - is built once per deployment (`artel-service/<project>:<deployment>`) from the commit's
//!   Dockerfile, with the build argument `BASE` set to `deploy.docker.base_image` — there is
//!   no registry here, so the default base is the local worker image (python3);
//! - runs as the services' unprivileged uid (never root), with every capability dropped,
//!   `no-new-privileges`, a read-only root, a private `/tmp`, memory without swap, a pids
//!   limit and a CPU share;
//! - keeps its data in the project's named volume `artel-data-<project>` at `/data`
//!   (`DATA_DIR`, `DATA_FILE`), which survives redeploys and rollbacks;
//! - listens on `PORT=8000` at `HOST=0.0.0.0` inside, published on an allocated host port;
//! - is labelled `managed-by=artel`, `artel-owner`, `artel-project`, `artel-deployment`.
//!
//! A new deployment runs next to the live one (another port) until it is healthy, exactly as
//! on the local target; a failed one is removed and the previous one never stopped serving.
//! On artel's shutdown [`DockerTarget::stop_all`] stops the containers but keeps them and
//! their ports; [`DockerTarget::restore_live`] starts them again at the next start and
//! removes this instance's containers whose deployment is no longer live or deploying.

use super::health::{self, Verdict};
use super::{DeployError, ExitWatch, Restored, ServiceExit, ServiceSpec, Started};
use crate::store::{DeploymentRecord, Store};
use artel_messages::deployer::{DeployTarget, Health};
use artel_messages::{DeploymentId, DeploymentStatus, ProjectId};
use bollard::Docker;
use bollard::container::{
    Config, CreateContainerOptions, ListContainersOptions, LogOutput, LogsOptions,
    RemoveContainerOptions, StopContainerOptions, WaitContainerOptions,
};
use bollard::image::{BuildImageOptions, RemoveImageOptions};
use bollard::models::{HostConfig, PortBinding};
use bollard::volume::CreateVolumeOptions;
use futures_util::StreamExt as _;
use parking_lot::Mutex;
use std::collections::{HashMap, VecDeque};
use std::ops::RangeInclusive;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// The port services listen on inside their container.
pub const CONTAINER_PORT: u16 = 8000;
/// How many lines of build output or container log a failure quotes.
const TAIL_LINES: usize = 20;
/// How long a connection to the daemon may take per request (a build may take long).
const DOCKER_TIMEOUT_SECS: u64 = 600;

/// How the Docker target runs services.
#[derive(Debug, Clone, PartialEq)]
pub struct DockerTargetConfig {
    /// The daemon: `None` for the local one (`DOCKER_HOST` or the default socket),
    /// `unix:///path`, `tcp://host:port` or `http://host:port`.
    pub host: Option<String>,
    /// The build argument `BASE` every Dockerfile gets.
    pub base_image: String,
    /// The host ports services are published on.
    pub ports: RangeInclusive<u16>,
    /// The host address ports are published on.
    pub publish_address: String,
    /// The host name services' URLs use.
    pub public_host: String,
    /// Memory of one container, in bytes (swap is not allowed beyond it).
    pub memory_bytes: u64,
    /// Processes one container may run.
    pub pids: u32,
    /// CPU share of one container, in billionths of a CPU.
    pub nano_cpus: i64,
    /// `(uid, gid)` services run as inside their container: never root.
    pub run_as: (u32, u32),
    /// How long a new service has to answer its health check.
    pub health_timeout: Duration,
    /// How long a stopped container has between SIGTERM and SIGKILL.
    pub stop_grace: Duration,
    /// This artel instance's name: only its own containers are swept.
    pub owner: String,
}

impl DockerTargetConfig {
    /// The defaults on the local daemon: the worker image as base, ports 19000–19999 on
    /// 127.0.0.1, 512 MiB, 256 processes, one CPU, uid 64999, the local target's timeouts.
    pub fn new(owner: impl Into<String>) -> Self {
        Self {
            host: None,
            base_image: "artel-worker:latest".to_owned(),
            ports: 19_000..=19_999,
            publish_address: "127.0.0.1".to_owned(),
            public_host: "127.0.0.1".to_owned(),
            memory_bytes: 512 * 1024 * 1024,
            pids: 256,
            nano_cpus: 1_000_000_000,
            run_as: (super::DEFAULT_SERVICE_UID, super::DEFAULT_SERVICE_GID),
            health_timeout: super::DEFAULT_HEALTH_TIMEOUT,
            stop_grace: super::DEFAULT_STOP_GRACE,
            owner: owner.into(),
        }
    }

    fn validate(&self) -> Result<(), DeployError> {
        if self.run_as.0 == 0 {
            return Err(DeployError::Config(
                "services must not run as root (uid 0)".into(),
            ));
        }
        if self.ports.is_empty() || *self.ports.start() == 0 {
            return Err(DeployError::Config(format!(
                "the port range {}..={} is empty or starts at 0",
                self.ports.start(),
                self.ports.end()
            )));
        }
        Ok(())
    }
}

/// Runs deployed services as Docker containers. Cheap to clone; clones share the services.
#[derive(Clone)]
pub struct DockerTarget {
    inner: Arc<Inner>,
}

struct Inner {
    docker: Docker,
    config: DockerTargetConfig,
    store: Store,
    http: reqwest::Client,
    /// The containers this target watches, by deployment.
    services: Mutex<HashMap<DeploymentId, ExitWatch>>,
}

impl std::fmt::Debug for DockerTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DockerTarget")
            .field("config", &self.inner.config)
            .field("services", &self.inner.services.lock().len())
            .finish()
    }
}

/// The container of a deployment.
pub fn container_name(deployment: DeploymentId) -> String {
    format!("artel-service-{deployment}")
}

/// The image built for a deployment.
pub fn image_name(project: ProjectId, deployment: DeploymentId) -> String {
    format!("artel-service/{project}:{deployment}")
}

/// The volume holding a project's data across its deployments.
pub fn volume_name(project: ProjectId) -> String {
    format!("artel-data-{project}")
}

fn docker_error(what: impl Into<String>) -> impl FnOnce(bollard::errors::Error) -> DeployError {
    let what = what.into();
    move |err| DeployError::Docker {
        what,
        detail: err.to_string(),
    }
}

/// Whether the daemon answered "no such thing" (404).
fn is_not_found(err: &bollard::errors::Error) -> bool {
    matches!(
        err,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

impl DockerTarget {
    /// Connects to the configured daemon, negotiating the API version.
    pub async fn connect(config: DockerTargetConfig, store: Store) -> Result<Self, DeployError> {
        config.validate()?;
        let where_ = config
            .host
            .clone()
            .unwrap_or_else(|| "the local daemon".into());
        let connected = match config.host.as_deref() {
            None => Docker::connect_with_local_defaults(),
            Some(unix) if unix.starts_with("unix://") => {
                Docker::connect_with_unix(unix, DOCKER_TIMEOUT_SECS, bollard::API_DEFAULT_VERSION)
            }
            Some(http) => {
                Docker::connect_with_http(http, DOCKER_TIMEOUT_SECS, bollard::API_DEFAULT_VERSION)
            }
        };
        let docker = connected
            .map_err(docker_error(format!("connecting to {where_}")))?
            .negotiate_version()
            .await
            .map_err(docker_error(format!(
                "talking to {where_} (is dockerd running? set deploy.docker.host)"
            )))?;
        let http = health::client().map_err(DeployError::Http)?;
        Ok(Self {
            inner: Arc::new(Inner {
                docker,
                config,
                store,
                http,
                services: Mutex::default(),
            }),
        })
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &DockerTargetConfig {
        &self.inner.config
    }

    /// The store it records ports in.
    pub(super) fn store(&self) -> &Store {
        &self.inner.store
    }

    /// Starts the deployment's service: builds its image from the Dockerfile in the workdir
    /// (once per deployment), allocates a host port (the one it already holds, if any),
    /// creates and starts its container and records the port. A container of an earlier
    /// run of the same deployment is removed first. Does not wait for it to answer.
    #[tracing::instrument(skip(self, spec), fields(deployment = %spec.deployment, project = %spec.project))]
    pub async fn start(&self, spec: ServiceSpec) -> Result<Started, DeployError> {
        self.forget(spec.deployment);
        self.remove_container(spec.deployment).await?;
        let image = image_name(spec.project, spec.deployment);
        self.build(&spec, &image).await?;
        let volume = self.ensure_volume(spec.project).await?;
        let store = &self.inner.store;
        let port = store
            .allocate_port(spec.project, spec.deployment, self.config().ports.clone())
            .await?;
        match self.run(&spec, &image, &volume, port).await {
            Ok(started) => Ok(started),
            Err(err) => {
                let _ = self.remove_container(spec.deployment).await;
                store.release_ports(spec.deployment).await?;
                Err(err)
            }
        }
    }

    /// Polls the service's health path until 2xx, the health timeout, or the container's
    /// exit (unhealthy, with the container's last log lines in `detail`).
    #[tracing::instrument(skip(self))]
    pub async fn wait_healthy(&self, url: &str, path: &str, deployment: DeploymentId) -> Health {
        let exit = self.exit_watch(deployment);
        let timeout = self.config().health_timeout;
        let (code, detail) = match health::poll(&self.inner.http, url, path, timeout, exit).await {
            Verdict::Healthy(code) => {
                return Health {
                    healthy: true,
                    status_code: Some(code),
                    detail: None,
                };
            }
            Verdict::Exited(detail) => (None, detail),
            Verdict::TimedOut(code, detail) => (code, detail),
        };
        let name = container_name(deployment);
        let tail = self.log_tail(&name).await;
        Health {
            healthy: false,
            status_code: code,
            detail: Some(health::with_tail(
                detail,
                &format!("the container {name}"),
                &tail,
            )),
        }
    }

    /// Stops and removes the deployment's container and image and releases its port. The
    /// image's intermediate layers stay as build cache (`docker image prune` reclaims them).
    /// Stopping a stopped deployment does nothing.
    #[tracing::instrument(skip(self))]
    pub async fn stop(&self, record: &DeploymentRecord) -> Result<(), DeployError> {
        self.forget(record.id);
        self.remove_container(record.id).await?;
        let image = image_name(record.project, record.id);
        match self
            .inner
            .docker
            .remove_image(
                &image,
                // Its untagged parents are other builds' cache, possibly mid-build right
                // now: pruning them would pull a layer from under a concurrent build.
                Some(RemoveImageOptions {
                    force: true,
                    noprune: true,
                }),
                None,
            )
            .await
        {
            Ok(_) => {}
            Err(err) if is_not_found(&err) => {}
            Err(err) => tracing::warn!(%image, error = %err, "cannot remove a service image"),
        }
        self.inner.store.release_ports(record.id).await?;
        Ok(())
    }

    /// Stops every container this target watches, for artel's shutdown; they stay, with
    /// their ports, for [`restore_live`](Self::restore_live) at the next start.
    #[tracing::instrument(skip(self))]
    pub async fn stop_all(&self) {
        let deployments: Vec<DeploymentId> = {
            let mut services = self.inner.services.lock();
            services.drain().map(|(deployment, _)| deployment).collect()
        };
        let grace = self.grace_secs();
        let stops = deployments.into_iter().map(|deployment| async move {
            let name = container_name(deployment);
            match self
                .inner
                .docker
                .stop_container(&name, Some(StopContainerOptions { t: grace }))
                .await
            {
                Ok(()) => {}
                Err(err) if is_not_found(&err) => {}
                Err(err) => {
                    tracing::warn!(%deployment, error = %err, "cannot stop a service container")
                }
            }
        });
        futures_util::future::join_all(stops).await;
    }

    /// At artel's start: removes this instance's service containers whose deployment is no
    /// longer live or deploying, then starts every live Docker deployment again — its
    /// stopped container when it is still there, else a new one from its image (rebuilt if
    /// gone) — and checks its health.
    #[tracing::instrument(skip(self))]
    pub async fn restore_live(&self) -> Result<Vec<Restored<Started>>, DeployError> {
        self.sweep().await?;
        let live = self.inner.store.live_deployments().await?;
        let restores = live
            .iter()
            .filter(|record| record.target == DeployTarget::Docker)
            .map(|record| async move {
                Restored {
                    deployment: record.id,
                    project: record.project,
                    outcome: self.restore(record).await,
                }
            });
        Ok(futures_util::future::join_all(restores).await)
    }

    /// How the deployment's container ended, if this target watches it and it exited by
    /// itself.
    pub fn exited(&self, deployment: DeploymentId) -> Option<ServiceExit> {
        let services = self.inner.services.lock();
        services.get(&deployment).and_then(ExitWatch::ended)
    }

    /// Removes this instance's service containers whose deployment is not live or deploying
    /// (or unknown): what a crash between "failed" and "removed" left behind. Answers how
    /// many it removed.
    pub async fn sweep(&self) -> Result<usize, DeployError> {
        let containers = self
            .inner
            .docker
            .list_containers(Some(ListContainersOptions {
                all: true,
                filters: HashMap::from([(
                    "label".to_owned(),
                    vec![
                        "managed-by=artel".to_owned(),
                        format!("artel-owner={}", self.config().owner),
                    ],
                )]),
                ..Default::default()
            }))
            .await
            .map_err(docker_error("listing service containers"))?;
        let mut removed = 0;
        for container in containers {
            let Some(deployment) = container
                .labels
                .as_ref()
                .and_then(|labels| labels.get("artel-deployment"))
                .and_then(|id| id.parse::<DeploymentId>().ok())
            else {
                continue;
            };
            let keep = self
                .inner
                .store
                .deployment(deployment)
                .await?
                .is_some_and(|record| {
                    matches!(
                        record.status,
                        DeploymentStatus::Live | DeploymentStatus::Deploying
                    )
                });
            if !keep {
                tracing::warn!(%deployment, "removing a service container whose deployment is over");
                self.remove_container(deployment).await?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    async fn restore(&self, record: &DeploymentRecord) -> Result<(Started, Health), DeployError> {
        let name = container_name(record.id);
        let existing = self.inner.docker.inspect_container(&name, None).await;
        let started = match (existing, record.port) {
            (Ok(_), Some(port)) => {
                match self
                    .inner
                    .docker
                    .start_container::<String>(&name, None)
                    .await
                {
                    Ok(()) => {}
                    // 304: it is running already (artel died, the container did not).
                    Err(bollard::errors::Error::DockerResponseServerError {
                        status_code: 304,
                        ..
                    }) => {}
                    Err(err) => return Err(docker_error("starting a service container")(err)),
                }
                self.watch(record.id);
                self.started(record.id, port)
            }
            _ => {
                let spec = super::service_spec(&self.inner.store, record).await?;
                self.start(spec).await?
            }
        };
        let health = self.wait_healthy(&started.url, &record.health_path, record.id);
        let health = super::check_restored(&self.inner.store, record, &started.url, health).await?;
        Ok((started, health))
    }

    fn started(&self, deployment: DeploymentId, port: u16) -> Started {
        Started {
            deployment,
            port,
            url: format!("http://{}:{port}", self.config().public_host),
        }
    }

    /// Builds `image` from the Dockerfile at the root of the spec's workdir, unless it
    /// exists already.
    async fn build(&self, spec: &ServiceSpec, image: &str) -> Result<(), DeployError> {
        let docker = &self.inner.docker;
        if docker.inspect_image(image).await.is_ok() {
            return Ok(());
        }
        if !spec.workdir.join("Dockerfile").is_file() {
            return Err(DeployError::BadWorkdir {
                path: spec.workdir.clone(),
                reason: "it has no Dockerfile at its root; the Docker deploy target builds the \
                         service's image from it (or set deploy.target = \"local\")"
                    .into(),
            });
        }
        let context = tar_directory(&spec.workdir).await?;
        let labels = HashMap::from([
            ("managed-by".to_owned(), "artel".to_owned()),
            ("artel-project".to_owned(), spec.project.to_string()),
            ("artel-deployment".to_owned(), spec.deployment.to_string()),
        ]);
        let options = BuildImageOptions {
            dockerfile: "Dockerfile".to_owned(),
            t: image.to_owned(),
            rm: true,
            forcerm: true,
            buildargs: HashMap::from([("BASE".to_owned(), self.config().base_image.clone())]),
            labels,
            ..Default::default()
        };
        let mut output = docker.build_image(options, None, Some(context.into()));
        let mut tail = Tail::default();
        while let Some(item) = output.next().await {
            let info = match item {
                Ok(info) => info,
                Err(bollard::errors::Error::DockerStreamError { error }) => {
                    return Err(self.build_failed(image, &error, &tail));
                }
                Err(bollard::errors::Error::DockerResponseServerError {
                    status_code,
                    message,
                }) if status_code < 500 => {
                    return Err(self.build_failed(image, &message, &tail));
                }
                Err(err) => return Err(docker_error(format!("building {image}"))(err)),
            };
            if let Some(text) = &info.stream {
                tail.push(text);
            }
            if let Some(error) = &info.error {
                return Err(self.build_failed(image, error, &tail));
            }
        }
        docker
            .inspect_image(image)
            .await
            .map_err(|err| self.build_failed(image, &err.to_string(), &tail))?;
        tracing::info!(image, "service image built");
        Ok(())
    }

    fn build_failed(&self, image: &str, error: &str, tail: &Tail) -> DeployError {
        DeployError::Build {
            image: image.to_owned(),
            detail: health::with_tail(error.trim().to_owned(), "the build", &tail.text()),
        }
    }

    /// The project's data volume, created when missing.
    async fn ensure_volume(&self, project: ProjectId) -> Result<String, DeployError> {
        let name = volume_name(project);
        self.inner
            .docker
            .create_volume(CreateVolumeOptions {
                name: name.clone(),
                labels: HashMap::from([
                    ("managed-by".to_owned(), "artel".to_owned()),
                    ("artel-project".to_owned(), project.to_string()),
                ]),
                ..Default::default()
            })
            .await
            .map_err(docker_error(format!("creating the volume {name}")))?;
        Ok(name)
    }

    /// Creates and starts the container, records its port, and watches it.
    async fn run(
        &self,
        spec: &ServiceSpec,
        image: &str,
        volume: &str,
        port: u16,
    ) -> Result<Started, DeployError> {
        let config = self.config();
        let name = container_name(spec.deployment);
        let mut env: Vec<String> = spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        env.extend([
            format!("PORT={CONTAINER_PORT}"),
            "HOST=0.0.0.0".to_owned(),
            "DATA_DIR=/data".to_owned(),
            "DATA_FILE=/data/data.json".to_owned(),
            "HOME=/tmp".to_owned(),
        ]);
        let exposed = format!("{CONTAINER_PORT}/tcp");
        let memory = i64::try_from(config.memory_bytes).unwrap_or(i64::MAX);
        let labels = HashMap::from([
            ("managed-by".to_owned(), "artel".to_owned()),
            ("artel-owner".to_owned(), config.owner.clone()),
            ("artel-project".to_owned(), spec.project.to_string()),
            ("artel-deployment".to_owned(), spec.deployment.to_string()),
        ]);
        let container = Config {
            image: Some(image.to_owned()),
            env: Some(env),
            user: Some(format!("{}:{}", config.run_as.0, config.run_as.1)),
            labels: Some(labels),
            exposed_ports: Some(HashMap::from([(exposed.clone(), HashMap::new())])),
            host_config: Some(HostConfig {
                port_bindings: Some(HashMap::from([(
                    exposed,
                    Some(vec![PortBinding {
                        host_ip: Some(config.publish_address.clone()),
                        host_port: Some(port.to_string()),
                    }]),
                )])),
                memory: Some(memory),
                memory_swap: Some(memory),
                pids_limit: Some(i64::from(config.pids)),
                nano_cpus: Some(config.nano_cpus),
                readonly_rootfs: Some(true),
                tmpfs: Some(HashMap::from([(
                    "/tmp".to_owned(),
                    "rw,nosuid,nodev,size=64m".to_owned(),
                )])),
                binds: Some(vec![format!("{volume}:/data")]),
                cap_drop: Some(vec!["ALL".to_owned()]),
                security_opt: Some(vec!["no-new-privileges".to_owned()]),
                init: Some(true),
                ..Default::default()
            }),
            ..Default::default()
        };
        let docker = &self.inner.docker;
        docker
            .create_container(
                Some(CreateContainerOptions {
                    name: name.clone(),
                    platform: None,
                }),
                container,
            )
            .await
            .map_err(docker_error(format!("creating the container {name}")))?;
        docker
            .start_container::<String>(&name, None)
            .await
            .map_err(docker_error(format!("starting the container {name}")))?;
        self.inner
            .store
            .set_deployment_port(spec.deployment, port)
            .await?;
        self.watch(spec.deployment);
        tracing::info!(port, container = %name, "service container started");
        Ok(self.started(spec.deployment, port))
    }

    /// Starts waiting for the deployment's container to end.
    fn watch(&self, deployment: DeploymentId) {
        let (report, exit) = watch::channel(None);
        let docker = self.inner.docker.clone();
        let waiter = tokio::spawn(async move {
            let name = container_name(deployment);
            let mut waits = docker.wait_container(&name, None::<WaitContainerOptions<String>>);
            let code = match waits.next().await {
                Some(Ok(response)) => Some(response.status_code),
                Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => {
                    Some(code)
                }
                Some(Err(err)) => {
                    tracing::warn!(%deployment, error = %err, "cannot wait for a service container");
                    None
                }
                None => None,
            };
            let end = exit_of(code);
            tracing::info!(%deployment, "service container {end}");
            report.send_replace(Some(end));
        });
        self.inner
            .services
            .lock()
            .insert(deployment, ExitWatch { exit, waiter });
    }

    /// Stops watching the deployment (its waiter is aborted: no exit is reported).
    fn forget(&self, deployment: DeploymentId) {
        drop(self.inner.services.lock().remove(&deployment));
    }

    /// Stops (within the grace) and removes the deployment's container, if there is one.
    async fn remove_container(&self, deployment: DeploymentId) -> Result<(), DeployError> {
        let name = container_name(deployment);
        let docker = &self.inner.docker;
        let grace = self.grace_secs();
        match docker
            .stop_container(&name, Some(StopContainerOptions { t: grace }))
            .await
        {
            Ok(()) => {}
            Err(err) if is_not_found(&err) => return Ok(()),
            // 304: stopped already.
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 304, ..
            }) => {}
            Err(err) => return Err(docker_error(format!("stopping {name}"))(err)),
        }
        match docker
            .remove_container(
                &name,
                Some(RemoveContainerOptions {
                    force: true,
                    ..Default::default()
                }),
            )
            .await
        {
            Ok(()) => Ok(()),
            Err(err) if is_not_found(&err) => Ok(()),
            Err(err) => Err(docker_error(format!("removing {name}"))(err)),
        }
    }

    fn grace_secs(&self) -> i64 {
        i64::try_from(self.config().stop_grace.as_secs().max(1)).unwrap_or(10)
    }

    fn exit_watch(&self, deployment: DeploymentId) -> Option<watch::Receiver<Option<ServiceExit>>> {
        let services = self.inner.services.lock();
        services.get(&deployment).map(|s| s.exit.clone())
    }

    /// The container's last log lines; empty when they cannot be read.
    async fn log_tail(&self, container: &str) -> String {
        let mut logs = self.inner.docker.logs(
            container,
            Some(LogsOptions::<String> {
                stdout: true,
                stderr: true,
                tail: TAIL_LINES.to_string(),
                ..Default::default()
            }),
        );
        let mut tail = Tail::default();
        while let Some(Ok(chunk)) = logs.next().await {
            match chunk {
                LogOutput::StdOut { message }
                | LogOutput::StdErr { message }
                | LogOutput::Console { message } => tail.push(&String::from_utf8_lossy(&message)),
                LogOutput::StdIn { .. } => {}
            }
        }
        tail.text()
    }
}

impl crate::health::Probe for DockerTarget {
    fn name(&self) -> &'static str {
        "docker-deploy"
    }

    fn check(&self) -> futures_util::future::BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            self.inner
                .docker
                .ping()
                .await
                .map(drop)
                .map_err(|e| format!("the Docker deploy host does not answer: {e}"))
        })
    }
}

/// A container's exit code as a [`ServiceExit`]: Docker reports a signal N as 128 + N.
fn exit_of(code: Option<i64>) -> ServiceExit {
    match code.and_then(|c| i32::try_from(c).ok()) {
        Some(c) if c > 128 && c < 160 => ServiceExit {
            code: None,
            signal: Some(c - 128),
        },
        Some(c) => ServiceExit {
            code: Some(c),
            signal: None,
        },
        None => ServiceExit {
            code: None,
            signal: None,
        },
    }
}

/// The last lines of some output.
#[derive(Default)]
struct Tail {
    lines: VecDeque<String>,
}

impl Tail {
    fn push(&mut self, text: &str) {
        for line in text.lines().map(str::trim_end).filter(|l| !l.is_empty()) {
            if self.lines.len() == TAIL_LINES {
                self.lines.pop_front();
            }
            self.lines.push_back(line.to_owned());
        }
    }

    fn text(&self) -> String {
        Vec::from(self.lines.clone()).join("\n")
    }
}

/// The directory as an uncompressed tar stream (the build context), read by `tar`: the
/// files' owners inside are root, so `COPY` gives the image root-owned, read-only code.
async fn tar_directory(dir: &Path) -> Result<Vec<u8>, DeployError> {
    let output = tokio::process::Command::new("tar")
        .arg("-C")
        .arg(dir)
        .args(["--owner=0", "--group=0", "--numeric-owner", "-cf", "-", "."])
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .map_err(|source| DeployError::Io {
            what: format!("running tar on {}", dir.display()),
            source,
        })?;
    if !output.status.success() {
        return Err(DeployError::Io {
            what: format!("packing {} for the image build", dir.display()),
            source: std::io::Error::other(String::from_utf8_lossy(&output.stderr).into_owned()),
        });
    }
    Ok(output.stdout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_above_128_are_signals() {
        assert_eq!(exit_of(Some(137)).to_string(), "was killed by signal 9");
        assert_eq!(exit_of(Some(3)).to_string(), "exited with code 3");
        assert_eq!(exit_of(None).to_string(), "ended (how is unknown)");
    }

    #[test]
    fn tails_keep_the_last_nonempty_lines() {
        let mut tail = Tail::default();
        for i in 0..30 {
            tail.push(&format!("line {i}\n\n"));
        }
        let text = tail.text();
        assert!(
            text.starts_with("line 10\n") && text.ends_with("line 29"),
            "{text}"
        );
    }

    #[test]
    fn names_are_docker_safe() {
        let (project, deployment) = (ProjectId::new(), DeploymentId::new());
        let image = image_name(project, deployment);
        assert_eq!(image, image.to_lowercase());
        assert!(container_name(deployment).starts_with("artel-service-"));
        assert!(volume_name(project).starts_with("artel-data-"));
        let mut config = DockerTargetConfig::new("me");
        config.run_as = (0, 0);
        assert!(matches!(config.validate(), Err(DeployError::Config(_))));
    }
}
