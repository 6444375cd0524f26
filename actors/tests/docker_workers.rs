//! The Docker worker runtime against the real daemon (`.ci/services.sh` starts `dockerd` and
//! builds the worker image), through the WorkerManager: output as events and the lifecycle,
//! the memory limit failing a worker while a sibling completes, a fork bomb contained by the
//! pids limit, a timed-out worker's container gone, the sandbox's walls, and reaping what a
//! killed artel left behind.

mod support;

use artel_actors::store::Store;
use artel_actors::worker_manager::docker::{DockerConfig, DockerRuntime, WarmPool, container_name};
use artel_actors::worker_manager::{WorkerManager, WorkerManagerConfig};
use artel_messages::worker_manager::{RunCommand, WorkerLimits, WorkerRuntime, WorkerSpec};
use artel_messages::{EventBody, EventId, ProjectId, TaskId, TaskKind, WorkerId, WorkerStatus};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use support::TestDb;

struct Fixture {
    db: TestDb,
    root: PathBuf,
    owner: String,
    project: ProjectId,
    task: TaskId,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

impl Fixture {
    async fn new() -> Self {
        support::require_docker();
        let db = TestDb::new().await;
        let (project, task) = db.project_with_task("boxed", TaskKind::Engineering).await;
        let id = uuid::Uuid::new_v4().simple().to_string();
        Self {
            db,
            root: std::env::temp_dir().join(format!("artel-dw-{id}")),
            owner: format!("test-{}", &id[..12]),
            project,
            task,
        }
    }

    fn store(&self) -> Store {
        self.db.store.clone()
    }

    async fn manager(&self) -> WorkerManager<DockerRuntime> {
        self.manager_with(None).await
    }

    async fn manager_with(&self, warm: Option<WarmPool>) -> WorkerManager<DockerRuntime> {
        let runtime = DockerRuntime::connect(DockerConfig {
            root: self.root.clone(),
            image: "artel-worker:latest".into(),
            owner: self.owner.clone(),
            warm,
        })
        .await
        .expect("the Docker runtime (and the worker image: `artel worker-image build`)");
        WorkerManager::owned_by(
            self.store(),
            runtime,
            WorkerManagerConfig::default(),
            self.owner.clone(),
        )
    }

    fn spec(&self, limits: WorkerLimits) -> WorkerSpec {
        WorkerSpec {
            project: self.project,
            task: self.task,
            runtime: WorkerRuntime::Docker,
            image: None,
            env: BTreeMap::from([("GREETING".to_owned(), "hello".to_owned())]),
            secrets: vec![],
            network: false,
            limits,
        }
    }

    /// Containers of this test's owner, running or not.
    fn containers(&self) -> Vec<String> {
        let out = Command::new("docker")
            .args([
                "ps",
                "-a",
                "--format",
                "{{.Names}}",
                "--filter",
                &format!("label=artel-owner={}", self.owner),
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect()
    }

    async fn error_reason(&self, worker: WorkerId) -> Option<String> {
        sqlx::query_scalar("SELECT error_reason FROM workers WHERE id = $1")
            .bind(worker.as_uuid())
            .fetch_one(self.db.store.pool())
            .await
            .unwrap()
    }
}

fn limits() -> WorkerLimits {
    WorkerLimits {
        cpu_seconds: 30,
        memory_bytes: 256 << 20,
        pids: 64,
        file_size_bytes: 16 << 20,
        wall_clock_timeout_secs: 30,
    }
}

fn sh(worker: WorkerId, script: &str) -> RunCommand {
    RunCommand {
        worker,
        program: "sh".into(),
        args: vec!["-c".into(), script.into()],
        cwd: None,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_command_runs_in_its_container_with_output_as_events_and_the_whole_lifecycle() {
    let fx = Fixture::new().await;
    let manager = fx.manager().await;
    let worker = manager.spawn(fx.spec(limits())).await.unwrap();
    assert_eq!(fx.containers(), [container_name(worker.id)]);
    let outcome = manager
        .run(sh(
            worker.id,
            "echo \"$GREETING from $(id -u)\"; echo oops >&2; \
             touch /etc/x 2>/dev/null || echo read-only; \
             python3 -c \"import socket; socket.create_connection(('1.1.1.1', 53), 1)\" \
               2>/dev/null || echo offline; \
             test -S /var/run/docker.sock || echo no-socket; echo made > made.txt",
        ))
        .await
        .unwrap();
    assert_eq!(outcome.exit_code, Some(0));
    let stdout: Vec<&str> = outcome.stdout_tail.lines().collect();
    assert_eq!(stdout[0], "hello from 64000");
    for wall in ["read-only", "offline", "no-socket"] {
        assert!(stdout.contains(&wall), "{wall}: {stdout:?}");
    }
    assert!(outcome.stderr_tail.contains("oops"));
    let workspace = manager.sandbox(worker.id).unwrap().workspace.unwrap();
    assert_eq!(
        std::fs::read_to_string(workspace.join("made.txt")).unwrap(),
        "made\n"
    );

    manager.stop(worker.id, "done").await.unwrap();
    assert!(fx.containers().is_empty(), "the container is removed");
    let events = fx
        .store()
        .events_since(
            artel_actors::store::EventScope::Task(fx.task),
            EventId::new(0),
            1000,
        )
        .await
        .unwrap();
    let statuses: Vec<WorkerStatus> = events
        .iter()
        .filter_map(|e| match e.body {
            EventBody::WorkerStatusChanged { status, .. } => Some(status),
            _ => None,
        })
        .collect();
    use WorkerStatus::*;
    assert_eq!(statuses, [Started, Ready, Busy, Completed, Stopped]);
    assert!(events.iter().any(|e| matches!(
        &e.body,
        EventBody::WorkerOutput { line, .. } if line == "hello from 64000"
    )));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_memory_hog_fails_its_worker_a_fork_bomb_is_contained_and_a_sibling_completes() {
    let fx = Fixture::new().await;
    let manager = fx.manager().await;
    let hog = manager
        .spawn(fx.spec(WorkerLimits {
            memory_bytes: 64 << 20,
            ..limits()
        }))
        .await
        .unwrap();
    let bomb = manager
        .spawn(fx.spec(WorkerLimits {
            pids: 32,
            wall_clock_timeout_secs: 8,
            ..limits()
        }))
        .await
        .unwrap();
    let calm = manager.spawn(fx.spec(limits())).await.unwrap();
    let (hogged, bombed, calmed) = tokio::join!(
        manager.run(sh(
            hog.id,
            "python3 -c 'a = []\nwhile True: a.append(bytearray(10**7))'"
        )),
        manager.run(sh(
            bomb.id,
            "i=0; while [ $i -lt 200 ]; do sleep 30 & i=$((i+1)); done; wait"
        )),
        manager.run(sh(calm.id, "sleep 1; echo calm")),
    );
    let _ = hogged;
    assert_eq!(
        manager.worker(hog.id).unwrap().status,
        WorkerStatus::Failed,
        "the memory limit fails the worker"
    );
    let reason = fx.error_reason(hog.id).await.unwrap_or_default();
    assert!(reason.contains("memory limit"), "{reason}");

    // The pids limit stops the fork loop short (sh reports "Cannot fork" / "Resource
    // temporarily unavailable"); the worker ends at its timeout, contained.
    let bombed = bombed.unwrap();
    assert!(
        bombed.stderr_tail.contains("fork") || bombed.stderr_tail.contains("Resource"),
        "{bombed:?}"
    );
    let calmed = calmed.unwrap();
    assert_eq!(calmed.exit_code, Some(0));
    assert_eq!(calmed.stdout_tail.trim(), "calm");
    for worker in [hog.id, bomb.id, calm.id] {
        let _ = manager.stop(worker, "test over").await;
    }
    assert!(fx.containers().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_timed_out_worker_fails_and_its_container_is_gone_after_the_stop() {
    let fx = Fixture::new().await;
    let manager = fx.manager().await;
    let worker = manager
        .spawn(fx.spec(WorkerLimits {
            wall_clock_timeout_secs: 2,
            ..limits()
        }))
        .await
        .unwrap();
    let outcome = manager.run(sh(worker.id, "sleep 60")).await.unwrap();
    assert!(outcome.timed_out);
    assert_eq!(
        manager.worker(worker.id).unwrap().status,
        WorkerStatus::Failed
    );
    manager.stop(worker.id, "timed out").await.unwrap();
    assert!(fx.containers().is_empty(), "{:?}", fx.containers());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_next_start_removes_every_container_a_killed_artel_left_behind() {
    let fx = Fixture::new().await;
    let first = fx.manager().await;
    let mut left = Vec::new();
    for _ in 0..3 {
        left.push(first.spawn(fx.spec(limits())).await.unwrap().id);
    }
    // As after `kill -9`: the manager is gone, its containers and rows are not.
    drop(first);
    assert_eq!(fx.containers().len(), 3);

    let next = fx.manager().await;
    let reaped = next.reap_orphans().await.unwrap();
    assert_eq!(reaped, 3);
    let strays = next
        .runtime()
        .remove_strays(&[], std::time::Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(strays, 0, "the records named every container");
    assert!(fx.containers().is_empty(), "{:?}", fx.containers());
    for worker in left {
        let status: String = sqlx::query_scalar("SELECT status FROM workers WHERE id = $1")
            .bind(worker.as_uuid())
            .fetch_one(fx.db.store.pool())
            .await
            .unwrap();
        assert_eq!(status, "stopped");
    }
}

fn pool_of_two() -> WarmPool {
    WarmPool {
        size: 2,
        memory_bytes: limits().memory_bytes,
        pids: limits().pids,
    }
}

async fn until_warm(runtime: &DockerRuntime, ready: usize) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while runtime.warm_ready() < ready {
        assert!(
            std::time::Instant::now() < deadline,
            "the warm pool did not fill"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

fn label(container: &str, key: &str) -> String {
    let out = Command::new("docker")
        .args([
            "inspect",
            "-f",
            &format!("{{{{index .Config.Labels \"{key}\"}}}}"),
            container,
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_worker_takes_a_warm_container_and_the_pool_refills_while_others_get_their_own() {
    let fx = Fixture::new().await;
    let manager = fx.manager_with(Some(pool_of_two())).await;
    until_warm(manager.runtime(), 2).await;
    let pooled: Vec<String> = fx.containers();
    assert_eq!(pooled.len(), 2, "{pooled:?}");
    assert!(pooled.iter().all(|n| n.starts_with("artel-pool-")));

    let warm = manager.spawn(fx.spec(limits())).await.unwrap();
    assert_eq!(warm.status, WorkerStatus::Ready);
    let name = container_name(warm.id);
    assert_eq!(label(&name, "artel-pool"), "ready", "it came from the pool");
    let outcome = manager
        .run(sh(
            warm.id,
            "id -u; echo made > out.txt; ls /sys/class/net | tr '\\n' ' '",
        ))
        .await
        .unwrap();
    let lines: Vec<&str> = outcome.stdout_tail.lines().collect();
    assert_eq!(lines[0], "64000", "{outcome:?}");
    assert_eq!(
        lines[1].trim(),
        "lo",
        "a pooled worker is offline: {outcome:?}"
    );
    let workspace = manager.sandbox(warm.id).unwrap().workspace.unwrap();
    assert!(
        workspace.ends_with(format!("{}/work", warm.id)),
        "{workspace:?}"
    );
    assert_eq!(
        std::fs::read_to_string(workspace.join("out.txt")).unwrap(),
        "made\n",
        "the moved workspace is the container's /workspace"
    );
    until_warm(manager.runtime(), 2).await;

    // Other limits, or the network, get a container made for the worker.
    let big = manager
        .spawn(fx.spec(WorkerLimits {
            memory_bytes: 128 << 20,
            ..limits()
        }))
        .await
        .unwrap();
    assert_eq!(
        label(&container_name(big.id), "artel-worker"),
        big.id.to_string()
    );
    assert_eq!(
        label(&container_name(big.id), "artel-task"),
        fx.task.to_string()
    );
    let online = manager
        .spawn(WorkerSpec {
            network: true,
            ..fx.spec(limits())
        })
        .await
        .unwrap();
    let outcome = manager
        .run(sh(online.id, "ls /sys/class/net | tr '\\n' ' '"))
        .await
        .unwrap();
    assert!(
        outcome.stdout_tail.contains("eth0"),
        "a worker that needs the network has it: {outcome:?}"
    );
    assert_eq!(
        manager.runtime().warm_ready(),
        2,
        "neither took from the pool"
    );

    for worker in [warm.id, big.id, online.id] {
        manager.stop(worker, "test over").await.unwrap();
    }
    manager.shutdown().await;
    assert!(fx.containers().is_empty(), "{:?}", fx.containers());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_artels_warm_pool_is_swept_at_the_next_start_but_not_by_a_periodic_sweep_too_soon()
{
    let fx = Fixture::new().await;
    let first = fx.manager_with(Some(pool_of_two())).await;
    until_warm(first.runtime(), 2).await;
    let busy = first.spawn(fx.spec(limits())).await.unwrap();
    until_warm(first.runtime(), 2).await;
    drop(first);
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let left = fx.containers();
    assert_eq!(left.len(), 3, "a worker and a full pool: {left:?}");

    let next = fx.manager().await;
    assert_eq!(
        next.sweep_strays().await.unwrap(),
        0,
        "a periodic sweep leaves containers younger than a minute (a spawn may be racing it)"
    );
    assert_eq!(next.reap_orphans().await.unwrap(), 1, "the recorded worker");
    let strays = next
        .runtime()
        .remove_strays(&[], std::time::Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(strays, 2, "the pool's containers");
    assert!(fx.containers().is_empty(), "{:?}", fx.containers());
    let pool_dirs = std::fs::read_dir(&fx.root)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("pool-"))
        .count();
    assert_eq!(pool_dirs, 0, "their workspaces went with them");
    let status: String = sqlx::query_scalar("SELECT status FROM workers WHERE id = $1")
        .bind(busy.id.as_uuid())
        .fetch_one(fx.db.store.pool())
        .await
        .unwrap();
    assert_eq!(status, "stopped");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_warm_container_that_died_is_not_handed_out_and_a_drained_pool_makes_no_more() {
    let fx = Fixture::new().await;
    let manager = fx
        .manager_with(Some(WarmPool {
            size: 1,
            ..pool_of_two()
        }))
        .await;
    until_warm(manager.runtime(), 1).await;
    let dead = fx.containers();
    assert_eq!(dead.len(), 1);
    // As after a daemon restart: the idle container is gone from under the pool.
    Command::new("docker")
        .args(["kill", &dead[0]])
        .output()
        .unwrap();
    let worker = manager.spawn(fx.spec(limits())).await.unwrap();
    assert_eq!(worker.status, WorkerStatus::Ready);
    let outcome = manager.run(sh(worker.id, "echo fine")).await.unwrap();
    assert_eq!(
        (outcome.exit_code, outcome.stdout_tail.trim()),
        (Some(0), "fine")
    );
    assert_eq!(
        label(&container_name(worker.id), "artel-worker"),
        worker.id.to_string(),
        "it got a container made for it"
    );
    assert!(
        !fx.containers().contains(&dead[0]),
        "the dead one is removed"
    );
    manager.stop(worker.id, "test over").await.unwrap();
    // Drain right away, while the pool is making its next container: once shutdown returns,
    // nothing is left (the process may exit next).
    manager.shutdown().await;
    assert!(fx.containers().is_empty(), "{:?}", fx.containers());
    assert_eq!(manager.runtime().warm_ready(), 0);
}
