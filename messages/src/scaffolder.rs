//! Scaffolder's messages: create a project's repository from a template.
//!
//! The first step of engineering. The Scaffolder makes the repository (a local bare repository
//! offline, GitHub in production), fills it from a template and commits. It is idempotent: run
//! again for a project whose repository exists, it answers that repository.

use crate::error::Failure;
use crate::ids::{ProjectId, TaskId};
use crate::request::Request;
use serde::{Deserialize, Serialize};

/// Create and fill the repository of a project.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scaffold {
    /// The project.
    pub project: ProjectId,
    /// The engineering task this step belongs to.
    pub task: TaskId,
    /// The project's name; the repository is named after it.
    pub name: String,
    /// What the project is, for the template's README and the agent's brief.
    pub description: String,
    /// Which template to use; `None` lets the Scaffolder choose from the description.
    pub template: Option<String>,
}

impl Request for Scaffold {
    type Reply = Result<Scaffolded, Failure>;
}

/// The repository a [`Scaffold`] made (or found).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scaffolded {
    /// Where to clone it from.
    pub repo_url: String,
    /// Its default branch.
    pub branch: String,
    /// The commit holding the filled template.
    pub commit: String,
    /// The template used.
    pub template: String,
}
