//! Shows a job's progress on the terminal: a spinner per running step on a TTY (indicatif),
//! one plain line per change otherwise, or one JSON event per line with `--json`.
//!
//! Everything shown comes from the event journal (the one source every front door reads):
//! the session's conversation lines and the events of the tasks the session started.

use artel_actors::store::Store;
use artel_actors::workflow::plan::SPEC_QUESTION;
use artel_messages::event::ChatRole;
use artel_messages::{Event, EventBody, SessionId, StepKind, TaskId, TaskKind, TaskStatus};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::HashMap;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

/// How the job `artel new` follows ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// The service is live at this URL.
    Live(String),
    /// The spec waits for the user's yes or correction (the question is in the session).
    SpecQuestion,
    /// A task failed, was cancelled, or waits for the user; the reason says which.
    Stuck(String),
}

/// True for the reason of a task whose spec waits for the user.
fn is_spec_question(reason: Option<&str>) -> bool {
    reason.is_some_and(|r| r.starts_with(SPEC_QUESTION))
}

/// Where the view learns which tasks belong to its session.
pub enum TaskSource {
    /// The store of this process (`artel new` in-process).
    Local(Store),
    /// A running server's API (`artel new` against `artel up`).
    Remote(crate::client::Client),
}

#[derive(serde::Deserialize)]
struct TaskDetail {
    task: artel_messages::dto::TaskDto,
}

impl TaskSource {
    /// The task's kind and session, if it exists.
    async fn task(&self, task: TaskId) -> Result<Option<(TaskKind, Option<SessionId>)>, ()> {
        match self {
            Self::Local(store) => match store.task(task).await {
                Ok(record) => Ok(record.map(|r| (r.kind, r.session))),
                Err(_) => Err(()),
            },
            Self::Remote(client) => {
                match client
                    .get::<TaskDetail>(&format!("/api/v1/tasks/{task}"))
                    .await
                {
                    Ok(detail) => Ok(Some((detail.task.kind, detail.task.session))),
                    Err(_) => Err(()),
                }
            }
        }
    }
}

/// The terminal view of one session's job.
pub struct Progress {
    json: bool,
    session: SessionId,
    source: TaskSource,
    /// For each task seen: its kind, if it belongs to this session.
    tasks: HashMap<TaskId, Option<TaskKind>>,
    bars: Option<MultiProgress>,
    running: HashMap<(TaskId, StepKind), (ProgressBar, Instant)>,
    started: Instant,
}

impl Progress {
    /// A view of `session`'s job: JSON lines, or bars when stdout is a terminal.
    pub fn new(json: bool, session: SessionId, source: TaskSource) -> Self {
        let bars = (!json && std::io::stdout().is_terminal())
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stdout()));
        Self {
            json,
            session,
            source,
            tasks: HashMap::new(),
            bars,
            running: HashMap::new(),
            started: Instant::now(),
        }
    }

    /// Shows `event` if it belongs to this job; answers how the job ended if it just did.
    pub async fn show(&mut self, event: &Event) -> Option<Ended> {
        let kind = match (&event.body, event.task) {
            (EventBody::SessionMessage { session, .. }, _) if *session == self.session => None,
            (_, Some(task)) => Some(self.kind_of(task).await?),
            _ => return None,
        };
        if self.json {
            match serde_json::to_string(event) {
                Ok(line) => println!("{line}"),
                Err(err) => tracing::warn!(%err, "cannot print an event"),
            }
        } else {
            self.draw(event, kind);
        }
        match &event.body {
            EventBody::DeploySucceeded { url, .. } => Some(Ended::Live(url.clone())),
            EventBody::TaskStatusChanged {
                to: TaskStatus::NeedsHuman,
                reason,
                ..
            } if is_spec_question(reason.as_deref()) => Some(Ended::SpecQuestion),
            EventBody::TaskStatusChanged {
                to: to @ (TaskStatus::Failed | TaskStatus::NeedsHuman | TaskStatus::Cancelled),
                reason,
                ..
            } => Some(Ended::Stuck(format!(
                "{} {to}: {}",
                kind.map(|k| k.as_str()).unwrap_or("task"),
                reason.as_deref().unwrap_or("no reason given")
            ))),
            _ => None,
        }
    }

    /// The kind of `task` if this session started it.
    async fn kind_of(&mut self, task: TaskId) -> Option<TaskKind> {
        if let Some(known) = self.tasks.get(&task) {
            return *known;
        }
        let kind = match self.source.task(task).await {
            Ok(Some((kind, session))) if session == Some(self.session) => Some(kind),
            Ok(_) => None,
            // Not known yet is not "not ours": ask again at the next event.
            Err(_) => return None,
        };
        self.tasks.insert(task, kind);
        kind
    }

    fn draw(&mut self, event: &Event, kind: Option<TaskKind>) {
        let kind = kind.map(|k| k.as_str()).unwrap_or("task");
        match &event.body {
            EventBody::SessionMessage { role, text, .. } => {
                let who = match role {
                    ChatRole::User => "you",
                    ChatRole::ProductOwner => "artel",
                };
                self.line(&format!("{who}: {text}"));
            }
            EventBody::TaskCreated { .. } => self.line(&format!("● {kind} started")),
            EventBody::StepStarted { step, attempt } => {
                let Some(task) = event.task else { return };
                let label = match attempt {
                    1 => format!("{kind} › {step}"),
                    n => format!("{kind} › {step} (attempt {n})"),
                };
                let bar = self.spinner(&label);
                self.running.insert((task, *step), (bar, Instant::now()));
            }
            EventBody::WorkerOutput { line, .. } => {
                if let Some((bar, _)) = self.running.values().next() {
                    bar.set_message(truncate(line, 70));
                }
            }
            EventBody::StepSucceeded { step, .. } => {
                self.end_step(event.task, *step, &format!("✓ {kind} › {step}"));
            }
            EventBody::StepFailed { step, failure, .. } => {
                self.end_step(
                    event.task,
                    *step,
                    &format!("✗ {kind} › {step}: {}", failure.reason),
                );
            }
            EventBody::CommitCreated { sha, branch } => {
                self.line(&format!(
                    "  commit {} on {branch}",
                    &sha[..sha.len().min(10)]
                ));
            }
            EventBody::TestsFinished { passed, failed, .. } => {
                self.line(&format!("  tests: {passed} passed, {failed} failed"));
            }
            EventBody::SecretRequested { name } => {
                self.line(&format!("  waiting for {name}: type {name}=<value>"));
            }
            EventBody::DeploySucceeded { url, .. } => self.line(&format!(
                "✓ live at {url} ({:.1} s). Ctrl-C stops artel and the service.",
                self.started.elapsed().as_secs_f64()
            )),
            EventBody::DeployRolledBack { .. } => {
                self.line("  rolled back: the previous deployment keeps serving");
            }
            // The ProductOwner's message in the session shows the spec and the question.
            EventBody::TaskStatusChanged { reason, .. } if is_spec_question(reason.as_deref()) => {}
            EventBody::TaskStatusChanged { to, reason, .. } => {
                if matches!(
                    to,
                    TaskStatus::Failed | TaskStatus::NeedsHuman | TaskStatus::Cancelled
                ) {
                    self.line(&format!(
                        "■ {kind} {to}: {}",
                        reason.as_deref().unwrap_or("no reason given")
                    ));
                }
            }
            _ => {}
        }
    }

    fn spinner(&self, label: &str) -> ProgressBar {
        match &self.bars {
            Some(bars) => {
                let bar = bars.add(ProgressBar::new_spinner());
                bar.set_style(
                    ProgressStyle::with_template("{spinner} {prefix} {elapsed} {wide_msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                bar.set_prefix(label.to_owned());
                bar.enable_steady_tick(Duration::from_millis(120));
                bar
            }
            None => {
                println!("▸ {label}");
                ProgressBar::hidden()
            }
        }
    }

    fn end_step(&mut self, task: Option<TaskId>, step: StepKind, text: &str) {
        let took = task
            .and_then(|t| self.running.remove(&(t, step)))
            .map(|(bar, at)| {
                bar.finish_and_clear();
                at.elapsed()
            });
        match took {
            Some(took) => self.line(&format!("{text} ({:.1} s)", took.as_secs_f64())),
            None => self.line(text),
        }
    }

    /// Prints a line above the bars.
    pub fn note(&self, text: &str) {
        self.line(text);
    }

    fn line(&self, text: &str) {
        match &self.bars {
            Some(bars) => {
                if bars.println(text).is_err() {
                    println!("{text}");
                }
            }
            None => println!("{text}"),
        }
    }

    /// Clears what is still drawn.
    pub fn finish(&mut self) {
        for (_, (bar, _)) in self.running.drain() {
            bar.finish_and_clear();
        }
    }
}

fn truncate(line: &str, max: usize) -> String {
    match line.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &line[..at]),
        None => line.to_owned(),
    }
}
