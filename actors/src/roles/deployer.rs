//! Deployer: runs a commit on the deploy target, health-checks it, and only then lets it
//! replace the deployment that was serving — or rolls back.
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

use super::Crew;
use super::tester::read_manifest;
use crate::store::{DeploymentRecord, NewDeployment};
use artel_messages::deployer::{CheckHealth, Deploy, Deployed, Health};
use artel_messages::env_analyzer::EnvSource;
use artel_messages::event::{EventBody, NewEvent};
use artel_messages::{Classify, DeploymentStatus, Failure, ProjectId, TaskId};

/// Handles a [`Deploy`]: starts the service, not yet live.
pub async fn deploy(crew: &Crew, msg: Deploy) -> Result<Deployed, Failure> {
    let repo = crew.repo_of(msg.project).await?;
    let commit = crew
        .git
        .resolve_commit(&repo.name, &msg.commit)
        .await
        .map_err(|e| e.to_failure())?;
    let manifest = read_manifest(crew, &repo.name, &commit).await?;
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

/// Handles a [`CheckHealth`] for a deployment of `task`: promotes it or rolls back.
pub async fn check_health(
    crew: &Crew,
    project: ProjectId,
    task: TaskId,
    msg: CheckHealth,
) -> Result<Health, Failure> {
    let record = crew
        .store
        .deployment(msg.deployment)
        .await
        .map_err(|e| e.to_failure())?
        .ok_or_else(|| Failure::fatal(format!("deployment {} does not exist", msg.deployment)))?;
    if record.status == DeploymentStatus::Live {
        return Ok(healthy());
    }
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

fn healthy() -> Health {
    Health {
        healthy: true,
        status_code: Some(200),
        detail: None,
    }
}

/// Stops a deployment that failed its health check and records what serves instead.
async fn roll_back(
    crew: &Crew,
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
    crew: &Crew,
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
