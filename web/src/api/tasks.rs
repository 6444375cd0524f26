//! Tasks across the caller's projects: read one with its steps, list, cancel, retry.

use crate::api::auth::Caller;
use crate::api::error::{ApiError, ErrorBody};
use crate::api::{ApiState, Items, OptionalJson, Validated, check_limit, check_text};
use actix_web::web;
use artel_messages::TaskStatus;
use artel_messages::dto::{LlmUsageDto, StepDto, TaskDto};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// The routes of this module.
pub fn routes(config: &mut web::ServiceConfig) {
    config
        .route("/tasks", web::get().to(list))
        .route("/tasks/{id}", web::get().to(get))
        .route("/tasks/{id}/usage", web::get().to(usage))
        .route("/tasks/{id}/cancel", web::post().to(cancel))
        .route("/tasks/{id}/retry", web::post().to(retry));
}

/// Filters of the task list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TaskQuery {
    /// Only tasks in this status.
    pub status: Option<TaskStatus>,
    /// At most this many (1 to 500, default 100), newest first.
    pub limit: Option<u32>,
}

/// The caller's tasks (an operator's: everyone's), newest first.
#[utoipa::path(get, operation_id = "list_tasks", path = "/api/v1/tasks", tag = "tasks", params(TaskQuery),
    responses((status = 200, body = Items<TaskDto>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list(
    state: web::Data<ApiState>,
    caller: Caller,
    query: web::Query<TaskQuery>,
) -> Result<web::Json<Items<TaskDto>>, ApiError> {
    let limit = check_limit(query.limit, 100, 500)?;
    let tasks = state
        .store
        .tasks_of(caller.scope(), query.status, limit)
        .await?;
    Ok(web::Json(Items::new(
        tasks.iter().map(|t| t.to_dto()).collect(),
    )))
}

/// A task and its journaled steps.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TaskDetail {
    /// The task.
    pub task: TaskDto,
    /// Its steps, in journal order (a rework loop shows each attempt).
    pub steps: Vec<StepDto>,
}

/// One task with its steps.
#[utoipa::path(get, operation_id = "get_task", path = "/api/v1/tasks/{id}", tag = "tasks",
    params(("id" = String, Path, description = "The task's id")),
    responses((status = 200, body = TaskDetail), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn get(
    state: web::Data<ApiState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<web::Json<TaskDetail>, ApiError> {
    let task = state.task(&caller, &id).await?;
    let steps = state.store.steps(task.id).await?;
    Ok(web::Json(TaskDetail {
        task: task.to_dto(),
        steps: steps.iter().map(|s| s.to_dto()).collect(),
    }))
}

/// What a task's model calls used (the built-in agent's turns), from `llm_requests`.
#[utoipa::path(get, operation_id = "task_usage", path = "/api/v1/tasks/{id}/usage", tag = "tasks",
    params(("id" = String, Path, description = "The task's id")),
    responses((status = 200, body = LlmUsageDto), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn usage(
    state: web::Data<ApiState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<web::Json<LlmUsageDto>, ApiError> {
    let task = state.task(&caller, &id).await?;
    Ok(web::Json(state.store.task_llm_usage(task.id).await?))
}

/// Why a task is cancelled.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelRequest {
    /// In the user's words (at most 500 characters).
    #[serde(default)]
    pub reason: Option<String>,
}

/// Cancels a task: it ends `cancelled` and its running step's worker is stopped.
#[utoipa::path(post, operation_id = "cancel_task", path = "/api/v1/tasks/{id}/cancel", tag = "tasks", request_body = CancelRequest,
    params(("id" = String, Path, description = "The task's id")),
    responses((status = 200, body = TaskDto), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn cancel(
    state: web::Data<ApiState>,
    caller: Caller,
    id: web::Path<String>,
    body: OptionalJson<CancelRequest>,
) -> Result<web::Json<TaskDto>, ApiError> {
    let reason = body.0.and_then(|b| b.reason);
    if let Some(reason) = &reason {
        check_text("reason", reason, 500)?;
    }
    let task = state.task(&caller, &id).await?;
    if task.status.is_terminal() {
        return Err(ApiError::conflict(format!(
            "task {} is already {}; nothing to cancel",
            task.id, task.status
        )));
    }
    let reason = reason.unwrap_or_else(|| format!("cancelled by {}", caller.0.name));
    Ok(web::Json(
        state.workflows.cancel(task.id, &reason).await?.to_dto(),
    ))
}

/// What to do differently.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryRequest {
    /// Guidance for the Developer (at most 4000 characters).
    #[serde(default)]
    pub guidance: Option<String>,
}

impl Validated for RetryRequest {
    fn validate(&self) -> Result<(), ApiError> {
        match &self.guidance {
            Some(g) => check_text("guidance", g, 4000),
            None => Ok(()),
        }
    }
}

/// Goes on with a failed task or one waiting for a human, with guidance.
#[utoipa::path(post, operation_id = "retry_task", path = "/api/v1/tasks/{id}/retry", tag = "tasks", request_body = RetryRequest,
    params(("id" = String, Path, description = "The task's id")),
    responses((status = 200, body = TaskDto), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn retry(
    state: web::Data<ApiState>,
    caller: Caller,
    id: web::Path<String>,
    body: web::Json<RetryRequest>,
) -> Result<web::Json<TaskDto>, ApiError> {
    body.validate()?;
    state.accepting()?;
    let task = state.task(&caller, &id).await?;
    if !matches!(task.status, TaskStatus::Failed | TaskStatus::NeedsHuman) {
        return Err(ApiError::conflict(format!(
            "task {} is {}; only a failed task or one waiting for you can be retried \
             (start a new task instead)",
            task.id, task.status
        )));
    }
    let guidance = body
        .guidance
        .as_deref()
        .map(str::trim)
        .filter(|g| !g.is_empty());
    Ok(web::Json(
        state.workflows.resume(task.id, guidance).await?.to_dto(),
    ))
}
