//! `artel new`: the whole job through the binary — request → session → engineering →
//! deploy → URL — and what happens around it: the rework loop, a task that needs the user,
//! a user secret, a rollback, and `kill -9` in the middle of engineering.

use crate::support::{data_dir, eventually, fresh_database};
use serde_json::{Value, json};
use sqlx::{Connection, PgConnection, Row};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Homes made by this test process so far.
static HOMES: AtomicU32 = AtomicU32::new(0);

/// A slot unique among the tests running at once, across test processes (nextest runs each
/// test in its own process, so a counter alone is not enough): each home gets its own deploy
/// ports and its own worker uids (a worker-manager kills strays of its uid range).
fn slot() -> u32 {
    std::process::id() * 8 + HOMES.fetch_add(1, Ordering::SeqCst)
}

/// How long a whole job may take on a loaded 2-core CI machine.
pub const JOB: Duration = Duration::from_secs(180);

/// Where one artel keeps its state: a database and a data dir, reused across restarts.
pub struct Home {
    pub database: String,
    pub data_dir: PathBuf,
    first_port: u16,
    first_uid: u32,
}

impl Home {
    pub async fn new(tag: &str) -> Self {
        let slot = slot();
        Self {
            database: fresh_database().await,
            data_dir: data_dir(tag),
            first_port: 20_000 + (slot % 2_000) as u16 * 20,
            first_uid: 2_100_000_000 + (slot % 100_000) * 1_000,
        }
    }

    /// The environment that gives an artel this home: database, data dir, its own port and
    /// uid ranges.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("DATABASE_URL", self.database.clone()),
            ("ARTEL_DATA_DIR", self.data_dir.display().to_string()),
            ("ARTEL_DEPLOY__FIRST_PORT", self.first_port.to_string()),
            (
                "ARTEL_DEPLOY__LAST_PORT",
                (self.first_port + 19).to_string(),
            ),
            ("ARTEL_WORKERS__FIRST_UID", self.first_uid.to_string()),
            ("ARTEL_WORKERS__UID_COUNT", "1000".to_owned()),
            ("ARTEL_WORKERS__RUNTIME", "process".to_owned()),
            // Nobody answers the spec question unless a test says so.
            ("ARTEL_ANALYST__CONFIRM", "false".to_owned()),
        ]
    }

    fn command(&self, args: &[&str], env: &[(&str, &str)]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_artel"));
        cmd.args(args)
            .env_remove("REDIS_URL")
            .env("DATABASE_URL", &self.database)
            .env("ARTEL_DATA_DIR", &self.data_dir)
            .env("ARTEL_DEPLOY__FIRST_PORT", self.first_port.to_string())
            .env(
                "ARTEL_DEPLOY__LAST_PORT",
                (self.first_port + 19).to_string(),
            )
            .env("ARTEL_WORKERS__FIRST_UID", self.first_uid.to_string())
            .env("ARTEL_WORKERS__UID_COUNT", "1000")
            .env("ARTEL_HTTP__LISTEN", "127.0.0.1:0")
            .env("ARTEL_LOG", "warn")
            // The default (`auto`) would pick Docker on a machine with the worker image;
            // these tests are about local workers unless they say otherwise.
            .env("ARTEL_WORKERS__RUNTIME", "process")
            // The spec is taken as written unless a test answers the question itself.
            .env("ARTEL_ANALYST__CONFIRM", "false")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Starts `artel` with these arguments.
    pub fn artel(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        Run::spawn(self.command(args, env))
    }

    /// Starts `artel new <request>`.
    pub fn new_job(&self, request: &str, env: &[(&str, &str)]) -> Run {
        Run::spawn(self.command(&["new", request], env))
    }

    /// Starts `artel up`.
    pub fn up(&self, env: &[(&str, &str)]) -> Run {
        Run::spawn(self.command(&["up"], env))
    }

    pub async fn db(&self) -> PgConnection {
        PgConnection::connect(&self.database)
            .await
            .expect("connect to the test database")
    }

    /// The path of the project's bare repository.
    pub fn repo(&self, project: &str) -> PathBuf {
        let repos = self.data_dir.join("repos");
        std::fs::read_dir(&repos)
            .expect("the repositories directory")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(&format!("{project}-")))
            })
            .unwrap_or_else(|| panic!("no repository for {project} in {}", repos.display()))
    }

    /// Pushes to the project's main a commit whose service exits with code 3 at start.
    pub fn push_broken_service(&self, project: &str) {
        let work = self.data_dir.join("breaker");
        git(
            &self.data_dir,
            &[
                "clone",
                "-q",
                self.repo(project).to_str().unwrap(),
                work.to_str().unwrap(),
            ],
        );
        let app = std::fs::read_to_string(work.join("app.py")).unwrap();
        std::fs::write(
            work.join("app.py"),
            format!("import sys\nsys.exit(3)\n{app}"),
        )
        .unwrap();
        git(&work, &["commit", "-qam", "break the service"]);
        git(&work, &["push", "-q", "origin", "HEAD:main"]);
    }

    /// Writes an executable script readable by the workers' uids; answers its path. It lives
    /// beside the data dir, not in it: workers may not see artel's data dir at all.
    pub fn script(&self, name: &str, body: &str) -> PathBuf {
        let dir = self.data_dir.with_extension("scripts");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, body).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }
}

/// A running `artel new` or `artel up`: its stdout lines as they come, its stdin.
pub struct Run {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    pub seen: Vec<String>,
}

impl Run {
    fn spawn(mut cmd: Command) -> Self {
        let mut child = cmd.spawn().expect("artel runs");
        let stdout = child.stdout.take().expect("piped stdout");
        let stdin = child.stdin.take();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            child,
            stdin,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for a line containing `needle`; panics with everything seen when it does not come.
    pub fn wait_for(&mut self, needle: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "no line with {needle:?} within {within:?}; artel printed:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// Waits for the `✓ live at URL` line and answers the URL.
    pub fn wait_live(&mut self) -> String {
        let line = self.wait_for("✓ live at ", JOB);
        line.split_whitespace()
            .find(|w| w.starts_with("http://"))
            .expect("a URL on the live line")
            .to_owned()
    }

    /// Types a line into the session.
    pub fn say(&mut self, text: &str) {
        let stdin = self.stdin.as_mut().expect("stdin is open");
        writeln!(stdin, "{text}").expect("write to artel's stdin");
        stdin.flush().expect("flush");
    }

    /// SIGTERM, then a clean exit within a minute.
    pub fn terminate(mut self) {
        use nix::sys::signal::{Signal, kill};
        use nix::unistd::Pid;
        kill(Pid::from_raw(self.child.id() as i32), Signal::SIGTERM).expect("SIGTERM");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                assert!(
                    status.success(),
                    "artel exited with {status}:\n{}",
                    self.seen.join("\n")
                );
                return;
            }
            assert!(
                Instant::now() < deadline,
                "artel did not stop within a minute"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `kill -9`.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

pub async fn post(url: &str, body: Value) -> (u16, Value) {
    let response = client().post(url).json(&body).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

pub async fn get(url: &str) -> (u16, Value) {
    let response = client().get(url).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn answers(url: &str) -> bool {
    client().get(format!("{url}/health")).send().await.is_ok()
}

/// The project name in a "<name> is live at <url>" or "building <name>" line.
pub fn project_of(run: &Run) -> String {
    run.seen
        .iter()
        .find_map(|l| {
            l.split("I'm building ")
                .nth(1)
                .and_then(|rest| rest.split_whitespace().next())
                .map(|n| {
                    n.trim_end_matches(|c: char| !c.is_alphanumeric())
                        .to_owned()
                })
        })
        .expect("the ProductOwner named the project")
}

#[tokio::test(flavor = "multi_thread")]
async fn three_requests_become_three_working_services() {
    let (shortener, todos, notes) = tokio::join!(
        Home::new("shortener"),
        Home::new("todos"),
        Home::new("notes")
    );
    let mut runs = [
        shortener.new_job("A URL shortener with a REST API", &[]),
        todos.new_job("make me a todo list API", &[]),
        notes.new_job("build a notes service", &[]),
    ];
    let urls: Vec<String> = runs.iter_mut().map(Run::wait_live).collect();

    // The shortener: create a link, read it back, follow its redirect.
    let (status, link) = post(
        &format!("{}/api/links", urls[0]),
        json!({"url": "https://example.com/artel"}),
    )
    .await;
    assert_eq!(status, 201, "{link}");
    let id = link["id"].as_str().expect("the link has an id");
    let (status, read) = get(&format!("{}/api/links/{id}", urls[0])).await;
    assert_eq!(
        (status, read["url"].as_str()),
        (200, Some("https://example.com/artel"))
    );
    let redirect = client()
        .get(format!("{}/r/{id}", urls[0]))
        .send()
        .await
        .unwrap();
    assert_eq!(redirect.status().as_u16(), 302);
    assert_eq!(
        redirect.headers()["location"].to_str().unwrap(),
        "https://example.com/artel"
    );
    let (status, bad) = post(&format!("{}/api/links", urls[0]), json!({"url": "nope"})).await;
    assert_eq!(status, 400, "a bad URL is refused: {bad}");

    // The todo list.
    let (status, todo) = post(
        &format!("{}/api/todos", urls[1]),
        json!({"title": "buy milk"}),
    )
    .await;
    assert_eq!(status, 201, "{todo}");
    let (status, list) = get(&format!("{}/api/todos", urls[1])).await;
    assert_eq!(status, 200);
    assert!(list.to_string().contains("buy milk"), "{list}");

    // The notes service.
    let (status, note) = post(
        &format!("{}/api/notes", urls[2]),
        json!({"title": "hello", "body": "from artel"}),
    )
    .await;
    assert_eq!(status, 201, "{note}");
    let id = note["id"].as_str().expect("the note has an id");
    let (status, read) = get(&format!("{}/api/notes/{id}", urls[2])).await;
    assert_eq!((status, read["body"].as_str()), (200, Some("from artel")));

    // The session told the user, and the services stop with artel.
    for (run, url) in runs.into_iter().zip(&urls) {
        assert!(
            run.seen
                .iter()
                .any(|l| l.contains("artel: ") && l.contains("building")),
            "the ProductOwner answered: {:?}",
            run.seen
        );
        run.terminate();
        assert!(
            !answers(url).await,
            "{url} still answers after artel stopped"
        );
    }
}

/// What the reworking agent is asked for: not a resource API, so only an LLM or CLI agent
/// builds it.
const ADDER: &str = "a Slack bot that adds two numbers";

/// A scripted `cli` agent: on its first iteration it commits an adder with a bug; when it is
/// given the failing test output (ARTEL_REWORK) it commits the fix.
const REWORKING_AGENT: &str = r#"#!/bin/sh
set -e
cat > test_calc.py <<'EOF'
import unittest
from calc import add
class AddTest(unittest.TestCase):
    def test_add(self):
        self.assertEqual(add(2, 3), 5)
EOF
if [ -n "$ARTEL_REWORK" ] && [ -z "$NEVER_FIX" ]; then
  printf 'def add(a, b):\n    return a + b\n' > calc.py
  msg="fix add: $(echo "$ARTEL_REWORK" | grep -c AssertionError) assertion(s) seen"
else
  printf '# iteration %s\ndef add(a, b):\n    return a - b\n' "$ARTEL_ITERATION" > calc.py
  msg="add calc (iteration $ARTEL_ITERATION)"
fi
git add -A
git commit -q -m "$msg"
"#;

#[tokio::test(flavor = "multi_thread")]
async fn failing_tests_go_back_to_the_developer_and_pass_on_iteration_two() {
    let home = Home::new("rework").await;
    let agent = home.script("agent.sh", REWORKING_AGENT);
    let agent = agent.to_str().unwrap();
    // Not a resource API: the acceptance suite holds this agent's service to its health path,
    // and the rework loop is about the agent's own test.
    let mut run = home.new_job(
        ADDER,
        &[
            ("ARTEL_AGENT__KIND", "cli"),
            ("ARTEL_AGENT__COMMAND", agent),
        ],
    );
    run.wait_for(" passed, 1 failed", JOB);
    run.wait_for(" passed, 0 failed", JOB);
    run.wait_live();

    let mut db = home.db().await;
    let develops: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM task_steps WHERE step = 'develop' AND status = 'succeeded'",
    )
    .fetch_one(&mut db)
    .await
    .unwrap();
    assert_eq!(develops, 2, "the task passed on iteration two");
    // The fix saw the failing output, and main holds it.
    let project = project_of(&run);
    let log = git(&home.repo(&project), &["log", "--format=%s", "main"]);
    assert!(log.contains("fix add: 1 assertion(s) seen"), "{log}");
    run.terminate();
}

#[tokio::test(flavor = "multi_thread")]
async fn past_the_iteration_limit_the_task_needs_a_human_who_is_told() {
    let home = Home::new("needs-human").await;
    // Workers get a scrubbed environment, so the switch lives in the script itself.
    let never_fixing = REWORKING_AGENT.replace("set -e\n", "set -e\nNEVER_FIX=1\n");
    let agent = home.script("agent.sh", &never_fixing);
    let mut run = home.new_job(
        ADDER,
        &[
            ("ARTEL_AGENT__KIND", "cli"),
            ("ARTEL_AGENT__COMMAND", agent.to_str().unwrap()),
            ("ARTEL_WORKFLOWS__MAX_REWORK_ITERATIONS", "2"),
        ],
    );
    run.wait_for("engineering needs_human", JOB);
    run.wait_for("I need your help with", JOB);
    run.say("cancel");
    run.wait_for("artel: Cancelled.", JOB);
    let mut db = home.db().await;
    let status: String = sqlx::query_scalar("SELECT status FROM tasks WHERE kind = 'engineering'")
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert_eq!(status, "cancelled");
    let develops: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM task_steps WHERE step = 'develop' AND status = 'succeeded'",
    )
    .fetch_one(&mut db)
    .await
    .unwrap();
    assert_eq!(develops, 2, "no more iterations than the limit");
    run.terminate();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deploy_waits_for_a_user_secret_and_ends_when_it_is_given() {
    let home = Home::new("secret").await;
    let mut run = home.new_job("a notes service that needs WEATHER_API_KEY", &[]);
    run.wait_for("waiting for WEATHER_API_KEY", JOB);
    run.say("WEATHER_API_KEY=sk-weather-42");
    let url = run.wait_live();
    assert!(answers(&url).await);
    // The secret never reached the transcript or the events.
    let mut db = home.db().await;
    let leaks: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM session_messages WHERE text LIKE '%sk-weather-42%') \
              + (SELECT count(*) FROM events WHERE payload::text LIKE '%sk-weather-42%')",
    )
    .fetch_one(&mut db)
    .await
    .unwrap();
    assert_eq!(leaks, 0);
    run.terminate();
    assert!(!answers(&url).await, "the service stops with artel");

    // The next start restarts the deployment, with its secret read back from the store.
    let mut up = home.up(&[]);
    up.wait_for("artel is up on", JOB);
    eventually(JOB, "the live deployment to be restarted", || answers(&url)).await;
    up.terminate();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deploy_that_fails_its_health_check_leaves_the_previous_one_serving() {
    let home = Home::new("rollback").await;
    let mut run = home.new_job("a todo list API", &[]);
    let url = run.wait_live();
    let project = project_of(&run);

    // Someone pushes a commit whose service dies at start.
    home.push_broken_service(&project);

    run.say(&format!("deploy {project}"));
    run.wait_for("rolled back: the previous deployment keeps serving", JOB);
    run.wait_for("deploy failed", JOB);
    let (status, _) = get(&format!("{url}/api/todos")).await;
    assert_eq!(status, 200, "the previous deployment still serves");
    let mut db = home.db().await;
    let rows = sqlx::query("SELECT status FROM deployments ORDER BY created_at")
        .fetch_all(&mut db)
        .await
        .unwrap();
    let statuses: Vec<String> = rows.iter().map(|r| r.get("status")).collect();
    assert_eq!(statuses, ["live", "rolled_back"]);
    run.terminate();
}

/// What the slow agent is asked for: not a resource API, so its notes-only service is held
/// to its health path.
const GREETER: &str = "a Discord bot that greets guests";

/// A `cli` agent slow enough to be killed in the middle of.
pub const SLOW_AGENT: &str = r#"#!/bin/sh
set -e
sleep 4
printf 'VERSION = 1\n' > version.py
git add -A
git commit -q -m "slow but steady"
"#;

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_during_engineering_then_up_resumes_the_task_and_the_session_remembers() {
    let home = Home::new("crash").await;
    let agent = home.script("agent.sh", SLOW_AGENT);
    let env = [
        ("ARTEL_AGENT__KIND", "cli"),
        ("ARTEL_AGENT__COMMAND", agent.to_str().unwrap()),
    ];
    let mut run = home.new_job(GREETER, &env);
    run.wait_for("engineering › develop", JOB);
    run.kill();

    let up = home.up(&env);
    let mut db = home.db().await;
    eventually(JOB, "the resumed job to deploy", || {
        let database = home.database.clone();
        async move {
            let mut db = PgConnection::connect(&database).await.unwrap();
            let live: i64 =
                sqlx::query_scalar("SELECT count(*) FROM deployments WHERE status = 'live'")
                    .fetch_one(&mut db)
                    .await
                    .unwrap();
            live == 1
        }
    })
    .await;
    let status: String = sqlx::query_scalar("SELECT status FROM tasks WHERE kind = 'engineering'")
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert_eq!(status, "completed");
    let resumed: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE kind = 'step_resumed' AND payload->>'step' = 'develop'",
    )
    .fetch_one(&mut db)
    .await
    .unwrap();
    assert_eq!(resumed, 1, "the interrupted develop step was resumed");
    // The conversation survived: the request, the first answer, and the news since (the
    // herald tells the session just after the deployment goes live).
    eventually(
        Duration::from_secs(20),
        "the session to tell the URL",
        || {
            let database = home.database.clone();
            async move {
                let mut db = PgConnection::connect(&database).await.unwrap();
                let told: i64 = sqlx::query_scalar(
                    "SELECT count(*) FROM session_messages WHERE text LIKE '%is live at http://%'",
                )
                .fetch_one(&mut db)
                .await
                .unwrap();
                told > 0
            }
        },
    )
    .await;
    let lines: Vec<String> = sqlx::query_scalar("SELECT text FROM session_messages ORDER BY id")
        .fetch_all(&mut db)
        .await
        .unwrap();
    assert_eq!(lines[0], GREETER);
    assert!(lines[1].contains("building"), "{lines:?}");
    assert!(
        lines.iter().any(|l| l.contains("is live at http://")),
        "the session told the user after the restart: {lines:?}"
    );
    up.terminate();
}

pub fn git(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .args([
            "-c",
            "safe.directory=*",
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git runs");
    assert!(
        output.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}
