//! Tasks and their step journal: what lets a workflow survive a crash (DESIGN.md rule 3).
//!
//! A workflow journals each step before and after running it. [`Store::begin_step`] inserts
//! the step's attempt as `running` — or, when its idempotency key is already journaled,
//! returns that row untouched, so asking twice (a retry, a restart, a duplicate message) never
//! makes a second attempt. The caller then looks at the row: `succeeded` means use its output
//! and move on (a finished step is never redone); `running` means the step was interrupted and
//! runs again (steps are idempotent). [`Store::finish_step`] and [`Store::fail_step`] close an
//! attempt; a new attempt of the same step (the Developer ⇄ Tester rework loop, a retry with
//! guidance) needs a new key and gets the next attempt number, so the journal only grows.
//!
//! Task status changes follow [`TaskStatus::can_transition_to`]; the store refuses any other
//! change, and setting the status a task already has is a no-op (so a replayed change is
//! harmless).

use super::rows::{class_name, count, failure, get, name, time, time_opt};
use super::{Store, StoreError};
use artel_messages::dto::{StepDto, TaskDto};
use artel_messages::{
    Failure, ProjectId, SessionId, StepKind, StepStatus, TaskId, TaskKind, TaskStatus, Timestamp,
    UserId,
};
use serde_json::Value;
use sqlx::postgres::PgRow;

/// A task to create. The caller chooses its id, so creating it twice is recognized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTask {
    /// Its id, chosen by whoever starts it.
    pub id: TaskId,
    /// The project it works on.
    pub project: ProjectId,
    /// Engineering or deploy.
    pub kind: TaskKind,
    /// What was asked for, in the user's words.
    pub description: String,
    /// The session to tell about its progress, if any.
    pub session: Option<SessionId>,
}

/// A task as stored: the catalog's [`TaskDto`] plus what only workflows need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskRecord {
    /// Its id.
    pub id: TaskId,
    /// The project it works on.
    pub project: ProjectId,
    /// Engineering or deploy.
    pub kind: TaskKind,
    /// Where it is in its lifecycle.
    pub status: TaskStatus,
    /// What was asked for.
    pub description: String,
    /// The session to tell about its progress, if any.
    pub session: Option<SessionId>,
    /// What the user said when retrying it, if they did.
    pub guidance: Option<String>,
    /// How many times a workflow has started running it.
    pub attempts: u32,
    /// Why it failed, while it is failed.
    pub failure: Option<Failure>,
    /// The journal id when the user last retried it: budgets count only later rows.
    pub journal_mark: i64,
    /// The deploy task to create when this engineering task completes.
    pub follow_up: Option<TaskId>,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it last changed.
    pub updated_at: Timestamp,
}

impl TaskRecord {
    /// The record front doors return.
    pub fn to_dto(&self) -> TaskDto {
        TaskDto {
            id: self.id,
            project: self.project,
            kind: self.kind,
            status: self.status,
            description: self.description.clone(),
            session: self.session,
            failure: self.failure.clone(),
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

/// One attempt at one step of a task, as journaled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepRecord {
    /// The journal's sequence number for this row.
    pub id: i64,
    /// The task it belongs to.
    pub task: TaskId,
    /// Which step.
    pub step: StepKind,
    /// Which attempt, from 1.
    pub attempt: u32,
    /// Where the attempt is in its lifecycle.
    pub status: StepStatus,
    /// The key the workflow journaled it under; unique across all steps.
    pub idempotency_key: String,
    /// What the step was given.
    pub input: Value,
    /// What the step produced, once succeeded.
    pub output: Option<Value>,
    /// Why it failed, if it did.
    pub failure: Option<Failure>,
    /// When it was journaled.
    pub created_at: Timestamp,
    /// When it started running.
    pub started_at: Option<Timestamp>,
    /// When it succeeded or failed.
    pub finished_at: Option<Timestamp>,
}

impl StepRecord {
    /// True when the attempt is over (succeeded or failed): it must not be run again.
    pub fn is_finished(&self) -> bool {
        self.status.is_terminal()
    }

    /// The record front doors return.
    pub fn to_dto(&self) -> StepDto {
        StepDto {
            task: self.task,
            kind: self.step,
            attempt: self.attempt,
            status: self.status,
            started_at: self.started_at,
            finished_at: self.finished_at,
            failure: self.failure.clone(),
        }
    }
}

const TASK_COLUMNS: &str = "id, project_id, kind, status, description, session_id, guidance, \
                            attempts, error_class, error_reason, journal_mark, follow_up, \
                            created_at, updated_at";
const STEP_COLUMNS: &str = "id, task_id, step, attempt, status, idempotency_key, input, output, \
                            error_class, error_reason, created_at, started_at, finished_at";

fn task_from_row(row: &PgRow) -> Result<TaskRecord, StoreError> {
    Ok(TaskRecord {
        id: TaskId::from_uuid(get(row, "id")?),
        project: ProjectId::from_uuid(get(row, "project_id")?),
        kind: name(row, "kind")?,
        status: name(row, "status")?,
        description: get(row, "description")?,
        session: get::<Option<uuid::Uuid>>(row, "session_id")?.map(SessionId::from_uuid),
        guidance: get(row, "guidance")?,
        attempts: count(row, "attempts")?,
        failure: failure(row)?,
        journal_mark: get(row, "journal_mark")?,
        follow_up: get::<Option<uuid::Uuid>>(row, "follow_up")?.map(TaskId::from_uuid),
        created_at: time(row, "created_at")?,
        updated_at: time(row, "updated_at")?,
    })
}

fn step_from_row(row: &PgRow) -> Result<StepRecord, StoreError> {
    Ok(StepRecord {
        id: get(row, "id")?,
        task: TaskId::from_uuid(get(row, "task_id")?),
        step: name(row, "step")?,
        attempt: count(row, "attempt")?,
        status: name(row, "status")?,
        idempotency_key: get(row, "idempotency_key")?,
        input: get(row, "input")?,
        output: get(row, "output")?,
        failure: failure(row)?,
        created_at: time(row, "created_at")?,
        started_at: time_opt(row, "started_at")?,
        finished_at: time_opt(row, "finished_at")?,
    })
}

impl Store {
    /// Creates a task, `queued`. Creating the same task (same id, project and kind) again
    /// returns the stored one; reusing its id for other work is a [`StoreError::Conflict`].
    #[tracing::instrument(skip(self, new), fields(task = %new.id, project = %new.project, kind = %new.kind))]
    pub async fn create_task(&self, new: &NewTask) -> Result<TaskRecord, StoreError> {
        self.insert_task(new, None).await
    }

    /// Creates an engineering task that, when it completes, creates and starts the deploy
    /// task `follow_up` (the user asked for a running service). Idempotent like
    /// [`Store::create_task`].
    #[tracing::instrument(skip(self, new), fields(task = %new.id, project = %new.project))]
    pub async fn create_task_with_follow_up(
        &self,
        new: &NewTask,
        follow_up: TaskId,
    ) -> Result<TaskRecord, StoreError> {
        self.insert_task(new, Some(follow_up)).await
    }

    async fn insert_task(
        &self,
        new: &NewTask,
        follow_up: Option<TaskId>,
    ) -> Result<TaskRecord, StoreError> {
        let inserted = sqlx::query(&format!(
            "INSERT INTO tasks (id, project_id, kind, description, session_id, follow_up) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING \
             RETURNING {TASK_COLUMNS}"
        ))
        .bind(new.id.as_uuid())
        .bind(new.project.as_uuid())
        .bind(new.kind.as_str())
        .bind(&new.description)
        .bind(new.session.map(|s| s.as_uuid()))
        .bind(follow_up.map(|t| t.as_uuid()))
        .fetch_optional(&self.pool)
        .await?;
        if let Some(row) = inserted {
            return task_from_row(&row);
        }
        let existing = self
            .task(new.id)
            .await?
            .ok_or_else(|| StoreError::NotFound {
                what: "task",
                key: new.id.to_string(),
            })?;
        if existing.project != new.project || existing.kind != new.kind {
            return Err(StoreError::Conflict {
                what: "task id",
                key: new.id.to_string(),
                detail: format!("a {} task of project {}", existing.kind, existing.project),
            });
        }
        Ok(existing)
    }

    /// The task with this id, if any.
    #[tracing::instrument(skip(self))]
    pub async fn task(&self, id: TaskId) -> Result<Option<TaskRecord>, StoreError> {
        let row = sqlx::query(&format!("SELECT {TASK_COLUMNS} FROM tasks WHERE id = $1"))
            .bind(id.as_uuid())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(task_from_row).transpose()
    }

    /// Tasks a workflow must (re)start: `queued` or `running`, oldest first. A restarted
    /// `workflows` supervisor rebuilds one workflow per task from this and the step journal.
    /// (`needs_human` tasks wait for the user, not for a workflow, and are not included.)
    #[tracing::instrument(skip(self))]
    pub async fn unfinished_tasks(&self) -> Result<Vec<TaskRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {TASK_COLUMNS} FROM tasks WHERE status IN ('queued', 'running') \
             ORDER BY created_at, id"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(task_from_row).collect()
    }

    /// Moves a task to `to`, recording `failure` when `to` is `failed` (and clearing any
    /// earlier failure otherwise). Moving from `queued` to `running` counts an attempt.
    /// A change [`TaskStatus::can_transition_to`] refuses is a [`StoreError::InvalidTransition`];
    /// setting the current status again changes nothing.
    #[tracing::instrument(skip(self))]
    pub async fn set_task_status(
        &self,
        task: TaskId,
        to: TaskStatus,
        failure: Option<&Failure>,
    ) -> Result<TaskRecord, StoreError> {
        self.transition(task, to, failure, None).await
    }

    /// Puts a failed task back to `queued` with the user's guidance; its workflow resumes at
    /// the first unfinished step.
    #[tracing::instrument(skip(self, guidance))]
    pub async fn retry_task(&self, task: TaskId, guidance: &str) -> Result<TaskRecord, StoreError> {
        self.transition(task, TaskStatus::Queued, None, Some(guidance))
            .await
    }

    /// Goes on with a task the user was asked about or that failed: `needs_human` becomes
    /// `running`, `failed` becomes `queued`, with `guidance` (when given) for the Developer.
    /// Either way the journal mark moves to the newest step row, so attempts and rework
    /// iterations start counting afresh; finished steps stay finished.
    #[tracing::instrument(skip(self, guidance))]
    pub async fn resume_task(
        &self,
        task: TaskId,
        guidance: Option<&str>,
    ) -> Result<TaskRecord, StoreError> {
        let current = self.task(task).await?.ok_or_else(|| StoreError::NotFound {
            what: "task",
            key: task.to_string(),
        })?;
        let to = match current.status {
            TaskStatus::NeedsHuman => TaskStatus::Running,
            TaskStatus::Failed => TaskStatus::Queued,
            other => {
                return Err(StoreError::InvalidTransition {
                    what: "task",
                    key: task.to_string(),
                    from: other.as_str(),
                    to: "resumed",
                });
            }
        };
        sqlx::query(
            "UPDATE tasks SET journal_mark = coalesce( \
                 (SELECT max(id) FROM task_steps WHERE task_id = $1), 0) WHERE id = $1",
        )
        .bind(task.as_uuid())
        .execute(&self.pool)
        .await?;
        self.transition(task, to, None, guidance).await
    }

    /// The tasks of a project, newest first.
    #[tracing::instrument(skip(self))]
    pub async fn project_tasks(&self, project: ProjectId) -> Result<Vec<TaskRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {TASK_COLUMNS} FROM tasks WHERE project_id = $1 ORDER BY created_at DESC, id"
        ))
        .bind(project.as_uuid())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(task_from_row).collect()
    }

    /// Tasks of `owner`'s projects (everyone's for `None`), newest first, optionally only
    /// those in `status`; at most `limit`.
    #[tracing::instrument(skip(self))]
    pub async fn tasks_of(
        &self,
        owner: Option<UserId>,
        status: Option<TaskStatus>,
        limit: u32,
    ) -> Result<Vec<TaskRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {TASK_COLUMNS} FROM tasks WHERE \
             ($1::uuid IS NULL OR project_id IN (SELECT id FROM projects WHERE owner_id = $1)) \
             AND ($2::text IS NULL OR status = $2) \
             ORDER BY created_at DESC, id LIMIT $3"
        ))
        .bind(owner.map(|o| o.as_uuid()))
        .bind(status.map(|s| s.as_str()))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(task_from_row).collect()
    }

    /// Pins deploy task `task` to `commit` (before it starts): it deploys that commit instead
    /// of the head of `main`.
    #[tracing::instrument(skip(self))]
    pub async fn pin_task_commit(&self, task: TaskId, commit: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE tasks SET commit_pin = $2 WHERE id = $1 AND kind = 'deploy'")
            .bind(task.as_uuid())
            .bind(commit)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The commit deploy task `task` is pinned to, if any.
    pub async fn task_commit_pin(&self, task: TaskId) -> Result<Option<String>, StoreError> {
        let pin: Option<Option<String>> =
            sqlx::query_scalar("SELECT commit_pin FROM tasks WHERE id = $1")
                .bind(task.as_uuid())
                .fetch_optional(&self.pool)
                .await?;
        Ok(pin.flatten())
    }

    /// The tasks a session started, oldest first.
    #[tracing::instrument(skip(self))]
    pub async fn session_tasks(&self, session: SessionId) -> Result<Vec<TaskRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {TASK_COLUMNS} FROM tasks WHERE session_id = $1 ORDER BY created_at, id"
        ))
        .bind(session.as_uuid())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(task_from_row).collect()
    }

    /// One checked status change, in a transaction holding the task's row lock.
    async fn transition(
        &self,
        task: TaskId,
        to: TaskStatus,
        failure: Option<&Failure>,
        guidance: Option<&str>,
    ) -> Result<TaskRecord, StoreError> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(&format!(
            "SELECT {TASK_COLUMNS} FROM tasks WHERE id = $1 FOR UPDATE"
        ))
        .bind(task.as_uuid())
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| StoreError::NotFound {
            what: "task",
            key: task.to_string(),
        })?;
        let current = task_from_row(&row)?;
        if current.status == to {
            tx.commit().await?;
            return Ok(current);
        }
        if !current.status.can_transition_to(to) {
            return Err(StoreError::InvalidTransition {
                what: "task",
                key: task.to_string(),
                from: current.status.as_str(),
                to: to.as_str(),
            });
        }
        let failure = failure.filter(|_| to == TaskStatus::Failed);
        let counts_attempt = current.status == TaskStatus::Queued && to == TaskStatus::Running;
        let row = sqlx::query(&format!(
            "UPDATE tasks SET status = $2, error_class = $3, error_reason = $4, \
             attempts = attempts + $5, guidance = coalesce($6, guidance), updated_at = now() \
             WHERE id = $1 RETURNING {TASK_COLUMNS}"
        ))
        .bind(task.as_uuid())
        .bind(to.as_str())
        .bind(class_name(failure))
        .bind(failure.map(|f| f.reason.as_str()))
        .bind(i32::from(counts_attempt))
        .bind(guidance)
        .fetch_one(&mut *tx)
        .await?;
        let updated = task_from_row(&row)?;
        tx.commit().await?;
        Ok(updated)
    }

    /// Journals the start of a step: inserts the next attempt of `step` for `task`, `running`,
    /// under `idempotency_key` — or, if that key is journaled already, returns that row as it
    /// is (whatever its status). Idempotent, also under concurrent calls. Reusing a key for
    /// another task or step is a [`StoreError::Conflict`]; an unknown task is
    /// [`StoreError::NotFound`].
    #[tracing::instrument(skip(self, input))]
    pub async fn begin_step(
        &self,
        task: TaskId,
        step: StepKind,
        idempotency_key: &str,
        input: &Value,
    ) -> Result<StepRecord, StoreError> {
        // Concurrent begins for one task take turns on its row lock (`FOR NO KEY UPDATE`
        // does not block the foreign-key checks of other writers). Without it, two begins
        // with the same key could both pick attempt N, and the loser would fail on the
        // (task, step, attempt) index before its ON CONFLICT on the key could apply.
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT 1 FROM tasks WHERE id = $1 FOR NO KEY UPDATE")
            .bind(task.as_uuid())
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::NotFound {
                what: "task",
                key: task.to_string(),
            })?;
        let inserted = sqlx::query(&format!(
            "INSERT INTO task_steps (task_id, step, attempt, status, idempotency_key, input, \
                                     started_at) \
             SELECT $1, $2, coalesce(max(attempt), 0) + 1, 'running', $3, $4, now() \
             FROM task_steps WHERE task_id = $1 AND step = $2 \
             ON CONFLICT (idempotency_key) DO NOTHING RETURNING {STEP_COLUMNS}"
        ))
        .bind(task.as_uuid())
        .bind(step.as_str())
        .bind(idempotency_key)
        .bind(input)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        let record = match inserted {
            Some(row) => step_from_row(&row)?,
            None => self.step_by_key(idempotency_key).await?,
        };
        if record.task != task || record.step != step {
            return Err(StoreError::Conflict {
                what: "idempotency key",
                key: idempotency_key.to_owned(),
                detail: format!("step `{}` of task {}", record.step, record.task),
            });
        }
        Ok(record)
    }

    /// Journals a step attempt's success with its output. Finishing an already succeeded
    /// attempt returns it unchanged (the first output stays); finishing a failed one is a
    /// [`StoreError::InvalidTransition`].
    #[tracing::instrument(skip(self, output))]
    pub async fn finish_step(
        &self,
        idempotency_key: &str,
        output: &Value,
    ) -> Result<StepRecord, StoreError> {
        let updated = sqlx::query(&format!(
            "UPDATE task_steps SET status = 'succeeded', output = $2, finished_at = now() \
             WHERE idempotency_key = $1 AND status = 'running' RETURNING {STEP_COLUMNS}"
        ))
        .bind(idempotency_key)
        .bind(output)
        .fetch_optional(&self.pool)
        .await?;
        self.closed_step(idempotency_key, updated, StepStatus::Succeeded)
            .await
    }

    /// Journals a step attempt's failure. Failing an already failed attempt returns it
    /// unchanged; failing a succeeded one is a [`StoreError::InvalidTransition`].
    #[tracing::instrument(skip(self))]
    pub async fn fail_step(
        &self,
        idempotency_key: &str,
        failure: &Failure,
    ) -> Result<StepRecord, StoreError> {
        let updated = sqlx::query(&format!(
            "UPDATE task_steps SET status = 'failed', error_class = $2, error_reason = $3, \
             finished_at = now() \
             WHERE idempotency_key = $1 AND status = 'running' RETURNING {STEP_COLUMNS}"
        ))
        .bind(idempotency_key)
        .bind(failure.class.as_str())
        .bind(&failure.reason)
        .fetch_optional(&self.pool)
        .await?;
        self.closed_step(idempotency_key, updated, StepStatus::Failed)
            .await
    }

    /// The result of closing a step: the updated row, or — when no running row was updated —
    /// the row as it is if it already has the wanted status, else why it could not change.
    async fn closed_step(
        &self,
        idempotency_key: &str,
        updated: Option<PgRow>,
        to: StepStatus,
    ) -> Result<StepRecord, StoreError> {
        if let Some(row) = updated {
            return step_from_row(&row);
        }
        let existing = self.step_by_key(idempotency_key).await?;
        if existing.status == to {
            return Ok(existing);
        }
        Err(StoreError::InvalidTransition {
            what: "step",
            key: idempotency_key.to_owned(),
            from: existing.status.as_str(),
            to: to.as_str(),
        })
    }

    /// The step journaled under `idempotency_key`.
    async fn step_by_key(&self, idempotency_key: &str) -> Result<StepRecord, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {STEP_COLUMNS} FROM task_steps WHERE idempotency_key = $1"
        ))
        .bind(idempotency_key)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| StoreError::NotFound {
            what: "step",
            key: idempotency_key.to_owned(),
        })?;
        step_from_row(&row)
    }

    /// Every journaled step attempt of `task`, in journal order.
    #[tracing::instrument(skip(self))]
    pub async fn steps(&self, task: TaskId) -> Result<Vec<StepRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {STEP_COLUMNS} FROM task_steps WHERE task_id = $1 ORDER BY id"
        ))
        .bind(task.as_uuid())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(step_from_row).collect()
    }
}
