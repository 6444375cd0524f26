//! What the ProductOwner says, delivered to each chat once, and each task's status message.
//!
//! Lines after a chat's cursor are sent in order (split past 4096 characters, HTML-escaped)
//! and the cursor moves after each. A line that reports a task waiting for the user is a
//! question: its nonce is journaled before it is sent, and it goes with an inline keyboard
//! whose first button is the affirmative answer. Each task of a chat has one status message,
//! sent when the task appears and edited in place as its steps advance — at most once every
//! 3 s — until the task ends; what it delivered ("… is live at …") is a new message, so the
//! user is notified.

use super::Telegram;
use super::client::TelegramError;
use super::html::split_escaped;
use super::progress;
use artel_actors::store::PendingLine;
use artel_messages::{EventBody, Failure};
use std::time::{Duration, Instant};
use teloxide_core::payloads::{EditMessageTextSetters as _, SendMessageSetters as _};
use teloxide_core::prelude::Requester as _;
use teloxide_core::types::{
    ChatId, InlineKeyboardButton, InlineKeyboardMarkup, MessageId, ParseMode,
};

/// Least time between two edits of one status message.
const EDIT_EVERY: f64 = 3.0;

/// An answer a button gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    /// The affirmative answer (build it, try again, yes).
    Yes,
    /// Stop.
    Cancel,
}

impl Choice {
    /// The words the ProductOwner understands for it.
    pub fn words(self) -> &'static str {
        match self {
            Self::Yes => "yes",
            Self::Cancel => "cancel",
        }
    }

    fn code(self) -> char {
        match self {
            Self::Yes => 'y',
            Self::Cancel => 'n',
        }
    }
}

/// The `callback_data` of a button: `q:<nonce>:<y|n>` (well under Telegram's 64 bytes).
pub fn callback_data(nonce: &str, choice: Choice) -> String {
    format!("q:{nonce}:{}", choice.code())
}

/// The nonce and choice a button's `callback_data` carries.
pub fn parse_callback(data: &str) -> Option<(&str, Choice)> {
    let rest = data.strip_prefix("q:")?;
    let (nonce, code) = rest.rsplit_once(':')?;
    let choice = match code {
        "y" => Choice::Yes,
        "n" => Choice::Cancel,
        _ => return None,
    };
    (!nonce.is_empty()).then_some((nonce, choice))
}

/// A button's label for the question `text`.
pub fn label(text: &str, choice: Choice) -> &'static str {
    match choice {
        Choice::Yes if text.contains("to build it") => "Yes, build it",
        Choice::Yes => "Yes, try again",
        Choice::Cancel => "Cancel",
    }
}

fn keyboard(text: &str, nonce: &str) -> InlineKeyboardMarkup {
    InlineKeyboardMarkup::new(vec![vec![
        InlineKeyboardButton::callback(label(text, Choice::Yes), callback_data(nonce, Choice::Yes)),
        InlineKeyboardButton::callback(
            label(text, Choice::Cancel),
            callback_data(nonce, Choice::Cancel),
        ),
    ]])
}

/// Sends HTML `html` to `chat` at the pace Telegram allows; a 429 pauses this chat and the
/// message goes after the wait. Answers the message's id (0 when the server accepted it but
/// did not say).
pub async fn send_html(
    telegram: &Telegram,
    chat: i64,
    html: &str,
    markup: Option<InlineKeyboardMarkup>,
) -> Result<i64, TelegramError> {
    loop {
        let at = telegram
            .inner
            .pace
            .lock()
            .await
            .reserve(chat, chat < 0, Instant::now());
        tokio::time::sleep_until(at.into()).await;
        let mut request = telegram
            .bot()
            .send_message(ChatId(chat), html)
            .parse_mode(ParseMode::Html);
        if let Some(markup) = markup.clone() {
            request = request.reply_markup(markup);
        }
        match request.await.map_err(TelegramError::from) {
            Err(TelegramError::RetryAfter(wait)) => {
                tracing::info!(chat, ?wait, "Telegram asks this chat's outbox to wait");
                telegram
                    .inner
                    .pace
                    .lock()
                    .await
                    .pause(chat, Instant::now() + wait);
            }
            Ok(message) => return Ok(i64::from(message.id.0)),
            Err(err) => match err.accepted() {
                Some(id) => return Ok(id.unwrap_or(0)),
                None => return Err(err),
            },
        }
    }
}

/// Sends plain `text` (escaped, split) to `chat`; answers the last message sent.
pub async fn send_text(telegram: &Telegram, chat: i64, text: &str) -> Result<i64, TelegramError> {
    send_parts(telegram, chat, text, None).await
}

async fn send_parts(
    telegram: &Telegram,
    chat: i64,
    text: &str,
    markup: Option<InlineKeyboardMarkup>,
) -> Result<i64, TelegramError> {
    let parts = split_escaped(text);
    let last = parts.len().saturating_sub(1);
    let mut sent = None;
    for (i, part) in parts.iter().enumerate() {
        let markup = if i == last { markup.clone() } else { None };
        sent = Some(send_html(telegram, chat, part, markup).await?);
    }
    sent.ok_or_else(|| TelegramError::Refused("nothing to send".into()))
}

/// Delivers until the process stops; returns only on a store failure.
pub async fn run(telegram: Telegram) -> Result<(), Failure> {
    let mut events = telegram.store().subscribe();
    loop {
        // Woken by news in the journal; the timeout catches edits that had to wait.
        let wait = tokio::time::timeout(Duration::from_secs(1), async {
            loop {
                match events.recv().await {
                    Ok(event) if worth_a_look(&event.body) => return,
                    Ok(_) => continue,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => return,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                        std::future::pending::<()>().await
                    }
                }
            }
        });
        let _ = wait.await;
        if !telegram.leased() {
            continue;
        }
        deliver_lines(&telegram).await?;
        update_progress(&telegram).await?;
    }
}

fn worth_a_look(body: &EventBody) -> bool {
    matches!(
        body,
        EventBody::SessionMessage { .. }
            | EventBody::TaskCreated { .. }
            | EventBody::TaskStatusChanged { .. }
            | EventBody::StepStarted { .. }
            | EventBody::StepSucceeded { .. }
            | EventBody::StepFailed { .. }
    )
}

/// Sends every pending ProductOwner line; a chat Telegram cannot reach now is skipped until
/// the next round, one that refuses a line (blocked the bot) moves past it.
async fn deliver_lines(telegram: &Telegram) -> Result<(), Failure> {
    let store = telegram.store();
    let pending = store
        .pending_telegram_lines(telegram.bot_id(), 100)
        .await
        .map_err(|e| e.to_failure())?;
    let mut stalled: Vec<i64> = Vec::new();
    for line in pending {
        if stalled.contains(&line.chat_id) {
            continue;
        }
        match deliver(telegram, &line).await? {
            Ok(()) => {}
            Err(err) if err.class() == artel_messages::ErrorClass::Retryable => {
                tracing::warn!(chat = line.chat_id, %err, "Telegram delivery waits");
                telegram.inner.health.set(Err(err.to_string()));
                stalled.push(line.chat_id);
                continue;
            }
            Err(err) => tracing::warn!(chat = line.chat_id, %err, "Telegram refused a line"),
        }
        store
            .mark_telegram_delivered(telegram.bot_id(), line.chat_id, line.line_id)
            .await
            .map_err(|e| e.to_failure())?;
    }
    Ok(())
}

use artel_messages::Classify as _;

async fn deliver(
    telegram: &Telegram,
    line: &PendingLine,
) -> Result<Result<(), TelegramError>, Failure> {
    let store = telegram.store();
    let Some(_task) = line.question else {
        return Ok(send_text(telegram, line.chat_id, &line.text)
            .await
            .map(|_| ()));
    };
    let nonce = artel_actors::store::secrets::random_token()[..16].to_owned();
    let question = store
        .telegram_question_for_line(telegram.bot_id(), line, &nonce, &line.text)
        .await
        .map_err(|e| e.to_failure())?;
    let markup = keyboard(&line.text, &question.nonce);
    match send_parts(telegram, line.chat_id, &line.text, Some(markup)).await {
        Ok(message) => {
            store
                .set_telegram_question_message(&question.nonce, message)
                .await
                .map_err(|e| e.to_failure())?;
            Ok(Ok(()))
        }
        Err(err) => Ok(Err(err)),
    }
}

/// Sends or edits each tracked task's status message.
async fn update_progress(telegram: &Telegram) -> Result<(), Failure> {
    let store = telegram.store();
    let tracked = store
        .telegram_tracked_tasks(telegram.bot_id())
        .await
        .map_err(|e| e.to_failure())?;
    for tracked in tracked {
        let Some(task) = store.task(tracked.task).await.map_err(|e| e.to_failure())? else {
            continue;
        };
        let steps = store.steps(task.id).await.map_err(|e| e.to_failure())?;
        let project = store
            .project_name(task.project)
            .await
            .map_err(|e| e.to_failure())?;
        let (text, done) = progress::render(&project, &task, &steps);
        let shown = match &tracked.message {
            None => send_html(telegram, tracked.chat_id, &text, None).await,
            Some((_, old)) if *old == text && !done => continue,
            Some(_) if tracked.since_edit < EDIT_EVERY => continue,
            Some((message_id, _)) => {
                let id = MessageId(i32::try_from(*message_id).unwrap_or(i32::MAX));
                match telegram
                    .bot()
                    .edit_message_text(ChatId(tracked.chat_id), id, text.as_str())
                    .parse_mode(ParseMode::Html)
                    .await
                {
                    Ok(_) => Ok(*message_id),
                    Err(err) if TelegramError::is_not_modified(&err) => Ok(*message_id),
                    Err(err) => match TelegramError::from(err) {
                        err if err.accepted().is_some() => Ok(*message_id),
                        err => Err(err),
                    },
                }
            }
        };
        match shown {
            Ok(message_id) => store
                .save_telegram_status(
                    telegram.bot_id(),
                    task.id,
                    tracked.chat_id,
                    message_id,
                    &text,
                    done,
                )
                .await
                .map_err(|e| e.to_failure())?,
            Err(err) => tracing::warn!(task = %task.id, %err, "cannot show the task's status"),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callback_data_round_trips_within_64_bytes() {
        let nonce = "0123456789abcdef";
        for choice in [Choice::Yes, Choice::Cancel] {
            let data = callback_data(nonce, choice);
            assert!(data.len() <= 64, "{data}");
            assert_eq!(parse_callback(&data), Some((nonce, choice)));
        }
        assert_eq!(parse_callback("q::y"), None);
        assert_eq!(parse_callback("q:abc:maybe"), None);
        assert_eq!(parse_callback("other"), None);
    }

    #[test]
    fn the_first_button_is_the_affirmative_answer() {
        let markup = keyboard("Say \"yes\" to build it", "n0nce000");
        let first = &markup.inline_keyboard[0][0];
        assert_eq!(first.text, "Yes, build it");
    }
}
