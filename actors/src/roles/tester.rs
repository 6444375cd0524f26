//! Tester: runs a project's tests in a worker at one commit and reports what they showed.
//!
//! The test command is the one the project's manifest (`artel.json`) declares, unless the
//! message names another. Failing tests are a [`TestReport`] with `success: false` — they
//! send the work back to the Developer — while a [`Failure`] means the tests could not run.

use super::Crew;
use super::workspace::{Checkout, CheckoutSpec};
use crate::agent::manifest::Manifest;
use crate::git::LocalGit;
use artel_messages::event::{EventBody, NewEvent};
use artel_messages::tester::{RunTests, TestReport};
use artel_messages::{Classify, Failure};
use std::collections::BTreeMap;

/// Lines of test output kept in a report.
const TAIL_LINES: usize = 60;

/// Handles a [`RunTests`].
pub async fn run_tests(crew: &Crew, msg: RunTests) -> Result<TestReport, Failure> {
    let repo = crew.repo_of(msg.project).await?;
    let commit = crew
        .git
        .resolve_commit(&repo.name, &msg.commit)
        .await
        .map_err(|e| e.to_failure())?;
    let manifest = read_manifest(&crew.git, &repo.name, &commit).await?;
    let command = match &msg.command {
        Some(line) => vec!["sh".to_owned(), "-c".to_owned(), line.clone()],
        None => manifest.test.clone(),
    };
    let (program, args) = command
        .split_first()
        .ok_or_else(|| Failure::fatal("the manifest's test command is empty"))?;
    let checkout = Checkout::open(
        &crew.workers,
        &crew.git,
        CheckoutSpec {
            project: msg.project,
            task: msg.task,
            repo: &repo.name,
            commit: &commit,
            branch: None,
            env: BTreeMap::new(),
            limits: crew.limits,
            network: false,
        },
    )
    .await?;
    let outcome = checkout.run(program, args.to_vec()).await;
    checkout.close("the tests finished").await;
    let outcome = outcome?;
    let output = format!("{}\n{}", outcome.stdout_tail, outcome.stderr_tail);
    let mut report = parse_report(&output, outcome.succeeded());
    if outcome.timed_out {
        report.output_tail.push_str(&format!(
            "\n(the tests were stopped after {} s: workers.timeout_secs)",
            crew.limits.wall_clock_timeout_secs
        ));
    }
    crew.store
        .append_event(
            NewEvent::new(EventBody::TestsFinished {
                passed: report.passed,
                failed: report.failed,
                output_tail: report.output_tail.clone(),
            })
            .project(msg.project)
            .task(msg.task),
        )
        .await
        .map_err(|e| e.to_failure())?;
    Ok(report)
}

/// The manifest of `commit`, or why there is none.
pub async fn read_manifest(git: &LocalGit, repo: &str, commit: &str) -> Result<Manifest, Failure> {
    let text = git
        .read_file(repo, commit, "artel.json")
        .await
        .map_err(|e| e.to_failure())?
        .ok_or_else(|| {
            Failure::fatal(format!(
                "commit {commit} has no artel.json: artel needs it to know how to test and run \
                 the project"
            ))
        })?;
    Manifest::parse(&text).map_err(|e| e.to_failure())
}

/// Reads counts from unittest's (`Ran N tests`, `FAILED (failures=a, errors=b)`) or pytest's
/// (`N passed, M failed`) summary; `success` is the exit status.
pub fn parse_report(output: &str, success: bool) -> TestReport {
    let mut ran = None;
    let mut failed = 0u32;
    let mut passed_pytest = None;
    for line in output.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("Ran ") {
            ran = rest
                .split_whitespace()
                .next()
                .and_then(|n| n.parse::<u32>().ok());
        }
        if let Some(inner) = line
            .strip_prefix("FAILED (")
            .and_then(|r| r.strip_suffix(')'))
        {
            failed = inner
                .split(',')
                .filter_map(|kv| kv.split_once('='))
                .filter(|(k, _)| matches!(k.trim(), "failures" | "errors"))
                .filter_map(|(_, v)| v.trim().parse::<u32>().ok())
                .sum();
        }
        if line.contains(" passed") || line.contains(" failed") {
            for part in line.trim_matches('=').split(',') {
                let mut words = part.split_whitespace();
                if let (Some(n), Some(word)) = (words.next(), words.next())
                    && let Ok(n) = n.parse::<u32>()
                {
                    match word {
                        "passed" => passed_pytest = Some(n),
                        "failed" | "error" | "errors" => failed = failed.max(n),
                        _ => {}
                    }
                }
            }
        }
    }
    let passed = match (ran, passed_pytest) {
        (Some(ran), _) => ran.saturating_sub(failed),
        (None, Some(passed)) => passed,
        (None, None) => 0,
    };
    let lines: Vec<&str> = output.lines().filter(|l| !l.trim().is_empty()).collect();
    TestReport {
        success,
        passed,
        failed: if success { failed } else { failed.max(1) },
        output_tail: lines[lines.len().saturating_sub(TAIL_LINES)..].join("\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unittest_summaries_are_counted() {
        let ok = "test_a ... ok\ntest_b ... ok\n\n----\nRan 2 tests in 0.01s\n\nOK\n";
        let report = parse_report(ok, true);
        assert_eq!((report.passed, report.failed, report.success), (2, 0, true));
        let bad = "Ran 5 tests in 0.2s\n\nFAILED (failures=1, errors=1)\n";
        let report = parse_report(bad, false);
        assert_eq!(
            (report.passed, report.failed, report.success),
            (3, 2, false)
        );
    }

    #[test]
    fn pytest_summaries_and_silence_are_handled() {
        let report = parse_report("==== 4 passed, 1 failed in 0.3s ====", false);
        assert_eq!((report.passed, report.failed), (4, 1));
        // A crash with no summary still counts as failing.
        let report = parse_report("Traceback: boom", false);
        assert_eq!((report.passed, report.failed), (0, 1));
        assert!(report.output_tail.contains("boom"));
    }
}
