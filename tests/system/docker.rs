//! `artel new --runtime docker` through the binary against the real daemon: workers are
//! containers, the service is a container built from the template's Dockerfile, a broken
//! second deploy rolls back while the first keeps serving, and a restart brings the live
//! container back. And `kill -9` of artel with Docker workers running: the next start removes
//! every container it left.

use crate::new::{Home, JOB, get, post, project_of};
use crate::support::eventually;
use serde_json::json;
use sqlx::Row;
use std::process::Command;
use std::time::Duration;

fn docker(args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("the docker command (`. .ci/services.sh` installs docker.io and starts dockerd)");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Names of the containers (running or not) labelled `artel-owner=<owner>`.
fn containers_of(owner: &str) -> Vec<String> {
    docker(&[
        "ps",
        "-a",
        "--format",
        "{{.Names}}",
        "--filter",
        &format!("label=artel-owner={owner}"),
    ])
    .lines()
    .map(str::to_owned)
    .collect()
}

/// Removes whatever an instance left: containers, images and volumes of its projects.
struct Cleanup {
    owner: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let mut projects = Vec::new();
        for name in containers_of(&self.owner) {
            let project = docker(&[
                "inspect",
                "-f",
                "{{index .Config.Labels \"artel-project\"}}",
                &name,
            ]);
            if !project.is_empty() {
                projects.push(project);
            }
            docker(&["rm", "-f", &name]);
        }
        for project in projects {
            for image in docker(&[
                "images",
                "-q",
                "--filter",
                &format!("label=artel-project={project}"),
            ])
            .lines()
            {
                docker(&["rmi", "-f", "--no-prune", image]);
            }
            docker(&["volume", "rm", "-f", &format!("artel-data-{project}")]);
        }
    }
}

/// A home whose artel runs as its own instance (the owner label of its containers), with
/// what it leaves in Docker removed when the test ends.
async fn docker_home(tag: &str) -> (Home, String, Cleanup) {
    let home = Home::new(tag).await;
    let owner = format!("{tag}-{}", std::process::id());
    let cleanup = Cleanup {
        owner: owner.clone(),
    };
    (home, owner, cleanup)
}

#[tokio::test(flavor = "multi_thread")]
async fn artel_new_with_runtime_docker_deploys_a_container_and_a_broken_second_deploy_rolls_back() {
    let (home, owner, _cleanup) = docker_home("dockerdeploy").await;
    let env = [
        ("ARTEL_INSTANCE", owner.as_str()),
        ("ARTEL_DEPLOY__DOCKER__FIRST_PORT", "12200"),
        ("ARTEL_DEPLOY__DOCKER__LAST_PORT", "12219"),
    ];
    let mut run = home.artel(
        &["new", "--local", "--runtime", "docker", "a todo list API"],
        &env,
    );
    let url = run.wait_live();
    assert!(url.starts_with("http://127.0.0.1:122"), "{url}");
    let project = project_of(&run);

    let mut db = home.db().await;
    let row = sqlx::query(
        "SELECT d.id::text AS id, s.kind FROM deployments d JOIN servers s ON s.id = d.server_id \
         WHERE d.status = 'live'",
    )
    .fetch_one(&mut db)
    .await
    .unwrap();
    let (first, kind): (String, String) = (row.get("id"), row.get("kind"));
    assert_eq!(kind, "docker");
    let container = format!("artel-service-{first}");
    assert_eq!(
        docker(&[
            "inspect",
            "-f",
            "{{.State.Running}} {{.Config.User}}",
            &container
        ]),
        "true 64999:65534",
        "the service runs as a container, not as root"
    );
    let runtimes: Vec<String> = sqlx::query_scalar("SELECT DISTINCT runtime FROM workers")
        .fetch_all(&mut db)
        .await
        .unwrap();
    assert_eq!(runtimes, ["docker"], "develop and test ran in containers");

    let (status, todo) = post(&format!("{url}/api/todos"), json!({"title": "ship it"})).await;
    assert_eq!(status, 201, "{todo}");

    // Someone pushes a commit whose service dies at start; its deploy must roll back.
    home.push_broken_service(&project);
    run.say(&format!("deploy {project}"));
    run.wait_for("rolled back: the previous deployment keeps serving", JOB);
    let (status, list) = get(&format!("{url}/api/todos")).await;
    assert_eq!(status, 200, "the previous container still serves");
    assert!(list.to_string().contains("ship it"), "{list}");
    let rows =
        sqlx::query("SELECT id::text AS id, status, failure FROM deployments ORDER BY created_at")
            .fetch_all(&mut db)
            .await
            .unwrap();
    let statuses: Vec<String> = rows.iter().map(|r| r.get("status")).collect();
    assert_eq!(statuses, ["live", "rolled_back"]);
    let failure: String = rows[1].get("failure");
    assert!(failure.contains("exited with code 3"), "{failure}");
    let broken: String = rows[1].get("id");
    let services: Vec<String> = containers_of(&owner)
        .into_iter()
        .filter(|n| n.starts_with("artel-service-"))
        .collect();
    assert_eq!(
        services,
        std::slice::from_ref(&container),
        "the broken deployment's container {broken} is gone"
    );
    let id = docker(&["inspect", "-f", "{{.Id}}", &container]);
    run.terminate();
    assert_eq!(
        containers_of(&owner),
        std::slice::from_ref(&container),
        "a clean stop leaves no worker or warm container, only the stopped service"
    );
    assert_eq!(
        docker(&["inspect", "-f", "{{.State.Running}}", &container]),
        "false",
        "artel's shutdown stops the service's container and keeps it"
    );

    // The next start brings the live container back, with its data.
    let mut up = home.artel(&["up", "--runtime", "docker"], &env);
    up.wait_for("artel is up on", JOB);
    eventually(JOB, "the live container to serve again", || {
        let url = url.clone();
        async move {
            let (status, list) = get(&format!("{url}/api/todos")).await;
            status == 200 && list.to_string().contains("ship it")
        }
    })
    .await;
    assert_eq!(
        docker(&["inspect", "-f", "{{.Id}}", &container]),
        id,
        "the same container was started again (the worker sweep leaves services alone)"
    );
    up.terminate();

    // With new deployments back on the local target, the live container still comes back.
    let mut up = home.artel(&["up", "--runtime", "process"], &env);
    up.wait_for("artel is up on", JOB);
    eventually(JOB, "the container to serve under a local default", || {
        let url = url.clone();
        async move { get(&format!("{url}/api/todos")).await.0 == 200 }
    })
    .await;
    up.terminate();
}

/// A `cli` agent that works long enough to be killed in the middle of (it runs inside the
/// worker's container, so it is a command line, not a script on the host).
const SLOW_AGENT: &str = "sleep 8; printf 'VERSION = 1\\n' > version.py; git add -A; \
                          git commit -q -m 'slow but steady'";

#[tokio::test(flavor = "multi_thread")]
async fn after_kill_9_with_docker_workers_running_the_next_start_removes_every_container() {
    let (home, owner, _cleanup) = docker_home("dockerkill").await;
    let env = [
        ("ARTEL_INSTANCE", owner.as_str()),
        ("ARTEL_AGENT__KIND", "cli"),
        ("ARTEL_AGENT__COMMAND", SLOW_AGENT),
        ("ARTEL_HTTP__DRAIN_SECS", "1"),
    ];
    let mut run = home.artel(
        &["new", "--local", "--runtime", "docker", "a guestbook"],
        &env,
    );
    run.wait_for("engineering › develop", JOB);
    // The develop worker's container and the warm pool.
    eventually(Duration::from_secs(30), "a worker and a full pool", || {
        let owner = owner.clone();
        async move {
            let names = containers_of(&owner);
            names.iter().any(|n| n.starts_with("artel-worker-"))
                && names
                    .iter()
                    .filter(|n| n.starts_with("artel-pool-"))
                    .count()
                    == 2
        }
    })
    .await;
    let left = containers_of(&owner);
    run.kill();
    assert_eq!(containers_of(&owner), left, "kill -9 leaves them behind");

    let mut up = home.artel(&["up", "--runtime", "docker"], &env);
    up.wait_for("artel is up on", JOB);
    let now = containers_of(&owner);
    for name in &left {
        assert!(
            !now.contains(name),
            "{name} was left by the killed artel and is still there: {now:?}"
        );
    }
    up.terminate();
}
