//! `artel worker-image build` against the real Docker daemon: idempotent, and the image keeps
//! the worker contract — python3 and git present, a non-root user, nothing writable but the
//! workspace when the root is mounted read-only, no network when none is given, no Docker
//! socket inside.

use std::process::{Command, Output};

fn docker(args: &[&str]) -> Output {
    Command::new("docker")
        .args(args)
        .output()
        .expect("the docker command (`. .ci/services.sh` installs docker.io and starts dockerd)")
}

fn in_worker(script: &str, workspace: &std::path::Path) -> Output {
    let mount = format!("{}:/workspace", workspace.display());
    docker(&[
        "run",
        "--rm",
        "--read-only",
        "--network",
        "none",
        "--cap-drop",
        "ALL",
        "--security-opt",
        "no-new-privileges",
        "--tmpfs",
        "/tmp",
        "-v",
        &mount,
        "artel-worker:latest",
        "sh",
        "-c",
        script,
    ])
}

#[test]
fn the_worker_image_builds_idempotently_and_keeps_the_worker_contract() {
    let info = docker(&["info", "--format", "{{.ServerVersion}}"]);
    assert!(
        info.status.success(),
        "no Docker daemon answers: `. .ci/services.sh` starts dockerd ({})",
        String::from_utf8_lossy(&info.stderr)
    );
    let build = Command::new(env!("CARGO_BIN_EXE_artel"))
        .args(["worker-image", "build"])
        .output()
        .expect("artel runs");
    let said = String::from_utf8_lossy(&build.stdout);
    assert!(
        build.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&build.stderr)
    );
    // .ci/services.sh built it already: a second build changes nothing.
    assert!(said.contains("up to date"), "{said}");

    let workspace = std::env::temp_dir().join(format!("artel-wi-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&workspace).unwrap();
    std::os::unix::fs::chown(&workspace, Some(64000), Some(64000)).unwrap();
    let out = in_worker(
        "id -u; python3 -c 'print(6*7)'; git --version; \
         echo made > /workspace/out.txt && echo workspace-writable; \
         touch /etc/nope 2>/dev/null || echo root-read-only; \
         python3 -c \"import socket; socket.create_connection(('1.1.1.1', 53), 1)\" \
           2>/dev/null || echo no-network; \
         test -S /var/run/docker.sock || echo no-docker-socket",
        &workspace,
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "64000", "a non-root user: {text}");
    assert_eq!(lines[1], "42", "python3: {text}");
    assert!(lines[2].starts_with("git version"), "git: {text}");
    for expected in [
        "workspace-writable",
        "root-read-only",
        "no-network",
        "no-docker-socket",
    ] {
        assert!(lines.contains(&expected), "{expected}: {text}");
    }
    assert_eq!(
        std::fs::read_to_string(workspace.join("out.txt")).unwrap(),
        "made\n"
    );
    let _ = std::fs::remove_dir_all(&workspace);
}

#[tokio::test(flavor = "multi_thread")]
async fn artel_new_with_docker_workers_builds_tests_and_deploys_leaving_no_container() {
    let home = crate::new::Home::new("dockernew").await;
    let out = tokio::task::spawn_blocking({
        let env = home.env();
        move || {
            Command::new(env!("CARGO_BIN_EXE_artel"))
                .args(["new", "--local", "--exit-when-done", "A todo list API"])
                .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
                .env("ARTEL_WORKERS__RUNTIME", "docker")
                .env("ARTEL_INSTANCE", "docker-new-test")
                .env_remove("REDIS_URL")
                .output()
                .expect("artel runs")
        }
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("tests: "), "{text}");
    assert!(text.contains("live at http://127.0.0.1:"), "{text}");
    let mut db = home.db().await;
    let runtimes: Vec<(String, String)> =
        sqlx::query_as("SELECT runtime, status FROM workers ORDER BY created_at")
            .fetch_all(&mut db)
            .await
            .unwrap();
    assert!(
        runtimes.len() >= 2,
        "develop and test ran in workers: {runtimes:?}"
    );
    assert!(
        runtimes
            .iter()
            .all(|(r, s)| r == "docker" && s == "stopped"),
        "{runtimes:?}"
    );
    let left = docker(&[
        "ps",
        "-a",
        "-q",
        "--filter",
        "label=artel-owner=docker-new-test",
    ]);
    assert!(
        String::from_utf8_lossy(&left.stdout).trim().is_empty(),
        "containers left behind"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn with_docker_workers_readiness_includes_the_daemon() {
    let home = crate::new::Home::new("dockerready").await;
    let env = home.env();
    let mut env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    env.push(("ARTEL_WORKERS__RUNTIME", "docker"));
    env.push(("ARTEL_INSTANCE", "docker-ready-test"));
    let artel = crate::support::Artel::up(&env);
    crate::support::eventually(
        std::time::Duration::from_secs(20),
        "readiness with the Docker check",
        || {
            let url = format!("{}/health/ready", artel.url);
            async move {
                let (status, report) = crate::support::get_json(&url).await;
                status == 200 && report["checks"]["docker"]["ok"] == true
            }
        },
    )
    .await;
    artel.terminate();
}
