//! WorkerManager's messages: spawn a sandbox with limits, run a command in it, stop it.
//!
//! Workers are where agents and test commands run. The systems artel replaces set no limits on
//! them (the seeds' audit item 10); here every spawn carries [`WorkerLimits`], and the
//! worker-manager enforces them in either runtime. Secrets are never in a spawn request: it
//! names them, and the worker-manager reads the values from the store. The worker-manager may
//! run in another process, so its commands and replies also exist as the [`WorkerCommand`] and
//! [`WorkerReply`] envelopes on the worker-manager streams.

use crate::dto::WorkerDto;
use crate::envelope::Payload;
use crate::error::Failure;
use crate::ids::{ProjectId, TaskId, WorkerId};
use crate::named::named_enum;
use crate::request::Request;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

named_enum! {
    /// Where a worker runs.
    pub enum WorkerRuntime("worker runtime") {
        /// A local process group in its own directory, with rlimits; the offline default.
        Process = "process",
        /// A Docker container with cgroup limits.
        Docker = "docker",
    }
}

named_enum! {
    /// Which output stream of a command a line came from.
    pub enum OutputStream("output stream") {
        /// Standard output.
        Stdout = "stdout",
        /// Standard error.
        Stderr = "stderr",
    }
}

/// The resources one worker may use; exceeding one fails the worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WorkerLimits {
    /// CPU time, in seconds, summed over all its processes.
    pub cpu_seconds: u64,
    /// Memory, in bytes.
    pub memory_bytes: u64,
    /// Processes and threads alive at once.
    pub pids: u32,
    /// Largest file it may write, in bytes.
    pub file_size_bytes: u64,
    /// Wall-clock lifetime, in seconds, after which the worker is killed and fails.
    pub wall_clock_timeout_secs: u64,
}

impl WorkerLimits {
    /// The wall-clock lifetime as a [`Duration`].
    pub const fn wall_clock_timeout(&self) -> Duration {
        Duration::from_secs(self.wall_clock_timeout_secs)
    }
}

/// What to spawn.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerSpec {
    /// The project the worker works on.
    pub project: ProjectId,
    /// The task it works for; its events carry this task.
    pub task: TaskId,
    /// Process or container.
    pub runtime: WorkerRuntime,
    /// Container image, for the docker runtime; `None` uses the configured worker image.
    pub image: Option<String>,
    /// Plain environment variables. Never secrets: list those in `secrets`.
    pub env: BTreeMap<String, String>,
    /// Names of project secrets to inject as environment variables; the worker-manager reads
    /// their values from the store, so values never travel in a command.
    pub secrets: Vec<String>,
    /// Resource limits, enforced by the runtime.
    pub limits: WorkerLimits,
    /// Whether the worker may reach the network. Off unless the task needs it (an agent
    /// calling an LLM API); containers without it have no network interface but loopback.
    /// The local-process runtime takes it away with a network namespace when it sandboxes
    /// commands with bubblewrap.
    #[serde(default)]
    pub network: bool,
}

/// Spawn a worker; answers the worker, `ready` on success.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpawnWorker {
    /// What to spawn.
    pub spec: WorkerSpec,
}

impl Request for SpawnWorker {
    type Reply = Result<WorkerDto, Failure>;
}

/// Run one command in a ready worker and wait for it; its output lines are also published as
/// `worker_output` events while it runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunCommand {
    /// The worker to run in.
    pub worker: WorkerId,
    /// The program, looked up on the worker's `PATH`.
    pub program: String,
    /// Its arguments; no shell is involved.
    pub args: Vec<String>,
    /// Working directory relative to the worker's own directory; `None` is that directory.
    /// Paths leaving the worker's directory are refused.
    pub cwd: Option<String>,
}

impl Request for RunCommand {
    type Reply = Result<CommandOutcome, Failure>;
}

/// How a command ended. A non-zero exit is an outcome, not a [`Failure`]: failures are about
/// the worker (it died, hit a limit, does not exist).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandOutcome {
    /// The worker it ran in.
    pub worker: WorkerId,
    /// The exit code; `None` when killed by a signal or the timeout.
    pub exit_code: Option<i32>,
    /// True when the worker's wall-clock timeout killed it.
    pub timed_out: bool,
    /// The last lines of standard output.
    pub stdout_tail: String,
    /// The last lines of standard error.
    pub stderr_tail: String,
    /// When the command started.
    pub started_at: Timestamp,
    /// When it ended.
    pub finished_at: Timestamp,
}

impl CommandOutcome {
    /// True when it exited with code 0.
    pub fn succeeded(&self) -> bool {
        self.exit_code == Some(0)
    }
}

/// Stop a worker: kill its process group or container and release its resources. Stopping a
/// stopped worker answers it again, unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StopWorker {
    /// The worker to stop.
    pub worker: WorkerId,
    /// Why, for the log and the worker's record.
    pub reason: String,
}

impl Request for StopWorker {
    type Reply = Result<WorkerDto, Failure>;
}

/// A worker-manager command as it travels on its command stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum WorkerCommand {
    /// See [`SpawnWorker`].
    Spawn(SpawnWorker),
    /// See [`RunCommand`].
    Run(RunCommand),
    /// See [`StopWorker`].
    Stop(StopWorker),
}

impl Payload for WorkerCommand {
    const KIND: &'static str = "WorkerCommand";
    const SCHEMA_VERSION: u16 = 1;
}

impl Request for WorkerCommand {
    type Reply = WorkerReply;
}

/// The worker-manager's answer to a [`WorkerCommand`], on its reply stream; the reply
/// envelope is [`caused_by`](crate::envelope::Envelope::caused_by) the command's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum WorkerReply {
    /// Answer to spawn and stop: the worker as it now is.
    Worker(WorkerDto),
    /// Answer to run.
    Finished(CommandOutcome),
    /// The command could not be carried out.
    Failed(Failure),
}

impl Payload for WorkerReply {
    const KIND: &'static str = "WorkerReply";
    const SCHEMA_VERSION: u16 = 1;
}

impl From<Result<WorkerDto, Failure>> for WorkerReply {
    fn from(result: Result<WorkerDto, Failure>) -> Self {
        result.map_or_else(Self::Failed, Self::Worker)
    }
}

impl From<Result<CommandOutcome, Failure>> for WorkerReply {
    fn from(result: Result<CommandOutcome, Failure>) -> Self {
        result.map_or_else(Self::Failed, Self::Finished)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::Envelope;

    #[test]
    fn commands_are_tagged_and_travel_in_envelopes() {
        let command = WorkerCommand::Stop(StopWorker {
            worker: WorkerId::new(),
            reason: "task cancelled".into(),
        });
        let json = serde_json::to_value(&command).unwrap();
        assert_eq!(json["command"], "stop");
        assert_eq!(json["reason"], "task cancelled");
        let envelope = Envelope::new(command.clone());
        let back = Envelope::<WorkerCommand>::decode(&envelope.encode().unwrap()).unwrap();
        assert_eq!(back.payload, command);
    }

    #[test]
    fn spawn_carries_limits_and_secret_names_only() {
        let spec = WorkerSpec {
            project: ProjectId::new(),
            task: TaskId::new(),
            runtime: WorkerRuntime::Docker,
            image: None,
            env: BTreeMap::from([("RUST_LOG".into(), "info".into())]),
            secrets: vec!["OPENAI_API_KEY".into()],
            network: false,
            limits: WorkerLimits {
                cpu_seconds: 600,
                memory_bytes: 2 << 30,
                pids: 256,
                file_size_bytes: 256 << 20,
                wall_clock_timeout_secs: 1800,
            },
        };
        assert_eq!(spec.limits.wall_clock_timeout(), Duration::from_secs(1800));
        let json = serde_json::to_value(WorkerCommand::Spawn(SpawnWorker { spec })).unwrap();
        assert_eq!(json["command"], "spawn");
        assert_eq!(json["spec"]["runtime"], "docker");
        assert_eq!(json["spec"]["secrets"][0], "OPENAI_API_KEY");
        assert_eq!(json["spec"]["limits"]["pids"], 256);
    }

    #[test]
    fn replies_come_from_typed_results() {
        let failed: WorkerReply = Err::<CommandOutcome, _>(Failure::retryable("pool full")).into();
        assert_eq!(
            serde_json::to_value(&failed).unwrap(),
            serde_json::json!({ "reply": "failed", "class": "retryable", "reason": "pool full" })
        );
        let now = Timestamp::now();
        let outcome = CommandOutcome {
            worker: WorkerId::new(),
            exit_code: Some(0),
            timed_out: false,
            stdout_tail: "ok".into(),
            stderr_tail: String::new(),
            started_at: now,
            finished_at: now,
        };
        assert!(outcome.succeeded());
        let reply: WorkerReply = Ok(outcome.clone()).into();
        assert_eq!(reply, WorkerReply::Finished(outcome));
        let envelope = Envelope::new(reply.clone());
        let back = Envelope::<WorkerReply>::decode(&envelope.encode().unwrap()).unwrap();
        assert_eq!(back.payload, reply);
    }
}
