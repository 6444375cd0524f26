//! Deployer's messages: run a commit on a target, check it answers, roll back if not.
//!
//! The last steps of a deploy. The Deployer reads the secrets it was told about from the store,
//! starts the service, and checks its health; a deployment is live only once healthy. When a
//! new deployment fails and an earlier one exists, the workflow rolls back to it.

use crate::error::Failure;
use crate::ids::{DeploymentId, ProjectId, TaskId};
use crate::request::Request;
use serde::{Deserialize, Serialize};

/// Where a service runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "target", rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum DeployTarget {
    /// A local process on an allocated port; the offline default.
    Local,
    /// A container on the configured Docker host.
    Docker,
    /// A host reached over SSH.
    Ssh {
        /// Host name or address, optionally `host:port`.
        host: String,
        /// The user to log in as.
        user: String,
    },
}

/// Deploy one commit of a project.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deploy {
    /// The project.
    pub project: ProjectId,
    /// The deploy task this step belongs to.
    pub task: TaskId,
    /// The deployment's id, chosen by the workflow so a repeated step finds its deployment.
    pub deployment: DeploymentId,
    /// Where to clone the code from.
    pub repo_url: String,
    /// The commit to deploy.
    pub commit: String,
    /// Where to run it.
    pub target: DeployTarget,
    /// Names of the environment variables to set, read from the store by the Deployer.
    pub env: Vec<String>,
}

impl Request for Deploy {
    type Reply = Result<Deployed, Failure>;
}

/// A started service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deployed {
    /// The deployment.
    pub deployment: DeploymentId,
    /// Where it answers.
    pub url: String,
}

/// Check that a deployment answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckHealth {
    /// The deployment.
    pub deployment: DeploymentId,
    /// Where it should answer.
    pub url: String,
}

impl Request for CheckHealth {
    type Reply = Result<Health, Failure>;
}

/// What a health check saw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// True when it answered successfully.
    pub healthy: bool,
    /// The HTTP status it answered with, if it answered at all.
    pub status_code: Option<u16>,
    /// What went wrong, when unhealthy.
    pub detail: Option<String>,
}

/// Undo a deployment that did not come up and restore the one it replaced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollBack {
    /// The project.
    pub project: ProjectId,
    /// The deploy task.
    pub task: TaskId,
    /// The deployment to undo.
    pub failed: DeploymentId,
    /// The earlier deployment to restore.
    pub restore: DeploymentId,
}

impl Request for RollBack {
    type Reply = Result<(), Failure>;
}

/// Start again a live deployment whose service died (the scheduler's health job): answers
/// its health once restarted; a service that does not come back is marked failed, its
/// session told, and the failure says why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revive {
    /// The live deployment whose service exited.
    pub deployment: DeploymentId,
    /// How the service ended, in words (for the log and the failure).
    pub exit: String,
}

impl Request for Revive {
    type Reply = Result<Health, Failure>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn targets_are_tagged() {
        assert_eq!(
            serde_json::to_value(DeployTarget::Local).unwrap(),
            json!({"target": "local"})
        );
        let ssh = DeployTarget::Ssh {
            host: "example.invalid:22".into(),
            user: "deploy".into(),
        };
        let json = serde_json::to_value(&ssh).unwrap();
        assert_eq!(
            json,
            json!({"target": "ssh", "host": "example.invalid:22", "user": "deploy"})
        );
        assert_eq!(serde_json::from_value::<DeployTarget>(json).unwrap(), ssh);
    }
}
