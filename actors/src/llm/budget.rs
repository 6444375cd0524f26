//! Model budgets: per task, per project and per user per UTC day, checked before each call.
//!
//! A call is allowed when, for every configured cap, what was spent plus the call's
//! projected worst case stays within the cap plus what the user approved on top. The first
//! cap it would cross is [`Reached`]: the task goes to `needs_human` with its words ("spent
//! $X of $Y; approve $Z more or cancel"), and the user's yes raises that cap by `ask` through
//! [`approve`]. Nothing here goes silently over: a cap with an unknown model price is refused
//! before the task starts (see `LlmAgent::new`).

use crate::settings::LlmSettings;
use crate::store::{BudgetRaise, Spending, Store, StoreError};
use artel_messages::{ProjectId, TaskId};
use serde::{Deserialize, Serialize};

/// Which cap a call would cross.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// One task's spending (`agent.budget_usd`).
    #[default]
    Task,
    /// All of one project's spending (`llm.project_budget_usd`).
    Project,
    /// One user's spending this UTC day (`llm.user_daily_budget_usd`).
    UserDay,
}

impl Scope {
    fn words(self) -> &'static str {
        match self {
            Self::Task => "for this task",
            Self::Project => "for this project",
            Self::UserDay => "for today (all your projects)",
        }
    }

    /// The setting that configures the cap.
    pub fn setting(self) -> &'static str {
        match self {
            Self::Task => "agent.budget_usd",
            Self::Project => "llm.project_budget_usd",
            Self::UserDay => "llm.user_daily_budget_usd",
        }
    }
}

/// The configured caps, in micro-USD.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Caps {
    /// Per task.
    pub task: Option<u64>,
    /// Per project.
    pub project: Option<u64>,
    /// Per user per UTC day.
    pub user_day: Option<u64>,
}

/// USD as whole micro-USD (settings validation keeps them positive and finite).
fn micro_usd(usd: Option<f64>) -> Option<u64> {
    usd.filter(|u| u.is_finite() && *u > 0.0)
        .map(|u| (u * 1e6).round() as u64)
}

impl Caps {
    /// The caps `task_usd` (the role's per-task budget) and `[llm]` configure.
    pub fn from_settings(task_usd: Option<f64>, llm: &LlmSettings) -> Self {
        Self {
            task: micro_usd(task_usd),
            project: micro_usd(llm.project_budget_usd),
            user_day: micro_usd(llm.user_daily_budget_usd),
        }
    }

    /// Whether any cap is set (then every model needs a price).
    pub fn any(&self) -> bool {
        self.task.is_some() || self.project.is_some() || self.user_day.is_some()
    }

    /// The settings that set a cap, for messages.
    pub fn settings(&self) -> Vec<&'static str> {
        [
            (self.task, Scope::Task),
            (self.project, Scope::Project),
            (self.user_day, Scope::UserDay),
        ]
        .into_iter()
        .filter(|(cap, _)| cap.is_some())
        .map(|(_, scope)| scope.setting())
        .collect()
    }

    /// The first cap a call projected to cost up to `projected` would cross.
    pub fn reached(&self, spent: &Spending, projected: u64) -> Option<Reached> {
        let scopes = [
            (Scope::Task, self.task, spent.task, spent.task_extra),
            (
                Scope::Project,
                self.project,
                spent.project,
                spent.project_extra,
            ),
            (
                Scope::UserDay,
                self.user_day,
                spent.owner_today,
                spent.owner_today_extra,
            ),
        ];
        scopes.into_iter().find_map(|(scope, cap, spent, extra)| {
            let configured = cap?;
            let cap = configured.saturating_add(extra);
            (spent.saturating_add(projected) > cap).then_some(Reached {
                scope,
                spent,
                cap,
                projected,
                ask: configured,
            })
        })
    }
}

/// A cap the next call would cross.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reached {
    /// Which cap.
    pub scope: Scope,
    /// Spent so far where it counts.
    pub spent: u64,
    /// The cap, with what was approved on top.
    pub cap: u64,
    /// The most the next call may cost.
    pub projected: u64,
    /// What approving adds: the configured cap once more.
    pub ask: u64,
}

impl Reached {
    /// What the user is told, e.g. "the Developer's model budget for this task is reached:
    /// spent $0.0100 of $0.0100 (…); approve $0.0100 more or cancel".
    pub fn reason(&self, role: &str) -> String {
        format!(
            "the {role}'s model budget {} is reached: spent {} of {} (the next call may cost \
             up to {}); approve {} more or cancel",
            self.scope.words(),
            usd(self.spent),
            usd(self.cap),
            usd(self.projected),
            usd(self.ask)
        )
    }
}

/// `$1.2346` style, for budgets.
pub fn usd(micro: u64) -> String {
    format!("${:.4}", micro as f64 / 1e6)
}

/// Raises the `scope` cap by `micro_usd`: the user approved spending more.
pub async fn approve(
    store: &Store,
    scope: Scope,
    project: ProjectId,
    task: TaskId,
    micro_usd: u64,
    turns: u32,
) -> Result<(), StoreError> {
    match scope {
        Scope::Task => {
            store
                .raise_budget(task, BudgetRaise { micro_usd, turns })
                .await
        }
        Scope::Project => {
            store.raise_project_budget(project, micro_usd).await?;
            raise_turns(store, task, turns).await
        }
        Scope::UserDay => {
            if let Some(owner) = store.project_owner(project).await? {
                store.raise_user_day_budget(owner, micro_usd).await?;
            }
            raise_turns(store, task, turns).await
        }
    }
}

async fn raise_turns(store: &Store, task: TaskId, turns: u32) -> Result<(), StoreError> {
    if turns == 0 {
        return Ok(());
    }
    store
        .raise_budget(
            task,
            BudgetRaise {
                micro_usd: 0,
                turns,
            },
        )
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps() -> Caps {
        Caps {
            task: Some(1_000),
            project: Some(5_000),
            user_day: Some(8_000),
        }
    }

    #[test]
    fn a_call_within_every_cap_goes_ahead() {
        let spent = Spending {
            task: 400,
            project: 2_000,
            owner_today: 3_000,
            ..Spending::default()
        };
        assert_eq!(
            caps().reached(&spent, 600),
            None,
            "exactly at the cap is allowed"
        );
        assert_eq!(Caps::default().reached(&spent, u64::MAX), None);
    }

    #[test]
    fn the_first_cap_crossed_is_reported_with_the_projected_worst_case() {
        let spent = Spending {
            task: 400,
            project: 4_900,
            owner_today: 7_950,
            ..Spending::default()
        };
        let reached = caps().reached(&spent, 200).expect("project cap crossed");
        assert_eq!(reached.scope, Scope::Project);
        assert_eq!(
            (reached.spent, reached.cap, reached.ask),
            (4_900, 5_000, 5_000)
        );
        let reason = reached.reason("Developer");
        assert!(
            reason.starts_with(
                "the Developer's model budget for this project is reached: spent $0.0049 of $0.0050"
            ),
            "{reason}"
        );
        assert!(
            reason.ends_with("approve $0.0050 more or cancel"),
            "{reason}"
        );
    }

    #[test]
    fn approved_raises_lift_their_own_cap_only() {
        let spent = Spending {
            task: 400,
            project: 4_900,
            project_extra: 5_000,
            owner_today: 7_950,
            ..Spending::default()
        };
        let reached = caps().reached(&spent, 200).expect("the day's cap is next");
        assert_eq!(reached.scope, Scope::UserDay);
        assert_eq!(reached.cap, 8_000);
    }

    #[test]
    fn dollars_are_shown_to_the_hundredth_of_a_cent() {
        assert_eq!(usd(1_234_567), "$1.2346");
        assert_eq!(usd(0), "$0.0000");
    }

    #[test]
    fn settings_name_every_cap_that_is_set() {
        let llm = LlmSettings {
            user_daily_budget_usd: Some(2.5),
            ..LlmSettings::default()
        };
        let caps = Caps::from_settings(Some(0.01), &llm);
        assert_eq!(caps.task, Some(10_000));
        assert_eq!(caps.user_day, Some(2_500_000));
        assert!(caps.any());
        assert_eq!(
            caps.settings(),
            vec!["agent.budget_usd", "llm.user_daily_budget_usd"]
        );
        assert!(!Caps::default().any());
    }
}
