//! The commands that talk to a running `artel up` over its API: `artel status`, `artel
//! projects`, `artel deploy <project>` and `artel logs <task> [--follow]`. Each prints text for
//! people or, with `--json`, one JSON document for scripts.

use crate::client::{Client, POLL, ServerArgs};
use anyhow::bail;
use artel_messages::dto::{DeploymentDto, ProjectDto, TaskDto};
use artel_messages::{DeploymentStatus, Event, EventBody, EventId, TaskStatus};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Deserialize)]
struct Items<T> {
    items: Vec<T>,
}

#[derive(Deserialize)]
struct TaskDetail {
    task: TaskDto,
}

/// Flags of `artel deploy`.
#[derive(Debug, clap::Args)]
pub struct DeployArgs {
    /// The project (name or id).
    pub project: String,
    #[command(flatten)]
    pub server: ServerArgs,
}

/// Flags of `artel logs`.
#[derive(Debug, clap::Args)]
pub struct LogsArgs {
    /// The task's id.
    pub task: String,
    /// Keep printing new events until the task ends (or Ctrl-C).
    #[arg(long, short)]
    pub follow: bool,
    #[command(flatten)]
    pub server: ServerArgs,
}

async fn live_url(client: &Client, project: &ProjectDto) -> anyhow::Result<Option<String>> {
    let deployments: Items<DeploymentDto> = client
        .get(&format!("/api/v1/projects/{}/deployments", project.id))
        .await?;
    Ok(deployments
        .items
        .into_iter()
        .find(|d| d.status == DeploymentStatus::Live)
        .and_then(|d| d.url))
}

/// `artel status`: the server's readiness, tasks by status, running tasks, live services.
pub async fn status(config: Option<PathBuf>, args: ServerArgs) -> anyhow::Result<()> {
    let client = Client::new(config, &args)?;
    let (code, ready) = client.health("/health/ready").await?;
    let tasks: Items<TaskDto> = client.get("/api/v1/tasks?limit=500").await?;
    let projects: Items<ProjectDto> = client.get("/api/v1/projects").await?;
    let mut by_status = BTreeMap::new();
    for task in &tasks.items {
        *by_status.entry(task.status.as_str()).or_insert(0u32) += 1;
    }
    let running: Vec<&TaskDto> = tasks
        .items
        .iter()
        .filter(|t| matches!(t.status, TaskStatus::Running | TaskStatus::Queued))
        .collect();
    let mut live = Vec::new();
    for project in &projects.items {
        if let Some(url) = live_url(&client, project).await? {
            live.push((project.name.clone(), url));
        }
    }
    if args.json {
        let doc = json!({
            "server": client.base(),
            "ready": code == 200,
            "readiness": ready,
            "projects": projects.items.len(),
            "tasks_by_status": by_status,
            "running": running,
            "live": live.iter().map(|(p, u)| json!({ "project": p, "url": u })).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(());
    }
    let state = if code == 200 { "ready" } else { "NOT ready" };
    println!("artel at {}: {state}", client.base());
    println!("projects: {}", projects.items.len());
    let counts: Vec<String> = by_status.iter().map(|(s, n)| format!("{n} {s}")).collect();
    println!(
        "tasks: {}",
        if counts.is_empty() {
            "none".to_owned()
        } else {
            counts.join(", ")
        }
    );
    for task in running {
        println!(
            "  {} {} {}: {}",
            task.id, task.kind, task.status, task.description
        );
    }
    for (project, url) in &live {
        println!("live: {project} at {url}");
    }
    Ok(())
}

/// `artel projects`: each project with its latest task and live URL.
pub async fn projects(config: Option<PathBuf>, args: ServerArgs) -> anyhow::Result<()> {
    let client = Client::new(config, &args)?;
    let projects: Items<ProjectDto> = client.get("/api/v1/projects").await?;
    let mut rows = Vec::new();
    for project in projects.items {
        let tasks: Items<TaskDto> = client
            .get(&format!("/api/v1/projects/{}/tasks", project.id))
            .await?;
        let latest = tasks.items.into_iter().next();
        let url = live_url(&client, &project).await?;
        rows.push((project, latest, url));
    }
    if args.json {
        let doc: Vec<Value> = rows
            .iter()
            .map(|(p, t, u)| json!({ "project": p, "latest_task": t, "live_url": u }))
            .collect();
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(());
    }
    if rows.is_empty() {
        println!("no projects yet: `artel new \"<what to build>\"`");
    }
    for (project, task, url) in rows {
        let task = task.map_or("no task".to_owned(), |t| format!("{} {}", t.kind, t.status));
        let url = url.unwrap_or_else(|| "not live".to_owned());
        println!("{:<24} {:<24} {url}", project.name, task);
    }
    Ok(())
}

/// `artel deploy <project>`: starts a deploy task and follows it to its end.
pub async fn deploy(config: Option<PathBuf>, args: DeployArgs) -> anyhow::Result<()> {
    let client = Client::new(config, &args.server)?;
    let task: TaskDto = client
        .post(
            &format!("/api/v1/projects/{}/tasks", args.project),
            json!({ "kind": "deploy", "description": "deploy from the command line" }),
        )
        .await?;
    if !args.server.json {
        println!("deploy task {} started", task.id);
    }
    let (status, url, events) =
        follow(&client, &task.id.to_string(), true, args.server.json).await?;
    if args.server.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "task": task.id, "status": status, "url": url, "events": events,
            }))?
        );
    } else if let Some(url) = &url {
        println!("✓ live at {url}");
    }
    match status {
        Some(TaskStatus::Completed) => Ok(()),
        Some(other) => bail!("the deploy ended {other}"),
        None => bail!("stopped following before the deploy ended"),
    }
}

/// `artel logs <task>`: the task's events; with `--follow`, until it ends.
pub async fn logs(config: Option<PathBuf>, args: LogsArgs) -> anyhow::Result<()> {
    let client = Client::new(config, &args.server)?;
    let detail: TaskDetail = client.get(&format!("/api/v1/tasks/{}", args.task)).await?;
    let finished = ends_following(detail.task.status);
    let (_, _, events) = follow(
        &client,
        &args.task,
        args.follow && !finished,
        args.server.json,
    )
    .await?;
    if args.server.json {
        println!("{}", serde_json::to_string_pretty(&events)?);
    }
    Ok(())
}

/// Prints (unless `quiet`) and collects the task's events; with `until_done`, polls until the
/// task completes, fails, is cancelled or waits for a human (or Ctrl-C). Answers how it ended
/// and the URL it went live at, if it did.
async fn follow(
    client: &Client,
    task: &str,
    until_done: bool,
    quiet: bool,
) -> anyhow::Result<(Option<TaskStatus>, Option<String>, Vec<Event>)> {
    let mut since = EventId::new(0);
    let mut seen = Vec::new();
    let mut ended = None;
    let mut url = None;
    loop {
        let page = client.events(&format!("task={task}"), since).await?;
        since = page.next;
        for event in page.items {
            if !quiet {
                println!("{}", describe(&event));
            }
            match &event.body {
                EventBody::DeploySucceeded { url: u, .. } => url = Some(u.clone()),
                EventBody::TaskStatusChanged { to, .. } if ends_following(*to) => {
                    ended = Some(*to);
                }
                _ => {}
            }
            seen.push(event);
        }
        if !until_done || ended.is_some() {
            return Ok((ended, url, seen));
        }
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            _ = tokio::signal::ctrl_c() => return Ok((ended, url, seen)),
        }
    }
}

/// Whether a follower stops at this status: the task is over or waits for someone.
fn ends_following(status: TaskStatus) -> bool {
    matches!(
        status,
        TaskStatus::Completed | TaskStatus::Cancelled | TaskStatus::Failed | TaskStatus::NeedsHuman
    )
}

/// One event as a line of text.
pub fn describe(event: &Event) -> String {
    let what = match &event.body {
        EventBody::TaskCreated {
            task_kind,
            description,
        } => {
            format!("{task_kind} task created: {description}")
        }
        EventBody::TaskStatusChanged { from, to, reason } => format!(
            "{from} → {to}{}",
            reason
                .as_deref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default()
        ),
        EventBody::StepStarted { step, attempt } => format!("{step} started (attempt {attempt})"),
        EventBody::StepSucceeded { step, .. } => format!("{step} succeeded"),
        EventBody::StepFailed { step, failure, .. } => format!("{step} failed: {}", failure.reason),
        EventBody::WorkerOutput { line, .. } => format!("│ {line}"),
        EventBody::DeploySucceeded { url, .. } => format!("live at {url}"),
        other => serde_json::to_value(other)
            .ok()
            .and_then(|v| v.get("kind").and_then(Value::as_str).map(str::to_owned))
            .unwrap_or_else(|| "event".to_owned()),
    };
    format!("{} #{} {what}", event.at, event.id.get())
}
