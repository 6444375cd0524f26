//! How each role is supervised — the README's "Retries are restart policies" table, in code.
//!
//! A role's retry behaviour is its child spec and nothing else: restart type, backoff, and the
//! deadline past which one message counts as stuck (the role is then restarted and the
//! workflow's attempt fails retryably). The task's subtree supervises its roles
//! `one_for_one` with [`TASK_INTENSITY`]; past that, the task's subtree restarts as a whole
//! and its workflow resumes from the journal.

use crate::settings::Settings;
use artel_supervisors::{Backoff, Intensity};
use std::time::Duration;

/// Restarts allowed within a task's subtree (its roles and its workflow) before the subtree
/// gives up and its own supervisor restarts it.
pub const TASK_INTENSITY: Intensity = Intensity {
    max_restarts: 10,
    within: Duration::from_secs(60),
};

/// The supervision of one role.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RolePolicy {
    /// The wait before each restart, which is the wait before the workflow's next attempt.
    pub backoff: Backoff,
    /// How long one message may take before the role counts as stuck and is restarted.
    pub deadline: Duration,
}

/// The policies of every role.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RolePolicies {
    /// Writes the spec (no worker: a parse, or one model call).
    pub analyst: RolePolicy,
    /// Makes the repository and commits the scaffold.
    pub scaffolder: RolePolicy,
    /// Runs the agent in a worker.
    pub developer: RolePolicy,
    /// Runs the tests in a worker.
    pub tester: RolePolicy,
    /// Reads the manifest's environment.
    pub env_analyzer: RolePolicy,
    /// Generates, checks and asks for secrets.
    pub secret_resolver: RolePolicy,
    /// Starts services and checks their health (one per deploy target).
    pub deployer: RolePolicy,
}

/// `initial` doubling to `max`, ±20 %, reset after a minute of healthy running.
fn doubling(initial: Duration, max: Duration) -> Backoff {
    Backoff {
        initial,
        multiplier: 2.0,
        max,
        jitter: 0.2,
        reset_after: Duration::from_secs(60),
    }
}

impl RolePolicies {
    /// The policies `settings` imply: a worker role's deadline covers its command's
    /// wall-clock limit (`workers.timeout_secs`) plus a wait for a free worker.
    pub fn from_settings(settings: &Settings) -> Self {
        let command = Duration::from_secs(settings.workers.timeout_secs);
        let worker_role = command * 3 + Duration::from_secs(120);
        let quick = RolePolicy {
            backoff: doubling(Duration::from_millis(500), Duration::from_secs(10)),
            deadline: Duration::from_secs(120),
        };
        Self {
            analyst: quick,
            scaffolder: quick,
            developer: RolePolicy {
                backoff: doubling(Duration::from_secs(2), Duration::from_secs(60)),
                deadline: worker_role,
            },
            tester: RolePolicy {
                backoff: doubling(Duration::from_secs(1), Duration::from_secs(30)),
                deadline: worker_role,
            },
            env_analyzer: quick,
            secret_resolver: quick,
            deployer: RolePolicy {
                backoff: doubling(Duration::from_secs(1), Duration::from_secs(30)),
                // A Docker build plus the health wait.
                deadline: Duration::from_secs(settings.deploy.health_timeout_secs + 900),
            },
        }
    }

    /// The longest a step may take: its role's deadline, plus that role's longest backoff
    /// (the attempt may wait out a restart first). The workflow waits this long for a reply.
    pub fn longest_step(&self) -> Duration {
        [
            self.analyst,
            self.scaffolder,
            self.developer,
            self.tester,
            self.env_analyzer,
            self.secret_resolver,
            self.deployer,
        ]
        .iter()
        .map(|p| p.deadline + p.backoff.max)
        .max()
        .unwrap_or_default()
    }
}
