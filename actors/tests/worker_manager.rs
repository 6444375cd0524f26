//! The WorkerManager with the local-process runtime, against real processes and a real
//! Postgres: workspaces, lifecycle events, output events, limits (memory, processes, CPU,
//! wall clock), the scrubbed environment, the FIFO queue, and the actor's messages.

mod support;

use artel_actors::store::{EventScope, MasterKey, NewTask, Store};
use artel_actors::worker_manager::{
    OutputPolicy, ProcessConfig, ProcessRuntime, RunAs, WorkerError, WorkerManager,
    WorkerManagerActor, WorkerManagerConfig,
};
use artel_messages::dto::WorkerDto;
use artel_messages::worker_manager::{
    CommandOutcome, OutputStream, RunCommand, StopWorker, WorkerCommand, WorkerLimits, WorkerReply,
    WorkerRuntime, WorkerSpec,
};
use artel_messages::{
    ErrorClass, Event, EventBody, EventId, ProjectId, SecretValue, TaskId, TaskKind, WorkerId,
    WorkerStatus,
};
use artel_supervisors::Supervisor;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use support::TestDb;

struct Fixture {
    db: TestDb,
    manager: WorkerManager<ProcessRuntime>,
    root: PathBuf,
    project: ProjectId,
    task: TaskId,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

async fn fixture(config: WorkerManagerConfig) -> Fixture {
    fixture_with(config, |store| store).await
}

async fn fixture_with(config: WorkerManagerConfig, store: impl FnOnce(Store) -> Store) -> Fixture {
    let db = TestDb::new().await;
    let store = store(db.store.clone());
    let user = store.create_user("builder", None).await.unwrap();
    let project = store
        .create_project(user.id, "shortener", "a URL shortener")
        .await
        .unwrap();
    let task = store
        .create_task(&NewTask {
            id: TaskId::new(),
            project: project.id,
            kind: TaskKind::Engineering,
            description: "build it".into(),
            session: None,
        })
        .await
        .unwrap();
    // Not under /root: worker uids must be able to pass through the root's parents.
    let root = std::env::temp_dir().join(format!("artel-wm-{}", uuid::Uuid::new_v4().simple()));
    let mut process = ProcessConfig::new(&root);
    if ProcessRuntime::new(process.clone())
        .unwrap()
        .drops_privileges()
    {
        // Tests run side by side, each with its own manager: give each its own uids, as two
        // artel processes on one host must have.
        process.run_as = RunAs::UidRange {
            first: 2_000_000_000 + 1_000 * (uuid::Uuid::new_v4().as_u128() % 100_000) as u32,
            count: 1_000,
            gid: 65_534,
        };
    }
    let runtime = ProcessRuntime::new(process).unwrap();
    Fixture {
        manager: WorkerManager::new(store, runtime, config),
        db,
        root,
        project: project.id,
        task: task.id,
    }
}

fn limits() -> WorkerLimits {
    WorkerLimits {
        cpu_seconds: 10,
        memory_bytes: 256 << 20,
        pids: 64,
        file_size_bytes: 16 << 20,
        wall_clock_timeout_secs: 10,
    }
}

impl Fixture {
    fn spec(&self, limits: WorkerLimits) -> WorkerSpec {
        WorkerSpec {
            project: self.project,
            task: self.task,
            runtime: WorkerRuntime::Process,
            image: None,
            env: BTreeMap::new(),
            secrets: vec![],
            network: false,
            limits,
        }
    }

    async fn spawn(&self, limits: WorkerLimits) -> WorkerDto {
        self.manager.spawn(self.spec(limits)).await.unwrap()
    }

    /// Spawns a worker and runs `program args…` in it.
    async fn run(
        &self,
        limits: WorkerLimits,
        program: &str,
        args: &[&str],
    ) -> (WorkerId, Result<CommandOutcome, WorkerError>) {
        let worker = self.spawn(limits).await;
        (
            worker.id,
            self.manager.run(command(worker.id, program, args)).await,
        )
    }

    async fn events(&self) -> Vec<Event> {
        self.db
            .store
            .events_since(EventScope::Task(self.task), EventId::new(0), 10_000)
            .await
            .unwrap()
    }

    /// The statuses `worker` went through, from its events.
    async fn statuses(&self, worker: WorkerId) -> Vec<WorkerStatus> {
        self.events()
            .await
            .into_iter()
            .filter_map(|e| match e.body {
                EventBody::WorkerStatusChanged { worker: w, status } if w == worker => Some(status),
                _ => None,
            })
            .collect()
    }

    /// The output lines of `worker`, from its events.
    async fn output(&self, worker: WorkerId) -> Vec<(OutputStream, String)> {
        self.events()
            .await
            .into_iter()
            .filter_map(|e| match e.body {
                EventBody::WorkerOutput {
                    worker: w,
                    stream,
                    line,
                } if w == worker => Some((stream, line)),
                _ => None,
            })
            .collect()
    }

    async fn row(&self, worker: WorkerId) -> (String, Option<String>, Option<String>) {
        sqlx::query_as("SELECT status, error_reason, workspace FROM workers WHERE id = $1")
            .bind(worker.as_uuid())
            .fetch_one(self.db.store.pool())
            .await
            .unwrap()
    }
}

fn command(worker: WorkerId, program: &str, args: &[&str]) -> RunCommand {
    RunCommand {
        worker,
        program: program.into(),
        args: args.iter().map(|a| a.to_string()).collect(),
        cwd: None,
    }
}

fn stdout_of(lines: &[(OutputStream, String)]) -> Vec<&str> {
    lines
        .iter()
        .filter(|(s, _)| *s == OutputStream::Stdout)
        .map(|(_, l)| l.as_str())
        .collect()
}

/// Processes whose real uid is `uid`: all of them, or only the living (not zombies). A
/// zombie still counts against the process limit until it is reaped.
fn processes_of(uid: u32, with_zombies: bool) -> usize {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    entries
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.parse::<u32>().is_ok())
        })
        .filter_map(|e| std::fs::read_to_string(e.path().join("status")).ok())
        .filter(|status| {
            let uid_matches = status
                .lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|ids| ids.split_whitespace().next()?.parse::<u32>().ok())
                == Some(uid);
            let zombie = status
                .lines()
                .any(|l| l.starts_with("State:") && l.contains('Z'));
            uid_matches && (with_zombies || !zombie)
        })
        .count()
}

/// Processes whose command line holds `needle` as one argument.
fn processes_running(needle: &str) -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|entry| std::fs::read(entry.path().join("cmdline")).ok())
        .filter(|cmdline| {
            cmdline
                .split(|&b| b == 0)
                .any(|arg| arg == needle.as_bytes())
        })
        .count()
}

#[tokio::test]
async fn a_command_runs_in_its_own_workspace_and_its_output_arrives_as_events_in_order() {
    let f = fixture(WorkerManagerConfig::default()).await;
    let worker = f.spawn(limits()).await;
    assert_eq!(worker.status, WorkerStatus::Ready);
    let other = f.spawn(limits()).await;
    let sandbox = f.manager.sandbox(worker.id).unwrap();
    let workspace = sandbox.workspace.clone().unwrap();
    assert_ne!(
        f.manager.sandbox(other.id).unwrap().workspace,
        sandbox.workspace
    );
    assert!(workspace.starts_with(&f.root), "{workspace:?}");

    let script = "pwd; echo \"home=$HOME\"; echo \"tmp=$TMPDIR\"; \
                  for i in 1 2 3 4 5; do echo line-$i; done; echo oops >&2; \
                  echo made > here.txt; id -u; exit 3";
    let outcome = f
        .manager
        .run(command(worker.id, "sh", &["-c", script]))
        .await
        .unwrap();
    assert_eq!(outcome.exit_code, Some(3));
    assert!(!outcome.succeeded() && !outcome.timed_out);
    assert_eq!(outcome.stderr_tail, "oops");
    assert!(outcome.stdout_tail.contains("line-5"));

    let lines = f.output(worker.id).await;
    let stdout = stdout_of(&lines);
    let real = std::fs::canonicalize(&workspace).unwrap();
    assert_eq!(stdout[0], real.to_str().unwrap());
    let home = stdout[1].strip_prefix("home=").unwrap();
    let tmp = stdout[2].strip_prefix("tmp=").unwrap();
    assert!(
        Path::new(home).starts_with(workspace.parent().unwrap()),
        "{home}"
    );
    assert!(
        Path::new(tmp).starts_with(workspace.parent().unwrap()),
        "{tmp}"
    );
    assert_eq!(
        stdout[3..8],
        ["line-1", "line-2", "line-3", "line-4", "line-5"]
    );
    assert!(lines.contains(&(OutputStream::Stderr, "oops".into())));
    if let Some(uid) = sandbox.uid {
        // Under root the worker runs as its own unprivileged uid.
        assert_eq!(stdout[8], uid.to_string());
        assert_ne!(uid, 0);
    }
    assert_eq!(
        std::fs::read_to_string(workspace.join("here.txt")).unwrap(),
        "made\n"
    );

    // A worker runs one command.
    let again = f
        .manager
        .run(command(worker.id, "true", &[]))
        .await
        .unwrap_err();
    assert!(matches!(
        again,
        WorkerError::NotReady {
            status: WorkerStatus::Completed,
            ..
        }
    ));

    let stopped = f.manager.stop(worker.id, "done").await.unwrap();
    assert_eq!(stopped.status, WorkerStatus::Stopped);
    assert!(!workspace.exists(), "the workspace is removed on stop");
    assert_eq!(
        f.statuses(worker.id).await,
        [
            WorkerStatus::Started,
            WorkerStatus::Ready,
            WorkerStatus::Busy,
            WorkerStatus::Completed,
            WorkerStatus::Stopped
        ]
    );
    let (status, _, recorded) = f.row(worker.id).await;
    assert_eq!(status, "stopped");
    assert_eq!(recorded.as_deref(), workspace.to_str());
    // Stopping again answers the same worker, unchanged.
    assert_eq!(f.manager.stop(worker.id, "again").await.unwrap(), stopped);
}

#[tokio::test]
async fn exit_codes_are_outcomes_and_the_worker_completes() {
    let f = fixture(WorkerManagerConfig::default()).await;
    for (program, args, code) in [
        ("true", &[][..], 0),
        ("false", &[][..], 1),
        ("sh", &["-c", "exit 42"][..], 42),
        ("no-such-program-anywhere", &[][..], 127),
    ] {
        let (worker, outcome) = f.run(limits(), program, args).await;
        let outcome = outcome.unwrap();
        assert_eq!(outcome.exit_code, Some(code), "{program}");
        assert_eq!(outcome.succeeded(), code == 0);
        assert_eq!(
            f.manager.worker(worker).unwrap().status,
            WorkerStatus::Completed
        );
    }
    // A working directory outside the worker's directory is refused, fatally.
    let worker = f.spawn(limits()).await;
    for cwd in ["..", "/etc"] {
        let mut escape = command(worker.id, "pwd", &[]);
        escape.cwd = Some(cwd.into());
        let err = f.manager.run(escape).await.unwrap_err();
        assert!(matches!(err, WorkerError::BadCwd { .. }), "{err}");
    }
}

#[tokio::test]
async fn a_memory_hog_fails_under_its_limit_and_the_manager_keeps_working() {
    let f = fixture(WorkerManagerConfig::default()).await;
    let started = Instant::now();
    let (worker, outcome) = f
        .run(
            limits(),
            "python3",
            &["-c", "x = bytearray(2_000_000_000); print('allocated')"],
        )
        .await;
    let outcome = outcome.unwrap();
    assert!(!outcome.succeeded());
    assert!(outcome.stderr_tail.contains("MemoryError"), "{outcome:?}");
    assert!(!outcome.stdout_tail.contains("allocated"));
    assert!(started.elapsed() < Duration::from_secs(8));
    // The program exited (code 1, after catching nothing): its job failed, the sandbox did
    // not, so the worker is completed — the lifecycle's rule for any exit code.
    assert_eq!(outcome.exit_code, Some(1));
    assert_eq!(
        f.manager.worker(worker).unwrap().status,
        WorkerStatus::Completed
    );

    let (_, next) = f.run(limits(), "echo", &["still-here"]).await;
    assert_eq!(next.unwrap().stdout_tail, "still-here");
}

#[tokio::test]
async fn a_fork_bomb_is_contained_by_the_process_limit() {
    let f = fixture(WorkerManagerConfig::default()).await;
    if !f.manager.runtime().drops_privileges() {
        eprintln!(
            "skipped: the process limit is per user; only a root artel gives workers their own"
        );
        return;
    }
    let pids = 24;
    let worker = f
        .spawn(WorkerLimits {
            pids,
            wall_clock_timeout_secs: 4,
            ..limits()
        })
        .await;
    let uid = f.manager.sandbox(worker.id).unwrap().uid.unwrap();
    // Count the worker's processes from a plain thread, every few milliseconds.
    let watcher = std::thread::spawn(move || {
        let mut seen = Vec::new();
        let until = Instant::now() + Duration::from_secs(3);
        while Instant::now() < until {
            seen.push(processes_of(uid, true));
            std::thread::sleep(Duration::from_millis(5));
        }
        seen
    });
    let started = Instant::now();
    let outcome = f
        .manager
        .run(command(
            worker.id,
            "sh",
            &["-c", "b() { b | b & }; b; sleep 2; echo survived"],
        ))
        .await
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(8));
    let seen = watcher.join().unwrap();
    let most = seen.iter().copied().max().unwrap_or(0);
    assert!(
        most <= pids as usize,
        "{most} processes alive under a limit of {pids}"
    );
    assert!(
        most >= pids as usize / 2,
        "the bomb did go off ({most} processes)"
    );
    assert!(outcome.stderr_tail.contains("fork"), "{outcome:?}");
    assert_eq!(
        processes_of(uid, false),
        0,
        "nothing of the bomb outlives its command"
    );

    let (_, next) = f.run(limits(), "echo", &["host-is-fine"]).await;
    assert_eq!(next.unwrap().stdout_tail, "host-is-fine");
}

#[tokio::test]
async fn the_cpu_limit_kills_a_busy_loop_and_fails_the_worker() {
    let f = fixture(WorkerManagerConfig::default()).await;
    let started = Instant::now();
    let (worker, outcome) = f
        .run(
            WorkerLimits {
                cpu_seconds: 1,
                wall_clock_timeout_secs: 30,
                ..limits()
            },
            "sh",
            &["-c", "while :; do :; done"],
        )
        .await;
    let outcome = outcome.unwrap();
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(outcome.exit_code, None);
    assert!(!outcome.timed_out);
    assert_eq!(
        f.manager.worker(worker).unwrap().status,
        WorkerStatus::Failed
    );
    let (status, reason, _) = f.row(worker).await;
    assert_eq!(status, "failed");
    assert!(reason.unwrap().contains("CPU"));
}

#[tokio::test]
async fn the_timeout_kills_the_whole_process_group() {
    let f = fixture(WorkerManagerConfig::default()).await;
    // A sleep nobody else runs: 1000 s and a unique fraction.
    let marker = format!("1000.{}", uuid::Uuid::new_v4().as_u128() % 1_000_000_000);
    let started = Instant::now();
    let (worker, outcome) = f
        .run(
            WorkerLimits {
                wall_clock_timeout_secs: 1,
                ..limits()
            },
            "sh",
            &["-c", &format!("sleep {marker} & sleep 1000")],
        )
        .await;
    let outcome = outcome.unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(outcome.timed_out);
    assert_eq!(outcome.exit_code, None);
    // Found by its command line: inside a pid namespace `$!` is not the host's pid.
    assert_eq!(
        processes_running(&marker),
        0,
        "the background sleep was killed too"
    );
    assert_eq!(f.statuses(worker).await.last(), Some(&WorkerStatus::Failed));
    let (_, reason, _) = f.row(worker).await;
    assert!(reason.unwrap().starts_with("timed out after 1s"));
    assert_eq!(
        f.manager.stop(worker, "cleanup").await.unwrap().status,
        WorkerStatus::Stopped
    );
}

#[tokio::test]
async fn artel_secrets_in_its_environment_do_not_reach_workers() {
    const NAME: &str = "artel_secrets_in_its_environment_do_not_reach_workers";
    if std::env::var_os("ARTEL_WM_ENV_CHILD").is_none() {
        // Run this test again in a child whose environment holds artel's secrets (this
        // process may not set variables: no `unsafe`).
        let output = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", NAME, "--nocapture", "--test-threads=1"])
            .env("ARTEL_WM_ENV_CHILD", "1")
            .env("ARTEL_MASTER_KEY", "leaked-master-key")
            .env("DATABASE_URL", "postgres://leaked@db/artel")
            .env("OPENAI_API_KEY", "sk-leaked")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{text}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(text.contains("1 passed"), "{text}");
        return;
    }
    let f = fixture(WorkerManagerConfig::default()).await;
    let mut spec = f.spec(limits());
    spec.env.insert("RUST_LOG".into(), "info".into());
    let worker = f.manager.spawn(spec).await.unwrap();
    let outcome = f.manager.run(command(worker.id, "env", &[])).await.unwrap();
    let names: Vec<&str> = outcome
        .stdout_tail
        .lines()
        .filter_map(|l| l.split_once('=').map(|(n, _)| n))
        .collect();
    for leaked in ["leaked-master-key", "leaked@db", "sk-leaked"] {
        assert!(
            !outcome.stdout_tail.contains(leaked),
            "{}",
            outcome.stdout_tail
        );
    }
    for name in &names {
        assert!(
            [
                "PATH", "HOME", "TMPDIR", "LANG", "RUST_LOG", "PWD", "OLDPWD", "SHLVL", "_"
            ]
            .contains(name),
            "unexpected variable {name} in {names:?}"
        );
    }
    for name in ["PATH", "HOME", "TMPDIR", "LANG", "RUST_LOG"] {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }
}

#[tokio::test]
async fn named_secrets_are_injected_and_missing_ones_refused() {
    let key = || MasterKey::from_bytes([7; 32]);
    let f = fixture_with(WorkerManagerConfig::default(), |store| {
        store.with_master_key(key())
    })
    .await;
    let mut spec = f.spec(limits());
    spec.secrets = vec!["API_TOKEN".into()];
    let err = f.manager.spawn(spec.clone()).await.unwrap_err();
    assert!(
        matches!(err, WorkerError::MissingSecret(ref n) if n == "API_TOKEN"),
        "{err}"
    );

    let writer = f.db.store.clone().with_master_key(key());
    writer
        .set_secret(f.project, "API_TOKEN", &SecretValue::new("tok-123"))
        .await
        .unwrap();
    let worker = f.manager.spawn(spec).await.unwrap();
    let outcome = f
        .manager
        .run(command(
            worker.id,
            "sh",
            &["-c", "echo \"token=$API_TOKEN\""],
        ))
        .await
        .unwrap();
    assert_eq!(outcome.stdout_tail, "token=tok-123");
}

#[tokio::test]
async fn with_one_slot_three_commands_run_one_at_a_time_in_fifo_order() {
    let f = fixture(WorkerManagerConfig {
        max_busy: 1,
        ..WorkerManagerConfig::default()
    })
    .await;
    let workers = [
        f.spawn(limits()).await.id,
        f.spawn(limits()).await.id,
        f.spawn(limits()).await.id,
    ];
    let mut runs = Vec::new();
    for (i, &worker) in workers.iter().enumerate() {
        let manager = f.manager.clone();
        runs.push(tokio::spawn(async move {
            manager
                .run(command(worker, "sh", &["-c", "sleep 0.4; echo done"]))
                .await
        }));
        // Wait until this one has its place before the next asks.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let placed = match i {
                0 => f.manager.worker(worker).unwrap().status == WorkerStatus::Busy,
                _ => f.manager.queue_position(worker) == Some(i),
            };
            if placed {
                break;
            }
            assert!(Instant::now() < deadline, "worker {i} never got its place");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    assert_eq!(f.manager.queue_position(workers[0]), None);
    assert_eq!(f.manager.queue_position(workers[1]), Some(1));
    assert_eq!(f.manager.queue_position(workers[2]), Some(2));
    assert_eq!(f.manager.queue(), workers[1..]);
    assert_eq!(f.manager.busy(), 1);
    // Waiting workers are still `ready`: busy means running.
    assert_eq!(
        f.manager.worker(workers[2]).unwrap().status,
        WorkerStatus::Ready
    );

    let mut outcomes = Vec::new();
    for run in runs {
        outcomes.push(run.await.unwrap().unwrap());
    }
    for pair in outcomes.windows(2) {
        assert!(
            pair[0].finished_at.as_datetime() <= pair[1].started_at.as_datetime(),
            "{pair:?} overlap"
        );
    }
    // The journal agrees: each busy after the previous one completed.
    let order: Vec<(WorkerId, WorkerStatus)> = f
        .events()
        .await
        .into_iter()
        .filter_map(|e| match e.body {
            EventBody::WorkerStatusChanged { worker, status }
                if matches!(status, WorkerStatus::Busy | WorkerStatus::Completed) =>
            {
                Some((worker, status))
            }
            _ => None,
        })
        .collect();
    let expected: Vec<_> = workers
        .iter()
        .flat_map(|&w| [(w, WorkerStatus::Busy), (w, WorkerStatus::Completed)])
        .collect();
    assert_eq!(order, expected);
    assert_eq!(f.manager.busy(), 0);
}

#[tokio::test]
async fn output_is_bounded_and_what_is_held_back_is_said() {
    let f = fixture(WorkerManagerConfig {
        max_busy: 2,
        output: OutputPolicy {
            max_line_bytes: 10,
            max_events: 5,
            tail_lines: 3,
        },
    })
    .await;
    let (worker, outcome) = f
        .run(limits(), "sh", &["-c", "echo 0123456789abcdef; seq 2 20"])
        .await;
    let outcome = outcome.unwrap();
    assert_eq!(outcome.stdout_tail, "18\n19\n20");
    let lines = f.output(worker).await;
    let stdout = stdout_of(&lines);
    assert_eq!(stdout.len(), 6, "{stdout:?}");
    assert_eq!(stdout[0], "0123456789 … [6 more bytes of this line cut]");
    assert_eq!(stdout[1..5], ["2", "3", "4", "5"]);
    assert!(stdout[5].starts_with("[artel] 15 more lines of stdout were not published"));
}

#[tokio::test]
async fn stopping_a_running_worker_kills_its_command() {
    let f = fixture(WorkerManagerConfig::default()).await;
    let worker = f.spawn(limits()).await.id;
    let marker = format!("1000.{}", uuid::Uuid::new_v4().as_u128() % 1_000_000_000);
    let run = {
        let manager = f.manager.clone();
        let script = format!("echo started; exec sleep {marker}");
        tokio::spawn(async move { manager.run(command(worker, "sh", &["-c", &script])).await })
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while processes_running(&marker) == 0 {
        assert!(Instant::now() < deadline, "the command never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stopped = f.manager.stop(worker, "task cancelled").await.unwrap();
    assert_eq!(stopped.status, WorkerStatus::Stopped);
    let err = run.await.unwrap().unwrap_err();
    assert!(matches!(err, WorkerError::Stopped { .. }), "{err}");
    assert_eq!(processes_running(&marker), 0, "the command was killed");
    assert_eq!(
        f.statuses(worker).await,
        [
            WorkerStatus::Started,
            WorkerStatus::Ready,
            WorkerStatus::Busy,
            WorkerStatus::Stopped
        ]
    );
}

#[tokio::test]
async fn the_actor_is_the_road_to_a_sandbox_and_its_backlog_is_the_queue() {
    let f = fixture(WorkerManagerConfig {
        max_busy: 1,
        ..WorkerManagerConfig::default()
    })
    .await;
    let (workers, spec) = WorkerManagerActor::child_spec("worker-manager", f.manager.clone());
    let tree = Supervisor::new("artel").child(spec).start().await;
    let backlog = || {
        tree.registry()
            .snapshot()
            .find("artel/worker-manager")
            .and_then(|node| node.backlog)
    };

    let worker = workers.spawn(f.spec(limits())).await.unwrap();
    let outcome = workers
        .run(command(worker.id, "echo", &["via the mailbox"]))
        .await
        .unwrap();
    assert_eq!(outcome.stdout_tail, "via the mailbox");
    let reply = workers
        .handle(WorkerCommand::Stop(StopWorker {
            worker: worker.id,
            reason: "done".into(),
        }))
        .await;
    assert!(matches!(reply, WorkerReply::Worker(ref w) if w.status == WorkerStatus::Stopped));

    // One slot, three commands: the first runs, two wait in line — as the actor's backlog
    // and in order — while the actor itself stays free to answer.
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(workers.spawn(f.spec(limits())).await.unwrap().id);
    }
    let runs: Vec<_> = ids
        .iter()
        .map(|id| {
            let workers = workers.clone();
            let id = *id;
            tokio::spawn(async move { workers.run(command(id, "sleep", &["1"])).await })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    let queue = loop {
        let queue = workers.queue().await.unwrap();
        if queue.waiting.len() == 2 {
            break queue;
        }
        assert!(Instant::now() < deadline, "never two waiting: {queue:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(queue.busy, 1);
    assert_eq!(backlog(), Some(2), "the tree shows the two waiting");
    // A stop of a waiting worker is not stuck behind the running command.
    let last = *queue.waiting.last().unwrap();
    let stopped = workers.stop(last, "cancelled while waiting").await.unwrap();
    assert_eq!(stopped.status, WorkerStatus::Stopped);
    assert_eq!(workers.queue().await.unwrap().waiting.len(), 1);
    let mut finished = 0;
    for run in runs {
        if run.await.unwrap().is_ok_and(|o| o.succeeded()) {
            finished += 1;
        }
    }
    assert_eq!(finished, 2, "the two not stopped ran to the end");
    assert_eq!(backlog(), Some(0));

    let missing = workers
        .run(command(WorkerId::new(), "true", &[]))
        .await
        .unwrap_err();
    assert_eq!(missing.class, ErrorClass::Fatal);
    let mut docker = f.spec(limits());
    docker.runtime = WorkerRuntime::Docker;
    let refused = workers.spawn(docker).await.unwrap_err();
    assert_eq!(refused.class, ErrorClass::Fatal);
    assert!(refused.reason.contains("docker"), "{}", refused.reason);
    tree.shutdown().await;
}
