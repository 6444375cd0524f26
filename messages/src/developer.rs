//! Developer's messages: have an agent change the code and commit.
//!
//! The Developer runs an agent (template, CLI or LLM) in a worker on the project's repository.
//! In the rework loop it gets the Tester's last report; on retry-with-guidance, the user's
//! guidance. Each attempt is a new step attempt in the journal.

use crate::error::Failure;
use crate::ids::{ProjectId, TaskId};
use crate::request::Request;
use crate::spec::Spec;
use crate::tester::TestReport;
use serde::{Deserialize, Serialize};

/// Write code for a task and commit it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Develop {
    /// The project.
    pub project: ProjectId,
    /// The engineering task this step belongs to.
    pub task: TaskId,
    /// Where to clone the code from.
    pub repo_url: String,
    /// The branch to commit on.
    pub branch: String,
    /// What to build or change, in the user's words.
    pub description: String,
    /// Which attempt this is, from 1.
    pub attempt: u32,
    /// The failing test report the previous attempt produced, in the rework loop.
    pub rework: Option<TestReport>,
    /// What the user said when retrying a stuck or failed task.
    pub guidance: Option<String>,
    /// The spec the user confirmed: what to build.
    pub spec: Option<Spec>,
}

impl Request for Develop {
    type Reply = Result<Developed, Failure>;
}

/// The commit a [`Develop`] made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Developed {
    /// The commit's full hash.
    pub commit: String,
    /// The branch it is on.
    pub branch: String,
    /// What the agent says it did, for the user.
    pub summary: String,
    /// Set when the agent stopped for a human (a budget reached, stuck): why, in words for
    /// the user. The commit then holds the work so far; the task waits in `needs_human`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub needs_human: Option<String>,
}
