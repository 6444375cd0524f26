//! `artel up`: the managed or given database, readiness, the live tree over HTTP, outages,
//! and an orderly stop on SIGTERM.

use crate::support::{Artel, OwnRedis, data_dir, eventually, free_port, fresh_database, get_json};
use std::process::Command;
use std::time::Duration;

#[tokio::test]
async fn serves_health_readiness_and_the_live_tree_then_stops_on_sigterm() {
    let database = fresh_database().await;
    let dir = data_dir("url");
    let artel = Artel::up(&[
        ("DATABASE_URL", &database),
        ("ARTEL_DATA_DIR", dir.to_str().unwrap()),
    ]);

    let (status, body) = get_json(&format!("{}/health", artel.url)).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("alive")));
    let url = artel.url.clone();
    eventually(Duration::from_secs(20), "readiness", || {
        let url = url.clone();
        async move { get_json(&format!("{url}/health/ready")).await.0 == 200 }
    })
    .await;
    let (_, ready) = get_json(&format!("{}/health/ready", artel.url)).await;
    assert_eq!(ready["checks"]["postgres"]["ok"], true);

    // Prometheus metrics: the tree, readiness, database counts and requests served.
    let metrics = reqwest::get(format!("{}/metrics", artel.url))
        .await
        .unwrap();
    assert_eq!(metrics.status().as_u16(), 200);
    assert!(
        metrics.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let metrics = metrics.text().await.unwrap();
    for line in [
        "artel_actor_restarts_total{node=\"artel/health\",role=\"health\"} 0",
        "artel_actor_mailbox_capacity{node=\"artel/gateways/http\"} 64",
        "artel_dependency_up{dependency=\"postgres\"} 1",
        "artel_actor_restarts_total{node=\"artel/scheduler/health-check\",role=\"scheduler_job\"} 0",
        "artel_tree_nodes{status=\"running\"} 17",
        "artel_events_total 0",
        "# TYPE artel_http_requests_total counter",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "no {line:?} in:\n{metrics}"
        );
    }
    assert!(
        metrics.lines().any(
            |l| l.starts_with("artel_http_requests_total{class=\"2xx\"} ") && !l.ends_with(" 0")
        ),
        "{metrics}"
    );

    // The CLI reads the same tree over HTTP.
    let out = Command::new(env!("CARGO_BIN_EXE_artel"))
        .args(["tree", "--once", "--json", "--server", &artel.url])
        .env("ARTEL_API_KEY", &artel.key)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let root = &tree["roots"][0];
    assert_eq!(root["name"], "artel");
    let names: Vec<&str> = root["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "health",
            "worker-manager",
            "deployers",
            "workflows",
            "sessions",
            "scheduler",
            "gateways"
        ]
    );
    // The worker-manager is an actor with a mailbox, the one road to a sandbox; its backlog
    // is the queue of commands waiting for a worker.
    assert_eq!(root["children"][1]["kind"], "actor");
    assert_eq!(root["children"][1]["role"], "worker-manager");
    assert_eq!(root["children"][1]["backlog"], 0);
    let child = |i: usize, j: usize| root["children"][i]["children"][j]["name"].clone();
    assert_eq!(child(2, 0), "local");
    assert_eq!(root["children"][2]["children"][0]["role"], "deployer");
    assert_eq!(
        (child(3, 0), child(3, 1)),
        ("tasks".into(), "resumer".into())
    );
    assert_eq!(child(4, 0), "herald");
    let jobs: Vec<&str> = root["children"][5]["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        jobs,
        [
            "health-check",
            "session-reaper",
            "worker-reaper",
            "repo-sync"
        ],
        "the scheduler is a supervisor with one actor per job"
    );
    assert_eq!(root["children"][6]["children"][0]["name"], "http");
    assert_eq!(root["children"][6]["children"][0]["status"], "running");
    // The master key was created in the data dir, private to its owner.
    let key = std::fs::metadata(dir.join("master.key")).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&key.permissions()) & 0o777,
        0o600
    );

    let rest = artel.terminate();
    assert!(rest.contains("artel stopped"), "{rest}");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn without_a_database_url_it_runs_stops_and_reuses_its_own_postgres() {
    let dir = data_dir("managed");
    let env = [("ARTEL_DATA_DIR", dir.to_str().unwrap())];
    let artel = Artel::up(&env);
    let (status, ready) = get_json(&format!("{}/health/ready", artel.url)).await;
    assert_eq!(status, 200, "{ready}");
    let pid_file = dir.join("postgres/data/postmaster.pid");
    assert!(pid_file.exists(), "the managed cluster runs");

    // The database goes away under a running artel: readiness says so, and says so no more
    // once it is back.
    let cluster = artel_actors::managed_postgres::ManagedPostgres::locate(&dir).unwrap();
    cluster.stop().await.unwrap();
    let ready = format!("{}/health/ready", artel.url);
    let status = |want: u16| {
        let ready = ready.clone();
        move || {
            let ready = ready.clone();
            async move { get_json(&ready).await.0 == want }
        }
    };
    eventually(
        Duration::from_secs(30),
        "not ready without Postgres",
        status(503),
    )
    .await;
    let (_, report) = get_json(&ready).await;
    assert_eq!(report["checks"]["postgres"]["ok"], false, "{report}");
    cluster.start().await.unwrap();
    eventually(
        Duration::from_secs(30),
        "ready again with Postgres",
        status(200),
    )
    .await;
    artel.terminate();
    assert!(
        !pid_file.exists(),
        "the managed cluster is stopped on shutdown"
    );

    // A second start reuses the cluster (no second initdb) and its data.
    let again = Artel::up(&env);
    let (status, _) = get_json(&format!("{}/health/ready", again.url)).await;
    assert_eq!(status, 200);
    again.terminate();
    assert!(dir.join("postgres/data/PG_VERSION").exists());
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_missing_settings_file_or_bad_setting_is_a_clear_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_artel"))
        .args(["--config", "/nonexistent/artel.toml", "up"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/artel.toml"));
    let out = Command::new(env!("CARGO_BIN_EXE_artel"))
        .arg("up")
        .env("ARTEL_HTTP__LISTEN", "nowhere")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("http.listen"), "{err}");
}

#[tokio::test]
async fn readiness_reports_a_redis_outage_and_its_recovery() {
    let port = free_port();
    let mut redis = OwnRedis::start(port);
    let database = fresh_database().await;
    let dir = data_dir("redis");
    let redis_url = format!("redis://127.0.0.1:{port}");
    let artel = Artel::up(&[
        ("DATABASE_URL", &database),
        ("REDIS_URL", &redis_url),
        ("ARTEL_DATA_DIR", dir.to_str().unwrap()),
    ]);
    let ready = format!("{}/health/ready", artel.url);
    let status = |want: u16| {
        let ready = ready.clone();
        move || {
            let ready = ready.clone();
            async move { get_json(&ready).await.0 == want }
        }
    };
    eventually(Duration::from_secs(20), "ready with Redis up", status(200)).await;
    // With Redis, replies of `artel worker-manager` processes come back through the
    // `remote-workers` consumer, beside the in-process worker-manager.
    let (_, tree) = artel.get("/api/v1/tree").await;
    assert_eq!(tree["roots"][0]["children"][1]["name"], "worker-manager");
    let remote = &tree["roots"][0]["children"][2];
    assert_eq!(remote["name"], "remote-workers");
    assert_eq!(remote["kind"], "supervisor");
    assert_eq!(remote["children"][0]["name"], "replies");
    assert_eq!(remote["children"][0]["status"], "running");
    // The streams' consumer groups are on /metrics.
    let metrics = reqwest::get(format!("{}/metrics", artel.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("artel_stream_pending{stream=\"artel.worker-manager.replies\""),
        "{metrics}"
    );

    redis.stop();
    eventually(
        Duration::from_secs(20),
        "not ready with Redis down",
        status(503),
    )
    .await;
    let (_, report) = get_json(&ready).await;
    assert_eq!(report["checks"]["redis"]["ok"], false);
    assert!(report["checks"]["redis"]["error"].as_str().is_some());
    assert_eq!(report["checks"]["postgres"]["ok"], true);

    let _redis = OwnRedis::start(redis.port);
    eventually(Duration::from_secs(20), "ready again", status(200)).await;
    artel.terminate();
    let _ = std::fs::remove_dir_all(dir);
}
