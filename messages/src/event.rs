//! Events: the append-only progress journal every front door reads.
//!
//! The CLI, the WebSocket, the Telegram gateway and the dashboard show progress from one
//! source: events. A component appends a [`NewEvent`]; the store gives it its [`EventId`] and
//! it becomes an [`Event`], which the bus fans out to subscribers (across processes on the
//! events stream). Sessions subscribe to their tasks' events, so the ProductOwner hears when a
//! deploy finishes — the seeds' backlog item "PO does not wait for async deploy completion".
//!
//! On the wire an event is flat: `{"id", "project", "task", "at", "kind", "payload"}`, where
//! `kind` names the [`EventBody`] variant and `payload` holds its fields.

use crate::envelope::Payload;
use crate::error::Failure;
use crate::ids::{DeploymentId, EventId, ProjectId, SessionId, TaskId, WorkerId};
use crate::lifecycle::{StepKind, TaskKind, TaskStatus, WorkerStatus};
use crate::named::named_enum;
use crate::time::Timestamp;
use crate::worker_manager::OutputStream;
use serde::{Deserialize, Serialize};

named_enum! {
    /// Who said a line in a session.
    pub enum ChatRole("chat role") {
        /// The person.
        User = "user",
        /// artel's ProductOwner.
        ProductOwner = "product_owner",
    }
}

/// What happened. Serialized adjacently tagged: `{"kind": "...", "payload": {...}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "payload", rename_all = "snake_case")]
pub enum EventBody {
    /// A task was accepted.
    TaskCreated {
        /// Engineering or deploy.
        task_kind: TaskKind,
        /// What was asked for, in the user's words.
        description: String,
    },
    /// A task moved through its lifecycle.
    TaskStatusChanged {
        /// The status before.
        from: TaskStatus,
        /// The status now.
        to: TaskStatus,
        /// Why, when there is more to say than the status (e.g. which secret is needed).
        reason: Option<String>,
    },
    /// A step attempt started.
    StepStarted {
        /// Which step.
        step: StepKind,
        /// Which attempt, from 1.
        attempt: u32,
    },
    /// A step attempt finished and its result is journaled.
    StepSucceeded {
        /// Which step.
        step: StepKind,
        /// Which attempt.
        attempt: u32,
    },
    /// A step attempt failed.
    StepFailed {
        /// Which step.
        step: StepKind,
        /// Which attempt.
        attempt: u32,
        /// What went wrong, classified.
        failure: Failure,
    },
    /// A restarted workflow found this step unfinished and runs it again.
    StepResumed {
        /// Which step.
        step: StepKind,
        /// Which attempt.
        attempt: u32,
    },
    /// A worker moved through its lifecycle.
    WorkerStatusChanged {
        /// Which worker.
        worker: WorkerId,
        /// Its status now.
        status: WorkerStatus,
    },
    /// One line a command in a worker printed.
    WorkerOutput {
        /// Which worker.
        worker: WorkerId,
        /// Standard output or error.
        stream: OutputStream,
        /// The line, without its newline.
        line: String,
    },
    /// The Analyst wrote (or edited) the task's spec.
    SpecWritten {
        /// The spec's version.
        version: u32,
        /// The spec as the user reads it.
        summary: String,
        /// False while it waits for the user's yes or correction.
        confirmed: bool,
    },
    /// The Developer committed.
    CommitCreated {
        /// The commit's full hash.
        sha: String,
        /// The branch it is on.
        branch: String,
    },
    /// The Tester ran the tests.
    TestsFinished {
        /// Tests that passed.
        passed: u32,
        /// Tests that failed.
        failed: u32,
        /// The last lines of the test output.
        output_tail: String,
    },
    /// A deploy needs a secret only the user can give. Never carries a value.
    SecretRequested {
        /// The environment variable name, e.g. `TELEGRAM_BOT_TOKEN`.
        name: String,
    },
    /// A deployment began.
    DeployStarted {
        /// Which deployment.
        deployment: DeploymentId,
    },
    /// A deployment passed its health check and is live.
    DeploySucceeded {
        /// Which deployment.
        deployment: DeploymentId,
        /// Where the service answers.
        url: String,
    },
    /// A deployment did not come up.
    DeployFailed {
        /// Which deployment.
        deployment: DeploymentId,
        /// What went wrong, classified.
        failure: Failure,
    },
    /// A failed deployment was undone and an earlier one restored.
    DeployRolledBack {
        /// The deployment that was undone.
        deployment: DeploymentId,
        /// The deployment serving again.
        restored: DeploymentId,
    },
    /// A line in a session's conversation. A user line that gave a secret is journaled
    /// redacted (see [`Intent::carries_secret`](crate::product_owner::Intent::carries_secret)).
    SessionMessage {
        /// Which session.
        session: SessionId,
        /// Who said it.
        role: ChatRole,
        /// What was said.
        text: String,
    },
    /// A supervisor restarted an actor.
    ActorRestarted {
        /// The node's path in the supervision tree, e.g. `artel/workflows/engineering/<task>`.
        node: String,
        /// Restarts of this node so far.
        restarts: u32,
        /// The failure that caused the restart.
        reason: String,
    },
    /// A person's note on a project's stream (a deploy freeze, an incident, a hand-over),
    /// posted through the control plane and shown with the project's progress.
    Note {
        /// Who posted it (their user name).
        author: String,
        /// What it says.
        text: String,
    },
}

impl EventBody {
    /// Every `kind` an event can have, in declaration order.
    pub const KINDS: &'static [&'static str] = &[
        "task_created",
        "task_status_changed",
        "step_started",
        "step_succeeded",
        "step_failed",
        "step_resumed",
        "worker_status_changed",
        "worker_output",
        "commit_created",
        "tests_finished",
        "secret_requested",
        "deploy_started",
        "deploy_succeeded",
        "deploy_failed",
        "deploy_rolled_back",
        "session_message",
        "actor_restarted",
        "note",
    ];

    /// This event's `kind`, as serialized.
    pub const fn kind(&self) -> &'static str {
        match self {
            Self::TaskCreated { .. } => "task_created",
            Self::TaskStatusChanged { .. } => "task_status_changed",
            Self::StepStarted { .. } => "step_started",
            Self::StepSucceeded { .. } => "step_succeeded",
            Self::StepFailed { .. } => "step_failed",
            Self::StepResumed { .. } => "step_resumed",
            Self::WorkerStatusChanged { .. } => "worker_status_changed",
            Self::WorkerOutput { .. } => "worker_output",
            Self::SpecWritten { .. } => "spec_written",
            Self::CommitCreated { .. } => "commit_created",
            Self::TestsFinished { .. } => "tests_finished",
            Self::SecretRequested { .. } => "secret_requested",
            Self::DeployStarted { .. } => "deploy_started",
            Self::DeploySucceeded { .. } => "deploy_succeeded",
            Self::DeployFailed { .. } => "deploy_failed",
            Self::DeployRolledBack { .. } => "deploy_rolled_back",
            Self::SessionMessage { .. } => "session_message",
            Self::ActorRestarted { .. } => "actor_restarted",
            Self::Note { .. } => "note",
        }
    }
}

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for Event {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        crate::openapi::event_schema()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for Event {}

/// A journaled event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Its position in the journal.
    pub id: EventId,
    /// The project it concerns, if any.
    pub project: Option<ProjectId>,
    /// The task it concerns, if any.
    pub task: Option<TaskId>,
    /// When it happened.
    pub at: Timestamp,
    /// What happened; flattened into `kind` and `payload`.
    #[serde(flatten)]
    pub body: EventBody,
}

impl Payload for Event {
    const KIND: &'static str = "Event";
    const SCHEMA_VERSION: u16 = 1;
}

/// An event to append: an [`Event`] before the store has given it an id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewEvent {
    /// The project it concerns, if any.
    pub project: Option<ProjectId>,
    /// The task it concerns, if any.
    pub task: Option<TaskId>,
    /// When it happened.
    pub at: Timestamp,
    /// What happened; flattened into `kind` and `payload`.
    #[serde(flatten)]
    pub body: EventBody,
}

impl NewEvent {
    /// An event happening now, about no project or task yet.
    pub fn new(body: EventBody) -> Self {
        Self {
            project: None,
            task: None,
            at: Timestamp::now(),
            body,
        }
    }

    /// The same event, about `project`.
    pub fn project(mut self, project: ProjectId) -> Self {
        self.project = Some(project);
        self
    }

    /// The same event, about `task`.
    pub fn task(mut self, task: TaskId) -> Self {
        self.task = Some(task);
        self
    }

    /// The journaled event, once the store has assigned `id`.
    pub fn with_id(self, id: EventId) -> Event {
        Event {
            id,
            project: self.project,
            task: self.task,
            at: self.at,
            body: self.body,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn uuid(n: u128) -> uuid::Uuid {
        uuid::Uuid::from_u128(n)
    }

    fn samples() -> Vec<EventBody> {
        let worker = WorkerId::from_uuid(uuid(1));
        let deployment = DeploymentId::from_uuid(uuid(2));
        vec![
            EventBody::TaskCreated {
                task_kind: TaskKind::Engineering,
                description: "a URL shortener with an API".into(),
            },
            EventBody::TaskStatusChanged {
                from: TaskStatus::Running,
                to: TaskStatus::NeedsHuman,
                reason: Some("needs TELEGRAM_BOT_TOKEN".into()),
            },
            EventBody::StepStarted {
                step: StepKind::Develop,
                attempt: 1,
            },
            EventBody::StepSucceeded {
                step: StepKind::Develop,
                attempt: 1,
            },
            EventBody::StepFailed {
                step: StepKind::Test,
                attempt: 2,
                failure: Failure::fatal("3 tests failed"),
            },
            EventBody::StepResumed {
                step: StepKind::Scaffold,
                attempt: 1,
            },
            EventBody::WorkerStatusChanged {
                worker,
                status: WorkerStatus::Busy,
            },
            EventBody::WorkerOutput {
                worker,
                stream: OutputStream::Stderr,
                line: "warning: unused".into(),
            },
            EventBody::CommitCreated {
                sha: "0123456789abcdef0123456789abcdef01234567".into(),
                branch: "main".into(),
            },
            EventBody::SpecWritten {
                version: 1,
                summary: "Library catalog: books (title, author, isbn)".into(),
                confirmed: false,
            },
            EventBody::TestsFinished {
                passed: 12,
                failed: 0,
                output_tail: "12 passed".into(),
            },
            EventBody::SecretRequested {
                name: "TELEGRAM_BOT_TOKEN".into(),
            },
            EventBody::DeployStarted { deployment },
            EventBody::DeploySucceeded {
                deployment,
                url: "http://127.0.0.1:8080".into(),
            },
            EventBody::DeployFailed {
                deployment,
                failure: Failure::retryable("health check timed out"),
            },
            EventBody::DeployRolledBack {
                deployment,
                restored: DeploymentId::from_uuid(uuid(3)),
            },
            EventBody::SessionMessage {
                session: SessionId::from_uuid(uuid(4)),
                role: ChatRole::ProductOwner,
                text: "Deployed: http://127.0.0.1:8080".into(),
            },
            EventBody::ActorRestarted {
                node: "artel/worker-manager".into(),
                restarts: 2,
                reason: "redis connection reset".into(),
            },
            EventBody::Note {
                author: "alice".into(),
                text: "deploy freeze until Monday".into(),
            },
        ]
    }

    #[test]
    fn every_kind_has_a_sample_and_matches_its_tag() {
        let samples = samples();
        let kinds: Vec<_> = samples.iter().map(EventBody::kind).collect();
        assert_eq!(kinds, EventBody::KINDS);
        for body in samples {
            let json = serde_json::to_value(&body).unwrap();
            assert_eq!(json["kind"], body.kind());
            assert!(json["payload"].is_object(), "{json}");
            assert_eq!(json.as_object().unwrap().len(), 2);
            let back: EventBody = serde_json::from_value(json).unwrap();
            assert_eq!(back, body);
        }
    }

    #[test]
    fn event_json_is_flat_with_kind_and_payload() {
        let event = NewEvent::new(EventBody::DeploySucceeded {
            deployment: DeploymentId::from_uuid(uuid(2)),
            url: "http://127.0.0.1:8080".into(),
        })
        .project(ProjectId::from_uuid(uuid(5)))
        .task(TaskId::from_uuid(uuid(6)))
        .with_id(EventId::new(42));
        let event = Event {
            at: Timestamp::parse("2026-11-23T19:51:07.123456Z").unwrap(),
            ..event
        };
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(
            json,
            json!({
                "id": 42,
                "project": "00000000-0000-0000-0000-000000000005",
                "task": "00000000-0000-0000-0000-000000000006",
                "at": "2026-11-23T19:51:07.123456Z",
                "kind": "deploy_succeeded",
                "payload": {
                    "deployment": "00000000-0000-0000-0000-000000000002",
                    "url": "http://127.0.0.1:8080"
                }
            })
        );
        let back: Event = serde_json::from_value(json).unwrap();
        assert_eq!(back, event);
    }

    #[test]
    fn payload_shapes_are_pinned() {
        let cases = [
            (
                EventBody::StepFailed {
                    step: StepKind::Test,
                    attempt: 2,
                    failure: Failure::fatal("3 tests failed"),
                },
                json!({"kind": "step_failed", "payload": {
                    "step": "test", "attempt": 2,
                    "failure": {"class": "fatal", "reason": "3 tests failed"}}}),
            ),
            (
                EventBody::WorkerStatusChanged {
                    worker: WorkerId::from_uuid(uuid(1)),
                    status: WorkerStatus::Completed,
                },
                json!({"kind": "worker_status_changed", "payload": {
                    "worker": "00000000-0000-0000-0000-000000000001", "status": "completed"}}),
            ),
            (
                EventBody::TestsFinished {
                    passed: 3,
                    failed: 1,
                    output_tail: "1 failed".into(),
                },
                json!({"kind": "tests_finished", "payload": {
                    "passed": 3, "failed": 1, "output_tail": "1 failed"}}),
            ),
            (
                EventBody::SecretRequested {
                    name: "API_KEY".into(),
                },
                json!({"kind": "secret_requested", "payload": {"name": "API_KEY"}}),
            ),
            (
                EventBody::SessionMessage {
                    session: SessionId::from_uuid(uuid(4)),
                    role: ChatRole::User,
                    text: "make me a blog".into(),
                },
                json!({"kind": "session_message", "payload": {
                    "session": "00000000-0000-0000-0000-000000000004",
                    "role": "user", "text": "make me a blog"}}),
            ),
            (
                EventBody::ActorRestarted {
                    node: "artel/bus".into(),
                    restarts: 1,
                    reason: "boom".into(),
                },
                json!({"kind": "actor_restarted", "payload": {
                    "node": "artel/bus", "restarts": 1, "reason": "boom"}}),
            ),
        ];
        for (body, expected) in cases {
            assert_eq!(serde_json::to_value(&body).unwrap(), expected);
        }
    }

    #[test]
    fn new_events_have_no_id_and_travel_as_the_event_payload() {
        let new = NewEvent::new(EventBody::SecretRequested {
            name: "API_KEY".into(),
        });
        let json = serde_json::to_value(&new).unwrap();
        assert!(json.get("id").is_none());
        assert_eq!(json["project"], serde_json::Value::Null);
        assert_eq!(serde_json::from_value::<NewEvent>(json).unwrap(), new);

        let event = new.with_id(EventId::new(7));
        let envelope = crate::envelope::Envelope::new(event.clone());
        assert_eq!(envelope.kind, "Event");
        let bytes = envelope.encode().unwrap();
        let back = crate::envelope::Envelope::<Event>::decode(&bytes).unwrap();
        assert_eq!(back.payload, event);
    }
}
