//! The pipeline's roles: Analyst, Scaffolder, Developer, Tester (engineering) and EnvAnalyzer,
//! SecretResolver, Deployer (deploy), each an actor answering its message from the catalog.
//!
//! A role's logic is a function of this module's children (`developer::develop`, …); the
//! actor that runs it is a [`role::Role`] in the task's subtree
//! (`workflows/tasks/<kind>/<task>/<role>`), or — for the Deployer, which owns a deploy
//! target's allocations across tasks — one [`deployer::Deployer`] per target under
//! `deployers`. A role's failures are its own: its child spec ([`policy`]) restarts it, and
//! no role retries by hand. Roles share one [`Crew`]: the store, the local git provider, the
//! road to the worker-manager, the deploy target and the agent. Each effect is idempotent on
//! what the journal gives it (a repository that exists is reused, a deployment of the task is
//! found again), because after a crash a step runs again.

pub mod analyst;
pub mod deployer;
pub mod developer;
pub mod env_analyzer;
pub mod policy;
pub mod role;
pub mod scaffolder;
pub mod secret_resolver;
pub mod tester;
pub mod workspace;

use crate::agent::Agent;
use crate::deploy_target::Targets;
use crate::git::LocalGit;
use crate::store::Store;
use crate::worker_manager::Workers;
use artel_messages::worker_manager::WorkerLimits;
use artel_messages::{Classify, Failure, ProjectId};

/// What every role works with. Cheap to clone.
#[derive(Clone)]
pub struct Crew {
    /// The source of truth.
    pub store: Store,
    /// Project repositories.
    pub git: LocalGit,
    /// The road to sandboxes for agents and tests (the worker-manager actor's mailbox).
    pub workers: Workers,
    /// Where services run.
    pub target: Targets,
    /// What writes the code.
    pub agent: Agent,
    /// Limits of each agent or test command.
    pub limits: WorkerLimits,
    /// Whether the agent's worker may reach the network (`agent.network`); test commands
    /// never do.
    pub agent_network: bool,
    /// Whether the user confirms the spec before anything is built (`analyst.confirm`).
    pub confirm_spec: bool,
    /// Runs before every role's work (fault injection in tests); `None` in production.
    pub hook: Option<role::RoleHook>,
}

impl Crew {
    /// The local repository name of `project`: its name plus a piece of its id, so two
    /// users' projects of the same name never share a repository.
    pub async fn repo_of(&self, project: ProjectId) -> Result<Repo, Failure> {
        repo_of(&self.store, project).await
    }
}

/// [`Crew::repo_of`], for roles that hold only the store.
pub async fn repo_of(store: &Store, project: ProjectId) -> Result<Repo, Failure> {
    let dto = store
        .project_of_task(project)
        .await
        .map_err(|e| e.to_failure())?;
    Ok(Repo {
        name: repo_name(&dto.name, project),
        project_name: dto.name,
    })
}

/// A project's repository, as roles name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repo {
    /// The repository's name under the repositories directory.
    pub name: String,
    /// The project's name.
    pub project_name: String,
}

/// `<name>-<last 8 hex digits of the project id>`, within the 63 characters git names allow.
pub fn repo_name(project_name: &str, project: ProjectId) -> String {
    let id = project.as_uuid().simple().to_string();
    let suffix = &id[id.len() - 8..];
    let stem: String = project_name.chars().take(50).collect();
    format!("{stem}-{suffix}")
}

/// The task branch a Developer commits on.
pub fn task_branch(task: artel_messages::TaskId) -> String {
    format!("task/{task}")
}

/// Reads a field a step needs from its input, or says which one is missing (a bug in the
/// plan, not something a retry fixes).
pub(crate) fn field<T: serde::de::DeserializeOwned>(
    input: &serde_json::Value,
    path: &[&str],
) -> Result<T, Failure> {
    let mut value = input;
    for key in path {
        value = value
            .get(key)
            .ok_or_else(|| Failure::fatal(format!("step input has no `{}`", path.join("."))))?;
    }
    serde_json::from_value(value.clone())
        .map_err(|e| Failure::fatal(format!("step input `{}` is malformed: {e}", path.join("."))))
}
