//! Deployer: runs a commit on the deploy target, health-checks it, and only then lets it
//! replace the deployment that was serving — or rolls back.
//!
//! One [`Deployer`] actor per deploy target (`deployers/local`, `deployers/docker`) is the one
//! road to that target: deploys, health checks and the health job's restarts of every
//! project reach the target through its mailbox, so the target's allocations (ports, containers, names) have one owner. Like
//! the worker-manager it is a gate: it admits each request and runs it beside itself
//! (deferred replies), so one project's Docker build does not hold up another's health check.
//!
//! Two steps of the deploy workflow:
//! - `deploy` exports the commit, reads the values of the secrets the service declares, and
//!   starts it on an allocated port as a new deployment (`deploying`) on the configured
//!   target: a local process, or a container built from the commit's Dockerfile. The deployment's id is
//!   found again when the step runs again after a crash, so a task has one deployment.
//! - `health_check` waits for the new deployment to answer its health path. Healthy: it
//!   becomes `live` and the previous one `superseded` (in one transaction) and is stopped.
//!   Unhealthy: the new one is stopped and ends `rolled_back` (the previous deployment never
//!   stopped serving) or `failed` (there was none), and the task fails with the reason.

use super::policy::RolePolicy;
use super::role::answer_of;
use super::tester::read_manifest;
use super::{Crew, repo_of};
use crate::deploy_target::Targets;
use crate::git::LocalGit;
use crate::store::{DeploymentRecord, NewDeployment, Store};
use crate::workflow::StepError;
use artel_messages::deployer::{CheckHealth, Deploy, DeployTarget, Deployed, Health, Revive};
use artel_messages::env_analyzer::EnvSource;
use artel_messages::event::{EventBody, NewEvent};
use artel_messages::{Classify, DeploymentStatus, Failure, ProjectId, TaskId};
use artel_supervisors::{
    Actor, Addr, CallError, ChildSpec, Context, Deferred, Handler, Later, Supervisor,
};
use std::time::Duration;

/// Handles a [`Deploy`]: starts the service, not yet live.
pub async fn deploy(crew: &DeployCrew, msg: Deploy) -> Result<Deployed, Failure> {
    let repo = repo_of(&crew.store, msg.project).await?;
    let commit = crew
        .git
        .resolve_commit(&repo.name, &msg.commit)
        .await
        .map_err(|e| e.to_failure())?;
    let manifest = read_manifest(&crew.git, &repo.name, &commit).await?;
    let workdir = crew.target.code_dir(msg.deployment);
    let env_names: Vec<String> = manifest
        .env
        .iter()
        .filter(|v| v.source != EnvSource::Target)
        .map(|v| v.name.clone())
        .collect();
    let deployment = crew
        .store
        .create_deployment(&NewDeployment {
            id: msg.deployment,
            project: msg.project,
            task: msg.task,
            commit: commit.clone(),
            workdir: workdir.clone(),
            command: manifest.run.clone(),
            env_names,
            health_path: manifest.health.clone(),
            target: msg.target.clone(),
        })
        .await
        .map_err(|e| e.to_failure())?;
    // A step that runs again finds its deployment; stop what an earlier attempt started.
    crew.target
        .stop(&deployment)
        .await
        .map_err(|e| e.to_failure())?;
    if workdir.exists() {
        std::fs::remove_dir_all(&workdir)
            .map_err(|e| Failure::retryable(format!("cannot clear {}: {e}", workdir.display())))?;
    }
    crew.git
        .export(&repo.name, &commit, &workdir)
        .await
        .map_err(|e| e.to_failure())?;
    emit(
        crew,
        msg.project,
        msg.task,
        EventBody::DeployStarted {
            deployment: deployment.id,
        },
    )
    .await?;
    let running = crew
        .target
        .start(&deployment)
        .await
        .map_err(|e| e.to_failure())?;
    Ok(Deployed {
        deployment: deployment.id,
        url: running.url,
    })
}

/// Handles a [`CheckHealth`]: promotes the deployment or rolls back.
pub async fn check_health(crew: &DeployCrew, msg: CheckHealth) -> Result<Health, Failure> {
    let record = crew
        .store
        .deployment(msg.deployment)
        .await
        .map_err(|e| e.to_failure())?
        .ok_or_else(|| Failure::fatal(format!("deployment {} does not exist", msg.deployment)))?;
    if record.status == DeploymentStatus::Live {
        return Ok(healthy());
    }
    let (project, task) = (record.project, record.task);
    let health = crew.target.wait_healthy(&record, &msg.url).await;
    if health.healthy {
        let previous = crew
            .store
            .promote_deployment(msg.deployment, &msg.url)
            .await
            .map_err(|e| e.to_failure())?;
        if let Some(previous) = previous {
            crew.target
                .stop(&previous)
                .await
                .map_err(|e| e.to_failure())?;
        }
        emit(
            crew,
            project,
            task,
            EventBody::DeploySucceeded {
                deployment: msg.deployment,
                url: msg.url.clone(),
            },
        )
        .await?;
        return Ok(health);
    }
    roll_back(crew, project, task, &record, &health).await
}

/// Handles a [`Revive`]: starts a live deployment's dead service again and waits for its
/// health; one that does not come back is stopped, marked failed, and its session told.
pub async fn revive(crew: &DeployCrew, msg: Revive) -> Result<Health, Failure> {
    let record = crew
        .store
        .deployment(msg.deployment)
        .await
        .map_err(|e| e.to_failure())?
        .ok_or_else(|| Failure::fatal(format!("deployment {} does not exist", msg.deployment)))?;
    let outcome = crew.target.start(&record).await;
    let health = match &outcome {
        Ok(running) => Some(crew.target.wait_healthy(&record, &running.url).await),
        Err(_) => None,
    };
    if let Some(health) = health.as_ref().filter(|h| h.healthy) {
        return Ok(health.clone());
    }
    let detail = match (outcome, health) {
        (Err(err), _) => err.to_string(),
        (Ok(_), Some(health)) => health.detail.unwrap_or_else(|| "no answer".into()),
        (Ok(_), None) => "no answer".into(),
    };
    let reason = format!("the service {} and did not come back: {detail}", msg.exit);
    let _ = crew.target.stop(&record).await;
    crew.store
        .fail_deployment(record.id, DeploymentStatus::Failed, &reason)
        .await
        .map_err(|e| e.to_failure())?;
    let failure = Failure::retryable(reason);
    emit(
        crew,
        record.project,
        record.task,
        EventBody::DeployFailed {
            deployment: record.id,
            failure: failure.clone(),
        },
    )
    .await?;
    Err(failure)
}

fn healthy() -> Health {
    Health {
        healthy: true,
        status_code: Some(200),
        detail: None,
    }
}

/// Stops a deployment that failed its health check and records what serves instead.
async fn roll_back(
    crew: &DeployCrew,
    project: ProjectId,
    task: TaskId,
    record: &DeploymentRecord,
    health: &Health,
) -> Result<Health, Failure> {
    crew.target.stop(record).await.map_err(|e| e.to_failure())?;
    let detail = health
        .detail
        .clone()
        .unwrap_or_else(|| "it did not answer".to_owned());
    let previous = crew
        .store
        .live_deployment(project)
        .await
        .map_err(|e| e.to_failure())?;
    let status = if previous.is_some() {
        DeploymentStatus::RolledBack
    } else {
        DeploymentStatus::Failed
    };
    crew.store
        .fail_deployment(record.id, status, &detail)
        .await
        .map_err(|e| e.to_failure())?;
    let failure = Failure::fatal(match &previous {
        Some(live) => format!(
            "the new deployment failed its health check ({detail}); the previous one keeps \
             serving at {}",
            live.url.as_deref().unwrap_or("its address")
        ),
        None => format!("the deployment failed its health check ({detail})"),
    });
    emit(
        crew,
        project,
        task,
        EventBody::DeployFailed {
            deployment: record.id,
            failure: failure.clone(),
        },
    )
    .await?;
    if let Some(live) = previous {
        emit(
            crew,
            project,
            task,
            EventBody::DeployRolledBack {
                deployment: record.id,
                restored: live.id,
            },
        )
        .await?;
    }
    Err(failure)
}

async fn emit(
    crew: &DeployCrew,
    project: ProjectId,
    task: TaskId,
    body: EventBody,
) -> Result<(), Failure> {
    crew.store
        .append_event(NewEvent::new(body).project(project).task(task))
        .await
        .map(drop)
        .map_err(|e| e.to_failure())
}

/// What a Deployer works with: the store, the repositories it exports from, the targets.
#[derive(Clone)]
pub struct DeployCrew {
    /// The source of truth.
    pub store: Store,
    /// Project repositories.
    pub git: LocalGit,
    /// Where services run.
    pub target: Targets,
}

impl From<&Crew> for DeployCrew {
    fn from(crew: &Crew) -> Self {
        Self {
            store: crew.store.clone(),
            git: crew.git.clone(),
            target: crew.target.clone(),
        }
    }
}

/// The Deployer of one deploy target (see the module docs).
pub struct Deployer {
    crew: DeployCrew,
}

impl Actor for Deployer {}

impl Handler<Deferred<Deploy>> for Deployer {
    async fn handle(
        &mut self,
        msg: Deferred<Deploy>,
        ctx: &mut Context<Self>,
    ) -> Later<Result<Deployed, Failure>> {
        let crew = self.crew.clone();
        ctx.spawn_reply(async move { deploy(&crew, msg.0).await })
    }
}

impl Handler<Deferred<CheckHealth>> for Deployer {
    async fn handle(
        &mut self,
        msg: Deferred<CheckHealth>,
        ctx: &mut Context<Self>,
    ) -> Later<Result<Health, Failure>> {
        let crew = self.crew.clone();
        ctx.spawn_reply(async move { check_health(&crew, msg.0).await })
    }
}

impl Handler<Deferred<Revive>> for Deployer {
    async fn handle(
        &mut self,
        msg: Deferred<Revive>,
        ctx: &mut Context<Self>,
    ) -> Later<Result<Health, Failure>> {
        let crew = self.crew.clone();
        ctx.spawn_reply(async move { revive(&crew, msg.0).await })
    }
}

/// The road to the deploy targets: the address of each target's [`Deployer`]. Cheap to
/// clone.
#[derive(Clone)]
pub struct Deployers {
    store: Store,
    local: Addr<Deployer>,
    docker: Option<Addr<Deployer>>,
}

impl Deployers {
    /// The `deployers` subtree: a Deployer for each target `crew.target` has, permanent,
    /// with `policy`'s backoff (its handlers only admit: the deadline is the caller's).
    pub fn subtree(crew: impl Into<DeployCrew>, policy: RolePolicy) -> (Self, Supervisor) {
        let crew: DeployCrew = crew.into();
        let crew = &crew;
        let spec = |name: &str| {
            let crew = crew.clone();
            let (addr, spec) = ChildSpec::actor(name, move || Deployer { crew: crew.clone() });
            let spec = spec
                .role("deployer")
                .backoff(policy.backoff)
                .deadline(Some(Duration::from_secs(30)))
                .label("target", name);
            (addr, spec)
        };
        let (local, local_spec) = spec("local");
        let mut tree = Supervisor::new("deployers").child(local_spec);
        let docker = match crew.target.docker() {
            Some(_) => {
                let (addr, docker_spec) = spec("docker");
                tree = tree.child(docker_spec);
                Some(addr)
            }
            None => None,
        };
        let deployers = Self {
            store: crew.store.clone(),
            local,
            docker,
        };
        (deployers, tree)
    }

    fn of(&self, target: &DeployTarget) -> Result<&Addr<Deployer>, Failure> {
        match target {
            DeployTarget::Local => Ok(&self.local),
            DeployTarget::Docker => self.docker.as_ref().ok_or_else(|| {
                Failure::fatal(
                    "this deployment runs on Docker, which artel is not connected to: start \
                     artel with deploy.target = \"docker\" (or a Docker daemon it can reach)",
                )
            }),
            DeployTarget::Ssh { host, .. } => Err(Failure::fatal(format!(
                "{host} is an SSH host, which is not a deploy target yet"
            ))),
        }
    }

    /// Deploys through the Deployer of `msg.target`, waiting up to `policy.deadline`.
    pub async fn deploy(&self, msg: Deploy, policy: RolePolicy) -> Result<Deployed, StepError> {
        let deployer = self.of(&msg.target)?;
        let wait = policy.deadline;
        let reply = tokio::time::timeout(wait, deployer.call_later(msg)).await;
        settled(wait, reply)
    }

    /// Checks a deployment's health through the Deployer of its target.
    pub async fn check_health(
        &self,
        msg: CheckHealth,
        policy: RolePolicy,
    ) -> Result<Health, StepError> {
        let record = self
            .store
            .deployment(msg.deployment)
            .await
            .map_err(|e| e.to_failure())?
            .ok_or_else(|| {
                Failure::fatal(format!("deployment {} does not exist", msg.deployment))
            })?;
        let deployer = self.of(&record.target)?;
        let wait = policy.deadline;
        let reply = tokio::time::timeout(wait, deployer.call_later(msg)).await;
        settled(wait, reply)
    }
}

impl Deployers {
    /// Restarts `record`'s dead service through the Deployer of its target (the health
    /// job's road); waits for the service's health.
    pub async fn revive(&self, record: &DeploymentRecord, msg: Revive) -> Result<Health, Failure> {
        let deployer = self.of(&record.target)?;
        deployer.call_later(msg).await.unwrap_or_else(|err| {
            Err(Failure {
                class: err.class(),
                reason: format!("the deployer did not answer: {err}"),
                retry_after_ms: None,
            })
        })
    }
}

/// A Deployer's reply as a step result. The Deployer is shared by every deploy to its
/// target, so a failed deploy is that task's failure, not the Deployer's: the deploy
/// workflow's own child spec waits before the next attempt.
fn settled<T>(
    wait: Duration,
    reply: Result<Result<Result<T, Failure>, CallError>, tokio::time::error::Elapsed>,
) -> Result<T, StepError> {
    answer_of("deployer", wait, reply)
        .and_then(|answer| answer)
        .map_err(StepError::Workflow)
}
