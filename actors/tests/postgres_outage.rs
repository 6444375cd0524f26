//! Postgres going away in the middle of a task: work pauses, artel reconnects when the
//! database returns, and the task completes with every effect once. Uses a private managed
//! cluster so stopping it touches no other test.

use artel_actors::managed_postgres::ManagedPostgres;
use artel_actors::store::{EventScope, NewTask, Store};
use artel_actors::workflow::{StepCall, StepError, StepRunner, WorkflowPolicy, Workflows};
use artel_messages::{EventBody, EventId, Failure, StepKind, TaskId, TaskKind, TaskStatus};
use artel_supervisors::Supervisor;
use serde_json::{Value, json};
use sqlx::Executor;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

/// Records each step's effect once (keyed) and takes a while on `develop`.
#[derive(Clone)]
struct SlowRunner {
    store: Store,
}

impl StepRunner for SlowRunner {
    async fn run(&self, call: StepCall) -> Result<Value, StepError> {
        sqlx::query("INSERT INTO test_effects (key) VALUES ($1) ON CONFLICT DO NOTHING")
            .bind(&call.effect_key)
            .execute(self.store.pool())
            .await
            .map_err(|e| Failure::retryable(e.to_string()))?;
        if call.step == StepKind::Develop {
            tokio::time::sleep(Duration::from_millis(1500)).await;
        }
        // A spec taken as written (`analyst.confirm = false`).
        Ok(json!({ "step": call.step.as_str(), "confirmed": true }))
    }
}

#[tokio::test]
async fn a_database_outage_pauses_work_and_the_task_completes_after_it() {
    let root = std::env::temp_dir().join(format!("artel-outage-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755)).unwrap();
    let pg = ManagedPostgres::locate(&root).unwrap();
    let url = pg.start().await.unwrap();
    let store = Store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    store
        .pool()
        .execute("CREATE TABLE test_effects (key text PRIMARY KEY)")
        .await
        .unwrap();
    let user = store.create_user("ada", None).await.unwrap();
    let project = store
        .create_project(user.id, "shortener", "a URL shortener")
        .await
        .unwrap();

    let (workflows, subtree) = Workflows::subtree(
        store.clone(),
        SlowRunner {
            store: store.clone(),
        },
        WorkflowPolicy::default(),
    );
    let tree = Supervisor::new("artel")
        .child(subtree.into_child())
        .start()
        .await;
    let task = TaskId::new();
    workflows
        .submit(NewTask {
            id: task,
            project: project.id,
            kind: TaskKind::Engineering,
            description: "make me a URL shortener".into(),
            session: None,
        })
        .await
        .unwrap();

    // Take the database away while `develop` runs, and bring it back.
    tokio::time::sleep(Duration::from_millis(700)).await;
    pg.stop().await.unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    pg.start().await.unwrap();

    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    loop {
        if let Ok(Some(record)) = store.task(task).await
            && record.status == TaskStatus::Completed
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the task never completed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let effects: i64 = sqlx::query_scalar("SELECT count(*) FROM test_effects")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(
        effects, 4,
        "one effect per step (write_spec, scaffold, develop, test), none twice"
    );
    let events = store
        .events_since(EventScope::Task(task), EventId::new(0), 1000)
        .await
        .unwrap();
    assert!(
        events.iter().any(|e| matches!(
            e.body,
            EventBody::StepResumed {
                step: StepKind::Develop,
                ..
            }
        )),
        "develop was interrupted by the outage and resumed: {:?}",
        events.iter().map(|e| e.body.kind()).collect::<Vec<_>>()
    );
    tree.shutdown().await;
    store.close().await;
    pg.stop().await.unwrap();
    let _ = std::fs::remove_dir_all(&root);
}
