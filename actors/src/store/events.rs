//! The append-only event journal: the one source of progress for every front door.
//!
//! [`Store::append_event`] gives a [`NewEvent`] its [`EventId`]; [`Store::events_since`] reads
//! a project's, a task's or all events after an id, in id order, a page at a time. That is
//! how a subscriber catches up after a reconnect, so ids must become visible in order: a
//! reader that has seen id 7 must never later find a committed id 6. Postgres sequences alone
//! do not promise that (two appends can commit out of order), so appends take a transaction
//! advisory lock and commit one at a time. Appends are short, so the lock costs little.

use super::rows::{get, time};
use super::{Store, StoreError};
use artel_messages::{Event, EventBody, EventId, NewEvent, ProjectId, TaskId, UserId};
use serde_json::{Value, json};
use sqlx::postgres::PgRow;

/// The advisory lock key that serializes event appends ("artel_ev" in ASCII).
const APPEND_LOCK: i64 = 0x6172_7465_6c5f_6576;

/// Whose events to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventScope {
    /// Every event.
    All,
    /// The events about one project (including its tasks' events that name it).
    Project(ProjectId),
    /// The events about one task.
    Task(TaskId),
    /// The events about any project this user owns (a control-plane caller's "everything
    /// of mine", including projects created after a reader started).
    Owner(UserId),
}

fn event_from_row(row: &PgRow) -> Result<Event, StoreError> {
    let kind: String = get(row, "kind")?;
    let payload: Value = get(row, "payload")?;
    let body: EventBody = serde_json::from_value(json!({ "kind": kind, "payload": payload }))
        .map_err(|err| StoreError::Decode {
            what: "event payload",
            reason: format!("`{kind}`: {err}"),
        })?;
    Ok(Event {
        id: EventId::new(get(row, "id")?),
        project: get::<Option<uuid::Uuid>>(row, "project_id")?.map(ProjectId::from_uuid),
        task: get::<Option<uuid::Uuid>>(row, "task_id")?.map(TaskId::from_uuid),
        at: time(row, "at")?,
        body,
    })
}

impl Store {
    /// Appends an event to the journal and returns it with its id. Ids grow in commit order.
    #[tracing::instrument(skip(self, event), fields(kind = event.body.kind()))]
    pub async fn append_event(&self, event: NewEvent) -> Result<Event, StoreError> {
        let mut tagged = serde_json::to_value(&event.body).map_err(|err| StoreError::Invalid {
            what: "event",
            reason: err.to_string(),
        })?;
        let payload = tagged
            .get_mut("payload")
            .map(Value::take)
            .unwrap_or_else(|| json!({}));
        let _in_order = self.append_lock.lock().await;
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(APPEND_LOCK)
            .execute(&mut *tx)
            .await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO events (project_id, task_id, kind, payload, at) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(event.project.map(|p| p.as_uuid()))
        .bind(event.task.map(|t| t.as_uuid()))
        .bind(event.body.kind())
        .bind(&payload)
        .bind(event.at.as_datetime())
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        let event = event.with_id(EventId::new(id));
        // Nobody listening is fine: the journal has it.
        let _ = self.bus.send(event.clone());
        Ok(event)
    }

    /// Up to `limit` events in `scope` with an id greater than `after`, in id order. Start
    /// with `EventId::new(0)`; pass the last id read to get the next page.
    #[tracing::instrument(skip(self))]
    pub async fn events_since(
        &self,
        scope: EventScope,
        after: EventId,
        limit: u32,
    ) -> Result<Vec<Event>, StoreError> {
        let (filter, scope_id) = match scope {
            EventScope::All => ("", None),
            EventScope::Project(project) => ("AND project_id = $3", Some(project.as_uuid())),
            EventScope::Task(task) => ("AND task_id = $3", Some(task.as_uuid())),
            EventScope::Owner(user) => (
                "AND project_id IN (SELECT id FROM projects WHERE owner_id = $3)",
                Some(user.as_uuid()),
            ),
        };
        let sql = format!(
            "SELECT id, project_id, task_id, kind, payload, at FROM events \
             WHERE id > $1 {filter} ORDER BY id LIMIT $2"
        );
        let mut query = sqlx::query(&sql).bind(after.get()).bind(i64::from(limit));
        if let Some(id) = scope_id {
            query = query.bind(id);
        }
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter().map(event_from_row).collect()
    }

    /// The id of the newest event (0 when there is none): where a reader that wants only
    /// what happens from now on starts.
    pub async fn latest_event_id(&self) -> Result<EventId, StoreError> {
        let id: Option<i64> = sqlx::query_scalar("SELECT max(id) FROM events")
            .fetch_one(&self.pool)
            .await?;
        Ok(EventId::new(id.unwrap_or(0)))
    }
}
