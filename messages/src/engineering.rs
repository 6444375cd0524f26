//! The engineering workflow's messages: start, cancel and retry an engineering task.
//!
//! One EngineeringWorkflow actor drives one engineering task through Scaffolder → Developer ⇄
//! Tester, journaling each step. These messages are how sessions, the REST API and the CLI
//! steer it; each answers the task as it now is.

use crate::dto::TaskDto;
use crate::error::Failure;
use crate::ids::{ProjectId, SessionId, TaskId};
use crate::request::Request;
use serde::{Deserialize, Serialize};

/// Start an engineering task on an existing project.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartEngineering {
    /// The new task's id, chosen by the caller: starting the same id again answers the
    /// existing task instead of starting a second one.
    pub task: TaskId,
    /// The project to work on.
    pub project: ProjectId,
    /// What to build or change, in the user's words.
    pub description: String,
    /// The session to report progress to, if started from a conversation.
    pub session: Option<SessionId>,
}

impl Request for StartEngineering {
    type Reply = Result<TaskDto, Failure>;
}

/// Cancel an engineering task; its worker is stopped and the task ends `cancelled`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancelEngineering {
    /// The task.
    pub task: TaskId,
    /// Why, for the journal.
    pub reason: String,
}

impl Request for CancelEngineering {
    type Reply = Result<TaskDto, Failure>;
}

/// Go on with a task that is `failed` or `needs_human`, resuming at its first unfinished step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryEngineering {
    /// The task.
    pub task: TaskId,
    /// What the user says to do differently; handed to the Developer. `None` just retries.
    pub guidance: Option<String>,
}

impl Request for RetryEngineering {
    type Reply = Result<TaskDto, Failure>;
}
