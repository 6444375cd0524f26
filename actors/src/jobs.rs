//! The scheduler's jobs: what keeps artel's picture of the world true between requests.
//!
//! - [`check_deployments`] — every live deployment this process runs must still answer: a
//!   service that died is restarted once per run; one that does not come back is marked
//!   failed and its session is told.
//! - [`hibernate_sessions`] — sessions idle for the configured time are marked hibernated
//!   (their actors stop on their own; this catches sessions whose actor died with artel).
//! - [`reap_workers`] — workers still alive for a task that is over are stopped, and
//!   sandboxes no worker holds (containers a crash left) are removed.
//! - [`sync_repos`] — every project's repository must exist and have a readable `main`.
//!
//! Each runs in its own actor under the scheduler, on one node at a time (the scheduler holds
//! a Postgres advisory lock per job).

use crate::deploy_target::Targets;
use crate::git::LocalGit;
use crate::roles::deployer::Deployers;
use crate::roles::repo_name;
use crate::store::Store;
use crate::worker_manager::Workers;
use artel_messages::deployer::Revive;
use artel_messages::{Classify, Failure, WorkerId};
use std::time::Duration;

/// Restarts live deployments whose service died, each through the Deployer of its target;
/// answers a one-line summary.
pub async fn check_deployments(
    store: &Store,
    target: &Targets,
    deployers: &Deployers,
) -> Result<String, Failure> {
    let live = store.live_deployments().await.map_err(|e| e.to_failure())?;
    let (mut healthy, mut restarted, mut failed) = (0, 0, 0);
    for record in live {
        let Some(exit) = target.exited(&record) else {
            healthy += 1;
            continue;
        };
        tracing::warn!(deployment = %record.id, %exit, "a live service died: restarting it");
        let revive = Revive {
            deployment: record.id,
            exit: exit.to_string(),
        };
        match deployers.revive(&record, revive).await {
            Ok(_) => restarted += 1,
            Err(failure) => {
                tracing::warn!(deployment = %record.id, reason = %failure.reason, "a live service did not come back");
                failed += 1;
            }
        }
    }
    Ok(format!(
        "{healthy} live deployment(s) running, {restarted} restarted, {failed} failed"
    ))
}

/// Hibernates sessions idle longer than `idle`.
pub async fn hibernate_sessions(store: &Store, idle: Duration) -> Result<String, Failure> {
    let slept = store
        .hibernate_idle_sessions(idle)
        .await
        .map_err(|e| e.to_failure())?;
    Ok(format!("{} idle session(s) hibernated", slept.len()))
}

/// Stops this process's workers whose task is over, and removes stray sandboxes, through
/// the worker-manager's mailbox.
pub async fn reap_workers(store: &Store, workers: &Workers) -> Result<String, Failure> {
    let ids: Vec<uuid::Uuid> = sqlx::query_scalar(
        "SELECT w.id FROM workers w JOIN tasks t ON t.id = w.task_id \
         WHERE w.status <> 'stopped' AND t.status IN ('completed', 'failed', 'cancelled')",
    )
    .fetch_all(store.pool())
    .await
    .map_err(|e| Failure::retryable(format!("cannot list workers: {e}")))?;
    let reaped = workers
        .reap(ids.into_iter().map(WorkerId::from_uuid).collect())
        .await?;
    Ok(format!(
        "{} worker(s) of finished tasks stopped, {} stray sandbox(es) removed",
        reaped.stopped, reaped.strays
    ))
}

/// Checks that every project with a repository still has it, with a `main`.
pub async fn sync_repos(store: &Store, git: &LocalGit) -> Result<String, Failure> {
    let projects: Vec<(uuid::Uuid, String)> =
        sqlx::query_as("SELECT id, name FROM projects WHERE repo_url IS NOT NULL")
            .fetch_all(store.pool())
            .await
            .map_err(|e| Failure::retryable(format!("cannot list projects: {e}")))?;
    let (mut ok, mut broken) = (0, Vec::new());
    for (id, name) in projects {
        let repo = repo_name(&name, artel_messages::ProjectId::from_uuid(id));
        match git.head(&repo, "main").await {
            Ok(Some(_)) => ok += 1,
            Ok(None) => broken.push(format!("{name} (no main)")),
            Err(err) => broken.push(format!("{name} ({err})")),
        }
    }
    if broken.is_empty() {
        Ok(format!("{ok} repositories in order"))
    } else {
        tracing::warn!(?broken, "repositories need attention");
        Ok(format!(
            "{ok} repositories in order, {} need attention: {}",
            broken.len(),
            broken.join(", ")
        ))
    }
}
