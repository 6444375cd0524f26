//! Deployments against a real Postgres and real processes: the store's deployment and port
//! functions, and the local deploy target running a small Python HTTP service — started,
//! health-checked, stopped, crashed and restored.
//!
//! Each test uses its own port range, so tests running in parallel never compete for a port.

use artel_actors::deploy_target::{DeployError, LocalTarget, LocalTargetConfig, ServiceExit};
use artel_actors::store::{DeploymentRecord, MasterKey, NewDeployment, Store, StoreError};
use artel_messages::deployer::DeployTarget;
use artel_messages::{
    Classify, DeploymentId, DeploymentStatus, ErrorClass, ProjectId, SecretValue, TaskId, TaskKind,
};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::time::Duration;

mod support;
use support::TestDb;

/// The service: `serve` answers `/health` and, at `/`, what it sees of its environment;
/// it also starts a second process in its group. `crash` complains and exits at once.
const SERVER: &str = r#"
import json, os, subprocess, sys
from http.server import BaseHTTPRequestHandler, HTTPServer

if sys.argv[1:] == ["crash"]:
    print("boom: no configuration for this service", file=sys.stderr, flush=True)
    sys.exit(3)

helper = subprocess.Popen(["sleep", "1000"])
data_file = os.environ["DATA_FILE"]
with open(data_file, "w") as f:
    json.dump({"started": True}, f)

class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/health":
            body = b"ok"
        else:
            body = json.dumps({
                "uid": os.getuid(),
                "greeting": os.environ.get("GREETING"),
                "home": os.environ.get("HOME"),
                "data_file": data_file,
                "database_url": os.environ.get("ARTEL_DATABASE_URL"),
            }).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

HTTPServer((os.environ["HOST"], int(os.environ["PORT"])), Handler).serve_forever()
"#;

/// A database with one project and its deploy task, and a scratch directory (mode 0755:
/// the service runs as another uid) removed at the end.
struct Fixture {
    db: TestDb,
    project: ProjectId,
    task: TaskId,
    dir: PathBuf,
}

impl Fixture {
    async fn new() -> Self {
        let db = TestDb::new().await;
        let (project, task) = db.project_with_task("shortener", TaskKind::Deploy).await;
        let dir = std::env::temp_dir().join(format!("artel-deploy-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        Self {
            db,
            project,
            task,
            dir,
        }
    }

    fn store(&self) -> &Store {
        &self.db.store
    }

    /// A fresh workdir holding the service.
    fn workdir(&self) -> PathBuf {
        let work = self
            .dir
            .join(format!("work-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir(&work).unwrap();
        std::fs::set_permissions(&work, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(work.join("server.py"), SERVER).unwrap();
        work
    }

    /// The target's configuration, with ports from `ports`.
    fn config(&self, ports: std::ops::RangeInclusive<u16>) -> LocalTargetConfig {
        let mut config = LocalTargetConfig::new(self.dir.join("deployments"));
        config.ports = ports;
        config.health_timeout = Duration::from_secs(15);
        config.stop_grace = Duration::from_secs(3);
        config
    }

    /// A new deployment of the service with these arguments, `deploying`.
    async fn deployment(&self, args: &[&str], env_names: &[&str]) -> DeploymentRecord {
        self.deployment_on(self.store(), args, env_names).await
    }

    async fn deployment_on(
        &self,
        store: &Store,
        args: &[&str],
        env_names: &[&str],
    ) -> DeploymentRecord {
        let mut command = vec!["python3".to_owned(), "server.py".to_owned()];
        command.extend(args.iter().map(|a| (*a).to_owned()));
        store
            .create_deployment(&NewDeployment {
                id: DeploymentId::new(),
                project: self.project,
                task: self.task,
                commit: "0123abc".into(),
                workdir: self.workdir(),
                command,
                env_names: env_names.iter().map(|n| (*n).to_owned()).collect(),
                health_path: "/health".into(),
                target: DeployTarget::Local,
            })
            .await
            .unwrap()
    }

    async fn unreleased_ports(&self, deployment: DeploymentId) -> i64 {
        sqlx::query_scalar(
            "SELECT count(*) FROM allocations WHERE deployment_id = $1 AND released_at IS NULL",
        )
        .bind(deployment.as_uuid())
        .fetch_one(self.store().pool())
        .await
        .unwrap()
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The living (not zombie) processes of group `pgid`.
fn group_members(pgid: u32) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.len() > 2 && fields[2] == pgid.to_string() && fields[0] != "Z" {
            found.push(pid);
        }
    }
    found
}

/// The uid services run as in these tests.
fn service_uid() -> u32 {
    if nix::unistd::geteuid().is_root() {
        artel_actors::deploy_target::DEFAULT_SERVICE_UID
    } else {
        nix::unistd::geteuid().as_raw()
    }
}

async fn get_json(url: &str) -> serde_json::Value {
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let text = client
        .get(url)
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .text()
        .await
        .unwrap();
    serde_json::from_str(&text).unwrap()
}

#[tokio::test]
async fn promotion_supersedes_the_previous_live_deployment() {
    let fx = Fixture::new().await;
    let store = fx.store();
    let first = fx.deployment(&[], &[]).await;
    assert_eq!(first.status, DeploymentStatus::Deploying);
    assert_eq!(first.target, DeployTarget::Local);
    assert_eq!(first.command, ["python3", "server.py"]);
    assert_eq!(first.health_path, "/health");

    // Creating the same deployment again answers the stored row; other work under its id
    // is refused.
    let again = NewDeployment {
        id: first.id,
        project: fx.project,
        task: fx.task,
        commit: first.commit.clone(),
        workdir: first.workdir.clone().unwrap(),
        command: first.command.clone(),
        env_names: vec![],
        health_path: "/health".into(),
        target: DeployTarget::Local,
    };
    assert_eq!(store.create_deployment(&again).await.unwrap(), first);
    let other = NewDeployment {
        commit: "fedcba9".into(),
        ..again.clone()
    };
    let err = store.create_deployment(&other).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err}");
    let bad = NewDeployment {
        id: DeploymentId::new(),
        commit: "HEAD".into(),
        ..again
    };
    let err = store.create_deployment(&bad).await.unwrap_err();
    assert!(matches!(err, StoreError::Invalid { .. }), "{err}");

    assert_eq!(
        store
            .promote_deployment(first.id, "http://a")
            .await
            .unwrap(),
        None
    );
    let live = store.live_deployment(fx.project).await.unwrap().unwrap();
    assert_eq!((live.id, live.url.as_deref()), (first.id, Some("http://a")));
    // Promoting the live one again only moves its URL.
    assert_eq!(
        store
            .promote_deployment(first.id, "http://a2")
            .await
            .unwrap(),
        None
    );

    let second = fx.deployment(&[], &[]).await;
    let previous = store
        .promote_deployment(second.id, "http://b")
        .await
        .unwrap()
        .expect("the first one was live");
    assert_eq!(previous.id, first.id);
    assert_eq!(previous.status, DeploymentStatus::Superseded);
    assert_eq!(previous.url.as_deref(), Some("http://a2"));
    let live = store.live_deployment(fx.project).await.unwrap().unwrap();
    assert_eq!(live.id, second.id);
    let dto = live.to_dto();
    assert_eq!(
        (dto.status, dto.url.as_deref(), dto.target),
        (
            DeploymentStatus::Live,
            Some("http://b"),
            DeployTarget::Local
        )
    );
    let all: Vec<_> = store
        .deployments(fx.project)
        .await
        .unwrap()
        .into_iter()
        .map(|d| (d.id, d.status))
        .collect();
    assert_eq!(
        all,
        [
            (second.id, DeploymentStatus::Live),
            (first.id, DeploymentStatus::Superseded)
        ]
    );
    let live_ids: Vec<_> = store
        .live_deployments()
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.id)
        .collect();
    assert_eq!(live_ids, [second.id]);

    // A superseded deployment never comes back.
    let err = store
        .promote_deployment(first.id, "http://a")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::InvalidTransition { .. }), "{err}");

    // A failed new deployment ends rolled back; the live one stays live.
    let third = fx.deployment(&[], &[]).await;
    let rolled = store
        .fail_deployment(
            third.id,
            DeploymentStatus::RolledBack,
            "health check failed",
        )
        .await
        .unwrap();
    assert_eq!(rolled.status, DeploymentStatus::RolledBack);
    assert_eq!(rolled.failure.as_deref(), Some("health check failed"));
    let again = store
        .fail_deployment(third.id, DeploymentStatus::RolledBack, "again")
        .await
        .unwrap();
    assert_eq!(again.failure.as_deref(), Some("health check failed"));
    let err = store
        .fail_deployment(third.id, DeploymentStatus::Failed, "x")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::InvalidTransition { .. }), "{err}");
    let err = store
        .fail_deployment(third.id, DeploymentStatus::Live, "x")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid { .. }), "{err}");
    let err = store
        .promote_deployment(third.id, "http://c")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::InvalidTransition { .. }), "{err}");
    assert_eq!(
        store.live_deployment(fx.project).await.unwrap().unwrap().id,
        second.id
    );

    // Bypassing the store, the database itself refuses a second live deployment.
    let fourth = fx.deployment(&[], &[]).await;
    let err = sqlx::query("UPDATE deployments SET status = 'live' WHERE id = $1")
        .bind(fourth.id.as_uuid())
        .execute(store.pool())
        .await
        .map_err(StoreError::from)
        .unwrap_err();
    assert_eq!(err.constraint(), Some("deployments_one_live_per_project"));

    // Running state is recorded, and only for deployments that are not over.
    let running = store
        .set_deployment_running(fourth.id, 18001, 4242)
        .await
        .unwrap();
    assert_eq!((running.port, running.pid), (Some(18001), Some(4242)));
    assert!(!store.clear_deployment_pid(fourth.id, 4343).await.unwrap());
    assert!(store.clear_deployment_pid(fourth.id, 4242).await.unwrap());
    assert_eq!(
        store.deployment(fourth.id).await.unwrap().unwrap().pid,
        None
    );
    let err = store
        .set_deployment_running(third.id, 18002, 4242)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::InvalidTransition { .. }), "{err}");
}

#[tokio::test]
async fn ports_are_distinct_skip_busy_ones_and_are_reused_after_release() {
    let fx = Fixture::new().await;
    let store = fx.store();
    // Below the ephemeral range (32768–60999), so no outgoing connection can hold one.
    let range = 10_210..=10_213;
    // Something outside artel listens on the first port.
    let outsider = std::net::TcpListener::bind(("127.0.0.1", 10_210)).unwrap();
    let ids: Vec<DeploymentId> = (0..4).map(|_| DeploymentId::new()).collect();
    for id in &ids {
        sqlx::query(
            "INSERT INTO deployments (id, project_id, task_id, commit_sha) \
             VALUES ($1, $2, $3, '0123abc')",
        )
        .bind(id.as_uuid())
        .bind(fx.project.as_uuid())
        .bind(fx.task.as_uuid())
        .execute(store.pool())
        .await
        .unwrap();
    }
    let mut got = Vec::new();
    for id in &ids[..3] {
        got.push(
            store
                .allocate_port(fx.project, *id, range.clone())
                .await
                .unwrap(),
        );
    }
    assert_eq!(got, [10_211, 10_212, 10_213]);
    // Asking again for the same deployment answers the port it holds.
    assert_eq!(
        store
            .allocate_port(fx.project, ids[1], range.clone())
            .await
            .unwrap(),
        10_212
    );
    let err = store
        .allocate_port(fx.project, ids[3], range.clone())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Exhausted { .. }), "{err}");
    assert_eq!(err.class(), ErrorClass::Retryable);

    store.release_ports(ids[1]).await.unwrap();
    assert_eq!(
        store
            .allocate_port(fx.project, ids[3], range.clone())
            .await
            .unwrap(),
        10_212
    );
    drop(outsider);
    assert_eq!(
        store
            .allocate_port(fx.project, ids[1], range.clone())
            .await
            .unwrap(),
        10_210
    );

    // Concurrent allocations never share a port.
    let wide = 11_220..=11_239;
    let mut more = Vec::new();
    for _ in 0..8 {
        let id = DeploymentId::new();
        sqlx::query(
            "INSERT INTO deployments (id, project_id, task_id, commit_sha) \
             VALUES ($1, $2, $3, '0123abc')",
        )
        .bind(id.as_uuid())
        .bind(fx.project.as_uuid())
        .bind(fx.task.as_uuid())
        .execute(store.pool())
        .await
        .unwrap();
        more.push(id);
    }
    let allocations = more
        .iter()
        .map(|id| store.allocate_port(fx.project, *id, wide.clone()));
    let mut ports: Vec<u16> = futures_util::future::join_all(allocations)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    ports.sort_unstable();
    ports.dedup();
    assert_eq!(ports.len(), 8, "{ports:?}");
}

#[tokio::test]
async fn a_service_serves_and_stop_kills_its_whole_group() {
    let fx = Fixture::new().await;
    let store = fx.store();
    let target = LocalTarget::new(fx.config(11_240..=11_249), store.clone()).unwrap();
    let record = fx.deployment(&[], &[]).await;
    let workdir = record.workdir.clone().unwrap();
    let mut spec = target.spec_for(&record).await.unwrap();
    spec.env.insert("GREETING".into(), "hello".into());
    spec.env.insert("PORT".into(), "1".into());

    let running = target.start(spec).await.unwrap();
    assert!((11_240..=11_249).contains(&running.port));
    assert_eq!(running.url, format!("http://127.0.0.1:{}", running.port));
    let health = target
        .wait_healthy(&running.url, "/health", record.id)
        .await;
    assert!(health.healthy, "{health:?}");
    assert_eq!(health.status_code, Some(200));
    assert!(target.is_running(record.id));
    assert_eq!(target.exited(record.id), None);

    let seen = get_json(&format!("{}/", running.url)).await;
    assert_eq!(seen["uid"], service_uid());
    assert_eq!(seen["greeting"], "hello");
    assert_eq!(seen["home"], workdir.to_str().unwrap());
    assert_eq!(seen["database_url"], serde_json::Value::Null);
    let data_file = PathBuf::from(seen["data_file"].as_str().unwrap());
    assert_eq!(data_file, target.data_dir(fx.project).join("data.json"));
    assert_eq!(std::fs::metadata(&data_file).unwrap().uid(), service_uid());
    assert_eq!(
        std::fs::metadata(workdir.join("server.py")).unwrap().uid(),
        service_uid()
    );
    assert!(running.log.exists());

    let stored = store.deployment(record.id).await.unwrap().unwrap();
    assert_eq!(
        (stored.port, stored.pid),
        (Some(running.port), Some(running.pid))
    );
    let members = group_members(running.pid);
    assert!(
        members.len() >= 2,
        "the service and its helper: {members:?}"
    );

    target.stop(record.id).await.unwrap();
    assert_eq!(group_members(running.pid), Vec::<u32>::new());
    assert!(!target.is_running(record.id));
    let stored = store.deployment(record.id).await.unwrap().unwrap();
    assert_eq!(stored.pid, None);
    assert_eq!(fx.unreleased_ports(record.id).await, 0);
    target
        .stop(record.id)
        .await
        .expect("stopping twice is fine");
}

#[tokio::test]
async fn a_service_that_exits_at_once_is_unhealthy_with_its_log() {
    let fx = Fixture::new().await;
    let store = fx.store();
    let target = LocalTarget::new(fx.config(11_250..=11_259), store.clone()).unwrap();
    let record = fx.deployment(&["crash"], &[]).await;
    let spec = target.spec_for(&record).await.unwrap();
    let running = target.start(spec).await.unwrap();
    let began = std::time::Instant::now();
    let health = target
        .wait_healthy(&running.url, "/health", record.id)
        .await;
    assert!(!health.healthy);
    assert!(
        began.elapsed() < Duration::from_secs(10),
        "noticed the exit, not the timeout"
    );
    let detail = health.detail.unwrap();
    assert!(detail.contains("exited with code 3"), "{detail}");
    assert!(detail.contains("boom: no configuration"), "{detail}");
    assert_eq!(
        target.exited(record.id),
        Some(ServiceExit {
            code: Some(3),
            signal: None
        })
    );
    target.stop(record.id).await.unwrap();
    assert_eq!(fx.unreleased_ports(record.id).await, 0);

    // Commands that cannot run are fatal, and leave no port held.
    let mut spec = target.spec_for(&record).await.unwrap();
    spec.command = vec!["artel-no-such-program".into()];
    let err = target.start(spec.clone()).await.unwrap_err();
    assert!(matches!(err, DeployError::Spawn { .. }), "{err}");
    assert_eq!(err.class(), ErrorClass::Fatal);
    assert_eq!(fx.unreleased_ports(record.id).await, 0);
    spec.command = vec![];
    let err = target.start(spec.clone()).await.unwrap_err();
    assert!(matches!(err, DeployError::BadCommand(_)), "{err}");
    spec.command = vec!["python3".into()];
    spec.workdir = fx.dir.join("missing");
    let err = target.start(spec).await.unwrap_err();
    assert!(matches!(err, DeployError::BadWorkdir { .. }), "{err}");

    // A secret that is not stored is the user's to give.
    let keyed = store.clone().with_master_key(MasterKey::generate());
    let needs_secret = fx.deployment_on(&keyed, &[], &["BOT_TOKEN"]).await;
    let target = LocalTarget::new(fx.config(11_250..=11_259), keyed).unwrap();
    let err = target.spec_for(&needs_secret).await.unwrap_err();
    assert!(matches!(err, DeployError::MissingSecret { .. }), "{err}");
    assert_eq!(err.class(), ErrorClass::Fatal);
}

#[tokio::test]
async fn restore_live_after_a_crash_kills_the_leftover_and_serves_again() {
    let fx = Fixture::new().await;
    let store = fx.store().clone().with_master_key(MasterKey::generate());
    store
        .set_secret(fx.project, "GREETING", &SecretValue::new("from the vault"))
        .await
        .unwrap();
    let config = fx.config(11_260..=11_269);
    let record = fx.deployment_on(&store, &[], &["GREETING"]).await;

    let target = LocalTarget::new(config.clone(), store.clone()).unwrap();
    let spec = target.spec_for(&record).await.unwrap();
    let first = target.start(spec).await.unwrap();
    let health = target.wait_healthy(&first.url, "/health", record.id).await;
    assert!(health.healthy, "{health:?}");
    store
        .promote_deployment(record.id, &first.url)
        .await
        .unwrap();

    // artel "crashes": the target is gone without stopping anything.
    drop(target);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !group_members(first.pid).is_empty(),
        "the service outlives the crash"
    );

    let target = LocalTarget::new(config.clone(), store.clone()).unwrap();
    let restored = target.restore_live().await.unwrap();
    assert_eq!(restored.len(), 1);
    assert_eq!(restored[0].deployment, record.id);
    let (second, health) = restored[0].outcome.as_ref().unwrap();
    assert!(health.healthy, "{health:?}");
    assert_eq!(second.port, first.port, "same port, same URL");
    assert_ne!(second.pid, first.pid);
    assert_eq!(
        group_members(first.pid),
        Vec::<u32>::new(),
        "the leftover group is gone"
    );
    let seen = get_json(&format!("{}/", second.url)).await;
    assert_eq!(seen["greeting"], "from the vault");
    let stored = store.deployment(record.id).await.unwrap().unwrap();
    assert_eq!(
        (stored.status, stored.pid, stored.url.as_deref()),
        (
            DeploymentStatus::Live,
            Some(second.pid),
            Some(second.url.as_str())
        )
    );

    // An orderly shutdown stops the service but keeps it live, with its port.
    target.stop_all().await;
    assert_eq!(group_members(second.pid), Vec::<u32>::new());
    let stored = store.deployment(record.id).await.unwrap().unwrap();
    assert_eq!((stored.status, stored.pid), (DeploymentStatus::Live, None));
    assert_eq!(fx.unreleased_ports(record.id).await, 1);

    // The next start brings it back on the same port.
    let target = LocalTarget::new(config, store.clone()).unwrap();
    let restored = target.restore_live().await.unwrap();
    let (third, health) = restored[0].outcome.as_ref().unwrap();
    assert!(health.healthy, "{health:?}");
    assert_eq!(third.port, first.port);
    target.stop(record.id).await.unwrap();
    assert_eq!(group_members(third.pid), Vec::<u32>::new());
    assert_eq!(fx.unreleased_ports(record.id).await, 0);
}

/// A leftover group that is no longer the service's (another uid or directory) is left alone.
#[tokio::test]
async fn a_recorded_pid_that_is_someone_elses_is_not_killed() {
    let fx = Fixture::new().await;
    let store = fx.store();
    let record = fx.deployment(&[], &[]).await;
    // A process of ours (artel's uid, another directory) in its own group, recorded as if
    // it were the deployment's.
    let mut stranger = std::process::Command::new("sleep")
        .arg("1000")
        .current_dir(&fx.dir)
        .process_group(0)
        .spawn()
        .unwrap();
    let pid = stranger.id();
    store
        .set_deployment_running(record.id, 11_279, pid)
        .await
        .unwrap();
    let target = LocalTarget::new(fx.config(11_270..=11_279), store.clone()).unwrap();
    target.stop(record.id).await.unwrap();
    assert_eq!(group_members(pid), [pid], "the stranger lives on");
    assert_eq!(
        store.deployment(record.id).await.unwrap().unwrap().pid,
        None
    );
    stranger.kill().unwrap();
    stranger.wait().unwrap();
}
