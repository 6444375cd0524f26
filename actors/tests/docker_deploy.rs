//! The Docker deploy target against the real daemon (`.ci/services.sh` starts `dockerd` and
//! builds the worker image, the services' default base): an image built from a Dockerfile,
//! a container with a published port behind the walls, its data in a volume that outlives
//! it; clear failures for a missing or broken Dockerfile and for a service that dies; a
//! container that dies being restarted by the health job; shutdown and restore; sweeping
//! containers whose deployment is over.

mod support;

use artel_actors::deploy_target::docker::{container_name, image_name, volume_name};
use artel_actors::deploy_target::{
    DeployError, DockerTarget, DockerTargetConfig, LocalTarget, LocalTargetConfig, Started, Targets,
};
use artel_actors::git::LocalGit;
use artel_actors::jobs;
use artel_actors::roles::deployer::{DeployCrew, Deployers};
use artel_actors::roles::policy::RolePolicies;
use artel_actors::settings::Settings;
use artel_actors::store::{DeploymentRecord, NewDeployment, Store};
use artel_messages::deployer::DeployTarget;
use artel_messages::{Classify, DeploymentId, ErrorClass, ProjectId, TaskId, TaskKind};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;
use support::TestDb;

/// Answers `/health`, and at `/` what it sees: its uid, whether `/` is writable, its data
/// file (written at start, counting starts), its environment. `crash` exits at once.
const SERVER: &str = r#"
import json, os, sys
from http.server import BaseHTTPRequestHandler, HTTPServer

if sys.argv[1:] == ["crash"] or os.environ.get("CRASH"):
    print("boom: no configuration for this service", file=sys.stderr, flush=True)
    sys.exit(3)

data_file = os.environ["DATA_FILE"]
starts = 0
if os.path.exists(data_file):
    starts = json.load(open(data_file))["starts"]
with open(data_file, "w") as f:
    json.dump({"starts": starts + 1}, f)
try:
    open("/etc/artel-probe", "w")
    root_writable = True
except OSError:
    root_writable = False

class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"ok" if self.path == "/health" else json.dumps({
            "uid": os.getuid(),
            "root_writable": root_writable,
            "starts": starts + 1,
            "greeting": os.environ.get("GREETING"),
        }).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

HTTPServer((os.environ["HOST"], int(os.environ["PORT"])), Handler).serve_forever()
"#;

const DOCKERFILE: &str = "ARG BASE=artel-worker:latest\nFROM ${BASE}\nUSER root\n\
RUN mkdir -p /data && chown 64999:65534 /data\nCOPY . /app\nWORKDIR /app\n\
CMD [\"python3\", \"server.py\"]\n";

struct Fixture {
    db: TestDb,
    project: ProjectId,
    task: TaskId,
    dir: PathBuf,
    owner: String,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        // Whatever a failed test left: its containers, images and volume.
        let out = Command::new("docker")
            .args(["ps", "-aq", "--filter"])
            .arg(format!("label=artel-owner={}", self.owner))
            .output();
        if let Ok(out) = out {
            for id in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                let _ = Command::new("docker").args(["rm", "-f", id]).output();
            }
        }
        let images = Command::new("docker")
            .args(["images", "-q", "--filter"])
            .arg(format!("label=artel-project={}", self.project))
            .output();
        if let Ok(out) = images {
            for id in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                let _ = Command::new("docker")
                    .args(["rmi", "-f", "--no-prune", id])
                    .output();
            }
        }
        let _ = Command::new("docker")
            .args(["volume", "rm", "-f", &volume_name(self.project)])
            .output();
    }
}

impl Fixture {
    async fn new() -> Self {
        support::require_docker();
        let db = TestDb::new().await;
        let (project, task) = db.project_with_task("boxed", TaskKind::Deploy).await;
        let id = uuid::Uuid::new_v4().simple().to_string();
        let dir = std::env::temp_dir().join(format!("artel-dd-{id}"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        Self {
            db,
            project,
            task,
            dir,
            owner: format!("dd-{}", &id[..12]),
        }
    }

    fn store(&self) -> &Store {
        &self.db.store
    }

    fn config(&self, ports: std::ops::RangeInclusive<u16>) -> DockerTargetConfig {
        let mut config = DockerTargetConfig::new(self.owner.clone());
        config.ports = ports;
        config.health_timeout = Duration::from_secs(20);
        config.stop_grace = Duration::from_secs(2);
        config
    }

    async fn target(&self, ports: std::ops::RangeInclusive<u16>) -> DockerTarget {
        DockerTarget::connect(self.config(ports), self.store().clone())
            .await
            .expect("the Docker daemon answers")
    }

    /// Both targets, as `artel up --runtime docker` has them: Docker (new deployments) on
    /// `docker_ports`, local on `local_ports`.
    async fn targets(
        &self,
        docker_ports: std::ops::RangeInclusive<u16>,
        local_ports: std::ops::RangeInclusive<u16>,
    ) -> Targets {
        let mut local = LocalTargetConfig::new(self.dir.join("deployments"));
        local.ports = local_ports;
        Targets::with_docker(
            LocalTarget::new(local, self.store().clone()).unwrap(),
            self.target(docker_ports).await,
        )
    }

    /// The health job as the runtime runs it: through a Deployer of each of `targets`.
    async fn check_deployments(&self, targets: &Targets) -> String {
        let crew = DeployCrew {
            store: self.store().clone(),
            git: LocalGit::new(self.dir.join("repos")),
            target: targets.clone(),
        };
        let policies = RolePolicies::from_settings(&Settings::default());
        let (deployers, tree) = Deployers::subtree(crew, policies.deployer);
        let tree = tree.start().await;
        let summary = jobs::check_deployments(self.store(), targets, &deployers)
            .await
            .unwrap();
        tree.shutdown().await;
        summary
    }

    /// A workdir with the service and `dockerfile` (none when `None`).
    fn workdir(&self, dockerfile: Option<&str>) -> PathBuf {
        let work = self
            .dir
            .join(format!("work-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir(&work).unwrap();
        std::fs::write(work.join("server.py"), SERVER).unwrap();
        if let Some(dockerfile) = dockerfile {
            std::fs::write(work.join("Dockerfile"), dockerfile).unwrap();
        }
        work
    }

    async fn deployment(&self, dockerfile: Option<&str>, env: &[&str]) -> DeploymentRecord {
        self.store()
            .create_deployment(&NewDeployment {
                id: DeploymentId::new(),
                project: self.project,
                task: self.task,
                commit: "0123abc".into(),
                workdir: self.workdir(dockerfile),
                command: vec!["python3".into(), "server.py".into()],
                env_names: env.iter().map(|e| (*e).to_owned()).collect(),
                health_path: "/health".into(),
                target: DeployTarget::Docker,
            })
            .await
            .unwrap()
    }
}

impl Fixture {
    /// Starts `record` on `target` as the Deployer does, its spec (secrets included) read
    /// from the store, plus `env`.
    async fn start(
        &self,
        target: &DockerTarget,
        record: &DeploymentRecord,
        env: &[(&str, &str)],
    ) -> Result<Started, DeployError> {
        let mut spec = artel_actors::deploy_target::service_spec(self.store(), record).await?;
        spec.env
            .extend(env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        target.start(spec).await
    }

    /// A deployment of the test service started through `targets`, healthy and promoted
    /// live, as a finished deploy leaves it.
    async fn live(&self, targets: &Targets) -> (DeploymentRecord, Started) {
        let record = self.deployment(Some(DOCKERFILE), &[]).await;
        let started = targets.start(&record).await.unwrap();
        assert!(targets.wait_healthy(&record, &started.url).await.healthy);
        self.store()
            .promote_deployment(record.id, &started.url)
            .await
            .unwrap();
        (record, started)
    }
}

/// Kills the deployment's container from outside and waits until `targets` notices.
async fn kill_and_wait(targets: &Targets, record: &DeploymentRecord) {
    docker(&["kill", &container_name(record.id)]);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while targets.exited(record).is_none() {
        assert!(std::time::Instant::now() < deadline, "the exit is noticed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn docker(args: &[&str]) -> String {
    let out = Command::new("docker").args(args).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn exists(kind: &str, name: &str) -> bool {
    Command::new("docker")
        .args([kind, "inspect", name])
        .output()
        .unwrap()
        .status
        .success()
}

async fn get_json(url: &str) -> serde_json::Value {
    reqwest::get(url).await.unwrap().json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_service_is_built_from_its_dockerfile_and_runs_behind_the_walls() {
    let fx = Fixture::new().await;
    let target = fx.target(12_100..=12_109).await;
    let record = fx.deployment(Some(DOCKERFILE), &[]).await;
    assert_eq!(
        record.target,
        DeployTarget::Docker,
        "recorded on the docker server"
    );
    let started = fx
        .start(&target, &record, &[("GREETING", "hello")])
        .await
        .unwrap();
    assert!(
        started.url.starts_with("http://127.0.0.1:121"),
        "{started:?}"
    );
    let health = target
        .wait_healthy(&started.url, "/health", record.id)
        .await;
    assert!(health.healthy, "{health:?}");

    let seen = get_json(&started.url).await;
    assert_eq!(seen["uid"], 64999, "never root: {seen}");
    assert_eq!(seen["root_writable"], false, "read-only root: {seen}");
    assert_eq!(seen["greeting"], "hello");
    assert_eq!(seen["starts"], 1);
    let name = container_name(record.id);
    let labels = docker(&["inspect", "-f", "{{json .Config.Labels}}", &name]);
    let labels: serde_json::Value = serde_json::from_str(&labels).unwrap();
    assert_eq!(labels["managed-by"], "artel");
    assert_eq!(labels["artel-deployment"], record.id.to_string());
    assert_eq!(labels["artel-project"], fx.project.to_string());
    let limits = docker(&[
        "inspect",
        "-f",
        "{{.HostConfig.Memory}} {{.HostConfig.PidsLimit}} {{.HostConfig.NanoCpus}} {{.HostConfig.CapDrop}}",
        &name,
    ]);
    assert_eq!(limits, "536870912 256 1000000000 [ALL]");
    let stored = fx.store().deployment(record.id).await.unwrap().unwrap();
    assert_eq!(stored.port, Some(started.port));
    assert_eq!(stored.pid, None, "a container has no host pid to record");

    // Stopping removes container and image and releases the port; the data volume stays.
    target.stop(&stored).await.unwrap();
    assert!(!exists("container", &name));
    assert!(!exists("image", &image_name(fx.project, record.id)));
    assert!(exists("volume", &volume_name(fx.project)));
    let held: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM allocations WHERE deployment_id = $1 AND released_at IS NULL",
    )
    .bind(record.id.as_uuid())
    .fetch_one(fx.store().pool())
    .await
    .unwrap();
    assert_eq!(held, 0);

    // The next deployment of the project sees the data the first one wrote.
    let next = fx.deployment(Some(DOCKERFILE), &[]).await;
    let started = fx.start(&target, &next, &[]).await.unwrap();
    assert!(
        target
            .wait_healthy(&started.url, "/health", next.id)
            .await
            .healthy
    );
    assert_eq!(
        get_json(&started.url).await["starts"],
        2,
        "the volume kept the data"
    );
    target.stop(&next).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_or_broken_dockerfile_and_a_dying_service_say_what_happened() {
    let fx = Fixture::new().await;
    let target = fx.target(12_110..=12_119).await;

    let none = fx.deployment(None, &[]).await;
    let err = fx.start(&target, &none, &[]).await.unwrap_err();
    assert!(matches!(err, DeployError::BadWorkdir { .. }), "{err}");
    assert!(err.to_string().contains("Dockerfile"), "{err}");
    assert_eq!(err.class(), ErrorClass::Fatal);

    let broken = fx
        .deployment(
            Some(
                "ARG BASE\nFROM ${BASE}\nRUN echo compiling && echo 'no such tool' >&2 && false\n",
            ),
            &[],
        )
        .await;
    let err = fx.start(&target, &broken, &[]).await.unwrap_err();
    let DeployError::Build { detail, .. } = &err else {
        panic!("a build failure, not {err}");
    };
    assert!(
        detail.contains("compiling"),
        "the build's output is quoted: {detail}"
    );
    assert_eq!(err.class(), ErrorClass::Fatal);
    let held: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM allocations WHERE project_id = $1 AND released_at IS NULL",
    )
    .bind(fx.project.as_uuid())
    .fetch_one(fx.store().pool())
    .await
    .unwrap();
    assert_eq!(held, 0, "a failed start holds no port");

    let crashing = fx
        .deployment(
            Some(&DOCKERFILE.replace("\"server.py\"]", "\"server.py\", \"crash\"]")),
            &[],
        )
        .await;
    let started = fx.start(&target, &crashing, &[]).await.unwrap();
    let began = std::time::Instant::now();
    let health = target
        .wait_healthy(&started.url, "/health", crashing.id)
        .await;
    assert!(!health.healthy);
    let detail = health.detail.unwrap();
    assert!(detail.contains("exited with code 3"), "{detail}");
    assert!(
        detail.contains("boom: no configuration"),
        "the log's tail: {detail}"
    );
    assert!(
        began.elapsed() < Duration::from_secs(15),
        "the exit ends the wait, not the timeout"
    );
    target.stop(&crashing).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dead_container_is_restarted_and_shutdown_then_restore_serves_again() {
    let fx = Fixture::new().await;
    let targets = fx.targets(12_120..=12_129, 12_130..=12_139).await;
    let (record, started) = fx.live(&targets).await;

    // Someone kills the container: the health job sees it and starts it again.
    kill_and_wait(&targets, &record).await;
    let summary = fx.check_deployments(&targets).await;
    assert!(summary.contains("1 restarted"), "{summary}");
    assert_eq!(
        get_json(&started.url).await["starts"],
        2,
        "same URL, data kept"
    );

    // Shutdown stops it; the next start's restore starts the same container again.
    targets.stop_all().await;
    let state = docker(&[
        "inspect",
        "-f",
        "{{.State.Running}}",
        &container_name(record.id),
    ]);
    assert_eq!(state, "false");
    let again = fx.targets(12_120..=12_129, 12_130..=12_139).await;
    let restored = again.restore_live().await.unwrap();
    assert_eq!(restored.len(), 1);
    let (url, health) = restored[0]
        .outcome
        .as_ref()
        .map(|(s, h)| (s.url.clone(), h.clone()))
        .unwrap();
    assert!(health.healthy, "{health:?}");
    assert_eq!(url, started.url);
    assert_eq!(get_json(&url).await["starts"], 3);

    // A container whose deployment is over is swept at the next restore.
    let stored = fx.store().deployment(record.id).await.unwrap().unwrap();
    sqlx::query("UPDATE deployments SET status = 'superseded' WHERE id = $1")
        .bind(record.id.as_uuid())
        .execute(fx.store().pool())
        .await
        .unwrap();
    assert_eq!(again.docker().unwrap().sweep().await.unwrap(), 1);
    assert!(!exists("container", &container_name(stored.id)));
    again.stop(&stored).await.unwrap();
}

/// A remote Docker host, as far as artel can tell: the local daemon's API forwarded from a
/// TCP port on loopback (what `dockerd -H tcp://…` serves), one connection per client
/// connection, bytes copied both ways.
async fn tcp_docker_endpoint() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                if let Ok(mut unix) = tokio::net::UnixStream::connect("/var/run/docker.sock").await
                {
                    let _ = tokio::io::copy_bidirectional(&mut tcp, &mut unix).await;
                }
            });
        }
    });
    format!("tcp://{address}")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_docker_host_reached_over_tcp_runs_the_service_like_the_local_socket() {
    let fx = Fixture::new().await;
    let mut config = fx.config(12_140..=12_149);
    config.host = Some(tcp_docker_endpoint().await);
    let target = DockerTarget::connect(config, fx.store().clone())
        .await
        .expect("the daemon answers over TCP");
    let record = fx.deployment(Some(DOCKERFILE), &[]).await;
    let started = fx.start(&target, &record, &[]).await.unwrap();
    let health = target
        .wait_healthy(&started.url, "/health", record.id)
        .await;
    assert!(health.healthy, "{health:?}");
    assert_eq!(get_json(&started.url).await["uid"], 64999);
    target.stop(&record).await.unwrap();
    assert!(!exists("container", &container_name(record.id)));

    // A host that does not answer is a clear, retryable error at connect.
    let mut config = fx.config(12_140..=12_149);
    config.host = Some("tcp://127.0.0.1:1".into());
    let err = DockerTarget::connect(config, fx.store().clone())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("tcp://127.0.0.1:1"), "{err}");
    assert_eq!(err.class(), ErrorClass::Retryable);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_live_container_that_dies_and_cannot_come_back_is_marked_failed_and_reported() {
    let fx = Fixture::new().await;
    let targets = fx.targets(12_160..=12_169, 12_150..=12_159).await;
    let (record, _) = fx.live(&targets).await;

    // Its image and its Dockerfile are gone, so the restart cannot build it again.
    docker(&[
        "rmi",
        "-f",
        "--no-prune",
        &image_name(fx.project, record.id),
    ]);
    std::fs::remove_file(record.workdir.as_ref().unwrap().join("Dockerfile")).unwrap();
    kill_and_wait(&targets, &record).await;
    let summary = fx.check_deployments(&targets).await;
    assert!(summary.contains("1 failed"), "{summary}");
    let stored = fx.store().deployment(record.id).await.unwrap().unwrap();
    assert_eq!(stored.status, artel_messages::DeploymentStatus::Failed);
    let failure = stored.failure.unwrap_or_default();
    assert!(
        failure.contains("did not come back") && failure.contains("Dockerfile"),
        "{failure}"
    );
    let told: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE kind = 'deploy_failed' AND project_id = $1",
    )
    .bind(fx.project.as_uuid())
    .fetch_one(fx.store().pool())
    .await
    .unwrap();
    assert_eq!(told, 1, "the failure is an event the session hears");
    assert!(!exists("container", &container_name(record.id)));
}
