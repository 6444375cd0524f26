//! The ProductOwner's offline brain: what to do about a user's line, and what to say about a
//! task's event.
//!
//! Without an LLM, the ProductOwner understands users through [`intent::parse`] and acts
//! through the same workflows every front door uses. With one ([`super::llm_product_owner`]),
//! the model chooses the [`Intent`] and [`act`] carries it out all the same. A task that waits for the user turns
//! the next line into its answer. While its spec waits, "yes" builds it, "cancel" cancels, and
//! anything else (even what reads like a new request: "add a due date") corrects the spec.
//! When tests keep failing, "yes" retries and anything else is guidance for the Developer.

use super::{Brain, Sessions};
use crate::agent::template;
use crate::intent;
use crate::store::{NewTask, StoreError, TaskRecord};
use crate::workflow::{Staffing, plan};
use artel_messages::dto::{ChatLineDto, SessionDto};
use artel_messages::product_owner::Intent;
use artel_messages::{
    Classify, Event, EventBody, Failure, ProjectId, StepKind, StepStatus, TaskId, TaskKind,
    TaskStatus,
};

/// What the ProductOwner answers to `line` in `session`, after doing what it asks: the
/// configured brain chooses the [`Intent`], and [`act`] carries it out.
pub(super) async fn answer<R: Staffing>(
    sessions: &Sessions<R>,
    session: &SessionDto,
    line: &ChatLineDto,
) -> Result<String, Failure> {
    let situation = situation(sessions, session).await?;
    match &sessions.inner.brain {
        Brain::Offline => {
            act(
                sessions,
                session,
                &situation,
                interpret(&line.text, &situation),
            )
            .await
        }
        Brain::Llm(model) => model.answer(sessions, session, line, &situation).await,
    }
}

/// What waits for the user in a session, which decides what their words mean.
pub(super) struct Situation {
    /// The newest task of the session that waits for the user.
    pub waiting: Option<TaskRecord>,
    /// Whether that task waits for the user's yes (or correction) on its spec.
    pub spec_waits: bool,
}

pub(super) async fn situation<R: Staffing>(
    sessions: &Sessions<R>,
    session: &SessionDto,
) -> Result<Situation, Failure> {
    let waiting = waiting_task(sessions, session).await?;
    let spec_waits = match &waiting {
        Some(task) => waits_on_spec(sessions, task).await?,
        None => false,
    };
    Ok(Situation {
        waiting,
        spec_waits,
    })
}

/// The offline brain: `text` read by [`intent::parse`] in the light of what waits. While a
/// spec waits, anything but a yes, no or cancel (even what reads like a new request: "add a
/// due date") corrects it; while an engineering task waits, a line the parser does not
/// understand is guidance for the Developer.
pub(super) fn interpret(text: &str, situation: &Situation) -> Intent {
    let engineering_waits = situation
        .waiting
        .as_ref()
        .is_some_and(|t| t.kind == TaskKind::Engineering);
    match intent::parse(text) {
        Intent::BuildNew { .. } if situation.spec_waits => Intent::Guidance {
            text: text.to_owned(),
        },
        Intent::Unknown if engineering_waits => Intent::Guidance {
            text: text.to_owned(),
        },
        intent => intent,
    }
}

/// Does what `intent` asks in `session`; answers what to tell the user. Every brain ends
/// here, so the offline parser and the model act the same way.
pub(super) async fn act<R: Staffing>(
    sessions: &Sessions<R>,
    session: &SessionDto,
    situation: &Situation,
    intent: Intent,
) -> Result<String, Failure> {
    let waiting = situation.waiting.as_ref();
    match intent {
        Intent::BuildNew { description } => build(sessions, session, &description).await,
        Intent::Status => status(sessions, session).await,
        Intent::ListProjects => list_projects(sessions, session).await,
        Intent::Deploy { project } => deploy(sessions, session, &project).await,
        Intent::ProvideSecret { name, .. } => secret_given(sessions, session, &name).await,
        Intent::Approve => match waiting {
            Some(task) if situation.spec_waits => {
                sessions.inner.workflows.resume(task.id, None).await?;
                Ok(
                    "Building it: scaffold, develop, test, then deploy. I'll tell you here \
                    when it's live."
                        .to_owned(),
                )
            }
            Some(task) => resume(sessions, task, None).await,
            None => Ok("Nothing is waiting for a yes right now.".to_owned()),
        },
        Intent::Reject | Intent::Cancel => cancel(sessions, session).await,
        Intent::Guidance { text } => match waiting {
            Some(task) if situation.spec_waits => {
                sessions
                    .inner
                    .workflows
                    .resume(task.id, Some(&text))
                    .await?;
                Ok("Updating the spec with that — I'll show you the new version.".to_owned())
            }
            Some(task) if task.kind == TaskKind::Engineering => {
                resume(sessions, task, Some(&text)).await
            }
            _ => Ok("Nothing is waiting for guidance right now.".to_owned()),
        },
        Intent::Unknown => Ok(HELP.to_owned()),
    }
}

pub(super) const HELP: &str = "I build and run small web services. Tell me what you need, e.g. \
\"make me a URL shortener with an API\". You can also ask for \"status\", \"my projects\", \
\"deploy <project>\", give a secret as NAME=value, or \"cancel\".";

fn fail(err: StoreError) -> Failure {
    err.to_failure()
}

/// True when `task` waits for the user's yes (or correction) on its spec: its last finished
/// step wrote a spec that is not confirmed.
async fn waits_on_spec<R: Staffing>(
    sessions: &Sessions<R>,
    task: &TaskRecord,
) -> Result<bool, Failure> {
    if task.kind != TaskKind::Engineering || task.status != TaskStatus::NeedsHuman {
        return Ok(false);
    }
    let steps = sessions.store().steps(task.id).await.map_err(fail)?;
    Ok(steps
        .iter()
        .rev()
        .find(|s| s.status == StepStatus::Succeeded)
        .is_some_and(|s| {
            s.step == StepKind::WriteSpec
                && s.output.as_ref().and_then(|o| o.get("confirmed"))
                    != Some(&serde_json::Value::Bool(true))
        }))
}

/// The newest task of the session that waits for the user, if any.
async fn waiting_task<R: Staffing>(
    sessions: &Sessions<R>,
    session: &SessionDto,
) -> Result<Option<TaskRecord>, Failure> {
    let tasks = sessions
        .store()
        .session_tasks(session.id)
        .await
        .map_err(fail)?;
    Ok(tasks
        .into_iter()
        .rev()
        .find(|t| t.status == TaskStatus::NeedsHuman))
}

async fn build<R: Staffing>(
    sessions: &Sessions<R>,
    session: &SessionDto,
    description: &str,
) -> Result<String, Failure> {
    let store = sessions.store();
    // Answering the same line again (after a crash) must not build a second project.
    if let Some(project) = session.project {
        let existing = store.project_of_task(project).await.map_err(fail)?;
        if existing.description == description {
            return Ok(format!(
                "I'm already on it: {} is being built. Ask for \"status\" any time.",
                existing.name
            ));
        }
    }
    let stem = template::project_name(description);
    let mut name = stem.clone();
    let mut n = 1;
    let project = loop {
        match store.create_project(session.user, &name, description).await {
            Ok(project) => break project,
            Err(err) if err.constraint() == Some("projects_owner_name_key") && n < 100 => {
                n += 1;
                name = format!("{stem}-{n}");
            }
            Err(err) => return Err(fail(err)),
        }
    };
    store
        .set_session_project(session.id, project.id)
        .await
        .map_err(fail)?;
    let engineering = NewTask {
        id: TaskId::new(),
        project: project.id,
        kind: TaskKind::Engineering,
        description: description.to_owned(),
        session: Some(session.id),
    };
    sessions
        .inner
        .workflows
        .submit_with_follow_up(engineering, TaskId::new())
        .await?;
    Ok(format!(
        "On it: I'm building {} — first the spec (what I understood you want), then \
         scaffold, develop, test and deploy. I'll tell you here as it goes.",
        project.name
    ))
}

async fn status<R: Staffing>(
    sessions: &Sessions<R>,
    session: &SessionDto,
) -> Result<String, Failure> {
    let store = sessions.store();
    let tasks = store.session_tasks(session.id).await.map_err(fail)?;
    if tasks.is_empty() {
        return list_projects(sessions, session).await;
    }
    let mut lines = Vec::new();
    for task in tasks.iter().rev().take(10) {
        let project = store.project_name(task.project).await.map_err(fail)?;
        let mut line = format!("- {} of {project}: {}", task.kind, task.status);
        if let Some(failure) = &task.failure {
            line.push_str(&format!(" ({})", failure.reason));
        }
        lines.push(line);
    }
    if let Some(project) = session.project
        && let Some(live) = store.live_deployment(project).await.map_err(fail)?
    {
        lines.push(format!(
            "Live at {}",
            live.url.unwrap_or_else(|| "(no address yet)".into())
        ));
    }
    Ok(lines.join("\n"))
}

async fn list_projects<R: Staffing>(
    sessions: &Sessions<R>,
    session: &SessionDto,
) -> Result<String, Failure> {
    let store = sessions.store();
    let projects = store.projects(session.user).await.map_err(fail)?;
    if projects.is_empty() {
        return Ok(format!("You have no projects yet. {HELP}"));
    }
    let mut lines = vec!["Your projects:".to_owned()];
    for project in projects {
        let live = store.live_deployment(project.id).await.map_err(fail)?;
        lines.push(match live.and_then(|d| d.url) {
            Some(url) => format!("- {} — live at {url}", project.name),
            None => format!("- {} — not deployed", project.name),
        });
    }
    Ok(lines.join("\n"))
}

async fn deploy<R: Staffing>(
    sessions: &Sessions<R>,
    session: &SessionDto,
    name: &str,
) -> Result<String, Failure> {
    let store = sessions.store();
    // "deploy it": the project this conversation is about.
    let found = match (name.is_empty(), session.project) {
        (true, Some(current)) => Some(store.project_of_task(current).await.map_err(fail)?),
        _ => store
            .project_by_name(session.user, name)
            .await
            .map_err(fail)?,
    };
    let Some(project) = found else {
        let names: Vec<String> = store
            .projects(session.user)
            .await
            .map_err(fail)?
            .into_iter()
            .map(|p| p.name)
            .collect();
        return Ok(if names.is_empty() {
            format!("You have no project called {name:?} (no projects at all yet).")
        } else {
            format!(
                "You have no project called {name:?}. Your projects: {}.",
                names.join(", ")
            )
        });
    };
    store
        .set_session_project(session.id, project.id)
        .await
        .map_err(fail)?;
    sessions
        .inner
        .workflows
        .submit(NewTask {
            id: TaskId::new(),
            project: project.id,
            kind: TaskKind::Deploy,
            description: format!("deploy {}", project.name),
            session: Some(session.id),
        })
        .await?;
    Ok(format!(
        "Deploying the latest code of {}. The current deployment keeps serving until the new \
         one is healthy.",
        project.name
    ))
}

async fn secret_given<R: Staffing>(
    sessions: &Sessions<R>,
    session: &SessionDto,
    name: &str,
) -> Result<String, Failure> {
    let Some(project) = session.project else {
        return Ok(format!(
            "I don't know which project {name} is for, so I did not keep it. Start with what \
             you want built, then give it when I ask."
        ));
    };
    let store = sessions.store();
    let waiting: Vec<TaskRecord> = store
        .project_tasks(project)
        .await
        .map_err(fail)?
        .into_iter()
        .filter(|t| t.kind == TaskKind::Deploy && t.status == TaskStatus::NeedsHuman)
        .collect();
    for task in &waiting {
        sessions.inner.workflows.resume(task.id, None).await?;
    }
    Ok(if waiting.is_empty() {
        format!("Thanks — {name} is stored, encrypted. The next deploy will use it.")
    } else {
        format!("Thanks — {name} is stored, encrypted. Resuming the deploy.")
    })
}

async fn resume<R: Staffing>(
    sessions: &Sessions<R>,
    task: &TaskRecord,
    guidance: Option<&str>,
) -> Result<String, Failure> {
    sessions.inner.workflows.resume(task.id, guidance).await?;
    Ok(match guidance {
        Some(_) => "Got it — I passed that to the Developer and the work goes on.".to_owned(),
        None => "Trying again.".to_owned(),
    })
}

async fn cancel<R: Staffing>(
    sessions: &Sessions<R>,
    session: &SessionDto,
) -> Result<String, Failure> {
    let tasks = sessions
        .store()
        .session_tasks(session.id)
        .await
        .map_err(fail)?;
    let mut cancelled = 0;
    for task in tasks.iter().filter(|t| t.status.is_active()) {
        sessions
            .inner
            .workflows
            .cancel(task.id, "cancelled by the user")
            .await?;
        cancelled += 1;
    }
    Ok(match cancelled {
        0 => "Nothing is running, so there is nothing to cancel.".to_owned(),
        1 => "Cancelled.".to_owned(),
        n => format!("Cancelled {n} tasks."),
    })
}

/// True for the events a session tells its user about.
pub(super) fn is_news(body: &EventBody) -> bool {
    matches!(
        body,
        EventBody::TestsFinished { .. }
            | EventBody::SpecWritten {
                confirmed: true,
                ..
            }
            | EventBody::SecretRequested { .. }
            | EventBody::DeploySucceeded { .. }
            | EventBody::TaskStatusChanged {
                to: TaskStatus::Completed | TaskStatus::NeedsHuman | TaskStatus::Failed,
                ..
            }
    )
}

/// What to tell the user about `event`, if anything.
pub(super) async fn news<R: Staffing>(
    sessions: &Sessions<R>,
    event: &Event,
) -> Result<Option<String>, Failure> {
    if !is_news(&event.body) {
        return Ok(None);
    }
    let store = sessions.store();
    let Some(task_id) = event.task else {
        return Ok(None);
    };
    let Some(task) = store.task(task_id).await.map_err(fail)? else {
        return Ok(None);
    };
    let project = project_name(sessions, task.project).await?;
    Ok(match &event.body {
        EventBody::TestsFinished { passed, failed, .. } if *failed > 0 => Some(format!(
            "Tests of {project}: {passed} passed, {failed} failed. The Developer gets the \
             output and reworks it."
        )),
        EventBody::TestsFinished { .. } => None,
        EventBody::SpecWritten {
            version, summary, ..
        } => Some(format!(
            "{project} will be built to this spec (version {version}):\n{summary}"
        )),
        EventBody::SecretRequested { name } => Some(format!(
            "{project} needs {name}, which only you can give. Reply with {name}=<value> — I \
             store it encrypted and never show it again."
        )),
        EventBody::DeploySucceeded { url, .. } => Some(format!("{project} is live at {url}")),
        EventBody::TaskStatusChanged { to, reason, .. } => match (task.kind, to) {
            (TaskKind::Engineering, TaskStatus::Completed) if task.follow_up.is_some() => Some(
                format!("{project}: the code is written and its tests pass. Deploying it now."),
            ),
            (TaskKind::Engineering, TaskStatus::Completed) => Some(format!(
                "{project}: the code is written and its tests pass."
            )),
            (TaskKind::Engineering, TaskStatus::NeedsHuman)
                if reason
                    .as_deref()
                    .is_some_and(|r| r.starts_with(plan::SPEC_QUESTION)) =>
            {
                let spec = reason
                    .as_deref()
                    .and_then(|r| r.split_once('\n'))
                    .map_or("", |(_, spec)| spec);
                Some(format!(
                    "Here is what I understood for {project}:\n{spec}\nSay \"yes\" to build \
                     it, tell me what to change (\"add a due date\", \"rename notes to memos\", \
                     \"tags are a list\"), or \"cancel\"."
                ))
            }
            (TaskKind::Engineering, TaskStatus::NeedsHuman) => Some(format!(
                "I need your help with {project}: {}\nTell me what to change (I'll pass it to \
                 the Developer), say \"yes\" to try again, or \"cancel\".",
                reason.as_deref().unwrap_or("it is stuck")
            )),
            (kind, TaskStatus::Failed) => Some(format!(
                "The {kind} of {project} failed: {}",
                reason.as_deref().unwrap_or("no reason recorded")
            )),
            _ => None,
        },
        _ => None,
    })
}

async fn project_name<R: Staffing>(
    sessions: &Sessions<R>,
    project: ProjectId,
) -> Result<String, Failure> {
    sessions.store().project_name(project).await.map_err(fail)
}
