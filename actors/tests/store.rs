//! The store against a real Postgres: one fresh database per test, migrated, then dropped.
//!
//! The server is the one `.ci/services.sh` starts (`ARTEL_TEST_DATABASE_URL`, falling back to
//! its default address). No mocks: what these tests prove is what production gets.

use artel_actors::store::{EventScope, MasterKey, NewTask, StoreError, WorkIds};
use artel_messages::event::ChatRole;
use artel_messages::worker_manager::WorkerRuntime;
use artel_messages::{
    Classify, DeploymentStatus, ErrorClass, EventBody, EventId, Failure, NewEvent, ProjectId,
    SecretValue, SessionChannel, SessionId, StepKind, StepStatus, TaskId, TaskKind, TaskStatus,
    UserId, WorkerStatus,
};
use serde_json::json;
use std::collections::BTreeSet;
use std::io::Write;
use std::sync::{Arc, Mutex};

mod support;
use support::TestDb;

impl TestDb {
    /// A user with one project.
    async fn project(&self, user: &str) -> (UserId, ProjectId) {
        let user = self.store.create_user(user, None).await.unwrap();
        let project = self
            .store
            .create_project(user.id, "shortener", "a URL shortener")
            .await
            .unwrap();
        (user.id, project.id)
    }

    /// A queued task on `project`.
    async fn task(&self, project: ProjectId, kind: TaskKind) -> TaskId {
        let new = NewTask {
            id: TaskId::new(),
            project,
            kind,
            description: "make me a URL shortener".into(),
            session: None,
        };
        self.store.create_task(&new).await.unwrap().id
    }

    /// Every row of every table in the database, as text.
    async fn dump(&self) -> Vec<(String, String)> {
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT table_name::text FROM information_schema.tables \
             WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY 1",
        )
        .fetch_all(self.store.pool())
        .await
        .unwrap();
        assert!(tables.len() >= 15, "{tables:?}");
        let mut rows = Vec::new();
        for table in tables {
            let texts: Vec<String> =
                sqlx::query_scalar(&format!("SELECT t::text FROM \"{table}\" t"))
                    .fetch_all(self.store.pool())
                    .await
                    .unwrap();
            rows.extend(texts.into_iter().map(|text| (table.clone(), text)));
        }
        rows
    }
}

#[tokio::test]
async fn migrations_apply_to_an_empty_database_and_rerun_as_a_no_op() {
    let db = TestDb::new().await;
    db.store.migrate().await.expect("second migrate is a no-op");
    db.store.migrate().await.expect("third migrate is a no-op");
    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations WHERE success")
        .fetch_one(db.store.pool())
        .await
        .unwrap();
    // The directory at run time (cargo and nextest set it): a target dir shared between
    // checkouts may hold this binary compiled from another one, with another path baked in.
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into());
    let files = std::fs::read_dir(manifest_dir.join("../migrations"))
        .unwrap()
        .filter(|entry| {
            entry
                .as_ref()
                .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".sql"))
        })
        .count();
    assert_eq!(applied, i64::try_from(files).unwrap());
    let tables: BTreeSet<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public'",
    )
    .fetch_all(db.store.pool())
    .await
    .unwrap()
    .into_iter()
    .collect();
    for table in [
        "users",
        "api_keys",
        "projects",
        "sessions",
        "session_messages",
        "tasks",
        "task_steps",
        "events",
        "workers",
        "servers",
        "deployments",
        "secrets",
        "llm_requests",
        "allocations",
    ] {
        assert!(tables.contains(table), "missing table {table}: {tables:?}");
    }
}

/// The quoted literals of the single-column CHECK constraints on `table.column`.
async fn check_literals(db: &TestDb, table: &str, column: &str) -> BTreeSet<String> {
    let defs: Vec<String> = sqlx::query_scalar(
        "SELECT pg_get_constraintdef(c.oid) FROM pg_constraint c \
         JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1] \
         WHERE c.conrelid = $1::regclass AND c.contype = 'c' \
           AND array_length(c.conkey, 1) = 1 AND a.attname = $2",
    )
    .bind(table)
    .bind(column)
    .fetch_all(db.store.pool())
    .await
    .unwrap();
    assert_eq!(defs.len(), 1, "{table}.{column}: {defs:?}");
    defs[0]
        .split('\'')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn status_checks_list_exactly_the_catalog_enum_names() {
    let db = TestDb::new().await;
    fn names<T: Copy>(all: &[T], as_str: fn(T) -> &'static str) -> BTreeSet<String> {
        all.iter().map(|v| as_str(*v).to_owned()).collect()
    }
    let errors: BTreeSet<String> = [ErrorClass::Retryable, ErrorClass::Fatal]
        .iter()
        .map(|c| c.as_str().to_owned())
        .collect();
    let cases = [
        (
            "tasks",
            "status",
            names(TaskStatus::ALL, TaskStatus::as_str),
        ),
        ("tasks", "kind", names(TaskKind::ALL, TaskKind::as_str)),
        ("tasks", "error_class", errors.clone()),
        (
            "task_steps",
            "status",
            names(StepStatus::ALL, StepStatus::as_str),
        ),
        ("task_steps", "step", names(StepKind::ALL, StepKind::as_str)),
        ("task_steps", "error_class", errors),
        (
            "workers",
            "status",
            names(WorkerStatus::ALL, WorkerStatus::as_str),
        ),
        (
            "workers",
            "runtime",
            names(WorkerRuntime::ALL, WorkerRuntime::as_str),
        ),
        (
            "deployments",
            "status",
            names(DeploymentStatus::ALL, DeploymentStatus::as_str),
        ),
        (
            "session_messages",
            "role",
            names(ChatRole::ALL, ChatRole::as_str),
        ),
    ];
    for (table, column, expected) in cases {
        assert_eq!(
            check_literals(&db, table, column).await,
            expected,
            "{table}.{column}"
        );
    }
}

#[tokio::test]
async fn begin_step_with_the_same_key_returns_the_same_row() {
    let db = TestDb::new().await;
    let (_, project) = db.project("ada").await;
    let task = db.task(project, TaskKind::Engineering).await;
    let input = json!({"template": "fastapi"});

    let first = db
        .store
        .begin_step(task, StepKind::Scaffold, "scaffold-1", &input)
        .await
        .unwrap();
    assert_eq!(first.status, StepStatus::Running);
    assert_eq!(first.attempt, 1);
    assert_eq!(first.input, input);
    assert!(first.started_at.is_some() && first.finished_at.is_none());

    let again = db
        .store
        .begin_step(
            task,
            StepKind::Scaffold,
            "scaffold-1",
            &json!({"ignored": true}),
        )
        .await
        .unwrap();
    assert_eq!(again, first, "the journaled row, untouched");

    // Concurrent duplicates (a redelivered message racing the original) converge too.
    let (a, b) = tokio::join!(
        db.store
            .begin_step(task, StepKind::Develop, "develop-1", &input),
        db.store
            .begin_step(task, StepKind::Develop, "develop-1", &input),
    );
    assert_eq!(a.unwrap(), b.unwrap());

    assert_eq!(
        db.store.steps(task).await.unwrap().len(),
        2,
        "no duplicates"
    );

    // A new key is a new attempt of the same step.
    let second = db
        .store
        .begin_step(task, StepKind::Scaffold, "scaffold-2", &input)
        .await
        .unwrap();
    assert_eq!(second.attempt, 2);
    assert_ne!(second.id, first.id);

    // A key names one piece of work: reusing it elsewhere is refused, Fatal.
    let err = db
        .store
        .begin_step(task, StepKind::Test, "scaffold-1", &input)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err}");
    assert_eq!(err.class(), ErrorClass::Fatal);

    // Steps of a task that does not exist: not found, Fatal.
    let err = db
        .store
        .begin_step(TaskId::new(), StepKind::Test, "orphan", &input)
        .await
        .unwrap_err();
    assert!(err.is_not_found(), "{err}");
    assert_eq!(err.class(), ErrorClass::Fatal);

    // Many concurrent begins, same key and new keys mixed: one row per key, attempts 1..=n.
    let mut begins = tokio::task::JoinSet::new();
    for n in 0..16 {
        let store = db.store.clone();
        let input = input.clone();
        begins.spawn(async move {
            let key = format!("test-{}", n % 4);
            store.begin_step(task, StepKind::Test, &key, &input).await
        });
    }
    while let Some(done) = begins.join_next().await {
        done.unwrap().unwrap();
    }
    let mut attempts: Vec<u32> = db
        .store
        .steps(task)
        .await
        .unwrap()
        .iter()
        .filter(|s| s.step == StepKind::Test)
        .map(|s| s.attempt)
        .collect();
    attempts.sort_unstable();
    assert_eq!(attempts, [1, 2, 3, 4]);
}

#[tokio::test]
async fn finished_steps_are_reported_finished_and_never_reopened() {
    let db = TestDb::new().await;
    let (_, project) = db.project("ada").await;
    let task = db.task(project, TaskKind::Engineering).await;
    let store = &db.store;

    store
        .begin_step(task, StepKind::Scaffold, "k-scaffold", &json!({}))
        .await
        .unwrap();
    let output = json!({"repo": "file:///srv/git/shortener.git"});
    let done = store.finish_step("k-scaffold", &output).await.unwrap();
    assert_eq!(done.status, StepStatus::Succeeded);
    assert!(done.is_finished() && done.finished_at.is_some());
    assert_eq!(done.output.as_ref(), Some(&output));

    // After a "crash", the workflow asks again and learns the step is done, with its output.
    let resumed = store
        .begin_step(task, StepKind::Scaffold, "k-scaffold", &json!({}))
        .await
        .unwrap();
    assert_eq!(resumed, done);

    // Finishing twice keeps the first output; failing a succeeded step is refused.
    let twice = store
        .finish_step("k-scaffold", &json!({"other": 1}))
        .await
        .unwrap();
    assert_eq!(twice.output.as_ref(), Some(&output));
    let err = store
        .fail_step("k-scaffold", &Failure::fatal("late"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::InvalidTransition { .. }), "{err}");
    assert_eq!(err.class(), ErrorClass::Fatal);

    // A failed attempt records its classified failure.
    store
        .begin_step(
            task,
            StepKind::Develop,
            "k-develop",
            &json!({"prompt": "add /health"}),
        )
        .await
        .unwrap();
    let failed = store
        .fail_step("k-develop", &Failure::retryable("agent timed out"))
        .await
        .unwrap();
    assert_eq!(failed.status, StepStatus::Failed);
    assert_eq!(failed.failure, Some(Failure::retryable("agent timed out")));
    assert!(failed.output.is_none() && failed.is_finished());
    assert!(store.finish_step("k-develop", &json!({})).await.is_err());

    // An interrupted step stays running (it will be run again).
    store
        .begin_step(task, StepKind::Test, "k-test", &json!({}))
        .await
        .unwrap();

    let steps = store.steps(task).await.unwrap();
    let summary: Vec<_> = steps.iter().map(|s| (s.step, s.status)).collect();
    assert_eq!(
        summary,
        [
            (StepKind::Scaffold, StepStatus::Succeeded),
            (StepKind::Develop, StepStatus::Failed),
            (StepKind::Test, StepStatus::Running),
        ]
    );
    let dto = steps[1].to_dto();
    assert_eq!(
        (dto.task, dto.kind, dto.attempt),
        (task, StepKind::Develop, 1)
    );
    let missing = store
        .finish_step("no-such-key", &json!({}))
        .await
        .unwrap_err();
    assert!(missing.is_not_found() && missing.class() == ErrorClass::Fatal);
}

#[tokio::test]
async fn unfinished_tasks_are_the_queued_and_running_ones() {
    let db = TestDb::new().await;
    let (_, project) = db.project("ada").await;
    let store = &db.store;

    let queued = db.task(project, TaskKind::Engineering).await;
    let running = db.task(project, TaskKind::Deploy).await;
    let completed = db.task(project, TaskKind::Engineering).await;
    let failed = db.task(project, TaskKind::Engineering).await;
    let waiting = db.task(project, TaskKind::Deploy).await;

    for task in [running, completed, failed, waiting] {
        let record = store
            .set_task_status(task, TaskStatus::Running, None)
            .await
            .unwrap();
        assert_eq!(record.attempts, 1);
    }
    store
        .set_task_status(completed, TaskStatus::Completed, None)
        .await
        .unwrap();
    let failure = Failure::fatal("tests keep failing");
    let record = store
        .set_task_status(failed, TaskStatus::Failed, Some(&failure))
        .await
        .unwrap();
    assert_eq!(record.to_dto().failure, Some(failure));
    store
        .set_task_status(waiting, TaskStatus::NeedsHuman, None)
        .await
        .unwrap();

    let unfinished: Vec<_> = store
        .unfinished_tasks()
        .await
        .unwrap()
        .into_iter()
        .map(|t| (t.id, t.status))
        .collect();
    assert_eq!(
        unfinished,
        [(queued, TaskStatus::Queued), (running, TaskStatus::Running)]
    );

    // The catalog's transition rules hold; repeating a change is a no-op.
    let err = store
        .set_task_status(completed, TaskStatus::Running, None)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::InvalidTransition { .. }), "{err}");
    assert_eq!(err.class(), ErrorClass::Fatal);
    let same = store
        .set_task_status(running, TaskStatus::Running, None)
        .await
        .unwrap();
    assert_eq!(same.attempts, 1);

    // Retry with guidance: failed → queued, failure cleared, guidance kept; the next run
    // counts a second attempt.
    let retried = store.retry_task(failed, "use SQLite").await.unwrap();
    assert_eq!(retried.status, TaskStatus::Queued);
    assert_eq!(retried.guidance.as_deref(), Some("use SQLite"));
    assert!(retried.failure.is_none());
    let rerun = store
        .set_task_status(failed, TaskStatus::Running, None)
        .await
        .unwrap();
    assert_eq!(rerun.attempts, 2);
    assert_eq!(store.unfinished_tasks().await.unwrap().len(), 3);

    // Creating a task twice is recognized; its id cannot be reused for other work.
    let new = NewTask {
        id: queued,
        project,
        kind: TaskKind::Engineering,
        description: "again".into(),
        session: None,
    };
    assert_eq!(store.create_task(&new).await.unwrap().id, queued);
    let err = store
        .create_task(&NewTask {
            kind: TaskKind::Deploy,
            ..new
        })
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err}");
}

fn started(step: StepKind, attempt: u32) -> EventBody {
    EventBody::StepStarted { step, attempt }
}

#[tokio::test]
async fn events_get_increasing_ids_and_page_in_order() {
    let db = TestDb::new().await;
    let (_, project) = db.project("ada").await;
    let (_, other_project) = db.project("bob").await;
    let task = db.task(project, TaskKind::Engineering).await;
    let other_task = db.task(other_project, TaskKind::Engineering).await;
    let store = &db.store;

    let mut mine = Vec::new();
    let mut last = EventId::new(0);
    for attempt in 1..=25 {
        let event = store
            .append_event(
                NewEvent::new(started(StepKind::Develop, attempt))
                    .project(project)
                    .task(task),
            )
            .await
            .unwrap();
        assert!(event.id > last, "ids increase");
        last = event.id;
        mine.push(event);
        store
            .append_event(
                NewEvent::new(started(StepKind::Test, attempt))
                    .project(other_project)
                    .task(other_task),
            )
            .await
            .unwrap();
    }
    let global = store
        .append_event(NewEvent::new(EventBody::ActorRestarted {
            node: "artel/bus".into(),
            restarts: 1,
            reason: "boom".into(),
        }))
        .await
        .unwrap();

    // Page through the project's events 10 at a time.
    let mut read = Vec::new();
    let mut after = EventId::new(0);
    loop {
        let page = store
            .events_since(EventScope::Project(project), after, 10)
            .await
            .unwrap();
        assert!(page.len() <= 10);
        let Some(last) = page.last() else { break };
        after = last.id;
        read.extend(page);
    }
    assert_eq!(
        read, mine,
        "every event of the project, in order, round-tripped exactly"
    );

    let by_task = store
        .events_since(EventScope::Task(task), mine[19].id, 100)
        .await
        .unwrap();
    assert_eq!(by_task, mine[20..]);

    let all = store
        .events_since(EventScope::All, EventId::new(0), 1000)
        .await
        .unwrap();
    assert_eq!(all.len(), 51);
    assert!(all.windows(2).all(|w| w[0].id < w[1].id));
    assert_eq!(all.last(), Some(&global));
    assert!(global.project.is_none() && global.task.is_none());

    // Concurrent appends: each gets its own id and readers see them all, in order.
    let mut appends = tokio::task::JoinSet::new();
    for attempt in 1..=20 {
        let store = store.clone();
        appends.spawn(async move {
            store
                .append_event(NewEvent::new(started(StepKind::Deploy, attempt)).project(project))
                .await
        });
    }
    let mut ids = BTreeSet::new();
    while let Some(done) = appends.join_next().await {
        ids.insert(done.unwrap().unwrap().id);
    }
    assert_eq!(ids.len(), 20);
    let tail = store
        .events_since(EventScope::Project(project), mine[24].id, 100)
        .await
        .unwrap();
    assert_eq!(tail.iter().map(|e| e.id).collect::<BTreeSet<_>>(), ids);
    assert!(tail.windows(2).all(|w| w[0].id < w[1].id));

    // The journal is append-only.
    let err = sqlx::query("UPDATE events SET kind = 'x'")
        .execute(store.pool())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("append-only"), "{err}");
}

#[tokio::test]
async fn projects_are_scoped_by_owner() {
    let db = TestDb::new().await;
    let store = &db.store;
    let alice = store
        .create_user("alice", Some("alice@example.org"))
        .await
        .unwrap();
    let bob = store.create_user("bob", None).await.unwrap();
    assert_eq!(store.user(alice.id).await.unwrap(), Some(alice.clone()));

    let project = store
        .create_project(alice.id, "blog", "a blog")
        .await
        .unwrap();
    assert_eq!(project.owner, alice.id);
    assert_eq!(
        store.project(alice.id, project.id).await.unwrap(),
        Some(project.clone())
    );
    assert_eq!(store.project(bob.id, project.id).await.unwrap(), None);
    assert_eq!(
        store.project(alice.id, ProjectId::new()).await.unwrap(),
        None
    );
    assert_eq!(store.project_by_name(bob.id, "blog").await.unwrap(), None);
    assert_eq!(
        store.project_by_name(alice.id, "blog").await.unwrap(),
        Some(project.clone())
    );
    assert_eq!(store.projects(alice.id).await.unwrap(), [project]);
    assert!(store.projects(bob.id).await.unwrap().is_empty());

    // Names are unique per owner, not globally.
    let err = store
        .create_project(alice.id, "blog", "again")
        .await
        .unwrap_err();
    assert_eq!(err.constraint(), Some("projects_owner_name_key"), "{err}");
    assert_eq!(err.class(), ErrorClass::Fatal);
    store.create_project(bob.id, "blog", "bob's").await.unwrap();
}

#[tokio::test]
async fn owned_work_answers_which_ids_are_the_users_in_one_go() {
    let db = TestDb::new().await;
    let store = &db.store;
    let (alice, alices_project) = db.project("alice").await;
    let (bob, bobs_project) = db.project("bob").await;
    let alices_task = db.task(alices_project, TaskKind::Engineering).await;
    let bobs_task = db.task(bobs_project, TaskKind::Engineering).await;
    let alices_session = store
        .create_session(alice, SessionChannel::Cli)
        .await
        .unwrap()
        .id;
    let bobs_session = store
        .create_session(bob, SessionChannel::Dashboard)
        .await
        .unwrap()
        .id;
    let asked = WorkIds {
        sessions: [alices_session, bobs_session, SessionId::new()].into(),
        projects: [alices_project, bobs_project, ProjectId::new()].into(),
        tasks: [alices_task, bobs_task, TaskId::new()].into(),
    };
    let alices = WorkIds {
        sessions: [alices_session].into(),
        projects: [alices_project].into(),
        tasks: [alices_task].into(),
    };
    assert_eq!(store.owned_work(alice, &asked).await.unwrap(), alices);
    let bobs = store.owned_work(bob, &asked).await.unwrap();
    assert_eq!(bobs.sessions, [bobs_session].into());
    assert_eq!(bobs.projects, [bobs_project].into());
    assert_eq!(bobs.tasks, [bobs_task].into());
    let nobody = store.create_user("carol", None).await.unwrap().id;
    assert!(store.owned_work(nobody, &asked).await.unwrap().is_empty());
    assert!(
        store
            .owned_work(alice, &WorkIds::default())
            .await
            .unwrap()
            .is_empty()
    );
}

/// A `MakeWriter` that appends everything to a shared buffer.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

const MARKER: &str = "zz-ARTEL-PLAINTEXT-MARKER-5b1e9c";

#[tokio::test]
async fn a_secret_value_is_nowhere_in_the_database_or_the_logs() {
    let logs = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(logs.clone())
        .with_max_level(tracing::Level::TRACE)
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::FULL)
        .with_ansi(false)
        .finish();
    // Global, not `set_default`: tracing caches each callsite's interest process-wide, and
    // with a single (thread-local) subscriber registered it computes that interest on
    // whichever thread reaches the callsite first — often another test's, with no subscriber,
    // so sqlx's statement events would be cached as "never" and the checks below could pass
    // vacuously. Globally, this also checks the logs of every other test in this binary.
    tracing::subscriber::set_global_default(subscriber).expect("only this test sets one");
    tracing::callsite::rebuild_interest_cache();

    let db = TestDb::new().await;
    let (_, project) = db.project("ada").await;
    let key = MasterKey::generate();
    let store = db.store.clone().with_master_key(key.clone());
    let value = SecretValue::new(MARKER);

    store
        .set_secret(project, "API_TOKEN", &value)
        .await
        .unwrap();
    store
        .set_secret(project, "OTHER", &SecretValue::new("x"))
        .await
        .unwrap();
    assert_eq!(
        store.secret_names(project).await.unwrap(),
        ["API_TOKEN", "OTHER"]
    );
    assert_eq!(
        store
            .reveal_secret(project, "API_TOKEN")
            .await
            .unwrap()
            .expose(),
        MARKER
    );
    tracing::info!(store = ?store, key = ?key, value = ?value, "debug forms");

    // Not in any row of any table, neither as text nor as the hex a bytea column prints.
    let marker_hex: String = MARKER.bytes().map(|b| format!("{b:02x}")).collect();
    let rows = db.dump().await;
    assert!(rows.iter().any(|(table, _)| table == "secrets"));
    for (table, row) in &rows {
        assert!(!row.contains(MARKER), "plain value in {table}: {row}");
        assert!(
            !row.to_lowercase().contains(&marker_hex),
            "plain value as bytes in {table}"
        );
    }

    // Not in the logs — which did capture the spans and sqlx's statement log, so the check
    // is not vacuous.
    let text = logs.text();
    assert!(text.contains("set_secret"), "spans are captured:\n{text}");
    assert!(
        text.contains("reveal_secret"),
        "spans are captured:\n{text}"
    );
    assert!(
        text.contains("INSERT INTO secrets"),
        "sqlx statements are captured:\n{text}"
    );
    assert!(
        text.contains("MasterKey(***)") && text.contains("value=***"),
        "{text}"
    );
    assert!(
        !text.contains(MARKER),
        "the plain value leaked into the logs"
    );
    assert!(!text.to_lowercase().contains(&marker_hex));
}

#[tokio::test]
async fn the_wrong_master_key_cannot_decrypt_and_is_fatal() {
    let db = TestDb::new().await;
    let (_, project) = db.project("ada").await;
    let right = db.store.clone().with_master_key(MasterKey::generate());
    right
        .set_secret(project, "API_TOKEN", &SecretValue::new("v1"))
        .await
        .unwrap();

    let wrong = db.store.clone().with_master_key(MasterKey::generate());
    let err = wrong.reveal_secret(project, "API_TOKEN").await.unwrap_err();
    assert!(matches!(err, StoreError::WrongMasterKey { .. }), "{err}");
    assert_eq!(err.class(), ErrorClass::Fatal);

    // Even with a matching key id forged in the row, the ciphertext does not open.
    let forged_key = MasterKey::generate();
    sqlx::query("UPDATE secrets SET key_id = $1")
        .bind(forged_key.id())
        .execute(db.store.pool())
        .await
        .unwrap();
    let forged = db.store.clone().with_master_key(forged_key);
    let err = forged
        .reveal_secret(project, "API_TOKEN")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Decrypt { .. }), "{err}");
    assert_eq!(err.class(), ErrorClass::Fatal);

    // A ciphertext moved to another name (the associated data) does not open either.
    let right_id = right.reveal_secret(project, "API_TOKEN").await.unwrap_err();
    assert!(matches!(right_id, StoreError::WrongMasterKey { .. }));
    sqlx::query("DELETE FROM secrets")
        .execute(db.store.pool())
        .await
        .unwrap();
    right
        .set_secret(project, "A", &SecretValue::new("v2"))
        .await
        .unwrap();
    sqlx::query("UPDATE secrets SET name = 'B' WHERE name = 'A'")
        .execute(db.store.pool())
        .await
        .unwrap();
    let err = right.reveal_secret(project, "B").await.unwrap_err();
    assert!(matches!(err, StoreError::Decrypt { .. }), "{err}");

    // Overwriting re-encrypts with a fresh nonce; no key at all is a Fatal error too.
    right
        .set_secret(project, "B", &SecretValue::new("v3"))
        .await
        .unwrap();
    assert_eq!(
        right.reveal_secret(project, "B").await.unwrap().expose(),
        "v3"
    );
    assert!(right.delete_secret(project, "B").await.unwrap());
    assert!(
        right
            .reveal_secret(project, "B")
            .await
            .unwrap_err()
            .is_not_found()
    );
    let err = db.store.reveal_secret(project, "B").await.unwrap_err();
    assert!(matches!(err, StoreError::NoMasterKey));
    assert_eq!(err.class(), ErrorClass::Fatal);
    let err = right
        .set_secret(project, "not a name", &SecretValue::new("v"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid { .. }), "{err}");
}
