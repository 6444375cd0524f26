//! WebSocket fan-out load driver: `SUBSCRIBERS` clients on `PROJECTS` projects of a running
//! `artel up` (`ARTEL_URL`, `ARTEL_KEY`), while notes are posted at `RATE` events per second
//! spread over the projects for `DURATION_SECS`. Every delivery's latency is measured from the
//! event's `at` (stamped by the server when it appended the event) to its arrival here; the
//! driver prints deliveries expected and received and the latency p50/p99/max.
//!
//! Run through `benches/drivers/ws_fanout.sh`, which starts the server.

use futures_util::StreamExt as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Microseconds from the event's `at` to now, read without parsing the whole frame.
fn latency_micros(frame: &str) -> Option<u64> {
    let at = frame.split("\"at\":\"").nth(1)?.split('"').next()?;
    let at = chrono::DateTime::parse_from_rfc3339(at).ok()?;
    let now = chrono::Utc::now();
    u64::try_from((now - at.with_timezone(&chrono::Utc)).num_microseconds()?).ok()
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index] as f64 / 1000.0
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("ARTEL_URL").unwrap_or_else(|_| "http://127.0.0.1:18481".into());
    let key = std::env::var("ARTEL_KEY")?;
    let subscribers = env("SUBSCRIBERS", 10_000);
    let projects = env("PROJECTS", 100).max(1);
    let rate = env("RATE", 1_000).max(1);
    let seconds = env("DURATION_SECS", 20);
    let http = reqwest::Client::new();

    let mut ids = Vec::new();
    for i in 0..projects {
        let response: serde_json::Value = http
            .post(format!("{url}/api/v1/projects"))
            .bearer_auth(&key)
            .json(&serde_json::json!({ "name": format!("fan-{i}") }))
            .send()
            .await?
            .json()
            .await?;
        let id = response["id"]
            .as_str()
            .ok_or_else(|| format!("cannot create a project: {response}"))?;
        ids.push(id.to_owned());
    }

    let received = Arc::new(AtomicU64::new(0));
    let ws_base = url.replacen("http://", "ws://", 1);
    let (samples_tx, mut samples_rx) = tokio::sync::mpsc::unbounded_channel::<Vec<u64>>();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let connecting = Arc::new(tokio::sync::Semaphore::new(256));
    let connected = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..subscribers {
        let project = ids[(i % projects) as usize].clone();
        let (key, ws_base, received, samples_tx, connected) = (
            key.clone(),
            ws_base.clone(),
            received.clone(),
            samples_tx.clone(),
            connected.clone(),
        );
        let mut stop = stop_rx.clone();
        let permit = connecting.clone().acquire_owned().await?;
        tasks.push(tokio::spawn(async move {
            let mut request = format!("{ws_base}/api/v1/events/ws?project={project}")
                .into_client_request()
                .expect("a request");
            request.headers_mut().insert(
                "authorization",
                format!("Bearer {key}").parse().expect("a header"),
            );
            let socket = tokio_tungstenite::connect_async(request).await;
            drop(permit);
            let Ok((mut socket, _)) = socket else {
                return;
            };
            connected.fetch_add(1, Ordering::Relaxed);
            let mut samples = Vec::new();
            loop {
                tokio::select! {
                    message = socket.next() => match message {
                        Some(Ok(Message::Text(text))) => {
                            if text.starts_with("{\"event\"") || text.contains("\"type\":\"event\"") {
                                if let Some(micros) = latency_micros(&text) {
                                    samples.push(micros);
                                }
                                received.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        Some(Ok(_)) => {}
                        _ => break,
                    },
                    _ = stop.changed() => break,
                }
            }
            let _ = samples_tx.send(samples);
        }));
    }
    drop(samples_tx);
    // Wait for the connections to be up.
    while connected.load(Ordering::Relaxed) < subscribers
        && started.elapsed() < Duration::from_secs(120)
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let up = connected.load(Ordering::Relaxed);
    println!(
        "connected {up}/{subscribers} subscribers on {projects} projects in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // Publish RATE notes per second, round-robin over the projects.
    let posting = Arc::new(tokio::sync::Semaphore::new(64));
    let published = Arc::new(AtomicU64::new(0));
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / rate));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let publish_start = Instant::now();
    let mut n = 0u64;
    while publish_start.elapsed() < Duration::from_secs(seconds) {
        tick.tick().await;
        let project = ids[(n % projects) as usize].clone();
        n += 1;
        let (http, url, key, published) =
            (http.clone(), url.clone(), key.clone(), published.clone());
        let permit = posting.clone().acquire_owned().await?;
        tokio::spawn(async move {
            let ok = http
                .post(format!("{url}/api/v1/projects/{project}/notes"))
                .bearer_auth(&key)
                .json(&serde_json::json!({ "text": "fan-out" }))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ok {
                published.fetch_add(1, Ordering::Relaxed);
            }
            drop(permit);
        });
    }
    let publish_secs = publish_start.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let _ = stop_tx.send(true);
    let mut all = Vec::new();
    while let Some(samples) = samples_rx.recv().await {
        all.extend(samples);
    }
    for task in tasks {
        let _ = task.await;
    }
    all.sort_unstable();
    let published = published.load(Ordering::Relaxed);
    let expected = published * (up / projects);
    println!(
        "published {published} events in {publish_secs:.1} s ({:.0}/s); deliveries {} of {expected} expected ({:.0}/s)",
        published as f64 / publish_secs,
        received.load(Ordering::Relaxed),
        all.len() as f64 / publish_secs,
    );
    println!(
        "delivery latency: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} samples)",
        percentile(&all, 0.50),
        percentile(&all, 0.99),
        percentile(&all, 1.0),
        all.len()
    );
    Ok(())
}
