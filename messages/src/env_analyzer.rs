//! EnvAnalyzer's messages: find the environment a service needs before it is deployed.
//!
//! The first step of a deploy. The EnvAnalyzer reads the repository at the commit to deploy
//! and lists the environment variables the service reads, each with where its value will come
//! from; the SecretResolver then makes sure they all exist.

use crate::error::Failure;
use crate::ids::{ProjectId, TaskId};
use crate::named::named_enum;
use crate::request::Request;
use serde::{Deserialize, Serialize};

/// Analyze one commit of a project.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnalyzeEnv {
    /// The project.
    pub project: ProjectId,
    /// The deploy task this step belongs to.
    pub task: TaskId,
    /// Where to clone the code from.
    pub repo_url: String,
    /// The commit to be deployed.
    pub commit: String,
}

impl Request for AnalyzeEnv {
    type Reply = Result<EnvAnalysis, Failure>;
}

/// What the service needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvAnalysis {
    /// The environment variables it reads.
    pub variables: Vec<EnvVar>,
}

/// One environment variable the service reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvVar {
    /// Its name, e.g. `DATABASE_URL`.
    pub name: String,
    /// Where its value comes from.
    pub source: EnvSource,
    /// False when the service has a default.
    pub required: bool,
    /// What it is for, to show the user when asking for it.
    pub description: String,
}

named_enum! {
    /// Where an environment variable's value comes from.
    pub enum EnvSource("env source") {
        /// Only the user has it (a third-party API key, a bot token): ask them.
        User = "user",
        /// artel makes it up and keeps it (a session signing key, a database password).
        Generated = "generated",
        /// The deploy target provides it (`PORT`, the URL of a provisioned database).
        Target = "target",
    }
}
