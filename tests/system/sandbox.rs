//! Issue 19's attacks, tried for real through the front door: an agent's command (a `cli`
//! agent, which runs whatever it likes in its worker) goes after artel's managed PostgreSQL,
//! artel's keys and another project's repository — and is refused. The same script also
//! reads its own checkout, so a report of "refused" everywhere cannot come from a broken
//! script.

use crate::api::Client;
use crate::support::{Artel, data_dir, eventually};
use serde_json::json;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const JOB: Duration = Duration::from_secs(180);

/// The attacking agent: `attack.sh <data dir> <socket dir> <victim-file>`. Each attempt
/// appends `label: open …` or `label: refused …` to `attacks.txt`, which it commits.
const ATTACK: &str = r#"#!/bin/sh
DATA="$1"; SOCKET="$2"; VICTIM_FILE="$3"
REPORT="$PWD/attacks.txt"
: > "$REPORT"
attempt() {
  label=$1; shift
  if out=$("$@" 2>&1); then
    printf '%s: open %s\n' "$label" "$(printf '%s' "$out" | tr '\n' ' ' | cut -c1-300)" >> "$REPORT"
  else
    printf '%s: refused %s\n' "$label" "$(printf '%s' "$out" | tr '\n' ' ' | cut -c1-300)" >> "$REPORT"
  fi
}
attempt own-checkout cat .git/HEAD
attempt master-key cat "$DATA/master.key"
attempt admin-key cat "$DATA/admin.key"
attempt postgres-password cat "$DATA/postgres.password"
attempt data-dir-listing ls "$DATA/postgres"
attempt psql-superuser psql -w -h "$SOCKET" -p 5432 -U postgres -d postgres -c 'select 1'
attempt psql-artel psql -w -h "$SOCKET" -p 5432 -U postgres -d artel -c 'select 1'
attempt repos-listing ls "$DATA/repos"
if [ -f "$VICTIM_FILE" ]; then
  VICTIM=$(cat "$VICTIM_FILE")
  attempt victim-head cat "$VICTIM/HEAD"
  attempt victim-clone git clone -q "$VICTIM" "$TMPDIR/stolen"
fi
git add attacks.txt
git commit -q -m "what the sandbox let through"
"#;

/// `git args…` as artel's own user (the test runs as it), answering stdout.
fn git(args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .expect("run git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The bare repository of `project` under `data_dir`, once it exists.
fn repo_of(data_dir: &Path, project: &str) -> Option<PathBuf> {
    std::fs::read_dir(data_dir.join("repos"))
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&format!("{project}-")) && n.ends_with(".git"))
        })
}

/// The report the agent committed in `repo` (on its task branch), once there is one.
fn report_in(repo: &Path) -> Option<String> {
    let dir = format!("--git-dir={}", repo.display());
    let commit = git(&[
        &dir,
        "log",
        "--all",
        "-1",
        "--format=%H",
        "--",
        "attacks.txt",
    ]);
    let commit = commit.trim();
    (!commit.is_empty()).then(|| git(&[&dir, "show", &format!("{commit}:attacks.txt")]))
}

/// Starts an engineering task for a new project `name` and waits for the agent's report.
async fn run_agent(artel: &Artel, data_dir: &Path, name: &str) -> String {
    let operator = Client::new(&artel.url, Some(&artel.key));
    let (status, project) = operator
        .post("/api/v1/projects", json!({ "name": name }))
        .await;
    assert_eq!(status, 201, "{project}");
    let (status, task) = operator
        .post(
            &format!("/api/v1/projects/{name}/tasks"),
            json!({ "kind": "engineering", "description": "a notes service with a REST API" }),
        )
        .await;
    assert_eq!(status, 202, "{task}");
    let mut report = None;
    eventually(JOB, "the agent's report committed", || {
        let found = repo_of(data_dir, name).and_then(|r| report_in(&r));
        let done = found.is_some();
        report = found;
        async move { done }
    })
    .await;
    report.expect("a report")
}

/// One label's line in the report.
fn line<'a>(report: &'a str, label: &str) -> &'a str {
    report
        .lines()
        .find(|l| l.starts_with(&format!("{label}: ")))
        .unwrap_or_else(|| panic!("no {label} line in the report:\n{report}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn an_agent_cannot_reach_the_managed_database_the_keys_or_another_project() {
    let dir = data_dir("attacks");
    let scripts = dir.with_extension("scripts");
    std::fs::create_dir_all(&scripts).expect("scripts dir");
    std::fs::set_permissions(&scripts, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let attack = scripts.join("attack.sh");
    std::fs::write(&attack, ATTACK).expect("write the attack");
    std::fs::set_permissions(&attack, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let victim_file = scripts.join("victim");

    let cluster =
        artel_actors::managed_postgres::ManagedPostgres::locate(&dir).expect("locate the cluster");
    let socket = cluster.socket_dir_path();
    let command = format!(
        "{} {} {} {}",
        attack.display(),
        dir.display(),
        socket.display(),
        victim_file.display()
    );
    let first_uid = (2_150_000_000 + (std::process::id() % 10_000) * 100).to_string();
    let mut artel = Artel::up_without_admin_key(&[
        ("ARTEL_DATA_DIR", dir.to_str().expect("utf-8 path")),
        ("ARTEL_AGENT__KIND", "cli"),
        ("ARTEL_AGENT__COMMAND", &command),
        ("ARTEL_WORKERS__FIRST_UID", &first_uid),
        ("ARTEL_WORKERS__UID_COUNT", "100"),
    ]);
    // The first start made the operator key and wrote it to admin.key (one of the targets).
    artel.key = std::fs::read_to_string(dir.join("admin.key"))
        .expect("admin.key written at the first start")
        .trim()
        .to_owned();

    // The victim's code exists before the attacker's agent runs.
    run_agent(&artel, &dir, "victim").await;
    let victim = repo_of(&dir, "victim").expect("the victim's repository");
    assert!(victim.join("HEAD").is_file());
    std::fs::write(&victim_file, victim.display().to_string()).expect("point at the victim");

    let report = run_agent(&artel, &dir, "attacker").await;
    eprintln!("the attacker's report:\n{report}");

    // The script works: it reads its own checkout.
    assert!(
        line(&report, "own-checkout").contains(": open ref: refs/heads/"),
        "{report}"
    );
    // The things it went for exist, and the socket is the cluster's: artel itself gets in
    // with the password.
    for secret in ["master.key", "admin.key", "postgres.password"] {
        assert!(dir.join(secret).is_file(), "{secret} exists:\n{report}");
    }
    let password = std::fs::read_to_string(dir.join("postgres.password")).expect("password");
    let url = format!(
        "postgres://postgres:{}@localhost:5432/artel?host={}",
        password.trim(),
        socket.display()
    );
    let mut db = <sqlx::PgConnection as sqlx::Connection>::connect(&url)
        .await
        .expect("artel reaches its own database");
    let one: i32 = sqlx::query_scalar("SELECT 1")
        .fetch_one(&mut db)
        .await
        .expect("select");
    assert_eq!(one, 1);

    for label in [
        "master-key",
        "admin-key",
        "postgres-password",
        "data-dir-listing",
        "psql-superuser",
        "psql-artel",
        "repos-listing",
        "victim-head",
        "victim-clone",
    ] {
        assert!(
            line(&report, label).starts_with(&format!("{label}: refused")),
            "{label} was let through:\n{report}"
        );
    }
    // master.key is 32 raw bytes; the two text secrets must not appear at all.
    for secret in ["admin.key", "postgres.password"] {
        let value = std::fs::read_to_string(dir.join(secret)).expect("a text secret");
        let value = value.trim();
        assert!(
            value.len() >= 16 && !report.contains(value),
            "{secret}'s value is in the report:\n{report}"
        );
    }

    artel.terminate();
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&scripts);
}
