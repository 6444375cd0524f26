//! Tester's messages: run a project's tests against a commit.
//!
//! Tests run in a worker. Failing tests — the project's own or the acceptance suite the
//! Tester derives from the spec — are a [`TestReport`], not a [`Failure`]: they send the
//! work back to the Developer (the rework loop). A `Failure` means the tests could not be run.

use crate::error::Failure;
use crate::ids::{ProjectId, TaskId};
use crate::request::Request;
use crate::spec::Spec;
use serde::{Deserialize, Serialize};

/// Run the tests of one commit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunTests {
    /// The project.
    pub project: ProjectId,
    /// The engineering task this step belongs to.
    pub task: TaskId,
    /// Where to clone the code from.
    pub repo_url: String,
    /// The commit to test.
    pub commit: String,
    /// The test command; `None` uses the one the project's template declares.
    pub command: Option<String>,
    /// The confirmed spec: when given, the Tester also runs the acceptance suite it derives
    /// from it against the running service.
    pub spec: Option<Spec>,
}

impl Request for RunTests {
    type Reply = Result<TestReport, Failure>;
}

/// What running the tests showed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestReport {
    /// True when the test command exited successfully.
    pub success: bool,
    /// Tests that passed, as far as the output tells.
    pub passed: u32,
    /// Tests that failed, as far as the output tells.
    pub failed: u32,
    /// The last lines of the output: what the Developer reads when reworking.
    pub output_tail: String,
}
