//! Worker start latency: `WorkerManager::spawn` (create → ready) plus the first command's
//! answer (`true`), for the Docker runtime cold (a new container from the local worker
//! image), the Docker runtime from its warm pool (a container made ahead; the bench waits
//! for the pool to refill between starts, as when starts are spaced), and the local-process
//! runtime, in ONE run, interleaved, so ratios compare like with like on a noisy machine.
//! Prints p50/p99 of each and the ratios.
//!
//! `cargo bench -p artel-benches --bench worker_start` — needs the test Postgres
//! (`ARTEL_TEST_DATABASE_URL`), a Docker daemon and the worker image (`. .ci/services.sh`).
//! `RUNS` sets the number of starts per runtime (default 30).

use artel_actors::store::{NewTask, Store};
use artel_actors::worker_manager::docker::{AnyRuntime, DockerConfig, DockerRuntime, WarmPool};
use artel_actors::worker_manager::{
    ProcessConfig, ProcessRuntime, RunAs, WorkerManager, WorkerManagerConfig,
};
use artel_messages::worker_manager::{RunCommand, WorkerLimits, WorkerRuntime, WorkerSpec};
use artel_messages::{ProjectId, TaskId, TaskKind};
use sqlx::{Connection, Executor, PgConnection};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const FALLBACK_URL: &str = "postgres://postgres@127.0.0.1:54329/postgres";

fn limits() -> WorkerLimits {
    WorkerLimits {
        cpu_seconds: 10,
        memory_bytes: 256 << 20,
        pids: 64,
        file_size_bytes: 16 << 20,
        wall_clock_timeout_secs: 30,
    }
}

async fn start_once(
    manager: &WorkerManager,
    runtime: WorkerRuntime,
    project: ProjectId,
    task: TaskId,
) -> (Duration, Duration) {
    let begun = Instant::now();
    let worker = manager
        .spawn(WorkerSpec {
            project,
            task,
            runtime,
            image: None,
            env: BTreeMap::new(),
            secrets: vec![],
            network: false,
            limits: limits(),
        })
        .await
        .expect("a worker");
    let ready = begun.elapsed();
    manager
        .run(RunCommand {
            worker: worker.id,
            program: "true".into(),
            args: vec![],
            cwd: None,
        })
        .await
        .expect("the first command");
    let answered = begun.elapsed();
    manager.stop(worker.id, "bench").await.expect("stop");
    (ready, answered)
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

fn main() {
    let runs: usize = std::env::var("RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    rt.block_on(async move {
        let admin =
            std::env::var("ARTEL_TEST_DATABASE_URL").unwrap_or_else(|_| FALLBACK_URL.into());
        let mut conn = PgConnection::connect(&admin)
            .await
            .expect("the test Postgres");
        let name = format!("artel_bench_{}", uuid::Uuid::new_v4().simple());
        conn.execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .expect("a database");
        let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
        let store = Store::connect(&format!("{base}/{name}"))
            .await
            .expect("connect");
        store.migrate().await.expect("migrate");
        let user = store.create_user("bench", None).await.expect("a user");
        let project = store
            .create_project(user.id, "bench", "")
            .await
            .expect("a project");
        let task = store
            .create_task(&NewTask {
                id: TaskId::new(),
                project: project.id,
                kind: TaskKind::Engineering,
                description: "bench".into(),
                session: None,
            })
            .await
            .expect("a task");
        let root =
            std::env::temp_dir().join(format!("artel-bench-ws-{}", uuid::Uuid::new_v4().simple()));
        let docker = DockerRuntime::connect(DockerConfig {
            root: root.join("docker"),
            image: "artel-worker:latest".into(),
            owner: "bench".into(),
            warm: None,
        })
        .await
        .expect("Docker and the worker image (`. .ci/services.sh`)");
        let warm = DockerRuntime::connect(DockerConfig {
            root: root.join("warm"),
            image: "artel-worker:latest".into(),
            owner: "bench-warm".into(),
            warm: Some(WarmPool {
                size: 2,
                memory_bytes: limits().memory_bytes,
                pids: limits().pids,
            }),
        })
        .await
        .expect("Docker and the worker image");
        let mut process = ProcessConfig::new(root.join("process"));
        process.run_as = RunAs::UidRange {
            first: 2_290_000_000,
            count: 1000,
            gid: 65_534,
        };
        let process = ProcessRuntime::new(process).expect("the process runtime");
        let config = WorkerManagerConfig::default;
        let docker = WorkerManager::new(store.clone(), AnyRuntime::from(docker), config());
        let warm_runtime = warm.clone();
        let warm = WorkerManager::new(store.clone(), AnyRuntime::from(warm), config());
        let process = WorkerManager::new(store.clone(), AnyRuntime::from(process), config());
        let (mut d_ready, mut d_answer, mut p_ready, mut p_answer) =
            (vec![], vec![], vec![], vec![]);
        let (mut w_ready, mut w_answer) = (vec![], vec![]);
        for _ in 0..runs {
            let (r, a) = start_once(&docker, WorkerRuntime::Docker, project.id, task.id).await;
            d_ready.push(r);
            d_answer.push(a);
            let refilled = Instant::now() + Duration::from_secs(30);
            while warm_runtime.warm_ready() < 2 && Instant::now() < refilled {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            assert_eq!(warm_runtime.warm_ready(), 2, "the pool refills");
            let (r, a) = start_once(&warm, WorkerRuntime::Docker, project.id, task.id).await;
            w_ready.push(r);
            w_answer.push(a);
            let (r, a) = start_once(&process, WorkerRuntime::Process, project.id, task.id).await;
            p_ready.push(r);
            p_answer.push(a);
        }
        for v in [
            &mut d_ready,
            &mut d_answer,
            &mut w_ready,
            &mut w_answer,
            &mut p_ready,
            &mut p_answer,
        ] {
            v.sort_unstable();
        }
        println!(
            "{runs} starts each, interleaved (cold: every container is new; warm: from a pool of 2)"
        );
        for (name, ready, answer) in [
            ("docker ", &d_ready, &d_answer),
            ("warm   ", &w_ready, &w_answer),
            ("process", &p_ready, &p_answer),
        ] {
            for (what, times) in [("create→ready  ", ready), ("→ first answer", answer)] {
                println!(
                    "{name} {what} p50 {:>7.1} ms  p99 {:>7.1} ms",
                    pct(times, 0.5),
                    pct(times, 0.99)
                );
            }
        }
        println!(
            "docker ÷ process (first answer, p50): {:.1}×",
            pct(&d_answer, 0.5) / pct(&p_answer, 0.5)
        );
        println!(
            "warm ÷ cold (create→ready, p50): {:.2}×",
            pct(&w_ready, 0.5) / pct(&d_ready, 0.5)
        );
        warm.shutdown().await;
        let _ = std::fs::remove_dir_all(&root);
        store.close().await;
        let _ = conn
            .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
            .await;
    });
}
