//! The control plane's REST API, `/api/v1` (see `docs/API.md` and the OpenAPI document this
//! module generates at `/api/v1/openapi.json`).
//!
//! Handlers are thin: parse and validate, authorize ([`auth::Caller`]), one call into a role
//! or the store, map the reply. Every query is owner-scoped: another user's project is a 404,
//! exactly as a missing one, so ids cannot be probed. Operators see everything.

pub mod auth;
pub mod bad_keys;
pub mod error;
pub mod events;
pub mod events_ws;
pub mod keys;
pub mod llm_keys;
pub mod openapi;
pub mod projects;
pub mod rate_limit;
pub mod runtime_views;
pub mod sessions;
pub mod tasks;
pub mod telegram;
pub mod tree_scope;

use crate::api::auth::{Caller, KeyCache, ProjectRef, may_see};
use crate::api::error::ApiError;
use crate::api::rate_limit::RateLimiter;
use actix_web::web;
use artel_actors::deploy_target::Targets;
use artel_actors::pipeline::Pipeline;
use artel_actors::sessions::Sessions;
use artel_actors::store::{Store, TaskRecord};
use artel_actors::worker_manager::Workers;
use artel_actors::workflow::Workflows;
use artel_messages::TaskId;
use artel_messages::dto::ProjectDto;
use artel_supervisors::Registry;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// What the API's handlers reach: the store, the roles, the tree.
pub struct ApiState {
    /// The source of truth.
    pub store: Store,
    /// The live supervision tree.
    pub registry: Registry,
    /// Conversations with the ProductOwner.
    pub sessions: Sessions<Pipeline>,
    /// Starts, cancels and resumes tasks.
    pub workflows: Workflows<Pipeline>,
    /// Where services run.
    pub target: Targets,
    /// The road to this process's worker-manager (stops go through its mailbox).
    pub workers: Workers,
    /// Checked keys.
    pub keys: KeyCache,
    /// Per-key rate limits.
    pub limiter: RateLimiter,
    /// Unknown keys lately presented, and each address's budget of them.
    pub bad_keys: bad_keys::BadKeys,
    /// Set once SIGTERM arrived: no new work is accepted.
    pub draining: Arc<AtomicBool>,
    /// The largest body accepted.
    pub max_body_bytes: usize,
    /// Live events, serialized once, for the WebSocket connections.
    pub hub: events_ws::EventHub,
    /// The Bot API server pooled bots are checked and reset on (`telegram.api_url`).
    pub telegram_api_url: String,
}

impl ApiState {
    /// Refuses new work while the server drains for shutdown.
    pub fn accepting(&self) -> Result<(), ApiError> {
        if self.draining.load(Ordering::Relaxed) {
            Err(ApiError::unavailable(
                "artel is shutting down and accepts no new work; retry against the next \
                 instance",
            ))
        } else {
            Ok(())
        }
    }

    /// The project `segment` names (id or the caller's project name), if the caller may see
    /// it; a 404 otherwise.
    pub async fn project(&self, caller: &Caller, segment: &str) -> Result<ProjectDto, ApiError> {
        let found = match ProjectRef::parse(segment) {
            ProjectRef::Id(id) => match self.store.project_of_task(id).await {
                Ok(project) => Some(project),
                Err(err) if err.is_not_found() => None,
                Err(err) => return Err(err.into()),
            },
            ProjectRef::Name(name) => self.store.project_by_name(caller.user(), &name).await?,
        };
        found
            .filter(|project| may_see(caller, project.owner))
            .ok_or_else(|| ApiError::not_found(format!("project `{segment}`")))
    }
}

impl ApiState {
    /// Task `segment` if the caller may see its project; a 404 otherwise.
    pub async fn task(&self, caller: &Caller, segment: &str) -> Result<TaskRecord, ApiError> {
        let not_found = || ApiError::not_found(format!("task `{segment}`"));
        let id: TaskId = segment.parse().map_err(|_| not_found())?;
        let task = self.store.task(id).await?.ok_or_else(not_found)?;
        let project = match self.store.project_of_task(task.project).await {
            Ok(project) => project,
            Err(err) if err.is_not_found() => return Err(not_found()),
            Err(err) => return Err(err.into()),
        };
        if may_see(caller, project.owner) {
            Ok(task)
        } else {
            Err(not_found())
        }
    }
}

/// Every `/api/v1` route.
pub fn routes(config: &mut web::ServiceConfig) {
    config.service(
        web::scope("/api/v1")
            .configure(openapi::routes)
            .configure(keys::routes)
            .configure(llm_keys::routes)
            .configure(projects::routes)
            .configure(tasks::routes)
            .configure(sessions::routes)
            .configure(events::routes)
            .configure(events_ws::routes)
            .configure(runtime_views::routes)
            .configure(telegram::routes),
    );
}

/// A list answer: `{"items": [...]}` (room to add paging fields without breaking clients).
#[derive(Debug, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Items<T> {
    /// The records.
    pub items: Vec<T>,
}

impl<T> Items<T> {
    /// Wraps `items`.
    pub fn new(items: Vec<T>) -> Self {
        Self { items }
    }
}

/// A request body's own rules, checked before anything is done with it.
pub trait Validated {
    /// Refuses a value that breaks a rule, saying which and why.
    fn validate(&self) -> Result<(), ApiError>;
}

/// A list's `limit`: `default` when absent, else 1 to `max`.
pub fn check_limit(limit: Option<u32>, default: u32, max: u32) -> Result<u32, ApiError> {
    let limit = limit.unwrap_or(default);
    if (1..=max).contains(&limit) {
        Ok(limit)
    } else {
        Err(ApiError::validation(format!("`limit` must be 1 to {max}")))
    }
}

/// Checks free text from a client: at most `max` characters, no control characters but
/// newlines and tabs.
pub fn check_text(field: &str, text: &str, max: usize) -> Result<(), ApiError> {
    if text.chars().count() > max {
        return Err(ApiError::validation(format!(
            "`{field}` is longer than {max} characters"
        )));
    }
    if text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r')
    {
        return Err(ApiError::validation(format!(
            "`{field}` contains control characters"
        )));
    }
    Ok(())
}

/// An optional JSON body: `None` when the request has no body, the parsed value otherwise —
/// and a malformed, mistyped or oversized body is the same error as for a required one
/// (actix's `Option<Json<T>>` would silently turn it into `None`).
pub struct OptionalJson<T>(pub Option<T>);

impl<T: serde::de::DeserializeOwned + 'static> actix_web::FromRequest for OptionalJson<T> {
    type Error = actix_web::Error;
    type Future = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(
        req: &actix_web::HttpRequest,
        payload: &mut actix_web::dev::Payload,
    ) -> Self::Future {
        use actix_web::http::header;
        let headers = req.headers();
        let empty = match headers.get(header::CONTENT_LENGTH) {
            Some(length) => length.as_bytes() == b"0",
            None => !headers.contains_key(header::TRANSFER_ENCODING),
        };
        if empty {
            return Box::pin(async { Ok(Self(None)) });
        }
        let body = web::Json::<T>::from_request(req, payload);
        Box::pin(async move { Ok(Self(Some(body.await?.into_inner()))) })
    }
}
