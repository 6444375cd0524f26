//! The pool of bots for generated services, as the Bot API sees it: a token is checked with
//! `getMe` before it joins the pool, and a released bot is reset (`deleteWebhook`, its
//! command menu emptied) so the next project starts clean.

use super::client::{self, TelegramError};
use artel_messages::{Failure, SecretValue};
use std::time::Duration;
use teloxide_core::prelude::Requester as _;

/// The bot `token` belongs to, as `getMe` answers: (id, username).
pub async fn check_token(api_url: &str, token: &SecretValue) -> Result<(i64, String), Failure> {
    let token = token.expose();
    let expected = client::bot_id(token)
        .ok_or_else(|| Failure::fatal("that is not a bot token (`<id>:<secret>`)"))?;
    let bot = client::bot(token, api_url, Duration::from_secs(5))?;
    let me = bot.get_me().await.map_err(|e| {
        let err = TelegramError::from(e);
        artel_messages::Classify::to_failure(&err)
    })?;
    let id = i64::try_from(me.id.0).unwrap_or(-1);
    if id != expected {
        return Err(Failure::fatal(format!(
            "getMe says the token belongs to bot {id}, not {expected}"
        )));
    }
    Ok((id, me.username.clone().unwrap_or_default()))
}

/// Resets a bot leaving a project: no webhook, no commands. Best effort: a bot Telegram cannot
/// reach now is free all the same, and reset again when the next project registers its own.
pub async fn reset(api_url: &str, bot_id: i64, token: &SecretValue) {
    let bot = match client::bot(token.expose(), api_url, Duration::from_secs(5)) {
        Ok(bot) => bot,
        Err(failure) => return tracing::warn!(bot_id, %failure, "cannot reset a pooled bot"),
    };
    if let Err(err) = bot.delete_webhook().await {
        tracing::warn!(bot_id, %err, "cannot delete a released bot's webhook");
    }
    if let Err(err) = bot.set_my_commands(Vec::new()).await {
        tracing::warn!(bot_id, %err, "cannot reset a released bot's commands");
    }
}
