//! The event journal, read in pages: everything the caller may see after an id.
//!
//! The WebSocket (`events_ws`) is the live form; this is for catching up and for clients
//! that poll. `next` is the id to pass as `since` for the following page.

use crate::api::auth::Caller;
use crate::api::error::{ApiError, ErrorBody};
use crate::api::{ApiState, check_limit};
use actix_web::web;
use artel_actors::store::EventScope;
use artel_messages::{Event, EventId};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// The routes of this module.
pub fn routes(config: &mut web::ServiceConfig) {
    config.route("/events", web::get().to(list));
}

/// Which events.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EventQuery {
    /// Only events after this id (default 0: from the start).
    pub since: Option<i64>,
    /// Only this project's events (id or name).
    pub project: Option<String>,
    /// Only this task's events.
    pub task: Option<String>,
    /// At most this many (1 to 1000, default 200).
    pub limit: Option<u32>,
}

/// One page of events.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EventPage {
    /// The events, in id order.
    pub items: Vec<Event>,
    /// Pass as `since` for the next page (the last id here, or `since` when empty).
    pub next: EventId,
    /// The newest event in the whole journal now: where a reader that wants only what
    /// happens from now on starts.
    pub latest: EventId,
}

/// The caller's events after `since`, in id order.
#[utoipa::path(get, operation_id = "list_events", path = "/api/v1/events", tag = "events", params(EventQuery),
    responses((status = 200, body = EventPage), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list(
    state: web::Data<ApiState>,
    caller: Caller,
    query: web::Query<EventQuery>,
) -> Result<web::Json<EventPage>, ApiError> {
    let since = query.since.unwrap_or(0);
    if since < 0 {
        return Err(ApiError::validation(
            "`since` must be an event id (0 or more)",
        ));
    }
    let limit = check_limit(query.limit, 200, 1000)?;
    let scope = match (&query.task, &query.project) {
        (Some(_), Some(_)) => {
            return Err(ApiError::validation("give `task` or `project`, not both"));
        }
        (Some(task), None) => EventScope::Task(state.task(&caller, task).await?.id),
        (None, Some(project)) => EventScope::Project(state.project(&caller, project).await?.id),
        (None, None) => match caller.scope() {
            Some(owner) => EventScope::Owner(owner),
            None => EventScope::All,
        },
    };
    let items = state
        .store
        .events_since(scope, EventId::new(since), limit)
        .await?;
    let next = items.last().map_or(EventId::new(since), |e| e.id);
    let latest = state.store.latest_event_id().await?;
    Ok(web::Json(EventPage {
        items,
        next,
        latest,
    }))
}
