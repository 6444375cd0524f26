//! The runtime: artel's roles assembled from [`Settings`], ready to be put in the tree.
//!
//! `artel up` and `artel new` run the same runtime; only the front doors differ. Building it
//! also restarts the deployments that were live when artel last stopped (or died), before any
//! new work starts, so a service users rely on is back as soon as artel is.
//!
//! ```text
//! worker-manager   the one road to a sandbox (spawn, run, stop, reap through its mailbox)
//! deployers        one Deployer per deploy target: local (and docker)
//! workflows        rest_for_one: tasks (a subtree per task: workflow + role actors) + resumer
//! sessions         herald + one actor per live session
//! scheduler        one actor per job: health-check, session-reaper, worker-reaper, repo-sync
//! ```

use crate::agent::Agent;
use crate::deploy_target::{
    DockerTarget, DockerTargetConfig, LocalTarget, LocalTargetConfig, Targets,
};
use crate::git::LocalGit;
use crate::jobs;
use crate::pipeline::Pipeline;
use crate::roles::Crew;
use crate::roles::deployer::Deployers;
use crate::roles::policy::RolePolicies;
use crate::roles::role::RoleHook;
use crate::scheduler::{Job, Scheduler, SchedulerHandle};
use crate::sessions::{Brain, Sessions};
use crate::settings::{DeployTargetChoice, Settings};
use crate::store::Store;
use crate::worker_manager::{WorkerManager, WorkerManagerActor, Workers};
use crate::workflow::{PlanLimits, WorkflowPolicy, Workflows};
use artel_messages::deployer::DeployTarget;
use artel_messages::scheduler::JobKind;
use artel_messages::worker_manager::WorkerLimits;
use artel_messages::{Classify, Failure};
use artel_supervisors::{ChildSpec, Supervisor};
use std::time::Duration;

/// The assembled roles and their subtrees.
pub struct Runtime {
    /// The `worker-manager` node: the one road to a sandbox.
    pub worker_manager: ChildSpec,
    /// The road to it, for the API and whoever else acts on workers.
    pub workers: Workers,
    /// The road to the deploy targets (one Deployer each).
    pub deployers: Deployers,
    /// The `deployers` subtree: one Deployer per deploy target.
    pub deployers_tree: Supervisor,
    /// Starts, cancels and resumes tasks.
    pub workflows: Workflows<Pipeline>,
    /// The `workflows` subtree.
    pub workflows_tree: Supervisor,
    /// Conversations with the ProductOwner.
    pub sessions: Sessions<Pipeline>,
    /// The `sessions` subtree.
    pub sessions_tree: Supervisor,
    /// Runs the scheduler's jobs now and reads their last reports.
    pub scheduler: SchedulerHandle,
    /// The `scheduler` subtree: one actor per job.
    pub scheduler_tree: Supervisor,
    /// Where services run; stop its services on shutdown.
    pub target: Targets,
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

/// What tests tune beyond [`Settings`]: a hook before every role's work (fault injection)
/// and the roles' policies (short deadlines).
#[derive(Clone, Default)]
pub struct RuntimeOptions {
    /// Runs before every role's work.
    pub hook: Option<RoleHook>,
    /// Replaces the policies the settings imply.
    pub policies: Option<RolePolicies>,
}

impl Runtime {
    /// Assembles the runtime on `store`, with `workers` for agents and tests, and restarts
    /// the deployments that were live.
    pub async fn build(
        settings: &Settings,
        store: &Store,
        workers: WorkerManager,
    ) -> Result<Self, Failure> {
        let target = deploy_targets(settings, store).await?;
        Self::build_with_targets(settings, store, workers, target).await
    }

    /// [`build`](Self::build) with deploy targets already made (the binary makes them first,
    /// so the Docker deploy host joins the readiness probes).
    pub async fn build_with_targets(
        settings: &Settings,
        store: &Store,
        workers: WorkerManager,
        target: Targets,
    ) -> Result<Self, Failure> {
        Self::assemble(settings, store, workers, target, RuntimeOptions::default()).await
    }

    /// [`build_with_targets`](Self::build_with_targets) with `options`.
    pub async fn assemble(
        settings: &Settings,
        store: &Store,
        manager: WorkerManager,
        target: Targets,
        options: RuntimeOptions,
    ) -> Result<Self, Failure> {
        let git = LocalGit::new(settings.data_dir.join("repos"));
        git.prepare().await.map_err(|e| e.to_failure())?;
        let (workers, worker_manager) = WorkerManagerActor::child_spec("worker-manager", manager);
        restore_deployments(&target).await;

        let agent = Agent::from_settings(settings)?;
        let limits = worker_limits(settings);
        let crew = Crew {
            store: store.clone(),
            git: git.clone(),
            workers: workers.clone(),
            target: target.clone(),
            agent,
            limits,
            agent_network: settings.agent.network,
            confirm_spec: settings.analyst.confirm,
            hook: options.hook,
        };
        let policies = options
            .policies
            .unwrap_or_else(|| RolePolicies::from_settings(settings));
        let (deployers, deployers_tree) = Deployers::subtree(&crew, policies.deployer);
        let pipeline_deployers = deployers.clone();
        let runtime_deployers = deployers.clone();
        let policy = WorkflowPolicy {
            max_step_attempts: settings.workflows.max_step_attempts,
            // The workflow waits for its roles, each under its own deadline: far beyond the
            // longest of them, the workflow itself is stuck and its supervisor restarts it.
            step_deadline: policies.longest_step() * 2,
            limits: PlanLimits {
                max_rework_iterations: settings.workflows.max_rework_iterations,
            },
        };
        let (workflows, workflows_tree) = Workflows::subtree(
            store.clone(),
            Pipeline::new(crew, policies, deployers),
            policy,
        );
        let idle = Duration::from_secs(settings.sessions.idle_secs);
        let brain = Brain::from_settings(settings)?;
        let (sessions, sessions_tree) =
            Sessions::subtree(store.clone(), workflows.clone(), idle, brain);

        let every = |secs: u64| Duration::from_secs(secs.max(1));
        let s = &settings.scheduler;
        let scheduler = Scheduler::new(store.clone())
            .job(
                {
                    let (store, target) = (store.clone(), target.clone());
                    let deployers = pipeline_deployers.clone();
                    Job::new(JobKind::HealthCheck, move || {
                        let (store, target) = (store.clone(), target.clone());
                        let deployers = deployers.clone();
                        async move { jobs::check_deployments(&store, &target, &deployers).await }
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
        let (scheduler, scheduler_tree) = scheduler.into_supervisor("scheduler");
        Ok(Self {
            worker_manager,
            workers,
            deployers: runtime_deployers,
            deployers_tree,
            workflows,
            workflows_tree,
            sessions,
            sessions_tree,
            scheduler,
            scheduler_tree,
            target,
        })
    }
}

/// The deploy targets `[deploy]` configures: the local one always (deployments made there
/// keep running there), and Docker for new deployments when `deploy.target = "docker"`.
pub async fn deploy_targets(settings: &Settings, store: &Store) -> Result<Targets, Failure> {
    let deploy = &settings.deploy;
    let health_timeout = Duration::from_secs(deploy.health_timeout_secs);
    let mut config = LocalTargetConfig::new(settings.data_dir.join("deployments"));
    config.ports = deploy.first_port..=deploy.last_port;
    config.health_timeout = health_timeout;
    let local = LocalTarget::new(config, store.clone()).map_err(|e| e.to_failure())?;
    if deploy.target == DeployTargetChoice::Local {
        // Deployments made on Docker earlier keep running there: reach the daemon for them.
        let on_docker = store
            .live_deployments()
            .await
            .map_err(|e| e.to_failure())?
            .iter()
            .filter(|d| d.target == DeployTarget::Docker)
            .count();
        if on_docker == 0 {
            return Ok(Targets::local_only(local));
        }
        return match DockerTarget::connect(docker_config(settings), store.clone()).await {
            Ok(docker) => Ok(Targets::local_with_docker(local, docker)),
            Err(err) => {
                tracing::warn!(
                    live = on_docker,
                    %err,
                    "live deployments run on Docker, which does not answer: they are not \
                     restarted until it does (and artel starts again)"
                );
                Ok(Targets::local_only(local))
            }
        };
    }
    let docker = DockerTarget::connect(docker_config(settings), store.clone())
        .await
        .map_err(|e| {
            Failure::fatal(format!(
                "deploy.target = \"docker\", but the Docker deploy target cannot start: {e}"
            ))
        })?;
    Ok(Targets::with_docker(local, docker))
}

/// The Docker deploy target's configuration from `[deploy]` and `[deploy.docker]`.
fn docker_config(settings: &Settings) -> DockerTargetConfig {
    let deploy = &settings.deploy;
    let d = &deploy.docker;
    let mut config = DockerTargetConfig::new(settings.instance.clone());
    config.host = (!d.host.is_empty()).then(|| d.host.clone());
    config.base_image = d.base_image.clone();
    config.ports = d.first_port..=d.last_port;
    config.publish_address = d.publish_address.clone();
    config.public_host = d.public_host.clone();
    config.memory_bytes = d.memory_mb * 1024 * 1024;
    config.pids = d.pids;
    // Validated to (0, 1024]: the product fits an i64.
    config.nano_cpus = (d.cpus * 1e9) as i64;
    config.health_timeout = Duration::from_secs(deploy.health_timeout_secs);
    config
}

/// Restarts every deployment that was live; a failure is logged, not fatal (artel must come
/// up to fix it), and the scheduler's health job keeps trying.
async fn restore_deployments(target: &Targets) {
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
