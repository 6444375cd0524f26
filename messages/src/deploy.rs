//! The deploy workflow's messages: start, cancel and retry a deploy task.
//!
//! One DeployWorkflow actor drives one deploy task through EnvAnalyzer → SecretResolver →
//! Deployer → health check, journaling each step. When a secret is missing the task waits in
//! `needs_human`; once the user gave it, a [`RetryDeploy`] resumes it. Each message answers the
//! task as it now is.

use crate::deployer::DeployTarget;
use crate::dto::TaskDto;
use crate::error::Failure;
use crate::ids::{ProjectId, SessionId, TaskId};
use crate::request::Request;
use serde::{Deserialize, Serialize};

/// Start a deploy task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartDeploy {
    /// The new task's id, chosen by the caller: starting the same id again answers the
    /// existing task instead of starting a second one.
    pub task: TaskId,
    /// The project to deploy.
    pub project: ProjectId,
    /// The commit to deploy; `None` is the head of the default branch when the task starts.
    pub commit: Option<String>,
    /// Where to run it.
    pub target: DeployTarget,
    /// The session to report progress to, if started from a conversation.
    pub session: Option<SessionId>,
}

impl Request for StartDeploy {
    type Reply = Result<TaskDto, Failure>;
}

/// Cancel a deploy task; a deployment in progress ends `failed` and the task `cancelled`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancelDeploy {
    /// The task.
    pub task: TaskId,
    /// Why, for the journal.
    pub reason: String,
}

impl Request for CancelDeploy {
    type Reply = Result<TaskDto, Failure>;
}

/// Go on with a task that is `failed` or `needs_human`, resuming at its first unfinished step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryDeploy {
    /// The task.
    pub task: TaskId,
    /// What the user says to do differently. `None` just retries, e.g. after giving a secret.
    pub guidance: Option<String>,
}

impl Request for RetryDeploy {
    type Reply = Result<TaskDto, Failure>;
}
