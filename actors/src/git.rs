//! The local git provider: one bare repository per project, driven through the `git` CLI.
//!
//! Offline, a project's code lives in `<data_dir>/repos/<project>.git`. Every role that touches
//! code goes through [`LocalGit`]:
//!
//! - the Scaffolder [creates](LocalGit::create_repo) the repository and
//!   [commits](LocalGit::commit_files) a template onto `main` (skipping when
//!   [`head`](LocalGit::head) says the branch already exists);
//! - artel clones it on the host into a worker's directory and hands the checkout to the
//!   worker's uid (see `roles::workspace`); the agent commits on a `task/...` branch there;
//! - the Developer [fetches](LocalGit::fetch_branch) that branch back (the worker cannot write
//!   here), checks the agent committed something new
//!   ([`commits_between`](LocalGit::commits_between)), the Tester tests it, and a passing
//!   branch is [merged](LocalGit::merge_into_main) into `main`;
//! - the Deployer [exports](LocalGit::export) a commit's tree into a directory.
//!
//! Design choices, each for a reason:
//!
//! - **No working trees.** Commits and merges use plumbing (`hash-object`, a temporary index,
//!   `commit-tree`, `merge-tree --write-tree`), so nothing is checked out in the bare repo and
//!   two callers never share a worktree. Every ref moves with `update-ref <new> <old>`: a
//!   concurrent writer makes the second update fail ([`GitError::RefChanged`], retryable)
//!   instead of silently losing a commit.
//! - **`main` moves only by [`merge_into_main`](LocalGit::merge_into_main).** A fetch never
//!   writes `main`, and only `task/...` branches may be force-updated by a fetch.
//! - **Isolated from the host.** Every invocation gets no system config, artel's own global
//!   config, no terminal prompt, artel's identity, no lazy fetching and `safe.directory=*`;
//!   location variables inherited from the host (`GIT_DIR`, `GIT_INDEX_FILE`, …) are removed.
//!   Arguments are an argv vector, never a shell string, and every name, branch, revision and
//!   path is validated first.
//! - **Private to artel.** The repos dir is mode 0700, owned by artel (tightened at every
//!   [`prepare`](LocalGit::prepare), so an older, world-readable layout is closed at start), and
//!   workers never open it: a worker gets a checkout artel made for it, never a path into
//!   artel's repositories. So no worker reads another project's code, or this one's other
//!   branches. [`worker_env`](LocalGit::worker_env) points a worker's git at no global config.
//! - **Trust across uids.** Git refuses to run upload-pack in a repository another uid owns,
//!   and `-c safe.directory=*` does not reach the upload-pack a local clone or fetch starts.
//!   So artel's global config file, [`LocalGit::global_config_path`], holds
//!   `safe.directory = *`, and artel points `GIT_CONFIG_GLOBAL` at it when it fetches from a
//!   worker's clone. Objects fetched from a worker are
//!   checked (`fetch.fsckObjects`).

use artel_messages::{Classify, ErrorClass};
use std::ffi::{OsStr, OsString};
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

/// The branch that holds tested, merged work.
pub const MAIN: &str = "main";
/// The prefix of the agents' task branches, the only branches a fetch may force-update.
pub const TASK_PREFIX: &str = "task/";
/// The name of artel's global git config file, inside the repos dir.
pub const GLOBAL_CONFIG_FILE: &str = "artel-gitconfig";
/// The contents of artel's global git config: trust repositories owned by other uids (artel's
/// repos for a worker, a worker's clone for artel).
const GLOBAL_CONFIG: &str = "[safe]\n\tdirectory = *\n";
/// How many lines of a failed command's stderr an error keeps.
const STDERR_LINES: usize = 20;
/// How many bytes of a failed command's stderr an error keeps, at most.
const STDERR_BYTES: usize = 4000;
/// The longest branch name accepted.
const MAX_BRANCH_LEN: usize = 200;
/// The longest revision accepted.
const MAX_REV_LEN: usize = 256;
/// The longest file path accepted.
const MAX_PATH_LEN: usize = 4096;
/// Variables that would point git somewhere else than where it is told, removed from every
/// invocation's environment.
const SCRUBBED_ENV: &[&str] = &[
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_COMMON_DIR",
    "GIT_NAMESPACE",
    "GIT_CEILING_DIRECTORIES",
    "GIT_DISCOVERY_ACROSS_FILESYSTEM",
    "GIT_CONFIG",
    "GIT_CONFIG_PARAMETERS",
    "GIT_CONFIG_COUNT",
    "GIT_AUTHOR_DATE",
    "GIT_COMMITTER_DATE",
    "GIT_REPLACE_REF_BASE",
    "GIT_SHALLOW_FILE",
    "GIT_QUARANTINE_PATH",
];

/// Everything the git provider can fail with, classified for supervisors.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    /// The `git` program is not on this machine.
    #[error(
        "`{}` not found: install git (Debian: `apt-get install git`) or put it on PATH",
        program.display()
    )]
    NotInstalled {
        /// The program artel tried to run.
        program: PathBuf,
    },
    /// A git process could not be started or waited for.
    #[error("cannot run `git {args}`")]
    Spawn {
        /// The command's arguments.
        args: String,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// A file or directory around the repositories could not be read or written.
    #[error("{}", path.display())]
    Io {
        /// The path involved.
        path: PathBuf,
        /// What the file system said.
        #[source]
        source: io::Error,
    },
    /// A git command exited with a failure.
    #[error("`git {}` failed ({}): {stderr}", args.join(" "), exit_code(*code))]
    Command {
        /// Its arguments (without the isolation options every command gets).
        args: Vec<String>,
        /// Its exit code; `None` when a signal ended it.
        code: Option<i32>,
        /// The last lines it printed on stderr.
        stderr: String,
    },
    /// Git printed something this module cannot read: a bug, here or in git.
    #[error("unexpected output from `git {args}`: {output:?}")]
    UnexpectedOutput {
        /// The command's arguments.
        args: String,
        /// What it printed (cut).
        output: String,
    },
    /// A project name that cannot name a repository.
    #[error("invalid repository name `{name}`: {reason}")]
    InvalidName {
        /// The name given.
        name: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// A branch name refused (unsafe, or not a valid ref name).
    #[error("invalid branch name `{branch}`: {reason}")]
    InvalidBranch {
        /// The name given.
        branch: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// A revision refused before git saw it.
    #[error("invalid revision `{rev}`: {reason}")]
    InvalidRev {
        /// The revision given.
        rev: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// A file path refused: absolute, leaving the tree, or naming `.git`.
    #[error("invalid file path `{path}`: {reason}")]
    InvalidPath {
        /// The path given.
        path: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// A path that is not UTF-8 where a string is needed.
    #[error("path {} is not UTF-8", .0.display())]
    NonUtf8Path(PathBuf),
    /// The project has no repository yet.
    #[error("no repository for project `{0}`")]
    NoSuchRepo(String),
    /// The repository's path exists but is not a bare git repository.
    #[error("{} exists but is not a bare git repository", .0.display())]
    NotARepository(PathBuf),
    /// The branch does not exist where it was looked for.
    #[error("branch `{branch}` does not exist")]
    NoSuchBranch {
        /// The branch.
        branch: String,
    },
    /// An operation that would move `main` outside [`LocalGit::merge_into_main`].
    #[error("branch `{0}` only moves by merging tested work into it")]
    ProtectedBranch(String),
    /// The revision names no commit in the repository.
    #[error("no commit `{rev}` in the repository")]
    UnknownCommit {
        /// The revision asked for.
        rev: String,
    },
    /// A fetch would rewrite the history of a branch that is not a task branch.
    #[error("fetching `{branch}` would rewrite its history (not a fast-forward)")]
    NotFastForward {
        /// The branch.
        branch: String,
    },
    /// The branch cannot be merged into `main` without resolving conflicts.
    #[error("merging `{branch}` into main conflicts in: {}", files.join(", "))]
    MergeConflict {
        /// The branch.
        branch: String,
        /// The conflicted files.
        files: Vec<String>,
    },
    /// Someone else moved the ref between reading and updating it; try again.
    #[error("`{reference}` moved while it was being updated")]
    RefChanged {
        /// The full ref name.
        reference: String,
    },
    /// The file exists but its contents are not UTF-8 text.
    #[error("`{path}` is not UTF-8 text")]
    NotText {
        /// The file's path in the tree.
        path: String,
    },
    /// An export's destination already holds files.
    #[error("export destination {} exists and is not an empty directory", .0.display())]
    DestinationNotEmpty(PathBuf),
}

impl Classify for GitError {
    fn class(&self) -> ErrorClass {
        match self {
            // Transient: a busy machine, a lock held by a concurrent git, a full disk freed
            // later, a concurrent ref update. A restart may help.
            Self::Spawn { .. }
            | Self::Io { .. }
            | Self::Command { .. }
            | Self::RefChanged { .. } => ErrorClass::Retryable,
            // The same input fails the same way: bad names, missing things, conflicts,
            // a missing git binary the operator must install.
            Self::NotInstalled { .. }
            | Self::UnexpectedOutput { .. }
            | Self::InvalidName { .. }
            | Self::InvalidBranch { .. }
            | Self::InvalidRev { .. }
            | Self::InvalidPath { .. }
            | Self::NonUtf8Path(_)
            | Self::NoSuchRepo(_)
            | Self::NotARepository(_)
            | Self::NoSuchBranch { .. }
            | Self::ProtectedBranch(_)
            | Self::UnknownCommit { .. }
            | Self::NotFastForward { .. }
            | Self::MergeConflict { .. }
            | Self::NotText { .. }
            | Self::DestinationNotEmpty(_) => ErrorClass::Fatal,
        }
    }
}

/// The author and committer of every commit artel makes, and of a worker's commits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitIdentity {
    /// `user.name`.
    pub name: String,
    /// `user.email`.
    pub email: String,
}

impl Default for GitIdentity {
    fn default() -> Self {
        Self {
            name: "artel".into(),
            email: "artel@localhost".into(),
        }
    }
}

/// The environment that isolates a git process from the host's configuration (no system
/// config, no terminal prompt, no lazy fetching) and gives it `identity`, with
/// `GIT_CONFIG_GLOBAL` set to `global_config` (artel's config file, see
/// [`LocalGit::global_config_path`], or `/dev/null`).
///
/// [`LocalGit::worker_env`] is this with `/dev/null`: what a worker needs to commit as
/// artel in the checkout it was handed.
pub fn git_env(identity: &GitIdentity, global_config: &str) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = isolation_env(identity)
        .into_iter()
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect();
    env.push(("GIT_CONFIG_GLOBAL".into(), global_config.into()));
    env
}

/// Identity and isolation variables, all but `GIT_CONFIG_GLOBAL`.
fn isolation_env(identity: &GitIdentity) -> [(&'static str, &str); 7] {
    [
        ("GIT_AUTHOR_NAME", &identity.name),
        ("GIT_AUTHOR_EMAIL", &identity.email),
        ("GIT_COMMITTER_NAME", &identity.name),
        ("GIT_COMMITTER_EMAIL", &identity.email),
        ("GIT_CONFIG_NOSYSTEM", "1"),
        ("GIT_TERMINAL_PROMPT", "0"),
        ("GIT_NO_LAZY_FETCH", "1"),
    ]
}

/// The projects' bare repositories under one directory. Cheap to clone.
#[derive(Debug, Clone)]
pub struct LocalGit {
    inner: Arc<Inner>,
}

#[derive(Debug, Clone)]
struct Inner {
    /// The repos dir: `<root>/<name>.git` and artel's global config live here.
    root: PathBuf,
    /// Who artel's commits are by.
    identity: GitIdentity,
    /// The git program (`git`, found on PATH, unless told otherwise).
    program: PathBuf,
}

impl LocalGit {
    /// The repositories under `root` (usually `<data_dir>/repos`), made absolute so the paths
    /// handed to workers mean the same from any directory. Nothing is created yet.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        let root = root.into();
        let root = std::path::absolute(&root).unwrap_or(root);
        Self {
            inner: Arc::new(Inner {
                root,
                identity: GitIdentity::default(),
                program: PathBuf::from("git"),
            }),
        }
    }

    /// The same repositories, committed to as `identity`.
    pub fn with_identity(self, identity: GitIdentity) -> Self {
        let mut inner = Arc::unwrap_or_clone(self.inner);
        inner.identity = identity;
        Self {
            inner: Arc::new(inner),
        }
    }

    /// The same repositories, driven by another git program.
    pub fn with_program(self, program: impl Into<PathBuf>) -> Self {
        let mut inner = Arc::unwrap_or_clone(self.inner);
        inner.program = program.into();
        Self {
            inner: Arc::new(inner),
        }
    }

    /// The repos dir.
    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    /// Who artel's commits are by.
    pub fn identity(&self) -> &GitIdentity {
        &self.inner.identity
    }

    /// Artel's global git config file (`safe.directory = *`), written by
    /// [`create_repo`](Self::create_repo).
    pub fn global_config_path(&self) -> PathBuf {
        self.inner.root.join(GLOBAL_CONFIG_FILE)
    }

    /// The path of project `name`'s repository, once `name` is checked: 1 to 63 of
    /// `a-z 0-9 _ -`, starting with a letter or digit.
    pub fn repo_path(&self, name: &str) -> Result<PathBuf, GitError> {
        validate_name(name)?;
        Ok(self.inner.root.join(format!("{name}.git")))
    }

    /// What a worker passes to `git clone` for project `name` (an absolute path).
    pub fn clone_url(&self, name: &str) -> Result<String, GitError> {
        let path = self.repo_path(name)?;
        path.to_str()
            .map(str::to_owned)
            .ok_or(GitError::NonUtf8Path(path))
    }

    /// The environment a worker's git needs: artel's identity and the host's config ignored
    /// (no global config either: the worker owns its checkout, and artel's config file sits
    /// in the repos dir no worker may enter).
    pub fn worker_env(&self) -> Result<Vec<(String, String)>, GitError> {
        Ok(git_env(&self.inner.identity, "/dev/null"))
    }

    /// Makes the repos dir (mode 0700, artel's alone) and artel's global config file, and
    /// closes a repos dir an older artel left searchable by everyone. Run at start.
    pub async fn prepare(&self) -> Result<(), GitError> {
        self.prepare_root().await
    }

    /// Creates project `name`'s bare repository (initial branch `main`, inside the private
    /// repos dir) and
    /// returns its path; an existing repository is returned as it is.
    pub async fn create_repo(&self, name: &str) -> Result<PathBuf, GitError> {
        let path = self.repo_path(name)?;
        self.prepare_root().await?;
        if path_exists(&path).await? {
            if !self.is_bare_repo(&path).await? {
                return Err(GitError::NotARepository(path));
            }
            return Ok(path);
        }
        self.git()
            .args(["init", "--quiet", "--bare", "--initial-branch=main"])
            .arg(&path)
            .run()
            .await?;
        tracing::info!(repo = %path.display(), "created project repository");
        Ok(path)
    }

    /// The commit `branch` points at, or `None` when the branch does not exist.
    pub async fn head(&self, name: &str, branch: &str) -> Result<Option<String>, GitError> {
        validate_branch(branch)?;
        let repo = self.existing_repo(name).await?;
        self.ref_target(&repo, &branch_ref(branch)).await
    }

    /// Commits `files` (path relative to the repository's root, contents) onto `branch` with
    /// `message` and returns the new commit. A missing branch starts from `main`'s head, or
    /// as a root commit when `main` does not exist either. Files not listed are kept as they
    /// are. When nothing would change, no commit is made: the branch's head is returned (the
    /// branch is created at it if needed).
    pub async fn commit_files(
        &self,
        name: &str,
        branch: &str,
        files: &[(String, String)],
        message: &str,
    ) -> Result<String, GitError> {
        validate_branch(branch)?;
        for (path, _) in files {
            validate_path(path)?;
        }
        let repo = self.existing_repo(name).await?;
        let reference = branch_ref(branch);
        let current = self.ref_target(&repo, &reference).await?;
        let parent = match &current {
            Some(head) => Some(head.clone()),
            None if branch != MAIN => self.ref_target(&repo, &branch_ref(MAIN)).await?,
            None => None,
        };
        let tree = self.write_tree(&repo, parent.as_deref(), files).await?;
        if let Some(parent) = &parent
            && self.tree_of(&repo, parent).await? == tree
        {
            if current.is_none() {
                self.update_ref(&repo, &reference, parent, None).await?;
            }
            return Ok(parent.clone());
        }
        let mut commit = self.git_in(&repo).args(["commit-tree", &tree]);
        if let Some(parent) = &parent {
            commit = commit.args(["-p", parent]);
        }
        let commit = commit
            .args(["-F", "-"])
            .stdin(message.as_bytes().to_vec())
            .run_oid()
            .await?;
        self.update_ref(&repo, &reference, &commit, current.as_deref())
            .await?;
        tracing::debug!(repo = %repo.display(), branch, %commit, "committed files");
        Ok(commit)
    }

    /// Fetches `branch` from the clone at `from_dir` (a worker's workspace, another uid's) into
    /// the repository's `refs/heads/<branch>` and returns the fetched commit. Only `task/...`
    /// branches may be rewritten; `main` is never written by a fetch.
    pub async fn fetch_branch(
        &self,
        name: &str,
        from_dir: &Path,
        branch: &str,
    ) -> Result<String, GitError> {
        validate_branch(branch)?;
        if branch == MAIN {
            return Err(GitError::ProtectedBranch(branch.into()));
        }
        let repo = self.existing_repo(name).await?;
        // Upload-pack runs in the worker's clone and trusts it through this file.
        self.prepare_root().await?;
        let source = std::path::absolute(from_dir).map_err(|source| GitError::Io {
            path: from_dir.to_path_buf(),
            source,
        })?;
        let reference = branch_ref(branch);
        let incoming = format!("refs/artel/incoming/{}", uuid::Uuid::new_v4().simple());
        let fetched = self.fetch_into(&repo, &source, &reference, &incoming).await;
        let tip = match fetched {
            Ok(()) => self.ref_target(&repo, &incoming).await,
            Err(err) => Err(err),
        };
        let deleted = self.delete_ref(&repo, &incoming).await;
        let tip = tip?.ok_or_else(|| GitError::UnknownCommit { rev: branch.into() })?;
        deleted?;
        let current = self.ref_target(&repo, &reference).await?;
        if current.as_deref() == Some(tip.as_str()) {
            return Ok(tip);
        }
        if let Some(old) = &current
            && !is_task_branch(branch)
            && !self.ancestor(&repo, old, &tip).await?
        {
            return Err(GitError::NotFastForward {
                branch: branch.into(),
            });
        }
        self.update_ref(&repo, &reference, &tip, current.as_deref())
            .await?;
        tracing::info!(repo = %repo.display(), branch, commit = %tip, "fetched a branch");
        Ok(tip)
    }

    /// The full id of the commit `rev` names; [`GitError::UnknownCommit`] when there is none.
    pub async fn resolve_commit(&self, name: &str, rev: &str) -> Result<String, GitError> {
        let repo = self.existing_repo(name).await?;
        self.resolve(&repo, rev).await
    }

    /// True when `ancestor` is `descendant` or one of its ancestors.
    pub async fn is_ancestor(
        &self,
        name: &str,
        ancestor: &str,
        descendant: &str,
    ) -> Result<bool, GitError> {
        let repo = self.existing_repo(name).await?;
        let ancestor = self.resolve(&repo, ancestor).await?;
        let descendant = self.resolve(&repo, descendant).await?;
        self.ancestor(&repo, &ancestor, &descendant).await
    }

    /// How many commits `head` has that `base` does not (`git rev-list --count base..head`).
    pub async fn commits_between(
        &self,
        name: &str,
        base: &str,
        head: &str,
    ) -> Result<u32, GitError> {
        let repo = self.existing_repo(name).await?;
        let base = self.resolve(&repo, base).await?;
        let head = self.resolve(&repo, head).await?;
        let cmd = self
            .git_in(&repo)
            .args(["rev-list", "--count", &format!("{base}..{head}")]);
        let args = cmd.describe();
        let count = cmd.run_text().await?;
        count.parse().map_err(|_| GitError::UnexpectedOutput {
            args,
            output: cut(&count),
        })
    }

    /// Merges `branch` into `main` and returns `main`'s new head: a fast-forward when `main`
    /// has not moved since the branch started, else a merge commit (made without a working
    /// tree). A branch already merged leaves `main` as it is; a missing `main` is created at
    /// the branch. Conflicts are [`GitError::MergeConflict`] and leave `main` unchanged.
    pub async fn merge_into_main(&self, name: &str, branch: &str) -> Result<String, GitError> {
        validate_branch(branch)?;
        if branch == MAIN {
            return Err(GitError::InvalidBranch {
                branch: branch.into(),
                reason: "main cannot be merged into itself",
            });
        }
        let repo = self.existing_repo(name).await?;
        let main_ref = branch_ref(MAIN);
        let tip = self
            .ref_target(&repo, &branch_ref(branch))
            .await?
            .ok_or_else(|| GitError::NoSuchBranch {
                branch: branch.into(),
            })?;
        let Some(main) = self.ref_target(&repo, &main_ref).await? else {
            self.update_ref(&repo, &main_ref, &tip, None).await?;
            return Ok(tip);
        };
        if self.ancestor(&repo, &tip, &main).await? {
            return Ok(main);
        }
        let merged = if self.ancestor(&repo, &main, &tip).await? {
            tip
        } else {
            self.merge_commit(&repo, branch, &main, &tip).await?
        };
        self.update_ref(&repo, &main_ref, &merged, Some(&main))
            .await?;
        tracing::info!(repo = %repo.display(), branch, main = %merged, "merged into main");
        Ok(merged)
    }

    /// The text of the file at `path` in `commit`; `None` when no file is there (nothing, or a
    /// directory). A symlink reads as its target.
    pub async fn read_file(
        &self,
        name: &str,
        commit: &str,
        path: &str,
    ) -> Result<Option<String>, GitError> {
        validate_path(path)?;
        let repo = self.existing_repo(name).await?;
        let commit = self.resolve(&repo, commit).await?;
        let listing = self
            .git_in(&repo)
            .args(["ls-tree", "-z", &commit, "--", path])
            .run()
            .await?;
        let Some(blob) = blob_in_listing(&listing, path) else {
            return Ok(None);
        };
        let contents = self
            .git_in(&repo)
            .args(["cat-file", "blob", &blob])
            .run()
            .await?;
        String::from_utf8(contents)
            .map(Some)
            .map_err(|_| GitError::NotText { path: path.into() })
    }

    /// Writes `commit`'s tree into `dest` (created; it may exist only as an empty directory),
    /// with directories 0755 and files 0644 (0755 when executable). The tree is written next
    /// to `dest` first and renamed into place, so `dest` is either complete or absent.
    pub async fn export(&self, name: &str, commit: &str, dest: &Path) -> Result<(), GitError> {
        let repo = self.existing_repo(name).await?;
        let commit = self.resolve(&repo, commit).await?;
        let dest = std::path::absolute(dest).map_err(|source| GitError::Io {
            path: dest.to_path_buf(),
            source,
        })?;
        ensure_empty_or_absent(&dest).await?;
        let staging = staging_dir(&dest)?;
        if let Some(parent) = staging.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(io_at(parent))?;
        }
        create_world_readable_dir(&staging).await?;
        let exported = self.export_into(&repo, &commit, &staging, &dest).await;
        if exported.is_err() {
            let _ = tokio::fs::remove_dir_all(&staging).await;
        }
        exported
    }

    async fn export_into(
        &self,
        repo: &Path,
        commit: &str,
        staging: &Path,
        dest: &Path,
    ) -> Result<(), GitError> {
        let index = TempIndex::new();
        self.git_in(repo)
            .args(["read-tree", commit])
            .index(&index)
            .run()
            .await?;
        let mut work_tree = OsString::from("--work-tree=");
        work_tree.push(staging);
        self.git_in(repo)
            .arg(work_tree)
            .args(["checkout-index", "--all", "--force"])
            .index(&index)
            .cwd(staging)
            .run()
            .await?;
        let tree = staging.to_path_buf();
        tokio::task::spawn_blocking(move || make_world_readable(&tree))
            .await
            .map_err(|err| GitError::Io {
                path: staging.to_path_buf(),
                source: io::Error::other(err),
            })??;
        // rename(2) replaces an empty directory, and fails on a non-empty one.
        tokio::fs::rename(staging, dest)
            .await
            .map_err(io_at(dest))?;
        Ok(())
    }

    /// The repository of `name`, which must exist.
    async fn existing_repo(&self, name: &str) -> Result<PathBuf, GitError> {
        let path = self.repo_path(name)?;
        if path_exists(&path.join("HEAD")).await? {
            Ok(path)
        } else {
            Err(GitError::NoSuchRepo(name.into()))
        }
    }

    /// Creates the repos dir (mode 0700) and artel's global config file.
    async fn prepare_root(&self) -> Result<(), GitError> {
        let root = &self.inner.root;
        tokio::fs::create_dir_all(root).await.map_err(io_at(root))?;
        let mode = tokio::fs::metadata(root)
            .await
            .map_err(io_at(root))?
            .permissions()
            .mode();
        if mode & 0o7777 != 0o700 {
            set_mode(root, 0o700).await?;
        }
        let config = self.global_config_path();
        match tokio::fs::read_to_string(&config).await {
            Ok(existing) if existing == GLOBAL_CONFIG => return Ok(()),
            Ok(_) => {}
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(GitError::Io {
                    path: config,
                    source,
                });
            }
        }
        let temp = root.join(format!(
            ".{GLOBAL_CONFIG_FILE}.{}",
            uuid::Uuid::new_v4().simple()
        ));
        tokio::fs::write(&temp, GLOBAL_CONFIG)
            .await
            .map_err(io_at(&temp))?;
        set_mode(&temp, 0o600).await?;
        tokio::fs::rename(&temp, &config)
            .await
            .map_err(io_at(&config))
    }

    async fn is_bare_repo(&self, path: &Path) -> Result<bool, GitError> {
        let out = self
            .git_in(path)
            .args(["rev-parse", "--is-bare-repository"])
            .output()
            .await?;
        Ok(out.code == Some(0) && String::from_utf8_lossy(&out.stdout).trim() == "true")
    }

    /// The commit `reference` (or any revision) names, `None` when it names none.
    async fn ref_target(&self, repo: &Path, reference: &str) -> Result<Option<String>, GitError> {
        let cmd = self.git_in(repo).args([
            "rev-parse",
            "--quiet",
            "--verify",
            &format!("{reference}^{{commit}}"),
        ]);
        let args = cmd.describe_args();
        let out = cmd.output().await?;
        match out.code {
            Some(0) => parse_oid(&String::from_utf8_lossy(&out.stdout), &args.join(" ")).map(Some),
            Some(1) => Ok(None),
            _ => Err(out.into_error(args)),
        }
    }

    /// The full id of the commit `rev` names, once `rev` is checked.
    async fn resolve(&self, repo: &Path, rev: &str) -> Result<String, GitError> {
        validate_rev(rev)?;
        self.ref_target(repo, rev)
            .await?
            .ok_or_else(|| GitError::UnknownCommit { rev: rev.into() })
    }

    async fn tree_of(&self, repo: &Path, commit: &str) -> Result<String, GitError> {
        self.git_in(repo)
            .args(["rev-parse", "--verify", &format!("{commit}^{{tree}}")])
            .run_oid()
            .await
    }

    /// `ancestor` and `descendant` are full commit ids.
    async fn ancestor(
        &self,
        repo: &Path,
        ancestor: &str,
        descendant: &str,
    ) -> Result<bool, GitError> {
        let cmd = self
            .git_in(repo)
            .args(["merge-base", "--is-ancestor", ancestor, descendant]);
        let args = cmd.describe_args();
        let out = cmd.output().await?;
        match out.code {
            Some(0) => Ok(true),
            Some(1) => Ok(false),
            _ => Err(out.into_error(args)),
        }
    }

    /// The tree of `parent` (empty without one) with `files` written over it.
    async fn write_tree(
        &self,
        repo: &Path,
        parent: Option<&str>,
        files: &[(String, String)],
    ) -> Result<String, GitError> {
        let index = TempIndex::new();
        if let Some(parent) = parent {
            self.git_in(repo)
                .args(["read-tree", parent])
                .index(&index)
                .run()
                .await?;
        }
        let mut entries = Vec::new();
        for (path, contents) in files {
            let blob = self
                .git_in(repo)
                .args(["hash-object", "-w", "--no-filters", "--stdin"])
                .stdin(contents.as_bytes().to_vec())
                .run_oid()
                .await?;
            entries.extend_from_slice(format!("100644 {blob}\t{path}\0").as_bytes());
        }
        if !entries.is_empty() {
            self.git_in(repo)
                .args(["update-index", "-z", "--add", "--index-info"])
                .index(&index)
                .stdin(entries)
                .run()
                .await?;
        }
        self.git_in(repo)
            .arg("write-tree")
            .index(&index)
            .run_oid()
            .await
    }

    /// A merge commit of `tip` into `main`, or the conflict that prevents it.
    async fn merge_commit(
        &self,
        repo: &Path,
        branch: &str,
        main: &str,
        tip: &str,
    ) -> Result<String, GitError> {
        let cmd = self.git_in(repo).args([
            "merge-tree",
            "--write-tree",
            "--name-only",
            "--no-messages",
            "-z",
            main,
            tip,
        ]);
        let args = cmd.describe_args();
        let out = cmd.output().await?;
        let (tree, conflicts) = match out.code {
            Some(0 | 1) => parse_merge_tree(&out.stdout, &args.join(" "))?,
            _ => return Err(out.into_error(args)),
        };
        if out.code == Some(1) {
            return Err(GitError::MergeConflict {
                branch: branch.into(),
                files: conflicts,
            });
        }
        self.git_in(repo)
            .args(["commit-tree", &tree, "-p", main, "-p", tip, "-F", "-"])
            .stdin(format!("Merge branch '{branch}'\n").into_bytes())
            .run_oid()
            .await
    }

    async fn fetch_into(
        &self,
        repo: &Path,
        source: &Path,
        reference: &str,
        incoming: &str,
    ) -> Result<(), GitError> {
        let cmd = self
            .git_in(repo)
            .args(["-c", "fetch.fsckObjects=true", "fetch"])
            .args([
                "--quiet",
                "--no-tags",
                "--no-write-fetch-head",
                "--no-recurse-submodules",
            ])
            .arg(source)
            .arg(format!("+{reference}:{incoming}"));
        let args = cmd.describe_args();
        let out = cmd.output().await?;
        if out.code == Some(0) {
            return Ok(());
        }
        // Say "no such branch" when that is why; any other failure as git told it.
        let listed = self
            .git_in(repo)
            .args(["ls-remote", "--exit-code"])
            .arg(source)
            .arg(reference)
            .output()
            .await?;
        if listed.code == Some(2) {
            let branch = reference.trim_start_matches("refs/heads/");
            return Err(GitError::NoSuchBranch {
                branch: branch.into(),
            });
        }
        Err(out.into_error(args))
    }

    /// Moves `reference` to `new` if it still points at `old` (`None`: if it does not exist).
    async fn update_ref(
        &self,
        repo: &Path,
        reference: &str,
        new: &str,
        old: Option<&str>,
    ) -> Result<(), GitError> {
        let cmd = self
            .git_in(repo)
            .args(["update-ref", reference, new, old.unwrap_or("")]);
        let args = cmd.describe_args();
        let out = cmd.output().await?;
        if out.code == Some(0) {
            return Ok(());
        }
        if self.ref_target(repo, reference).await?.as_deref() != old {
            return Err(GitError::RefChanged {
                reference: reference.into(),
            });
        }
        Err(out.into_error(args))
    }

    async fn delete_ref(&self, repo: &Path, reference: &str) -> Result<(), GitError> {
        self.git_in(repo)
            .args(["update-ref", "-d", reference])
            .run()
            .await
            .map(drop)
    }

    /// Runs `git args…` in the working tree `dir` (a checkout artel prepared for a worker,
    /// owned by the worker's uid) with the same isolated environment as every call here;
    /// answers its trimmed stdout.
    pub async fn run_in_worktree(&self, dir: &Path, args: &[&str]) -> Result<String, GitError> {
        let mut command = self.git().args(args);
        command.cwd = Some(dir.to_owned());
        command.run_text().await
    }

    /// A git command outside any repository.
    fn git(&self) -> GitCommand<'_> {
        GitCommand {
            owner: self,
            args: Vec::new(),
            index: None,
            stdin: None,
            cwd: None,
        }
    }

    /// A git command in the (bare) repository `repo`.
    fn git_in(&self, repo: &Path) -> GitCommand<'_> {
        let mut git_dir = OsString::from("--git-dir=");
        git_dir.push(repo);
        self.git().arg(git_dir)
    }
}

/// One git invocation being built: isolated environment, argv, optional stdin.
struct GitCommand<'a> {
    owner: &'a LocalGit,
    args: Vec<OsString>,
    index: Option<PathBuf>,
    stdin: Option<Vec<u8>>,
    cwd: Option<PathBuf>,
}

/// How a git invocation ended.
struct Finished {
    code: Option<i32>,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

impl Finished {
    fn into_error(self, args: Vec<String>) -> GitError {
        GitError::Command {
            args,
            code: self.code,
            stderr: tail(&self.stderr),
        }
    }
}

impl GitCommand<'_> {
    fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|arg| arg.as_ref().to_owned()));
        self
    }

    fn index(mut self, index: &TempIndex) -> Self {
        self.index = Some(index.path.clone());
        self
    }

    fn stdin(mut self, input: Vec<u8>) -> Self {
        self.stdin = Some(input);
        self
    }

    fn cwd(mut self, dir: &Path) -> Self {
        self.cwd = Some(dir.to_path_buf());
        self
    }

    fn describe_args(&self) -> Vec<String> {
        self.args
            .iter()
            .map(|arg| arg.to_string_lossy().into_owned())
            .collect()
    }

    fn describe(&self) -> String {
        self.describe_args().join(" ")
    }

    /// Runs the command to its end, whatever its exit code.
    async fn output(self) -> Result<Finished, GitError> {
        let inner = &self.owner.inner;
        let mut cmd = Command::new(&inner.program);
        cmd.args(["-c", "safe.directory=*"]).args(&self.args);
        for var in SCRUBBED_ENV {
            cmd.env_remove(var);
        }
        cmd.envs(isolation_env(&inner.identity))
            .env("GIT_CONFIG_GLOBAL", self.owner.global_config_path())
            .env("GIT_NO_REPLACE_OBJECTS", "1")
            .env("GIT_LITERAL_PATHSPECS", "1");
        if let Some(index) = &self.index {
            cmd.env("GIT_INDEX_FILE", index);
        }
        if let Some(cwd) = &self.cwd {
            cmd.current_dir(cwd);
        }
        let stdin = if self.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        };
        cmd.stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        tracing::trace!(args = %self.describe(), "git");
        let mut child = cmd.spawn().map_err(|source| {
            if source.kind() == io::ErrorKind::NotFound {
                GitError::NotInstalled {
                    program: inner.program.clone(),
                }
            } else {
                GitError::Spawn {
                    args: self.describe(),
                    source,
                }
            }
        })?;
        let pipe = child.stdin.take();
        let feed = async {
            match (pipe, &self.stdin) {
                (Some(mut pipe), Some(input)) => pipe.write_all(input).await,
                _ => Ok(()),
            }
        };
        let (fed, output) = tokio::join!(feed, child.wait_with_output());
        let output = output.map_err(|source| GitError::Spawn {
            args: self.describe(),
            source,
        })?;
        // A write error when git failed is explained by git's own failure.
        if let Err(source) = fed
            && output.status.success()
        {
            return Err(GitError::Spawn {
                args: self.describe(),
                source,
            });
        }
        Ok(Finished {
            code: output.status.code(),
            stdout: output.stdout,
            stderr: output.stderr,
        })
    }

    /// Runs the command and returns its stdout; a failure is [`GitError::Command`].
    async fn run(self) -> Result<Vec<u8>, GitError> {
        let args = self.describe_args();
        let out = self.output().await?;
        if out.code == Some(0) {
            Ok(out.stdout)
        } else {
            Err(out.into_error(args))
        }
    }

    /// Runs the command and returns its stdout as trimmed text.
    async fn run_text(self) -> Result<String, GitError> {
        let stdout = self.run().await?;
        Ok(String::from_utf8_lossy(&stdout).trim().to_owned())
    }

    /// Runs a command that prints one object id.
    async fn run_oid(self) -> Result<String, GitError> {
        let args = self.describe();
        let text = self.run_text().await?;
        parse_oid(&text, &args)
    }
}

/// A temporary index file for plumbing that needs one, removed when dropped.
struct TempIndex {
    path: PathBuf,
}

impl TempIndex {
    fn new() -> Self {
        let name = format!("artel-git-index-{}", uuid::Uuid::new_v4().simple());
        Self {
            path: std::env::temp_dir().join(name),
        }
    }
}

impl Drop for TempIndex {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        let mut lock = self.path.clone().into_os_string();
        lock.push(".lock");
        let _ = std::fs::remove_file(lock);
    }
}

/// `refs/heads/<branch>`.
fn branch_ref(branch: &str) -> String {
    format!("refs/heads/{branch}")
}

/// True for the agents' `task/...` branches.
pub fn is_task_branch(branch: &str) -> bool {
    branch.len() > TASK_PREFIX.len() && branch.starts_with(TASK_PREFIX)
}

/// Accepts `^[a-z0-9][a-z0-9_-]{0,62}$`.
fn validate_name(name: &str) -> Result<(), GitError> {
    let refuse = |reason| {
        Err(GitError::InvalidName {
            name: name.into(),
            reason,
        })
    };
    let Some(first) = name.bytes().next() else {
        return refuse("it is empty");
    };
    if name.len() > 63 {
        return refuse("it is longer than 63 characters");
    }
    if !(first.is_ascii_lowercase() || first.is_ascii_digit()) {
        return refuse("it must start with a lowercase letter or a digit");
    }
    let allowed = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-';
    if !name.bytes().all(allowed) {
        return refuse("only lowercase letters, digits, `_` and `-` are allowed");
    }
    Ok(())
}

/// Accepts branch names that are valid git ref names made of `A-Z a-z 0-9 . _ - /`.
fn validate_branch(branch: &str) -> Result<(), GitError> {
    let refuse = |reason| {
        Err(GitError::InvalidBranch {
            branch: branch.into(),
            reason,
        })
    };
    if branch.is_empty() {
        return refuse("it is empty");
    }
    if branch.len() > MAX_BRANCH_LEN {
        return refuse("it is too long");
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/');
    if !branch.chars().all(allowed) {
        return refuse("only letters, digits, `.`, `_`, `-` and `/` are allowed");
    }
    if branch.starts_with('-') {
        return refuse("it starts with `-`");
    }
    if branch == "HEAD" {
        return refuse("`HEAD` is not a branch");
    }
    if branch.contains("..") {
        return refuse("it contains `..`");
    }
    if branch.ends_with('.') {
        return refuse("it ends with `.`");
    }
    for component in branch.split('/') {
        if component.is_empty() {
            return refuse("it has an empty `/` component");
        }
        if component.starts_with('.') {
            return refuse("a component starts with `.`");
        }
        if component.ends_with(".lock") {
            return refuse("a component ends with `.lock`");
        }
    }
    Ok(())
}

/// Accepts revisions git will read as revisions, never as options.
fn validate_rev(rev: &str) -> Result<(), GitError> {
    let refuse = |reason| {
        Err(GitError::InvalidRev {
            rev: rev.into(),
            reason,
        })
    };
    if rev.is_empty() {
        return refuse("it is empty");
    }
    if rev.len() > MAX_REV_LEN {
        return refuse("it is too long");
    }
    if rev.starts_with('-') {
        return refuse("it starts with `-`");
    }
    if rev.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return refuse("it contains whitespace or control characters");
    }
    Ok(())
}

/// Accepts relative paths inside the tree: no leading `/`, no empty, `.` or `..` component,
/// no `.git` component, no control characters.
fn validate_path(path: &str) -> Result<(), GitError> {
    let refuse = |reason| {
        Err(GitError::InvalidPath {
            path: path.into(),
            reason,
        })
    };
    if path.is_empty() {
        return refuse("it is empty");
    }
    if path.len() > MAX_PATH_LEN {
        return refuse("it is too long");
    }
    if path.starts_with('/') {
        return refuse("it is absolute");
    }
    if path.chars().any(char::is_control) {
        return refuse("it contains control characters");
    }
    for component in path.split('/') {
        match component {
            "" => return refuse("it has an empty component (`//` or a trailing `/`)"),
            "." | ".." => return refuse("it has a `.` or `..` component"),
            _ if component.eq_ignore_ascii_case(".git") => {
                return refuse("it has a `.git` component");
            }
            _ => {}
        }
    }
    Ok(())
}

/// An object id (40 or 64 hex digits) printed by git.
fn parse_oid(text: &str, args: &str) -> Result<String, GitError> {
    let oid = text.trim();
    let hex = oid.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if hex && matches!(oid.len(), 40 | 64) {
        Ok(oid.to_owned())
    } else {
        Err(GitError::UnexpectedOutput {
            args: args.into(),
            output: cut(oid),
        })
    }
}

/// `merge-tree --write-tree --name-only --no-messages -z` output: the tree, then the
/// conflicted paths (deduplicated, in order).
fn parse_merge_tree(stdout: &[u8], args: &str) -> Result<(String, Vec<String>), GitError> {
    let mut fields = stdout
        .split(|b| *b == 0)
        .map(|field| String::from_utf8_lossy(field).into_owned());
    let tree = parse_oid(&fields.next().unwrap_or_default(), args)?;
    let mut files: Vec<String> = Vec::new();
    for file in fields {
        if !file.is_empty() && !files.contains(&file) {
            files.push(file);
        }
    }
    Ok((tree, files))
}

/// The blob id of `path` in `ls-tree -z` output, if `path` is a file there.
fn blob_in_listing(listing: &[u8], path: &str) -> Option<String> {
    listing.split(|b| *b == 0).find_map(|entry| {
        let entry = std::str::from_utf8(entry).ok()?;
        let (meta, name) = entry.split_once('\t')?;
        let mut meta = meta.split(' ');
        let (_mode, kind, oid) = (meta.next()?, meta.next()?, meta.next()?);
        (name == path && kind == "blob").then(|| oid.to_owned())
    })
}

/// The last [`STDERR_LINES`] lines of `stderr`, at most [`STDERR_BYTES`] of them.
fn tail(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let lines: Vec<&str> = text.trim().lines().collect();
    let kept = lines[lines.len().saturating_sub(STDERR_LINES)..].join("\n");
    if kept.len() <= STDERR_BYTES {
        return kept;
    }
    let mut start = kept.len() - STDERR_BYTES;
    while !kept.is_char_boundary(start) {
        start += 1;
    }
    format!("…{}", &kept[start..])
}

/// At most 200 bytes of `text`, for error messages.
fn cut(text: &str) -> String {
    let mut end = text.len().min(200);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

fn exit_code(code: Option<i32>) -> String {
    code.map_or_else(
        || "killed by a signal".into(),
        |code| format!("exit code {code}"),
    )
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> GitError + '_ {
    move |source| GitError::Io {
        path: path.to_path_buf(),
        source,
    }
}

async fn path_exists(path: &Path) -> Result<bool, GitError> {
    tokio::fs::try_exists(path).await.map_err(io_at(path))
}

async fn set_mode(path: &Path, mode: u32) -> Result<(), GitError> {
    tokio::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .await
        .map_err(io_at(path))
}

async fn create_world_readable_dir(path: &Path) -> Result<(), GitError> {
    tokio::fs::create_dir(path).await.map_err(io_at(path))?;
    set_mode(path, 0o755).await
}

/// Refuses a `dest` that exists as anything but an empty directory.
async fn ensure_empty_or_absent(dest: &Path) -> Result<(), GitError> {
    match tokio::fs::symlink_metadata(dest).await {
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(GitError::Io {
            path: dest.to_path_buf(),
            source,
        }),
        Ok(meta) if !meta.is_dir() => Err(GitError::DestinationNotEmpty(dest.to_path_buf())),
        Ok(_) => {
            let mut entries = tokio::fs::read_dir(dest).await.map_err(io_at(dest))?;
            match entries.next_entry().await.map_err(io_at(dest))? {
                None => Ok(()),
                Some(_) => Err(GitError::DestinationNotEmpty(dest.to_path_buf())),
            }
        }
    }
}

/// A fresh sibling of `dest` to write the export into.
fn staging_dir(dest: &Path) -> Result<PathBuf, GitError> {
    let (Some(parent), Some(name)) = (dest.parent(), dest.file_name()) else {
        return Err(GitError::Io {
            path: dest.to_path_buf(),
            source: io::Error::new(io::ErrorKind::InvalidInput, "not a directory to create"),
        });
    };
    let mut staging = OsString::from(".");
    staging.push(name);
    staging.push(format!(".partial-{}", uuid::Uuid::new_v4().simple()));
    Ok(parent.join(staging))
}

/// Directories 0755, files 0644 (0755 when any execute bit is set), under `dir`; symlinks
/// are left alone.
fn make_world_readable(dir: &Path) -> Result<(), GitError> {
    for entry in std::fs::read_dir(dir).map_err(io_at(dir))? {
        let path = entry.map_err(io_at(dir))?.path();
        let meta = std::fs::symlink_metadata(&path).map_err(io_at(&path))?;
        let mode = if meta.is_dir() {
            make_world_readable(&path)?;
            0o755
        } else if meta.is_file() {
            if meta.permissions().mode() & 0o111 != 0 {
                0o755
            } else {
                0o644
            }
        } else {
            continue;
        };
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
            .map_err(io_at(&path))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_lowercase_slugs() {
        for good in ["a", "shop", "my-app_2", "0x", &"a".repeat(63)] {
            assert!(validate_name(good).is_ok(), "{good} refused");
        }
        for bad in [
            "",
            "-a",
            "_a",
            "Shop",
            "a.b",
            "a/b",
            "..",
            "../etc",
            "a b",
            &"a".repeat(64),
            "é",
        ] {
            assert!(
                matches!(validate_name(bad), Err(GitError::InvalidName { .. })),
                "{bad} accepted"
            );
        }
    }

    #[test]
    fn repo_paths_stay_under_the_root() {
        let git = LocalGit::new("/srv/artel/repos");
        assert_eq!(
            git.repo_path("shop").unwrap(),
            PathBuf::from("/srv/artel/repos/shop.git")
        );
        assert_eq!(git.clone_url("shop").unwrap(), "/srv/artel/repos/shop.git");
        assert!(git.repo_path("../shop").is_err());
    }

    #[test]
    fn relative_roots_are_made_absolute() {
        let git = LocalGit::new("repos");
        assert!(git.root().is_absolute());
        assert!(git.root().ends_with("repos"));
    }

    #[test]
    fn branches_are_safe_ref_names() {
        for good in [
            "main",
            "task/x",
            "task/42-add-login",
            "feature/a.b_c",
            "v1.2",
        ] {
            assert!(validate_branch(good).is_ok(), "{good} refused");
        }
        for bad in [
            "",
            "-x",
            "HEAD",
            "task/",
            "/task",
            "task//x",
            "a..b",
            "a.",
            "task/.hidden",
            "x.lock",
            "a b",
            "a~1",
            "a^",
            "a:b",
            "a@{1}",
            "a*",
            "a\\b",
            &"a".repeat(201),
        ] {
            assert!(
                matches!(validate_branch(bad), Err(GitError::InvalidBranch { .. })),
                "{bad} accepted"
            );
        }
    }

    #[test]
    fn revisions_never_look_like_options() {
        for good in ["main", "HEAD~2", "abc123", "task/x^", "main@{1}"] {
            assert!(validate_rev(good).is_ok(), "{good} refused");
        }
        for bad in ["", "-n", "--upload-pack=x", "a b", "a\nb", &"a".repeat(257)] {
            assert!(
                matches!(validate_rev(bad), Err(GitError::InvalidRev { .. })),
                "{bad:?} accepted"
            );
        }
    }

    #[test]
    fn file_paths_stay_inside_the_tree() {
        for good in [
            "README.md",
            "src/main.rs",
            "a/b/c.txt",
            ".gitignore",
            "x..y",
            "-dash",
        ] {
            assert!(validate_path(good).is_ok(), "{good} refused");
        }
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a/./b",
            ".",
            "a//b",
            "a/",
            ".git/config",
            "sub/.GIT/hooks/pre-commit",
            "a\nb",
            "a\0b",
        ] {
            assert!(
                matches!(validate_path(bad), Err(GitError::InvalidPath { .. })),
                "{bad:?} accepted"
            );
        }
    }

    #[test]
    fn task_branches_are_recognised() {
        assert!(is_task_branch("task/x"));
        assert!(!is_task_branch("task/"));
        assert!(!is_task_branch("task"));
        assert!(!is_task_branch("main"));
        assert!(!is_task_branch("tasks/x"));
    }

    #[test]
    fn object_ids_are_checked() {
        let sha1 = "a".repeat(40);
        assert_eq!(parse_oid(&format!("{sha1}\n"), "x").unwrap(), sha1);
        assert!(parse_oid(&"b".repeat(64), "x").is_ok());
        assert!(parse_oid("", "x").is_err());
        assert!(parse_oid(&"A".repeat(40), "x").is_err());
        assert!(parse_oid(&"a".repeat(41), "x").is_err());
    }

    #[test]
    fn merge_tree_output_gives_tree_and_conflicts() {
        let tree = "d".repeat(40);
        let clean = format!("{tree}\0");
        assert_eq!(
            parse_merge_tree(clean.as_bytes(), "x").unwrap(),
            (tree.clone(), vec![])
        );
        let conflicted = format!("{tree}\0src/a.txt\0b.txt\0src/a.txt\0");
        assert_eq!(
            parse_merge_tree(conflicted.as_bytes(), "x").unwrap(),
            (tree, vec!["src/a.txt".to_owned(), "b.txt".to_owned()])
        );
        assert!(parse_merge_tree(b"", "x").is_err());
    }

    #[test]
    fn listings_give_blobs_only() {
        let blob = "e".repeat(40);
        let listing = format!("100644 blob {blob}\tsrc/a.txt\0040000 tree {blob}\tsrc\0");
        assert_eq!(
            blob_in_listing(listing.as_bytes(), "src/a.txt"),
            Some(blob.clone())
        );
        assert_eq!(blob_in_listing(listing.as_bytes(), "src"), None);
        assert_eq!(blob_in_listing(b"", "src/a.txt"), None);
    }

    #[test]
    fn stderr_keeps_the_last_lines() {
        let many: String = (1..=30).map(|n| format!("line {n}\n")).collect();
        let kept = tail(many.as_bytes());
        assert!(kept.starts_with("line 11\n"));
        assert!(kept.ends_with("line 30"));
        let long = "é".repeat(5000);
        let kept = tail(long.as_bytes());
        assert!(kept.len() <= STDERR_BYTES + "…".len());
        assert!(kept.starts_with('…'));
    }

    #[test]
    fn worker_env_isolates_and_identifies() {
        let identity = GitIdentity {
            name: "Robot".into(),
            email: "robot@example.com".into(),
        };
        let env: std::collections::BTreeMap<_, _> =
            git_env(&identity, "/dev/null").into_iter().collect();
        assert_eq!(env["GIT_AUTHOR_NAME"], "Robot");
        assert_eq!(env["GIT_COMMITTER_NAME"], "Robot");
        assert_eq!(env["GIT_AUTHOR_EMAIL"], "robot@example.com");
        assert_eq!(env["GIT_COMMITTER_EMAIL"], "robot@example.com");
        assert_eq!(env["GIT_CONFIG_NOSYSTEM"], "1");
        assert_eq!(env["GIT_CONFIG_GLOBAL"], "/dev/null");
        assert_eq!(env["GIT_TERMINAL_PROMPT"], "0");

        let git = LocalGit::new("/srv/repos");
        let env: std::collections::BTreeMap<_, _> = git.worker_env().unwrap().into_iter().collect();
        // The worker owns its checkout and may not read artel's config in the private repos dir.
        assert_eq!(env["GIT_CONFIG_GLOBAL"], "/dev/null");
        assert_eq!(env["GIT_AUTHOR_NAME"], "artel");
        assert_eq!(env["GIT_AUTHOR_EMAIL"], "artel@localhost");
    }

    #[test]
    fn errors_are_classified() {
        let fatal = [
            GitError::UnknownCommit { rev: "x".into() },
            GitError::MergeConflict {
                branch: "task/x".into(),
                files: vec!["a".into()],
            },
            GitError::InvalidName {
                name: "..".into(),
                reason: "r",
            },
            GitError::NotInstalled {
                program: "git".into(),
            },
        ];
        for err in fatal {
            assert_eq!(err.class(), ErrorClass::Fatal, "{err}");
        }
        let retryable = [
            GitError::Spawn {
                args: "status".into(),
                source: io::Error::other("EAGAIN"),
            },
            GitError::Io {
                path: "/x".into(),
                source: io::Error::other("ENOSPC"),
            },
            GitError::RefChanged {
                reference: "refs/heads/main".into(),
            },
        ];
        for err in retryable {
            assert_eq!(err.class(), ErrorClass::Retryable, "{err}");
        }
    }

    #[test]
    fn command_errors_say_what_failed() {
        let err = GitError::Command {
            args: vec!["fetch".into(), "/w".into()],
            code: Some(128),
            stderr: "fatal: nope".into(),
        };
        assert_eq!(
            err.to_string(),
            "`git fetch /w` failed (exit code 128): fatal: nope"
        );
    }
}
