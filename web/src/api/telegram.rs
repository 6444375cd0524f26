//! Linking a Telegram chat to the caller: a one-time code the user sends to the bot as
//! `/start <code>`. Only the code's SHA-256 is stored; it works once, for 15 minutes.

use crate::api::ApiState;
use crate::api::auth::Caller;
use crate::api::error::{ApiError, ErrorBody};
use actix_web::{HttpResponse, web};
use serde::Serialize;
use std::time::Duration;
use utoipa::ToSchema;

/// How long a link code stays valid.
pub const LINK_CODE_TTL: Duration = Duration::from_secs(15 * 60);

/// The routes of this module.
pub fn routes(config: &mut web::ServiceConfig) {
    config.route("/telegram/links", web::post().to(create_link));
}

/// A fresh link code.
#[derive(Debug, Serialize, ToSchema)]
pub struct LinkCode {
    /// The one-time code (shown once).
    pub code: String,
    /// What to send to the bot: `/start <code>`.
    pub command: String,
    /// Seconds the code stays valid.
    pub expires_in_secs: u64,
}

/// Makes a one-time code that links the Telegram chat it is sent from to the caller.
#[utoipa::path(post, path = "/api/v1/telegram/links", tag = "telegram",
    responses((status = 201, body = LinkCode), (status = 401, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn create_link(
    state: web::Data<ApiState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    let code = artel_actors::store::secrets::random_token()[..20].to_owned();
    state
        .store
        .create_telegram_link_code(caller.user(), &code, LINK_CODE_TTL)
        .await?;
    Ok(HttpResponse::Created().json(LinkCode {
        command: format!("/start {code}"),
        code,
        expires_in_secs: LINK_CODE_TTL.as_secs(),
    }))
}
