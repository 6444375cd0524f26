//! Deploy targets: where a deployed service runs, and how artel starts, checks and stops it.
//!
//! Two targets, behind one facade, [`Targets`], that the Deployer, the scheduler's health
//! job and the front doors use: each deployment records the target it was made on
//! (`deployments.server_id`), and every later action on it — health check, restart, stop,
//! restore at start — goes to that target, so changing `deploy.target` moves new
//! deployments only. [`DockerTarget`] builds the project's image from its Dockerfile and runs
//! it as a container with a published port (see its module). The offline default is
//! [`LocalTarget`]: the service is a local process on an allocated
//! port of 127.0.0.1, started from the directory the code was exported to, as an
//! unprivileged user. The Deployer decides *what* runs (which commit, which command, which
//! secrets); a target only runs it:
//!
//! ```text
//!   Deployer ──start(spec)──▶ LocalTarget ──spawn──▶ service (own process group, own uid)
//!            ──wait_healthy─▶   polls GET url+path until 2xx, timeout, or the process exits
//!            ──stop─────────▶   SIGTERM the group, then SIGKILL; port released
//! ```
//!
//! A new deployment replaces the old one only once healthy: the Deployer starts it next to
//! the live one (another port), checks it, and only then promotes it in the store and stops
//! the previous one; a failed check leaves the previous one serving (rollback).
//!
//! Deployed services outlive neither artel's shutdown nor its crash silently: on shutdown
//! [`LocalTarget::stop_all`] stops them but leaves them `live` in the store, and at the next
//! start [`LocalTarget::restore_live`] starts every live deployment again — after killing the
//! process group a crashed artel left behind (its leader's pid is recorded in the store).

pub mod docker;
mod groups;
mod health;
mod local;
mod targets;

pub use docker::{DockerTarget, DockerTargetConfig};
pub use local::{
    DEFAULT_HEALTH_TIMEOUT, DEFAULT_PORTS, DEFAULT_SERVICE_GID, DEFAULT_SERVICE_UID,
    DEFAULT_STOP_GRACE, LocalTarget, LocalTargetConfig,
};
pub use targets::{Started, Targets};

use crate::store::{DeploymentRecord, Store, StoreError};
use artel_messages::deployer::Health;
use artel_messages::{Classify, DeploymentId, ErrorClass, ProjectId};
use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::path::PathBuf;

/// What to run for a deployment. The code is already in `workdir`.
#[derive(Clone, PartialEq, Eq)]
pub struct ServiceSpec {
    /// The deployment (its row must exist in the store: the port and pid are recorded there).
    pub deployment: DeploymentId,
    /// The project deployed; its data directory survives redeploys.
    pub project: ProjectId,
    /// The directory holding the code; the service starts there, and it is handed to the
    /// user the service runs as.
    pub workdir: PathBuf,
    /// The program and its arguments. The program is looked up in the target's `PATH`.
    pub command: Vec<String>,
    /// Environment variables, secret values already resolved. `PORT`, `HOST`, `DATA_DIR`
    /// and `DATA_FILE` are set by the target and win over these.
    pub env: BTreeMap<String, String>,
}

/// Prints variable names only: values may be secrets.
impl fmt::Debug for ServiceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceSpec")
            .field("deployment", &self.deployment)
            .field("project", &self.project)
            .field("workdir", &self.workdir)
            .field("command", &self.command)
            .field("env", &self.env.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// A started service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunningService {
    /// The deployment.
    pub deployment: DeploymentId,
    /// The port it was told to listen on (`PORT`).
    pub port: u16,
    /// Its process group leader (the group id too).
    pub pid: u32,
    /// Where it answers: `http://127.0.0.1:<port>`.
    pub url: String,
    /// The file its stdout and stderr are appended to.
    pub log: PathBuf,
}

/// How a service's process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceExit {
    /// Its exit code, if it exited.
    pub code: Option<i32>,
    /// The signal that killed it, if one did.
    pub signal: Option<i32>,
}

impl From<std::process::ExitStatus> for ServiceExit {
    fn from(status: std::process::ExitStatus) -> Self {
        use std::os::unix::process::ExitStatusExt;
        Self {
            code: status.code(),
            signal: status.signal(),
        }
    }
}

impl fmt::Display for ServiceExit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.code, self.signal) {
            (Some(code), _) => write!(f, "exited with code {code}"),
            (None, Some(signal)) => write!(f, "was killed by signal {signal}"),
            (None, None) => f.write_str("ended (how is unknown)"),
        }
    }
}

/// A service's end being waited for: `exit` turns `Some` when it ends; dropping the watch
/// aborts the waiter (the service is forgotten, not stopped, and no end is reported).
struct ExitWatch {
    exit: tokio::sync::watch::Receiver<Option<ServiceExit>>,
    waiter: tokio::task::JoinHandle<()>,
}

impl ExitWatch {
    /// How the service ended, if it has.
    fn ended(&self) -> Option<ServiceExit> {
        *self.exit.borrow()
    }
}

impl Drop for ExitWatch {
    fn drop(&mut self) {
        self.waiter.abort();
    }
}

/// What restarting one live deployment at artel's start came to.
#[derive(Debug)]
pub struct Restored<S = RunningService> {
    /// The deployment.
    pub deployment: DeploymentId,
    /// Its project.
    pub project: ProjectId,
    /// The started service and its health check, or why it could not be started.
    pub outcome: Result<(S, Health), DeployError>,
}

/// The tail of restoring one live deployment, on any target: its health check, and its URL
/// in the store kept current (a restart may have moved it).
async fn check_restored(
    store: &Store,
    record: &DeploymentRecord,
    url: &str,
    health: impl std::future::Future<Output = Health>,
) -> Result<Health, DeployError> {
    let health = health.await;
    if record.url.as_deref() != Some(url) {
        store.set_deployment_url(record.id, url).await?;
    }
    Ok(health)
}

/// What to run for a stored deployment: its workdir and command, and its secrets' values
/// read from the store. For restarting a service, e.g. one that exited.
pub async fn service_spec(
    store: &Store,
    record: &DeploymentRecord,
) -> Result<ServiceSpec, DeployError> {
    let not_restorable = |reason: &str| DeployError::NotRestorable {
        deployment: record.id,
        reason: reason.to_owned(),
    };
    let workdir = record
        .workdir
        .clone()
        .ok_or_else(|| not_restorable("no workdir recorded"))?;
    if record.command.is_empty() {
        return Err(not_restorable("no command recorded"));
    }
    let mut env = BTreeMap::new();
    for name in &record.env_names {
        let value = match store.reveal_secret(record.project, name).await {
            Ok(value) => value,
            Err(err) if err.is_not_found() => {
                return Err(DeployError::MissingSecret { name: name.clone() });
            }
            Err(err) => return Err(err.into()),
        };
        env.insert(name.clone(), value.expose().to_owned());
    }
    Ok(ServiceSpec {
        deployment: record.id,
        project: record.project,
        workdir,
        command: record.command.clone(),
        env,
    })
}

/// Everything a deploy target can fail with, classified for supervisors.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// The target's configuration cannot work (an empty port range, running services as
    /// root). Fatal.
    #[error("bad deploy target configuration: {0}")]
    Config(String),
    /// The command is empty or names no program that can be run. Fatal.
    #[error("bad service command: {0}")]
    BadCommand(String),
    /// The program could not be started. Fatal when it does not exist or may not be run,
    /// retryable otherwise (e.g. too many processes).
    #[error("cannot start `{program}`")]
    Spawn {
        /// The program.
        program: String,
        /// Why.
        source: io::Error,
    },
    /// The directory with the code is missing or not a directory. Fatal.
    #[error("bad workdir {}: {reason}", path.display())]
    BadWorkdir {
        /// The directory.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A secret the service needs is not stored: the user must give it. Fatal.
    #[error("secret `{name}` is not set for the project")]
    MissingSecret {
        /// The secret's name.
        name: String,
    },
    /// A deployment lacks what a restart needs (no workdir or command recorded). Fatal.
    #[error("deployment `{deployment}` cannot be restarted: {reason}")]
    NotRestorable {
        /// The deployment.
        deployment: DeploymentId,
        /// What is missing.
        reason: String,
    },
    /// A file system operation failed (directories, ownership, the log). Retryable.
    #[error("{what}")]
    Io {
        /// What was being done.
        what: String,
        /// Why it failed.
        source: io::Error,
    },
    /// A process group could not be signalled (other than "it is gone"). Fatal.
    #[error("cannot signal process group {pgid}")]
    Signal {
        /// The process group.
        pgid: u32,
        /// Why.
        source: nix::errno::Errno,
    },
    /// The Docker daemon failed or could not be reached. Retryable: daemons restart.
    #[error("Docker: {what}: {detail}")]
    Docker {
        /// What was being done.
        what: String,
        /// What the daemon (or the connection) said.
        detail: String,
    },
    /// The project's image could not be built from its Dockerfile. Fatal: the Dockerfile
    /// or the code must change.
    #[error("cannot build the image {image}: {detail}")]
    Build {
        /// The image's tag.
        image: String,
        /// The builder's error and its last lines of output.
        detail: String,
    },
    /// The HTTP client for health checks could not be built. Fatal.
    #[error("cannot build the health-check HTTP client")]
    Http(#[source] reqwest::Error),
    /// The store failed; classified as the store classifies it (no free port is retryable).
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Classify for DeployError {
    fn class(&self) -> ErrorClass {
        match self {
            Self::Store(err) => err.class(),
            Self::Io { .. } | Self::Docker { .. } => ErrorClass::Retryable,
            Self::Spawn { source, .. } => match source.kind() {
                io::ErrorKind::NotFound | io::ErrorKind::PermissionDenied => ErrorClass::Fatal,
                _ => ErrorClass::Retryable,
            },
            Self::Config(_)
            | Self::BadCommand(_)
            | Self::BadWorkdir { .. }
            | Self::MissingSecret { .. }
            | Self::NotRestorable { .. }
            | Self::Signal { .. }
            | Self::Build { .. }
            | Self::Http(_) => ErrorClass::Fatal,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_free_port_and_io_are_retryable_bad_input_fatal() {
        let exhausted = DeployError::Store(StoreError::Exhausted {
            what: "port",
            detail: "18000..=18001".into(),
        });
        assert_eq!(exhausted.class(), ErrorClass::Retryable);
        let io = DeployError::Io {
            what: "creating the log".into(),
            source: io::Error::other("disk full"),
        };
        assert_eq!(io.class(), ErrorClass::Retryable);
        let missing = DeployError::Spawn {
            program: "nope".into(),
            source: io::Error::from(io::ErrorKind::NotFound),
        };
        assert_eq!(missing.class(), ErrorClass::Fatal);
        let secret = DeployError::MissingSecret {
            name: "BOT_TOKEN".into(),
        };
        assert_eq!(secret.class(), ErrorClass::Fatal);
        assert_eq!(
            DeployError::BadCommand("empty".into()).class(),
            ErrorClass::Fatal
        );
    }

    #[test]
    fn specs_never_print_values() {
        let spec = ServiceSpec {
            deployment: DeploymentId::new(),
            project: ProjectId::new(),
            workdir: PathBuf::from("/srv/x"),
            command: vec!["python3".into()],
            env: BTreeMap::from([("BOT_TOKEN".to_owned(), "hunter2".to_owned())]),
        };
        let printed = format!("{spec:?}");
        assert!(
            printed.contains("BOT_TOKEN") && !printed.contains("hunter2"),
            "{printed}"
        );
    }

    #[test]
    fn exits_read_like_sentences() {
        let code = ServiceExit {
            code: Some(3),
            signal: None,
        };
        assert_eq!(code.to_string(), "exited with code 3");
        let killed = ServiceExit {
            code: None,
            signal: Some(9),
        };
        assert_eq!(killed.to_string(), "was killed by signal 9");
    }
}
