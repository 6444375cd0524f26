//! The poller: one per bot token across every artel process, holding the lease.
//!
//! Each round renews the lease, asks `getUpdates` for what comes after the newest journaled
//! update (which confirms everything before it to Telegram), and journals what it gets before
//! the next round can move the offset past it. Without the lease it stands by and tries
//! again; when Telegram cannot be reached it backs off (1 s doubling to 60 s) and the
//! `telegram` readiness check says why.

use super::client::TelegramError;
use super::{LEASE, Telegram};
use artel_messages::Classify as _;
use artel_messages::Failure;
use std::sync::atomic::Ordering;
use std::time::Duration;
use teloxide_core::payloads::{GetUpdatesSetters as _, SetWebhookSetters as _};
use teloxide_core::prelude::Requester as _;
use teloxide_core::types::{AllowedUpdate, BotCommand};

/// How long a process without the lease waits before asking again.
const STANDBY: Duration = Duration::from_secs(3);
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// The least time one round takes (a server answering `getUpdates` at once is not hammered).
const MIN_ROUND: Duration = Duration::from_millis(100);
/// How often a webhook holder renews its lease.
const WEBHOOK_RENEW: Duration = Duration::from_secs(20);

/// The commands the bot lists in Telegram's menu.
pub fn commands() -> Vec<BotCommand> {
    vec![
        BotCommand::new("new", "start a new service: /new a URL shortener"),
        BotCommand::new("status", "how your tasks are doing"),
        BotCommand::new("projects", "your projects and where they run"),
        BotCommand::new("deploy", "deploy a project again: /deploy <project>"),
        BotCommand::new("cancel", "cancel what is running"),
        BotCommand::new("help", "what I can do"),
    ]
}

/// Polls until the process stops; returns only on a store failure.
pub async fn run(telegram: Telegram) -> Result<(), Failure> {
    let mut backoff = Duration::from_secs(1);
    let mut connected = false;
    loop {
        let store = telegram.store();
        let leased = store
            .lease_telegram_poller(telegram.bot_id(), &telegram.inner.owner, LEASE)
            .await
            .map_err(|e| e.to_failure())?;
        telegram.inner.leased.store(leased, Ordering::SeqCst);
        if !leased {
            connected = false;
            telegram.inner.health.set(Ok(()));
            tokio::time::sleep(STANDBY).await;
            continue;
        }
        // Wake the chats: updates journaled by an earlier holder may wait.
        telegram.inner.updates.notify_one();
        let round = async {
            if !connected {
                connect(&telegram).await?;
                connected = true;
            }
            match &telegram.inner.settings.webhook_url {
                // Telegram posts the updates; the lease is renewed meanwhile.
                Some(_) => {
                    tokio::time::sleep(WEBHOOK_RENEW).await;
                    Ok(())
                }
                None => poll_once(&telegram).await,
            }
        };
        let began = std::time::Instant::now();
        match round.await {
            Ok(()) => {
                // A server that does not hold the long poll would make this loop spin.
                if let Some(rest) = MIN_ROUND.checked_sub(began.elapsed()) {
                    tokio::time::sleep(rest).await;
                }
                backoff = Duration::from_secs(1);
                telegram.inner.health.set(Ok(()));
            }
            Err(Round::Store(failure)) => return Err(failure),
            Err(Round::Telegram(err)) => {
                tracing::warn!(%err, retry_in = ?backoff, "Telegram poll failed");
                telegram.inner.health.set(Err(err.to_string()));
                let wait = match err {
                    TelegramError::RetryAfter(wait) => wait,
                    _ => backoff,
                };
                if !matches!(err, TelegramError::RetryAfter(_)) {
                    connected = false;
                }
                tokio::time::sleep(wait).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

enum Round {
    Store(Failure),
    Telegram(TelegramError),
}

impl From<TelegramError> for Round {
    fn from(err: TelegramError) -> Self {
        Self::Telegram(err)
    }
}

/// Checks the token (`getMe`: its id must be the token's) and registers the commands.
async fn connect(telegram: &Telegram) -> Result<(), Round> {
    match telegram.bot().get_me().await.map_err(TelegramError::from) {
        Ok(me) => {
            let id = i64::try_from(me.id.0).unwrap_or(-1);
            if id != telegram.bot_id() {
                return Err(Round::Telegram(TelegramError::Refused(format!(
                    "getMe says the token belongs to bot {id}, not {}",
                    telegram.bot_id()
                ))));
            }
            tracing::info!(bot = id, username = ?me.username, "connected to the Telegram Bot API");
        }
        // A server that answers getMe without every documented field still serves updates.
        Err(err) if err.accepted().is_some() => {
            tracing::warn!(%err, "getMe's answer is partial; going on");
        }
        Err(err) => return Err(err.into()),
    }
    register_webhook(telegram).await?;
    // The command menu is a convenience: a server that refuses it does not stop the bot.
    if let Err(err) = telegram.bot().set_my_commands(commands()).await {
        tracing::warn!(%err, "cannot register the bot's commands");
    }
    Ok(())
}

/// Points Telegram at the webhook (`setWebhook` with the secret), or removes a webhook an
/// earlier configuration left (`deleteWebhook`), since Telegram refuses `getUpdates` while
/// one is set.
async fn register_webhook(telegram: &Telegram) -> Result<(), Round> {
    let settings = &telegram.inner.settings;
    let Some(url) = &settings.webhook_url else {
        // Best effort: if a webhook is still set, getUpdates will say so.
        if let Err(err) = telegram.bot().delete_webhook().await {
            tracing::debug!(%err, "deleteWebhook before polling did not succeed");
        }
        return Ok(());
    };
    let url = reqwest::Url::parse(url).map_err(|e| {
        Round::Telegram(TelegramError::Refused(format!(
            "telegram.webhook_url is not a URL: {e}"
        )))
    })?;
    let mut request = telegram
        .bot()
        .set_webhook(url)
        .allowed_updates(vec![AllowedUpdate::Message, AllowedUpdate::CallbackQuery]);
    if let Some(secret) = &settings.webhook_secret {
        request = request.secret_token(secret.expose());
    }
    match request.await.map_err(TelegramError::from) {
        Ok(_) => Ok(()),
        Err(err) if err.accepted().is_some() => Ok(()),
        Err(err) => Err(err.into()),
    }
}

/// One long poll: the updates after the newest journaled one, journaled.
async fn poll_once(telegram: &Telegram) -> Result<(), Round> {
    let store = telegram.store();
    let last = store
        .last_telegram_update(telegram.bot_id())
        .await
        .map_err(|e| Round::Store(e.to_failure()))?;
    let offset = last.map_or(0, |id| id.saturating_add(1));
    let offset = i32::try_from(offset).unwrap_or(i32::MAX);
    let updates = telegram
        .bot()
        .get_updates()
        .offset(offset)
        .timeout(telegram.inner.settings.poll_timeout_secs)
        .allowed_updates(vec![AllowedUpdate::Message, AllowedUpdate::CallbackQuery])
        .await
        .map_err(TelegramError::from)?;
    if updates.is_empty() {
        return Ok(());
    }
    let mut journal = Vec::with_capacity(updates.len());
    for update in &updates {
        let payload = super::chat::journal_form(update).map_err(|e| {
            Round::Store(Failure::fatal(format!(
                "cannot journal Telegram update {}: {e}",
                update.id.0
            )))
        })?;
        journal.push((i64::from(update.id.0), payload));
    }
    store
        .journal_telegram_updates(telegram.bot_id(), &journal)
        .await
        .map_err(|e| Round::Store(e.to_failure()))?;
    telegram.inner.updates.notify_one();
    Ok(())
}
