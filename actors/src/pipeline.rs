//! The pipeline: each task's crew of role actors, and the [`StepRunner`] that turns each
//! journaled step into a message to the role that does it.
//!
//! The workflow decides *which* step runs (see [`crate::workflow::plan`]); [`Pipeline`] staffs
//! each task with its role actors (put beside the workflow in the task's subtree), and
//! [`TaskCrew`] maps the step's context — the description, the guidance and the outputs of the
//! steps before it — onto the catalog message of the role that does it, sends it, awaits the
//! reply under the role's deadline, and turns the reply back into the JSON the journal keeps
//! as the step's output.
//!
//! | step | role actor | message → output |
//! |---|---|---|
//! | write_spec | `<task>/analyst` | `WriteSpec` → `SpecWritten` + `confirmed`, `guidance`, `summary` |
//! | scaffold | `<task>/scaffolder` | `Scaffold` → `Scaffolded` |
//! | develop | `<task>/developer` | `Develop` (+ the spec) → `Developed` |
//! | test | `<task>/tester` (+ merge to `main` when green) | `RunTests` (+ the spec) → `TestReport` + `merged` |
//!
//! The spec the develop and test steps get is the latest `write_spec` output's. A request the
//! offline (`template`) agent cannot build ends the task at `write_spec` with an honest answer:
//! what it builds offline, and the setting that turns on an agent that builds the rest.
//! | analyze_env | `<task>/env-analyzer` | `AnalyzeEnv` → `EnvAnalysis` + `commit` |
//! | resolve_secrets | `<task>/secret-resolver` | `ResolveSecrets` → `SecretResolution` |
//! | deploy | `deployers/<target>` | `Deploy` → `Deployed` |
//! | health_check | `deployers/<target>` | `CheckHealth` → `Health` (or the rollback's failure) |

use crate::agent::Agent;
use crate::analyst;
use crate::roles::deployer::Deployers;
use crate::roles::policy::{RolePolicies, RolePolicy};
use crate::roles::role::{Role, RoleWork, answer_of};
use crate::roles::{Crew, field, task_branch};
use crate::store::TaskRecord;
use crate::workflow::{Staffing, StepCall, StepError, StepRunner};
use artel_messages::deployer::{CheckHealth, Deploy};
use artel_messages::developer::Develop;
use artel_messages::env_analyzer::{AnalyzeEnv, EnvVar};
use artel_messages::event::{EventBody, NewEvent};
use artel_messages::scaffolder::Scaffold;
use artel_messages::secret_resolver::ResolveSecrets;
use artel_messages::spec::{Spec, WriteSpec};
use artel_messages::tester::{RunTests, TestReport};
use artel_messages::tree_labels;
use artel_messages::{Classify, DeploymentId, DeploymentStatus, Failure, StepKind, TaskKind};
use artel_supervisors::{Addr, ChildSpec, Restart};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::time::Duration;
use tracing::Instrument;

/// The mailbox of a task's role: one message at a time comes from its workflow.
const ROLE_MAILBOX: usize = 4;

/// Staffs every engineering and deploy task with its role actors.
#[derive(Clone)]
pub struct Pipeline {
    crew: Crew,
    policies: RolePolicies,
    deployers: Deployers,
}

impl Pipeline {
    /// A pipeline whose roles work with `crew` under `policies`, deploying through
    /// `deployers`.
    pub fn new(crew: Crew, policies: RolePolicies, deployers: Deployers) -> Self {
        Self {
            crew,
            policies,
            deployers,
        }
    }

    /// The crew it works with.
    pub fn crew(&self) -> &Crew {
        &self.crew
    }

    /// One role actor of `task`: named after its role, labelled with what it serves.
    fn role<M: RoleWork>(
        &self,
        task: &TaskRecord,
        policy: RolePolicy,
    ) -> (Addr<Role<M>>, ChildSpec) {
        let crew = self.crew.clone();
        let (addr, spec) =
            ChildSpec::actor_with_capacity(M::ROLE, ROLE_MAILBOX, move || Role::new(crew.clone()));
        let spec = spec
            .role(M::ROLE)
            .restart(Restart::Permanent)
            .backoff(policy.backoff)
            .deadline(Some(policy.deadline))
            .label(tree_labels::TASK, task.id.to_string())
            .label(tree_labels::PROJECT, task.project.to_string());
        (addr, spec)
    }
}

/// The role actors of one task.
enum Hands {
    Engineering {
        analyst: Addr<Role<WriteSpec>>,
        scaffolder: Addr<Role<Scaffold>>,
        developer: Addr<Role<Develop>>,
        tester: Addr<Role<RunTests>>,
    },
    Deploy {
        env_analyzer: Addr<Role<AnalyzeEnv>>,
        secret_resolver: Addr<Role<ResolveSecrets>>,
    },
}

impl Staffing for Pipeline {
    type Runner = TaskCrew;

    fn staff(&self, task: &TaskRecord) -> (TaskCrew, Vec<ChildSpec>) {
        let p = &self.policies;
        let (hands, children) = match task.kind {
            TaskKind::Engineering => {
                let (analyst, a) = self.role::<WriteSpec>(task, p.analyst);
                let (scaffolder, b) = self.role::<Scaffold>(task, p.scaffolder);
                let (developer, c) = self.role::<Develop>(task, p.developer);
                let (tester, d) = self.role::<RunTests>(task, p.tester);
                let hands = Hands::Engineering {
                    analyst,
                    scaffolder,
                    developer,
                    tester,
                };
                (hands, vec![a, b, c, d])
            }
            TaskKind::Deploy => {
                let (env_analyzer, a) = self.role::<AnalyzeEnv>(task, p.env_analyzer);
                let (secret_resolver, b) = self.role::<ResolveSecrets>(task, p.secret_resolver);
                let hands = Hands::Deploy {
                    env_analyzer,
                    secret_resolver,
                };
                (hands, vec![a, b])
            }
        };
        let runner = TaskCrew {
            crew: self.crew.clone(),
            policies: self.policies,
            deployers: self.deployers.clone(),
            hands,
        };
        (runner, children)
    }
}

/// Runs the steps of one task by messages to its role actors (and to the deployers).
pub struct TaskCrew {
    crew: Crew,
    policies: RolePolicies,
    deployers: Deployers,
    hands: Hands,
}

impl StepRunner for TaskCrew {
    async fn run(&self, call: StepCall) -> Result<Value, StepError> {
        let span = tracing::info_span!(
            "step",
            task = %call.task,
            project = %call.project,
            step = %call.step,
            attempt = call.attempt
        );
        async move {
            match call.step {
                StepKind::WriteSpec => self.write_spec(call).await,
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

fn output(value: impl Serialize) -> Result<Value, StepError> {
    serde_json::to_value(value)
        .map_err(|e| StepError::Workflow(Failure::fatal(format!("cannot journal output: {e}"))))
}

impl TaskCrew {
    /// Sends `msg` to a role of this task and awaits its reply under the role's deadline
    /// (plus one backoff: the role may be waiting out a restart).
    async fn ask<M: RoleWork>(
        &self,
        role: &Addr<Role<M>>,
        policy: RolePolicy,
        msg: M,
    ) -> Result<M::Output, StepError> {
        let wait = policy.deadline + policy.backoff.max + Duration::from_secs(5);
        let reply = tokio::time::timeout(wait, role.call(msg)).await;
        // Every way a role can fail is the role's: its child spec restarts it, and the
        // workflow's next attempt waits for that.
        answer_of(M::ROLE, wait, reply)
            .and_then(|answer| answer)
            .map_err(StepError::Role)
    }

    fn wrong_kind(&self, step: StepKind) -> StepError {
        StepError::Workflow(Failure::fatal(format!(
            "step {step} does not belong to this task's kind"
        )))
    }
}

/// What the `write_spec` step journals.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SpecStep {
    /// The spec, as written or edited.
    pub spec: Spec,
    /// False while it waits for the user's yes or correction (see [`plan`](crate::workflow::plan)).
    pub confirmed: bool,
    /// The task's guidance this run applied (or found already applied), so the plan can tell
    /// a new correction from one already made.
    pub guidance: Option<String>,
    /// The spec as the user reads it.
    pub summary: String,
    /// What the correction asked that the Analyst could not apply.
    pub not_applied: Vec<String>,
}

/// The spec the steps after `write_spec` work to, from their input.
fn spec_of(input: &Value) -> Option<Spec> {
    input
        .get(StepKind::WriteSpec.as_str())
        .and_then(|out| out.get("spec"))
        .and_then(|spec| serde_json::from_value(spec.clone()).ok())
}

/// What artel says to a request the offline agent cannot build.
fn decline(spec: &Spec) -> Failure {
    let what = match &spec.out_of_range {
        Some(what) => format!("{what} is not something the offline agent builds"),
        None => "the offline agent found no records to keep in this request".to_owned(),
    };
    Failure::fatal(format!(
        "{what}. Offline, artel builds resource APIs: records with typed fields, relations \
         and actions, e.g. \"a library catalog where I can add books with author and ISBN, \
         and mark a book as borrowed\". An LLM agent builds the rest: set \
         ARTEL_AGENT__KIND=llm with ARTEL_LLM__BASE_URL, ARTEL_LLM__MODEL and \
         ARTEL_LLM__API_KEY (or ARTEL_AGENT__KIND=cli with ARTEL_AGENT__COMMAND). Nothing was \
         built or deployed."
    ))
}

impl TaskCrew {
    async fn write_spec(&self, call: StepCall) -> Result<Value, StepError> {
        let Hands::Engineering { analyst, .. } = &self.hands else {
            return Err(self.wrong_kind(call.step));
        };
        let previous: Option<SpecStep> = call
            .input
            .get(StepKind::WriteSpec.as_str())
            .and_then(|out| serde_json::from_value(out.clone()).ok());
        let guidance: Option<String> = field(&call.input, &["guidance"])?;
        let applied = previous.as_ref().and_then(|p| p.guidance.clone());
        let correction = guidance.clone().filter(|g| Some(g) != applied.as_ref());
        let msg = WriteSpec {
            project: call.project,
            task: call.task,
            request: field(&call.input, &["description"])?,
            current: previous.map(|p| p.spec),
            correction,
        };
        let written = self.ask(analyst, self.policies.analyst, msg).await?;
        let spec = written.spec;
        if matches!(self.crew.agent, Agent::Template) && !spec.is_buildable_offline() {
            return Err(StepError::Workflow(decline(&spec)));
        }
        // Asked once, before anything is built; later guidance edits the spec and goes on.
        let built = call.input.get(StepKind::Scaffold.as_str()).is_some();
        let confirmed = !self.crew.confirm_spec || built;
        let summary = analyst::summary(&spec);
        self.crew
            .store
            .append_event(
                NewEvent::new(EventBody::SpecWritten {
                    version: spec.version,
                    summary: summary.clone(),
                    confirmed,
                })
                .project(call.project)
                .task(call.task),
            )
            .await
            .map_err(|e| e.to_failure())?;
        output(SpecStep {
            spec,
            confirmed,
            guidance,
            summary,
            not_applied: written.not_applied,
        })
    }

    async fn scaffold(&self, call: StepCall) -> Result<Value, StepError> {
        let Hands::Engineering { scaffolder, .. } = &self.hands else {
            return Err(self.wrong_kind(call.step));
        };
        let repo = self.crew.repo_of(call.project).await?;
        let msg = Scaffold {
            project: call.project,
            task: call.task,
            name: repo.project_name,
            description: field(&call.input, &["description"])?,
            template: None,
        };
        output(self.ask(scaffolder, self.policies.scaffolder, msg).await?)
    }

    async fn develop(&self, call: StepCall) -> Result<Value, StepError> {
        let rework: Option<TestReport> = call
            .input
            .get("test")
            .and_then(|t| serde_json::from_value(t.clone()).ok())
            .filter(|r: &TestReport| !r.success);
        let Hands::Engineering { developer, .. } = &self.hands else {
            return Err(self.wrong_kind(call.step));
        };
        let msg = Develop {
            project: call.project,
            task: call.task,
            repo_url: field(&call.input, &["scaffold", "repo_url"])?,
            branch: task_branch(call.task),
            description: field(&call.input, &["description"])?,
            attempt: field(&call.input, &["iteration"])?,
            rework,
            guidance: field(&call.input, &["guidance"])?,
            spec: spec_of(&call.input),
        };
        output(self.ask(developer, self.policies.developer, msg).await?)
    }

    async fn test(&self, call: StepCall) -> Result<Value, StepError> {
        let Hands::Engineering { tester, .. } = &self.hands else {
            return Err(self.wrong_kind(call.step));
        };
        let msg = RunTests {
            project: call.project,
            task: call.task,
            repo_url: field(&call.input, &["scaffold", "repo_url"])?,
            commit: field(&call.input, &["develop", "commit"])?,
            command: None,
            spec: spec_of(&call.input),
        };
        let report = self.ask(tester, self.policies.tester, msg).await?;
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

    async fn analyze_env(&self, call: StepCall) -> Result<Value, StepError> {
        let Hands::Deploy { env_analyzer, .. } = &self.hands else {
            return Err(self.wrong_kind(call.step));
        };
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
        let msg = AnalyzeEnv {
            project: call.project,
            task: call.task,
            repo_url: self
                .crew
                .git
                .clone_url(&repo.name)
                .map_err(|e| e.to_failure())?,
            commit: commit.clone(),
        };
        let analysis = self
            .ask(env_analyzer, self.policies.env_analyzer, msg)
            .await?;
        let mut out = output(analysis)?;
        out["commit"] = json!(commit);
        Ok(out)
    }

    async fn resolve_secrets(&self, call: StepCall) -> Result<Value, StepError> {
        let Hands::Deploy {
            secret_resolver, ..
        } = &self.hands
        else {
            return Err(self.wrong_kind(call.step));
        };
        let variables: Vec<EnvVar> = field(&call.input, &["analyze_env", "variables"])?;
        let msg = ResolveSecrets {
            project: call.project,
            task: call.task,
            variables,
        };
        output(
            self.ask(secret_resolver, self.policies.secret_resolver, msg)
                .await?,
        )
    }

    async fn deploy(&self, call: StepCall) -> Result<Value, StepError> {
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
        let msg = Deploy {
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
        };
        output(self.deployers.deploy(msg, self.policies.deployer).await?)
    }

    async fn health_check(&self, call: StepCall) -> Result<Value, StepError> {
        let deployment: DeploymentId = field(&call.input, &["deploy", "deployment"])?;
        let url: String = field(&call.input, &["deploy", "url"])?;
        let msg = CheckHealth {
            deployment,
            url: url.clone(),
        };
        let health = self
            .deployers
            .check_health(msg, self.policies.deployer)
            .await?;
        let mut out = output(health)?;
        out["url"] = json!(url);
        out["deployment"] = json!(deployment);
        Ok(out)
    }
}
