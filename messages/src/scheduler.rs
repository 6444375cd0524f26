//! The scheduler's messages: the periodic jobs, and running one now.
//!
//! The scheduler runs each job on its configured interval; [`RunJob`] runs one at once (the
//! CLI and the tests use it). Jobs keep artel's picture of the world current and clean up what
//! crashed callers left behind.

use crate::error::Failure;
use crate::named::named_enum;
use crate::request::Request;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};

named_enum! {
    /// A periodic job.
    pub enum JobKind("job kind") {
        /// Fetch every project's repository so the store knows its branches and head commits.
        RepoSync = "repo_sync",
        /// Check that every live deployment still answers.
        HealthCheck = "health_check",
        /// Hibernate sessions idle longer than the configured time.
        SessionReaper = "session_reaper",
        /// Stop workers whose task is over or whose wall-clock limit passed.
        WorkerReaper = "worker_reaper",
    }
}

/// Run a job now, outside its schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunJob {
    /// Which job.
    pub job: JobKind,
}

impl Request for RunJob {
    type Reply = Result<JobReport, Failure>;
}

/// What one run of a job did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobReport {
    /// Which job.
    pub job: JobKind,
    /// When the run started.
    pub started_at: Timestamp,
    /// When it ended.
    pub finished_at: Timestamp,
    /// What it did, in a line: e.g. `synced 4 repositories, 1 unreachable`.
    pub summary: String,
}
