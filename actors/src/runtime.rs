//! The runtime: artel's roles assembled from [`Settings`], ready to be put in the tree.
//!
//! `artel up` and `artel new` run the same runtime; only the front doors differ. Building it
//! also restarts the deployments that were live when artel last stopped (or died), before any
//! new work starts, so a service users rely on is back as soon as artel is.
//!
//! ```text
//! workflows        rest_for_one: tasks (one workflow per task) + resumer
//! sessions         herald + one actor per live session
//! scheduler        health-check, session-reaper, worker-reaper, repo-sync
//! ```

use crate::agent::Agent;
use crate::deploy_target::{LocalTarget, LocalTargetConfig};
use crate::git::LocalGit;
use crate::jobs;
use crate::pipeline::Pipeline;
use crate::roles::Crew;
use crate::scheduler::{Job, Scheduler};
use crate::sessions::Sessions;
use crate::settings::Settings;
use crate::store::Store;
use crate::worker_manager::WorkerManager;
use crate::workflow::{PlanLimits, WorkflowPolicy, Workflows};
use artel_messages::scheduler::JobKind;
use artel_messages::worker_manager::WorkerLimits;
use artel_messages::{Classify, Failure};
use artel_supervisors::{ChildSpec, Supervisor};
use std::time::Duration;

/// The assembled roles and their subtrees.
pub struct Runtime {
    /// Starts, cancels and resumes tasks.
    pub workflows: Workflows<Pipeline>,
    /// The `workflows` subtree.
    pub workflows_tree: Supervisor,
    /// Conversations with the ProductOwner.
    pub sessions: Sessions<Pipeline>,
    /// The `sessions` subtree.
    pub sessions_tree: Supervisor,
    /// The `scheduler` node.
    pub scheduler: ChildSpec,
    /// Where services run; stop its services on shutdown.
    pub target: LocalTarget,
}

/// The limits of one agent or test command, from `[workers]`.
pub fn worker_limits(settings: &Settings) -> WorkerLimits {
    const MIB: u64 = 1024 * 1024;
    let w = &settings.workers;
    WorkerLimits {
        cpu_seconds: w.cpu_seconds,
        memory_bytes: w.memory_mb * MIB,
        pids: w.pids,
        file_size_bytes: w.file_size_mb * MIB,
        wall_clock_timeout_secs: w.timeout_secs,
    }
}

impl Runtime {
    /// Assembles the runtime on `store`, with `workers` for agents and tests, and restarts
    /// the deployments that were live.
    pub async fn build(
        settings: &Settings,
        store: &Store,
        workers: WorkerManager,
    ) -> Result<Self, Failure> {
        let git = LocalGit::new(settings.data_dir.join("repos"));
        let mut config = LocalTargetConfig::new(settings.data_dir.join("deployments"));
        config.ports = settings.deploy.first_port..=settings.deploy.last_port;
        config.health_timeout = Duration::from_secs(settings.deploy.health_timeout_secs);
        let target = LocalTarget::new(config, store.clone()).map_err(|e| e.to_failure())?;
        restore_deployments(&target).await;

        let agent = Agent::from_settings(&settings.agent)?;
        let limits = worker_limits(settings);
        let crew = Crew {
            store: store.clone(),
            git: git.clone(),
            workers: workers.clone(),
            target: target.clone(),
            agent,
            limits,
        };
        let policy = WorkflowPolicy {
            max_step_attempts: settings.workflows.max_step_attempts,
            // A step runs one command in a worker at most (plus a queue wait): far beyond
            // that, the workflow is stuck and its supervisor restarts it.
            step_deadline: Duration::from_secs(settings.workers.timeout_secs * 4 + 300),
            limits: PlanLimits {
                max_rework_iterations: settings.workflows.max_rework_iterations,
            },
        };
        let (workflows, workflows_tree) =
            Workflows::subtree(store.clone(), Pipeline::new(crew), policy);
        let idle = Duration::from_secs(settings.sessions.idle_secs);
        let (sessions, sessions_tree) = Sessions::subtree(store.clone(), workflows.clone(), idle);

        let every = |secs: u64| Duration::from_secs(secs.max(1));
        let s = &settings.scheduler;
        let scheduler = Scheduler::new(store.clone())
            .job(
                {
                    let (store, target) = (store.clone(), target.clone());
                    Job::new(JobKind::HealthCheck, move || {
                        let (store, target) = (store.clone(), target.clone());
                        async move { jobs::check_deployments(&store, &target).await }
                    })
                },
                every(s.health_check_secs),
            )
            .job(
                {
                    let store = store.clone();
                    Job::new(JobKind::SessionReaper, move || {
                        let store = store.clone();
                        async move { jobs::hibernate_sessions(&store, idle).await }
                    })
                },
                every(s.session_reaper_secs),
            )
            .job(
                {
                    let (store, workers) = (store.clone(), workers.clone());
                    Job::new(JobKind::WorkerReaper, move || {
                        let (store, workers) = (store.clone(), workers.clone());
                        async move { jobs::reap_workers(&store, &workers).await }
                    })
                },
                every(s.worker_reaper_secs),
            )
            .job(
                {
                    let (store, git) = (store.clone(), git.clone());
                    Job::new(JobKind::RepoSync, move || {
                        let (store, git) = (store.clone(), git.clone());
                        async move { jobs::sync_repos(&store, &git).await }
                    })
                },
                every(s.repo_sync_secs),
            );
        let scheduler = scheduler.child_spec("scheduler");
        Ok(Self {
            workflows,
            workflows_tree,
            sessions,
            sessions_tree,
            scheduler,
            target,
        })
    }
}

/// Restarts every deployment that was live; a failure is logged, not fatal (artel must come
/// up to fix it), and the scheduler's health job keeps trying.
async fn restore_deployments(target: &LocalTarget) {
    match target.restore_live().await {
        Ok(restored) => {
            for r in restored {
                match r.outcome {
                    Ok((running, health)) if health.healthy => {
                        tracing::info!(deployment = %r.deployment, url = %running.url, "deployment restored");
                    }
                    Ok((running, health)) => tracing::warn!(
                        deployment = %r.deployment,
                        url = %running.url,
                        detail = ?health.detail,
                        "a restored deployment does not answer yet"
                    ),
                    Err(err) => {
                        tracing::warn!(deployment = %r.deployment, %err, "cannot restore a live deployment")
                    }
                }
            }
        }
        Err(err) => tracing::warn!(%err, "cannot read the live deployments to restore them"),
    }
}
