//! The local-process runtime: a worker is a directory and, while a command runs, a process
//! group — the offline default, needing nothing but a POSIX shell.
//!
//! The seeds' workers had no limits at all (audit item 10). Here every command runs:
//!
//! - **in its own workspace**: `<root>/<worker>/{work,home,tmp}`, the command starting in
//!   `work` (or a directory inside it; a `cwd` leaving it, also through a symlink, is
//!   refused), `HOME` and `TMPDIR` pointing at `home` and `tmp`;
//! - **with a scrubbed environment**: the environment is cleared, then only `PATH`, `HOME`,
//!   `TMPDIR`, `LANG` and the spec's variables (and named secrets) are set — nothing of
//!   artel's own environment (`DATABASE_URL`, `ARTEL_MASTER_KEY`, provider keys) reaches it;
//! - **under resource limits**: the workspace forbids `unsafe`, so there is no `pre_exec` and
//!   no `setrlimit` call in this process. Instead the program is started through
//!   `/bin/sh -c 'ulimit -c 0 -t CPU -v MEM_KB -p NPROC -f BLOCKS && exec "$0" "$@"' program
//!   args…`: the shell lowers its own soft *and* hard limits (so the worker cannot raise them
//!   again) and then becomes the program. Limits are per process as the kernel defines
//!   them: CPU seconds and address space per process (not summed over the group — the
//!   wall-clock timeout bounds the whole), processes per *user* (see below), file size per
//!   file. The process-count flag is probed at start: dash spells it `-p`, bash `-u`;
//! - **in its own process group** (`process_group(0)`), killed as a whole with `killpg` on
//!   the wall-clock timeout, on stop, when a run is abandoned (a drop guard), and after every
//!   command (so a `sleep 1000 &` left behind does not outlive it);
//! - **as an unprivileged user when artel is root.** `RLIMIT_NPROC` counts every process of
//!   the *real uid*, and root ignores it — so a fork bomb run as root is not contained at
//!   all, and one run as a shared `nobody` shares its budget with every other worker (and
//!   could signal their processes and read their files). So by default ([`RunAs::Auto`]) a
//!   root artel gives each live worker its own uid from a range ([`DEFAULT_FIRST_UID`]…,
//!   no passwd entry needed), owning its workspace (mode 0700) and nothing else. The
//!   process limit is then exactly "processes of this worker", and a process that left the
//!   group (`setsid`) is still found and killed by uid when the command ends and when the
//!   worker is destroyed. A non-root artel runs workers as itself: limits still apply, but
//!   the process limit counts all of that user's processes, and a process that escapes the
//!   group is not swept. Zombies count too, until reaped: orphans are reparented to the
//!   host's init (or a subreaper), so an init that reaps slowly lets a fork bomb's dead
//!   weigh on its uid a while — uids are therefore leased round the range, not reused at
//!   once. The address-space limit makes allocations *fail*; a program that reports that
//!   and exits (Python's `MemoryError`) ends with an exit code like any other.
//!
//! - **inside bubblewrap when it works here** ([`bwrap`]): the host read-only, artel's data
//!   dir and the other workers hidden, no network unless the spec asks for it. Without it, a
//!   non-root artel refuses to run an agent's code unless told otherwise
//!   ([`bwrap::unsandboxed_verdict`], checked where the runtime is chosen at start).
//!
//! Output is read line by line (each line cut at a byte limit, the cut reported) and handed
//! to the manager, which publishes it as events; the runtime never drops a line itself.

pub mod bwrap;

use self::bwrap::{Bwrap, SandboxMode, View};
use super::{Job, RunEnd, RunEvent, Sandbox, SandboxInfo, WorkerError, check_relative_cwd};
use artel_messages::WorkerId;
use artel_messages::worker_manager::{OutputStream, WorkerRuntime, WorkerSpec};
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use std::collections::BTreeSet;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::Command;
use tokio::sync::{mpsc, watch};

/// The first uid handed to workers when a root artel drops privileges (see [`RunAs::Auto`]).
pub const DEFAULT_FIRST_UID: u32 = 2_000_000_000;
/// How many uids that range holds: the most workers alive at once.
pub const DEFAULT_UID_COUNT: u32 = 65_536;
/// The gid worker processes run with (`nogroup` on Debian).
pub const DEFAULT_GID: u32 = 65_534;

/// Whom worker processes run as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RunAs {
    /// A per-worker uid range when artel runs as root (the default range), else the
    /// invoking user.
    #[default]
    Auto,
    /// The user artel runs as. Under root this disables the process limit: avoid.
    Invoker,
    /// One uid per live worker, `first..first + count`, all with group `gid`. Needs root.
    /// The range must belong to nobody else on the host: a process of that uid found while
    /// sweeping is killed.
    UidRange {
        /// The first uid.
        first: u32,
        /// How many.
        count: u32,
        /// The group every worker process runs with.
        gid: u32,
    },
}

/// How the process runtime works.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessConfig {
    /// Where workspaces are made: one directory per worker below it. It must not be under a
    /// directory the workers' uids cannot traverse (e.g. `/root`).
    pub root: PathBuf,
    /// The shell that applies the limits and `exec`s the program.
    pub shell: PathBuf,
    /// The workers' `PATH`.
    pub path: String,
    /// The workers' `LANG`.
    pub lang: String,
    /// Whom worker processes run as.
    pub run_as: RunAs,
    /// After a command's process exits, how long to wait for the rest of its output (a
    /// straggler holding the pipe open) after its group was killed.
    pub drain_grace: Duration,
    /// Whether commands run inside bubblewrap.
    pub sandbox: SandboxMode,
    /// Directories the sandbox hides from every command besides the workers' root and
    /// `/tmp` (artel's data dir).
    pub hidden: Vec<PathBuf>,
}

impl ProcessConfig {
    /// The defaults, with workspaces below `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            shell: PathBuf::from("/bin/sh"),
            path: "/usr/local/bin:/usr/bin:/bin".to_owned(),
            lang: "C.UTF-8".to_owned(),
            run_as: RunAs::Auto,
            drain_grace: Duration::from_secs(2),
            sandbox: SandboxMode::Auto,
            hidden: Vec::new(),
        }
    }
}

/// The resolved identity: `None` runs as the invoker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Range {
    first: u32,
    count: u32,
    gid: u32,
}

/// The local-process [`Sandbox`].
#[derive(Debug)]
pub struct ProcessRuntime {
    config: ProcessConfig,
    range: Option<Range>,
    /// `ulimit`'s flag for the process limit in this shell (`-p` in dash, `-u` in bash).
    nproc_flag: &'static str,
    /// Uids held by live workers.
    leases: Mutex<Leases>,
    /// The sandbox every command runs in, when there is one.
    bwrap: Option<Bwrap>,
}

/// Which uids of the range are held, and where the next search starts.
#[derive(Debug, Default)]
struct Leases {
    held: BTreeSet<u32>,
    next: u32,
}

/// One worker's sandbox: its directories and identity.
#[derive(Debug)]
pub struct ProcessSandbox {
    dir: PathBuf,
    work: PathBuf,
    home: PathBuf,
    tmp: PathBuf,
    /// `(uid, gid)` when it runs as its own user.
    ids: Option<(u32, u32)>,
    /// Whether its commands share the host's network (always, without a sandbox).
    network: bool,
}

impl ProcessSandbox {
    /// The worker's own directory, where commands start.
    pub fn work_dir(&self) -> &Path {
        &self.work
    }
}

impl ProcessRuntime {
    /// A runtime with `config`. Checks the shell and learns its `ulimit` flags (a quick,
    /// blocking probe); a shell that cannot limit processes is refused.
    pub fn new(config: ProcessConfig) -> Result<Self, WorkerError> {
        let root_user = nix::unistd::geteuid().is_root();
        let range = match config.run_as {
            RunAs::Auto if root_user => Some(Range {
                first: DEFAULT_FIRST_UID,
                count: DEFAULT_UID_COUNT,
                gid: DEFAULT_GID,
            }),
            RunAs::Auto | RunAs::Invoker => None,
            RunAs::UidRange { first, count, gid } => {
                if !root_user {
                    return Err(WorkerError::Setup(
                        "running workers under their own uids needs artel to run as root".into(),
                    ));
                }
                if count == 0 || first == 0 || first.checked_add(count).is_none() {
                    return Err(WorkerError::Setup(format!(
                        "bad worker uid range {first}+{count}"
                    )));
                }
                Some(Range { first, count, gid })
            }
        };
        let probe = |flag: &str| {
            std::process::Command::new(&config.shell)
                .arg("-c")
                .arg(format!("ulimit {flag}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .map(|s| s.success())
        };
        let shell_error = |err: io::Error| {
            WorkerError::Setup(format!(
                "cannot run the shell {}: {err}",
                config.shell.display()
            ))
        };
        let nproc_flag = if probe("-u").map_err(shell_error)? {
            "-u"
        } else if probe("-p").map_err(shell_error)? {
            "-p"
        } else {
            return Err(WorkerError::Setup(format!(
                "{} has no ulimit flag for the process limit",
                config.shell.display()
            )));
        };
        let bwrap = Self::sandbox(&config, range)?;
        Ok(Self {
            config,
            range,
            nproc_flag,
            leases: Mutex::new(Leases::default()),
            bwrap,
        })
    }

    /// bubblewrap as `config.sandbox` asks, probed as a worker would run it (as the range's
    /// first uid under root, so it makes an unprivileged user namespace).
    fn sandbox(config: &ProcessConfig, range: Option<Range>) -> Result<Option<Bwrap>, WorkerError> {
        if config.sandbox == SandboxMode::None {
            return Ok(None);
        }
        let usable = Bwrap::find(&config.path)
            .ok_or_else(|| format!("no bwrap on {}", config.path))
            .and_then(|program| {
                let root = &config.root;
                std::fs::create_dir_all(root)
                    .and_then(|()| {
                        std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o711))
                    })
                    .map_err(|e| format!("cannot make {}: {e}", root.display()))?;
                let bwrap =
                    Bwrap::new(program, config.hidden.iter().cloned().chain([root.clone()]));
                bwrap.probe(
                    &config.shell,
                    root,
                    range.map(|range| (range.first, range.gid)),
                )?;
                Ok(bwrap)
            });
        match (usable, config.sandbox) {
            (Ok(bwrap), _) => Ok(Some(bwrap)),
            (Err(why), SandboxMode::Bwrap) => Err(WorkerError::Setup(format!(
                "workers.sandbox = bwrap, but bubblewrap is not usable: {why}"
            ))),
            (Err(why), _) => {
                tracing::warn!(reason = %why, "bubblewrap is not usable: worker commands run without a sandbox");
                Ok(None)
            }
        }
    }

    /// True when every command runs inside bubblewrap.
    pub fn sandboxed(&self) -> bool {
        self.bwrap.is_some()
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &ProcessConfig {
        &self.config
    }

    /// True when each worker runs as its own uid.
    pub fn drops_privileges(&self) -> bool {
        self.range.is_some()
    }

    /// The next free uid after the last one leased, round the range: a uid just released
    /// rests as long as possible (its zombies, if the host's init reaps slowly, still count
    /// against the process limit of whoever gets it next).
    fn lease_uid(&self, range: Range) -> Result<u32, WorkerError> {
        let mut leases = self.leases.lock().unwrap_or_else(PoisonError::into_inner);
        let start = leases.next.saturating_sub(range.first) % range.count;
        let free = (0..range.count)
            .map(|i| range.first + (start + i) % range.count)
            .find(|uid| !leases.held.contains(uid));
        let uid = free.ok_or(WorkerError::NoFreeUid { count: range.count })?;
        leases.held.insert(uid);
        leases.next = uid + 1;
        Ok(uid)
    }

    fn release_uid(&self, uid: u32) {
        self.leases
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .held
            .remove(&uid);
    }

    /// The shell line that lowers the limits and becomes the program (`$0`, args `$@`).
    fn limit_script(&self, job: &Job) -> String {
        let limits = &job.limits;
        let memory_kb = (limits.memory_bytes / 1024).max(1);
        let file_blocks = limits.file_size_bytes.div_ceil(512).max(1);
        format!(
            "ulimit -c 0 && ulimit -t {cpu} && ulimit -v {memory_kb} && ulimit {nproc} {pids} \
             && ulimit -f {file_blocks} && exec \"$0\" \"$@\"",
            cpu = limits.cpu_seconds.max(1),
            nproc = self.nproc_flag,
            pids = limits.pids.max(1),
        )
    }

    async fn make_dirs(&self, sandbox: &ProcessSandbox) -> Result<(), WorkerError> {
        let io_err = |path: &Path| {
            let path = path.to_owned();
            move |source| WorkerError::Workspace { path, source }
        };
        let root = &self.config.root;
        tokio::fs::create_dir_all(root)
            .await
            .map_err(io_err(root))?;
        if sandbox.ids.is_some() {
            // Worker uids must be able to pass through the root (not list it).
            let mode = std::fs::Permissions::from_mode(0o711);
            tokio::fs::set_permissions(root, mode)
                .await
                .map_err(io_err(root))?;
        }
        tokio::fs::create_dir(&sandbox.dir)
            .await
            .map_err(io_err(&sandbox.dir))?;
        let mode = std::fs::Permissions::from_mode(0o711);
        tokio::fs::set_permissions(&sandbox.dir, mode)
            .await
            .map_err(io_err(&sandbox.dir))?;
        for dir in [&sandbox.work, &sandbox.home, &sandbox.tmp] {
            tokio::fs::create_dir(dir).await.map_err(io_err(dir))?;
            let mode = std::fs::Permissions::from_mode(0o700);
            tokio::fs::set_permissions(dir, mode)
                .await
                .map_err(io_err(dir))?;
            if let Some((uid, gid)) = sandbox.ids {
                std::os::unix::fs::chown(dir, Some(uid), Some(gid)).map_err(io_err(dir))?;
            }
        }
        Ok(())
    }

    /// `cwd` inside the sandbox's work directory, refused if it leaves it (also by symlink).
    async fn resolve_cwd(
        &self,
        sandbox: &ProcessSandbox,
        cwd: Option<&str>,
    ) -> Result<PathBuf, WorkerError> {
        let Some(cwd) = cwd else {
            return Ok(sandbox.work.clone());
        };
        let relative = check_relative_cwd(cwd)?;
        let bad = |reason: String| WorkerError::BadCwd {
            cwd: cwd.to_owned(),
            reason,
        };
        let base = tokio::fs::canonicalize(&sandbox.work)
            .await
            .map_err(|e| bad(format!("the workspace is gone: {e}")))?;
        let target = tokio::fs::canonicalize(sandbox.work.join(relative))
            .await
            .map_err(|e| bad(e.to_string()))?;
        if !target.starts_with(&base) {
            return Err(bad("it leaves the worker's directory".into()));
        }
        Ok(target)
    }
}

impl Sandbox for ProcessRuntime {
    type Instance = ProcessSandbox;

    fn kind(&self) -> WorkerRuntime {
        WorkerRuntime::Process
    }

    async fn create(
        &self,
        worker: WorkerId,
        spec: &WorkerSpec,
    ) -> Result<ProcessSandbox, WorkerError> {
        let dir = self.config.root.join(worker.as_uuid().to_string());
        let ids = match self.range {
            Some(range) => Some((self.lease_uid(range)?, range.gid)),
            None => None,
        };
        let sandbox = ProcessSandbox {
            work: dir.join("work"),
            home: dir.join("home"),
            tmp: dir.join("tmp"),
            dir,
            ids,
            network: spec.network,
        };
        if let Err(err) = self.make_dirs(&sandbox).await {
            let _ = tokio::fs::remove_dir_all(&sandbox.dir).await;
            if let Some((uid, _)) = ids {
                self.release_uid(uid);
            }
            return Err(err);
        }
        Ok(sandbox)
    }

    fn describe(&self, sandbox: &ProcessSandbox) -> SandboxInfo {
        SandboxInfo {
            workspace: Some(sandbox.work.clone()),
            uid: sandbox.ids.map(|(uid, _)| uid),
        }
    }

    async fn run(
        &self,
        sandbox: &ProcessSandbox,
        job: Job,
        events: mpsc::Sender<RunEvent>,
        mut cancel: watch::Receiver<bool>,
    ) -> Result<RunEnd, WorkerError> {
        let cwd = self.resolve_cwd(sandbox, job.cwd.as_deref()).await?;
        let mut command = match &self.bwrap {
            Some(bwrap) => {
                let mut command = Command::new(bwrap.program());
                command
                    .args(bwrap.args(&View {
                        worker_dir: &sandbox.dir,
                        cwd: &cwd,
                        network: sandbox.network,
                    }))
                    .arg(&self.config.shell);
                command
            }
            None => Command::new(&self.config.shell),
        };
        command
            .arg("-c")
            .arg(self.limit_script(&job))
            .arg(&job.program)
            .args(&job.args)
            .env_clear()
            .env("PATH", &self.config.path)
            .env("HOME", &sandbox.home)
            .env("TMPDIR", &sandbox.tmp)
            .env("LANG", &self.config.lang)
            .envs(&job.env)
            .current_dir(&cwd)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .process_group(0);
        if let Some((uid, gid)) = sandbox.ids {
            command.uid(uid).gid(gid);
        }
        let mut child = command.spawn().map_err(|source| WorkerError::Spawn {
            program: job.program.clone(),
            source,
        })?;
        let pgid = child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .ok_or_else(|| WorkerError::Spawn {
                program: job.program.clone(),
                source: io::Error::other("the child exited before its pid was read"),
            })?;
        // From here on, however this future ends (also dropped mid-run), the group dies.
        let guard = GroupGuard {
            pgid,
            uid: sandbox.ids.map(|(uid, _)| uid),
        };
        let _ = events
            .send(RunEvent::Started {
                handle: format!("pgid:{pgid}"),
            })
            .await;
        let mut readers = tokio::task::JoinSet::new();
        if let Some(out) = child.stdout.take() {
            readers.spawn(read_lines(
                out,
                OutputStream::Stdout,
                job.max_line_bytes,
                events.clone(),
            ));
        }
        if let Some(err) = child.stderr.take() {
            readers.spawn(read_lines(
                err,
                OutputStream::Stderr,
                job.max_line_bytes,
                events.clone(),
            ));
        }
        drop(events);

        let timeout = job.limits.wall_clock_timeout();
        let cancelled = async {
            if cancel.wait_for(|stop| *stop).await.is_err() {
                // The manager dropped the switch: nobody can cancel any more.
                std::future::pending::<()>().await;
            }
        };
        let (status, timed_out, was_cancelled) = tokio::select! {
            status = child.wait() => (Some(status), false, false),
            () = tokio::time::sleep(timeout) => (None, true, false),
            () = cancelled => (None, false, true),
        };
        // Kill the rest of the group (and, with its own uid, anything that left the group)
        // whatever happened: the command is over, nothing of it may live on.
        guard.kill();
        let status = match status {
            Some(status) => status,
            None => child.wait().await,
        }
        .map_err(|source| WorkerError::Io {
            what: "waiting for the command",
            source,
        })?;
        // Stragglers holding the pipes were just killed; give the readers a moment to drain
        // what is buffered, then stop waiting.
        let drained = tokio::time::timeout(self.config.drain_grace, async {
            while readers.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                pgid,
                "output readers did not finish after the group was killed"
            );
            readers.abort_all();
        }
        drop(guard);
        use std::os::unix::process::ExitStatusExt;
        let (code, signal) = if self.bwrap.is_some() {
            bwrap::decode_exit(status.code(), status.signal())
        } else {
            (status.code(), status.signal())
        };
        Ok(RunEnd {
            exit_code: if timed_out || was_cancelled {
                None
            } else {
                code
            },
            signal,
            timed_out,
            cancelled: was_cancelled,
            oom_killed: false,
        })
    }

    async fn reap(&self, workspace: Option<&Path>, uid: Option<u32>) {
        // Only a uid from this runtime's reserved range is swept: such a uid belongs to one
        // worker and nothing else, so killing every process of it is safe. Without one (artel
        // not root) the orphan's processes end at their CPU limit; a process-group id from a
        // previous boot could name someone else's group, so it is never used here.
        if let (Some(uid), true) = (uid, self.drops_privileges()) {
            sweep_uid(uid);
        }
        if let Some(dir) = workspace.filter(|dir| dir.starts_with(&self.config().root))
            && let Err(err) = tokio::fs::remove_dir_all(dir).await
            && err.kind() != io::ErrorKind::NotFound
        {
            tracing::warn!(workspace = %dir.display(), error = %err, "cannot remove an orphaned workspace");
        }
    }

    async fn destroy(&self, sandbox: &ProcessSandbox) -> Result<(), WorkerError> {
        if let Some((uid, _)) = sandbox.ids {
            sweep_uid(uid);
        }
        match tokio::fs::remove_dir_all(&sandbox.dir).await {
            Ok(()) => {}
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(WorkerError::Workspace {
                    path: sandbox.dir.clone(),
                    source,
                });
            }
        }
        if let Some((uid, _)) = sandbox.ids {
            self.release_uid(uid);
        }
        Ok(())
    }
}

/// Kills a command's process group — and every process of its own uid — when dropped or
/// asked to.
struct GroupGuard {
    pgid: i32,
    uid: Option<u32>,
}

impl GroupGuard {
    fn kill(&self) {
        // ESRCH (nobody left) is the usual, fine answer.
        let _ = killpg(Pid::from_raw(self.pgid), Signal::SIGKILL);
        if let Some(uid) = self.uid {
            sweep_uid(uid);
        }
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Kills every process whose real or effective uid is `uid`, a few rounds (a process may
/// fork while the list is read). Only ever called with a uid leased to one worker.
fn sweep_uid(uid: u32) {
    for _ in 0..5 {
        let mut found = false;
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return;
        };
        for entry in entries.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|name| name.parse::<i32>().ok())
            else {
                continue;
            };
            let Ok(status) = std::fs::read_to_string(entry.path().join("status")) else {
                continue;
            };
            let owned = status
                .lines()
                .find_map(|line| line.strip_prefix("Uid:"))
                .map(|ids| {
                    ids.split_whitespace()
                        .take(2)
                        .any(|id| id.parse::<u32>() == Ok(uid))
                })
                .unwrap_or(false);
            if owned {
                found = true;
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
        if !found {
            return;
        }
    }
}

/// Reads `from` line by line and hands each line on; a line longer than `max` bytes is cut
/// there, and the cut is reported with it.
async fn read_lines<R>(from: R, stream: OutputStream, max: usize, to: mpsc::Sender<RunEvent>)
where
    R: AsyncRead + Unpin,
{
    let mut reader = BufReader::new(from);
    let mut buf = Vec::new();
    loop {
        match read_capped_line(&mut reader, max, &mut buf).await {
            Ok(Some(cut_bytes)) => {
                if buf.last() == Some(&b'\r') {
                    buf.pop();
                }
                let line = RunEvent::Line {
                    stream,
                    text: String::from_utf8_lossy(&buf).into_owned(),
                    cut_bytes,
                };
                if to.send(line).await.is_err() {
                    return;
                }
            }
            Ok(None) => return,
            Err(err) => {
                tracing::warn!(%stream, error = %err, "reading a command's output failed");
                return;
            }
        }
    }
}

/// The next line (without its newline) into `buf`, keeping at most `max` bytes; answers how
/// many bytes were cut, or `None` at the end of the stream.
async fn read_capped_line<R>(
    reader: &mut R,
    max: usize,
    buf: &mut Vec<u8>,
) -> io::Result<Option<usize>>
where
    R: AsyncBufRead + Unpin,
{
    buf.clear();
    let mut cut = 0;
    let mut any = false;
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(any.then_some(cut));
        }
        any = true;
        let newline = available.iter().position(|&b| b == b'\n');
        let chunk = &available[..newline.unwrap_or(available.len())];
        let take = max.saturating_sub(buf.len()).min(chunk.len());
        buf.extend_from_slice(&chunk[..take]);
        cut += chunk.len() - take;
        let consumed = newline.map_or(available.len(), |i| i + 1);
        reader.consume(consumed);
        if newline.is_some() {
            return Ok(Some(cut));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn long_lines_are_cut_and_the_cut_counted() {
        let input: &[u8] = b"short\nabcdefghij\nlast-no-newline";
        let mut reader = BufReader::with_capacity(4, input);
        let mut buf = Vec::new();
        let mut lines = Vec::new();
        while let Some(cut) = read_capped_line(&mut reader, 6, &mut buf).await.unwrap() {
            lines.push((String::from_utf8(buf.clone()).unwrap(), cut));
        }
        assert_eq!(
            lines,
            [
                ("short".to_owned(), 0),
                ("abcdef".to_owned(), 4),
                ("last-n".to_owned(), 9)
            ]
        );
    }

    #[test]
    fn the_limit_script_lowers_every_limit_then_execs() {
        let runtime = ProcessRuntime::new(ProcessConfig::new("/tmp/unused")).unwrap();
        let job = Job {
            program: "true".into(),
            args: vec![],
            cwd: None,
            env: Default::default(),
            limits: artel_messages::worker_manager::WorkerLimits {
                cpu_seconds: 7,
                memory_bytes: 256 << 20,
                pids: 32,
                file_size_bytes: 1000,
                wall_clock_timeout_secs: 5,
            },
            max_line_bytes: 100,
        };
        let script = runtime.limit_script(&job);
        assert!(script.contains("ulimit -t 7"), "{script}");
        assert!(script.contains("ulimit -v 262144"), "{script}");
        assert!(
            script.contains(&format!("ulimit {} 32", runtime.nproc_flag)),
            "{script}"
        );
        assert!(script.contains("ulimit -f 2"), "{script}");
        assert!(script.ends_with("exec \"$0\" \"$@\""), "{script}");
    }
}
