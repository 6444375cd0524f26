//! [`Targets`]: the one handle roles, jobs and front doors use for deployed services. It
//! sends every action on a deployment to the target that deployment was made on, and new
//! deployments to the configured default.

use super::{DeployError, DockerTarget, LocalTarget, Restored, RunningService, ServiceExit};
use crate::store::DeploymentRecord;
use artel_messages::DeploymentId;
use artel_messages::deployer::{DeployTarget, Health};
use std::path::PathBuf;

/// A started service, on whichever target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Started {
    /// The deployment.
    pub deployment: DeploymentId,
    /// The port it is reached on (on the target's host).
    pub port: u16,
    /// Where it answers.
    pub url: String,
}

impl From<RunningService> for Started {
    fn from(running: RunningService) -> Self {
        Self {
            deployment: running.deployment,
            port: running.port,
            url: running.url,
        }
    }
}

/// The deploy targets this artel has: the local one always, Docker when configured or when
/// live deployments run there. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Targets {
    local: LocalTarget,
    docker: Option<DockerTarget>,
    /// Where new deployments go.
    default: DeployTarget,
}

impl Targets {
    /// Local only.
    pub fn local_only(local: LocalTarget) -> Self {
        Self {
            local,
            docker: None,
            default: DeployTarget::Local,
        }
    }

    /// Local, and Docker for new deployments.
    pub fn with_docker(local: LocalTarget, docker: DockerTarget) -> Self {
        Self {
            local,
            docker: Some(docker),
            default: DeployTarget::Docker,
        }
    }

    /// New deployments local; Docker kept for the deployments made there earlier (which
    /// keep running there until superseded).
    pub fn local_with_docker(local: LocalTarget, docker: DockerTarget) -> Self {
        Self {
            default: DeployTarget::Local,
            ..Self::with_docker(local, docker)
        }
    }

    /// Where new deployments run.
    pub fn default_target(&self) -> DeployTarget {
        self.default.clone()
    }

    /// The local target.
    pub fn local(&self) -> &LocalTarget {
        &self.local
    }

    /// The Docker target, when configured.
    pub fn docker(&self) -> Option<&DockerTarget> {
        self.docker.as_ref()
    }

    /// Where the Deployer exports a deployment's code (the local target's root: Docker
    /// builds its image from there).
    pub fn code_dir(&self, deployment: DeploymentId) -> PathBuf {
        self.local
            .config()
            .root
            .join("code")
            .join(deployment.to_string())
    }

    fn docker_for(&self, record: &DeploymentRecord) -> Result<&DockerTarget, DeployError> {
        self.docker.as_ref().ok_or_else(|| no_docker(record))
    }

    /// Starts the deployment's service on its target (its code already exported).
    pub async fn start(&self, record: &DeploymentRecord) -> Result<Started, DeployError> {
        match &record.target {
            DeployTarget::Local => {
                let spec = self.local.spec_for(record).await?;
                self.local.start(spec).await.map(Started::from)
            }
            DeployTarget::Docker => {
                let docker = self.docker_for(record)?;
                let spec = super::service_spec(docker.store(), record).await?;
                docker.start(spec).await
            }
            DeployTarget::Ssh { host, .. } => Err(ssh_unsupported(record, host)),
        }
    }

    /// Waits for the deployment to answer its health path at `url`.
    pub async fn wait_healthy(&self, record: &DeploymentRecord, url: &str) -> Health {
        match (&record.target, &self.docker) {
            (DeployTarget::Docker, Some(docker)) => {
                docker
                    .wait_healthy(url, &record.health_path, record.id)
                    .await
            }
            _ => {
                self.local
                    .wait_healthy(url, &record.health_path, record.id)
                    .await
            }
        }
    }

    /// Stops the deployment's service and releases its port. A Docker deployment that is
    /// over needs no daemon: it was stopped when it ended.
    pub async fn stop(&self, record: &DeploymentRecord) -> Result<(), DeployError> {
        match (&record.target, &self.docker) {
            (DeployTarget::Docker, Some(docker)) => docker.stop(record).await,
            (DeployTarget::Docker, None) if record.status.is_terminal() => Ok(()),
            (DeployTarget::Docker, None) => Err(no_docker(record)),
            _ => self.local.stop(record.id).await,
        }
    }

    /// How the deployment's service ended, if it ended by itself.
    pub fn exited(&self, record: &DeploymentRecord) -> Option<ServiceExit> {
        match (&record.target, &self.docker) {
            (DeployTarget::Docker, Some(docker)) => docker.exited(record.id),
            _ => self.local.exited(record.id),
        }
    }

    /// Stops every service of every target for artel's shutdown; they stay `live` and are
    /// restarted at the next start.
    pub async fn stop_all(&self) {
        match &self.docker {
            Some(docker) => {
                futures_util::future::join(self.local.stop_all(), docker.stop_all()).await;
            }
            None => self.local.stop_all().await,
        }
    }

    /// At start: restarts every live deployment on its target and checks its health.
    pub async fn restore_live(&self) -> Result<Vec<Restored<Started>>, DeployError> {
        let mut restored: Vec<Restored<Started>> = self
            .local
            .restore_live()
            .await?
            .into_iter()
            .map(|r| Restored {
                deployment: r.deployment,
                project: r.project,
                outcome: r.outcome.map(|(running, health)| (running.into(), health)),
            })
            .collect();
        if let Some(docker) = &self.docker {
            restored.extend(docker.restore_live().await?);
        }
        Ok(restored)
    }
}

/// A Docker deployment met by an artel without a Docker deploy target.
fn no_docker(record: &DeploymentRecord) -> DeployError {
    DeployError::NotRestorable {
        deployment: record.id,
        reason: "it runs on Docker, and this artel has no Docker deploy target (set \
                 deploy.target = \"docker\")"
            .into(),
    }
}

fn ssh_unsupported(record: &DeploymentRecord, host: &str) -> DeployError {
    DeployError::NotRestorable {
        deployment: record.id,
        reason: format!("it names the SSH host {host}, and artel has no SSH deploy target yet"),
    }
}
