//! # artel-messages — the one catalog
//!
//! Everything that travels between artel's actors and processes is declared here, once:
//! typed messages for every role, the envelope that wraps a message when it crosses a process
//! boundary, the append-only events that feed the CLI, WebSocket, Telegram and dashboard, the
//! DTOs the front doors return, the error classes supervisors act on, the one worker lifecycle,
//! and the registry of every Redis stream.
//!
//! This crate depends on no other artel crate and on nothing but serialization-level libraries
//! (serde, serde_json, chrono for RFC 3339 time, uuid for ids, thiserror), so every other crate
//! can depend on it.
//!
//! # Layout
//! - [`error`] — [`ErrorClass`] (retryable or fatal), [`Failure`], the [`Classify`] trait.
//! - [`request`] — [`Request`]: a message and the type of its reply.
//! - [`named`] — closed sets of snake_case names; [`named::UnknownName`] for bad input.
//! - [`time`] — [`Timestamp`]: RFC 3339 UTC with microseconds and `Z`, never naive.
//! - [`ids`] — typed ids ([`TaskId`], [`ProjectId`], …, [`EventId`]).
//! - [`lifecycle`] — [`WorkerStatus`] (the one worker lifecycle), task, step, deployment statuses.
//! - [`secret`] — [`SecretValue`]: carried once on the wire, printed as `***`.
//! - [`envelope`] — [`Envelope`] and [`Payload`]: a message crossing a process boundary.
//! - [`event`] — [`Event`], [`NewEvent`], [`EventBody`]: the append-only progress journal.
//! - [`dto`] — project, task, step, worker and deployment records.
//! - [`streams`] — [`StreamSpec`] and [`STREAMS`]: every Redis stream, with its dead letters.
//! - [`product_owner`] — a user's line in, the PO's reply and [`product_owner::Intent`] out.
//! - [`scaffolder`] — create a project's repository from a template.
//! - [`developer`] — have an agent write and commit code.
//! - [`tester`] — run a commit's tests; [`tester::TestReport`].
//! - [`env_analyzer`] — find the environment variables a service needs.
//! - [`secret_resolver`] — check, generate and store a deploy's secrets.
//! - [`spec`] — the Analyst's typed reading of a request: resources, fields, relations, actions.
//! - [`deployer`] — deploy, health-check, roll back; [`deployer::DeployTarget`].
//! - [`worker_manager`] — spawn, run in and stop sandboxed workers, with limits.
//! - [`engineering`] — start, cancel, retry an engineering task.
//! - [`deploy`] — start, cancel, retry a deploy task.
//! - [`scheduler`] — the periodic jobs and running one now.
//! - [`tree_labels`] — the label keys saying which session, project or task a tree node serves.

pub mod deploy;
pub mod deployer;
pub mod developer;
pub mod dto;
pub mod engineering;
pub mod env_analyzer;
pub mod envelope;
pub mod error;
pub mod event;
pub mod ids;
pub mod lifecycle;
pub mod named;
#[cfg(feature = "openapi")]
pub mod openapi;
pub mod product_owner;
pub mod request;
pub mod scaffolder;
pub mod scheduler;
pub mod secret;
pub mod secret_resolver;
pub mod spec;
pub mod streams;
pub mod tester;
pub mod time;
pub mod tree_labels;
pub mod worker_manager;

pub use envelope::{Envelope, EnvelopeError, Payload};
pub use error::{Classify, ErrorClass, Failure};
pub use event::{Event, EventBody, NewEvent};
pub use ids::{
    ApiKeyId, CorrelationId, DeploymentId, EventId, MessageId, ProjectId, SessionId, TaskId,
    UserId, WorkerId,
};
pub use lifecycle::{
    DeploymentStatus, SessionChannel, SessionStatus, StepKind, StepStatus, TaskKind, TaskStatus,
    UserRole, WorkerStatus,
};
pub use request::Request;
pub use secret::SecretValue;
pub use streams::{STREAMS, StreamSpec};
pub use time::Timestamp;
