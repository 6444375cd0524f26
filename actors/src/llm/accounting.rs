//! One place that writes model calls to `llm_requests`, for every role that uses a model.
//!
//! The Developer's agent and the ProductOwner record their calls the same way: usage and cost
//! (priced by [`super::cost`]), latency, status and the classified error, with the project,
//! task and session the call served. The usage API, the budget checks and the metrics read
//! these rows, so a role that skipped them would spend unseen.

use super::{Completion, LlmClient, LlmError, cost};
use crate::settings::ModelPrice;
use crate::store::{LlmRequestRow, Store};
use artel_messages::{Classify, Failure, ProjectId, SessionId, TaskId};
use std::time::Instant;

/// What a call was for.
#[derive(Debug, Clone, Copy, Default)]
pub struct Scope {
    /// The project.
    pub project: Option<ProjectId>,
    /// The task.
    pub task: Option<TaskId>,
    /// The conversation.
    pub session: Option<SessionId>,
}

/// Records one call `role` made through `client`, answered with `answer` after `started`.
pub async fn record(
    store: &Store,
    client: &LlmClient,
    price: Option<&ModelPrice>,
    role: &str,
    scope: Scope,
    answer: &Result<Completion, LlmError>,
    started: Instant,
) -> Result<(), Failure> {
    let latency_ms = started.elapsed().as_millis() as u64;
    let usage = answer.as_ref().map(|c| c.usage).unwrap_or_default();
    let row = LlmRequestRow {
        project: scope.project,
        task: scope.task,
        session: scope.session,
        role: role.to_owned(),
        provider: client.provider().as_str().to_owned(),
        model: client.model().to_owned(),
        tokens_in: usage.input,
        tokens_out: usage.output,
        tokens_cached: usage.cached_input,
        cost_micro_usd: price.map_or(0, |p| cost::cost_micro_usd(p, &usage)),
        latency_ms,
        status: match answer {
            Ok(_) => "ok",
            Err(err) => err.request_status(),
        },
        error: answer.as_ref().err().map(ToString::to_string),
    };
    store
        .record_llm_request(&row)
        .await
        .map_err(|e| e.to_failure())
}
