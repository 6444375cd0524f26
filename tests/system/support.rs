//! Shared by the system tests: a running `artel up` child process, test databases, ports.

use sqlx::{Connection, Executor, PgConnection};
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const FALLBACK_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:54329/postgres";

/// A fresh, empty database on the test server (artel migrates it itself).
pub async fn fresh_database() -> String {
    let admin =
        std::env::var("ARTEL_TEST_DATABASE_URL").unwrap_or_else(|_| FALLBACK_DATABASE_URL.into());
    let mut conn = PgConnection::connect(&admin).await.unwrap_or_else(|err| {
        panic!("cannot reach the test Postgres at {admin} ({err}); run `. .ci/services.sh`")
    });
    let name = format!("artel_sys_{}", uuid::Uuid::new_v4().simple());
    conn.execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .expect("create a test database");
    let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
    format!("{base}/{name}")
}

/// A data dir the managed PostgreSQL (running as `postgres` under root) can reach.
pub fn data_dir(tag: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("artel-sys-{tag}-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("create the data dir");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    dir
}

/// A free TCP port on loopback.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A fresh, well-formed API key (`artel_` + 40 hex).
pub fn new_key() -> String {
    format!(
        "artel_{}{}",
        uuid::Uuid::new_v4().simple(),
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    )
}

/// `artel up` as a child process; killed when dropped.
pub struct Artel {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// An operator API key (`ARTEL_ADMIN_KEY`, given or made up for the test).
    pub key: String,
    stdout: BufReader<std::process::ChildStdout>,
    /// Everything artel wrote on stderr so far (its log), when started with
    /// [`up_logged`](Self::up_logged).
    pub log: Option<std::sync::Arc<std::sync::Mutex<String>>>,
}

impl Artel {
    /// Starts `artel up` on a free port with `env` (plus an `ARTEL_ADMIN_KEY` made up for the
    /// test unless `env` has one), and waits for its address line.
    pub fn up(env: &[(&str, &str)]) -> Self {
        let key = env
            .iter()
            .find(|(k, _)| *k == "ARTEL_ADMIN_KEY")
            .map(|(_, v)| v.to_string())
            .unwrap_or_else(new_key);
        let mut env = env.to_vec();
        env.push(("ARTEL_ADMIN_KEY", &key));
        let mut artel = Self::up_without_admin_key(&env);
        artel.key = key;
        artel
    }

    /// Starts `artel up` with exactly `env` (no made-up admin key: a first start creates and
    /// prints one), and waits for its address line.
    pub fn up_without_admin_key(env: &[(&str, &str)]) -> Self {
        Self::spawn(env, false)
    }

    /// [`up`](Self::up), keeping what artel logs on stderr in [`log`](Self::log) (and still
    /// echoing it).
    pub fn up_logged(env: &[(&str, &str)]) -> Self {
        let key = new_key();
        let mut env = env.to_vec();
        env.push(("ARTEL_ADMIN_KEY", &key));
        let mut artel = Self::spawn(&env, true);
        artel.key = key;
        artel
    }

    fn spawn(env: &[(&str, &str)], keep_log: bool) -> Self {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_artel"));
        cmd.arg("up")
            .env_remove("DATABASE_URL")
            .env_remove("REDIS_URL")
            .env_remove("ARTEL_ADMIN_KEY")
            .env("ARTEL_HTTP__LISTEN", "127.0.0.1:0")
            .env("ARTEL_LOG", "info")
            // Local workers unless a test asks for Docker (`auto` would pick it here).
            .env("ARTEL_WORKERS__RUNTIME", "process")
            // The spec is taken as written unless a test answers the question itself.
            .env("ARTEL_ANALYST__CONFIRM", "false")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        if keep_log {
            cmd.stderr(Stdio::piped());
        }
        let mut child = cmd.spawn().expect("artel runs");
        let log = child.stderr.take().map(|stderr| {
            let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
            let kept = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    eprintln!("{line}");
                    let mut kept = kept.lock().unwrap_or_else(|e| e.into_inner());
                    kept.push_str(&line);
                    kept.push('\n');
                }
            });
            log
        });
        let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut line = String::new();
        stdout
            .read_line(&mut line)
            .expect("artel prints its address");
        let url = line
            .trim()
            .strip_prefix("artel is up on ")
            .unwrap_or_else(|| panic!("unexpected first line from artel up: {line:?}"))
            .to_owned();
        Self {
            child,
            url,
            key: String::new(),
            stdout,
            log,
        }
    }

    /// The next line artel prints on stdout.
    pub fn read_line(&mut self) -> String {
        let mut line = String::new();
        self.stdout
            .read_line(&mut line)
            .expect("read artel's stdout");
        line
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A request to `path` (e.g. `/api/v1/projects`) with the operator key.
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        reqwest::Client::new()
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(&self.key)
            .timeout(Duration::from_secs(30))
    }

    /// GETs `path` with the operator key; (status, JSON body).
    pub async fn get(&self, path: &str) -> (u16, serde_json::Value) {
        let response = self
            .request(reqwest::Method::GET, path)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let status = response.status().as_u16();
        (
            status,
            response.json().await.unwrap_or(serde_json::Value::Null),
        )
    }

    /// Sends SIGTERM and waits for a clean exit; returns the rest of stdout.
    pub fn terminate(mut self) -> String {
        use nix::sys::signal::{Signal, kill};
        use nix::unistd::Pid;
        let pid = Pid::from_raw(self.child.id() as i32);
        kill(pid, Signal::SIGTERM).expect("send SIGTERM");
        let mut rest = String::new();
        for line in (&mut self.stdout).lines() {
            rest.push_str(&line.expect("stdout line"));
            rest.push('\n');
        }
        let status = self.child.wait().expect("artel exits");
        assert!(
            status.success(),
            "artel up exited with {status}; stdout: {rest}"
        );
        rest
    }
}

impl Drop for Artel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// GETs `url` and returns (status, JSON body).
pub async fn get_json(url: &str) -> (u16, serde_json::Value) {
    let response = reqwest::Client::new()
        .get(url)
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = response.status().as_u16();
    (status, response.json().await.expect("a JSON body"))
}

/// Polls `check` every 100 ms until it returns true or `within` passes.
pub async fn eventually<F, Fut>(within: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    eventually_some(within, what, || {
        let done = check();
        async move { done.await.then_some(()) }
    })
    .await
}

/// Polls `check` every 100 ms until it answers something, and answers that; fails the test
/// when `within` passes first.
pub async fn eventually_some<T, F, Fut>(within: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(found) = check().await {
            return found;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A Redis server of this test's own, so stopping it disturbs no other test.
pub struct OwnRedis {
    /// Its port.
    pub port: u16,
    child: Option<std::process::Child>,
}

impl OwnRedis {
    /// Starts `redis-server` on `port` (no persistence).
    pub fn start(port: u16) -> Self {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
            ])
            .args(["--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server is installed");
        Self {
            port,
            child: Some(child),
        }
    }

    /// Kills it (an outage).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.stop();
    }
}
