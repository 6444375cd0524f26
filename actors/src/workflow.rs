//! Durable workflows: a task's steps, journaled before and after each runs, resumed after any
//! crash at the first unfinished step.
//!
//! One [`Workflow`] actor drives one task. It keeps nothing in memory that the journal does
//! not have: on every (re)start it reads the task and its step journal from Postgres and
//! continues from there, so a restart by its supervisor, a restart of artel, or a `kill -9`
//! all end the same way — the task completes, and no finished step is redone.
//!
//! - Before a step runs, its attempt is journaled `running` under an idempotency key
//!   (`<task>/<step>/<attempt>`); after, `succeeded` with its output or `failed` with its
//!   classified error. A step found `running` at start was interrupted: that attempt is closed
//!   as failed ("interrupted"), a `step_resumed` event says so, and a new attempt runs.
//! - A step's *effect* is keyed by [`StepCall::effect_key`] (`<task>/<step>`), the same for
//!   every attempt, so a step that ran its effect and then died does not do it twice.
//! - Retries are restart policies: a retryable step failure fails the actor, and its child
//!   spec (transient, with backoff) restarts it; the restarted actor resumes from the journal.
//!   A step that has failed `max_step_attempts` times, or fails fatally, ends the task as
//!   `failed` with that error — visible in the task and its events, never a silent loop.

use crate::store::{NewTask, StepRecord, Store, StoreError, TaskRecord};
use artel_messages::event::{EventBody, NewEvent};
use artel_messages::tree_labels;
use artel_messages::{
    Classify, Failure, ProjectId, Request, StepKind, StepStatus, TaskId, TaskKind, TaskStatus,
};
use artel_supervisors::{
    Actor, ChildSpec, ChildStart, Context, Handler, Intensity, NodeId, Restart, Strategy,
    Supervisor, SupervisorError, SupervisorRef,
};
use serde_json::Value;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

pub mod plan;

pub use plan::{Next, PlanLimits};

/// The steps of each kind of task, in the order a task without rework runs them.
pub fn plan(kind: TaskKind) -> &'static [StepKind] {
    match kind {
        TaskKind::Engineering => &[
            StepKind::WriteSpec,
            StepKind::Scaffold,
            StepKind::Develop,
            StepKind::Test,
        ],
        TaskKind::Deploy => &[
            StepKind::AnalyzeEnv,
            StepKind::ResolveSecrets,
            StepKind::Deploy,
            StepKind::HealthCheck,
        ],
    }
}

/// One step to run.
#[derive(Debug, Clone, PartialEq)]
pub struct StepCall {
    /// The task.
    pub task: TaskId,
    /// Its project.
    pub project: ProjectId,
    /// Which step.
    pub step: StepKind,
    /// Which attempt, from 1.
    pub attempt: u32,
    /// The key the step's effect must be idempotent on: the same for every attempt of one
    /// occurrence of the step (`<task>/<step>`, then `<task>/<step>#2`, … in the rework loop).
    pub effect_key: String,
    /// The step's context: description, guidance, iteration and the latest output of every
    /// step that succeeded so far (see [`plan`](mod@plan)).
    pub input: Value,
}

/// Why a step gave no output, and so whose child spec waits before the next attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum StepError {
    /// The role actor that does the step failed (its failure, a panic, a deadline): its own
    /// child spec restarts it, and the next attempt waits in its mailbox meanwhile. The
    /// workflow only journals the attempt and goes on.
    Role(Failure),
    /// The workflow's side of the step failed (its input, the store, a shared gate such as a
    /// deployer): the workflow fails, and its child spec restarts it from the journal.
    Workflow(Failure),
}

impl StepError {
    /// The failure, whoever had it.
    pub fn failure(&self) -> &Failure {
        match self {
            Self::Role(f) | Self::Workflow(f) => f,
        }
    }

    fn into_failure(self) -> Failure {
        match self {
            Self::Role(f) | Self::Workflow(f) => f,
        }
    }
}

impl From<Failure> for StepError {
    fn from(failure: Failure) -> Self {
        Self::Workflow(failure)
    }
}

/// What runs the steps of one task. Implementations make each effect idempotent on
/// [`StepCall::effect_key`], because a step may run again after a crash.
pub trait StepRunner: Send + Sync + 'static {
    /// Runs one step and returns its output, journaled as the next step's input.
    fn run(&self, call: StepCall) -> impl Future<Output = Result<Value, StepError>> + Send;
}

/// Staffs each task: the role actors that do its steps, put beside its workflow in the
/// task's subtree, and the runner that reaches them.
pub trait Staffing: Send + Sync + 'static {
    /// What runs one task's steps.
    type Runner: StepRunner;
    /// The runner and the role children of `task`.
    fn staff(&self, task: &TaskRecord) -> (Self::Runner, Vec<ChildSpec>);
}

/// A runner that does its steps in place is its own staff, with no role actors (tests and
/// benches that stand in for the crew).
impl<R: StepRunner + Clone> Staffing for R {
    type Runner = R;
    fn staff(&self, _task: &TaskRecord) -> (R, Vec<ChildSpec>) {
        (self.clone(), Vec::new())
    }
}

/// How workflows behave.
#[derive(Debug, Clone, Copy)]
pub struct WorkflowPolicy {
    /// Attempts of one step before its task fails.
    pub max_step_attempts: u32,
    /// How long one step may run before the workflow counts as stuck.
    pub step_deadline: Duration,
    /// How far the rework loop may go.
    pub limits: PlanLimits,
}

impl Default for WorkflowPolicy {
    fn default() -> Self {
        Self {
            max_step_attempts: 3,
            step_deadline: Duration::from_secs(30 * 60),
            limits: PlanLimits::default(),
        }
    }
}

/// The actor that drives one task through its steps.
pub struct Workflow<S: Staffing> {
    task: TaskId,
    workflows: Workflows<S>,
    runner: Arc<S::Runner>,
}

/// "Run the next step": a workflow sends it to itself after each step, so a stop request
/// from its supervisor is seen between steps.
#[derive(Debug)]
pub struct Advance;
impl Request for Advance {
    type Reply = ();
}

enum Progress {
    /// A step finished; more may follow.
    Stepped,
    /// Nothing more to do in this run (finished, failed, or waiting for a human).
    Idle,
}

impl<S: Staffing> Actor for Workflow<S> {
    async fn started(&mut self, ctx: &mut Context<Self>) -> Result<(), Failure> {
        // The mailbox is empty at the start of a run, so this cannot be refused for room.
        let _ = ctx.addr().try_send(Advance);
        Ok(())
    }
}

impl<S: Staffing> Handler<Advance> for Workflow<S> {
    async fn handle(&mut self, _msg: Advance, ctx: &mut Context<Self>) {
        match self.advance().await {
            Ok(Progress::Stepped) => {
                let _ = ctx.addr().try_send(Advance);
            }
            Ok(Progress::Idle) => ctx.stop(),
            Err(failure) => ctx.fail(failure),
        }
    }
}

impl<S: Staffing> Workflow<S> {
    fn store(&self) -> &Store {
        &self.workflows.store
    }

    /// Runs the next step. `Err` is a retryable failure for the supervisor.
    async fn advance(&mut self) -> Result<Progress, Failure> {
        let task = self
            .store()
            .task(self.task)
            .await
            .map_err(|e| e.to_failure())?
            .ok_or_else(|| Failure::fatal(format!("task {} does not exist", self.task)))?;
        let task = match task.status {
            TaskStatus::Queued => {
                self.set_status(&task, TaskStatus::Running, None, None)
                    .await?
            }
            TaskStatus::Running => task,
            // Finished, cancelled, or waiting for a human: nothing to run.
            _ => return Ok(Progress::Idle),
        };
        let journal = self.store().steps(self.task).await.map_err(fail)?;
        match plan::next(&task, &journal, self.workflows.policy.limits) {
            Next::Run {
                step,
                input,
                occurrence,
            } => {
                self.run_step(&task, step, occurrence, &journal, input)
                    .await
            }
            Next::NeedsHuman {
                reason,
                waiting_for,
            } => {
                let task = self
                    .set_status(&task, TaskStatus::NeedsHuman, None, Some(reason))
                    .await?;
                // The user may have given the secrets between the step asking for them and
                // this status: the session then looked for a waiting deploy before there was
                // one. Now that the status says it waits, look again (one of the two looks
                // always sees the other's write), and go on if nothing is missing any more.
                if !waiting_for.is_empty() && self.secrets_stored(&task, &waiting_for).await? {
                    // This workflow goes on itself: only the transition is recorded.
                    if let Err(failure) = self.workflows.mark_resumed(task.id, None).await {
                        // The session may have resumed it first: then it runs, and so do we.
                        let now = self.store().task(task.id).await.map_err(fail)?;
                        if now.map(|t| t.status) != Some(TaskStatus::Running) {
                            return Err(failure);
                        }
                    }
                    return Ok(Progress::Stepped);
                }
                Ok(Progress::Idle)
            }
            Next::Complete => {
                if let Some(follow_up) = task.follow_up {
                    self.start_follow_up(&task, follow_up).await?;
                }
                self.set_status(&task, TaskStatus::Completed, None, None)
                    .await?;
                Ok(Progress::Idle)
            }
        }
    }

    /// True when every secret in `names` is stored for the task's project.
    async fn secrets_stored(&self, task: &TaskRecord, names: &[String]) -> Result<bool, Failure> {
        let stored = self
            .store()
            .secret_names(task.project)
            .await
            .map_err(fail)?;
        Ok(names.iter().all(|name| stored.contains(name)))
    }

    /// Creates (once) and starts the deploy task an engineering task was created with.
    async fn start_follow_up(&self, task: &TaskRecord, follow_up: TaskId) -> Result<(), Failure> {
        let project = self
            .store()
            .project_name(task.project)
            .await
            .map_err(fail)?;
        self.workflows
            .submit(NewTask {
                id: follow_up,
                project: task.project,
                kind: TaskKind::Deploy,
                description: format!("deploy {project}"),
                session: task.session,
            })
            .await
            .map(drop)
    }

    async fn run_step(
        &mut self,
        task: &TaskRecord,
        step: StepKind,
        occurrence: u32,
        journal: &[StepRecord],
        input: Value,
    ) -> Result<Progress, Failure> {
        // This occurrence's attempts: rows of the step after the last success of any step
        // and after the round's mark.
        let since = journal
            .iter()
            .filter(|s| s.status == StepStatus::Succeeded)
            .map(|s| s.id)
            .max()
            .unwrap_or(0)
            .max(task.journal_mark);
        let attempts: Vec<&StepRecord> = journal
            .iter()
            .filter(|s| s.step == step && s.id > since)
            .collect();
        let mut failed = attempts
            .iter()
            .filter(|s| s.status == StepStatus::Failed)
            .count() as u32;
        let mut last_failure = attempts.iter().rev().find_map(|s| s.failure.clone());
        for interrupted in attempts.iter().filter(|s| s.status == StepStatus::Running) {
            let failure = Failure::retryable(format!(
                "interrupted: the workflow stopped while {step} attempt {} ran",
                interrupted.attempt
            ));
            self.store()
                .fail_step(&interrupted.idempotency_key, &failure)
                .await
                .map_err(fail)?;
            self.emit(
                task,
                EventBody::StepResumed {
                    step,
                    attempt: interrupted.attempt,
                },
            )
            .await?;
            failed += 1;
            last_failure = Some(failure);
        }
        let max_attempts = self.workflows.policy.max_step_attempts;
        if failed >= max_attempts {
            let cause = last_failure
                .map(|f| f.reason)
                .unwrap_or_else(|| "unknown error".to_owned());
            let failure =
                Failure::fatal(format!("{step} failed {failed} times; last error: {cause}"));
            self.set_status(task, TaskStatus::Failed, Some(&failure), None)
                .await?;
            return Ok(Progress::Idle);
        }

        let attempt = journal.iter().filter(|s| s.step == step).count() + 1;
        let key = format!("{}/{step}/{attempt}", task.id);
        let record = self
            .store()
            .begin_step(task.id, step, &key, &input)
            .await
            .map_err(fail)?;
        self.emit(
            task,
            EventBody::StepStarted {
                step,
                attempt: record.attempt,
            },
        )
        .await?;
        let effect_key = match occurrence {
            1 => format!("{}/{step}", task.id),
            n => format!("{}/{step}#{n}", task.id),
        };
        let call = StepCall {
            task: task.id,
            project: task.project,
            step,
            attempt: record.attempt,
            effect_key,
            input,
        };
        match self.runner.run(call).await {
            Ok(output) => {
                self.store()
                    .finish_step(&key, &output)
                    .await
                    .map_err(fail)?;
                self.emit(
                    task,
                    EventBody::StepSucceeded {
                        step,
                        attempt: record.attempt,
                    },
                )
                .await?;
                Ok(Progress::Stepped)
            }
            Err(error) => {
                let by_role = matches!(error, StepError::Role(_));
                let failure = error.into_failure();
                self.store().fail_step(&key, &failure).await.map_err(fail)?;
                self.emit(
                    task,
                    EventBody::StepFailed {
                        step,
                        attempt: record.attempt,
                        failure: failure.clone(),
                    },
                )
                .await?;
                if failure.is_retryable() && failed + 1 < max_attempts {
                    if by_role {
                        // The role is restarting under its own spec; the next attempt waits
                        // for it in its mailbox.
                        return Ok(Progress::Stepped);
                    }
                    // The workflow's child spec's backoff decides when the next attempt runs.
                    return Err(failure);
                }
                let failure = Failure {
                    class: failure.class,
                    retry_after_ms: None,
                    reason: format!(
                        "{step} failed (attempt {} of {max_attempts}): {}",
                        failed + 1,
                        failure.reason
                    ),
                };
                self.set_status(task, TaskStatus::Failed, Some(&failure), None)
                    .await?;
                Ok(Progress::Idle)
            }
        }
    }

    async fn set_status(
        &self,
        task: &TaskRecord,
        to: TaskStatus,
        failure: Option<&Failure>,
        reason: Option<String>,
    ) -> Result<TaskRecord, Failure> {
        let updated = self
            .store()
            .set_task_status(task.id, to, failure)
            .await
            .map_err(fail)?;
        if task.status != to {
            self.emit(
                &updated,
                EventBody::TaskStatusChanged {
                    from: task.status,
                    to,
                    reason: reason.or_else(|| failure.map(|f| f.reason.clone())),
                },
            )
            .await?;
        }
        Ok(updated)
    }

    async fn emit(&self, task: &TaskRecord, body: EventBody) -> Result<(), Failure> {
        self.store()
            .append_event(NewEvent::new(body).project(task.project).task(task.id))
            .await
            .map(drop)
            .map_err(fail)
    }
}

fn fail(err: StoreError) -> Failure {
    err.to_failure()
}

/// Starts, and after any restart resumes, the workflows of unfinished tasks.
pub struct Workflows<S: Staffing> {
    store: Store,
    staffing: Arc<S>,
    policy: WorkflowPolicy,
    supervisor: SupervisorRef,
}

impl<S: Staffing> Clone for Workflows<S> {
    fn clone(&self) -> Self {
        Self {
            store: self.store.clone(),
            staffing: self.staffing.clone(),
            policy: self.policy,
            supervisor: self.supervisor.clone(),
        }
    }
}

/// Workflow restarts allowed per minute across all tasks before the workflows subtree
/// restarts as a whole (each task's own loop is bounded by `max_step_attempts`).
const WORKFLOW_INTENSITY: u32 = 1_000;

impl<S: Staffing> Workflows<S> {
    /// The `workflows` subtree: a `rest_for_one` group of the dynamic `tasks` supervisor and a
    /// `resumer` that, every time it starts (at boot, or after `tasks` restarted), starts a
    /// workflow for every unfinished task in the journal.
    pub fn subtree(store: Store, staffing: S, policy: WorkflowPolicy) -> (Self, Supervisor) {
        let tasks = Supervisor::new("tasks").intensity(Intensity {
            max_restarts: WORKFLOW_INTENSITY,
            within: Duration::from_secs(60),
        });
        let workflows = Self {
            store,
            staffing: Arc::new(staffing),
            policy,
            supervisor: tasks.handle(),
        };
        let resumer = workflows.clone();
        let (_addr, resumer_spec) = ChildSpec::actor("resumer", move || Resumer {
            workflows: resumer.clone(),
        });
        let tree = Supervisor::new("workflows")
            .strategy(Strategy::RestForOne)
            .child(tasks.into_child())
            .child(resumer_spec.role("resumer"));
        (workflows, tree)
    }

    /// Creates a task (idempotent on its id) and starts its workflow.
    pub async fn submit(&self, new: NewTask) -> Result<TaskRecord, Failure> {
        let record = self.store.create_task(&new).await.map_err(fail)?;
        self.announce_and_start(record).await
    }

    /// Creates an engineering task that creates and starts the deploy task `follow_up` when
    /// it completes (idempotent on both ids), and starts its workflow.
    pub async fn submit_with_follow_up(
        &self,
        new: NewTask,
        follow_up: TaskId,
    ) -> Result<TaskRecord, Failure> {
        let record = self
            .store
            .create_task_with_follow_up(&new, follow_up)
            .await
            .map_err(fail)?;
        self.announce_and_start(record).await
    }

    /// Creates a deploy task pinned to `commit` (a rollback to an earlier good deployment)
    /// and starts its workflow. Idempotent on the task's id.
    pub async fn submit_deploy_at(
        &self,
        new: NewTask,
        commit: &str,
    ) -> Result<TaskRecord, Failure> {
        if new.kind != TaskKind::Deploy {
            return Err(Failure::fatal(
                "only a deploy task can be pinned to a commit",
            ));
        }
        let record = self.store.create_task(&new).await.map_err(fail)?;
        self.store
            .pin_task_commit(record.id, commit)
            .await
            .map_err(fail)?;
        self.announce_and_start(record).await
    }

    async fn announce_and_start(&self, record: TaskRecord) -> Result<TaskRecord, Failure> {
        if record.status == TaskStatus::Queued && record.attempts == 0 {
            self.store
                .append_event(
                    NewEvent::new(EventBody::TaskCreated {
                        task_kind: record.kind,
                        description: record.description.clone(),
                    })
                    .project(record.project)
                    .task(record.id),
                )
                .await
                .map_err(fail)?;
        }
        self.start(&record).await.map_err(|e| e.to_failure())?;
        Ok(record)
    }

    /// Starts the subtree of one task: its workflow and the role actors it calls. If the
    /// task's subtree is still up, this one follows it (starts when that one ends) and
    /// answers `None`: a workflow re-reads its task, so a follower of one that finished the
    /// task only looks and stops.
    ///
    /// ```text
    /// <kind>/<task>    one_for_one, transient; ends when its workflow ends
    /// ├── workflow     transient, significant: drives the steps from the journal
    /// └── <role>…      permanent: the task's role actors (developer, tester, …)
    /// ```
    pub async fn start(&self, task: &TaskRecord) -> Result<Option<NodeId>, SupervisorError> {
        let (runner, roles) = self.staffing.staff(task);
        let (id, workflows, runner) = (task.id, self.clone(), Arc::new(runner));
        let (_addr, workflow) = ChildSpec::actor("workflow", move || Workflow {
            task: id,
            workflows: workflows.clone(),
            runner: runner.clone(),
        });
        let (task_label, project_label) = (task.id.to_string(), task.project.to_string());
        let workflow = workflow
            .role(format!("{}_workflow", task.kind))
            .restart(Restart::Transient)
            .significant()
            .deadline(Some(self.policy.step_deadline))
            .label(tree_labels::TASK, task_label.clone())
            .label(tree_labels::PROJECT, project_label.clone());
        let mut subtree = Supervisor::new(format!("{}/{}", task.kind, task.id))
            .intensity(crate::roles::policy::TASK_INTENSITY)
            .child(workflow);
        for role in roles {
            subtree = subtree.child(role);
        }
        let spec = subtree
            .into_child()
            .role(format!("{}_task", task.kind))
            .restart(Restart::Transient)
            .label(tree_labels::TASK, task_label)
            .label(tree_labels::PROJECT, project_label);
        // A workflow re-reads its task when it starts, so one asked for while the task's
        // workflow is still up (it may be on its way out, having just parked the task in
        // `needs_human` as the user answers) follows it instead of being refused and lost.
        match self.supervisor.start_child_or_follow(spec).await? {
            ChildStart::Now(node) => Ok(Some(node)),
            ChildStart::AfterNamesake => Ok(None),
        }
    }

    /// Cancels a task: it ends `cancelled` (so nothing resumes it) and its workflow, if one
    /// runs, is stopped — dropping a running step stops its worker. Cancelling a finished
    /// task is refused with the reason.
    pub async fn cancel(&self, task: TaskId, reason: &str) -> Result<TaskRecord, Failure> {
        let before = self
            .store
            .task(task)
            .await
            .map_err(fail)?
            .ok_or_else(|| Failure::fatal(format!("task {task} does not exist")))?;
        let after = self
            .store
            .set_task_status(task, TaskStatus::Cancelled, None)
            .await
            .map_err(fail)?;
        if before.status != after.status {
            self.store
                .append_event(
                    NewEvent::new(EventBody::TaskStatusChanged {
                        from: before.status,
                        to: TaskStatus::Cancelled,
                        reason: Some(reason.to_owned()),
                    })
                    .project(after.project)
                    .task(after.id),
                )
                .await
                .map_err(fail)?;
        }
        let name = format!("{}/{}", after.kind, after.id);
        if let Ok(Some(node)) = self.supervisor.child_named(&name).await {
            // Already gone is fine: the status says cancelled either way.
            let _ = self.supervisor.terminate_child(node).await;
        }
        Ok(after)
    }

    /// Goes on with a task that waits for a human or failed (see [`Store::resume_task`]),
    /// with the user's guidance, and starts its workflow.
    pub async fn resume(
        &self,
        task: TaskId,
        guidance: Option<&str>,
    ) -> Result<TaskRecord, Failure> {
        let after = self.mark_resumed(task, guidance).await?;
        self.start(&after).await.map_err(|e| e.to_failure())?;
        Ok(after)
    }

    /// The store's half of [`resume`](Self::resume): the transition and its event, for a
    /// workflow that resumes its own task and needs no second one started.
    async fn mark_resumed(
        &self,
        task: TaskId,
        guidance: Option<&str>,
    ) -> Result<TaskRecord, Failure> {
        let before = self
            .store
            .task(task)
            .await
            .map_err(fail)?
            .ok_or_else(|| Failure::fatal(format!("task {task} does not exist")))?;
        let after = self.store.resume_task(task, guidance).await.map_err(fail)?;
        self.store
            .append_event(
                NewEvent::new(EventBody::TaskStatusChanged {
                    from: before.status,
                    to: after.status,
                    reason: Some(match guidance {
                        Some(g) => format!("resumed with guidance: {g}"),
                        None => "resumed".to_owned(),
                    }),
                })
                .project(after.project)
                .task(after.id),
            )
            .await
            .map_err(fail)?;
        Ok(after)
    }

    /// The store workflows journal to.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Starts a workflow for every unfinished task; returns how many were started.
    pub async fn resume_unfinished(&self) -> Result<usize, Failure> {
        let tasks = self.store.unfinished_tasks().await.map_err(fail)?;
        let mut started = 0;
        for task in &tasks {
            if self
                .start(task)
                .await
                .map_err(|e| e.to_failure())?
                .is_some()
            {
                started += 1;
            }
        }
        if started > 0 {
            tracing::info!(started, "resumed unfinished tasks from the journal");
        }
        Ok(started)
    }
}

/// Resumes unfinished tasks whenever it starts.
struct Resumer<S: Staffing> {
    workflows: Workflows<S>,
}

impl<S: Staffing> Actor for Resumer<S> {
    async fn started(&mut self, _ctx: &mut Context<Self>) -> Result<(), Failure> {
        self.workflows.resume_unfinished().await.map(drop)
    }
}
