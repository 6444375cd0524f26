//! The worker-manager's command stream against real Redis and Postgres: a command redelivered
//! (its acknowledgement lost) is answered from the record of its first handling, not done
//! twice.

mod support;

use artel_actors::worker_manager::process::{ProcessConfig, ProcessRuntime, RunAs};
use artel_actors::worker_manager::remote::{RemoteWorkerManager, serve_commands};
use artel_actors::worker_manager::{WorkerManager, WorkerManagerActor, WorkerManagerConfig};
use artel_messages::streams::{WORKER_COMMANDS, WORKER_REPLIES};
use artel_messages::worker_manager::{
    SpawnWorker, WorkerCommand, WorkerLimits, WorkerReply, WorkerRuntime, WorkerSpec,
};
use artel_messages::{Envelope, TaskKind};
use artel_supervisors::stream_mailbox::ENVELOPE_FIELD;
use artel_supervisors::stream_mailbox::GroupStart;
use artel_supervisors::{StreamClient, StreamConfig, Supervisor};
use std::collections::BTreeMap;
use std::time::Duration;
use support::TestDb;

#[tokio::test]
async fn a_redelivered_spawn_is_answered_from_its_record_not_done_twice() {
    let redis = std::env::var("ARTEL_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:63790".to_owned());
    let db = TestDb::new().await;
    let (project, task) = db
        .project_with_task("shortener", TaskKind::Engineering)
        .await;

    // The streams are shared by every test on this Redis: only one consumer group per role
    // serves them, so each test serves from its own group by running its own instance name
    // and reading replies in its own group.
    let root = std::env::temp_dir().join(format!("artel-remote-wm-{}", uuid::Uuid::new_v4()));
    let runtime = ProcessRuntime::new(ProcessConfig {
        run_as: RunAs::Invoker,
        ..ProcessConfig::new(&root)
    })
    .unwrap();
    let manager = WorkerManager::new(db.store.clone(), runtime, WorkerManagerConfig::default());
    let commands = StreamClient::new(&redis, StreamConfig::default()).unwrap();
    let replies = StreamClient::new(
        &redis,
        StreamConfig {
            group_start: GroupStart::NewEntries,
            ..StreamConfig::default()
        },
    )
    .unwrap();
    let instance = format!("test-{}", uuid::Uuid::new_v4().simple());
    let (client, router) = RemoteWorkerManager::new(&commands, &replies, &instance);
    client.prepare().await.unwrap();
    let (workers, worker_manager) = WorkerManagerActor::child_spec("worker-manager", manager);
    let tree = Supervisor::new("test")
        .child(worker_manager)
        .child(router)
        .child(serve_commands(
            &commands,
            workers,
            db.store.clone(),
            &instance,
        ))
        .start()
        .await;

    // Send the same envelope twice, as a redelivery would present it.
    let spawn = Envelope::new(WorkerCommand::Spawn(SpawnWorker {
        spec: WorkerSpec {
            project,
            task,
            runtime: WorkerRuntime::Process,
            image: None,
            env: BTreeMap::new(),
            secrets: Vec::new(),
            network: false,
            limits: WorkerLimits {
                cpu_seconds: 5,
                memory_bytes: 256 << 20,
                pids: 32,
                file_size_bytes: 1 << 20,
                wall_clock_timeout_secs: 5,
            },
        },
    }));
    let producer = commands.producer::<WorkerCommand>(WORKER_COMMANDS);
    producer.send(&spawn).await.unwrap();
    producer.send(&spawn).await.unwrap();

    // Both deliveries are answered, with the same worker: the second from the record.
    let redis_client = redis::Client::open(redis.as_str()).unwrap();
    let mut conn = redis_client
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let answers = loop {
        let recent: redis::streams::StreamRangeReply = redis::cmd("XREVRANGE")
            .arg(WORKER_REPLIES)
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(500)
            .query_async(&mut conn)
            .await
            .unwrap();
        let answers: Vec<WorkerReply> = recent
            .ids
            .iter()
            .filter_map(|entry| {
                let bytes: Vec<u8> =
                    redis::from_redis_value_ref(entry.map.get(ENVELOPE_FIELD)?).ok()?;
                let reply = Envelope::<WorkerReply>::decode(&bytes).ok()?;
                (reply.causation_id == Some(spawn.message_id)).then_some(reply.payload)
            })
            .collect();
        if answers.len() == 2 {
            break answers;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "both deliveries answered"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(answers[0], answers[1], "the redelivery got the first reply");
    assert!(
        matches!(answers[0], WorkerReply::Worker(_)),
        "{:?}",
        answers[0]
    );
    let workers: i64 = sqlx::query_scalar("SELECT count(*) FROM workers")
        .fetch_one(db.store.pool())
        .await
        .unwrap();
    assert_eq!(workers, 1, "one worker, however often the command arrived");

    // A fresh command through the client still works end to end.
    let reply = client
        .call(
            WorkerCommand::Spawn(SpawnWorker {
                spec: match &spawn.payload {
                    WorkerCommand::Spawn(s) => s.spec.clone(),
                    _ => unreachable!("built above"),
                },
            }),
            Duration::from_secs(20),
        )
        .await
        .unwrap();
    assert!(matches!(reply, WorkerReply::Worker(_)), "{reply:?}");
    tree.shutdown().await;
    let _ = std::fs::remove_dir_all(root);
}
