//! The local git provider against real git, in temporary directories: the Scaffolder's
//! commits, a worker's clone and task branch, fetching it back, merging it into main (fast
//! forward, merge commit, conflict), reading files and exporting trees.

use artel_actors::git::{GitError, LocalGit};
use artel_messages::{Classify, ErrorClass};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A directory removed when the test ends.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let path = std::env::temp_dir().join(format!("artel-git-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir(&path).expect("create the temp dir");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            .expect("make the temp dir searchable");
        Self(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// artel's repos under a fresh temp dir.
fn setup() -> (TempDir, LocalGit) {
    let dir = TempDir::new();
    let git = LocalGit::new(dir.path().join("repos"));
    (dir, git)
}

fn files(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(path, contents)| (path.to_string(), contents.to_string()))
        .collect()
}

/// Runs git the way a sandboxed worker does: scrubbed environment plus `worker_env`, its
/// workspace as HOME, optionally as another uid.
fn worker_git(git: &LocalGit, cwd: &Path, args: &[&str], uid: Option<(u32, u32)>) -> String {
    let mut cmd = Command::new("git");
    cmd.args(args)
        .current_dir(cwd)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", cwd)
        .envs(git.worker_env().expect("worker env"));
    if let Some((uid, gid)) = uid {
        cmd.uid(uid).gid(gid);
    }
    let out = cmd.output().expect("run git as the worker");
    assert!(
        out.status.success(),
        "worker `git {}` failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Clones project `name` into `<dir>/<ws>` and checks out `branch`, as a worker would.
fn worker_clone(git: &LocalGit, dir: &Path, ws: &str, name: &str, branch: &str) -> PathBuf {
    let url = git.clone_url(name).expect("clone url");
    worker_git(git, dir, &["clone", "--quiet", &url, ws], None);
    let workspace = dir.join(ws);
    worker_git(
        git,
        &workspace,
        &["checkout", "--quiet", "-b", branch],
        None,
    );
    workspace
}

/// Writes `path` in the worker's clone and commits everything.
fn worker_commit(git: &LocalGit, workspace: &Path, path: &str, contents: &str, message: &str) {
    let file = workspace.join(path);
    std::fs::create_dir_all(file.parent().expect("a parent")).expect("create dirs");
    std::fs::write(&file, contents).expect("write the file");
    worker_git(git, workspace, &["add", "--all"], None);
    worker_git(git, workspace, &["commit", "--quiet", "-m", message], None);
}

/// What plain git prints in the bare repository `repo`.
fn plain_git(repo: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg(format!("--git-dir={}", repo.display()))
        .args(args)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .expect("run git");
    assert!(out.status.success(), "git {args:?} failed");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The parents of `commit`.
fn parents(repo: &Path, commit: &str) -> Vec<String> {
    plain_git(repo, &["rev-list", "--parents", "-n", "1", commit])
        .split_whitespace()
        .skip(1)
        .map(str::to_owned)
        .collect()
}

/// The repos dir is artel's alone: mode 0700.
fn assert_private_root(git: &LocalGit) {
    let mode = std::fs::metadata(git.root())
        .expect("root")
        .permissions()
        .mode();
    assert_eq!(mode & 0o7777, 0o700, "the repos dir is {mode:o}");
}

#[tokio::test]
async fn create_is_idempotent_and_private_to_artel() {
    let (dir, git) = setup();
    let path = git.create_repo("shop").await.expect("create");
    assert_eq!(path, dir.path().join("repos/shop.git"));
    assert!(path.join("HEAD").is_file());
    let again = git.create_repo("shop").await.expect("create again");
    assert_eq!(again, path);
    assert_eq!(git.head("shop", "main").await.expect("head"), None);

    let head = std::fs::read_to_string(path.join("HEAD")).expect("read HEAD");
    assert_eq!(head.trim(), "ref: refs/heads/main");
    assert_private_root(&git);
    // A repos dir an older artel left searchable by everyone is closed at start.
    std::fs::set_permissions(git.root(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    git.prepare().await.expect("prepare");
    assert_private_root(&git);
    let config = std::fs::read_to_string(git.global_config_path()).expect("global config");
    assert!(config.contains("directory = *"));

    // Something else at a repository's path is not taken for one.
    let junk = dir.path().join("repos/junk.git");
    std::fs::create_dir(&junk).expect("create junk");
    std::fs::write(junk.join("notes.txt"), "hi").expect("write junk");
    assert!(matches!(
        git.create_repo("junk").await,
        Err(GitError::NotARepository(_))
    ));
}

#[tokio::test]
async fn commits_build_on_each_other() {
    let (_dir, git) = setup();
    git.create_repo("shop").await.expect("create");

    let first = git
        .commit_files(
            "shop",
            "main",
            &files(&[("README.md", "# shop\n"), ("src/app.py", "print('hi')\n")]),
            "Scaffold from template",
        )
        .await
        .expect("root commit");
    assert_eq!(first.len(), 40);
    assert_eq!(
        git.head("shop", "main").await.expect("head"),
        Some(first.clone())
    );
    let repo = git.repo_path("shop").expect("path");
    assert!(
        parents(&repo, &first).is_empty(),
        "the first commit is a root"
    );

    let second = git
        .commit_files(
            "shop",
            "main",
            &files(&[
                ("src/app.py", "print('hello')\n"),
                ("src/lib/util.py", "X = 1\n"),
            ]),
            "Second",
        )
        .await
        .expect("second commit");
    assert_eq!(parents(&repo, &second), vec![first.clone()]);
    assert_eq!(
        git.commits_between("shop", &first, &second)
            .await
            .expect("count"),
        1
    );
    assert_eq!(
        git.commits_between("shop", &second, &first)
            .await
            .expect("count"),
        0
    );
    assert!(
        git.is_ancestor("shop", &first, &second)
            .await
            .expect("ancestor")
    );
    assert!(
        !git.is_ancestor("shop", &second, &first)
            .await
            .expect("ancestor")
    );

    // Files not listed are kept; listed ones replaced.
    let read = |path: &'static str| {
        let git = git.clone();
        let second = second.clone();
        async move { git.read_file("shop", &second, path).await.expect("read") }
    };
    assert_eq!(read("README.md").await.as_deref(), Some("# shop\n"));
    assert_eq!(
        read("src/app.py").await.as_deref(),
        Some("print('hello')\n")
    );
    assert_eq!(read("src/lib/util.py").await.as_deref(), Some("X = 1\n"));
    assert_eq!(read("missing.txt").await, None);
    assert_eq!(read("src/lib").await, None, "a directory is not a file");
    assert_eq!(
        git.read_file("shop", &first, "src/lib/util.py")
            .await
            .expect("read"),
        None,
        "the file did not exist in the first commit"
    );

    // Committing the same contents again changes nothing.
    let same = git
        .commit_files(
            "shop",
            "main",
            &files(&[("README.md", "# shop\n")]),
            "Again",
        )
        .await
        .expect("no-op commit");
    assert_eq!(same, second);

    // A new branch starts from main.
    let feature = git
        .commit_files("shop", "feature", &files(&[("NOTES", "n\n")]), "Notes")
        .await
        .expect("commit on a new branch");
    assert_eq!(parents(&repo, &feature), vec![second.clone()]);
    assert_eq!(
        git.head("shop", "main").await.expect("head"),
        Some(second.clone())
    );

    // Unsafe paths are refused and commit nothing.
    for bad in [
        "../escape",
        "/etc/passwd",
        ".git/config",
        "a//b",
        "a/../../b",
    ] {
        let err = git
            .commit_files("shop", "main", &files(&[(bad, "x")]), "Bad")
            .await
            .expect_err("unsafe path accepted");
        assert!(matches!(err, GitError::InvalidPath { .. }), "{bad}: {err}");
        assert_eq!(err.class(), ErrorClass::Fatal);
    }
    assert_eq!(git.head("shop", "main").await.expect("head"), Some(second));
}

#[tokio::test]
async fn a_worker_branch_is_fetched_resolved_merged_and_exported() {
    let (dir, git) = setup();
    git.create_repo("shop").await.expect("create");
    let scaffold = git
        .commit_files(
            "shop",
            "main",
            &files(&[("README.md", "# shop\n")]),
            "Scaffold",
        )
        .await
        .expect("scaffold");

    // The worker clones, commits on its task branch; artel fetches it back.
    let ws = worker_clone(&git, dir.path(), "ws", "shop", "task/x");
    worker_commit(
        &git,
        &ws,
        "src/app.py",
        "print('task')\n",
        "Implement task x",
    );
    let worker_head = worker_git(&git, &ws, &["rev-parse", "HEAD"], None);
    let author = worker_git(&git, &ws, &["log", "-1", "--format=%an <%ae>"], None);
    assert_eq!(author, "artel <artel@localhost>");

    let fetched = git
        .fetch_branch("shop", &ws, "task/x")
        .await
        .expect("fetch");
    assert_eq!(fetched, worker_head);
    assert_eq!(
        git.head("shop", "task/x").await.expect("head"),
        Some(fetched.clone())
    );
    // Fetching again is a no-op.
    assert_eq!(
        git.fetch_branch("shop", &ws, "task/x")
            .await
            .expect("refetch"),
        fetched
    );

    // Resolving: full, abbreviated, by branch; unknown and unsafe revisions refused.
    assert_eq!(
        git.resolve_commit("shop", &fetched).await.expect("resolve"),
        fetched
    );
    assert_eq!(
        git.resolve_commit("shop", &fetched[..10])
            .await
            .expect("short"),
        fetched
    );
    assert_eq!(
        git.resolve_commit("shop", "task/x").await.expect("branch"),
        fetched
    );
    let unknown = git
        .resolve_commit("shop", &"0".repeat(40))
        .await
        .expect_err("unknown");
    assert!(
        matches!(unknown, GitError::UnknownCommit { .. }),
        "{unknown}"
    );
    assert_eq!(unknown.class(), ErrorClass::Fatal);
    assert!(matches!(
        git.resolve_commit("shop", "no-such-branch").await,
        Err(GitError::UnknownCommit { .. })
    ));
    assert!(matches!(
        git.resolve_commit("shop", "--all").await,
        Err(GitError::InvalidRev { .. })
    ));

    assert_eq!(
        git.commits_between("shop", "main", "task/x")
            .await
            .expect("count"),
        1
    );
    assert_eq!(
        git.commits_between("shop", "task/x", "main")
            .await
            .expect("count"),
        0
    );

    // main has not moved: a fast-forward; merging again changes nothing.
    let merged = git.merge_into_main("shop", "task/x").await.expect("merge");
    assert_eq!(merged, fetched);
    assert_eq!(
        git.head("shop", "main").await.expect("head"),
        Some(fetched.clone())
    );
    assert_eq!(
        git.merge_into_main("shop", "task/x")
            .await
            .expect("remerge"),
        fetched
    );
    assert!(
        git.is_ancestor("shop", &scaffold, "main")
            .await
            .expect("ancestor")
    );
    assert_eq!(
        git.read_file("shop", "main", "src/app.py")
            .await
            .expect("read")
            .as_deref(),
        Some("print('task')\n")
    );

    // The agent rewrites its task branch: allowed for task branches.
    worker_git(
        &git,
        &ws,
        &["commit", "--quiet", "--amend", "-m", "Reworded"],
        None,
    );
    let amended = worker_git(&git, &ws, &["rev-parse", "HEAD"], None);
    assert_eq!(
        git.fetch_branch("shop", &ws, "task/x")
            .await
            .expect("forced"),
        amended
    );

    // ... but not for other branches.
    worker_git(&git, &ws, &["checkout", "--quiet", "-b", "feature"], None);
    worker_commit(&git, &ws, "f.txt", "1\n", "Feature");
    git.fetch_branch("shop", &ws, "feature")
        .await
        .expect("fetch feature");
    worker_git(
        &git,
        &ws,
        &["commit", "--quiet", "--amend", "-m", "Rewritten"],
        None,
    );
    assert!(matches!(
        git.fetch_branch("shop", &ws, "feature").await,
        Err(GitError::NotFastForward { .. })
    ));
    // main never moves by a fetch; a branch the worker lacks is said so.
    assert!(matches!(
        git.fetch_branch("shop", &ws, "main").await,
        Err(GitError::ProtectedBranch(_))
    ));
    assert!(matches!(
        git.fetch_branch("shop", &ws, "task/never").await,
        Err(GitError::NoSuchBranch { .. })
    ));

    // Export: the tree, world-readable, in a new directory; a non-empty one is refused.
    let dest = dir.path().join("deploy/release-1");
    git.export("shop", &fetched, &dest).await.expect("export");
    assert_eq!(
        std::fs::read_to_string(dest.join("README.md")).expect("readme"),
        "# shop\n"
    );
    assert_eq!(
        std::fs::read_to_string(dest.join("src/app.py")).expect("app"),
        "print('task')\n"
    );
    assert!(!dest.join(".git").exists());
    let mode = std::fs::metadata(dest.join("src/app.py"))
        .expect("meta")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o644);
    let mode = std::fs::metadata(dest.join("src"))
        .expect("meta")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o755);
    let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("deploy"))
        .expect("read deploy")
        .map(|entry| entry.expect("entry").file_name())
        .collect();
    assert_eq!(leftovers, vec![std::ffi::OsString::from("release-1")]);
    assert!(matches!(
        git.export("shop", &fetched, &dest).await,
        Err(GitError::DestinationNotEmpty(_))
    ));
    // An existing empty directory is fine.
    let empty = dir.path().join("deploy/empty");
    std::fs::create_dir(&empty).expect("create empty");
    git.export("shop", &scaffold, &empty)
        .await
        .expect("export into empty");
    assert!(empty.join("README.md").is_file());
    assert!(!empty.join("src").exists());

    // The repos dir stays artel's alone, and no fetch left its temporary ref behind.
    let repo = git.repo_path("shop").expect("path");
    assert_private_root(&git);
    assert_eq!(plain_git(&repo, &["for-each-ref", "refs/artel"]), "");
}

#[tokio::test]
async fn a_diverged_branch_gets_a_merge_commit() {
    let (_dir, git) = setup();
    git.create_repo("shop").await.expect("create");
    let base = git
        .commit_files(
            "shop",
            "main",
            &files(&[("a.txt", "a\n"), ("b.txt", "b\n")]),
            "Base",
        )
        .await
        .expect("base");
    let task = git
        .commit_files(
            "shop",
            "task/x",
            &files(&[("a.txt", "a from task\n")]),
            "Task",
        )
        .await
        .expect("task commit");
    // main moves meanwhile, elsewhere.
    let moved = git
        .commit_files(
            "shop",
            "main",
            &files(&[("b.txt", "b on main\n")]),
            "Hotfix",
        )
        .await
        .expect("main moves");

    let merged = git.merge_into_main("shop", "task/x").await.expect("merge");
    assert_ne!(merged, task);
    assert_ne!(merged, moved);
    let repo = git.repo_path("shop").expect("path");
    assert_eq!(parents(&repo, &merged), vec![moved.clone(), task.clone()]);
    assert_eq!(
        git.head("shop", "main").await.expect("head"),
        Some(merged.clone())
    );
    assert_eq!(
        git.read_file("shop", &merged, "a.txt")
            .await
            .expect("read")
            .as_deref(),
        Some("a from task\n")
    );
    assert_eq!(
        git.read_file("shop", &merged, "b.txt")
            .await
            .expect("read")
            .as_deref(),
        Some("b on main\n")
    );
    assert!(
        git.is_ancestor("shop", &base, &merged)
            .await
            .expect("ancestor")
    );
    // Already merged: main stays.
    assert_eq!(
        git.merge_into_main("shop", "task/x")
            .await
            .expect("remerge"),
        merged
    );
}

#[tokio::test]
async fn a_conflicting_merge_is_refused_and_leaves_main_alone() {
    let (_dir, git) = setup();
    git.create_repo("shop").await.expect("create");
    git.commit_files("shop", "main", &files(&[("a.txt", "base\n")]), "Base")
        .await
        .expect("base");
    git.commit_files("shop", "task/x", &files(&[("a.txt", "task\n")]), "Task")
        .await
        .expect("task");
    let main = git
        .commit_files("shop", "main", &files(&[("a.txt", "main\n")]), "Main")
        .await
        .expect("main");

    let err = git
        .merge_into_main("shop", "task/x")
        .await
        .expect_err("conflict");
    match &err {
        GitError::MergeConflict { branch, files } => {
            assert_eq!(branch, "task/x");
            assert_eq!(files, &vec!["a.txt".to_owned()]);
        }
        other => panic!("expected a conflict, got {other}"),
    }
    assert_eq!(err.class(), ErrorClass::Fatal);
    assert_eq!(git.head("shop", "main").await.expect("head"), Some(main));
}

#[tokio::test]
async fn bad_names_and_missing_things_are_refused() {
    let (dir, git) = setup();
    for bad in ["../etc", "Shop", "", "a/b", "-x", ".git"] {
        let err = git.create_repo(bad).await.expect_err("bad name accepted");
        assert!(matches!(err, GitError::InvalidName { .. }), "{bad}: {err}");
        assert_eq!(err.class(), ErrorClass::Fatal);
        assert!(git.clone_url(bad).is_err());
    }
    assert!(!dir.path().join("etc.git").exists());

    assert!(matches!(
        git.head("nope", "main").await,
        Err(GitError::NoSuchRepo(_))
    ));
    git.create_repo("shop").await.expect("create");
    assert!(matches!(
        git.head("shop", "../main").await,
        Err(GitError::InvalidBranch { .. })
    ));
    assert!(matches!(
        git.merge_into_main("shop", "task/none").await,
        Err(GitError::NoSuchBranch { .. })
    ));
    assert!(matches!(
        git.read_file("shop", "main", "a").await,
        Err(GitError::UnknownCommit { .. })
    ));
}

#[tokio::test]
async fn a_missing_git_binary_is_reported() {
    let (_dir, git) = setup();
    let git = git.with_program("/nonexistent/bin/git");
    let err = git.create_repo("shop").await.expect_err("no git");
    assert!(matches!(err, GitError::NotInstalled { .. }), "{err}");
    assert!(err.to_string().contains("install git"), "{err}");
}

/// The real arrangement: the worker is another uid. It cannot read artel's repositories at
/// all; artel clones one into the worker's directory and hands it over, the worker commits,
/// and artel fetches from the worker-owned clone. Runs only as root.
#[tokio::test]
async fn a_worker_with_another_uid_cannot_read_the_repos_but_is_handed_a_checkout() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root to run the worker as another uid");
        return;
    }
    let Some(nobody) = nix::unistd::User::from_name("nobody").ok().flatten() else {
        eprintln!("skipped: no `nobody` user");
        return;
    };
    let ids = Some((nobody.uid.as_raw(), nobody.gid.as_raw()));
    let (dir, git) = setup();
    git.create_repo("shop").await.expect("create");
    git.commit_files(
        "shop",
        "main",
        &files(&[("README.md", "# shop\n")]),
        "Scaffold",
    )
    .await
    .expect("scaffold");

    let home = dir.path().join("worker");
    std::fs::create_dir(&home).expect("create the worker's dir");
    std::os::unix::fs::chown(&home, ids.map(|i| i.0), ids.map(|i| i.1)).expect("chown");
    let url = git.clone_url("shop").expect("url");
    let (uid, gid) = (nobody.uid.as_raw(), nobody.gid.as_raw());
    let refused = Command::new("git")
        .args(["clone", "--quiet", &url, "stolen"])
        .current_dir(&home)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", &home)
        .envs(git.worker_env().expect("worker env"))
        .uid(uid)
        .gid(gid)
        .output()
        .expect("run git as the worker");
    assert!(!refused.status.success(), "the worker cloned artel's repo");
    let listed = Command::new("ls")
        .arg(git.root())
        .uid(uid)
        .gid(gid)
        .output()
        .expect("run ls as the worker");
    assert!(!listed.status.success(), "the worker listed the repos dir");
    assert!(!home.join("stolen").exists());

    git.run_in_worktree(&home, &["clone", "--quiet", "--no-hardlinks", &url, "ws"])
        .await
        .expect("artel clones for the worker");
    let ws = home.join("ws");
    let chown = Command::new("chown")
        .args(["-R", &format!("{uid}:{gid}")])
        .arg(&ws)
        .status()
        .expect("chown");
    assert!(chown.success());
    worker_git(&git, &ws, &["checkout", "--quiet", "-b", "task/y"], ids);
    worker_git(
        &git,
        &ws,
        &["commit", "--quiet", "--allow-empty", "-m", "Work"],
        ids,
    );
    let head = worker_git(&git, &ws, &["rev-parse", "HEAD"], ids);

    let fetched = git
        .fetch_branch("shop", &ws, "task/y")
        .await
        .expect("fetch across uids");
    assert_eq!(fetched, head);
    assert_eq!(
        git.commits_between("shop", "main", &fetched)
            .await
            .expect("count"),
        1
    );
}
