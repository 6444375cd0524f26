//! The `workers` table: each worker's row, written at every lifecycle change.
//!
//! Postgres is the source of truth (DESIGN.md rule 2): a worker's status, limits, workspace,
//! failure and stop reason are in its row, so the dashboard, a restarted artel and the
//! worker-reaper all see what the manager saw. The queries live next to the manager (the only
//! writer) and use the store's pool.

use crate::store::{Store, StoreError};
use artel_messages::dto::WorkerDto;
use artel_messages::worker_manager::{WorkerLimits, WorkerRuntime, WorkerSpec};
use artel_messages::{Failure, ProjectId, TaskId, Timestamp, WorkerId, WorkerStatus};
use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::postgres::PgRow;

const COLUMNS: &str = "id, project_id, task_id, runtime, status, cpu_seconds, memory_bytes, \
                       pids, file_size_bytes, wall_clock_timeout_secs, created_at, updated_at";

fn decode<'r, T>(row: &'r PgRow, column: &'static str) -> Result<T, StoreError>
where
    T: sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
{
    row.try_get(column).map_err(|err| StoreError::Decode {
        what: column,
        reason: err.to_string(),
    })
}

fn unsigned<T: TryFrom<i64>>(row: &PgRow, column: &'static str) -> Result<T, StoreError> {
    let value: i64 = match decode::<i64>(row, column) {
        Ok(value) => value,
        Err(_) => i64::from(decode::<i32>(row, column)?),
    };
    T::try_from(value).map_err(|_| StoreError::Decode {
        what: column,
        reason: format!("{value} is out of range"),
    })
}

fn parsed<T>(row: &PgRow, column: &'static str) -> Result<T, StoreError>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    let text: String = decode(row, column)?;
    text.parse().map_err(|err: T::Err| StoreError::Decode {
        what: column,
        reason: err.to_string(),
    })
}

fn worker_from_row(row: &PgRow) -> Result<WorkerDto, StoreError> {
    Ok(WorkerDto {
        id: WorkerId::from_uuid(decode(row, "id")?),
        project: ProjectId::from_uuid(decode(row, "project_id")?),
        task: TaskId::from_uuid(decode(row, "task_id")?),
        runtime: parsed::<WorkerRuntime>(row, "runtime")?,
        status: parsed::<WorkerStatus>(row, "status")?,
        limits: WorkerLimits {
            cpu_seconds: unsigned(row, "cpu_seconds")?,
            memory_bytes: unsigned(row, "memory_bytes")?,
            pids: unsigned(row, "pids")?,
            file_size_bytes: unsigned(row, "file_size_bytes")?,
            wall_clock_timeout_secs: unsigned(row, "wall_clock_timeout_secs")?,
        },
        created_at: Timestamp::from_datetime(decode::<DateTime<Utc>>(row, "created_at")?),
        updated_at: Timestamp::from_datetime(decode::<DateTime<Utc>>(row, "updated_at")?),
    })
}

fn signed(value: u64, what: &'static str) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::Invalid {
        what,
        reason: format!("{value} is too large"),
    })
}

/// Inserts a new worker, `started`.
pub(super) async fn insert(
    store: &Store,
    id: WorkerId,
    spec: &WorkerSpec,
    owner: Option<&str>,
) -> Result<WorkerDto, StoreError> {
    let limits = &spec.limits;
    let row = sqlx::query(&format!(
        "INSERT INTO workers (id, project_id, task_id, runtime, status, image, cpu_seconds, \
         memory_bytes, pids, file_size_bytes, wall_clock_timeout_secs, owner) \
         VALUES ($1, $2, $3, $4, 'started', $5, $6, $7, $8, $9, $10, $11) RETURNING {COLUMNS}"
    ))
    .bind(id.as_uuid())
    .bind(spec.project.as_uuid())
    .bind(spec.task.as_uuid())
    .bind(spec.runtime.as_str())
    .bind(spec.image.as_deref())
    .bind(signed(limits.cpu_seconds, "cpu_seconds")?)
    .bind(signed(limits.memory_bytes, "memory_bytes")?)
    .bind(i32::try_from(limits.pids).map_err(|_| StoreError::Invalid {
        what: "pids",
        reason: format!("{} is too large", limits.pids),
    })?)
    .bind(signed(limits.file_size_bytes, "file_size_bytes")?)
    .bind(signed(
        limits.wall_clock_timeout_secs,
        "wall_clock_timeout_secs",
    )?)
    .bind(owner)
    .fetch_one(store.pool())
    .await?;
    worker_from_row(&row)
}

/// Sets a worker's status (with its failure or stop reason, when given) and answers the row.
pub(super) async fn set_status(
    store: &Store,
    id: WorkerId,
    status: WorkerStatus,
    failure: Option<&Failure>,
    stop_reason: Option<&str>,
) -> Result<WorkerDto, StoreError> {
    let row = sqlx::query(&format!(
        "UPDATE workers SET status = $2, \
         error_class = COALESCE($3, error_class), error_reason = COALESCE($4, error_reason), \
         stop_reason = COALESCE($5, stop_reason), \
         handle = CASE WHEN $2 IN ('completed', 'failed', 'stopped') THEN NULL ELSE handle END, \
         updated_at = now() WHERE id = $1 RETURNING {COLUMNS}"
    ))
    .bind(id.as_uuid())
    .bind(status.as_str())
    .bind(failure.map(|f| f.class.as_str()))
    .bind(failure.map(|f| f.reason.as_str()))
    .bind(stop_reason)
    .fetch_optional(store.pool())
    .await?
    .ok_or_else(|| StoreError::NotFound {
        what: "worker",
        key: id.to_string(),
    })?;
    worker_from_row(&row)
}

/// Records where a worker's sandbox is and whom it runs as.
pub(super) async fn set_sandbox(
    store: &Store,
    id: WorkerId,
    workspace: Option<&str>,
    uid: Option<u32>,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE workers SET workspace = $2, run_as_uid = $3 WHERE id = $1")
        .bind(id.as_uuid())
        .bind(workspace)
        .bind(uid.map(i64::from))
        .execute(store.pool())
        .await?;
    Ok(())
}

/// Records the handle (process group) of the command running in a worker.
pub(super) async fn set_handle(
    store: &Store,
    id: WorkerId,
    handle: Option<&str>,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE workers SET handle = $2 WHERE id = $1")
        .bind(id.as_uuid())
        .bind(handle)
        .execute(store.pool())
        .await?;
    Ok(())
}

/// A worker a previous run of this process left behind.
pub(super) struct Orphan {
    pub id: WorkerId,
    pub workspace: Option<String>,
    pub uid: Option<u32>,
}

/// Workers of `owner` that were never stopped.
pub(super) async fn orphans(store: &Store, owner: &str) -> Result<Vec<Orphan>, StoreError> {
    let rows = sqlx::query(
        "SELECT id, workspace, run_as_uid FROM workers WHERE owner = $1 AND status <> 'stopped'",
    )
    .bind(owner)
    .fetch_all(store.pool())
    .await?;
    rows.iter()
        .map(|row| {
            let uid: Option<i64> = decode(row, "run_as_uid")?;
            Ok(Orphan {
                id: WorkerId::from_uuid(decode(row, "id")?),
                workspace: decode(row, "workspace")?,
                uid: uid.and_then(|u| u32::try_from(u).ok()),
            })
        })
        .collect()
}

/// The worker with this id, if any.
pub(super) async fn load(store: &Store, id: WorkerId) -> Result<Option<WorkerDto>, StoreError> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM workers WHERE id = $1"))
        .bind(id.as_uuid())
        .fetch_optional(store.pool())
        .await?;
    row.as_ref().map(worker_from_row).transpose()
}

/// The newest workers of `owner`'s projects (everyone's for `None`), at most `limit`.
pub(super) async fn list(
    store: &Store,
    owner: Option<artel_messages::UserId>,
    limit: u32,
) -> Result<Vec<WorkerDto>, StoreError> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM workers WHERE \
         ($1::uuid IS NULL OR project_id IN (SELECT id FROM projects WHERE owner_id = $1)) \
         ORDER BY created_at DESC, id LIMIT $2"
    ))
    .bind(owner.map(|o| o.as_uuid()))
    .bind(i64::from(limit))
    .fetch_all(store.pool())
    .await?;
    rows.iter().map(worker_from_row).collect()
}
