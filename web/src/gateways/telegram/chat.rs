//! One update at a time, in order: who the chat is, and what its line means.
//!
//! - **Linking.** A chat is served once linked to an artel user: a Telegram user id in
//!   `telegram.allowed_users` links at the first message (the user is created), anyone else
//!   links with `/start <code>` and a one-time code from `POST /api/v1/telegram/links`.
//!   Everyone else gets one polite refusal and nothing more.
//! - **In order, per chat.** Each chat's journaled updates are handled in order by the
//!   chat's own actor ([`super::chats`]); chats do not wait for each other.
//! - **Lines** go to the chat's session through [`Sessions::say_from`], keyed by the update,
//!   so an update handled again after a crash is said once. Commands become the words the
//!   ProductOwner understands (`/status` → "status").
//! - **Secrets** (`NAME=value`) are taken in a private chat only; the message holding the
//!   value is deleted once the value is stored (the transcript has it redacted).
//! - **Buttons.** A press carries a question's nonce: answered once, told "this question has
//!   expired" when stale, and the question's message is edited to show the decision.
//!
//! [`Sessions::say_from`]: artel_actors::sessions::Sessions::say_from

use super::Telegram;
use super::delivery;
use super::html::escape;
use artel_actors::intent;
use artel_actors::store::TelegramChat;
use artel_messages::Classify as _;
use artel_messages::product_owner::Intent;
use artel_messages::{ErrorClass, Failure, SessionChannel, SessionStatus, TaskStatus};
use teloxide_core::payloads::{AnswerCallbackQuerySetters as _, EditMessageTextSetters as _};
use teloxide_core::prelude::Requester as _;
use teloxide_core::types::{
    CallbackQuery, ChatId, Message, MessageId, ParseMode, Update, UpdateKind, User,
};

/// What a stale button press is told.
pub const EXPIRED: &str = "this question has expired";

const HELP: &str = "I build and run small web services. Tell me what you need, e.g. \
\"make me a URL shortener with an API\", or use /new, /status, /projects, /deploy <project>, \
/cancel. When a deploy needs a secret, send it here as NAME=value: I store it encrypted and \
delete your message.";

const REFUSAL: &str = "Sorry, I only work for people an artel operator has let in. If you \
have a link code, send /start <code>.";

/// Handles one chat's updates in order, marking each handled; stops at one that must wait,
/// and when this process no longer holds the poller lease. Answers whether all were handled.
pub(super) async fn handle_in_order(
    telegram: &Telegram,
    updates: Vec<(i64, serde_json::Value)>,
) -> Result<bool, Failure> {
    for (update_id, payload) in updates {
        if !telegram.leased() {
            return Ok(false);
        }
        match handle(telegram, update_id, payload).await {
            Ok(()) => {}
            // Left unhandled: tried again on the next round, in order.
            Err(failure) if failure.class == ErrorClass::Retryable => {
                tracing::warn!(update_id, %failure, "Telegram update left for later");
                return Ok(false);
            }
            Err(failure) => {
                tracing::warn!(update_id, %failure, "Telegram update could not be handled")
            }
        }
        telegram
            .store()
            .mark_telegram_update_handled(telegram.bot_id(), update_id)
            .await
            .map_err(|e| e.to_failure())?;
    }
    Ok(true)
}

/// A journaled update, read back. From text, not from a `Value`: teloxide's `UpdateKind`
/// reads its key as a borrowed `&str`, which a `Value` cannot lend, and would then take
/// every update for an unknown kind.
pub fn read_update(payload: &serde_json::Value) -> Result<Update, serde_json::Error> {
    serde_json::from_str(&payload.to_string())
}

/// An update as journaled: `{"update_id", "<kind>": …}`, as Telegram sent it. (teloxide's
/// own `Serialize` for `Update` drops the kind.)
pub fn journal_form(update: &Update) -> Result<serde_json::Value, serde_json::Error> {
    let mut value = serde_json::to_value(&update.kind)?;
    if let Some(object) = value.as_object_mut() {
        object.insert("update_id".into(), serde_json::json!(update.id.0));
    }
    Ok(value)
}

async fn handle(
    telegram: &Telegram,
    update_id: i64,
    payload: serde_json::Value,
) -> Result<(), Failure> {
    let update = read_update(&payload)
        .map_err(|e| Failure::fatal(format!("a journaled update does not parse: {e}")))?;
    let source = format!("telegram:{}:{update_id}", telegram.bot_id());
    match update.kind {
        UpdateKind::Message(message) => on_message(telegram, &message, &source).await,
        UpdateKind::CallbackQuery(query) => on_button(telegram, &query, &source).await,
        _ => Ok(()),
    }
}

/// Replies in `chat` with plain text, outside the transcript (refusals, help).
async fn reply(telegram: &Telegram, chat: i64, text: &str) -> Result<(), Failure> {
    delivery::send_text(telegram, chat, text)
        .await
        .map(|_| ())
        .or_else(|err| match err.class() {
            ErrorClass::Fatal => {
                tracing::warn!(chat, %err, "Telegram refused a reply");
                Ok(())
            }
            ErrorClass::Retryable => Err(err.to_failure()),
        })
}

fn display_name(user: &User) -> String {
    let name = user.full_name();
    let name = name.trim();
    if name.is_empty() {
        format!("telegram-{}", user.id.0)
    } else {
        name.chars().take(200).collect()
    }
}

async fn on_message(telegram: &Telegram, message: &Message, source: &str) -> Result<(), Failure> {
    let chat_id = message.chat.id.0;
    let private = message.chat.is_private();
    let Some(from) = message.from.as_ref() else {
        return Ok(());
    };
    if !private && !telegram.inner.settings.groups {
        return reply(
            telegram,
            chat_id,
            "I work in private chats only: write to me directly.",
        )
        .await;
    }
    let Some(text) = message.text().map(str::trim) else {
        return reply(telegram, chat_id, "I read text messages only.").await;
    };
    let (command, rest) = command(text);
    let store = telegram.store();
    let telegram_id = i64::try_from(from.id.0).unwrap_or(i64::MAX);
    let mut linked = store
        .telegram_chat(telegram.bot_id(), chat_id)
        .await
        .map_err(|e| e.to_failure())?;
    if command == Some("start") && !rest.is_empty() {
        let Some(user) = store
            .redeem_telegram_link_code(rest, telegram_id)
            .await
            .map_err(|e| e.to_failure())?
        else {
            return reply(
                telegram,
                chat_id,
                "That link code is unknown, used or expired. Ask for a new one \
                 (POST /api/v1/telegram/links) and send /start <code> again.",
            )
            .await;
        };
        link(telegram, chat_id, private, user).await?;
        return reply(
            telegram,
            chat_id,
            &format!("Linked: this chat now speaks for your artel account. {HELP}"),
        )
        .await;
    }
    if linked.is_none() {
        let known = match telegram.inner.settings.allowed_users.contains(&telegram_id) {
            true => Some(
                store
                    .ensure_telegram_user(telegram_id, &display_name(from))
                    .await
                    .map_err(|e| e.to_failure())?
                    .id,
            ),
            false if private => store
                .telegram_user(telegram_id)
                .await
                .map_err(|e| e.to_failure())?,
            false => None,
        };
        let Some(user) = known else {
            return reply(telegram, chat_id, REFUSAL).await;
        };
        linked = Some(link(telegram, chat_id, private, user).await?);
    }
    let Some(mut chat) = linked else {
        return reply(telegram, chat_id, REFUSAL).await;
    };
    let session = store
        .session(chat.session)
        .await
        .map_err(|e| e.to_failure())?;
    if session.is_none_or(|s| s.status == SessionStatus::Closed) {
        chat = link(telegram, chat_id, private, chat.user).await?;
    }
    let line = match command {
        Some("start") | Some("help") => return reply(telegram, chat_id, HELP).await,
        Some("new") if rest.is_empty() => {
            return reply(
                telegram,
                chat_id,
                "Tell me what to build: /new a URL shortener with an API",
            )
            .await;
        }
        Some("new") => rest.to_owned(),
        Some("status") => "status".to_owned(),
        Some("projects") => "my projects".to_owned(),
        Some("deploy") if rest.is_empty() => "deploy it".to_owned(),
        Some("deploy") => format!("deploy {rest}"),
        Some("cancel") => "cancel".to_owned(),
        Some(other) => {
            return reply(telegram, chat_id, &format!("I don't know /{other}. {HELP}")).await;
        }
        None => text.to_owned(),
    };
    let secret = matches!(intent::parse(&line), Intent::ProvideSecret { .. });
    if secret && !chat.private {
        delete(telegram, chat_id, message.id).await;
        return reply(
            telegram,
            chat_id,
            "Secrets go only in a private chat with me: I deleted that message. Send it to \
             me directly.",
        )
        .await;
    }
    // A typed answer answers the open questions too: their buttons go stale.
    for question in store
        .close_telegram_questions(telegram.bot_id(), chat_id, "answered in words")
        .await
        .map_err(|e| e.to_failure())?
    {
        if let Some(message_id) = question.message_id {
            edit_decision(
                telegram,
                chat_id,
                message_id,
                &question.text,
                "answered in words",
            )
            .await;
        }
    }
    telegram
        .inner
        .sessions
        .say_from(chat.session, &line, Some(source))
        .await
        .map(|_| ())
        .or_else(|failure| match failure.class {
            ErrorClass::Retryable => Err(failure),
            ErrorClass::Fatal => {
                tracing::warn!(%failure, "the session refused a line");
                Ok(())
            }
        })?;
    if secret {
        delete(telegram, chat_id, message.id).await;
    }
    Ok(())
}

/// Links `chat_id` to `user` with a fresh telegram session.
async fn link(
    telegram: &Telegram,
    chat_id: i64,
    private: bool,
    user: artel_messages::UserId,
) -> Result<TelegramChat, Failure> {
    let session = telegram
        .inner
        .sessions
        .open(user, SessionChannel::Telegram)
        .await?;
    let chat = TelegramChat {
        chat_id,
        private,
        user,
        session: session.id,
    };
    telegram
        .store()
        .link_telegram_chat(telegram.bot_id(), &chat)
        .await
        .map_err(|e| e.to_failure())?;
    Ok(chat)
}

/// `/name rest` (also `/name@bot rest`) → (`Some(name)`, `rest`); other text → (`None`, text).
fn command(text: &str) -> (Option<&str>, &str) {
    let Some(body) = text.strip_prefix('/') else {
        return (None, text);
    };
    let (head, rest) = body.split_once(char::is_whitespace).unwrap_or((body, ""));
    let name = head.split('@').next().unwrap_or(head);
    (Some(name), rest.trim())
}

async fn delete(telegram: &Telegram, chat_id: i64, message: MessageId) {
    if let Err(err) = telegram
        .bot()
        .delete_message(ChatId(chat_id), message)
        .await
    {
        tracing::warn!(chat_id, %err, "cannot delete the message holding a secret");
    }
}

/// Edits a question's message to show the decision, without its buttons.
async fn edit_decision(
    telegram: &Telegram,
    chat_id: i64,
    message_id: i64,
    text: &str,
    decision: &str,
) {
    let html = format!("{}\n\n<i>— {}</i>", escape(text), escape(decision));
    let message = MessageId(i32::try_from(message_id).unwrap_or(i32::MAX));
    if let Err(err) = telegram
        .bot()
        .edit_message_text(ChatId(chat_id), message, html)
        .parse_mode(ParseMode::Html)
        .await
        && !super::client::TelegramError::is_not_modified(&err)
    {
        tracing::warn!(chat_id, %err, "cannot edit a question's message");
    }
}

async fn on_button(
    telegram: &Telegram,
    query: &CallbackQuery,
    source: &str,
) -> Result<(), Failure> {
    let answer = |text: &'static str| {
        let id = query.id.clone();
        async move {
            if let Err(err) = telegram.bot().answer_callback_query(id).text(text).await {
                tracing::warn!(%err, "cannot answer a button press");
            }
        }
    };
    let parsed = query.data.as_deref().and_then(delivery::parse_callback);
    let chat_id = query.message.as_ref().map(|m| m.chat().id.0);
    let (Some((nonce, choice)), Some(chat_id)) = (parsed, chat_id) else {
        answer(EXPIRED).await;
        return Ok(());
    };
    let store = telegram.store();
    let question = store
        .telegram_question(telegram.bot_id(), chat_id, nonce)
        .await
        .map_err(|e| e.to_failure())?;
    let Some(question) = question.filter(|q| q.answer.is_none()) else {
        answer(EXPIRED).await;
        return Ok(());
    };
    let waiting = match question.task {
        Some(task) => store
            .task(task)
            .await
            .map_err(|e| e.to_failure())?
            .is_some_and(|t| t.status == TaskStatus::NeedsHuman),
        None => true,
    };
    let chat = store
        .telegram_chat(telegram.bot_id(), chat_id)
        .await
        .map_err(|e| e.to_failure())?;
    let Some(chat) = chat.filter(|_| waiting) else {
        answer(EXPIRED).await;
        return Ok(());
    };
    answer("Got it").await;
    telegram
        .inner
        .sessions
        .say_from(chat.session, choice.words(), Some(source))
        .await?;
    if store
        .answer_telegram_question(nonce, choice.words())
        .await
        .map_err(|e| e.to_failure())?
        .is_some()
        && let Some(message_id) = question.message_id
    {
        let decision = format!("you chose: {}", delivery::label(&question.text, choice));
        edit_decision(telegram, chat_id, message_id, &question.text, &decision).await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::command;

    #[test]
    fn commands_are_split_from_their_arguments() {
        assert_eq!(command("/start abc123"), (Some("start"), "abc123"));
        assert_eq!(command("/status@artel_bot"), (Some("status"), ""));
        assert_eq!(
            command("/new  a URL shortener "),
            (Some("new"), "a URL shortener")
        );
        assert_eq!(command("make me a blog"), (None, "make me a blog"));
    }
}

#[cfg(test)]
mod roundtrip {
    use teloxide_core::types::{Update, UpdateKind};

    #[test]
    fn a_journaled_update_reads_back_as_received() {
        let raw = serde_json::json!({"update_id": 7, "message": {
            "message_id": 5, "date": 1_700_000_000,
            "chat": {"id": 1001, "type": "private", "first_name": "Ann"},
            "from": {"id": 1001, "is_bot": false, "first_name": "Ann"},
            "text": "make me a blog"}});
        let update: Update = super::read_update(&raw).unwrap();
        let journaled = super::journal_form(&update).unwrap();
        let back: Update = super::read_update(&journaled).unwrap();
        let UpdateKind::Message(message) = back.kind else {
            panic!("not a message: {journaled}");
        };
        assert_eq!(
            message.from.as_ref().map(|u| u.id.0),
            Some(1001),
            "{journaled}"
        );
        assert_eq!(message.text(), Some("make me a blog"));
    }
}
