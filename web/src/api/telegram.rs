//! Linking a Telegram chat to the caller: a one-time code the user sends to the bot as
//! `/start <code>`. Only the code's SHA-256 is stored; it works once, for 15 minutes.

use crate::api::ApiState;
use crate::api::auth::Caller;
use crate::api::error::{ApiError, ErrorBody};
use actix_web::{HttpResponse, web};
use artel_messages::SecretValue;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use utoipa::ToSchema;

/// How long a link code stays valid.
pub const LINK_CODE_TTL: Duration = Duration::from_secs(15 * 60);

/// The routes of this module.
pub fn routes(config: &mut web::ServiceConfig) {
    config
        .route("/telegram/links", web::post().to(create_link))
        .route("/telegram/bots", web::post().to(register_bot))
        .route("/telegram/bots", web::get().to(list_bots));
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

/// A bot for the pool of generated services.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewBot {
    /// Its token from @BotFather; checked with `getMe`, stored encrypted, never shown again.
    pub token: String,
}

/// A bot of the pool.
#[derive(Debug, Serialize, ToSchema)]
pub struct BotDto {
    /// Its Telegram id.
    pub bot_id: i64,
    /// Its @username.
    pub username: String,
    /// The project it serves, when allocated.
    pub project: Option<String>,
}

impl From<artel_actors::store::PooledBot> for BotDto {
    fn from(bot: artel_actors::store::PooledBot) -> Self {
        Self {
            bot_id: bot.bot_id,
            username: bot.username,
            project: bot.project.map(|p| p.to_string()),
        }
    }
}

/// Adds a bot to the pool that deploys needing `TELEGRAM_BOT_TOKEN` take from (operators).
#[utoipa::path(post, path = "/api/v1/telegram/bots", tag = "telegram", request_body = NewBot,
    responses((status = 201, body = BotDto), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn register_bot(
    state: web::Data<ApiState>,
    caller: Caller,
    body: web::Json<NewBot>,
) -> Result<HttpResponse, ApiError> {
    caller.require_operator("registering bots")?;
    let token = SecretValue::new(body.token.trim());
    if crate::gateways::telegram::client::bot_id(token.expose()).is_none() {
        return Err(ApiError::validation(
            "`token` is not a bot token (`<id>:<secret>` from @BotFather)",
        ));
    }
    let (bot_id, username) =
        crate::gateways::telegram::pool::check_token(&state.telegram_api_url, &token).await?;
    let bot = state
        .store
        .register_telegram_bot(bot_id, &username, &token)
        .await?;
    Ok(HttpResponse::Created().json(BotDto::from(bot)))
}

/// The pool of bots (operators).
#[utoipa::path(get, path = "/api/v1/telegram/bots", tag = "telegram",
    responses((status = 200, body = crate::api::Items<BotDto>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list_bots(
    state: web::Data<ApiState>,
    caller: Caller,
) -> Result<web::Json<crate::api::Items<BotDto>>, ApiError> {
    caller.require_operator("listing bots")?;
    let bots = state.store.telegram_bots().await?;
    Ok(web::Json(crate::api::Items::new(
        bots.into_iter().map(BotDto::from).collect(),
    )))
}
