//! Tester: runs a project's tests in a worker at one commit, then the acceptance suite it
//! derives from the spec against the running service, and reports what they showed.
//!
//! The project's own test command is the one its manifest (`artel.json`) declares, unless the
//! message names another. It must run at least one test: a command that ran none, or whose
//! output shows no unittest or pytest summary at all (`"test": ["true"]`), fails — a test
//! step that cannot fail tests nothing. When the message carries the confirmed spec, the
//! same worker then starts the service as the manifest's `run` says (a free port in `PORT`,
//! a fresh `DATA_DIR`, a stand-in for every variable the manifest declares), waits for its
//! health path, and runs [`acceptance::suite`] against it. The Developer never sees that
//! suite; it holds every agent (template, LLM or CLI) to the spec.
//!
//! Failing tests are a [`TestReport`] with `success: false` — they send the work back to the
//! Developer with the failing output — while a [`Failure`] means the tests could not run.

use super::Crew;
use super::workspace::{Checkout, CheckoutSpec};
use crate::acceptance;
use crate::agent::manifest::Manifest;
use crate::agent::template::GeneratedFile;
use crate::git::LocalGit;
use artel_messages::event::{EventBody, NewEvent};
use artel_messages::spec::Spec;
use artel_messages::tester::{RunTests, TestReport};
use artel_messages::{Classify, Failure};
use std::collections::BTreeMap;

/// Lines of test output kept in a report.
const TAIL_LINES: usize = 60;

/// Where, in the checkout, the acceptance suite is written (outside the project's code).
const SUITE_DIR: &str = ".artel-acceptance";

/// The line that ends the project's own tests' part of the output.
const OWN_TESTS_DONE: &str = "ARTEL_OWN_TESTS_EXIT=";

/// Seconds the service may take to answer its health path.
const START_WAIT_SECS: u32 = 30;

/// Handles a [`RunTests`].
pub async fn run_tests(crew: &Crew, msg: RunTests) -> Result<TestReport, Failure> {
    let repo = crew.repo_of(msg.project).await?;
    let commit = crew
        .git
        .resolve_commit(&repo.name, &msg.commit)
        .await
        .map_err(|e| e.to_failure())?;
    let manifest = read_manifest(&crew.git, &repo.name, &commit).await?;
    let own = match &msg.command {
        Some(line) => line.clone(),
        None => {
            if manifest.test.is_empty() {
                return Err(Failure::fatal("the manifest's test command is empty"));
            }
            shell_line(&manifest.test)
        }
    };
    let script = script(&own, msg.spec.as_ref().map(|_| &manifest));
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
    let outcome = match &msg.spec {
        Some(spec) => {
            let suite = acceptance::suite(&judged_by(spec));
            let file = GeneratedFile {
                path: format!("{SUITE_DIR}/{}", suite.path),
                contents: suite.contents,
            };
            match checkout.write_files(&[file]) {
                Ok(()) => checkout.run("sh", vec!["-c".into(), script]).await,
                Err(failure) => Err(failure),
            }
        }
        None => checkout.run("sh", vec!["-c".into(), script]).await,
    };
    checkout.close("the tests finished").await;
    let outcome = outcome?;
    let mut report = judge(
        &outcome.stdout_tail,
        &outcome.stderr_tail,
        outcome.succeeded(),
        msg.spec.as_ref(),
    );
    if outcome.timed_out {
        report.success = false;
        report.failed = report.failed.max(1);
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

/// What the acceptance suite holds the service to: the spec's resources — unless the request
/// is not a resource API at all (a bot an LLM agent builds): then only that it runs and
/// answers its health path.
fn judged_by(spec: &Spec) -> Spec {
    match spec.out_of_range {
        Some(_) => Spec {
            resources: Vec::new(),
            ..spec.clone()
        },
        None => spec.clone(),
    }
}

/// `words`, quoted for `sh`.
fn shell_line(words: &[String]) -> String {
    words
        .iter()
        .map(|w| format!("'{}'", w.replace('\'', "'\\''")))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The one command the worker runs: the project's tests (their output kept whole in a file,
/// their last lines printed, then [`OWN_TESTS_DONE`] and their exit code); then, when
/// `serve` gives the manifest, the service started on a free port and the acceptance suite
/// run against it. The worker keeps only the last lines of each stream, so each part prints
/// a bounded tail: the summaries the report is read from are at their ends.
fn script(own: &str, serve: Option<&Manifest>) -> String {
    let mut script = format!(
        "logs=$(mktemp -d)\n\
         ( {own} ) > \"$logs/own.log\" 2>&1\n\
         own=$?\n\
         tail -n 24 \"$logs/own.log\"\n\
         echo \"{OWN_TESTS_DONE}$own\"\n\
         [ \"$own\" -eq 0 ] || exit \"$own\"\n"
    );
    let Some(manifest) = serve else {
        return script;
    };
    // Stand-ins for what the deploy target, artel or the user would give the service.
    let stand_ins: Vec<String> = manifest
        .env
        .iter()
        .filter(|v| !matches!(v.name.as_str(), "PORT" | "HOST" | "DATA_DIR" | "DATA_FILE"))
        .map(|v| format!("{}=artel-acceptance-stand-in", v.name))
        .collect();
    let run = shell_line(&manifest.run);
    let health = shell_line(std::slice::from_ref(&manifest.health));
    let env = shell_line(&stand_ins);
    let suite = shell_line(&acceptance::suite_command());
    script.push_str(&format!(
        "port=$(python3 -c 'import socket; s=socket.socket(); s.bind((\"127.0.0.1\", 0)); print(s.getsockname()[1])')\n\
         mkdir -p \"$logs/data\"\n\
         env PORT=\"$port\" HOST=127.0.0.1 DATA_DIR=\"$logs/data\" DATA_FILE=\"$logs/data/data.json\" {env} {run} > \"$logs/service.log\" 2>&1 &\n\
         service=$!\n\
         waited=0\n\
         until python3 -c 'import sys, urllib.request; urllib.request.urlopen(\"http://127.0.0.1:\" + sys.argv[1] + sys.argv[2], timeout=2)' \"$port\" {health} 2>/dev/null; do\n\
           if ! kill -0 \"$service\" 2>/dev/null; then\n\
             echo \"{prefix} ran=0 failures=1 (the service exited before it answered {health_text}; its last output follows)\"\n\
             tail -n 20 \"$logs/service.log\" >&2\n\
             exit 3\n\
           fi\n\
           waited=$((waited + 1))\n\
           if [ \"$waited\" -ge {tries} ]; then\n\
             echo \"{prefix} ran=0 failures=1 (the service did not answer {health_text} within {START_WAIT_SECS} s; its last output follows)\"\n\
             tail -n 20 \"$logs/service.log\" >&2\n\
             kill \"$service\" 2>/dev/null\n\
             exit 3\n\
           fi\n\
           sleep 0.1\n\
         done\n\
         ( cd {SUITE_DIR} && {url_var}=\"http://127.0.0.1:$port\" {suite} ) > \"$logs/acceptance.log\" 2>&1\n\
         status=$?\n\
         kill \"$service\" 2>/dev/null\n\
         wait \"$service\" 2>/dev/null\n\
         tail -n 24 \"$logs/acceptance.log\"\n\
         tail -n 20 \"$logs/service.log\" >&2\n\
         exit \"$status\"\n",
        prefix = acceptance::SUMMARY_PREFIX,
        health_text = manifest.health.replace(['"', '\\', '$', '`'], ""),
        tries = START_WAIT_SECS * 10,
        url_var = acceptance::SERVICE_URL_VAR,
    ));
    script
}

/// The report of a run of [`script`]: the project's own tests must pass having run at least
/// one test, then (with a spec) the acceptance suite must pass.
fn judge(stdout: &str, stderr: &str, success: bool, spec: Option<&Spec>) -> TestReport {
    let (own, own_exit, acceptance) = match stdout.split_once(OWN_TESTS_DONE) {
        Some((own, rest)) => {
            let (code, after) = rest.split_once('\n').unwrap_or((rest, ""));
            (own, code.trim().parse::<i32>().ok(), after)
        }
        // The script did not get through the project's tests (killed, timed out).
        None => (stdout, None, ""),
    };
    let own_text = format!("{own}\n{stderr}");
    if own_exit != Some(0) {
        return parse_report(&own_text, false);
    }
    let ran = acceptance::tests_ran(own);
    if ran.is_none_or(|n| n == 0) {
        let said = match ran {
            Some(_) => "ran 0 tests",
            None => "printed no unittest or pytest summary, so nothing shows that any test ran",
        };
        let mut report = parse_report(own, false);
        report.output_tail = format!(
            "{}\nThe project's test command (artel.json \"test\") {said}: a test step that \
             cannot fail tests nothing. Make it run the project's tests (e.g. [\"python3\", \
             \"-m\", \"unittest\", \"-v\"]).",
            report.output_tail
        );
        return report;
    }
    let own_report = parse_report(own, true);
    let Some(spec) = spec else {
        return own_report;
    };
    let summary = acceptance::parse_summary(acceptance);
    let tail = last_lines(&format!("{acceptance}\n{stderr}"), TAIL_LINES);
    match summary {
        Some((ran, 0)) if ran > 0 && success => TestReport {
            success: true,
            passed: own_report.passed + ran,
            failed: 0,
            output_tail: format!(
                "{}\nAcceptance (spec v{}): {ran} passed.",
                own_report.output_tail, spec.version
            ),
        },
        summary => {
            let (ran, failed) = summary.unwrap_or((0, 1));
            TestReport {
                success: false,
                passed: own_report.passed + ran.saturating_sub(failed),
                failed: failed.max(1),
                output_tail: format!(
                    "The project's own tests pass, but the acceptance suite artel derived from \
                     the spec (v{}) does not — the service must do what the spec says:\n{tail}",
                    spec.version
                ),
            }
        }
    }
}

fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
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
    TestReport {
        success,
        passed,
        failed: if success { failed } else { failed.max(1) },
        output_tail: last_lines(output, TAIL_LINES),
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

    fn spec() -> Spec {
        Spec {
            version: 2,
            ..Spec::default()
        }
    }

    #[test]
    fn a_test_command_that_runs_no_tests_fails() {
        let report = judge("ARTEL_OWN_TESTS_EXIT=0\n", "", true, None);
        assert!(!report.success);
        assert!(
            report.output_tail.contains("no unittest or pytest summary"),
            "{report:?}"
        );
        let zero = "Ran 0 tests in 0.000s\n\nNO TESTS RAN\nARTEL_OWN_TESTS_EXIT=0\n";
        let report = judge(zero, "", true, None);
        assert!(!report.success);
        assert!(report.output_tail.contains("ran 0 tests"), "{report:?}");
    }

    #[test]
    fn own_tests_then_the_acceptance_suite_decide_the_report() {
        let own = "Ran 3 tests in 0.1s\n\nOK\nARTEL_OWN_TESTS_EXIT=0\n";
        let report = judge(own, "", true, None);
        assert_eq!((report.success, report.passed), (true, 3));
        let passed = format!("{own}test_health ... ok\nACCEPTANCE: ran=5 failures=0\n");
        let report = judge(&passed, "", true, Some(&spec()));
        assert_eq!((report.success, report.passed, report.failed), (true, 8, 0));
        let failed = format!("{own}FAIL: test_books_isbn_unique\nACCEPTANCE: ran=5 failures=2\n");
        let report = judge(&failed, "", false, Some(&spec()));
        assert_eq!(
            (report.success, report.passed, report.failed),
            (false, 6, 2)
        );
        assert!(
            report.output_tail.contains("acceptance suite"),
            "{report:?}"
        );
        assert!(
            report.output_tail.contains("test_books_isbn_unique"),
            "{report:?}"
        );
        // A service that never answered is a failure of the acceptance step, not a pass.
        let silent = format!("{own}ACCEPTANCE: ran=0 failures=1 (the service exited)\n");
        assert!(!judge(&silent, "Traceback", false, Some(&spec())).success);
        // Failing own tests: no acceptance run, the project's output goes back.
        let own_failed = "Ran 3 tests\n\nFAILED (failures=1)\nARTEL_OWN_TESTS_EXIT=1\n";
        let report = judge(own_failed, "", false, Some(&spec()));
        assert_eq!((report.success, report.failed), (false, 1));
    }

    #[test]
    fn arguments_are_quoted_for_the_shell() {
        assert_eq!(
            shell_line(&["python3".into(), "it's here.py".into()]),
            "'python3' 'it'\\''s here.py'"
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
