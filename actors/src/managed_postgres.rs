//! The embedded default database: a private PostgreSQL cluster in artel's data dir.
//!
//! With no `DATABASE_URL`, artel runs its own cluster so a fresh machine needs nothing but the
//! PostgreSQL server binaries: `initdb` once, `pg_ctl start` on every start (reusing a cluster
//! that is already running), `pg_ctl stop` on shutdown. The cluster listens on a Unix socket
//! inside its own directory only — no TCP port to collide with, nothing reachable from the
//! network. PostgreSQL refuses to run as root, so when artel is root the cluster's files
//! belong to, and its processes run as, the `postgres` user.

use std::ffi::OsStr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::process::Command;

/// The database artel creates inside its cluster.
pub const DATABASE: &str = "artel";
/// The superuser `initdb` creates.
pub const SUPERUSER: &str = "postgres";
/// The port number in the socket's name (`.s.PGSQL.<port>`); nothing listens on TCP.
pub const SOCKET_PORT: u16 = 5432;

/// Why the managed cluster could not be set up. All are fatal: the operator must act.
#[derive(Debug, thiserror::Error)]
pub enum ManagedPostgresError {
    /// No server binaries on this machine.
    #[error(
        "no PostgreSQL server binaries found (looked for initdb and pg_ctl on PATH and in \
         /usr/lib/postgresql/*/bin). Install them (Debian: `apt-get install postgresql`) or set \
         DATABASE_URL to use an existing server"
    )]
    NoBinaries,
    /// Running as root, but there is no unprivileged account to run the server as.
    #[error(
        "artel runs as root and PostgreSQL refuses to; no `postgres` user exists to run it as. \
         Create one (`useradd --system postgres`), run artel as another user, or set DATABASE_URL"
    )]
    NoPostgresUser,
    /// A command failed; its output says why.
    #[error("`{command}` failed ({status}): {output}")]
    Command {
        /// The command line.
        command: String,
        /// Its exit status.
        status: String,
        /// The tail of what it printed.
        output: String,
    },
    /// The data dir could not be prepared.
    #[error(
        "cannot prepare {path}: {source}. Check that the directory and its parents are writable and searchable by the server's user"
    )]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The server started but never accepted connections.
    #[error(
        "the managed PostgreSQL in {0} did not become ready within {1:?}; see its log, {0}/server.log"
    )]
    NotReady(PathBuf, Duration),
}

impl artel_messages::Classify for ManagedPostgresError {
    fn class(&self) -> artel_messages::ErrorClass {
        match self {
            Self::NotReady(..) => artel_messages::ErrorClass::Retryable,
            _ => artel_messages::ErrorClass::Fatal,
        }
    }
}

/// A private cluster under `<data dir>/postgres`.
#[derive(Debug, Clone)]
pub struct ManagedPostgres {
    dir: PathBuf,
    bin: PathBuf,
    run_as: Option<(u32, u32)>,
}

impl ManagedPostgres {
    /// Finds the server binaries and decides which user runs the cluster under `data_dir`.
    pub fn locate(data_dir: &Path) -> Result<Self, ManagedPostgresError> {
        let bin = find_binaries().ok_or(ManagedPostgresError::NoBinaries)?;
        let run_as = if is_root() {
            Some(lookup_user(SUPERUSER).ok_or(ManagedPostgresError::NoPostgresUser)?)
        } else {
            None
        };
        Ok(Self {
            dir: data_dir.join("postgres"),
            bin,
            run_as,
        })
    }

    /// The cluster's directory (data, socket and log live under it).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn socket_dir(&self) -> PathBuf {
        self.dir.join("run")
    }

    /// The connection URL (Unix socket) for the artel database.
    pub fn url(&self) -> String {
        format!(
            "postgres://{SUPERUSER}@localhost:{SOCKET_PORT}/{DATABASE}?host={}",
            self.socket_dir().display()
        )
    }

    /// Initializes the cluster if needed, starts it unless it is already running, waits until
    /// it accepts connections and creates the artel database. Returns the connection URL.
    pub async fn start(&self) -> Result<String, ManagedPostgresError> {
        self.prepare_dirs()?;
        if !self.data().join("PG_VERSION").exists() {
            tracing::info!(dir = %self.data().display(), "initializing the managed PostgreSQL cluster");
            self.run(
                "initdb",
                [
                    OsStr::new("-D"),
                    self.data().as_os_str(),
                    OsStr::new("-U"),
                    OsStr::new(SUPERUSER),
                    OsStr::new("--auth=trust"),
                    OsStr::new("-E"),
                    OsStr::new("UTF8"),
                ],
            )
            .await?;
        }
        if self.is_ready().await {
            tracing::info!(dir = %self.dir.display(), "reusing the running managed PostgreSQL");
        } else {
            let options = format!(
                "-c listen_addresses='' -k {} -p {SOCKET_PORT}",
                self.socket_dir().display()
            );
            self.run(
                "pg_ctl",
                [
                    OsStr::new("-D"),
                    self.data().as_os_str(),
                    OsStr::new("-l"),
                    self.dir.join("server.log").as_os_str(),
                    OsStr::new("-o"),
                    OsStr::new(&options),
                    OsStr::new("-w"),
                    OsStr::new("-t"),
                    OsStr::new("60"),
                    OsStr::new("start"),
                ],
            )
            .await?;
        }
        self.wait_ready(Duration::from_secs(60)).await?;
        self.create_database().await?;
        Ok(self.url())
    }

    /// Stops the cluster (fast shutdown: running queries are cancelled, data is safe).
    pub async fn stop(&self) -> Result<(), ManagedPostgresError> {
        if !self.data().join("postmaster.pid").exists() {
            return Ok(());
        }
        self.run(
            "pg_ctl",
            [
                OsStr::new("-D"),
                self.data().as_os_str(),
                OsStr::new("-m"),
                OsStr::new("fast"),
                OsStr::new("-w"),
                OsStr::new("stop"),
            ],
        )
        .await
        .map(drop)
    }

    /// True when the server accepts connections on its socket.
    pub async fn is_ready(&self) -> bool {
        let socket = self.socket_dir();
        let mut cmd = self.command("pg_isready");
        cmd.arg("-q")
            .arg("-h")
            .arg(&socket)
            .arg("-p")
            .arg(SOCKET_PORT.to_string());
        matches!(cmd.status().await, Ok(status) if status.success())
    }

    async fn wait_ready(&self, limit: Duration) -> Result<(), ManagedPostgresError> {
        let deadline = tokio::time::Instant::now() + limit;
        while tokio::time::Instant::now() < deadline {
            if self.is_ready().await {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(ManagedPostgresError::NotReady(self.dir.clone(), limit))
    }

    async fn create_database(&self) -> Result<(), ManagedPostgresError> {
        let socket = self.socket_dir();
        let mut cmd = self.command("psql");
        cmd.arg("-h")
            .arg(&socket)
            .arg("-p")
            .arg(SOCKET_PORT.to_string())
            .args(["-U", SUPERUSER, "-d", "postgres", "-tAc"])
            .arg(format!(
                "SELECT 1 FROM pg_database WHERE datname = '{DATABASE}'"
            ));
        let exists = output_of(&mut cmd, "psql").await?;
        if exists.trim() != "1" {
            let mut cmd = self.command("createdb");
            cmd.arg("-h")
                .arg(&socket)
                .arg("-p")
                .arg(SOCKET_PORT.to_string())
                .args(["-U", SUPERUSER, DATABASE]);
            output_of(&mut cmd, "createdb").await?;
        }
        Ok(())
    }

    fn prepare_dirs(&self) -> Result<(), ManagedPostgresError> {
        for dir in [self.dir.clone(), self.socket_dir()] {
            std::fs::create_dir_all(&dir).map_err(|source| ManagedPostgresError::Io {
                path: dir.clone(),
                source,
            })?;
            if let Some((uid, gid)) = self.run_as {
                std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).map_err(|source| {
                    ManagedPostgresError::Io {
                        path: dir.clone(),
                        source,
                    }
                })?;
            }
        }
        Ok(())
    }

    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        let mut std_cmd = std::process::Command::new(if path.exists() {
            path.into_os_string()
        } else {
            program.into()
        });
        if let Some((uid, gid)) = self.run_as {
            std_cmd.uid(uid).gid(gid);
            // The server's user cannot read root's working directory.
            std_cmd.current_dir("/");
        }
        std_cmd.env("LC_ALL", "C");
        let mut cmd = Command::from(std_cmd);
        cmd.kill_on_drop(true);
        cmd
    }

    async fn run<'a>(
        &self,
        program: &str,
        args: impl IntoIterator<Item = &'a OsStr>,
    ) -> Result<String, ManagedPostgresError> {
        let mut cmd = self.command(program);
        cmd.args(args);
        output_of(&mut cmd, program).await
    }
}

async fn output_of(cmd: &mut Command, name: &str) -> Result<String, ManagedPostgresError> {
    let out = cmd
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .map_err(|source| ManagedPostgresError::Io {
            path: PathBuf::from(name),
            source,
        })?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        Ok(text)
    } else {
        let tail: String = text
            .lines()
            .rev()
            .take(8)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n");
        Err(ManagedPostgresError::Command {
            command: name.to_owned(),
            status: out.status.to_string(),
            output: tail,
        })
    }
}

/// The directory holding `initdb` and `pg_ctl`: PATH first, then Debian's versioned dirs
/// (newest version first).
fn find_binaries() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>());
    let mut debian: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .collect();
    debian.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    debian.reverse();
    on_path
        .chain(debian)
        .find(|dir| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file())
}

fn is_root() -> bool {
    // The owner of our own /proc entry is our effective uid; no libc call needed.
    std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false)
}

/// `(uid, gid)` of a user from /etc/passwd.
fn lookup_user(name: &str) -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        if fields.next()? != name {
            return None;
        }
        let uid = fields.nth(1)?.parse().ok()?;
        let gid = fields.next()?.parse().ok()?;
        Some((uid, gid))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_user_from_passwd() {
        assert_eq!(lookup_user("root"), Some((0, 0)));
        assert_eq!(lookup_user("no-such-user-artel"), None);
    }

    #[test]
    fn the_url_points_at_the_private_socket() {
        let pg = ManagedPostgres {
            dir: PathBuf::from("/var/lib/artel/postgres"),
            bin: PathBuf::from("/usr/lib/postgresql/15/bin"),
            run_as: None,
        };
        assert_eq!(
            pg.url(),
            "postgres://postgres@localhost:5432/artel?host=/var/lib/artel/postgres/run"
        );
    }
}
