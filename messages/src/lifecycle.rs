//! The lifecycles: which statuses a worker, task, step and deployment pass through, and in
//! which order.
//!
//! The systems artel replaces had worker states that disagreed between documents (the seeds'
//! audit item 7). Here each lifecycle is one enum with its transition rule next to it, and every
//! component — worker-manager, workflows, store, dashboard — uses that enum. A status change
//! that [`can_transition_to`](WorkerStatus::can_transition_to) refuses is a bug in the caller.

use crate::named::named_enum;

named_enum! {
    /// The one worker lifecycle: `started → ready → busy → completed | failed → stopped`.
    ///
    /// A worker runs one job and is then stopped; it never goes back to `ready`: a new job
    /// gets a new, clean worker (a warm pool hands out containers that have run nothing). Any status but `stopped` may become `failed` (the
    /// sandbox died, even after its job completed, e.g. while being torn down), and any status
    /// may become `stopped` (the worker-manager releases it, also mid-job on cancel).
    /// `failed` is not terminal: a failed worker still holds resources until it is stopped.
    pub enum WorkerStatus("worker status") {
        /// The sandbox exists and is starting up.
        Started = "started",
        /// Started and waiting for its job.
        Ready = "ready",
        /// Running its job.
        Busy = "busy",
        /// Its job finished (whatever the job's own outcome, e.g. failing tests).
        Completed = "completed",
        /// The sandbox itself failed: crashed, hit a limit or could not start.
        Failed = "failed",
        /// Released: processes killed, container removed. Terminal.
        Stopped = "stopped",
    }
}

impl WorkerStatus {
    /// Whether a worker in this status may next be in `next`. No status moves to itself.
    pub const fn can_transition_to(self, next: Self) -> bool {
        use WorkerStatus::*;
        matches!(
            (self, next),
            (Started, Ready)
                | (Ready, Busy)
                | (Busy, Completed)
                | (Started | Ready | Busy | Completed, Failed)
                | (Started | Ready | Busy | Completed | Failed, Stopped)
        )
    }

    /// True when nothing can follow: the worker is stopped.
    pub const fn is_terminal(self) -> bool {
        matches!(self, Self::Stopped)
    }
}

named_enum! {
    /// What a task does: build or change code, or put it into service.
    pub enum TaskKind("task kind") {
        /// Scaffolder → Developer ⇄ Tester: the code, committed.
        Engineering = "engineering",
        /// EnvAnalyzer → SecretResolver → Deployer → health check: a running service.
        Deploy = "deploy",
    }
}

named_enum! {
    /// A task's lifecycle: `queued → running → completed | failed | cancelled`, with a detour
    /// through `needs_human` when a workflow waits for the user (a secret, guidance).
    ///
    /// `failed` is not terminal: retry-with-guidance puts a failed task back to `queued`, and
    /// its workflow resumes at the first unfinished step (finished steps are kept).
    pub enum TaskStatus("task status") {
        /// Accepted, its workflow not yet running.
        Queued = "queued",
        /// Its workflow is working through the steps.
        Running = "running",
        /// Waiting for the user: a missing secret, a question, or guidance after being stuck.
        NeedsHuman = "needs_human",
        /// Done: the code is committed, or the service is live. Terminal.
        Completed = "completed",
        /// Gave up after a fatal failure; may be retried with guidance.
        Failed = "failed",
        /// Stopped at the user's request. Terminal.
        Cancelled = "cancelled",
    }
}

impl TaskStatus {
    /// Whether a task in this status may next be in `next`. No status moves to itself.
    pub const fn can_transition_to(self, next: Self) -> bool {
        use TaskStatus::*;
        matches!(
            (self, next),
            (Queued, Running)
                | (Running, NeedsHuman | Completed)
                | (NeedsHuman, Running)
                | (Queued | Running | NeedsHuman, Failed | Cancelled)
                | (Failed, Queued)
        )
    }

    /// True when nothing can follow: completed or cancelled.
    pub const fn is_terminal(self) -> bool {
        matches!(self, Self::Completed | Self::Cancelled)
    }

    /// True while the task has, or is waiting for, a workflow: queued, running, needs human.
    pub const fn is_active(self) -> bool {
        matches!(self, Self::Queued | Self::Running | Self::NeedsHuman)
    }
}

named_enum! {
    /// The steps a workflow journals, in the order each workflow runs them.
    pub enum StepKind("step kind") {
        /// Turn the request into a spec the user confirms (the Analyst).
        WriteSpec = "write_spec",
        /// Create the repository from a template.
        Scaffold = "scaffold",
        /// Have an agent write and commit code.
        Develop = "develop",
        /// Run the project's tests against a commit.
        Test = "test",
        /// Find the environment variables the service needs.
        AnalyzeEnv = "analyze_env",
        /// Make sure every needed secret exists, or ask the user.
        ResolveSecrets = "resolve_secrets",
        /// Start the service on its target.
        Deploy = "deploy",
        /// Check that the started service answers.
        HealthCheck = "health_check",
    }
}

impl StepKind {
    /// The kind of task whose workflow runs this step.
    pub const fn task_kind(self) -> TaskKind {
        match self {
            Self::WriteSpec | Self::Scaffold | Self::Develop | Self::Test => TaskKind::Engineering,
            Self::AnalyzeEnv | Self::ResolveSecrets | Self::Deploy | Self::HealthCheck => {
                TaskKind::Deploy
            }
        }
    }
}

named_enum! {
    /// One attempt at a step: `pending → running → succeeded | failed`.
    ///
    /// Both outcomes are terminal: a retry (the Developer ⇄ Tester rework loop, or
    /// retry-with-guidance) journals a new attempt, so the journal only grows. A step found
    /// `running` after a crash stays `running` and is run again (steps are idempotent); the
    /// `step_resumed` event records that.
    pub enum StepStatus("step status") {
        /// Journaled, not started.
        Pending = "pending",
        /// Started and not finished.
        Running = "running",
        /// Finished with its result journaled. Never redone.
        Succeeded = "succeeded",
        /// Finished with a failure.
        Failed = "failed",
    }
}

impl StepStatus {
    /// Whether a step in this status may next be in `next`. No status moves to itself.
    pub const fn can_transition_to(self, next: Self) -> bool {
        use StepStatus::*;
        matches!(
            (self, next),
            (Pending, Running) | (Running, Succeeded | Failed)
        )
    }

    /// True when the attempt is over: succeeded or failed.
    pub const fn is_terminal(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed)
    }
}

named_enum! {
    /// A deployment's lifecycle: `deploying → live | failed | rolled_back`,
    /// `live → superseded | failed`.
    ///
    /// A deployment is `live` only after its health check passes; the one it replaces then
    /// becomes `superseded`. If the new one fails and the previous one is restored, the new one
    /// ends `rolled_back` (the previous one never stopped being `live`); with nothing to restore
    /// it ends `failed`. A live one whose service died and did not come back when the health
    /// job restarted it ends `failed` too.
    pub enum DeploymentStatus("deployment status") {
        /// Being started and health-checked.
        Deploying = "deploying",
        /// Serving: the project's current deployment.
        Live = "live",
        /// Did not come up and nothing was restored, or died live and did not come back.
        /// Terminal.
        Failed = "failed",
        /// Did not come up and the previous deployment was restored. Terminal.
        RolledBack = "rolled_back",
        /// Was live, replaced by a newer live deployment. Terminal.
        Superseded = "superseded",
    }
}

named_enum! {
    /// Where a session's conversation happens.
    pub enum SessionChannel("session channel") {
        /// A Telegram chat.
        Telegram = "telegram",
        /// The dashboard's chat box.
        Dashboard = "dashboard",
        /// The command line (`artel new`).
        Cli = "cli",
    }
}

named_enum! {
    /// What a user may do through the control plane.
    pub enum UserRole("user role") {
        /// Their own projects, tasks, sessions and keys.
        User = "user",
        /// Everything, every user's: the supervision tree, all events, other users.
        Operator = "operator",
    }
}

named_enum! {
    /// A session's lifecycle: `active ⇄ hibernated`, either `→ closed`. A hibernated session
    /// has no actor; its transcript is in Postgres and the next message wakes it.
    pub enum SessionStatus("session status") {
        /// Its actor is (or may be) live.
        Active = "active",
        /// Idle: no actor, woken by the next message or by news about its tasks.
        Hibernated = "hibernated",
        /// Over; it takes no more messages.
        Closed = "closed",
    }
}

impl DeploymentStatus {
    /// Whether a deployment in this status may next be in `next`. No status moves to itself.
    pub const fn can_transition_to(self, next: Self) -> bool {
        use DeploymentStatus::*;
        matches!(
            (self, next),
            (Deploying, Live | Failed | RolledBack) | (Live, Superseded | Failed)
        )
    }

    /// True when nothing can follow: failed, rolled back or superseded.
    pub const fn is_terminal(self) -> bool {
        matches!(self, Self::Failed | Self::RolledBack | Self::Superseded)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fmt::Debug;

    /// Checks `can` against the full list of allowed pairs, for every pair of statuses, and
    /// that terminal statuses are exactly those with no way out.
    fn check<S: Copy + PartialEq + Debug>(
        all: &[S],
        can: impl Fn(S, S) -> bool,
        terminal: impl Fn(S) -> bool,
        allowed: &[(S, S)],
    ) {
        for &from in all {
            for &to in all {
                assert_eq!(
                    can(from, to),
                    allowed.contains(&(from, to)),
                    "{from:?} -> {to:?}"
                );
            }
        }
        for &status in all {
            let stuck = all.iter().all(|&to| !can(status, to));
            if terminal(status) {
                assert!(stuck, "terminal {status:?} has a way out");
            }
        }
    }

    #[test]
    fn worker_transitions_are_exactly_the_documented_ones() {
        use WorkerStatus::*;
        check(
            WorkerStatus::ALL,
            WorkerStatus::can_transition_to,
            WorkerStatus::is_terminal,
            &[
                (Started, Ready),
                (Started, Failed),
                (Started, Stopped),
                (Ready, Busy),
                (Ready, Failed),
                (Ready, Stopped),
                (Busy, Completed),
                (Busy, Failed),
                (Busy, Stopped),
                (Completed, Failed),
                (Completed, Stopped),
                (Failed, Stopped),
            ],
        );
        let terminal: Vec<_> = WorkerStatus::ALL
            .iter()
            .filter(|s| s.is_terminal())
            .collect();
        assert_eq!(terminal, [&Stopped]);
    }

    #[test]
    fn task_transitions_are_exactly_the_documented_ones() {
        use TaskStatus::*;
        check(
            TaskStatus::ALL,
            TaskStatus::can_transition_to,
            TaskStatus::is_terminal,
            &[
                (Queued, Running),
                (Queued, Failed),
                (Queued, Cancelled),
                (Running, NeedsHuman),
                (Running, Completed),
                (Running, Failed),
                (Running, Cancelled),
                (NeedsHuman, Running),
                (NeedsHuman, Failed),
                (NeedsHuman, Cancelled),
                (Failed, Queued),
            ],
        );
        for status in TaskStatus::ALL {
            let expected_active = matches!(status, Queued | Running | NeedsHuman);
            assert_eq!(status.is_active(), expected_active, "{status:?}");
            assert!(!(status.is_active() && status.is_terminal()));
        }
        assert!(Completed.is_terminal() && Cancelled.is_terminal() && !Failed.is_terminal());
    }

    #[test]
    fn step_transitions_are_exactly_the_documented_ones() {
        use StepStatus::*;
        check(
            StepStatus::ALL,
            StepStatus::can_transition_to,
            StepStatus::is_terminal,
            &[(Pending, Running), (Running, Succeeded), (Running, Failed)],
        );
        assert!(Succeeded.is_terminal() && Failed.is_terminal());
        assert!(!Pending.is_terminal() && !Running.is_terminal());
    }

    #[test]
    fn deployment_transitions_are_exactly_the_documented_ones() {
        use DeploymentStatus::*;
        check(
            DeploymentStatus::ALL,
            DeploymentStatus::can_transition_to,
            DeploymentStatus::is_terminal,
            &[
                (Deploying, Live),
                (Deploying, Failed),
                (Deploying, RolledBack),
                (Live, Superseded),
                (Live, Failed),
            ],
        );
        assert!(!Deploying.is_terminal() && !Live.is_terminal());
    }

    #[test]
    fn steps_belong_to_their_workflow() {
        use StepKind::*;
        for step in [WriteSpec, Scaffold, Develop, Test] {
            assert_eq!(step.task_kind(), TaskKind::Engineering);
        }
        for step in [AnalyzeEnv, ResolveSecrets, Deploy, HealthCheck] {
            assert_eq!(step.task_kind(), TaskKind::Deploy);
        }
    }

    #[test]
    fn names_are_snake_case_everywhere() {
        assert_eq!(
            serde_json::to_string(&TaskStatus::NeedsHuman).unwrap(),
            r#""needs_human""#
        );
        assert_eq!(
            "rolled_back".parse::<DeploymentStatus>().unwrap(),
            DeploymentStatus::RolledBack
        );
        assert_eq!(WorkerStatus::Busy.to_string(), "busy");
        assert_eq!(StepKind::AnalyzeEnv.as_str(), "analyze_env");
        assert!("Busy".parse::<WorkerStatus>().is_err());
        let names: Vec<_> = WorkerStatus::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(
            names,
            ["started", "ready", "busy", "completed", "failed", "stopped"]
        );
    }
}
