//! Conversations with the ProductOwner: open one, say a line and get the answer, read the
//! transcript. The ProductOwner's later news about the session's tasks ("… is live at …")
//! lands in the transcript and on the event stream as `session_message` events.

use crate::api::auth::{Caller, may_see};
use crate::api::error::{ApiError, ErrorBody};
use crate::api::{ApiState, Items, OptionalJson, check_text};
use actix_web::{HttpResponse, web};
use artel_messages::dto::{ChatLineDto, SessionDto};
use artel_messages::{SessionChannel, SessionId};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

/// The routes of this module.
pub fn routes(config: &mut web::ServiceConfig) {
    config
        .route("/sessions", web::post().to(open))
        .route("/sessions/{id}", web::get().to(get))
        .route("/sessions/{id}/messages", web::post().to(say))
        .route("/sessions/{id}/messages", web::get().to(transcript));
}

/// A conversation to open.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSession {
    /// `dashboard` (default) or `cli`.
    #[serde(default)]
    pub channel: Option<SessionChannel>,
}

/// Opens a conversation with the ProductOwner.
#[utoipa::path(post, operation_id = "open_session", path = "/api/v1/sessions", tag = "sessions", request_body = NewSession,
    responses((status = 201, body = SessionDto), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn open(
    state: web::Data<ApiState>,
    caller: Caller,
    body: OptionalJson<NewSession>,
) -> Result<HttpResponse, ApiError> {
    let channel = body
        .0
        .and_then(|b| b.channel)
        .unwrap_or(SessionChannel::Dashboard);
    if channel == SessionChannel::Telegram {
        return Err(ApiError::validation(
            "`channel` telegram is opened by the Telegram gateway; use dashboard or cli",
        ));
    }
    let session = state.sessions.open(caller.user(), channel).await?;
    Ok(HttpResponse::Created().json(session))
}

async fn session(state: &ApiState, caller: &Caller, segment: &str) -> Result<SessionDto, ApiError> {
    let not_found = || ApiError::not_found(format!("session `{segment}`"));
    let id: SessionId = segment.parse().map_err(|_| not_found())?;
    state
        .store
        .session(id)
        .await?
        .filter(|s| may_see(caller, s.user))
        .ok_or_else(not_found)
}

/// One session (its `project` once it has one).
#[utoipa::path(get, operation_id = "get_session", path = "/api/v1/sessions/{id}", tag = "sessions",
    params(("id" = String, Path, description = "The session's id")),
    responses((status = 200, body = SessionDto), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn get(
    state: web::Data<ApiState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<web::Json<SessionDto>, ApiError> {
    Ok(web::Json(session(&state, &caller, &id).await?))
}

/// A line to say.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Say {
    /// What the user says (1 to 4000 characters). A line that gives a secret (`NAME=value`)
    /// is stored encrypted and journaled redacted.
    pub text: String,
}

/// Says a line to the ProductOwner; answers its reply lines.
#[utoipa::path(post, path = "/api/v1/sessions/{id}/messages", tag = "sessions", request_body = Say,
    params(("id" = String, Path, description = "The session's id")),
    responses((status = 200, body = Items<ChatLineDto>), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn say(
    state: web::Data<ApiState>,
    caller: Caller,
    id: web::Path<String>,
    body: web::Json<Say>,
) -> Result<web::Json<Items<ChatLineDto>>, ApiError> {
    if body.text.trim().is_empty() {
        return Err(ApiError::validation("`text` must say something"));
    }
    check_text("text", &body.text, 4000)?;
    state.accepting()?;
    let session = session(&state, &caller, &id).await?;
    let lines = state.sessions.say(session.id, &body.text).await?;
    Ok(web::Json(Items::new(lines)))
}

/// Where to start reading a transcript.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TranscriptQuery {
    /// Only lines after this line id (default: from the start).
    pub after: Option<i64>,
}

/// A session's transcript, oldest first.
#[utoipa::path(get, path = "/api/v1/sessions/{id}/messages", tag = "sessions",
    params(("id" = String, Path, description = "The session's id"), TranscriptQuery),
    responses((status = 200, body = Items<ChatLineDto>), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn transcript(
    state: web::Data<ApiState>,
    caller: Caller,
    id: web::Path<String>,
    query: web::Query<TranscriptQuery>,
) -> Result<web::Json<Items<ChatLineDto>>, ApiError> {
    let session = session(&state, &caller, &id).await?;
    let lines = state
        .store
        .chat_lines(session.id, query.after.unwrap_or(0))
        .await?;
    Ok(web::Json(Items::new(lines)))
}
