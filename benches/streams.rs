//! Load driver: artel's Redis Streams mailbox end to end (send → handle → ack) against the
//! same no-op workload through ARQ, with `redis-benchmark` XADD as the ceiling — all against
//! ONE Redis server this driver starts, in one run, so the ratios compare like with like.
//!
//! Run: `cargo bench -p artel-benches --bench streams` (needs `redis-server`,
//! `redis-benchmark`, and `pip install arq` for the ARQ leg; a missing ARQ is reported and that
//! leg skipped). `ARTEL_BENCH_JOBS` sets the number of jobs (default 20000).
//!
//! Shape of each leg, the same for artel and ARQ: one producer enqueues N jobs one after the
//! other (each waits for Redis's reply), then one consumer handles them all with a no-op
//! handler; throughput is N divided by the whole time.

use artel_messages::{Envelope, Failure, Payload};
use artel_supervisors::{StreamClient, StreamConfig};
use serde::{Deserialize, Serialize};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Noop {
    n: u32,
}

impl Payload for Noop {
    const KIND: &'static str = "BenchNoop";
    const SCHEMA_VERSION: u16 = 1;
}

struct RedisServer {
    child: Child,
    port: u16,
    dir: std::path::PathBuf,
}

impl RedisServer {
    fn start() -> Self {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("artel-bench-redis-{port}"));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
            ])
            .args(["--appendonly", "no", "--dir"])
            .arg(&dir)
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server is installed (apt-get install redis-server)");
        let server = Self { child, port, dir };
        for _ in 0..100 {
            let ok = Command::new("redis-cli")
                .args(["-p", &port.to_string(), "ping"])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).contains("PONG"))
                .unwrap_or(false);
            if ok {
                return server;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("redis-server did not answer on port {port}");
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// artel: N sends, then one consumer handles and acks all N. Returns jobs per second.
async fn artel_leg(url: &str, jobs: usize) -> (f64, f64, f64) {
    let config = StreamConfig {
        max_len: None,
        ..StreamConfig::default()
    };
    let client = StreamClient::new(url, config).expect("valid Redis URL");
    let stream = format!("bench-{}.noop", std::process::id());
    let producer = client.producer::<Noop>(stream.clone());
    let consumer = client.consumer::<Noop>(stream.clone(), "bench", "bench-1");
    consumer.ensure_group().await.expect("group created");

    let start = Instant::now();
    for n in 0..jobs {
        producer
            .send(&Envelope::new(Noop { n: n as u32 }))
            .await
            .expect("XADD");
    }
    let enqueued = start.elapsed().as_secs_f64();

    let handled = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(tokio::sync::Notify::new());
    let (h, d) = (handled.clone(), done.clone());
    let handler = move |_envelope: Envelope<Noop>| {
        let (h, d) = (h.clone(), d.clone());
        async move {
            if h.fetch_add(1, Ordering::Relaxed) + 1 == jobs {
                d.notify_one();
            }
            Ok::<(), Failure>(())
        }
    };
    let processing = Instant::now();
    let run = tokio::spawn(async move {
        let _ = consumer.run(&handler).await;
    });
    done.notified().await;
    // The last ack follows the last handle; wait until nothing is pending.
    while client.pending(&stream, "bench").await.unwrap_or(usize::MAX) > 0 {
        tokio::task::yield_now().await;
    }
    let processed = processing.elapsed().as_secs_f64();
    run.abort();
    (jobs as f64 / (enqueued + processed), enqueued, processed)
}

/// ARQ: the same shape through the Python job queue. None when ARQ is not installed.
fn arq_leg(port: u16, jobs: usize) -> Option<(f64, f64, f64)> {
    // The directory at run time (cargo sets it): a target dir shared between checkouts may
    // hold this binary compiled from another one, with another path baked in.
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into());
    let script = manifest_dir.join("drivers/arq_noop.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(port.to_string())
        .arg(jobs.to_string())
        .output()
        .ok()?;
    if !out.status.success() {
        eprintln!(
            "ARQ leg skipped: {} (install it with `pip install arq`)",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("python3 failed")
        );
        return None;
    }
    let line = String::from_utf8_lossy(&out.stdout);
    let value: serde_json::Value = serde_json::from_str(line.trim()).ok()?;
    let enqueue = value["enqueue_s"].as_f64()?;
    let process = value["process_s"].as_f64()?;
    Some((jobs as f64 / (enqueue + process), enqueue, process))
}

/// `redis-benchmark` XADD: requests per second with `clients` connections.
fn ceiling(port: u16, clients: u32, requests: usize) -> Option<f64> {
    let out = Command::new("redis-benchmark")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args([
            "-c",
            &clients.to_string(),
            "-n",
            &requests.to_string(),
            "-q",
        ])
        .args(["XADD", "bench.ceiling", "*", "envelope", "x"])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    // "XADD bench.ceiling * envelope x: 41254.12 requests per second, p50=..."
    let rps = text
        .rsplit(':')
        .find_map(|part| part.split_whitespace().next()?.parse::<f64>().ok());
    rps.or_else(|| {
        text.split_whitespace()
            .collect::<Vec<_>>()
            .windows(3)
            .find(|w| w[1] == "requests" && w[2] == "per")
            .and_then(|w| w[0].parse().ok())
    })
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing: do a tiny run.
    let quick = !std::env::args().any(|a| a == "--bench");
    let jobs: usize = std::env::var("ARTEL_BENCH_JOBS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if quick { 200 } else { 20_000 });
    let server = RedisServer::start();
    let url = format!("redis://127.0.0.1:{}", server.port);
    // One thread, like ARQ's asyncio loop: no cross-thread wake-ups between the caller and
    // the Redis connection's driver task.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");

    let (artel, a_enq, a_proc) = runtime.block_on(artel_leg(&url, jobs));
    let arq = arq_leg(server.port, jobs);
    let ceiling_1 = ceiling(server.port, 1, jobs.max(10_000));
    let ceiling_50 = ceiling(server.port, 50, jobs.max(10_000) * 5);

    println!("\n== Redis Streams mailbox vs ARQ vs redis-benchmark (one Redis, one run) ==");
    println!("jobs per leg: {jobs}");
    println!(
        "artel stream mailbox : {artel:>10.0} jobs/s  (enqueue {a_enq:.3} s, handle+ack {a_proc:.3} s)"
    );
    match arq {
        Some((rate, enq, proc)) => {
            println!(
                "ARQ                  : {rate:>10.0} jobs/s  (enqueue {enq:.3} s, process {proc:.3} s)"
            );
            println!(
                "ratio artel / ARQ    : {:>10.1}x  (target >= 10x)",
                artel / rate
            );
        }
        None => println!("ARQ                  : skipped (pip install arq)"),
    }
    if let Some(c1) = ceiling_1 {
        println!("redis-benchmark XADD : {c1:>10.0} req/s (1 client: sequential round trips)");
        println!("ratio artel / XADD-1 : {:>10.2}", artel / c1);
    }
    if let Some(c50) = ceiling_50 {
        println!("redis-benchmark XADD : {c50:>10.0} req/s (50 clients: the server's ceiling)");
    }
}
