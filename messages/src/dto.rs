//! DTOs: the records front doors return and roles answer with.
//!
//! Postgres is the source of truth; these are its rows as the rest of artel sees them, with
//! typed ids, typed statuses and [`Timestamp`]s — never a raw chrono type, so every time a
//! client reads has the one wire form. Each table is its own record (no giant state column).

use crate::deployer::DeployTarget;
use crate::error::Failure;
use crate::event::ChatRole;
use crate::ids::{ApiKeyId, DeploymentId, ProjectId, SessionId, TaskId, UserId, WorkerId};
use crate::lifecycle::{
    DeploymentStatus, SessionChannel, SessionStatus, StepKind, StepStatus, TaskKind, TaskStatus,
    UserRole, WorkerStatus,
};
use crate::time::Timestamp;
use crate::worker_manager::{WorkerLimits, WorkerRuntime};
use serde::{Deserialize, Serialize};

/// What a project's or a task's model calls used: every call in `llm_requests`, summed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LlmUsageDto {
    /// Calls made (failed ones included).
    pub requests: u64,
    /// Input tokens, cached ones included.
    pub tokens_in: u64,
    /// Output tokens.
    pub tokens_out: u64,
    /// Input tokens the provider's cache served.
    pub tokens_cached: u64,
    /// The cost, in micro-USD (calls to a model without a price count 0).
    pub cost_micro_usd: u64,
}

/// A project: a repository, its deployments and secrets, owned by a user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProjectDto {
    /// Its id.
    pub id: ProjectId,
    /// Who owns it.
    pub owner: UserId,
    /// A short name, unique per owner, used in chat and on the command line.
    pub name: String,
    /// What the project is, in the user's words.
    pub description: String,
    /// Its repository, once scaffolded.
    pub repo_url: Option<String>,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it last changed.
    pub updated_at: Timestamp,
}

/// A task: one unit of work on a project.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TaskDto {
    /// Its id.
    pub id: TaskId,
    /// The project it works on.
    pub project: ProjectId,
    /// Engineering or deploy.
    pub kind: TaskKind,
    /// Where it is in its lifecycle.
    pub status: TaskStatus,
    /// What was asked for, in the user's words.
    pub description: String,
    /// The session to tell about its progress, if it was started from one.
    pub session: Option<SessionId>,
    /// Why it failed, while it is failed.
    pub failure: Option<Failure>,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it last changed.
    pub updated_at: Timestamp,
}

/// One attempt at one step of a task, as journaled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StepDto {
    /// The task it belongs to.
    pub task: TaskId,
    /// Which step.
    pub kind: StepKind,
    /// Which attempt, from 1; with `task` and `kind` it identifies the row.
    pub attempt: u32,
    /// Where the attempt is in its lifecycle.
    pub status: StepStatus,
    /// When it started running.
    pub started_at: Option<Timestamp>,
    /// When it succeeded or failed.
    pub finished_at: Option<Timestamp>,
    /// Why it failed, if it did.
    pub failure: Option<Failure>,
}

/// A worker: one sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WorkerDto {
    /// Its id.
    pub id: WorkerId,
    /// The project it works on.
    pub project: ProjectId,
    /// The task it works for.
    pub task: TaskId,
    /// Process or container.
    pub runtime: WorkerRuntime,
    /// Where it is in the worker lifecycle.
    pub status: WorkerStatus,
    /// The limits it runs under.
    pub limits: WorkerLimits,
    /// When it was spawned.
    pub created_at: Timestamp,
    /// When its status last changed.
    pub updated_at: Timestamp,
}

/// A deployment: one attempt to run a commit of a project on a target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeploymentDto {
    /// Its id.
    pub id: DeploymentId,
    /// The project deployed.
    pub project: ProjectId,
    /// The deploy task that made it.
    pub task: TaskId,
    /// The commit deployed.
    pub commit: String,
    /// Where it runs.
    pub target: DeployTarget,
    /// Where it is in the deployment lifecycle.
    pub status: DeploymentStatus,
    /// Where the service answers, once live.
    pub url: Option<String>,
    /// When it was started.
    pub created_at: Timestamp,
    /// When its status last changed.
    pub updated_at: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_utc_and_statuses_snake_case() {
        let at = Timestamp::parse("2026-11-23T19:51:07.123456Z").unwrap();
        let task = TaskDto {
            id: TaskId::new(),
            project: ProjectId::new(),
            kind: TaskKind::Deploy,
            status: TaskStatus::NeedsHuman,
            description: "deploy the blog".into(),
            session: None,
            failure: None,
            created_at: at,
            updated_at: at,
        };
        let json = serde_json::to_value(&task).unwrap();
        assert_eq!(json["created_at"], "2026-11-23T19:51:07.123456Z");
        assert_eq!(json["status"], "needs_human");
        assert_eq!(json["kind"], "deploy");
        assert_eq!(serde_json::from_value::<TaskDto>(json).unwrap(), task);

        let step = StepDto {
            task: task.id,
            kind: StepKind::ResolveSecrets,
            attempt: 1,
            status: StepStatus::Running,
            started_at: Some(at),
            finished_at: None,
            failure: None,
        };
        let json = serde_json::to_value(&step).unwrap();
        assert_eq!(json["kind"], "resolve_secrets");
        assert_eq!(json["finished_at"], serde_json::Value::Null);
        assert_eq!(serde_json::from_value::<StepDto>(json).unwrap(), step);
    }

    #[test]
    fn naive_times_from_a_client_are_refused() {
        let json = serde_json::json!({
            "id": ProjectId::new(),
            "owner": UserId::new(),
            "name": "blog",
            "description": "a blog",
            "repo_url": null,
            "created_at": "2026-11-23T19:51:07",
            "updated_at": "2026-11-23T19:51:07Z",
        });
        let err = serde_json::from_value::<ProjectDto>(json).unwrap_err();
        assert!(err.to_string().contains("has no UTC offset"), "{err}");
    }
}

/// A conversation with the ProductOwner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SessionDto {
    /// Its id.
    pub id: SessionId,
    /// Who is talking.
    pub user: UserId,
    /// The project it is about, once there is one.
    pub project: Option<ProjectId>,
    /// Where the conversation happens.
    pub channel: SessionChannel,
    /// Active, hibernated or closed.
    pub status: SessionStatus,
    /// When it started.
    pub created_at: Timestamp,
    /// When it last heard or said something.
    pub last_seen_at: Timestamp,
}

/// One line of a session's transcript.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChatLineDto {
    /// Its place in the transcript (grows with every line).
    pub id: i64,
    /// Who said it.
    pub role: ChatRole,
    /// What was said (a line that gave a secret is kept redacted).
    pub text: String,
    /// When.
    pub at: Timestamp,
}

/// A user, as the control plane shows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserDto {
    /// Their id.
    pub id: UserId,
    /// How artel addresses them.
    pub name: String,
    /// Their e-mail address, if given.
    pub email: Option<String>,
    /// What they may do.
    pub role: UserRole,
    /// When they were created.
    pub created_at: Timestamp,
}

/// An API key as listed: never its secret, which is shown once, when it is created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApiKeyDto {
    /// Its id (for revocation).
    pub id: ApiKeyId,
    /// Whose key it is.
    pub user: UserId,
    /// What its owner called it.
    pub label: String,
    /// The first characters of the key, to recognize it by.
    pub prefix: String,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it last authenticated a request (updated at most once a minute).
    pub last_used_at: Option<Timestamp>,
    /// When it was revoked; a revoked key authenticates nothing.
    pub revoked_at: Option<Timestamp>,
}
