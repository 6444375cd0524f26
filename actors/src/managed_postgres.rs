//! The embedded default database: a private PostgreSQL cluster in artel's data dir.
//!
//! With no `DATABASE_URL`, artel runs its own cluster so a fresh machine needs nothing but the
//! PostgreSQL server binaries: `initdb` once, `pg_ctl start` on every start (reusing a cluster
//! that is already running), `pg_ctl stop` on shutdown. The cluster listens on a Unix socket
//! inside its own directory only — no TCP port to collide with, nothing reachable from the
//! network. PostgreSQL refuses to run as root, so when artel is root the cluster's files
//! belong to, and its processes run as, the `postgres` user.
//!
//! Workers run untrusted code on the same host, so the cluster is closed twice over:
//! - **The socket directory** (and the cluster directory around it) is mode 0700, owned by the
//!   cluster's user, and the socket itself is `unix_socket_permissions = 0700`. Under root
//!   artel reaches it anyway (root passes every permission check) and no worker uid can enter
//!   it; that is why a plain 0700 suffices and no shared group or TCP listener is needed —
//!   a group would be one more thing a worker's gid could be misconfigured into, and TCP on
//!   loopback would be reachable by every uid, leaving the password as the only lock.
//! - **SCRAM-SHA-256 passwords**: `pg_hba.conf` has no `trust` line. The superuser's password is
//!   random, made at the first start, kept in `<data dir>/postgres.password` (mode 0600, artel's
//!   user) and put only into the URL artel connects with; it is never logged and never on a
//!   command line (other users can read those in /proc).
//!
//! Clusters an older artel initialised with `--auth=trust` hold users' data: at start they are
//! upgraded in place — the password is set over the still-trusted socket (which only artel can
//! enter by now), then `pg_hba.conf` is rewritten and reloaded.

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
/// The superuser's password file, in the data dir.
pub const PASSWORD_FILE: &str = "postgres.password";

/// The `pg_hba.conf` artel writes: passwords (SCRAM) for everyone, never trust.
const HBA: &str = "# Written by artel: SCRAM-SHA-256 passwords only, never trust.\n\
local all all scram-sha-256\n\
host all all 127.0.0.1/32 scram-sha-256\n\
host all all ::1/128 scram-sha-256\n";

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
    /// The server's user cannot enter a folder on the way to the data dir.
    #[error(
        "the managed PostgreSQL runs as the `{user}` user, which cannot enter {folder} (on the way \
         to {dir}). Use a data dir that user can reach (ARTEL_DATA_DIR, e.g. /var/lib/artel), \
         let it through (`chmod o+x {folder}`), or set DATABASE_URL to use an existing server"
    )]
    Unreachable {
        /// The account the server runs as.
        user: String,
        /// The first folder it cannot traverse.
        folder: PathBuf,
        /// The cluster directory it needs.
        dir: PathBuf,
    },
    /// The cluster asks for a password, but its file is gone.
    #[error(
        "the managed PostgreSQL in {dir} needs its password, but {file} is missing; restore \
         the file, or reset the password: `ALTER ROLE postgres PASSWORD '…'` in single-user \
         mode (`postgres --single -D {dir}/data`), then write it to the file"
    )]
    NoPassword {
        /// The cluster directory.
        dir: PathBuf,
        /// The missing file.
        file: PathBuf,
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
    password_file: PathBuf,
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
            password_file: data_dir.join(PASSWORD_FILE),
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

    /// The connection URL (Unix socket, with the password) for the artel database.
    fn url_with(&self, password: &str) -> String {
        format!(
            "postgres://{SUPERUSER}:{password}@localhost:{SOCKET_PORT}/{DATABASE}?host={}",
            self.socket_dir().display()
        )
    }

    /// The socket directory: `psql -h` this.
    pub fn socket_dir_path(&self) -> PathBuf {
        self.socket_dir()
    }

    /// Initializes the cluster if needed, starts it unless it is already running, waits until
    /// it accepts connections, closes a cluster initialised with trust, and creates the artel
    /// database. Returns the connection URL, which holds the password: never log it.
    pub async fn start(&self) -> Result<String, ManagedPostgresError> {
        self.prepare_dirs()?;
        self.check_reachable().await?;
        let fresh = !self.data().join("PG_VERSION").exists();
        if !fresh && !self.password_file.exists() && !has_trust(&self.read_hba()?) {
            return Err(ManagedPostgresError::NoPassword {
                dir: self.dir.clone(),
                file: self.password_file.clone(),
            });
        }
        let password = self.password()?;
        if fresh {
            tracing::info!(dir = %self.data().display(), "initializing the managed PostgreSQL cluster");
            self.initdb(&password).await?;
        }
        if self.is_ready().await {
            tracing::info!(dir = %self.dir.display(), "reusing the running managed PostgreSQL");
        } else {
            let options = format!(
                "-c listen_addresses='' -c unix_socket_permissions=0700 -k {} -p {SOCKET_PORT}",
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
        self.close_trust(&password).await?;
        self.create_database(&password).await?;
        Ok(self.url_with(&password))
    }

    /// `initdb` with SCRAM for every connection; the password reaches it in a file only the
    /// cluster's user can read, removed right after.
    async fn initdb(&self, password: &str) -> Result<(), ManagedPostgresError> {
        let pwfile = self.dir.join(".initdb-password");
        write_private(&pwfile, password, self.run_as)?;
        let done = self
            .run(
                "initdb",
                [
                    OsStr::new("-D"),
                    self.data().as_os_str(),
                    OsStr::new("-U"),
                    OsStr::new(SUPERUSER),
                    OsStr::new("--auth=scram-sha-256"),
                    OsStr::new("--pwfile"),
                    pwfile.as_os_str(),
                    OsStr::new("-E"),
                    OsStr::new("UTF8"),
                ],
            )
            .await;
        let _ = std::fs::remove_file(&pwfile);
        done.map(drop)
    }

    fn hba(&self) -> PathBuf {
        self.data().join("pg_hba.conf")
    }

    fn read_hba(&self) -> Result<String, ManagedPostgresError> {
        let path = self.hba();
        std::fs::read_to_string(&path).map_err(|source| ManagedPostgresError::Io { path, source })
    }

    /// A cluster that still trusts local connections (initialised by an older artel): sets
    /// the password over the trusted socket, then rewrites `pg_hba.conf` and reloads it.
    async fn close_trust(&self, password: &str) -> Result<(), ManagedPostgresError> {
        if !has_trust(&self.read_hba()?) {
            return Ok(());
        }
        tracing::info!(dir = %self.dir.display(), "closing the managed PostgreSQL: password authentication instead of trust");
        // The statement is not logged (a superuser may say so for its session); the password
        // is hex, so it needs no quoting.
        let sql = format!(
            "SET log_statement = 'none';\nSET log_min_error_statement = 'panic';\n\
             ALTER ROLE {SUPERUSER} PASSWORD '{password}';\n"
        );
        let mut cmd = self.psql(password, "postgres");
        cmd.args(["-v", "ON_ERROR_STOP=1", "-q", "-f", "-"]);
        output_with_input(&mut cmd, "psql", sql.as_bytes()).await?;
        let path = self.hba();
        // Writing over the file keeps its owner (the cluster's user).
        std::fs::write(&path, HBA).map_err(|source| ManagedPostgresError::Io { path, source })?;
        self.run(
            "pg_ctl",
            [
                OsStr::new("-D"),
                self.data().as_os_str(),
                OsStr::new("reload"),
            ],
        )
        .await?;
        // The reload is asynchronous: wait until a password-less connection is refused.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while tokio::time::Instant::now() < deadline {
            let mut probe = self.psql("", "postgres");
            probe
                .env_remove("PGPASSWORD")
                .env("PGPASSFILE", "/dev/null")
                .args(["-w", "-tAc", "SELECT 1"]);
            if output_of(&mut probe, "psql").await.is_err() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(ManagedPostgresError::Command {
            command: "pg_ctl reload".to_owned(),
            status: "no effect".to_owned(),
            output: "the cluster still accepts connections without a password".to_owned(),
        })
    }

    /// The superuser's password from its file, made (random, hex) on first use.
    fn password(&self) -> Result<String, ManagedPostgresError> {
        let path = &self.password_file;
        let io = |source| ManagedPostgresError::Io {
            path: path.clone(),
            source,
        };
        match std::fs::read_to_string(path) {
            Ok(text) => {
                make_private(path).map_err(io)?;
                let text = text.trim();
                if text.is_empty() || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(io(std::io::Error::other(
                        "the password file must hold hex digits only",
                    )));
                }
                Ok(text.to_owned())
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                let password = random_hex(24).map_err(io)?;
                write_private(path, &password, None)?;
                Ok(password)
            }
            Err(err) => Err(io(err)),
        }
    }

    /// Under root, the server's user must be able to pass through every folder above its
    /// directory; answers the first it cannot as a clear error instead of initdb's raw one.
    async fn check_reachable(&self) -> Result<(), ManagedPostgresError> {
        let Some((uid, gid)) = self.run_as else {
            return Ok(());
        };
        let mut folders: Vec<&Path> = self.dir.ancestors().collect();
        folders.reverse();
        let mut probe = std::process::Command::new("/bin/sh");
        probe
            .arg("-c")
            .arg(r#"for d do [ -x "$d" ] || { printf %s "$d"; exit 1; }; done"#)
            .arg("sh")
            .args(folders)
            .uid(uid)
            .gid(gid)
            .current_dir("/");
        let out = Command::from(probe)
            .stdin(std::process::Stdio::null())
            .output()
            .await
            .map_err(|source| ManagedPostgresError::Io {
                path: PathBuf::from("/bin/sh"),
                source,
            })?;
        if out.status.success() {
            return Ok(());
        }
        let folder = String::from_utf8_lossy(&out.stdout).into_owned();
        Err(ManagedPostgresError::Unreachable {
            user: SUPERUSER.to_owned(),
            folder: if folder.is_empty() {
                self.dir.clone()
            } else {
                PathBuf::from(folder)
            },
            dir: self.dir.clone(),
        })
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

    /// `psql` over the socket as the superuser, with the password in its environment.
    fn psql(&self, password: &str, database: &str) -> Command {
        let mut cmd = self.command("psql");
        cmd.arg("-h")
            .arg(self.socket_dir())
            .arg("-p")
            .arg(SOCKET_PORT.to_string())
            .args(["-U", SUPERUSER, "-d", database])
            .env("PGPASSWORD", password);
        cmd
    }

    async fn create_database(&self, password: &str) -> Result<(), ManagedPostgresError> {
        let mut cmd = self.psql(password, "postgres");
        cmd.arg("-tAc").arg(format!(
            "SELECT 1 FROM pg_database WHERE datname = '{DATABASE}'"
        ));
        let exists = output_of(&mut cmd, "psql").await?;
        if exists.trim() != "1" {
            let mut cmd = self.psql(password, "postgres");
            cmd.arg("-c").arg(format!("CREATE DATABASE {DATABASE}"));
            output_of(&mut cmd, "psql").await?;
        }
        Ok(())
    }

    /// Makes the cluster and socket directories, owned by the cluster's user and closed to
    /// everyone else (also on clusters made before they were closed).
    fn prepare_dirs(&self) -> Result<(), ManagedPostgresError> {
        use std::os::unix::fs::PermissionsExt;
        for dir in [self.dir.clone(), self.socket_dir()] {
            let io = |source| ManagedPostgresError::Io {
                path: dir.clone(),
                source,
            };
            std::fs::create_dir_all(&dir).map_err(io)?;
            if let Some((uid, gid)) = self.run_as {
                std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).map_err(io)?;
            }
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).map_err(io)?;
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
    checked(out, name)
}

/// Runs `cmd` with `input` on its standard input.
async fn output_with_input(
    cmd: &mut Command,
    name: &str,
    input: &[u8],
) -> Result<String, ManagedPostgresError> {
    use tokio::io::AsyncWriteExt;
    let io = |source| ManagedPostgresError::Io {
        path: PathBuf::from(name),
        source,
    };
    let mut child = cmd
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(io)?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(input).await.map_err(io)?;
    }
    let out = child.wait_with_output().await.map_err(io)?;
    checked(out, name)
}

fn checked(out: std::process::Output, name: &str) -> Result<String, ManagedPostgresError> {
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

/// True when a `pg_hba.conf` lets any connection in without a password.
fn has_trust(hba: &str) -> bool {
    hba.lines().any(|line| {
        let line = line.split('#').next().unwrap_or_default();
        line.split_whitespace().any(|field| field == "trust")
    })
}

/// `bytes` random bytes from the kernel, as hex.
fn random_hex(bytes: usize) -> std::io::Result<String> {
    use std::io::Read;
    let mut buf = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut buf)?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

/// Mode 0600 on an existing file.
fn make_private(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
}

/// Writes `text` to a new file of mode 0600 (owned by `owner` when given), synced.
fn write_private(
    path: &Path,
    text: &str,
    owner: Option<(u32, u32)>,
) -> Result<(), ManagedPostgresError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let io = |source| ManagedPostgresError::Io {
        path: path.to_owned(),
        source,
    };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(io)?;
    make_private(path).map_err(io)?;
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::chown(path, Some(uid), Some(gid)).map_err(io)?;
    }
    file.write_all(text.as_bytes())
        .and_then(|()| file.write_all(b"\n"))
        .and_then(|()| file.sync_all())
        .map_err(io)
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
    fn the_url_points_at_the_private_socket_with_the_password() {
        let pg = ManagedPostgres {
            dir: PathBuf::from("/var/lib/artel/postgres"),
            password_file: PathBuf::from("/var/lib/artel/postgres.password"),
            bin: PathBuf::from("/usr/lib/postgresql/15/bin"),
            run_as: None,
        };
        assert_eq!(
            pg.url_with("ab12"),
            "postgres://postgres:ab12@localhost:5432/artel?host=/var/lib/artel/postgres/run"
        );
    }

    #[test]
    fn trust_lines_are_found_and_comments_ignored() {
        assert!(has_trust("local all all trust\n"));
        assert!(has_trust("# x\nhost all all 127.0.0.1/32   trust # old\n"));
        assert!(!has_trust(HBA));
        assert!(!has_trust("# local all all trust\nlocal all all peer\n"));
    }

    #[test]
    fn passwords_are_random_hex() {
        let a = random_hex(24).unwrap();
        assert_eq!(a.len(), 48);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(a, random_hex(24).unwrap());
    }
}
