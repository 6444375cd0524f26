//! For the tests that run a generated Python service: a temporary project directory, the
//! generated files written into it, its manifest, the environment a deploy gives it, its
//! commands run, a free port and the service's docstring.

use artel_actors::agent::manifest::Manifest;
use artel_actors::agent::template::GeneratedFile;
use artel_messages::env_analyzer::EnvSource;
use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use tokio::process::Command;

/// Where `python3` is looked up: the system's, never a user's shims.
pub const PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// A directory removed when the test ends.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new() -> Self {
        let path = std::env::temp_dir().join(format!("artel-service-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir(&path).expect("create the temp dir");
        Self(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Writes `files` into `dir`; each path must be relative.
pub fn write(dir: &Path, files: &[GeneratedFile]) {
    for file in files {
        assert!(
            Path::new(&file.path).is_relative(),
            "{} is relative",
            file.path
        );
        std::fs::write(dir.join(&file.path), &file.contents).expect("write a generated file");
    }
}

/// The project's `artel.json`, which must parse.
pub fn manifest(dir: &Path) -> Manifest {
    let text = std::fs::read_to_string(dir.join("artel.json")).expect("read artel.json");
    Manifest::parse(&text).expect("the generated manifest parses")
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    listener.local_addr().expect("local addr").port()
}

/// The first line of the docstring of the `app.py` in `dir`, as Python reads it.
pub fn app_docstring(dir: &Path) -> String {
    let output = std::process::Command::new("python3")
        .args(["-c", "import app; print(app.__doc__.splitlines()[0])"])
        .current_dir(dir)
        .env_clear()
        .env("PATH", PATH)
        .output()
        .expect("import the service");
    assert!(output.status.success(), "app.py imports: {output:?}");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Runs `command` in `dir` with only `env` (and the system `PATH`); answers whether it passed
/// and what it printed.
pub async fn run(dir: &Path, command: &[String], env: &BTreeMap<String, String>) -> (bool, String) {
    let output = Command::new(&command[0])
        .args(&command[1..])
        .current_dir(dir)
        .env_clear()
        .env("PATH", PATH)
        .envs(env)
        .output()
        .await
        .expect("run a command");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

/// The environment the manifest asks for, as a deploy would give it; `skip` is left out.
pub fn environment(dir: &Path, port: u16, skip: Option<&str>) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    for var in manifest(dir).env {
        let value = match (var.name.as_str(), var.source) {
            ("PORT", _) => port.to_string(),
            ("DATA_FILE", _) => dir.join("data.json").display().to_string(),
            (_, EnvSource::Generated) => "generated-secret".to_owned(),
            (_, EnvSource::User) => "users-secret".to_owned(),
            (name, EnvSource::Target) => panic!("no target value for {name}"),
        };
        if skip != Some(var.name.as_str()) {
            env.insert(var.name, value);
        }
    }
    env
}
