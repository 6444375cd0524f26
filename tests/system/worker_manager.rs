//! `artel worker-manager` as its own process: commands and replies cross the process
//! boundary on the worker-manager streams, and commands sent while it is down are served when
//! it returns.

use crate::support::{OwnRedis, data_dir, free_port, fresh_database};
use artel_actors::store::{NewTask, Store};
use artel_actors::worker_manager::remote::RemoteWorkerManager;
use artel_messages::worker_manager::{
    RunCommand, SpawnWorker, StopWorker, WorkerCommand, WorkerLimits, WorkerReply, WorkerRuntime,
    WorkerSpec,
};
use artel_messages::{ProjectId, TaskId, TaskKind};
use artel_supervisors::stream_mailbox::GroupStart;
use artel_supervisors::{StreamClient, StreamConfig, Supervisor};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Spawns a worker through the remote client and answers it.
async fn spawn_worker(
    client: &RemoteWorkerManager,
    project: ProjectId,
    task: TaskId,
) -> artel_messages::dto::WorkerDto {
    let spawn = WorkerCommand::Spawn(SpawnWorker {
        spec: spec(project, task),
    });
    match client.call(spawn, Duration::from_secs(30)).await.unwrap() {
        WorkerReply::Worker(worker) => worker,
        other => panic!("spawn answered {other:?}"),
    }
}

/// Live processes whose real uid is `uid`.
fn processes_of(uid: u32) -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|entry| {
            let status = std::fs::read_to_string(entry.path().join("status")).unwrap_or_default();
            let zombie = status
                .lines()
                .any(|l| l.starts_with("State:") && l.contains('Z'));
            !zombie
                && status
                    .lines()
                    .find_map(|l| l.strip_prefix("Uid:"))
                    .and_then(|ids| ids.split_whitespace().next())
                    .and_then(|id| id.parse::<u32>().ok())
                    == Some(uid)
        })
        .count()
}

fn worker_manager(database: &str, redis: &str, data: &str) -> Process {
    let mut child = Command::new(env!("CARGO_BIN_EXE_artel"))
        .args(["worker-manager", "--redis-url", redis])
        .env("DATABASE_URL", database)
        .env("ARTEL_DATA_DIR", data)
        .env("ARTEL_INSTANCE", "wm-test")
        .env("ARTEL_LOG", "info")
        .env("ARTEL_WORKERS__RUNTIME", "process")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("artel runs");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("a first line");
    assert_eq!(line.trim(), "artel worker-manager is serving", "{line:?}");
    Process(child)
}

fn spec(project: ProjectId, task: TaskId) -> WorkerSpec {
    WorkerSpec {
        project,
        task,
        runtime: WorkerRuntime::Process,
        image: None,
        env: BTreeMap::from([("GREETING".to_owned(), "hello across processes".to_owned())]),
        secrets: Vec::new(),
        network: false,
        limits: WorkerLimits {
            cpu_seconds: 10,
            memory_bytes: 512 << 20,
            pids: 64,
            file_size_bytes: 16 << 20,
            wall_clock_timeout_secs: 20,
        },
    }
}

#[tokio::test]
async fn artel_worker_manager_serves_commands_over_redis_and_catches_up_after_a_crash() {
    let port = free_port();
    let _redis = OwnRedis::start(port);
    let redis = format!("redis://127.0.0.1:{port}");
    let database = fresh_database().await;
    let dir = data_dir("wm");
    let data = dir.to_str().unwrap().to_owned();
    let first = worker_manager(&database, &redis, &data);

    // The test plays `artel up`'s side: a project and task, and the remote client.
    let store = Store::connect(&database).await.unwrap();
    let user = store.create_user("ada", None).await.unwrap();
    let project = store
        .create_project(user.id, "shortener", "a URL shortener")
        .await
        .unwrap()
        .id;
    let task = store
        .create_task(&NewTask {
            id: TaskId::new(),
            project,
            kind: TaskKind::Engineering,
            description: "make me a URL shortener".into(),
            session: None,
        })
        .await
        .unwrap()
        .id;
    let commands = StreamClient::new(&redis, StreamConfig::default()).unwrap();
    let replies = StreamClient::new(
        &redis,
        StreamConfig {
            group_start: GroupStart::NewEntries,
            ..StreamConfig::default()
        },
    )
    .unwrap();
    let (client, router) = RemoteWorkerManager::new(&commands, &replies, "up-test");
    client.prepare().await.unwrap();
    let tree = Supervisor::new("test").child(router).start().await;
    let wait = Duration::from_secs(30);

    let worker = spawn_worker(&client, project, task).await;
    let run = RunCommand {
        worker: worker.id,
        program: "sh".into(),
        args: vec!["-c".into(), "echo \"$GREETING\"".into()],
        cwd: None,
    };
    let WorkerReply::Finished(outcome) = client.call(WorkerCommand::Run(run), wait).await.unwrap()
    else {
        panic!("run answered something else");
    };
    assert_eq!(outcome.exit_code, Some(0));
    assert!(
        outcome.stdout_tail.contains("hello across processes"),
        "{outcome:?}"
    );
    client
        .call(
            WorkerCommand::Stop(StopWorker {
                worker: worker.id,
                reason: "done".into(),
            }),
            wait,
        )
        .await
        .unwrap();

    // A long command in a fresh worker, then kill -9 the worker-manager in the middle of it:
    // its processes are orphans now.
    let busy = spawn_worker(&client, project, task).await;
    let long = tokio::spawn({
        let client = client.clone();
        let run = RunCommand {
            worker: busy.id,
            program: "sh".into(),
            args: vec!["-c".into(), "sleep 600 & sleep 600".into()],
            cwd: None,
        };
        async move {
            client
                .call(WorkerCommand::Run(run), Duration::from_secs(60))
                .await
        }
    });
    let uid: i64 = loop {
        let row: Option<(Option<i64>, Option<String>)> =
            sqlx::query_as("SELECT run_as_uid, handle FROM workers WHERE id = $1")
                .bind(busy.id.as_uuid())
                .fetch_optional(store.pool())
                .await
                .unwrap();
        if let Some((Some(uid), Some(_running))) = row {
            break uid;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let uid = u32::try_from(uid).unwrap();
    drop(first);
    assert!(
        processes_of(uid) >= 2,
        "the sleeps outlive the killed worker-manager (orphans)"
    );

    // A command sent while nobody serves waits in the stream and is served by the next
    // worker-manager, which first reaps the orphans of its previous run.
    let pending = tokio::spawn({
        let client = client.clone();
        async move {
            client
                .call(
                    WorkerCommand::Spawn(SpawnWorker {
                        spec: spec(project, task),
                    }),
                    wait,
                )
                .await
        }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!pending.is_finished(), "nobody is serving yet");
    let _second = worker_manager(&database, &redis, &data);
    assert_eq!(
        processes_of(uid),
        0,
        "the orphans were reaped before serving"
    );
    let (status, reason): (String, Option<String>) =
        sqlx::query_as("SELECT status, stop_reason FROM workers WHERE id = $1")
            .bind(busy.id.as_uuid())
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert_eq!(status, "stopped");
    assert!(
        reason.unwrap().starts_with("orphaned"),
        "the reason is recorded"
    );
    match pending.await.unwrap().unwrap() {
        WorkerReply::Worker(dto) => assert_ne!(dto.id, worker.id),
        other => panic!("expected a new worker, got {other:?}"),
    }
    // The interrupted command was redelivered to the new worker-manager, which no longer
    // knows that worker: the caller gets a clear failure, not silence.
    match long.await.unwrap().unwrap() {
        WorkerReply::Failed(failure) => assert!(!failure.reason.is_empty()),
        other => panic!("expected a failure for the orphaned worker, got {other:?}"),
    }
    tree.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}
