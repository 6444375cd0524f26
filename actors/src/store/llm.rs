//! What the models cost and what the built-in agent said: `llm_requests`, `agent_turns` and
//! `task_budgets`.
//!
//! Every model call is one [`LlmRequestRow`] (accounting: the usage API, the budget checks
//! and the metrics read these rows). The agent's conversation is journaled turn by turn in
//! `agent_turns`, so a Developer restarted mid-task resumes without asking the model again
//! for what it already answered. A task's budget is the configured one plus what the user
//! approved on top (`task_budgets`).

use super::rows::get;
use super::{Store, StoreError};
use artel_messages::{ProjectId, TaskId, UserId};

/// One model call, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LlmRequestRow {
    /// The project it was for.
    pub project: Option<ProjectId>,
    /// The task it was for.
    pub task: Option<TaskId>,
    /// Who asked: `Developer`, `ProductOwner`.
    pub role: String,
    /// The dialect: `openai`, `anthropic`.
    pub provider: String,
    /// The model.
    pub model: String,
    /// Input tokens, cached ones included.
    pub tokens_in: u64,
    /// Output tokens.
    pub tokens_out: u64,
    /// Input tokens served from the provider's cache.
    pub tokens_cached: u64,
    /// The cost, in micro-USD (0 when the model has no price).
    pub cost_micro_usd: u64,
    /// How long the call took.
    pub latency_ms: u64,
    /// `ok`, `error`, `timeout`, `rate_limited`, `cancelled`.
    pub status: &'static str,
    /// The error, for a failed call.
    pub error: Option<String>,
}

/// Usage summed over some calls.
pub use artel_messages::dto::LlmUsageDto as LlmUsage;

/// What the user approved on top of a task's configured budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BudgetRaise {
    /// Extra micro-USD.
    pub micro_usd: u64,
    /// Extra turns.
    pub turns: u32,
}

/// What was spent on models where a call would count, and what was approved on top of each
/// configured cap, in micro-USD: the figures a budget check needs, read at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Spending {
    /// The project's owner, whose daily budget the call counts against.
    pub owner: Option<UserId>,
    /// Spent by the task.
    pub task: u64,
    /// Approved on top of the task's cap.
    pub task_extra: u64,
    /// Spent by the project.
    pub project: u64,
    /// Approved on top of the project's cap.
    pub project_extra: u64,
    /// Spent by the owner's projects this UTC day.
    pub owner_today: u64,
    /// Approved on top of the owner's cap for this UTC day.
    pub owner_today_extra: u64,
}

fn micro(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

fn micro_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn clamp(n: u64) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

impl Store {
    /// Records one model call.
    #[tracing::instrument(skip(self, row), fields(role = %row.role, model = %row.model))]
    pub async fn record_llm_request(&self, row: &LlmRequestRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO llm_requests (project_id, task_id, role, provider, model, tokens_in, \
             tokens_out, tokens_cached, cost_micro_usd, latency_ms, status, error) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(row.project.map(|p| p.as_uuid()))
        .bind(row.task.map(|t| t.as_uuid()))
        .bind(&row.role)
        .bind(&row.provider)
        .bind(&row.model)
        .bind(clamp(row.tokens_in))
        .bind(clamp(row.tokens_out))
        .bind(clamp(row.tokens_cached))
        .bind(i64::try_from(row.cost_micro_usd).unwrap_or(i64::MAX))
        .bind(clamp(row.latency_ms))
        .bind(row.status)
        .bind(&row.error)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The usage of one task's calls.
    pub async fn task_llm_usage(&self, task: TaskId) -> Result<LlmUsage, StoreError> {
        self.llm_usage("task_id", task.as_uuid()).await
    }

    /// The usage of one project's calls.
    pub async fn project_llm_usage(&self, project: ProjectId) -> Result<LlmUsage, StoreError> {
        self.llm_usage("project_id", project.as_uuid()).await
    }

    async fn llm_usage(
        &self,
        column: &'static str,
        id: uuid::Uuid,
    ) -> Result<LlmUsage, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT count(*)::bigint AS requests, coalesce(sum(tokens_in), 0)::bigint AS i, \
             coalesce(sum(tokens_out), 0)::bigint AS o, \
             coalesce(sum(tokens_cached), 0)::bigint AS c, \
             coalesce(sum(cost_micro_usd), 0)::bigint AS cost \
             FROM llm_requests WHERE {column} = $1"
        ))
        .bind(id)
        .fetch_one(&self.pool)
        .await?;
        let n = |name: &'static str| -> Result<u64, StoreError> {
            Ok(u64::try_from(get::<i64>(&row, name)?).unwrap_or(0))
        };
        Ok(LlmUsage {
            requests: n("requests")?,
            tokens_in: n("i")?,
            tokens_out: n("o")?,
            tokens_cached: n("c")?,
            cost_micro_usd: n("cost")?,
        })
    }

    /// The agent's journaled conversation of `task`, oldest first.
    pub async fn agent_turns(&self, task: TaskId) -> Result<Vec<serde_json::Value>, StoreError> {
        let rows = sqlx::query("SELECT message FROM agent_turns WHERE task_id = $1 ORDER BY seq")
            .bind(task.as_uuid())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|row| get(row, "message")).collect()
    }

    /// Journals turn number `seq` of `task`'s conversation. Writing a number twice keeps the
    /// first (a replayed write after a crash changes nothing).
    pub async fn append_agent_turn(
        &self,
        task: TaskId,
        seq: usize,
        message: &serde_json::Value,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO agent_turns (task_id, seq, message) VALUES ($1, $2, $3) \
             ON CONFLICT (task_id, seq) DO NOTHING",
        )
        .bind(task.as_uuid())
        .bind(i32::try_from(seq).unwrap_or(i32::MAX))
        .bind(message)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// What the user approved on top of `task`'s budget so far.
    pub async fn budget_raise(&self, task: TaskId) -> Result<BudgetRaise, StoreError> {
        let row =
            sqlx::query("SELECT extra_micro_usd, extra_turns FROM task_budgets WHERE task_id = $1")
                .bind(task.as_uuid())
                .fetch_optional(&self.pool)
                .await?;
        let Some(row) = row else {
            return Ok(BudgetRaise::default());
        };
        Ok(BudgetRaise {
            micro_usd: u64::try_from(get::<i64>(&row, "extra_micro_usd")?).unwrap_or(0),
            turns: u32::try_from(get::<i32>(&row, "extra_turns")?).unwrap_or(0),
        })
    }

    /// Raises `task`'s budget by `raise` (the user approved spending more).
    pub async fn raise_budget(&self, task: TaskId, raise: BudgetRaise) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO task_budgets (task_id, extra_micro_usd, extra_turns) VALUES ($1, $2, $3) \
             ON CONFLICT (task_id) DO UPDATE SET \
             extra_micro_usd = task_budgets.extra_micro_usd + EXCLUDED.extra_micro_usd, \
             extra_turns = task_budgets.extra_turns + EXCLUDED.extra_turns",
        )
        .bind(task.as_uuid())
        .bind(i64::try_from(raise.micro_usd).unwrap_or(i64::MAX))
        .bind(i32::try_from(raise.turns).unwrap_or(i32::MAX))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// What `project` (and `task`, and the project's owner today) spent and had approved.
    pub async fn spending(
        &self,
        project: ProjectId,
        task: Option<TaskId>,
    ) -> Result<Spending, StoreError> {
        let row = sqlx::query(
            "WITH today AS (SELECT (now() AT TIME ZONE 'UTC')::date AS day), \
             owner AS (SELECT owner_id FROM projects WHERE id = $1) \
             SELECT (SELECT owner_id FROM owner) AS owner, \
             (SELECT coalesce(sum(cost_micro_usd), 0)::bigint FROM llm_requests \
               WHERE task_id = $2) AS task, \
             (SELECT coalesce(max(extra_micro_usd), 0)::bigint FROM task_budgets \
               WHERE task_id = $2) AS task_extra, \
             (SELECT coalesce(sum(cost_micro_usd), 0)::bigint FROM llm_requests \
               WHERE project_id = $1) AS project, \
             (SELECT coalesce(max(extra_micro_usd), 0)::bigint FROM project_budgets \
               WHERE project_id = $1) AS project_extra, \
             (SELECT coalesce(sum(r.cost_micro_usd), 0)::bigint FROM llm_requests r \
               JOIN projects p ON p.id = r.project_id, today \
               WHERE p.owner_id = (SELECT owner_id FROM owner) \
               AND r.at >= (today.day::timestamp AT TIME ZONE 'UTC')) AS owner_today, \
             (SELECT coalesce(max(b.extra_micro_usd), 0)::bigint FROM user_day_budgets b, today \
               WHERE b.user_id = (SELECT owner_id FROM owner) AND b.day = today.day) \
               AS owner_today_extra",
        )
        .bind(project.as_uuid())
        .bind(task.map(|t| t.as_uuid()))
        .fetch_one(&self.pool)
        .await?;
        Ok(Spending {
            owner: get::<Option<uuid::Uuid>>(&row, "owner")?.map(UserId::from_uuid),
            task: micro(get(&row, "task")?),
            task_extra: micro(get(&row, "task_extra")?),
            project: micro(get(&row, "project")?),
            project_extra: micro(get(&row, "project_extra")?),
            owner_today: micro(get(&row, "owner_today")?),
            owner_today_extra: micro(get(&row, "owner_today_extra")?),
        })
    }

    /// Raises `project`'s model budget by `micro_usd` (its owner approved spending more).
    pub async fn raise_project_budget(
        &self,
        project: ProjectId,
        micro_usd: u64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO project_budgets (project_id, extra_micro_usd) VALUES ($1, $2) \
             ON CONFLICT (project_id) DO UPDATE SET \
             extra_micro_usd = project_budgets.extra_micro_usd + EXCLUDED.extra_micro_usd",
        )
        .bind(project.as_uuid())
        .bind(micro_i64(micro_usd))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Raises `user`'s model budget for this UTC day by `micro_usd`.
    pub async fn raise_user_day_budget(
        &self,
        user: UserId,
        micro_usd: u64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO user_day_budgets (user_id, day, extra_micro_usd) \
             VALUES ($1, (now() AT TIME ZONE 'UTC')::date, $2) \
             ON CONFLICT (user_id, day) DO UPDATE SET \
             extra_micro_usd = user_day_budgets.extra_micro_usd + EXCLUDED.extra_micro_usd",
        )
        .bind(user.as_uuid())
        .bind(micro_i64(micro_usd))
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
