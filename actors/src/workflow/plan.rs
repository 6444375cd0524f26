//! What a task does next, decided from its journal alone.
//!
//! A workflow keeps nothing in memory, so "what now?" is a pure function of the task row and
//! its step journal. That makes resuming after a crash the same code path as going on after
//! a step, and it makes the loops explicit and bounded:
//!
//! - **Engineering**: write_spec → scaffold → develop → test. The spec waits for the user
//!   (unless `analyst.confirm` is off): the task goes `needs_human` with a reason starting
//!   [`SPEC_QUESTION`]; a resume with new guidance is a correction (write_spec again, and ask
//!   again), a resume without is the yes. Guidance given later (after failing tests) edits the
//!   spec first, then the work goes on. A test report with `"success": false` sends
//!   the work back to develop with that report (the rework loop), at most
//!   [`PlanLimits::max_rework_iterations`] develop runs per round; past that the task waits
//!   for a human with the last test output.
//! - **Deploy**: analyze_env → resolve_secrets → deploy → health_check. A resolution that
//!   lists `missing` secrets makes the task wait for a human (the user gives the secret and
//!   the task resumes, which resolves again).
//!
//! A *round* is everything journaled after the task's `journal_mark` (moved on every retry
//! by the user), so a retry gets fresh budgets while finished steps stay finished.
//!
//! Each step gets one JSON object as input: the task's description and guidance, the
//! iteration, and the latest output of every step that has succeeded so far, under the
//! step's name (`"scaffold"`, `"develop"`, `"test"`, …). A step reads what it needs.

use crate::store::{StepRecord, TaskRecord};
use artel_messages::{StepKind, StepStatus, TaskKind};
use serde_json::{Map, Value, json};

/// How far the loops may go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanLimits {
    /// Develop runs per round of the rework loop before the task needs a human.
    pub max_rework_iterations: u32,
}

impl Default for PlanLimits {
    fn default() -> Self {
        Self {
            max_rework_iterations: 3,
        }
    }
}

/// The decision.
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    /// Run this step with this input. `occurrence` counts the step's successful runs before
    /// this one plus one (the rework loop's iteration for develop and test).
    Run {
        /// Which step.
        step: StepKind,
        /// What it gets.
        input: Value,
        /// Which occurrence of the step this is, from 1.
        occurrence: u32,
    },
    /// Every step is done.
    Complete,
    /// Stop and ask the user; `reason` says what for.
    NeedsHuman {
        /// What the user must do.
        reason: String,
        /// The secrets the user is asked for (empty when the question is not about secrets).
        waiting_for: Vec<String>,
    },
}

/// How the reason of a task that waits for the user's yes on its spec starts.
pub const SPEC_QUESTION: &str = "please confirm the spec";

/// True unless the output is a test report that says the tests failed.
pub fn tests_passed(output: &Value) -> bool {
    output.get("success") != Some(&Value::Bool(false))
}

/// The names of secrets a resolution reports missing.
pub fn missing_secrets(output: &Value) -> Vec<String> {
    output
        .get("missing")
        .and_then(Value::as_array)
        .map(|names| {
            names
                .iter()
                .filter_map(|n| n.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// What `task` does next, given its journal (in journal order).
pub fn next(task: &TaskRecord, journal: &[StepRecord], limits: PlanLimits) -> Next {
    let succeeded: Vec<&StepRecord> = journal
        .iter()
        .filter(|s| s.status == StepStatus::Succeeded)
        .collect();
    let occurrence =
        |step: StepKind| 1 + succeeded.iter().filter(|s| s.step == step).count() as u32;
    let run = |step: StepKind| Next::Run {
        step,
        input: context(task, &succeeded, occurrence(StepKind::Develop)),
        occurrence: occurrence(step),
    };
    let Some(last) = succeeded.last() else {
        return run(first_step(task.kind));
    };
    let output = last.output.clone().unwrap_or(Value::Null);
    let this_round = last.id > task.journal_mark;
    let done = |step: StepKind| succeeded.iter().any(|s| s.step == step);
    // Guidance the latest spec has not taken in yet: a correction to make first.
    let applied = succeeded
        .iter()
        .rev()
        .find(|s| s.step == StepKind::WriteSpec)
        .and_then(|s| s.output.as_ref())
        .and_then(|o| o.get("guidance"))
        .and_then(Value::as_str);
    let fresh_guidance =
        done(StepKind::WriteSpec) && task.guidance.as_deref().is_some_and(|g| Some(g) != applied);
    match last.step {
        StepKind::WriteSpec => {
            let confirmed = output.get("confirmed") == Some(&Value::Bool(true));
            if !confirmed && this_round {
                Next::NeedsHuman {
                    reason: spec_question(&output),
                    waiting_for: Vec::new(),
                }
            } else if !confirmed && fresh_guidance {
                run(StepKind::WriteSpec)
            } else if done(StepKind::Scaffold) {
                run(StepKind::Develop)
            } else {
                run(StepKind::Scaffold)
            }
        }
        StepKind::Scaffold => run(StepKind::Develop),
        // The agent stopped for a human (budget, stuck): wait for them; once they resumed the
        // task (a new round), develop again.
        StepKind::Develop => match output.get("needs_human").and_then(Value::as_str) {
            Some(reason) if this_round => Next::NeedsHuman {
                reason: reason.to_owned(),
                waiting_for: Vec::new(),
            },
            Some(_) => run(StepKind::Develop),
            None => run(StepKind::Test),
        },
        StepKind::Test if tests_passed(&output) => Next::Complete,
        StepKind::Test if !this_round && fresh_guidance => run(StepKind::WriteSpec),
        StepKind::Test => {
            let iterations = succeeded
                .iter()
                .filter(|s| s.step == StepKind::Develop && s.id > task.journal_mark)
                .count() as u32;
            if iterations < limits.max_rework_iterations {
                run(StepKind::Develop)
            } else {
                let tail = output
                    .get("output_tail")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                Next::NeedsHuman {
                    reason: format!(
                        "the tests still fail after {iterations} development iterations; \
                         retry with guidance or cancel. Last test output:\n{}",
                        last_lines(tail, 15)
                    ),
                    waiting_for: Vec::new(),
                }
            }
        }
        StepKind::AnalyzeEnv => run(StepKind::ResolveSecrets),
        StepKind::ResolveSecrets => {
            let missing = missing_secrets(&output);
            if missing.is_empty() {
                run(StepKind::Deploy)
            } else if this_round {
                Next::NeedsHuman {
                    reason: format!(
                        "waiting for {}: only you can give {}",
                        missing.join(", "),
                        if missing.len() == 1 { "it" } else { "them" }
                    ),
                    waiting_for: missing,
                }
            } else {
                run(StepKind::ResolveSecrets)
            }
        }
        StepKind::Deploy => run(StepKind::HealthCheck),
        StepKind::HealthCheck => Next::Complete,
    }
}

fn first_step(kind: TaskKind) -> StepKind {
    match kind {
        TaskKind::Engineering => StepKind::WriteSpec,
        TaskKind::Deploy => StepKind::AnalyzeEnv,
    }
}

/// The input every step gets: see the module docs.
fn context(task: &TaskRecord, succeeded: &[&StepRecord], iteration: u32) -> Value {
    let mut context = Map::new();
    context.insert("description".into(), json!(task.description));
    context.insert("guidance".into(), json!(task.guidance));
    context.insert("iteration".into(), json!(iteration));
    for step in succeeded {
        context.insert(
            step.step.as_str().to_owned(),
            step.output.clone().unwrap_or(Value::Null),
        );
    }
    Value::Object(context)
}

/// The question a written spec asks: [`SPEC_QUESTION`], the version, the spec, and what of
/// the last correction could not be applied.
fn spec_question(output: &Value) -> String {
    let version = output
        .pointer("/spec/version")
        .and_then(Value::as_u64)
        .unwrap_or(1);
    let summary = output.get("summary").and_then(Value::as_str).unwrap_or("");
    let mut reason = format!("{SPEC_QUESTION} (version {version}):\n{summary}");
    let not_applied: Vec<&str> = output
        .get("not_applied")
        .and_then(Value::as_array)
        .map(|parts| parts.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if !not_applied.is_empty() {
        reason.push_str(&format!(
            "\nI could not apply: {} (the Developer still gets it as guidance).",
            not_applied.join("; ")
        ));
    }
    reason
}

fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use artel_messages::{ProjectId, TaskId, TaskStatus, Timestamp};

    fn task(kind: TaskKind, mark: i64) -> TaskRecord {
        TaskRecord {
            id: TaskId::new(),
            project: ProjectId::new(),
            kind,
            status: TaskStatus::Running,
            description: "a todo list".into(),
            session: None,
            guidance: None,
            attempts: 1,
            failure: None,
            journal_mark: mark,
            follow_up: None,
            created_at: Timestamp::now(),
            updated_at: Timestamp::now(),
        }
    }

    fn row(id: i64, step: StepKind, status: StepStatus, output: Value) -> StepRecord {
        StepRecord {
            id,
            task: TaskId::new(),
            step,
            attempt: 1,
            status,
            idempotency_key: format!("k{id}"),
            input: json!({}),
            output: (status == StepStatus::Succeeded).then_some(output),
            failure: None,
            created_at: Timestamp::now(),
            started_at: None,
            finished_at: None,
        }
    }

    fn ok(id: i64, step: StepKind, output: Value) -> StepRecord {
        row(id, step, StepStatus::Succeeded, output)
    }

    fn step_of(next: &Next) -> Option<StepKind> {
        match next {
            Next::Run { step, .. } => Some(*step),
            _ => None,
        }
    }

    const LIMITS: PlanLimits = PlanLimits {
        max_rework_iterations: 2,
    };

    fn spec(confirmed: bool, guidance: Option<&str>) -> Value {
        json!({"spec": {"version": 1}, "confirmed": confirmed, "guidance": guidance,
               "summary": "Todo list: todos (title)", "not_applied": []})
    }

    #[test]
    fn engineering_runs_in_order_and_completes_when_tests_pass() {
        let t = task(TaskKind::Engineering, 0);
        assert_eq!(step_of(&next(&t, &[], LIMITS)), Some(StepKind::WriteSpec));
        let mut journal = vec![ok(1, StepKind::WriteSpec, spec(true, None))];
        assert_eq!(
            step_of(&next(&t, &journal, LIMITS)),
            Some(StepKind::Scaffold)
        );
        journal.push(ok(2, StepKind::Scaffold, json!({"repo": "r"})));
        assert_eq!(
            step_of(&next(&t, &journal, LIMITS)),
            Some(StepKind::Develop)
        );
        journal.push(ok(3, StepKind::Develop, json!({"commit": "abc"})));
        let Next::Run { input, .. } = next(&t, &journal, LIMITS) else {
            panic!("expected test")
        };
        assert_eq!(input["develop"]["commit"], "abc");
        assert_eq!(input["scaffold"]["repo"], "r");
        assert_eq!(input["write_spec"]["spec"]["version"], 1);
        journal.push(ok(4, StepKind::Test, json!({"success": true})));
        assert_eq!(next(&t, &journal, LIMITS), Next::Complete);
    }

    #[test]
    fn failing_tests_go_back_to_develop_until_the_budget_then_ask_a_human() {
        let mut t = task(TaskKind::Engineering, 0);
        let failing = json!({"success": false, "output_tail": "FAIL: test_create"});
        let mut journal = vec![
            ok(1, StepKind::Scaffold, json!({})),
            ok(2, StepKind::Develop, json!({})),
            ok(3, StepKind::Test, failing.clone()),
        ];
        let Next::Run {
            step,
            input,
            occurrence,
        } = next(&t, &journal, LIMITS)
        else {
            panic!("expected rework")
        };
        assert_eq!((step, occurrence), (StepKind::Develop, 2));
        assert_eq!(input["test"]["output_tail"], "FAIL: test_create");
        assert_eq!(input["iteration"], 2);
        journal.push(ok(4, StepKind::Develop, json!({})));
        journal.push(ok(5, StepKind::Test, failing.clone()));
        let Next::NeedsHuman { reason, .. } = next(&t, &journal, LIMITS) else {
            panic!("expected needs_human")
        };
        assert!(reason.contains("2 development iterations"), "{reason}");
        assert!(reason.contains("FAIL: test_create"), "{reason}");
        // The user retries with guidance: a fresh budget, finished steps stay finished.
        t.journal_mark = 5;
        assert_eq!(
            step_of(&next(&t, &journal, LIMITS)),
            Some(StepKind::Develop)
        );
    }

    #[test]
    fn an_unconfirmed_spec_asks_the_user_and_a_correction_rewrites_it_before_the_yes_builds_it() {
        let mut t = task(TaskKind::Engineering, 0);
        let mut journal = vec![ok(1, StepKind::WriteSpec, spec(false, None))];
        let Next::NeedsHuman {
            reason,
            waiting_for,
        } = next(&t, &journal, LIMITS)
        else {
            panic!("expected the spec question")
        };
        assert!(reason.starts_with(SPEC_QUESTION), "{reason}");
        assert!(reason.contains("Todo list: todos (title)"), "{reason}");
        assert!(waiting_for.is_empty());
        // The user answers with a correction: the spec is written again, with it.
        t.journal_mark = 1;
        t.guidance = Some("add a due date".into());
        assert_eq!(
            step_of(&next(&t, &journal, LIMITS)),
            Some(StepKind::WriteSpec)
        );
        journal.push(ok(
            2,
            StepKind::WriteSpec,
            spec(false, Some("add a due date")),
        ));
        assert!(matches!(
            next(&t, &journal, LIMITS),
            Next::NeedsHuman { .. }
        ));
        // Then "yes": the same guidance, already applied, so the build starts.
        t.journal_mark = 2;
        assert_eq!(
            step_of(&next(&t, &journal, LIMITS)),
            Some(StepKind::Scaffold)
        );
    }

    #[test]
    fn guidance_after_failing_tests_edits_the_spec_and_goes_back_to_develop() {
        let mut t = task(TaskKind::Engineering, 0);
        let failing = json!({"success": false, "output_tail": "FAIL"});
        let mut journal = vec![
            ok(1, StepKind::WriteSpec, spec(true, None)),
            ok(2, StepKind::Scaffold, json!({})),
            ok(3, StepKind::Develop, json!({})),
            ok(4, StepKind::Test, failing.clone()),
            ok(5, StepKind::Develop, json!({})),
            ok(6, StepKind::Test, failing),
        ];
        assert!(matches!(
            next(&t, &journal, LIMITS),
            Next::NeedsHuman { .. }
        ));
        t.journal_mark = 6;
        t.guidance = Some("tags are a list".into());
        assert_eq!(
            step_of(&next(&t, &journal, LIMITS)),
            Some(StepKind::WriteSpec)
        );
        journal.push(ok(
            7,
            StepKind::WriteSpec,
            spec(true, Some("tags are a list")),
        ));
        assert_eq!(
            step_of(&next(&t, &journal, LIMITS)),
            Some(StepKind::Develop)
        );
    }

    #[test]
    fn missing_secrets_wait_for_a_human_once_per_round() {
        let mut t = task(TaskKind::Deploy, 0);
        let journal = vec![
            ok(1, StepKind::AnalyzeEnv, json!({})),
            ok(2, StepKind::ResolveSecrets, json!({"missing": ["API_KEY"]})),
        ];
        let Next::NeedsHuman {
            reason,
            waiting_for,
        } = next(&t, &journal, LIMITS)
        else {
            panic!("expected needs_human")
        };
        assert!(reason.contains("API_KEY"), "{reason}");
        assert_eq!(waiting_for, ["API_KEY"]);
        t.journal_mark = 2;
        assert_eq!(
            step_of(&next(&t, &journal, LIMITS)),
            Some(StepKind::ResolveSecrets)
        );
        let mut journal = journal;
        journal.push(ok(3, StepKind::ResolveSecrets, json!({"missing": []})));
        assert_eq!(step_of(&next(&t, &journal, LIMITS)), Some(StepKind::Deploy));
        journal.push(ok(4, StepKind::Deploy, json!({})));
        journal.push(ok(5, StepKind::HealthCheck, json!({})));
        assert_eq!(next(&t, &journal, LIMITS), Next::Complete);
    }

    #[test]
    fn failed_attempts_do_not_advance_the_plan() {
        let t = task(TaskKind::Deploy, 0);
        let journal = vec![row(1, StepKind::AnalyzeEnv, StepStatus::Failed, json!({}))];
        assert_eq!(
            step_of(&next(&t, &journal, LIMITS)),
            Some(StepKind::AnalyzeEnv)
        );
    }
}
