//! The webhook route, `POST /telegram/webhook`: Telegram posts each update here when
//! `telegram.webhook_url` is set (instead of long polling).
//!
//! It checks `X-Telegram-Bot-Api-Secret-Token` in constant time (401 otherwise), journals the
//! update as Telegram sent it and answers 200 at once; the lease holder's chat workers handle
//! it. Any artel process behind the URL may receive it. A failure to journal answers 500, so
//! Telegram delivers the update again.

use super::Telegram;
use crate::gateways::http::HttpState;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// The header Telegram carries the webhook secret in.
pub const SECRET_HEADER: &str = "X-Telegram-Bot-Api-Secret-Token";

/// The routes of this module.
pub fn routes(config: &mut web::ServiceConfig) {
    config.route("/telegram/webhook", web::post().to(receive));
}

/// Equal without telling, by its timing, how much of `given` matched (both sides are hashed
/// first, so not even the length shows).
pub fn secrets_match(given: &[u8], expected: &[u8]) -> bool {
    let (a, b) = (Sha256::digest(given), Sha256::digest(expected));
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

fn answer(status: actix_web::http::StatusCode, message: &str) -> HttpResponse {
    HttpResponse::build(status).json(json!({ "ok": status.is_success(), "description": message }))
}

async fn receive(req: HttpRequest, body: web::Bytes, state: web::Data<HttpState>) -> HttpResponse {
    use actix_web::http::StatusCode;
    let Some(telegram) = state.telegram.as_ref() else {
        return answer(
            StatusCode::NOT_FOUND,
            "no Telegram webhook is configured here",
        );
    };
    let Some(secret) = telegram.inner.settings.webhook_secret.as_ref() else {
        return answer(
            StatusCode::NOT_FOUND,
            "no Telegram webhook is configured here",
        );
    };
    let given = req
        .headers()
        .get(SECRET_HEADER)
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    if !secrets_match(given, secret.expose().as_bytes()) {
        return answer(StatusCode::UNAUTHORIZED, "wrong or missing secret token");
    }
    let Ok(update) = serde_json::from_slice::<Value>(&body) else {
        return answer(StatusCode::BAD_REQUEST, "the body is not a JSON update");
    };
    let Some(update_id) = update["update_id"].as_i64() else {
        return answer(StatusCode::BAD_REQUEST, "the update has no update_id");
    };
    journal(telegram, update_id, update).await
}

async fn journal(telegram: &Telegram, update_id: i64, update: Value) -> HttpResponse {
    match telegram
        .store()
        .journal_telegram_updates(telegram.bot_id(), &[(update_id, update)])
        .await
    {
        Ok(()) => {
            telegram.inner.updates.notify_one();
            HttpResponse::Ok().json(json!({ "ok": true }))
        }
        Err(err) => {
            tracing::warn!(update_id, %err, "cannot journal a webhook update; Telegram retries");
            answer(
                actix_web::http::StatusCode::INTERNAL_SERVER_ERROR,
                "cannot journal the update now",
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::secrets_match;

    #[test]
    fn secrets_match_only_when_equal() {
        assert!(secrets_match(b"s3cret", b"s3cret"));
        assert!(!secrets_match(b"s3cre", b"s3cret"));
        assert!(!secrets_match(b"", b"s3cret"));
    }
}
