//! Counts for `/metrics`: tasks and workers by status, and the event journal's head. Cheap
//! aggregate queries over indexed status columns, read on every scrape.

use super::{Store, StoreError};
use sqlx::Row;

/// How many rows are in each status; statuses with no row are absent.
pub type StatusCounts = Vec<(String, i64)>;

/// What `/metrics` reads from the database.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Tasks by status.
    pub tasks: StatusCounts,
    /// Workers by status.
    pub workers: StatusCounts,
    /// The newest event id (0 when there is none): how many events were ever appended.
    pub events: i64,
}

impl Store {
    /// Task and worker counts by status, and the event journal's head.
    #[tracing::instrument(skip(self))]
    pub async fn stats(&self) -> Result<Stats, StoreError> {
        Ok(Stats {
            tasks: self.counts("tasks").await?,
            workers: self.counts("workers").await?,
            events: sqlx::query_scalar("SELECT coalesce(max(id), 0) FROM events")
                .fetch_one(&self.pool)
                .await?,
        })
    }

    async fn counts(&self, table: &'static str) -> Result<StatusCounts, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT status, count(*) AS n FROM {table} GROUP BY status ORDER BY status"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| Ok((row.try_get("status")?, row.try_get("n")?)))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }
}
