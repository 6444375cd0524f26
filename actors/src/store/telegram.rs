//! The Telegram gateway's durable state: the update journal, chats and their delivery
//! cursors, one-time link codes, questions with their nonces, status messages and the poller
//! lease.
//!
//! The gateway keeps nothing that is not here, so a crash at any point resumes where it was:
//! an update is journaled before the poll offset moves past it and marked handled after its
//! effect is committed; a ProductOwner line is sent before the chat's cursor moves past it.

use super::rows::get;
use super::users::UserRecord;
use super::{Store, StoreError};
use artel_messages::{SessionId, TaskId, UserId};
use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::Row;
use std::time::Duration;

/// The chat a journaled update belongs to: a message's chat, or the chat of the message whose
/// button was pressed; 0 for updates of no chat.
const UPDATE_CHAT: &str = "COALESCE((payload #>> '{message,chat,id}')::bigint, \
     (payload #>> '{callback_query,message,chat,id}')::bigint, 0)";

/// A chat the gateway talks in, linked to an artel user and session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TelegramChat {
    /// The chat's Telegram id.
    pub chat_id: i64,
    /// A private chat (secrets may be given here only).
    pub private: bool,
    /// The artel user the chat speaks for.
    pub user: UserId,
    /// The chat's session with the ProductOwner.
    pub session: SessionId,
}

/// A ProductOwner line still to send to a chat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingLine {
    /// Where to send it.
    pub chat_id: i64,
    /// The transcript line.
    pub line_id: i64,
    /// What it says.
    pub text: String,
    /// The task this line asks the user about (the task waits for them), if it is a question.
    pub question: Option<TaskId>,
}

/// A question shown with an inline keyboard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TelegramQuestion {
    /// The nonce in the buttons' `callback_data`.
    pub nonce: String,
    /// The chat it was asked in.
    pub chat_id: i64,
    /// The task it is about.
    pub task: Option<TaskId>,
    /// What it asked (to edit the message with the decision).
    pub text: String,
    /// The message that shows it, once sent.
    pub message_id: Option<i64>,
    /// The answer, once given.
    pub answer: Option<String>,
}

/// A task whose status message may need a send or an edit.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackedTask {
    /// The task.
    pub task: TaskId,
    /// The chat its session is in.
    pub chat_id: i64,
    /// The status message, once sent, and the text it shows.
    pub message: Option<(i64, String)>,
    /// Seconds since the message was last edited.
    pub since_edit: f64,
}

fn question_from_row(row: &sqlx::postgres::PgRow) -> Result<TelegramQuestion, StoreError> {
    Ok(TelegramQuestion {
        nonce: get(row, "nonce")?,
        chat_id: get(row, "chat_id")?,
        task: get::<Option<uuid::Uuid>>(row, "task_id")?.map(TaskId::from_uuid),
        text: get(row, "text")?,
        message_id: get(row, "message_id")?,
        answer: get(row, "answer")?,
    })
}

const QUESTION_COLUMNS: &str = "nonce, chat_id, task_id, text, message_id, answer";

fn code_hash(code: &str) -> Vec<u8> {
    Sha256::digest(code.trim().as_bytes()).to_vec()
}

impl Store {
    /// Journals updates received from Telegram (an update already journaled is kept as it
    /// was). Call before moving the poll offset past them.
    #[tracing::instrument(skip(self, updates), fields(n = updates.len()))]
    pub async fn journal_telegram_updates(
        &self,
        bot: i64,
        updates: &[(i64, Value)],
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for (update_id, payload) in updates {
            sqlx::query(
                "INSERT INTO telegram_updates (bot_id, update_id, payload) VALUES ($1, $2, $3) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(bot)
            .bind(update_id)
            .bind(payload)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The newest journaled update id of `bot`: polling resumes after it.
    #[tracing::instrument(skip(self))]
    pub async fn last_telegram_update(&self, bot: i64) -> Result<Option<i64>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT max(update_id) FROM telegram_updates WHERE bot_id = $1")
                .bind(bot)
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// The chats that have journaled updates not handled yet, the one waiting longest first
    /// (0 stands for updates of no chat).
    #[tracing::instrument(skip(self))]
    pub async fn telegram_chats_with_unhandled_updates(
        &self,
        bot: i64,
    ) -> Result<Vec<i64>, StoreError> {
        let sql = format!(
            "SELECT chat FROM (SELECT {UPDATE_CHAT} AS chat, min(update_id) AS first \
             FROM telegram_updates WHERE bot_id = $1 AND handled_at IS NULL GROUP BY 1) c \
             ORDER BY first"
        );
        Ok(sqlx::query_scalar(&sql)
            .bind(bot)
            .fetch_all(&self.pool)
            .await?)
    }

    /// The journaled updates of one chat (see [`Store::telegram_chats_with_unhandled_updates`])
    /// not handled yet, oldest first.
    #[tracing::instrument(skip(self))]
    pub async fn unhandled_telegram_updates_of_chat(
        &self,
        bot: i64,
        chat: i64,
        limit: i64,
    ) -> Result<Vec<(i64, Value)>, StoreError> {
        let sql = format!(
            "SELECT update_id, payload FROM telegram_updates \
             WHERE bot_id = $1 AND handled_at IS NULL AND {UPDATE_CHAT} = $2 \
             ORDER BY update_id LIMIT $3"
        );
        let rows = sqlx::query(&sql)
            .bind(bot)
            .bind(chat)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((get(r, "update_id")?, get(r, "payload")?)))
            .collect()
    }

    /// Marks an update handled: its effect is committed.
    #[tracing::instrument(skip(self))]
    pub async fn mark_telegram_update_handled(
        &self,
        bot: i64,
        update_id: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE telegram_updates SET handled_at = now() WHERE bot_id = $1 AND update_id = $2",
        )
        .bind(bot)
        .bind(update_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The chat `chat_id` of `bot`, if it is linked.
    #[tracing::instrument(skip(self))]
    pub async fn telegram_chat(
        &self,
        bot: i64,
        chat_id: i64,
    ) -> Result<Option<TelegramChat>, StoreError> {
        let row = sqlx::query(
            "SELECT chat_id, private, user_id, session_id FROM telegram_chats \
             WHERE bot_id = $1 AND chat_id = $2",
        )
        .bind(bot)
        .bind(chat_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(TelegramChat {
                chat_id: get(&r, "chat_id")?,
                private: get(&r, "private")?,
                user: UserId::from_uuid(get(&r, "user_id")?),
                session: SessionId::from_uuid(get(&r, "session_id")?),
            })
        })
        .transpose()
    }

    /// Links a chat to `user` and `session` (replacing an earlier link of the chat). The
    /// delivery cursor starts after the session's current transcript.
    #[tracing::instrument(skip(self))]
    pub async fn link_telegram_chat(
        &self,
        bot: i64,
        chat: &TelegramChat,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE sessions SET external_ref = $2 WHERE id = $1")
            .bind(chat.session.as_uuid())
            .bind(chat.chat_id.to_string())
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO telegram_chats (bot_id, chat_id, private, user_id, session_id, \
             delivered_line) VALUES ($1, $2, $3, $4, $5, \
             (SELECT coalesce(max(id), 0) FROM session_messages WHERE session_id = $5)) \
             ON CONFLICT (bot_id, chat_id) DO UPDATE SET private = excluded.private, \
             user_id = excluded.user_id, session_id = excluded.session_id, \
             delivered_line = excluded.delivered_line",
        )
        .bind(bot)
        .bind(chat.chat_id)
        .bind(chat.private)
        .bind(chat.user.as_uuid())
        .bind(chat.session.as_uuid())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The artel user of Telegram user `telegram_id`, created with `name` if there is none.
    #[tracing::instrument(skip(self))]
    pub async fn ensure_telegram_user(
        &self,
        telegram_id: i64,
        name: &str,
    ) -> Result<UserRecord, StoreError> {
        sqlx::query(
            "INSERT INTO users (id, name, telegram_id) VALUES ($1, $2, $3) \
             ON CONFLICT (telegram_id) DO NOTHING",
        )
        .bind(UserId::new().as_uuid())
        .bind(name)
        .bind(telegram_id)
        .execute(&self.pool)
        .await?;
        let id: uuid::Uuid = sqlx::query_scalar("SELECT id FROM users WHERE telegram_id = $1")
            .bind(telegram_id)
            .fetch_one(&self.pool)
            .await?;
        self.user(UserId::from_uuid(id))
            .await?
            .ok_or_else(|| StoreError::NotFound {
                what: "user",
                key: telegram_id.to_string(),
            })
    }

    /// The artel user linked to Telegram user `telegram_id`, if any.
    #[tracing::instrument(skip(self))]
    pub async fn telegram_user(&self, telegram_id: i64) -> Result<Option<UserId>, StoreError> {
        let id: Option<uuid::Uuid> =
            sqlx::query_scalar("SELECT id FROM users WHERE telegram_id = $1")
                .bind(telegram_id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(id.map(UserId::from_uuid))
    }

    /// Records a one-time link code for `user`, valid for `ttl`.
    #[tracing::instrument(skip(self, code))]
    pub async fn create_telegram_link_code(
        &self,
        user: UserId,
        code: &str,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO telegram_link_codes (code_sha256, user_id, expires_at) \
             VALUES ($1, $2, now() + make_interval(secs => $3))",
        )
        .bind(code_hash(code))
        .bind(user.as_uuid())
        .bind(ttl.as_secs_f64())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Spends a link code: links Telegram user `telegram_id` to the code's artel user and
    /// answers that user; `None` when the code is unknown, used or expired.
    #[tracing::instrument(skip(self, code))]
    pub async fn redeem_telegram_link_code(
        &self,
        code: &str,
        telegram_id: i64,
    ) -> Result<Option<UserId>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let user: Option<uuid::Uuid> = sqlx::query_scalar(
            "UPDATE telegram_link_codes SET used_at = now() \
             WHERE code_sha256 = $1 AND used_at IS NULL AND expires_at > now() RETURNING user_id",
        )
        .bind(code_hash(code))
        .fetch_optional(&mut *tx)
        .await?;
        let Some(user) = user else {
            return Ok(None);
        };
        sqlx::query("UPDATE users SET telegram_id = NULL WHERE telegram_id = $1 AND id <> $2")
            .bind(telegram_id)
            .bind(user)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE users SET telegram_id = $1, updated_at = now() WHERE id = $2")
            .bind(telegram_id)
            .bind(user)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(UserId::from_uuid(user)))
    }

    /// ProductOwner lines not yet delivered to `bot`'s chats, oldest first. A line that
    /// reports a task waiting for the user (`needs_human`) is a question.
    #[tracing::instrument(skip(self))]
    pub async fn pending_telegram_lines(
        &self,
        bot: i64,
        limit: i64,
    ) -> Result<Vec<PendingLine>, StoreError> {
        let rows = sqlx::query(
            "SELECT c.chat_id, m.id, m.text, \
               CASE WHEN e.kind = 'task_status_changed' AND e.payload->>'to' = 'needs_human' \
                    THEN e.task_id END AS question \
             FROM telegram_chats c \
             JOIN session_messages m ON m.session_id = c.session_id AND m.id > c.delivered_line \
             LEFT JOIN events e ON e.id = m.about_event \
             WHERE c.bot_id = $1 AND m.role = 'product_owner' ORDER BY m.id LIMIT $2",
        )
        .bind(bot)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(PendingLine {
                    chat_id: get(r, "chat_id")?,
                    line_id: get(r, "id")?,
                    text: get(r, "text")?,
                    question: get::<Option<uuid::Uuid>>(r, "question")?.map(TaskId::from_uuid),
                })
            })
            .collect()
    }

    /// Moves a chat's delivery cursor past `line` (never backwards).
    #[tracing::instrument(skip(self))]
    pub async fn mark_telegram_delivered(
        &self,
        bot: i64,
        chat_id: i64,
        line: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE telegram_chats SET delivered_line = greatest(delivered_line, $3) \
             WHERE bot_id = $1 AND chat_id = $2",
        )
        .bind(bot)
        .bind(chat_id)
        .bind(line)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The question journaled for transcript line `line`, journaled with `nonce` if there is
    /// none yet (a resend after a crash reuses the first nonce).
    #[tracing::instrument(skip(self, text))]
    pub async fn telegram_question_for_line(
        &self,
        bot: i64,
        line: &PendingLine,
        nonce: &str,
        text: &str,
    ) -> Result<TelegramQuestion, StoreError> {
        sqlx::query(
            "INSERT INTO telegram_questions (nonce, bot_id, chat_id, line_id, task_id, text) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (line_id) DO NOTHING",
        )
        .bind(nonce)
        .bind(bot)
        .bind(line.chat_id)
        .bind(line.line_id)
        .bind(line.question.map(|t| t.as_uuid()))
        .bind(text)
        .execute(&self.pool)
        .await?;
        let row = sqlx::query(&format!(
            "SELECT {QUESTION_COLUMNS} FROM telegram_questions WHERE line_id = $1"
        ))
        .bind(line.line_id)
        .fetch_one(&self.pool)
        .await?;
        question_from_row(&row)
    }

    /// Records the message that shows question `nonce`.
    #[tracing::instrument(skip(self))]
    pub async fn set_telegram_question_message(
        &self,
        nonce: &str,
        message_id: i64,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE telegram_questions SET message_id = $2 WHERE nonce = $1")
            .bind(nonce)
            .bind(message_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The question with `nonce` in `chat_id`, if any.
    #[tracing::instrument(skip(self))]
    pub async fn telegram_question(
        &self,
        bot: i64,
        chat_id: i64,
        nonce: &str,
    ) -> Result<Option<TelegramQuestion>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {QUESTION_COLUMNS} FROM telegram_questions \
             WHERE nonce = $1 AND bot_id = $2 AND chat_id = $3"
        ))
        .bind(nonce)
        .bind(bot)
        .bind(chat_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(question_from_row).transpose()
    }

    /// Records `answer` to question `nonce` if it has none yet; answers the question when
    /// this call answered it, `None` when it was answered already.
    #[tracing::instrument(skip(self))]
    pub async fn answer_telegram_question(
        &self,
        nonce: &str,
        answer: &str,
    ) -> Result<Option<TelegramQuestion>, StoreError> {
        let row = sqlx::query(&format!(
            "UPDATE telegram_questions SET answer = $2, answered_at = now() \
             WHERE nonce = $1 AND answered_at IS NULL RETURNING {QUESTION_COLUMNS}"
        ))
        .bind(nonce)
        .bind(answer)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(question_from_row).transpose()
    }

    /// Closes every open question of a chat with `answer` (the user typed their reply
    /// instead of pressing a button); answers the questions it closed.
    #[tracing::instrument(skip(self))]
    pub async fn close_telegram_questions(
        &self,
        bot: i64,
        chat_id: i64,
        answer: &str,
    ) -> Result<Vec<TelegramQuestion>, StoreError> {
        let rows = sqlx::query(&format!(
            "UPDATE telegram_questions SET answer = $3, answered_at = now() \
             WHERE bot_id = $1 AND chat_id = $2 AND answered_at IS NULL \
             RETURNING {QUESTION_COLUMNS}"
        ))
        .bind(bot)
        .bind(chat_id)
        .bind(answer)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(question_from_row).collect()
    }

    /// Tasks of `bot`'s chats whose status message is not final yet (tasks of the last day).
    #[tracing::instrument(skip(self))]
    pub async fn telegram_tracked_tasks(&self, bot: i64) -> Result<Vec<TrackedTask>, StoreError> {
        let rows = sqlx::query(
            "SELECT t.id, c.chat_id, s.message_id, s.text, \
               extract(epoch FROM now() - s.edited_at)::float8 AS since_edit \
             FROM tasks t JOIN telegram_chats c ON c.session_id = t.session_id \
             LEFT JOIN telegram_status_messages s ON s.task_id = t.id \
             WHERE c.bot_id = $1 AND t.created_at > now() - interval '1 day' \
               AND (s.task_id IS NULL OR NOT s.final) ORDER BY t.created_at",
        )
        .bind(bot)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let message: Option<i64> = get(r, "message_id")?;
                let text: Option<String> = get(r, "text")?;
                Ok(TrackedTask {
                    task: TaskId::from_uuid(get(r, "id")?),
                    chat_id: get(r, "chat_id")?,
                    message: message.zip(text),
                    since_edit: get::<Option<f64>>(r, "since_edit")?.unwrap_or(f64::MAX),
                })
            })
            .collect()
    }

    /// Records what a task's status message shows (and that it shows the end, when `final`).
    #[tracing::instrument(skip(self, text))]
    pub async fn save_telegram_status(
        &self,
        bot: i64,
        task: TaskId,
        chat_id: i64,
        message_id: i64,
        text: &str,
        r#final: bool,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO telegram_status_messages (task_id, bot_id, chat_id, message_id, text, \
             final) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (task_id) DO UPDATE SET \
             message_id = excluded.message_id, text = excluded.text, final = excluded.final, \
             edited_at = now()",
        )
        .bind(task.as_uuid())
        .bind(bot)
        .bind(chat_id)
        .bind(message_id)
        .bind(text)
        .bind(r#final)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Takes or renews the lease on polling `bot` for `owner`, for `ttl`; answers whether
    /// `owner` holds it now. An expired lease is anyone's.
    #[tracing::instrument(skip(self))]
    pub async fn lease_telegram_poller(
        &self,
        bot: i64,
        owner: &str,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let row = sqlx::query(
            "INSERT INTO telegram_pollers (bot_id, owner, expires_at) \
             VALUES ($1, $2, now() + make_interval(secs => $3)) \
             ON CONFLICT (bot_id) DO UPDATE SET owner = excluded.owner, \
             expires_at = excluded.expires_at \
             WHERE telegram_pollers.owner = excluded.owner OR telegram_pollers.expires_at < now() \
             RETURNING owner",
        )
        .bind(bot)
        .bind(owner)
        .bind(ttl.as_secs_f64())
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.is_some_and(|r| r.try_get::<String, _>("owner").is_ok_and(|o| o == owner)))
    }

    /// Gives the poller lease back (at shutdown), so another process takes over at once.
    #[tracing::instrument(skip(self))]
    pub async fn release_telegram_poller(&self, bot: i64, owner: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM telegram_pollers WHERE bot_id = $1 AND owner = $2")
            .bind(bot)
            .bind(owner)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

/// A bot of the pool for generated services.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PooledBot {
    /// The bot's Telegram id (from `getMe`).
    pub bot_id: i64,
    /// Its @username.
    pub username: String,
    /// The project it serves, when allocated.
    pub project: Option<artel_messages::ProjectId>,
}

fn bot_aad(bot_id: i64) -> Vec<u8> {
    let mut aad = b"artel telegram bot v1\0".to_vec();
    aad.extend_from_slice(&bot_id.to_be_bytes());
    aad
}

impl Store {
    /// Adds a bot to the pool (or replaces its token), its token encrypted.
    #[tracing::instrument(skip(self, token))]
    pub async fn register_telegram_bot(
        &self,
        bot_id: i64,
        username: &str,
        token: &artel_messages::SecretValue,
    ) -> Result<PooledBot, StoreError> {
        let sealed = self
            .master_key()?
            .seal("telegram bot token", &bot_aad(bot_id), token)?;
        let project: Option<uuid::Uuid> = sqlx::query_scalar(
            "INSERT INTO telegram_bots (bot_id, username, key_id, nonce, ciphertext) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (bot_id) DO UPDATE SET \
             username = excluded.username, key_id = excluded.key_id, nonce = excluded.nonce, \
             ciphertext = excluded.ciphertext RETURNING project_id",
        )
        .bind(bot_id)
        .bind(username)
        .bind(&sealed.key_id)
        .bind(&sealed.nonce)
        .bind(&sealed.ciphertext)
        .fetch_one(&self.pool)
        .await?;
        Ok(PooledBot {
            bot_id,
            username: username.to_owned(),
            project: project.map(artel_messages::ProjectId::from_uuid),
        })
    }

    /// The pool, by bot id.
    #[tracing::instrument(skip(self))]
    pub async fn telegram_bots(&self) -> Result<Vec<PooledBot>, StoreError> {
        let rows =
            sqlx::query("SELECT bot_id, username, project_id FROM telegram_bots ORDER BY bot_id")
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|r| {
                Ok(PooledBot {
                    bot_id: get(r, "bot_id")?,
                    username: get(r, "username")?,
                    project: get::<Option<uuid::Uuid>>(r, "project_id")?
                        .map(artel_messages::ProjectId::from_uuid),
                })
            })
            .collect()
    }

    /// The token of `project`'s bot: the one it has, or a free one taken now (concurrent
    /// deploys never take the same bot: `FOR UPDATE SKIP LOCKED`). `None` when the pool has
    /// no free bot.
    #[tracing::instrument(skip(self))]
    pub async fn allocate_telegram_bot(
        &self,
        project: artel_messages::ProjectId,
    ) -> Result<Option<(i64, artel_messages::SecretValue)>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(
            "SELECT bot_id, key_id, nonce, ciphertext FROM telegram_bots \
             WHERE project_id = $1 OR project_id IS NULL \
             ORDER BY (project_id IS NULL), bot_id LIMIT 1 FOR UPDATE SKIP LOCKED",
        )
        .bind(project.as_uuid())
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let bot_id: i64 = get(&row, "bot_id")?;
        sqlx::query(
            "UPDATE telegram_bots SET project_id = $2, \
             allocated_at = coalesce(allocated_at, now()) WHERE bot_id = $1",
        )
        .bind(bot_id)
        .bind(project.as_uuid())
        .execute(&mut *tx)
        .await?;
        let sealed = super::secrets::Sealed::from_row(&row)?;
        let token = self
            .master_key()?
            .open("telegram bot token", &bot_aad(bot_id), &sealed)?;
        tx.commit().await?;
        Ok(Some((bot_id, token)))
    }

    /// Frees `project`'s bots; answers their tokens, so the caller can reset them
    /// (`deleteWebhook`, commands).
    #[tracing::instrument(skip(self))]
    pub async fn release_telegram_bots(
        &self,
        project: artel_messages::ProjectId,
    ) -> Result<Vec<(i64, artel_messages::SecretValue)>, StoreError> {
        let rows = sqlx::query(
            "UPDATE telegram_bots SET project_id = NULL, allocated_at = NULL \
             WHERE project_id = $1 RETURNING bot_id, key_id, nonce, ciphertext",
        )
        .bind(project.as_uuid())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let bot_id: i64 = get(r, "bot_id")?;
                let sealed = super::secrets::Sealed::from_row(r)?;
                Ok((
                    bot_id,
                    self.master_key()?
                        .open("telegram bot token", &bot_aad(bot_id), &sealed)?,
                ))
            })
            .collect()
    }
}
