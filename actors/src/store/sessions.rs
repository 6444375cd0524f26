//! Sessions and their transcripts: what lets a conversation outlive its actor.
//!
//! A SessionActor keeps nothing the transcript does not have. It may hibernate when idle, be
//! restarted by its supervisor, or die with artel; the next message (or news about one of its
//! tasks) starts a new actor that reads the session and its transcript from here and goes on
//! where the conversation was. A user's line is journaled *before* the ProductOwner handles
//! it, so a line that arrives while artel is busy or dying is never lost: it is answered when
//! the session wakes.

use super::rows::{get, name, time};
use super::{Store, StoreError};
use artel_messages::dto::{ChatLineDto, SessionDto};
use artel_messages::event::ChatRole;
use artel_messages::{EventId, ProjectId, SessionChannel, SessionId, SessionStatus, UserId};

/// What a transcript line is linked to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatLink {
    /// Nothing (a user's line).
    None,
    /// The user line this answers.
    ReplyTo(i64),
    /// The event this reports.
    AboutEvent(EventId),
}
use sqlx::postgres::PgRow;
use std::time::Duration;

const SESSION_COLUMNS: &str = "id, user_id, project_id, channel, status, created_at, last_seen_at";

fn session_from_row(row: &PgRow) -> Result<SessionDto, StoreError> {
    Ok(SessionDto {
        id: SessionId::from_uuid(get(row, "id")?),
        user: UserId::from_uuid(get(row, "user_id")?),
        project: get::<Option<uuid::Uuid>>(row, "project_id")?.map(ProjectId::from_uuid),
        channel: name(row, "channel")?,
        status: name(row, "status")?,
        created_at: time(row, "created_at")?,
        last_seen_at: time(row, "last_seen_at")?,
    })
}

fn line_from_row(row: &PgRow) -> Result<ChatLineDto, StoreError> {
    Ok(ChatLineDto {
        id: get(row, "id")?,
        role: name(row, "role")?,
        text: get(row, "text")?,
        at: time(row, "at")?,
    })
}

impl Store {
    /// Starts a conversation of `user` on `channel`.
    #[tracing::instrument(skip(self))]
    pub async fn create_session(
        &self,
        user: UserId,
        channel: SessionChannel,
    ) -> Result<SessionDto, StoreError> {
        let row = sqlx::query(&format!(
            "INSERT INTO sessions (id, user_id, channel) VALUES ($1, $2, $3) \
             RETURNING {SESSION_COLUMNS}"
        ))
        .bind(SessionId::new().as_uuid())
        .bind(user.as_uuid())
        .bind(channel.as_str())
        .fetch_one(&self.pool)
        .await?;
        session_from_row(&row)
    }

    /// The session `id`, if it exists.
    #[tracing::instrument(skip(self))]
    pub async fn session(&self, id: SessionId) -> Result<Option<SessionDto>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE id = $1"
        ))
        .bind(id.as_uuid())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(session_from_row).transpose()
    }

    /// Moves a session to `status` and marks it seen now.
    #[tracing::instrument(skip(self))]
    pub async fn set_session_status(
        &self,
        id: SessionId,
        status: SessionStatus,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE sessions SET status = $2, last_seen_at = now() WHERE id = $1")
            .bind(id.as_uuid())
            .bind(status.as_str())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Records the project a session is about.
    #[tracing::instrument(skip(self))]
    pub async fn set_session_project(
        &self,
        id: SessionId,
        project: ProjectId,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE sessions SET project_id = $2 WHERE id = $1")
            .bind(id.as_uuid())
            .bind(project.as_uuid())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Appends a line to a session's transcript and marks the session seen. A ProductOwner
    /// line names the user line it answers (`reply_to`) or the event it reports
    /// (`about_event`); reporting the same event twice returns `None` and writes nothing.
    #[tracing::instrument(skip(self, text))]
    pub async fn append_chat_line(
        &self,
        session: SessionId,
        role: ChatRole,
        text: &str,
        link: ChatLink,
    ) -> Result<Option<ChatLineDto>, StoreError> {
        let (reply_to, about_event) = match link {
            ChatLink::None => (None, None),
            ChatLink::ReplyTo(line) => (Some(line), None),
            ChatLink::AboutEvent(event) => (None, Some(event.get())),
        };
        let mut tx = self.pool.begin().await?;
        // The session's row first: its lock (held to commit) makes the session's lines take
        // turns, so their ids follow commit order and a reader never sees line N+1 before N.
        sqlx::query(
            "UPDATE sessions SET last_seen_at = now(), \
             status = CASE WHEN status = 'closed' THEN status ELSE 'active' END WHERE id = $1",
        )
        .bind(session.as_uuid())
        .execute(&mut *tx)
        .await?;
        let row = sqlx::query(
            "INSERT INTO session_messages (session_id, role, text, reply_to, about_event) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING id, role, text, at",
        )
        .bind(session.as_uuid())
        .bind(role.as_str())
        .bind(text)
        .bind(reply_to)
        .bind(about_event)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        row.as_ref().map(line_from_row).transpose()
    }

    /// Appends a user line that came from `source` (a front door's own id for it, e.g. a
    /// Telegram update): the same source said again appends nothing. Answers the line, and
    /// whether this call appended it.
    #[tracing::instrument(skip(self, text))]
    pub async fn append_user_line_from(
        &self,
        session: SessionId,
        text: &str,
        source: &str,
    ) -> Result<(ChatLineDto, bool), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "UPDATE sessions SET last_seen_at = now(), \
             status = CASE WHEN status = 'closed' THEN status ELSE 'active' END WHERE id = $1",
        )
        .bind(session.as_uuid())
        .execute(&mut *tx)
        .await?;
        let row = sqlx::query(
            "INSERT INTO session_messages (session_id, role, text, source_key) \
             VALUES ($1, 'user', $2, $3) ON CONFLICT DO NOTHING RETURNING id, role, text, at",
        )
        .bind(session.as_uuid())
        .bind(text)
        .bind(source)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        if let Some(row) = row {
            return Ok((line_from_row(&row)?, true));
        }
        let row = sqlx::query(
            "SELECT id, role, text, at FROM session_messages \
             WHERE session_id = $1 AND source_key = $2",
        )
        .bind(session.as_uuid())
        .bind(source)
        .fetch_one(&self.pool)
        .await?;
        Ok((line_from_row(&row)?, false))
    }

    /// The user lines of a session that no ProductOwner line answers yet, in order.
    #[tracing::instrument(skip(self))]
    pub async fn unanswered_lines(
        &self,
        session: SessionId,
    ) -> Result<Vec<ChatLineDto>, StoreError> {
        let rows = sqlx::query(
            "SELECT u.id, u.role, u.text, u.at FROM session_messages u \
             WHERE u.session_id = $1 AND u.role = 'user' AND NOT EXISTS \
               (SELECT 1 FROM session_messages r WHERE r.reply_to = u.id) \
             ORDER BY u.id",
        )
        .bind(session.as_uuid())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(line_from_row).collect()
    }

    /// The journal position saved under `name` (0 when never saved).
    pub async fn cursor(&self, name: &str) -> Result<EventId, StoreError> {
        let position: Option<i64> =
            sqlx::query_scalar("SELECT position FROM cursors WHERE name = $1")
                .bind(name)
                .fetch_optional(&self.pool)
                .await?;
        Ok(EventId::new(position.unwrap_or(0)))
    }

    /// Saves `position` under `name` (never moving it backwards).
    pub async fn save_cursor(&self, name: &str, position: EventId) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO cursors (name, position) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE \
             SET position = greatest(cursors.position, excluded.position), updated_at = now()",
        )
        .bind(name)
        .bind(position.get())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A session's transcript after line `after` (0 for all of it), in order.
    #[tracing::instrument(skip(self))]
    pub async fn chat_lines(
        &self,
        session: SessionId,
        after: i64,
    ) -> Result<Vec<ChatLineDto>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, role, text, at FROM session_messages \
             WHERE session_id = $1 AND id > $2 ORDER BY id",
        )
        .bind(session.as_uuid())
        .bind(after)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(line_from_row).collect()
    }

    /// Hibernates active sessions not seen for `idle`; answers their ids.
    #[tracing::instrument(skip(self))]
    pub async fn hibernate_idle_sessions(
        &self,
        idle: Duration,
    ) -> Result<Vec<SessionId>, StoreError> {
        let ids: Vec<uuid::Uuid> = sqlx::query_scalar(
            "UPDATE sessions SET status = 'hibernated' \
             WHERE status = 'active' AND last_seen_at < now() - make_interval(secs => $1) \
             RETURNING id",
        )
        .bind(idle.as_secs_f64())
        .fetch_all(&self.pool)
        .await?;
        Ok(ids.into_iter().map(SessionId::from_uuid).collect())
    }

    /// The ProductOwner's journaled decision about user line `line`, if it made one.
    pub async fn po_decision(&self, line: i64) -> Result<Option<serde_json::Value>, StoreError> {
        let row = sqlx::query("SELECT decision FROM po_decisions WHERE message_id = $1")
            .bind(line)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| get(&r, "decision")).transpose()
    }

    /// Journals the decision about `line`; a decision journaled first wins, and is returned
    /// (two answers of one line act the same).
    pub async fn record_po_decision(
        &self,
        session: SessionId,
        line: i64,
        decision: &serde_json::Value,
    ) -> Result<serde_json::Value, StoreError> {
        sqlx::query(
            "INSERT INTO po_decisions (message_id, session_id, decision) VALUES ($1, $2, $3) \
             ON CONFLICT (message_id) DO NOTHING",
        )
        .bind(line)
        .bind(session.as_uuid())
        .bind(decision)
        .execute(&self.pool)
        .await?;
        Ok(self
            .po_decision(line)
            .await?
            .unwrap_or_else(|| decision.clone()))
    }

    /// The newest decision journaled in `session` before line `line`.
    pub async fn po_decision_before(
        &self,
        session: SessionId,
        line: i64,
    ) -> Result<Option<serde_json::Value>, StoreError> {
        let row = sqlx::query(
            "SELECT decision FROM po_decisions WHERE session_id = $1 AND message_id < $2 \
             ORDER BY message_id DESC LIMIT 1",
        )
        .bind(session.as_uuid())
        .bind(line)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| get(&r, "decision")).transpose()
    }
}
