//! The Bot API client (teloxide-core) and its error classes.
//!
//! teloxide-core's own HTTP client gives up after 17 s, which would cut a 25 s `getUpdates`
//! long poll, and it ignores the payload's timeout hint; so the client is built here with a
//! timeout 15 s above the poll's. teloxide-core maps Telegram's errors by their description
//! text (the loopback peer in the tests answers with Telegram's exact descriptions) and sleeps
//! 10 s itself after a 5xx, before answering.

use artel_messages::{Classify, ErrorClass, Failure};
use std::time::Duration;
use teloxide_core::{ApiError, Bot, RequestError};

/// A Bot API call failed.
#[derive(Debug, thiserror::Error)]
pub enum TelegramError {
    /// Telegram asks to wait before sending again (429).
    #[error("Telegram asks to wait {0:?} (429 Too Many Requests)")]
    RetryAfter(Duration),
    /// Another process polls the same token (409).
    #[error("another process polls this bot token (409 Conflict); only one poller may run")]
    Conflict,
    /// The token is wrong or revoked (401).
    #[error("Telegram does not accept the bot token (401); check ARTEL_TELEGRAM__TOKEN")]
    InvalidToken,
    /// Telegram refused this request (a chat that blocked the bot, a bad message).
    #[error("Telegram refused the request: {0}")]
    Refused(String),
    /// Telegram could not be reached.
    #[error("cannot reach the Telegram Bot API: {0}")]
    Unreachable(String),
    /// The server said ok, but its result does not read as the Bot API documents it (a
    /// server speaking an older or partial protocol). Holds the raw answer.
    #[error("the Bot API server's answer does not read as documented: {0}")]
    Unreadable(String),
}

impl From<RequestError> for TelegramError {
    fn from(err: RequestError) -> Self {
        match err {
            RequestError::RetryAfter(wait) => Self::RetryAfter(wait.duration()),
            RequestError::Api(ApiError::TerminatedByOtherGetUpdates) => Self::Conflict,
            RequestError::Api(ApiError::InvalidToken) => Self::InvalidToken,
            // teloxide keeps only the description of an error it does not know; a server
            // error (5xx) says so in it, and is worth another try.
            RequestError::Api(ApiError::Unknown(text)) if is_server_error(&text) => {
                Self::Unreachable(text)
            }
            RequestError::Api(api) => Self::Refused(api.to_string()),
            RequestError::InvalidJson { raw, .. } => Self::Unreadable(raw.into()),
            RequestError::MigrateToChatId(chat) => {
                Self::Refused(format!("the group moved to supergroup {chat}"))
            }
            other => Self::Unreachable(other.to_string()),
        }
    }
}

impl Classify for TelegramError {
    fn class(&self) -> ErrorClass {
        match self {
            Self::InvalidToken | Self::Refused(_) => ErrorClass::Fatal,
            Self::RetryAfter(_) | Self::Conflict | Self::Unreachable(_) | Self::Unreadable(_) => {
                ErrorClass::Retryable
            }
        }
    }
}

impl TelegramError {
    /// For a call the server accepted but whose answer teloxide cannot read: the `ok` flag
    /// and, for a sent message, its id (`result.message_id`).
    pub fn accepted(&self) -> Option<Option<i64>> {
        let Self::Unreadable(raw) = self else {
            return None;
        };
        let answer: serde_json::Value = serde_json::from_str(raw).ok()?;
        (answer["ok"] == serde_json::Value::Bool(true))
            .then(|| answer["result"]["message_id"].as_i64())
    }

    /// True when Telegram says the edit changed nothing: the message already shows it.
    pub fn is_not_modified(err: &RequestError) -> bool {
        matches!(err, RequestError::Api(ApiError::MessageNotModified))
    }
}

/// Descriptions Telegram (and the proxies before it) give with a 5xx status.
fn is_server_error(description: &str) -> bool {
    const SERVER_ERRORS: &[&str] = &[
        "Internal Server Error",
        "Bad Gateway",
        "Service Unavailable",
        "Gateway Timeout",
    ];
    SERVER_ERRORS.iter().any(|e| description.contains(e))
}

/// The bot id a token belongs to (the digits before its colon).
pub fn bot_id(token: &str) -> Option<i64> {
    token.split_once(':')?.0.parse().ok().filter(|id| *id > 0)
}

/// A client for `token` at the Bot API server `api_url`, patient enough for a long poll of
/// `poll_timeout`.
pub fn bot(token: &str, api_url: &str, poll_timeout: Duration) -> Result<Bot, Failure> {
    let url = reqwest::Url::parse(api_url)
        .map_err(|e| Failure::fatal(format!("telegram.api_url `{api_url}` is not a URL: {e}")))?;
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(poll_timeout + Duration::from_secs(15))
        .build()
        .map_err(|e| Failure::fatal(format!("cannot build the Telegram HTTP client: {e}")))?;
    Ok(Bot::with_client(token, client).set_api_url(url))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bot_id_is_the_token_prefix() {
        assert_eq!(bot_id("123456:AAE-x"), Some(123456));
        assert_eq!(bot_id("nope"), None);
        assert_eq!(bot_id("-1:x"), None);
    }

    #[test]
    fn errors_are_classified() {
        let conflict: TelegramError =
            RequestError::Api(ApiError::TerminatedByOtherGetUpdates).into();
        assert_eq!(conflict.class(), ErrorClass::Retryable);
        let token: TelegramError = RequestError::Api(ApiError::InvalidToken).into();
        assert_eq!(token.class(), ErrorClass::Fatal);
        let outage: TelegramError =
            RequestError::Api(ApiError::Unknown("Bad Gateway".into())).into();
        assert_eq!(outage.class(), ErrorClass::Retryable);
        let blocked: TelegramError = RequestError::Api(ApiError::Unknown(
            "Forbidden: bot was blocked by the user".into(),
        ))
        .into();
        assert_eq!(blocked.class(), ErrorClass::Fatal);
        let wait: TelegramError =
            RequestError::RetryAfter(teloxide_core::types::Seconds::from_seconds(3)).into();
        assert!(matches!(wait, TelegramError::RetryAfter(d) if d == Duration::from_secs(3)));
    }
}
