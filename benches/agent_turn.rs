//! # What one turn of the built-in LLM agent costs artel itself, and what an agent weighs
//!
//! A turn of `agent.kind = llm` is: check the turn and USD budgets (one query), build the
//! request from the journal, ask the model, record the call in `llm_requests`, journal the
//! answer, run the tool call in the task's worker (a fresh shell in the checkout, as the
//! worker's uid), mask and truncate the observation, journal it, and look for stuck patterns.
//! This bench prices all of that except the model: the model is a loopback peer of our own
//! that answers at once (OpenAI JSON, no streaming), with a `bash` call of `echo turn <n>` until the
//! task has had the turns it asked for, then `finish`.
//!
//! - **per turn**: a task of N turns through the real runtime (real Postgres, real process
//!   workers with their own uids); per turn = the time from journaling the first prompt to
//!   journaling the answer that calls `finish`, ÷ N, read from the agent's own journal
//!   (`agent_turns.at`), so the scaffold, tests and deploy around it do not count. The
//!   loopback model's answer (well under a millisecond) is inside the figure. Median of 3.
//! - **memory per running agent**: K tasks at once, each taking many turns; artel's resident
//!   set sampled while they run; per agent = (peak − before) ÷ K. Workers are other
//!   processes and are not counted: this is what an agent costs the artel process.
//! - **baseline, same run**: spawning `/bin/sh -c true` from the bench process (the floor of
//!   any tool call) and one Postgres `SELECT 1` round trip, so the figure reads as "a turn
//!   costs ≈ N shell spawns".
//!
//! Needs root (workers run as their own uids) and Postgres (`ARTEL_TEST_DATABASE_URL`, see
//! `support/database.rs`). Run:
//!
//! ```sh
//! cargo bench -p artel-benches --bench agent_turn
//! ```
//!
//! `--test` or `ARTEL_BENCH_QUICK=1` runs tiny counts; `--list` lists nothing and exits. The
//! target: ≤ 5 ms of artel's own cost per turn with a local worker.

#[path = "support/database.rs"]
mod database;

use artel_actors::runtime::{Runtime, RuntimeOptions};
use artel_actors::settings::Settings;
use artel_actors::store::{MasterKey, NewTask, Store};
use artel_actors::worker_manager::process::DEFAULT_GID;
use artel_actors::worker_manager::{
    ProcessConfig, ProcessRuntime, RunAs, WorkerManager, WorkerManagerConfig,
};
use artel_messages::{SecretValue, TaskId, TaskKind, TaskStatus};
use artel_supervisors::{Backoff, Supervisor, SupervisorHandle};
use database::{drop_database, fresh_database};
use serde_json::{Value, json};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const ROUNDS: usize = 3;
const FIRST_UID: u32 = 2_450_000_000;
const UID_COUNT: u32 = 1_000;

struct Counts {
    turns: u32,
    parallel: usize,
    parallel_turns: u32,
    spawns: u32,
    round_trips: u32,
}

impl Counts {
    fn from_args() -> Option<Self> {
        let args: Vec<String> = std::env::args().collect();
        if args.iter().any(|a| a == "--list") {
            return None;
        }
        let quick = std::env::var_os("ARTEL_BENCH_QUICK").is_some_and(|v| v != "0")
            || args.iter().any(|a| a == "--test");
        Some(if quick {
            Self {
                turns: 5,
                parallel: 2,
                parallel_turns: 4,
                spawns: 20,
                round_trips: 50,
            }
        } else {
            Self {
                turns: 50,
                parallel: 8,
                parallel_turns: 40,
                spawns: 300,
                round_trips: 1_000,
            }
        })
    }
}

/// The model: answers every request at once. The first user message says how many turns
/// the task takes (`turns=N`); until the conversation has that many answers it calls
/// `bash` with `true`, then `finish`.
struct InstantModel {
    url: String,
}

impl InstantModel {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the model");
        let url = format!("http://{}", listener.local_addr().expect("its address"));
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(serve(socket));
            }
        });
        Self { url }
    }
}

async fn serve(mut socket: TcpStream) {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let Some(end) = find(&buffer, b"\r\n\r\n") else {
            match socket.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
            continue;
        };
        let head = String::from_utf8_lossy(&buffer[..end]).to_ascii_lowercase();
        let length = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse::<usize>().ok())
            .unwrap_or(0);
        while buffer.len() < end + 4 + length {
            match socket.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        }
        let body: Value =
            serde_json::from_slice(&buffer[end + 4..end + 4 + length]).unwrap_or(Value::Null);
        buffer.drain(..end + 4 + length);
        let answer = answer(&body).to_string();
        let response = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{answer}",
            answer.len()
        );
        if socket.write_all(response.as_bytes()).await.is_err() {
            return;
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// An OpenAI chat completion: `bash true` or `finish`, by how far the conversation is.
fn answer(request: &Value) -> Value {
    let messages = request["messages"].as_array().cloned().unwrap_or_default();
    let texts = messages.iter().flat_map(|m| match &m["content"] {
        Value::String(text) => vec![text.clone()],
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p["text"].as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    });
    let wanted = texts
        .into_iter()
        .find_map(|text| {
            let rest = text.get(text.find("turns=")? + "turns=".len()..)?;
            rest.split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse::<usize>()
                .ok()
        })
        .unwrap_or(1);
    let answered = messages.iter().filter(|m| m["role"] == "assistant").count();
    let id = format!("call_{answered}");
    let (name, arguments) = if answered + 1 < wanted {
        // A different command each turn: the same one over and over is a stuck pattern.
        (
            "bash",
            json!({ "command": format!("echo turn {answered}") }),
        )
    } else {
        ("finish", json!({ "summary": "done" }))
    };
    json!({
        "id": format!("chatcmpl-{answered}"),
        "object": "chat.completion",
        "model": "bench",
        "choices": [{
            "index": 0,
            "finish_reason": "tool_calls",
            "message": {
                "role": "assistant",
                "content": null,
                "tool_calls": [{
                    "id": id,
                    "type": "function",
                    "function": { "name": name, "arguments": arguments.to_string() },
                }],
            },
        }],
        "usage": { "prompt_tokens": 1000, "completion_tokens": 20, "total_tokens": 1020 },
    })
}

struct Artel {
    store: Store,
    runtime: Runtime,
    tree: SupervisorHandle,
    data_dir: PathBuf,
}

async fn start(store: &Store, model: &InstantModel, parallel: usize) -> Artel {
    let data_dir = std::env::temp_dir().join(format!("artel-bench-agent-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir(&data_dir).expect("create the data dir");
    std::fs::set_permissions(&data_dir, std::fs::Permissions::from_mode(0o755))
        .expect("make the data dir traversable");
    let mut settings = Settings {
        data_dir: data_dir.clone(),
        ..Settings::default()
    };
    settings.agent.kind = "llm".into();
    settings.agent.max_turns = 10_000;
    settings.analyst.confirm = false;
    settings.llm.base_url = Some(format!("{}/v1", model.url));
    settings.llm.model = Some("bench".into());
    settings.llm.api_key = Some(SecretValue::new("sk-bench"));
    settings.workers.first_uid = FIRST_UID;
    settings.workers.uid_count = UID_COUNT;
    settings.workers.max_busy = parallel.max(4);
    settings.deploy.first_port = 25_000;
    settings.deploy.last_port = 25_999;
    settings.validate().expect("bench settings are valid");
    let mut process = ProcessConfig::new(data_dir.join("workers"));
    process.run_as = RunAs::UidRange {
        first: FIRST_UID,
        count: UID_COUNT,
        gid: DEFAULT_GID,
    };
    let workers = WorkerManager::new(
        store.clone(),
        ProcessRuntime::new(process)
            .expect("the process runtime (this bench runs as root)")
            .into(),
        WorkerManagerConfig::default(),
    );
    let targets = artel_actors::runtime::deploy_targets(&settings, store)
        .await
        .expect("the deploy targets");
    let mut runtime = Runtime::assemble(
        &settings,
        store,
        workers,
        targets,
        RuntimeOptions::default(),
    )
    .await
    .expect("the runtime assembles");
    let unused = || Supervisor::new("unused");
    let worker_manager = std::mem::replace(&mut runtime.worker_manager, unused().into_child());
    let deployers = std::mem::replace(&mut runtime.deployers_tree, unused());
    let workflows_tree = std::mem::replace(&mut runtime.workflows_tree, unused());
    let tree = Supervisor::new("artel")
        .child(worker_manager)
        .child(deployers.into_child())
        .child(workflows_tree.into_child().backoff(Backoff::none()))
        .start()
        .await;
    Artel {
        store: store.clone(),
        runtime,
        tree,
        data_dir,
    }
}

impl Artel {
    async fn submit(&self, turns: u32) -> TaskId {
        let user = self
            .store
            .ensure_user("bench", "bench@localhost")
            .await
            .expect("user");
        let name = format!("agent-{}", uuid::Uuid::new_v4().simple());
        let description = format!("a service that says hello, turns={turns}");
        let project = self
            .store
            .create_project(user.id, &name[..20], &description)
            .await
            .expect("project")
            .id;
        self.runtime
            .workflows
            .submit(NewTask {
                id: TaskId::new(),
                project,
                kind: TaskKind::Engineering,
                description,
                session: None,
            })
            .await
            .expect("submit")
            .id
    }

    /// The mean time of one turn of `task`'s first develop attempt, once the task settled:
    /// from journaling the first prompt (just before the first call) to journaling the
    /// answer that calls `finish` (just after the last), over the `turns` calls in between.
    async fn turn_time(&self, task: TaskId, turns: u32) -> Duration {
        loop {
            let record = self.store.task(task).await.expect("the task");
            let status = record.map(|t| t.status);
            if !matches!(status, Some(TaskStatus::Queued | TaskStatus::Running)) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let rows: Vec<(i32, chrono::DateTime<chrono::Utc>, Value)> = sqlx::query_as(
            "SELECT seq, at, message FROM agent_turns WHERE task_id = $1 ORDER BY seq",
        )
        .bind(task.as_uuid())
        .fetch_all(self.store.pool())
        .await
        .expect("the agent's journal");
        let is_finish = |entry: &Value| {
            entry["message"]["role"] == "assistant"
                && entry["message"]["content"]
                    .as_array()
                    .is_some_and(|parts| parts.iter().any(|p| p["name"] == "finish"))
        };
        let start = rows
            .get(1)
            .map(|r| r.1)
            .expect("the first prompt is journaled");
        let (seq, end, _) = rows
            .iter()
            .find(|r| is_finish(&r.2))
            .unwrap_or_else(|| panic!("task {task} never called finish"));
        let answers = rows
            .iter()
            .filter(|r| r.0 <= *seq && r.2["message"]["role"] == "assistant")
            .count();
        assert_eq!(
            answers, turns as usize,
            "task {task} took another number of turns"
        );
        (*end - start).to_std().unwrap_or_default() / turns
    }

    async fn stop(self) {
        self.tree.shutdown().await;
        self.runtime.target.stop_all().await;
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

/// The resident set of this process, in KiB.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

async fn run(counts: Counts) {
    let (store, admin, name) = fresh_database().await;
    let store = store.with_master_key(MasterKey::generate());
    let model = InstantModel::start().await;
    let artel = start(&store, &model, counts.parallel).await;

    let mut per_turn = Vec::new();
    let mut spawns = Vec::new();
    let mut selects = Vec::new();
    for _ in 0..ROUNDS {
        let task = artel.submit(counts.turns).await;
        per_turn.push(artel.turn_time(task, counts.turns).await);

        let started = Instant::now();
        for _ in 0..counts.spawns {
            let status = std::process::Command::new("/bin/sh")
                .args(["-c", "true"])
                .status()
                .expect("spawn sh");
            assert!(status.success());
        }
        spawns.push(started.elapsed() / counts.spawns);

        let started = Instant::now();
        for _ in 0..counts.round_trips {
            sqlx::query("SELECT 1")
                .execute(store.pool())
                .await
                .expect("SELECT 1");
        }
        selects.push(started.elapsed() / counts.round_trips);
    }
    let (turn, spawn, select) = (median(per_turn), median(spawns), median(selects));

    let before = rss_kib();
    let tasks: Vec<TaskId> = {
        let mut tasks = Vec::new();
        for _ in 0..counts.parallel {
            tasks.push(artel.submit(counts.parallel_turns).await);
        }

        tasks
    };
    let mut peak = before;
    loop {
        peak = peak.max(rss_kib());
        let mut settled = 0;
        for task in &tasks {
            let status = artel
                .store
                .task(*task)
                .await
                .expect("task")
                .map(|t| t.status);
            if !matches!(status, Some(TaskStatus::Queued | TaskStatus::Running)) {
                settled += 1;
            }
        }
        if settled == tasks.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let per_agent_kib = peak.saturating_sub(before) / counts.parallel as u64;

    println!("agent turn (artel's own cost, model answering at once on loopback):");
    println!(
        "  per turn            {:8.3} ms   (tasks of {} turns, median of {ROUNDS})",
        ms(turn),
        counts.turns
    );
    println!(
        "  baseline sh -c true {:8.3} ms   → a turn ≈ {:.1} shell spawns",
        ms(spawn),
        ms(turn) / ms(spawn)
    );
    println!(
        "  baseline SELECT 1   {:8.3} ms   → a turn ≈ {:.1} round trips",
        ms(select),
        ms(turn) / ms(select)
    );
    println!(
        "memory: {} agents at once, RSS {} KiB before, peak {} KiB → {} KiB per running agent",
        counts.parallel, before, peak, per_agent_kib
    );

    artel.stop().await;
    drop_database(&admin, &name).await;
}

fn main() {
    let Some(counts) = Counts::from_args() else {
        return;
    };
    // Workers switch to their own uids, which needs root.
    if !std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .map(|u| u.split_whitespace().next() == Some("0"))
        })
        .unwrap_or(false)
    {
        eprintln!("agent_turn: needs root (workers run as their own uids); skipped");
        return;
    }
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(run(counts));
}
