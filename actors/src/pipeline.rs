//! The pipeline: the [`StepRunner`] that turns each journaled step into its role's message.
//!
//! The workflow decides *which* step runs (see [`crate::workflow::plan`]); this maps the
//! step's context — the description, the guidance and the outputs of the steps before it —
//! onto the catalog message of the role that does it, and the role's reply back into the
//! JSON the journal keeps as the step's output.
//!
//! | step | role | message → output |
//! |---|---|---|
//! | scaffold | Scaffolder | `Scaffold` → `Scaffolded` |
//! | develop | Developer | `Develop` → `Developed` |
//! | test | Tester (+ merge to `main` when green) | `RunTests` → `TestReport` + `merged` |
//! | analyze_env | EnvAnalyzer | `AnalyzeEnv` → `EnvAnalysis` + `commit` |
//! | resolve_secrets | SecretResolver | `ResolveSecrets` → `SecretResolution` |
//! | deploy | Deployer | `Deploy` → `Deployed` |
//! | health_check | Deployer | `CheckHealth` → `Health` (or the rollback's failure) |

use crate::roles::{
    Crew, deployer, developer, env_analyzer, field, scaffolder, secret_resolver, task_branch,
    tester,
};
use crate::workflow::{StepCall, StepRunner};
use artel_messages::deployer::{CheckHealth, Deploy};
use artel_messages::developer::Develop;
use artel_messages::env_analyzer::{AnalyzeEnv, EnvVar};
use artel_messages::scaffolder::Scaffold;
use artel_messages::secret_resolver::ResolveSecrets;
use artel_messages::tester::{RunTests, TestReport};
use artel_messages::{Classify, DeploymentId, DeploymentStatus, Failure, StepKind};
use serde::Serialize;
use serde_json::{Value, json};
use tracing::Instrument;

/// Runs every step of engineering and deploy tasks with a [`Crew`].
#[derive(Clone)]
pub struct Pipeline {
    crew: Crew,
}

impl Pipeline {
    /// A pipeline working with `crew`.
    pub fn new(crew: Crew) -> Self {
        Self { crew }
    }

    /// The crew it works with.
    pub fn crew(&self) -> &Crew {
        &self.crew
    }
}

impl StepRunner for Pipeline {
    async fn run(&self, call: StepCall) -> Result<Value, Failure> {
        let span = tracing::info_span!(
            "step",
            task = %call.task,
            project = %call.project,
            step = %call.step,
            attempt = call.attempt
        );
        async move {
            match call.step {
                StepKind::Scaffold => self.scaffold(call).await,
                StepKind::Develop => self.develop(call).await,
                StepKind::Test => self.test(call).await,
                StepKind::AnalyzeEnv => self.analyze_env(call).await,
                StepKind::ResolveSecrets => self.resolve_secrets(call).await,
                StepKind::Deploy => self.deploy(call).await,
                StepKind::HealthCheck => self.health_check(call).await,
            }
        }
        .instrument(span)
        .await
    }
}

fn output(value: impl Serialize) -> Result<Value, Failure> {
    serde_json::to_value(value).map_err(|e| Failure::fatal(format!("cannot journal output: {e}")))
}

impl Pipeline {
    async fn scaffold(&self, call: StepCall) -> Result<Value, Failure> {
        let repo = self.crew.repo_of(call.project).await?;
        let scaffolded = scaffolder::scaffold(
            &self.crew,
            Scaffold {
                project: call.project,
                task: call.task,
                name: repo.project_name,
                description: field(&call.input, &["description"])?,
                template: None,
            },
        )
        .await?;
        output(scaffolded)
    }

    async fn develop(&self, call: StepCall) -> Result<Value, Failure> {
        let rework: Option<TestReport> = call
            .input
            .get("test")
            .and_then(|t| serde_json::from_value(t.clone()).ok())
            .filter(|r: &TestReport| !r.success);
        let developed = developer::develop(
            &self.crew,
            Develop {
                project: call.project,
                task: call.task,
                repo_url: field(&call.input, &["scaffold", "repo_url"])?,
                branch: task_branch(call.task),
                description: field(&call.input, &["description"])?,
                attempt: field(&call.input, &["iteration"])?,
                rework,
                guidance: field(&call.input, &["guidance"])?,
            },
        )
        .await?;
        output(developed)
    }

    async fn test(&self, call: StepCall) -> Result<Value, Failure> {
        let commit: String = field(&call.input, &["develop", "commit"])?;
        let report = tester::run_tests(
            &self.crew,
            RunTests {
                project: call.project,
                task: call.task,
                repo_url: field(&call.input, &["scaffold", "repo_url"])?,
                commit,
                command: None,
            },
        )
        .await?;
        let mut out = output(&report)?;
        if report.success {
            let repo = self.crew.repo_of(call.project).await?;
            let merged = self
                .crew
                .git
                .merge_into_main(&repo.name, &task_branch(call.task))
                .await
                .map_err(|e| e.to_failure())?;
            out["merged"] = json!(merged);
        }
        Ok(out)
    }

    async fn analyze_env(&self, call: StepCall) -> Result<Value, Failure> {
        let repo = self.crew.repo_of(call.project).await?;
        // The commit the task is pinned to (a rollback), or the head of `main` when the
        // deploy starts; fixed in the journal from here on.
        let pin = self
            .crew
            .store
            .task_commit_pin(call.task)
            .await
            .map_err(|e| e.to_failure())?;
        let commit = match pin {
            Some(commit) => commit,
            None => self
                .crew
                .git
                .head(&repo.name, "main")
                .await
                .map_err(|e| e.to_failure())?
                .ok_or_else(|| Failure::fatal("the project has no code on main to deploy yet"))?,
        };
        let analysis = env_analyzer::analyze(
            &self.crew,
            AnalyzeEnv {
                project: call.project,
                task: call.task,
                repo_url: self
                    .crew
                    .git
                    .clone_url(&repo.name)
                    .map_err(|e| e.to_failure())?,
                commit: commit.clone(),
            },
        )
        .await?;
        let mut out = output(analysis)?;
        out["commit"] = json!(commit);
        Ok(out)
    }

    async fn resolve_secrets(&self, call: StepCall) -> Result<Value, Failure> {
        let variables: Vec<EnvVar> = field(&call.input, &["analyze_env", "variables"])?;
        let resolution = secret_resolver::resolve(
            &self.crew,
            ResolveSecrets {
                project: call.project,
                task: call.task,
                variables,
            },
        )
        .await?;
        output(resolution)
    }

    async fn deploy(&self, call: StepCall) -> Result<Value, Failure> {
        let commit: String = field(&call.input, &["analyze_env", "commit"])?;
        // The same task's unfinished deployment when this step runs again.
        let deployment = self
            .crew
            .store
            .deployments(call.project)
            .await
            .map_err(|e| e.to_failure())?
            .into_iter()
            .find(|d| d.task == call.task && d.status == DeploymentStatus::Deploying)
            .map(|d| d.id)
            .unwrap_or_else(DeploymentId::new);
        let repo = self.crew.repo_of(call.project).await?;
        let deployed = deployer::deploy(
            &self.crew,
            Deploy {
                project: call.project,
                task: call.task,
                deployment,
                repo_url: self
                    .crew
                    .git
                    .clone_url(&repo.name)
                    .map_err(|e| e.to_failure())?,
                commit,
                target: self.crew.target.default_target(),
                env: Vec::new(),
            },
        )
        .await?;
        output(deployed)
    }

    async fn health_check(&self, call: StepCall) -> Result<Value, Failure> {
        let deployment: DeploymentId = field(&call.input, &["deploy", "deployment"])?;
        let url: String = field(&call.input, &["deploy", "url"])?;
        let health = deployer::check_health(
            &self.crew,
            call.project,
            call.task,
            CheckHealth {
                deployment,
                url: url.clone(),
            },
        )
        .await?;
        let mut out = output(health)?;
        out["url"] = json!(url);
        out["deployment"] = json!(deployment);
        Ok(out)
    }
}
