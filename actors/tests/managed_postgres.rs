//! The managed local PostgreSQL, for real: initdb, start, reuse, stop, restart with data kept;
//! password authentication and a closed socket directory, also for a cluster an older artel
//! initialised with trust; and a clear error for a data dir the server's user cannot reach.

use artel_actors::managed_postgres::{ManagedPostgres, ManagedPostgresError, PASSWORD_FILE};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

fn is_root() -> bool {
    std::fs::metadata("/proc/self").unwrap().uid() == 0
}

/// A fresh data dir the server (the `postgres` user under root) can reach.
fn data_dir(tag: &str) -> PathBuf {
    let root = std::env::temp_dir().join(format!(
        "artel-managed-pg-{tag}-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&root).unwrap();
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755)).unwrap();
    root
}

/// The password from a URL `postgres://postgres:<password>@…`.
fn password_of(url: &str) -> String {
    let rest = url
        .strip_prefix("postgres://postgres:")
        .expect("a password");
    rest.split_once('@').unwrap().0.to_owned()
}

/// `psql` as the superuser over the cluster's socket, with `password` (or none).
fn try_psql(pg: &ManagedPostgres, password: Option<&str>, sql: &str) -> Result<String, String> {
    let mut cmd = Command::new("psql");
    cmd.arg("-h")
        .arg(pg.socket_dir_path())
        .args([
            "-p", "5432", "-U", "postgres", "-d", "artel", "-w", "-tAc", sql,
        ])
        .env_remove("PGPASSWORD")
        .env("PGPASSFILE", "/dev/null");
    if let Some(password) = password {
        cmd.env("PGPASSWORD", password);
    }
    let out = cmd.output().expect("psql runs");
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn psql(pg: &ManagedPostgres, password: &str, sql: &str) -> String {
    try_psql(pg, Some(password), sql).unwrap_or_else(|err| panic!("psql failed: {err}"))
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().mode() & 0o777
}

fn assert_closed(root: &Path, pg: &ManagedPostgres) {
    assert_eq!(mode(&root.join(PASSWORD_FILE)), 0o600);
    assert_eq!(mode(pg.dir()), 0o700);
    assert_eq!(mode(&pg.socket_dir_path()), 0o700);
    let hba = std::fs::read_to_string(pg.dir().join("data/pg_hba.conf")).unwrap();
    assert!(
        !hba.lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .any(|l| l.contains("trust")),
        "{hba}"
    );
    let err = try_psql(pg, None, "SELECT 1").expect_err("no password, no entry");
    assert!(err.contains("password"), "{err}");
    let err = try_psql(pg, Some("0123abcd"), "SELECT 1").expect_err("a wrong password fails");
    assert!(err.contains("password authentication failed"), "{err}");
}

#[tokio::test]
async fn initializes_starts_reuses_stops_and_keeps_data() {
    let root = data_dir("life");
    let pg = ManagedPostgres::locate(&root).expect("server binaries are installed");
    let url = pg
        .start()
        .await
        .expect("first start initializes and starts");
    assert!(url.starts_with("postgres://postgres:"), "a password");
    assert!(url.ends_with(&format!(
        "@localhost:5432/artel?host={}/postgres/run",
        root.display()
    )));
    let password = password_of(&url);
    assert_eq!(password.len(), 48);
    assert_eq!(
        std::fs::read_to_string(root.join(PASSWORD_FILE))
            .unwrap()
            .trim(),
        password
    );
    assert!(pg.is_ready().await);
    assert_closed(&root, &pg);
    let socket = pg.socket_dir_path().join(".s.PGSQL.5432");
    assert_eq!(mode(&socket), 0o700, "unix_socket_permissions");
    psql(
        &pg,
        &password,
        "CREATE TABLE kept (v int); INSERT INTO kept VALUES (42)",
    );

    // A second start (another artel process) reuses the running cluster.
    let again = ManagedPostgres::locate(&root).unwrap();
    assert_eq!(again.start().await.unwrap(), url);

    pg.stop().await.unwrap();
    assert!(!pg.is_ready().await);
    assert_eq!(
        pg.start().await.expect("restarts the existing cluster"),
        url
    );
    assert_eq!(psql(&pg, &password, "SELECT v FROM kept"), "42");
    pg.stop().await.unwrap();

    // The password file is artel's way in: without it a closed cluster is a clear error.
    std::fs::remove_file(root.join(PASSWORD_FILE)).unwrap();
    let err = pg.start().await.expect_err("no password file");
    assert!(
        matches!(err, ManagedPostgresError::NoPassword { .. }),
        "{err}"
    );
    assert!(err.to_string().contains(PASSWORD_FILE), "{err}");
    let _ = std::fs::remove_dir_all(&root);
}

/// Runs a server binary as the cluster's user (`postgres` under root).
fn as_server_user(program: &Path) -> Command {
    let mut cmd = Command::new(program);
    if is_root() {
        let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
        let line = passwd
            .lines()
            .find(|l| l.starts_with("postgres:"))
            .expect("a postgres user");
        let fields: Vec<&str> = line.split(':').collect();
        cmd.uid(fields[2].parse().unwrap())
            .gid(fields[3].parse().unwrap())
            .current_dir("/");
    }
    cmd
}

fn server_bin(name: &str) -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .unwrap()
        .flatten()
        .map(|e| e.path().join("bin"))
        .collect();
    versions.sort();
    versions
        .pop()
        .expect("PostgreSQL server binaries")
        .join(name)
}

#[tokio::test]
async fn a_cluster_initialised_with_trust_is_closed_at_start_and_keeps_its_data() {
    let root = data_dir("trust");
    let pg = ManagedPostgres::locate(&root).unwrap();
    // What an older artel made: a trusting cluster, running, with data in it, its socket
    // directory open to all.
    let data = pg.dir().join("data");
    let run = pg.socket_dir_path();
    std::fs::create_dir_all(&run).unwrap();
    std::fs::set_permissions(pg.dir(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o777)).unwrap();
    if is_root() {
        let status = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(pg.dir())
            .status()
            .unwrap();
        assert!(status.success());
    }
    succeeds(
        as_server_user(&server_bin("initdb"))
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8"]),
    );
    succeeds(
        as_server_user(&server_bin("pg_ctl"))
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(pg.dir().join("server.log"))
            .arg("-o")
            .arg(format!(
                "-c listen_addresses='' -k {} -p 5432",
                run.display()
            ))
            .args(["-w", "start"]),
    );
    let mut create = Command::new("psql");
    create.arg("-h").arg(&run).args([
        "-p",
        "5432",
        "-U",
        "postgres",
        "-d",
        "postgres",
        "-c",
        "CREATE DATABASE artel",
    ]);
    assert!(create.status().unwrap().success());
    assert!(
        try_psql(
            &pg,
            None,
            "CREATE TABLE kept (v int); INSERT INTO kept VALUES (7)"
        )
        .is_ok(),
        "trust lets anyone in"
    );

    let url = pg
        .start()
        .await
        .expect("the trusting cluster is reused and closed");
    let password = password_of(&url);
    assert_closed(&root, &pg);
    assert_eq!(
        psql(&pg, &password, "SELECT v FROM kept"),
        "7",
        "the data is kept"
    );

    // And it stays closed over a restart, with the same password.
    pg.stop().await.unwrap();
    assert_eq!(pg.start().await.unwrap(), url);
    assert_closed(&root, &pg);
    pg.stop().await.unwrap();
    let _ = std::fs::remove_dir_all(&root);
}

#[tokio::test]
async fn a_data_dir_the_server_user_cannot_reach_is_a_clear_error() {
    if !is_root() {
        // Without root the server runs as artel's own user, which reaches its own data dir.
        return;
    }
    // Like `mktemp -d`: a folder only root may enter.
    let private = data_dir("private");
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).unwrap();
    let root = private.join("artel");
    std::fs::create_dir_all(&root).unwrap();
    let pg = ManagedPostgres::locate(&root).unwrap();
    let err = pg
        .start()
        .await
        .expect_err("postgres cannot enter the folder");
    let text = err.to_string();
    assert!(
        matches!(err, ManagedPostgresError::Unreachable { .. }),
        "{text}"
    );
    assert!(
        text.contains(&format!("cannot enter {} ", private.display())),
        "names the folder: {text}"
    );
    assert!(
        text.contains("DATABASE_URL") && text.contains("chmod o+x"),
        "{text}"
    );
    assert!(!pg.dir().join("data").exists(), "no half-made cluster");
    let _ = std::fs::remove_dir_all(&private);
}

/// Runs `cmd` to completion and fails the test with its stderr unless it succeeded.
fn succeeds(cmd: &mut Command) {
    let out = cmd.output().expect("the command runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
