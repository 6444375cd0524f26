//! A checkout in a worker: what the Developer and the Tester share.
//!
//! Each role runs exactly one command in a fresh worker (the worker-manager's rule: a new
//! job gets a new, clean sandbox). artel prepares the worker's directory on the host first —
//! clones the project's repository into `repo/` and hands the files to the worker's own uid —
//! so the command (an agent, a test run) needs no access to artel's repositories, and the
//! worker never holds more than one checkout.

use crate::agent::template::GeneratedFile;
use crate::git::LocalGit;
use crate::worker_manager::Workers;
use artel_messages::worker_manager::{CommandOutcome, RunCommand, WorkerLimits, WorkerSpec};
use artel_messages::{Classify, Failure, ProjectId, TaskId, WorkerId};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The directory, inside the worker's own, that holds the checkout.
pub const CHECKOUT: &str = "repo";

/// A worker with a checkout, ready for its one command.
pub struct Checkout {
    workers: Workers,
    git: LocalGit,
    worker: WorkerId,
    dir: PathBuf,
}

/// What a checkout is made from.
pub struct CheckoutSpec<'a> {
    /// The project.
    pub project: ProjectId,
    /// The task the worker works for.
    pub task: TaskId,
    /// The local repository's name.
    pub repo: &'a str,
    /// The commit to check out.
    pub commit: &'a str,
    /// The branch to create at that commit (`None`: detached).
    pub branch: Option<&'a str>,
    /// Plain environment for the command (artel's git identity and configuration are added).
    pub env: BTreeMap<String, String>,
    /// The command's limits.
    pub limits: WorkerLimits,
    /// Whether the worker may reach the network (an agent that calls an LLM API).
    pub network: bool,
}

impl Checkout {
    /// Spawns a worker and checks out `spec.commit` in its `repo/` directory.
    pub async fn open(
        workers: &Workers,
        git: &LocalGit,
        spec: CheckoutSpec<'_>,
    ) -> Result<Self, Failure> {
        let mut env: BTreeMap<String, String> = git
            .worker_env()
            .map_err(|e| e.to_failure())?
            .into_iter()
            .collect();
        env.extend(spec.env);
        let worker = workers
            .spawn(WorkerSpec {
                project: spec.project,
                task: spec.task,
                runtime: workers.runtime(),
                image: None,
                env,
                secrets: Vec::new(),
                network: spec.network,
                limits: spec.limits,
            })
            .await?;
        let checkout = Self {
            workers: workers.clone(),
            git: git.clone(),
            worker: worker.id,
            dir: PathBuf::new(),
        };
        match checkout
            .prepare(git, spec.repo, spec.commit, spec.branch)
            .await
        {
            Ok(dir) => Ok(Self { dir, ..checkout }),
            Err(failure) => {
                checkout.close("the checkout could not be prepared").await;
                Err(failure)
            }
        }
    }

    async fn prepare(
        &self,
        git: &LocalGit,
        repo: &str,
        commit: &str,
        branch: Option<&str>,
    ) -> Result<PathBuf, Failure> {
        let info = self
            .workers
            .sandbox(self.worker)
            .await?
            .ok_or_else(|| Failure::retryable(format!("worker {} vanished", self.worker)))?;
        let root = info
            .workspace
            .ok_or_else(|| Failure::fatal("this worker runtime has no host directory"))?;
        let dir = root.join(CHECKOUT);
        let url = git.clone_url(repo).map_err(|e| e.to_failure())?;
        host_git(
            git,
            &root,
            &["clone", "--quiet", "--no-hardlinks", &url, CHECKOUT],
        )
        .await?;
        let mut checkout = vec!["checkout", "--quiet"];
        if let Some(branch) = branch {
            checkout.extend(["-B", branch]);
        } else {
            checkout.push("--detach");
        }
        checkout.push(commit);
        host_git(git, &dir, &checkout).await?;
        if let Some(uid) = info.uid {
            give_to(&dir, uid).map_err(|e| {
                Failure::retryable(format!("cannot hand the checkout to uid {uid}: {e}"))
            })?;
        }
        Ok(dir)
    }

    /// The checkout on the host.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The worker.
    pub fn worker(&self) -> WorkerId {
        self.worker
    }

    /// The road to the worker (for a command that runs beside the caller, like the LLM
    /// agent's tool runner).
    pub fn workers(&self) -> &Workers {
        &self.workers
    }

    /// Runs the one command in the checkout.
    pub async fn run(&self, program: &str, args: Vec<String>) -> Result<CommandOutcome, Failure> {
        self.workers
            .run(RunCommand {
                worker: self.worker,
                program: program.to_owned(),
                args,
                cwd: Some(CHECKOUT.to_owned()),
            })
            .await
    }

    /// Writes generated files into the checkout (before its command runs), owned like the
    /// checkout so the worker's uid can change them.
    pub fn write_files(&self, files: &[GeneratedFile]) -> Result<(), Failure> {
        use std::os::unix::fs::MetadataExt;
        let owner = std::fs::metadata(&self.dir)
            .map(|m| m.uid())
            .map_err(|e| Failure::retryable(format!("cannot read the checkout: {e}")))?;
        for file in files {
            let path = self.dir.join(&file.path);
            let cannot =
                |e: std::io::Error| Failure::retryable(format!("cannot write {}: {e}", file.path));
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(cannot)?;
                std::os::unix::fs::lchown(parent, Some(owner), None).map_err(cannot)?;
            }
            std::fs::write(&path, &file.contents)
                .and_then(|()| std::os::unix::fs::lchown(&path, Some(owner), None))
                .map_err(cannot)?;
        }
        Ok(())
    }

    /// The commit the checkout's `HEAD` is at.
    pub async fn head(&self) -> Result<String, Failure> {
        let out = host_git(
            &self.git,
            &self.dir,
            &["rev-parse", "--verify", "HEAD^{commit}"],
        )
        .await?;
        Ok(out.trim().to_owned())
    }

    /// Stops the worker (removing its directory). Best effort: a stop that fails is logged;
    /// the worker reaper removes what is left.
    pub async fn close(self, reason: &str) {
        if let Err(err) = self.workers.stop(self.worker, reason).await {
            tracing::warn!(worker = %self.worker, %err, "stopping a worker failed");
        }
    }
}

/// Runs `git` on the host in `dir` through [`LocalGit::run_in_worktree`] (artel's isolated
/// git environment; the checkout belongs to the worker's uid).
pub async fn host_git(git: &LocalGit, dir: &Path, args: &[&str]) -> Result<String, Failure> {
    git.run_in_worktree(dir, args)
        .await
        .map_err(|e| e.to_failure())
}

/// Makes `uid` the owner of everything under `dir` (symlinks themselves, not their targets).
fn give_to(dir: &Path, uid: u32) -> std::io::Result<()> {
    std::os::unix::fs::lchown(dir, Some(uid), None)?;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            give_to(&path, uid)?;
        } else {
            std::os::unix::fs::lchown(&path, Some(uid), None)?;
        }
    }
    Ok(())
}
