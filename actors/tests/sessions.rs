//! Sessions and the ProductOwner against a real Postgres: a build request becomes a project, an
//! engineering task and its deploy; the herald tells the news once; lines said at once are
//! answered in order and none is lost; an idle session hibernates and wakes with its context;
//! a secret is stored and never journaled; a task that needs the user takes their guidance.
//!
//! The steps run in a [`QuickRunner`] that answers at once, so the tests exercise the sessions
//! and the workflows around them, not the agents.

mod support;

use artel_actors::intent;
use artel_actors::sessions::{Brain, Sessions};
use artel_actors::store::{ChatLink, EventScope, MasterKey, Store};
use artel_actors::workflow::{
    PlanLimits, StepCall, StepError, StepRunner, WorkflowPolicy, Workflows,
};
use artel_messages::dto::ChatLineDto;
use artel_messages::event::{ChatRole, NewEvent};
use artel_messages::product_owner::Intent;
use artel_messages::secret::SecretValue;
use artel_messages::{
    Classify, DeploymentId, ErrorClass, EventBody, EventId, SessionChannel, SessionId,
    SessionStatus, StepKind, StepStatus, TaskId, TaskKind, TaskStatus, UserId,
};
use artel_supervisors::{Backoff, Supervisor, SupervisorHandle, SupervisorRef};
use serde_json::{Value, json};
use std::future::Future;
use std::time::Duration;
use support::TestDb;

/// Where the runner says every deployment answers.
const URL: &str = "http://127.0.0.1:1";
/// How long a test waits for something that should happen soon.
const SOON: Duration = Duration::from_secs(30);
/// The rework budget the tests configure.
const REWORK: u32 = 2;

/// Runs every step at once. `health_check` journals a `deploy_succeeded` event (as the real
/// deployer does), so the herald has news to tell.
#[derive(Clone)]
struct QuickRunner {
    store: Store,
    /// A secret `resolve_secrets` reports missing (with a `secret_requested` event, as the
    /// real resolver does) until the project has it.
    needs_secret: Option<&'static str>,
    /// When set, tests fail until the task carries the user's guidance.
    tests_need_guidance: bool,
    /// When set, the missing secret is stored just as `resolve_secrets` reports it missing:
    /// the user answered between the question and the deploy's `needs_human`.
    secret_arrives_while_asking: bool,
    /// When set, the spec waits for the user's yes (as with `analyst.confirm`); its summary
    /// lists every correction it was given.
    confirm_spec: bool,
}

impl QuickRunner {
    fn new(store: &Store) -> Self {
        Self {
            store: store.clone(),
            needs_secret: None,
            tests_need_guidance: false,
            secret_arrives_while_asking: false,
            confirm_spec: false,
        }
    }
}

impl StepRunner for QuickRunner {
    async fn run(&self, call: StepCall) -> Result<Value, StepError> {
        Ok(match call.step {
            StepKind::WriteSpec => {
                let mut corrections: Vec<String> = call.input["write_spec"]["corrections"]
                    .as_array()
                    .map(|c| {
                        c.iter()
                            .filter_map(|v| v.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default();
                let guidance = call.input["guidance"].as_str();
                if let Some(g) = guidance
                    && call.input["write_spec"]["guidance"].as_str() != Some(g)
                {
                    corrections.push(g.to_owned());
                }
                json!({
                    "spec": {"version": 1 + corrections.len()},
                    "confirmed": !self.confirm_spec,
                    "guidance": guidance,
                    "corrections": corrections,
                    "summary": format!("Todo list: todos (title) {}", corrections.join(", ")),
                    "not_applied": [],
                })
            }
            StepKind::Test => {
                let guided = call.input["guidance"].as_str().is_some();
                if self.tests_need_guidance && !guided {
                    json!({"success": false, "passed": 0, "failed": 1,
                           "output_tail": "FAIL: test_create_todo"})
                } else {
                    json!({"success": true, "passed": 1, "failed": 0, "output_tail": ""})
                }
            }
            StepKind::ResolveSecrets => match self.needs_secret {
                Some(name) => {
                    let have = self
                        .store
                        .secret_names(call.project)
                        .await
                        .map_err(|e| e.to_failure())?;
                    if have.iter().any(|n| n == name) {
                        json!({"resolved": [name], "missing": []})
                    } else {
                        self.store
                            .append_event(
                                NewEvent::new(EventBody::SecretRequested { name: name.into() })
                                    .project(call.project)
                                    .task(call.task),
                            )
                            .await
                            .map_err(|e| e.to_failure())?;
                        if self.secret_arrives_while_asking {
                            self.store
                                .set_secret(call.project, name, &SecretValue::new("sk-early"))
                                .await
                                .map_err(|e| e.to_failure())?;
                        }
                        json!({"resolved": [], "missing": [name]})
                    }
                }
                None => json!({"resolved": [], "missing": []}),
            },
            StepKind::Deploy => json!({"deployment": DeploymentId::new(), "url": URL}),
            StepKind::HealthCheck => {
                let deployment = call.input["deploy"]["deployment"]
                    .as_str()
                    .and_then(|d| d.parse().ok())
                    .unwrap_or_else(DeploymentId::new);
                self.store
                    .append_event(
                        NewEvent::new(EventBody::DeploySucceeded {
                            deployment,
                            url: URL.into(),
                        })
                        .project(call.project)
                        .task(call.task),
                    )
                    .await
                    .map_err(|e| e.to_failure())?;
                json!({"healthy": true})
            }
            _ => json!({}),
        })
    }
}

/// artel's sessions and workflows, started the way artel starts them, on a fresh database.
struct Harness {
    /// Kept so the database lives as long as the test.
    _db: TestDb,
    store: Store,
    sessions: Sessions<QuickRunner>,
    /// The `sessions` supervisor, to restart the herald.
    sessions_tree: SupervisorRef,
    root: SupervisorHandle,
    user: UserId,
}

impl Harness {
    async fn start(configure: impl FnOnce(&mut QuickRunner), idle: Duration) -> Self {
        Self::start_with(configure, idle, Brain::Offline).await
    }

    /// [`start`](Self::start) with the ProductOwner's brain given.
    async fn start_with(
        configure: impl FnOnce(&mut QuickRunner),
        idle: Duration,
        brain: Brain,
    ) -> Self {
        let db = TestDb::new().await;
        let store = db.store.clone().with_master_key(MasterKey::generate());
        let mut runner = QuickRunner::new(&store);
        configure(&mut runner);
        let policy = WorkflowPolicy {
            max_step_attempts: 3,
            step_deadline: Duration::from_secs(30),
            limits: PlanLimits {
                max_rework_iterations: REWORK,
            },
        };
        let (workflows, workflows_tree) = Workflows::subtree(store.clone(), runner, policy);
        let (sessions, tree) = Sessions::subtree(store.clone(), workflows, idle, brain);
        let sessions_tree = tree.handle();
        let root = Supervisor::new("root")
            .child(workflows_tree.into_child().backoff(Backoff::none()))
            .child(tree.into_child().backoff(Backoff::none()))
            .start()
            .await;
        let user = store.ensure_user("t", "t@example.com").await.unwrap().id;
        Self {
            _db: db,
            store,
            sessions,
            sessions_tree,
            root,
            user,
        }
    }

    async fn open(&self) -> SessionId {
        self.sessions
            .open(self.user, SessionChannel::Cli)
            .await
            .unwrap()
            .id
    }

    async fn transcript(&self, session: SessionId) -> Vec<ChatLineDto> {
        self.store.chat_lines(session, 0).await.unwrap()
    }

    /// The ProductOwner's lines containing `text`.
    async fn said(&self, session: SessionId, text: &str) -> Vec<ChatLineDto> {
        self.transcript(session)
            .await
            .into_iter()
            .filter(|l| l.role == ChatRole::ProductOwner && l.text.contains(text))
            .collect()
    }

    async fn status(&self, task: TaskId) -> Option<TaskStatus> {
        self.store.task(task).await.unwrap().map(|t| t.status)
    }

    /// How many times the task's spec was written.
    async fn specs_written(&self, task: TaskId) -> usize {
        self.store
            .steps(task)
            .await
            .unwrap()
            .iter()
            .filter(|s| s.step == StepKind::WriteSpec && s.status == StepStatus::Succeeded)
            .count()
    }

    /// The deploy task an engineering task was created with.
    async fn deploy_of(&self, engineering: TaskId) -> TaskId {
        let task = self.store.task(engineering).await.unwrap().unwrap();
        task.follow_up
            .expect("a build request has a follow-up deploy")
    }

    /// Says `line` and returns the ProductOwner's answer to it (`say` also returns any news
    /// told meanwhile).
    async fn ask(&self, session: SessionId, line: &str) -> String {
        let answers = self.sessions.say(session, line).await.unwrap();
        let (asked, answer): (i64, String) = sqlx::query_as(
            "SELECT u.id, r.text FROM session_messages u \
             JOIN session_messages r ON r.reply_to = u.id \
             WHERE u.session_id = $1 ORDER BY u.id DESC LIMIT 1",
        )
        .bind(session.as_uuid())
        .fetch_one(self.store.pool())
        .await
        .unwrap();
        let unanswered = self.store.unanswered_lines(session).await.unwrap();
        assert_eq!(unanswered, [], "{line:?} was answered (line {asked})");
        assert!(
            answers
                .iter()
                .any(|a| a.role == ChatRole::ProductOwner && a.text == answer),
            "say returns the answer {answer:?}: {answers:?}"
        );
        answer
    }

    /// Asks for a build; answers its engineering task.
    async fn build(&self, session: SessionId, request: &str) -> TaskId {
        self.ask(session, request).await;
        let tasks = self.store.session_tasks(session).await.unwrap();
        let task = tasks
            .iter()
            .rev()
            .find(|t| t.kind == TaskKind::Engineering)
            .unwrap_or_else(|| panic!("{request:?} started no engineering task"));
        task.id
    }

    async fn stop(self) {
        self.sessions.close();
        self.root.shutdown().await;
    }
}

/// Waits until `check` holds, polling; fails the test naming `what` after `within`.
async fn eventually<F, Fut>(within: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if check().await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not within {within:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Fails unless each `(table, count query of $1)` finds `value` nowhere.
async fn assert_nowhere(store: &Store, value: &str, checks: &[(&str, &str)]) {
    for (table, sql) in checks {
        let found: i64 = sqlx::query_scalar(sql)
            .bind(value)
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert_eq!(found, 0, "the secret's value is in {table}");
    }
}

/// `(user line, the line answering it)` ids of a session, in journal order of the answers.
async fn replies(store: &Store, session: SessionId) -> Vec<(i64, i64)> {
    sqlx::query_as(
        "SELECT reply_to, id FROM session_messages \
         WHERE session_id = $1 AND reply_to IS NOT NULL ORDER BY id",
    )
    .bind(session.as_uuid())
    .fetch_all(store.pool())
    .await
    .unwrap()
}

#[tokio::test]
async fn a_build_request_is_built_deployed_and_told_once() {
    let h = Harness::start(|_| {}, Duration::from_secs(60)).await;
    let session = h.open().await;

    let answer = h.ask(session, "make me a todo list API").await;
    let projects = h.store.projects(h.user).await.unwrap();
    assert_eq!(projects.len(), 1, "{projects:?}");
    let project = &projects[0];
    assert!(
        answer.contains(&project.name),
        "the answer names the project {}: {answer}",
        project.name
    );
    let dto = h.store.session(session).await.unwrap().unwrap();
    assert_eq!(dto.project, Some(project.id), "the session is about it now");

    let tasks = h.store.session_tasks(session).await.unwrap();
    let engineering: Vec<_> = tasks
        .iter()
        .filter(|t| t.kind == TaskKind::Engineering)
        .collect();
    assert_eq!(engineering.len(), 1, "one engineering task: {tasks:?}");
    let engineering = engineering[0];
    // Its deploy task appears once it completes, which may have happened already.
    assert!(
        tasks
            .iter()
            .all(|t| t.id == engineering.id || Some(t.id) == engineering.follow_up),
        "nothing but the task and its follow-up: {tasks:?}"
    );
    assert_eq!(engineering.project, project.id);
    let deploy = engineering
        .follow_up
        .expect("the engineering task is followed by a deploy");

    eventually(SOON, "the engineering task completes", || async {
        h.status(engineering.id).await == Some(TaskStatus::Completed)
    })
    .await;
    eventually(SOON, "the deploy task exists and completes", || async {
        h.status(deploy).await == Some(TaskStatus::Completed)
    })
    .await;
    let deploy_task = h.store.task(deploy).await.unwrap().unwrap();
    assert_eq!(deploy_task.kind, TaskKind::Deploy);
    assert_eq!(
        deploy_task.session,
        Some(session),
        "it reports to the session"
    );

    let live = format!("{} is live at {URL}", project.name);
    eventually(SOON, "the herald tells the user it is live", || async {
        !h.said(session, &live).await.is_empty()
    })
    .await;
    eventually(SOON, "the herald tells the code is written", || async {
        !h.said(session, "the code is written").await.is_empty()
    })
    .await;

    // The herald has read everything: restart it from the very start of the journal. Every
    // piece of news is replayed and none is told again — except one line we take out of the
    // transcript, which shows the replay happened.
    let latest = h.store.latest_event_id().await.unwrap();
    eventually(SOON, "the herald saves its cursor", || async {
        h.store.cursor("sessions.herald").await.unwrap() >= latest
    })
    .await;
    let written = h.said(session, "the code is written").await;
    assert_eq!(written.len(), 1, "{written:?}");
    sqlx::query("DELETE FROM session_messages WHERE id = $1")
        .bind(written[0].id)
        .execute(h.store.pool())
        .await
        .unwrap();
    let before = h.transcript(session).await;
    sqlx::query("DELETE FROM cursors WHERE name = 'sessions.herald'")
        .execute(h.store.pool())
        .await
        .unwrap();
    let herald = h
        .sessions_tree
        .child_named("herald")
        .await
        .unwrap()
        .expect("the herald runs");
    h.sessions_tree.restart_child(herald).await.unwrap();
    eventually(SOON, "the restarted herald replays the journal", || async {
        h.store.cursor("sessions.herald").await.unwrap() >= latest
            && !h.said(session, "the code is written").await.is_empty()
    })
    .await;
    let after = h.transcript(session).await;
    assert_eq!(
        after[..before.len()],
        before[..],
        "a replay says nothing twice: {after:#?}"
    );
    assert_eq!(after.len(), before.len() + 1, "{after:#?}");
    assert!(after[before.len()].text.contains("the code is written"));
    assert_eq!(h.said(session, &live).await.len(), 1);

    // Telling the same event by hand says nothing either.
    let events = h
        .store
        .events_since(EventScope::Task(deploy), EventId::new(0), 1000)
        .await
        .unwrap();
    let succeeded = events
        .into_iter()
        .find(|e| matches!(e.body, EventBody::DeploySucceeded { .. }))
        .expect("the deploy journaled its success");
    assert_eq!(h.sessions.tell(session, succeeded).await.unwrap(), None);
    assert_eq!(h.said(session, &live).await.len(), 1, "told exactly once");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lines_said_at_once_are_all_answered_in_order() {
    let h = Harness::start(|_| {}, Duration::from_secs(60)).await;
    let session = h.open().await;

    // A few rounds of lines said at once, so a race has its chances.
    const ROUNDS: usize = 4;
    let lines = ["status", "my projects", "hi", "status", "my projects"];
    for _ in 0..ROUNDS {
        let mut said = Vec::new();
        for line in lines {
            let sessions = h.sessions.clone();
            said.push(tokio::spawn(
                async move { sessions.say(session, line).await },
            ));
        }
        for handle in said {
            handle.await.unwrap().unwrap();
        }
    }

    assert_eq!(h.store.unanswered_lines(session).await.unwrap(), []);
    let transcript = h.transcript(session).await;
    let users: Vec<i64> = transcript
        .iter()
        .filter(|l| l.role == ChatRole::User)
        .map(|l| l.id)
        .collect();
    assert_eq!(
        users.len(),
        ROUNDS * lines.len(),
        "every line journaled once"
    );
    let mut texts: Vec<&str> = transcript
        .iter()
        .filter(|l| l.role == ChatRole::User)
        .map(|l| l.text.as_str())
        .collect();
    texts.sort_unstable();
    let mut expected = lines.repeat(ROUNDS);
    expected.sort_unstable();
    assert_eq!(texts, expected);

    let replies = replies(&h.store, session).await;
    let answered: Vec<i64> = replies.iter().map(|(to, _)| *to).collect();
    assert_eq!(
        answered, users,
        "each user line answered exactly once, in the order the lines were journaled"
    );
    // Each answer fits its line.
    for (to, answer) in &replies {
        let question = transcript.iter().find(|l| l.id == *to).unwrap();
        let answer = transcript.iter().find(|l| l.id == *answer).unwrap();
        assert_eq!(answer.role, ChatRole::ProductOwner);
        let fits = match question.text.as_str() {
            "hi" => answer.text.contains("I build and run small web services"),
            _ => answer.text.contains("You have no projects yet"),
        };
        assert!(fits, "{:?} answered with {:?}", question.text, answer.text);
    }
    h.stop().await;
}

#[tokio::test]
async fn an_idle_session_hibernates_and_wakes_with_its_context() {
    let h = Harness::start(|_| {}, Duration::from_millis(300)).await;
    let session = h.open().await;
    let engineering = h.build(session, "make me a todo list API").await;
    let deploy = h.deploy_of(engineering).await;
    eventually(SOON, "the deploy completes", || async {
        h.status(deploy).await == Some(TaskStatus::Completed)
    })
    .await;
    eventually(SOON, "the herald told it is live", || async {
        !h.said(session, "is live at").await.is_empty()
    })
    .await;
    h.sessions.say(session, "status").await.unwrap();

    tokio::time::sleep(Duration::from_millis(1_500)).await;
    eventually(
        Duration::from_secs(10),
        "the idle session hibernates",
        || async {
            h.store.session(session).await.unwrap().unwrap().status == SessionStatus::Hibernated
        },
    )
    .await;

    let text = h.ask(session, "status").await;
    let dto = h.store.session(session).await.unwrap().unwrap();
    assert_eq!(dto.status, SessionStatus::Active, "the line woke it");
    let project = h.store.projects(h.user).await.unwrap().remove(0);
    assert!(
        text.contains(&format!("engineering of {}: completed", project.name))
            && text.contains(&format!("deploy of {}: completed", project.name)),
        "the woken session still knows its tasks: {text}"
    );
    assert_eq!(h.store.unanswered_lines(session).await.unwrap(), []);
    h.stop().await;
}

#[tokio::test]
async fn a_line_journaled_while_no_actor_runs_is_answered_on_wake() {
    let h = Harness::start(|_| {}, Duration::from_secs(60)).await;
    let session = h.open().await;
    let line = h
        .store
        .append_chat_line(session, ChatRole::User, "status", ChatLink::None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(h.store.unanswered_lines(session).await.unwrap().len(), 1);

    assert_eq!(h.sessions.wake(session).await.unwrap(), 1);

    assert_eq!(h.store.unanswered_lines(session).await.unwrap(), []);
    let replies = replies(&h.store, session).await;
    assert_eq!(replies.len(), 1, "{replies:?}");
    assert_eq!(replies[0].0, line.id);
    let answer = h.transcript(session).await.pop().unwrap();
    assert_eq!(answer.role, ChatRole::ProductOwner);
    assert!(
        answer.text.contains("You have no projects yet"),
        "{answer:?}"
    );
    // Nothing is left to answer.
    assert_eq!(h.sessions.wake(session).await.unwrap(), 0);
    h.stop().await;
}

#[tokio::test]
async fn a_secret_is_stored_never_journaled_and_resumes_the_deploy() {
    const NAME: &str = "WEATHER_API_KEY";
    const VALUE: &str = "sk-123";
    let h = Harness::start(|r| r.needs_secret = Some(NAME), Duration::from_secs(60)).await;
    let session = h.open().await;
    let engineering = h.build(session, "make me a weather API").await;
    let project = h.store.task(engineering).await.unwrap().unwrap().project;
    let deploy = h.deploy_of(engineering).await;
    eventually(SOON, "the deploy waits for the secret", || async {
        h.status(deploy).await == Some(TaskStatus::NeedsHuman)
    })
    .await;
    eventually(SOON, "the session asks for the secret", || async {
        !h.said(session, &format!("needs {NAME}")).await.is_empty()
    })
    .await;

    let answer = h.ask(session, &format!("{NAME}={VALUE}")).await;
    assert!(answer.contains("Resuming the deploy"), "{answer}");
    let names = h.store.secret_names(project).await.unwrap();
    assert!(names.iter().any(|n| n == NAME), "stored: {names:?}");
    eventually(SOON, "the resumed deploy completes", || async {
        h.status(deploy).await == Some(TaskStatus::Completed)
    })
    .await;
    eventually(SOON, "the session tells it is live", || async {
        !h.said(session, "is live at").await.is_empty()
    })
    .await;

    let journaled: Vec<String> = h
        .transcript(session)
        .await
        .into_iter()
        .filter(|l| l.role == ChatRole::User)
        .map(|l| l.text)
        .collect();
    assert!(
        journaled.contains(&format!("{NAME}={}", intent::REDACTED)),
        "the line is journaled redacted: {journaled:?}"
    );
    assert_nowhere(
        &h.store,
        VALUE,
        &[
            (
                "session_messages",
                "SELECT count(*) FROM session_messages WHERE text LIKE '%' || $1 || '%'",
            ),
            (
                "events",
                "SELECT count(*) FROM events WHERE payload::text LIKE '%' || $1 || '%'",
            ),
            (
                "task_steps",
                "SELECT count(*) FROM task_steps \
             WHERE input::text LIKE '%' || $1 || '%' OR output::text LIKE '%' || $1 || '%'",
            ),
        ],
    )
    .await;
    h.stop().await;
}

#[tokio::test]
async fn a_secret_given_while_the_deploy_is_asking_for_it_is_not_missed() {
    const NAME: &str = "WEATHER_API_KEY";
    let h = Harness::start(
        |r| {
            r.needs_secret = Some(NAME);
            r.secret_arrives_while_asking = true;
        },
        Duration::from_secs(60),
    )
    .await;
    let session = h.open().await;
    let engineering = h.build(session, "make me a weather API").await;
    let deploy = h.deploy_of(engineering).await;
    // Nobody resumes it: the deploy sees, once it waits, that the secret is there already.
    eventually(
        SOON,
        "the deploy completes without being resumed",
        || async { h.status(deploy).await == Some(TaskStatus::Completed) },
    )
    .await;
    h.stop().await;
}

#[tokio::test]
async fn a_task_that_needs_the_user_takes_guidance_or_is_cancelled() {
    let h = Harness::start(|r| r.tests_need_guidance = true, Duration::from_secs(60)).await;
    let guidance = "use a dict instead";
    assert_eq!(intent::parse(guidance), Intent::Unknown, "free text");

    let session = h.open().await;
    let task = h.build(session, "make me a todo list API").await;
    eventually(SOON, "the failing task needs the user", || async {
        h.status(task).await == Some(TaskStatus::NeedsHuman)
    })
    .await;
    let steps = h.store.steps(task).await.unwrap();
    let developed = steps.iter().filter(|s| s.step == StepKind::Develop).count();
    assert_eq!(
        developed, REWORK as usize,
        "the rework budget, then a human"
    );
    eventually(SOON, "the session asks for help", || async {
        !h.said(session, "I need your help").await.is_empty()
    })
    .await;

    let answer = h.ask(session, guidance).await;
    assert!(answer.contains("passed that"), "{answer}");
    let record = h.store.task(task).await.unwrap().unwrap();
    assert_eq!(record.guidance.as_deref(), Some(guidance));
    assert!(
        matches!(record.status, TaskStatus::Running | TaskStatus::Completed),
        "resumed: {}",
        record.status
    );
    eventually(SOON, "the guided task completes", || async {
        h.status(task).await == Some(TaskStatus::Completed)
    })
    .await;
    let steps = h.store.steps(task).await.unwrap();
    let last_develop = steps
        .iter()
        .rev()
        .find(|s| s.step == StepKind::Develop)
        .unwrap();
    assert_eq!(
        last_develop.input["guidance"], guidance,
        "the Developer got the guidance"
    );

    // Another such task, in another session: "cancel" cancels it.
    let other = h.open().await;
    let stuck = h.build(other, "make me a notes API").await;
    eventually(SOON, "the other task needs the user", || async {
        h.status(stuck).await == Some(TaskStatus::NeedsHuman)
    })
    .await;
    assert_eq!(h.ask(other, "cancel").await, "Cancelled.");
    assert_eq!(h.status(stuck).await, Some(TaskStatus::Cancelled));
    // The first session's finished work is untouched.
    assert_eq!(h.status(task).await, Some(TaskStatus::Completed));
    h.stop().await;
}

#[tokio::test]
async fn the_spec_is_shown_first_corrected_in_words_and_built_on_yes() {
    let h = Harness::start(|r| r.confirm_spec = true, Duration::from_secs(60)).await;
    let session = h.open().await;
    let task = h.build(session, "make me a todo list API").await;
    eventually(SOON, "the spec waits for the user", || async {
        h.status(task).await == Some(TaskStatus::NeedsHuman)
    })
    .await;
    eventually(SOON, "the session shows the spec and asks", || async {
        !h.said(session, "Here is what I understood")
            .await
            .is_empty()
    })
    .await;
    let question = h.said(session, "Here is what I understood").await;
    assert!(
        question[0].text.contains("Todo list: todos (title)") && question[0].text.contains("yes"),
        "{question:?}"
    );
    // What reads like a new request is a correction while the spec waits.
    let answer = h.ask(session, "add a due date").await;
    assert!(answer.contains("Updating the spec"), "{answer}");
    eventually(SOON, "the corrected spec is shown", || async {
        h.said(session, "Here is what I understood")
            .await
            .iter()
            .any(|line| line.text.contains("add a due date"))
    })
    .await;
    eventually(SOON, "the corrected spec waits for the user", || async {
        h.specs_written(task).await == 2 && h.status(task).await == Some(TaskStatus::NeedsHuman)
    })
    .await;
    assert_eq!(h.store.session_tasks(session).await.unwrap().len(), 1);
    let answer = h.ask(session, "yes").await;
    assert!(answer.contains("Building it"), "{answer}");
    eventually(SOON, "the confirmed task completes", || async {
        h.status(task).await == Some(TaskStatus::Completed)
    })
    .await;
    let steps: Vec<StepKind> = h
        .store
        .steps(task)
        .await
        .unwrap()
        .iter()
        .map(|s| s.step)
        .collect();
    assert_eq!(
        steps,
        [
            StepKind::WriteSpec,
            StepKind::WriteSpec,
            StepKind::Scaffold,
            StepKind::Develop,
            StepKind::Test
        ],
        "written, corrected, then built"
    );
    h.stop().await;
}

#[tokio::test]
async fn errors_are_clear() {
    let h = Harness::start(|_| {}, Duration::from_secs(60)).await;
    let unknown = SessionId::new();
    let failure = h.sessions.say(unknown, "status").await.unwrap_err();
    assert_eq!(failure.class(), ErrorClass::Fatal, "{failure:?}");
    assert!(
        failure.reason.contains(&unknown.to_string()),
        "names the session: {failure:?}"
    );

    let session = h.open().await;
    for empty in ["", "   \n\t"] {
        let failure = h.sessions.say(session, empty).await.unwrap_err();
        assert_eq!(failure.class(), ErrorClass::Fatal, "{failure:?}");
        assert!(failure.reason.contains("empty"), "{failure:?}");
    }
    assert_eq!(h.transcript(session).await, [], "nothing journaled");
    h.stop().await;
}

// ---------------------------------------------------------------------------------------
// The LLM ProductOwner (`product_owner.kind = llm`), through the real client against the
// scripted LLM peer on loopback.
// ---------------------------------------------------------------------------------------

use artel_actors::settings::Settings;
use support::llm_peer::{Fault, LlmPeer, Reply, Turn};

/// The ProductOwner's key at the peer.
const PO_KEY: &str = "sk-po-test-key";
/// The ProductOwner's model at the peer.
const PO_MODEL: &str = "scripted-po";

/// The brain `ARTEL_PRODUCT_OWNER__KIND=llm` configures, on `peer`.
fn llm_brain(peer: &LlmPeer) -> Brain {
    llm_brain_with(peer, &[])
}

/// [`llm_brain`] with more environment (later names win).
fn llm_brain_with(peer: &LlmPeer, more: &[(&str, &str)]) -> Brain {
    let mut env: Vec<(String, String)> = [
        ("ARTEL_PRODUCT_OWNER__KIND", "llm".to_owned()),
        ("ARTEL_LLM__BASE_URL", peer.openai_base()),
        ("ARTEL_LLM__MODEL", PO_MODEL.to_owned()),
        ("ARTEL_LLM__API_KEY", PO_KEY.to_owned()),
        ("ARTEL_LLM__TIMEOUT_SECS", "10".to_owned()),
    ]
    .map(|(k, v)| (k.to_owned(), v))
    .into();
    env.extend(more.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let settings = Settings::load(None, false, env).expect("the settings load");
    Brain::from_settings(&settings).expect("the ProductOwner's brain")
}

/// The `llm_requests` rows of a session: `(role, model, status)`.
async fn po_requests(store: &Store, session: SessionId) -> Vec<(String, String, String)> {
    sqlx::query_as("SELECT role, model, status FROM llm_requests WHERE session_id = $1 ORDER BY id")
        .bind(session.as_uuid())
        .fetch_all(store.pool())
        .await
        .unwrap()
}

/// The tool names a request offered.
fn offered(body: &Value) -> Vec<String> {
    body["tools"]
        .as_array()
        .map(|tools| {
            tools
                .iter()
                .filter_map(|t| t["function"]["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn the_llm_product_owner_turns_a_free_form_line_into_a_build() {
    let line = "A recipe box: recipes with ingredients and steps";
    let description = "A recipe box: recipes (title) with ingredients and steps";
    let peer = LlmPeer::start([
        Reply::text("A recipe box it is.")
            .and_tool_call("call_1", "build", json!({"description": description}))
            .turn(),
        Reply::text("You're welcome. I'll tell you here when it is live.").turn(),
    ])
    .await;
    // The shared `[llm]` points nowhere; the ProductOwner's own section at the peer.
    let base = peer.openai_base();
    let brain = llm_brain_with(
        &peer,
        &[
            ("ARTEL_LLM__BASE_URL", "http://127.0.0.1:9/v1"),
            ("ARTEL_LLM__MODEL", "the-developers-model"),
            ("ARTEL_LLM__PRODUCT_OWNER__BASE_URL", &base),
            ("ARTEL_LLM__PRODUCT_OWNER__MODEL", PO_MODEL),
        ],
    );
    let h = Harness::start_with(|_| {}, Duration::from_secs(60), brain).await;
    let session = h.open().await;

    let answer = h.ask(session, line).await;
    let projects = h.store.projects(h.user).await.unwrap();
    assert_eq!(projects.len(), 1, "{projects:?}");
    assert_eq!(projects[0].description, description, "the model's reading");
    assert!(
        answer.starts_with("A recipe box it is.") && answer.contains(&projects[0].name),
        "the model's words, then what artel did: {answer}"
    );
    let tasks = h.store.session_tasks(session).await.unwrap();
    assert!(
        tasks
            .iter()
            .any(|t| t.kind == TaskKind::Engineering && t.description == description),
        "{tasks:?}"
    );

    let requests = peer.requests();
    assert_eq!(requests.len(), 1);
    let first = &requests[0];
    assert_eq!(first.path, "/v1/chat/completions");
    assert_eq!(
        first.header("authorization"),
        Some(format!("Bearer {PO_KEY}").as_str())
    );
    assert_eq!(first.body["model"], PO_MODEL);
    let tools = offered(&first.body);
    for tool in [
        "build",
        "status",
        "list_projects",
        "deploy",
        "set_secret",
        "cancel",
        "guidance",
        "answer_question",
    ] {
        assert!(tools.iter().any(|t| t == tool), "{tool} in {tools:?}");
    }
    let messages = first.body["messages"].as_array().unwrap();
    assert_eq!(messages.last().unwrap()["content"], line);

    // It talks freely: no tool, its words are the answer, and it saw the conversation.
    let answer = h.ask(session, "thanks!").await;
    assert_eq!(
        answer,
        "You're welcome. I'll tell you here when it is live."
    );
    let second = &peer.requests()[1];
    assert!(second.raw.contains(line) && second.raw.contains("A recipe box it is."));
    assert_eq!(h.store.projects(h.user).await.unwrap().len(), 1);

    let recorded = po_requests(&h.store, session).await;
    assert_eq!(
        recorded,
        vec![
            (
                "product_owner".to_owned(),
                PO_MODEL.to_owned(),
                "ok".to_owned()
            );
            2
        ],
        "every request is accounted"
    );
    let scopes: Vec<(Option<uuid::Uuid>, Option<uuid::Uuid>)> = sqlx::query_as(
        "SELECT project_id, task_id FROM llm_requests WHERE session_id = $1 ORDER BY id",
    )
    .bind(session.as_uuid())
    .fetch_all(h.store.pool())
    .await
    .unwrap();
    assert_eq!(
        scopes,
        [(None, None), (Some(projects[0].id.as_uuid()), None)],
        "the project's once it has one, never a task's (its budget is the Developer's)"
    );
    assert_eq!(peer.remaining(), 0);
    h.stop().await;
}

#[tokio::test]
async fn the_llm_product_owner_never_sees_a_secret_value() {
    const NAME: &str = "WEATHER_API_KEY";
    const VALUE: &str = "sk-live-hunter2-0042";
    let peer = LlmPeer::start([Reply::tool_call(
        "call_1",
        "build",
        json!({"description": "a weather API"}),
    )
    .turn()])
    .await;
    let h = Harness::start_with(
        |r| r.needs_secret = Some(NAME),
        Duration::from_secs(60),
        llm_brain(&peer),
    )
    .await;
    let session = h.open().await;
    h.ask(session, "I'd like something that serves the weather")
        .await;
    let engineering = h
        .store
        .session_tasks(session)
        .await
        .unwrap()
        .into_iter()
        .find(|t| t.kind == TaskKind::Engineering)
        .expect("the model's build started an engineering task");
    let deploy = h.deploy_of(engineering.id).await;
    eventually(SOON, "the deploy waits for the secret", || async {
        h.status(deploy).await == Some(TaskStatus::NeedsHuman)
    })
    .await;

    // The line with the value is acted on locally: no request.
    let answer = h.ask(session, &format!("{NAME}={VALUE}")).await;
    assert!(answer.contains("Resuming the deploy"), "{answer}");
    assert_eq!(peer.requests().len(), 1, "the secret's line was not sent");
    eventually(SOON, "the resumed deploy completes", || async {
        h.status(deploy).await == Some(TaskStatus::Completed)
    })
    .await;

    // A later line that repeats the value in words the detector does not read as a secret
    // is masked; the earlier line is shown by name only.
    let repeat = format!("did it work with {VALUE} then?");
    assert!(
        !intent::parse(&repeat).carries_secret(),
        "not a secret line"
    );
    peer.push(Reply::text("Yes: the deploy went through.").turn());
    let answer = h.ask(session, &repeat).await;
    assert_eq!(answer, "Yes: the deploy went through.");
    let requests = peer.requests();
    assert_eq!(requests.len(), 2);
    assert!(
        requests[1].raw.contains(&format!("{NAME}=<given>")),
        "the model sees the name: {}",
        requests[1].raw
    );
    for request in &requests {
        assert!(
            !request.everything().contains(VALUE),
            "a request carried the value: {}",
            request.raw
        );
    }
    assert_nowhere(
        &h.store,
        VALUE,
        &[
            (
                "po_decisions",
                "SELECT count(*) FROM po_decisions WHERE decision::text LIKE '%' || $1 || '%'",
            ),
            (
                "llm_requests",
                "SELECT count(*) FROM llm_requests WHERE coalesce(error, '') LIKE '%' || $1 || '%'",
            ),
            (
                "session_messages",
                "SELECT count(*) FROM session_messages WHERE role = 'product_owner' \
             AND text LIKE '%' || $1 || '%'",
            ),
        ],
    )
    .await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_reached_project_budget_keeps_the_model_out_and_the_offline_parser_answers() {
    let peer = LlmPeer::start([Reply::tool_call(
        "c1",
        "build",
        json!({ "description": "a todo list API" }),
    )
    .turn()])
    .await;
    // A thousandth of a dollar, at a dollar per million tokens: any call about a project
    // (its prompt plus 8192 output tokens at worst) would cross it.
    let brain = llm_brain_with(
        &peer,
        &[
            ("ARTEL_LLM__PROJECT_BUDGET_USD", "0.001"),
            ("ARTEL_LLM__PRICES__SCRIPTED-PO__INPUT", "1.0"),
            ("ARTEL_LLM__PRICES__SCRIPTED-PO__OUTPUT", "1.0"),
        ],
    );
    let h = Harness::start_with(|_| {}, Duration::from_secs(60), brain).await;
    let session = h.open().await;
    let answer = h.ask(session, "I'd love a little todo list thing").await;
    assert!(answer.contains("On it"), "the model's build: {answer}");

    let answer = h.ask(session, "status").await;
    assert!(
        answer.contains("engineering"),
        "the offline parser answered: {answer}"
    );
    assert!(
        answer.contains("model budget for this project is reached"),
        "and says why: {answer}"
    );
    assert_eq!(peer.requests().len(), 1, "no call over the budget");
}

#[tokio::test]
async fn a_provider_failure_falls_back_to_the_offline_parser_and_says_so_once() {
    let notice = "language model is not answering";
    let peer = LlmPeer::start([
        Turn::Fault(Fault::Hang),
        Turn::Fault(Fault::Raw {
            status: 401,
            headers: vec![],
            body: r#"{"error":{"message":"Incorrect API key provided","type":"invalid_request_error","code":"invalid_api_key"}}"#.into(),
        }),
        Reply::text("Hello again!").turn(),
        Turn::Fault(Fault::ServerError),
    ])
    .await;
    let brain = llm_brain_with(&peer, &[("ARTEL_LLM__PRODUCT_OWNER__TIMEOUT_SECS", "1")]);
    let h = Harness::start_with(|_| {}, Duration::from_secs(60), brain).await;
    let session = h.open().await;

    // The provider hangs: the ProductOwner's own timeout ends the wait.
    let answer = h.ask(session, "make me a todo list API").await;
    assert!(
        answer.contains("On it"),
        "the offline parser built it: {answer}"
    );
    assert!(answer.contains(notice), "the user is told: {answer}");
    assert_eq!(h.store.projects(h.user).await.unwrap().len(), 1);

    let answer = h.ask(session, "my projects").await;
    assert!(answer.contains("Your projects"), "{answer}");
    assert!(!answer.contains(notice), "told once: {answer}");

    assert_eq!(
        h.ask(session, "hi").await,
        "Hello again!",
        "the model is back"
    );

    let answer = h.ask(session, "status").await;
    assert!(answer.contains("engineering"), "{answer}");
    assert!(
        answer.contains(notice),
        "a new outage is told again: {answer}"
    );

    let statuses: Vec<String> = po_requests(&h.store, session)
        .await
        .into_iter()
        .map(|(role, _, status)| {
            assert_eq!(role, "product_owner");
            status
        })
        .collect();
    assert_eq!(statuses, ["timeout", "error", "ok", "error"]);
    let refused: String = sqlx::query_scalar(
        "SELECT error FROM llm_requests WHERE session_id = $1 ORDER BY id OFFSET 1 LIMIT 1",
    )
    .bind(session.as_uuid())
    .fetch_one(h.store.pool())
    .await
    .unwrap();
    assert!(
        refused.contains("ARTEL_LLM__API_KEY") && !refused.contains(PO_KEY),
        "the error names the setting, never the key: {refused}"
    );
    assert_eq!(peer.remaining(), 0);
    h.stop().await;
}

#[tokio::test]
async fn a_decision_is_replayed_after_a_crash_without_asking_the_model_again() {
    let peer = LlmPeer::start([Reply::tool_call(
        "call_1",
        "build",
        json!({"description": "a bookmarks API with tags"}),
    )
    .turn()])
    .await;
    let h = Harness::start_with(|_| {}, Duration::from_secs(60), llm_brain(&peer)).await;
    let session = h.open().await;
    let first = h.ask(session, "somewhere to keep my links, tagged").await;
    assert!(first.contains("On it"), "{first}");
    assert_eq!(peer.requests().len(), 1);

    // The crash: the decision is journaled, its answer is not.
    let (line, reply): (i64, i64) = sqlx::query_as(
        "SELECT reply_to, id FROM session_messages \
         WHERE session_id = $1 AND reply_to IS NOT NULL ORDER BY id LIMIT 1",
    )
    .bind(session.as_uuid())
    .fetch_one(h.store.pool())
    .await
    .unwrap();
    assert!(h.store.po_decision(line).await.unwrap().is_some());
    sqlx::query("DELETE FROM session_messages WHERE id = $1")
        .bind(reply)
        .execute(h.store.pool())
        .await
        .unwrap();
    assert_eq!(h.store.unanswered_lines(session).await.unwrap().len(), 1);

    assert_eq!(h.sessions.wake(session).await.unwrap(), 1);
    assert_eq!(peer.requests().len(), 1, "the model is not asked again");
    assert_eq!(peer.remaining(), 0);
    let again: String = sqlx::query_scalar("SELECT text FROM session_messages WHERE reply_to = $1")
        .bind(line)
        .fetch_one(h.store.pool())
        .await
        .unwrap();
    assert!(
        again.contains("already on it"),
        "the same build, not a second: {again}"
    );
    assert_eq!(h.store.projects(h.user).await.unwrap().len(), 1);
    assert_eq!(po_requests(&h.store, session).await.len(), 1);
    h.stop().await;
}

#[tokio::test]
async fn the_llm_product_owner_answers_the_spec_question_with_its_tools() {
    let peer = LlmPeer::start([Reply::tool_call(
        "call_1",
        "build",
        json!({"description": "a todo list API"}),
    )
    .turn()])
    .await;
    let h = Harness::start_with(
        |r| r.confirm_spec = true,
        Duration::from_secs(60),
        llm_brain(&peer),
    )
    .await;
    let session = h.open().await;
    h.ask(session, "I need to keep track of my todos").await;
    let task = h.store.session_tasks(session).await.unwrap()[0].id;
    eventually(SOON, "the spec waits for the user", || async {
        h.specs_written(task).await == 1 && h.status(task).await == Some(TaskStatus::NeedsHuman)
    })
    .await;

    peer.push(
        Reply::tool_call(
            "call_2",
            "answer_question",
            json!({"answer": "correct", "correction": "add a due date"}),
        )
        .turn(),
    );
    let answer = h
        .ask(session, "looks right, but each todo needs a deadline")
        .await;
    assert!(answer.contains("Updating the spec"), "{answer}");
    let asked = &peer.requests()[1];
    assert!(
        asked.raw.contains("Todo list: todos (title)"),
        "the model is shown the spec that waits: {}",
        asked.raw
    );
    eventually(SOON, "the corrected spec waits for the user", || async {
        h.specs_written(task).await == 2 && h.status(task).await == Some(TaskStatus::NeedsHuman)
    })
    .await;

    peer.push(Reply::tool_call("call_3", "answer_question", json!({"answer": "approve"})).turn());
    let answer = h.ask(session, "perfect, go").await;
    assert!(answer.contains("Building it"), "{answer}");
    eventually(SOON, "the confirmed task completes", || async {
        h.status(task).await == Some(TaskStatus::Completed)
    })
    .await;
    assert_eq!(peer.remaining(), 0);
    h.stop().await;
}
