//! A task's status message: what it shows as its steps advance.

use super::html::escape;
use artel_actors::store::{StepRecord, TaskRecord};
use artel_messages::{StepStatus, TaskStatus};

/// The status text (HTML) of `task` of `project` after `steps`, and whether it is final.
pub fn render(project: &str, task: &TaskRecord, steps: &[StepRecord]) -> (String, bool) {
    let icon = match task.status {
        TaskStatus::Queued => "🕓",
        TaskStatus::Running => "⏳",
        TaskStatus::NeedsHuman => "❓",
        TaskStatus::Completed => "✅",
        TaskStatus::Failed => "❌",
        TaskStatus::Cancelled => "⛔",
    };
    let mut text = format!(
        "{icon} <b>{} of {}</b>: {}",
        task.kind,
        escape(project),
        task.status
    );
    // The latest attempt of each step, in the order the steps first appeared.
    let mut latest: Vec<&StepRecord> = Vec::new();
    for step in steps {
        match latest.iter_mut().find(|s| s.step == step.step) {
            Some(slot) => *slot = step,
            None => latest.push(step),
        }
    }
    for step in latest {
        let mark = match step.status {
            StepStatus::Succeeded => "✓",
            StepStatus::Failed => "✗",
            StepStatus::Running => "…",
            _ => "·",
        };
        text.push_str(&format!("\n{mark} {}", step.step));
        if step.attempt > 1 {
            text.push_str(&format!(" (attempt {})", step.attempt));
        }
    }
    if let Some(failure) = &task.failure
        && task.status == TaskStatus::Failed
    {
        text.push_str(&format!("\n{}", escape(&failure.reason)));
    }
    let done = matches!(task.status, TaskStatus::Completed | TaskStatus::Cancelled);
    (text, done)
}
