//! Counts for `/metrics`: tasks and workers by status, the event journal's head, and model
//! calls' tokens and cost. Cheap aggregate queries, read on every scrape.

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
    /// Model calls, summed by role, model and status.
    pub llm: Vec<LlmTotal>,
}

/// Model calls of one role, model and status, summed over `llm_requests`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LlmTotal {
    /// Who asked.
    pub role: String,
    /// The model.
    pub model: String,
    /// `ok`, `error`, `timeout`, `rate_limited`, `cancelled`.
    pub status: String,
    /// Calls.
    pub requests: i64,
    /// Input tokens (cached ones included).
    pub tokens_in: i64,
    /// Output tokens.
    pub tokens_out: i64,
    /// Cached input tokens.
    pub tokens_cached: i64,
    /// Cost, micro-USD.
    pub cost_micro_usd: i64,
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
            llm: self.llm_totals().await?,
        })
    }

    async fn llm_totals(&self) -> Result<Vec<LlmTotal>, StoreError> {
        let rows = sqlx::query(
            "SELECT role, model, status, count(*)::bigint AS n, \
             coalesce(sum(tokens_in), 0)::bigint AS i, coalesce(sum(tokens_out), 0)::bigint AS o, \
             coalesce(sum(tokens_cached), 0)::bigint AS c, \
             coalesce(sum(cost_micro_usd), 0)::bigint AS cost \
             FROM llm_requests GROUP BY role, model, status ORDER BY role, model, status",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(LlmTotal {
                    role: row.try_get("role")?,
                    model: row.try_get("model")?,
                    status: row.try_get("status")?,
                    requests: row.try_get("n")?,
                    tokens_in: row.try_get("i")?,
                    tokens_out: row.try_get("o")?,
                    tokens_cached: row.try_get("c")?,
                    cost_micro_usd: row.try_get("cost")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
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
