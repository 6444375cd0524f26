//! Developer: runs the agent in a worker on the task branch; its result is a commit that
//! exists in the project's repository.
//!
//! The worker gets a checkout of the task branch (or of `main` for the first iteration),
//! the agent works and commits there, and artel fetches the branch into the repository and
//! checks the commit: an agent that exits without committing, or whose commit is not a
//! descendant of where it started, has not done its job — whatever it says.

use super::workspace::{Checkout, CheckoutSpec, host_git};
use super::{Crew, task_branch};
use crate::acceptance;
use crate::agent::llm_agent::{self, LlmAgent};
use crate::agent::{Agent, spec_service, template};
use artel_messages::developer::{Develop, Developed};
use artel_messages::event::{EventBody, NewEvent};
use artel_messages::{Classify, Failure};
use std::collections::BTreeMap;

/// Handles a [`Develop`].
pub async fn develop(crew: &Crew, msg: Develop) -> Result<Developed, Failure> {
    let repo = crew.repo_of(msg.project).await?;
    let git = &crew.git;
    let branch = task_branch(msg.task);
    let base = match git
        .head(&repo.name, &branch)
        .await
        .map_err(|e| e.to_failure())?
    {
        Some(head) => head,
        None => git
            .head(&repo.name, "main")
            .await
            .map_err(|e| e.to_failure())?
            .ok_or_else(|| Failure::fatal("the repository has no main branch: scaffold first"))?,
    };
    let env = agent_env(&msg);
    let checkout = Checkout::open(
        &crew.workers,
        git,
        CheckoutSpec {
            project: msg.project,
            task: msg.task,
            repo: &repo.name,
            commit: &base,
            branch: Some(&branch),
            env,
            limits: crew.limits,
            network: crew.agent_network,
        },
    )
    .await?;
    let result = match &crew.agent {
        Agent::Llm(agent) => run_llm_agent(crew, agent, &checkout, &msg).await,
        _ => run_agent(crew, &checkout, &msg, &repo.project_name)
            .await
            .map(|summary| (summary, None)),
    };
    let result = match result {
        Ok((summary, needs_human)) => collect(crew, &checkout, &repo.name, &branch, &base)
            .await
            .map(|commit| (commit, summary, needs_human)),
        Err(failure) => Err(failure),
    };
    checkout.close("the developer's agent finished").await;
    let (commit, summary, needs_human) = result?;
    crew.store
        .append_event(
            NewEvent::new(EventBody::CommitCreated {
                sha: commit.clone(),
                branch: branch.clone(),
            })
            .project(msg.project)
            .task(msg.task),
        )
        .await
        .map_err(|e| e.to_failure())?;
    Ok(Developed {
        commit,
        branch,
        summary,
        needs_human,
    })
}

/// Runs the built-in LLM agent (it commits itself); answers its summary and, when it
/// stopped for a human, why.
async fn run_llm_agent(
    crew: &Crew,
    agent: &LlmAgent,
    checkout: &Checkout,
    msg: &Develop,
) -> Result<(String, Option<String>), Failure> {
    // The spec as JSON and the contract the acceptance suite holds the service to, in words.
    let spec = msg.spec.as_ref().map(|spec| {
        format!(
            "{}\n\n{}",
            serde_json::to_string_pretty(spec).unwrap_or_default(),
            acceptance::contract(spec)
        )
    });
    let job = llm_agent::Assignment {
        store: &crew.store,
        project: msg.project,
        task: msg.task,
        checkout,
        description: &msg.description,
        spec,
        rework: msg.rework.as_ref().map(|r| r.output_tail.as_str()),
        guidance: msg.guidance.as_deref(),
    };
    Ok(match agent.run(&job).await? {
        llm_agent::Outcome::Finished(summary) => (summary, None),
        llm_agent::Outcome::Paused(reason) => (format!("paused: {reason}"), Some(reason)),
    })
}

/// What the agent is told, as environment variables (the `cli` agent's interface):
/// `ARTEL_TASK`, `ARTEL_ITERATION`, `ARTEL_REWORK`, `ARTEL_GUIDANCE`, `ARTEL_SPEC` (JSON) and
/// `ARTEL_CONTRACT`.
fn agent_env(msg: &Develop) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    env.insert("ARTEL_TASK".to_owned(), msg.description.clone());
    env.insert("ARTEL_ITERATION".to_owned(), msg.attempt.to_string());
    if let Some(report) = &msg.rework {
        env.insert("ARTEL_REWORK".to_owned(), report.output_tail.clone());
    }
    if let Some(guidance) = &msg.guidance {
        env.insert("ARTEL_GUIDANCE".to_owned(), guidance.clone());
    }
    if let Some(spec) = &msg.spec {
        // The spec as JSON, and the API contract the Tester's acceptance suite checks, in
        // words: what a CLI agent must build.
        if let Ok(json) = serde_json::to_string(spec) {
            env.insert("ARTEL_SPEC".to_owned(), json);
        }
        env.insert("ARTEL_CONTRACT".to_owned(), acceptance::contract(spec));
    }
    env
}

/// Runs the agent in the checkout; answers what it says it did.
async fn run_agent(
    crew: &Crew,
    checkout: &Checkout,
    msg: &Develop,
    project_name: &str,
) -> Result<String, Failure> {
    let (program, args, summary) = match &crew.agent {
        Agent::Template => {
            let (files, message) = match &msg.spec {
                // The offline compiler builds what the confirmed spec says.
                Some(spec) => (
                    spec_service::render(spec, project_name, &msg.description),
                    format!(
                        "Implement {}: {} (template agent, spec v{})",
                        spec.title,
                        spec.resources
                            .iter()
                            .map(|r| r.plural.as_str())
                            .collect::<Vec<_>>()
                            .join(", "),
                        spec.version
                    ),
                ),
                None => {
                    let blueprint = template::blueprint(&msg.description);
                    let files = template::render(&blueprint, project_name, &msg.description);
                    let message = format!(
                        "Implement the {} API (template agent)",
                        blueprint.resource.name
                    );
                    (files, message)
                }
            };
            checkout.write_files(&files)?;
            let script = "git add -A && git commit --quiet --allow-empty -m \"$1\"";
            (
                "sh".to_owned(),
                vec!["-c".into(), script.into(), "sh".into(), message.clone()],
                message,
            )
        }
        Agent::Cli { command } => (
            "sh".to_owned(),
            vec!["-c".into(), command.clone()],
            format!("ran `{command}`"),
        ),
        Agent::Llm(_) => {
            return Err(Failure::fatal(
                "the LLM agent runs through run_llm_agent, not as a command",
            ));
        }
    };
    let outcome = checkout.run(&program, args).await?;
    if outcome.timed_out {
        return Err(Failure::retryable(
            "the agent ran out of time (workers.timeout_secs) and was stopped",
        ));
    }
    if !outcome.succeeded() {
        return Err(Failure::retryable(format!(
            "the agent exited with {}; its last output:\n{}",
            outcome
                .exit_code
                .map_or("a signal".to_owned(), |c| format!("code {c}")),
            tail(&outcome.stderr_tail, &outcome.stdout_tail)
        )));
    }
    Ok(summary)
}

/// Fetches the agent's branch into the repository and checks it moved forward from `base`.
async fn collect(
    crew: &Crew,
    checkout: &Checkout,
    repo: &str,
    branch: &str,
    base: &str,
) -> Result<String, Failure> {
    let head = checkout.head().await?;
    if head == base {
        return Err(Failure::retryable(
            "the agent finished without committing anything",
        ));
    }
    let current = host_git(
        &crew.git,
        checkout.dir(),
        &["symbolic-ref", "--quiet", "--short", "HEAD"],
    )
    .await
    .unwrap_or_default();
    if current.trim() != branch {
        return Err(Failure::retryable(format!(
            "the agent left the checkout on `{}` instead of `{branch}`",
            current.trim()
        )));
    }
    let git = &crew.git;
    let fetched = git
        .fetch_branch(repo, checkout.dir(), branch)
        .await
        .map_err(|e| e.to_failure())?;
    let commit = git
        .resolve_commit(repo, &fetched)
        .await
        .map_err(|e| e.to_failure())?;
    if !git
        .is_ancestor(repo, base, &commit)
        .await
        .map_err(|e| e.to_failure())?
    {
        return Err(Failure::retryable(format!(
            "the agent's commit {commit} does not build on {base}"
        )));
    }
    Ok(commit)
}

fn tail(stderr: &str, stdout: &str) -> String {
    let text = if stderr.trim().is_empty() {
        stdout
    } else {
        stderr
    };
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}
