//! The bubblewrap (`bwrap`) sandbox around every local-process command, and the rule for
//! when a command may run without one.
//!
//! A uid of its own (artel as root) keeps a worker out of files other uids own, but not out
//! of what is world-readable, and a non-root artel runs workers as itself: its keys and
//! database files are then the worker's too. bubblewrap closes both: it makes unprivileged
//! user, mount and pid namespaces (as the worker's own uid, no setuid bit needed) in which
//! the command sees
//!
//! - the host's filesystem **read-only** (`--ro-bind / /`), a fresh `/dev` and `/proc`, and
//!   an empty `/tmp`;
//! - artel's **data dir** (keys, the managed cluster and its socket, the repositories) and
//!   the **workers' root** (every other worker's directory) as empty tmpfs, with only its own
//!   worker directory bound read-write again on top — mounts apply in order, so the tmpfs
//!   come first;
//! - the Docker socket replaced by `/dev/null`;
//! - with `network: false`, a network namespace of its own: loopback only.
//!
//! It runs in a new session (no `TIOCSTI` into artel's terminal) and dies with its parent.
//! The process-group kill still works: the group led by `bwrap` is killed, and its death
//! takes the pid namespace (so also anything that called `setsid` inside) with it.
//!
//! bubblewrap runs the command as pid 2 under its own reaping init and reports a signal
//! death as exit code `128 + signal`; [`decode_exit`] turns that back into a signal, so a
//! command that exits with such a code on its own is reported as killed by that signal —
//! the shell's own convention.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;

/// `workers.sandbox`: whether local-process commands run inside bubblewrap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SandboxMode {
    /// bubblewrap when it is installed and works here, else none.
    #[default]
    Auto,
    /// bubblewrap, or the runtime does not start.
    Bwrap,
    /// No sandbox (the non-root rule still applies).
    None,
}

/// Sockets a worker must not reach even where the filesystem is readable.
const MASKED_SOCKETS: &[&str] = &["/run/docker.sock", "/var/run/docker.sock"];

/// A usable bubblewrap and what every command hides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bwrap {
    program: PathBuf,
    /// Directories replaced by an empty tmpfs, outermost first, none inside another.
    hidden: Vec<PathBuf>,
}

/// One command's view: its worker directory, where it starts, and whether it has network.
pub struct View<'a> {
    /// The worker's own directory, bound read-write.
    pub worker_dir: &'a Path,
    /// Where the command starts (inside `worker_dir`).
    pub cwd: &'a Path,
    /// Whether it shares the host's network.
    pub network: bool,
}

impl Bwrap {
    /// `bwrap` on `path` (a `PATH`-style list), or `None`.
    pub fn find(path: &str) -> Option<PathBuf> {
        path.split(':')
            .filter(|dir| !dir.is_empty())
            .map(|dir| Path::new(dir).join("bwrap"))
            .find(|candidate| candidate.is_file())
    }

    /// A sandbox with `program` hiding `hidden` (plus `/tmp`); nested entries are dropped,
    /// their outer directory hides them already.
    pub fn new(program: PathBuf, hidden: impl IntoIterator<Item = PathBuf>) -> Self {
        let mut all: Vec<PathBuf> = hidden
            .into_iter()
            .chain([PathBuf::from("/tmp")])
            .map(|dir| std::fs::canonicalize(&dir).unwrap_or(dir))
            .collect();
        all.sort();
        all.dedup();
        let mut kept: Vec<PathBuf> = Vec::new();
        for dir in all {
            if !kept.iter().any(|outer| dir.starts_with(outer)) {
                kept.push(dir);
            }
        }
        Self {
            program,
            hidden: kept,
        }
    }

    /// The `bwrap` program.
    pub fn program(&self) -> &Path {
        &self.program
    }

    /// What is hidden from every command.
    pub fn hidden(&self) -> &[PathBuf] {
        &self.hidden
    }

    /// `bwrap`'s arguments up to and including `--`; the command follows.
    pub fn args(&self, view: &View<'_>) -> Vec<OsString> {
        let mut args: Vec<OsString> = [
            "--die-with-parent",
            "--new-session",
            "--unshare-pid",
            "--unshare-ipc",
            "--unshare-uts",
            "--ro-bind",
            "/",
            "/",
            "--dev",
            "/dev",
            "--proc",
            "/proc",
        ]
        .into_iter()
        .map(OsString::from)
        .collect();
        if !view.network {
            args.push("--unshare-net".into());
        }
        for socket in MASKED_SOCKETS {
            if Path::new(socket).exists() {
                args.extend(["--ro-bind", "/dev/null", socket].map(OsString::from));
            }
        }
        for dir in &self.hidden {
            if dir.is_dir() {
                args.push("--tmpfs".into());
                args.push(dir.into());
            }
        }
        let dir = std::fs::canonicalize(view.worker_dir).unwrap_or(view.worker_dir.to_owned());
        // The configured path too, should it differ from the canonical one (a symlink).
        let also = (dir != view.worker_dir).then_some(view.worker_dir);
        for path in std::iter::once(dir.as_path()).chain(also) {
            args.push("--bind".into());
            args.push(dir.as_path().into());
            args.push(path.into());
        }
        args.push("--chdir".into());
        args.push(view.cwd.into());
        args.push("--".into());
        args
    }

    /// Runs `true` in the full sandbox (as `ids` when given) to learn whether it works here:
    /// user namespaces may be off, or bubblewrap unable to mount. Answers why not.
    /// `dir` is bound as a worker directory would be.
    pub fn probe(&self, shell: &Path, dir: &Path, ids: Option<(u32, u32)>) -> Result<(), String> {
        let view = View {
            worker_dir: dir,
            cwd: dir,
            network: false,
        };
        let mut command = std::process::Command::new(&self.program);
        command
            .args(self.args(&view))
            .arg(shell)
            .arg("-c")
            .arg("true")
            .env_clear()
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some((uid, gid)) = ids {
            use std::os::unix::process::CommandExt as _;
            command.uid(uid).gid(gid);
        }
        let out = command
            .output()
            .map_err(|e| format!("cannot run {}: {e}", self.program.display()))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{} fails here ({}): {}",
                self.program.display(),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }
}

/// A sandboxed command's end as `(exit code, signal)`: bubblewrap reports a signal death
/// as `128 + signal`.
pub fn decode_exit(code: Option<i32>, signal: Option<i32>) -> (Option<i32>, Option<i32>) {
    match code {
        Some(code) if (129..=128 + 64).contains(&code) => (None, Some(code - 128)),
        _ => (code, signal),
    }
}

/// Who wrote the code a worker runs, from `agent.kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeAuthor {
    /// The offline template: code artel wrote.
    Template,
    /// An LLM or a CLI agent: code nobody has read.
    Agent,
}

impl CodeAuthor {
    /// From `agent.kind` (`template`, `cli`, `llm`); anything but `template` is an agent.
    pub fn from_kind(kind: &str) -> Self {
        if kind == "template" {
            Self::Template
        } else {
            Self::Agent
        }
    }
}

/// What the non-root rule says about the process runtime at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Run (sandboxed, or artel is root and workers have their own uids).
    Run,
    /// Run, but say this at start.
    Warn(String),
    /// Do not start: this is why, and what to do.
    Refuse(String),
}

/// The non-root rule: when artel is not root and commands would run unsandboxed as artel's
/// own user, an agent's code is refused unless `allow_unsandboxed`; the template's code
/// runs with a warning.
pub fn unsandboxed_verdict(
    author: CodeAuthor,
    root: bool,
    sandboxed: bool,
    allow_unsandboxed: bool,
) -> Verdict {
    if root || sandboxed {
        return Verdict::Run;
    }
    let exposure = "as artel's own user with no sandbox, where it could read artel's keys \
                    (master.key, admin.key) and its database";
    let fixes = "install bubblewrap (apt-get install bubblewrap), use the Docker runtime \
                 (workers.runtime = \"docker\"), or set workers.allow_unsandboxed = true \
                 (ARTEL_WORKERS__ALLOW_UNSANDBOXED=true) to accept the risk";
    match (author, allow_unsandboxed) {
        (CodeAuthor::Agent, false) => Verdict::Refuse(format!(
            "refused: artel is not running as root, so the local-process runtime would run \
             code written by an LLM or CLI agent (and its tests and services) {exposure}. \
             To fix it: {fixes}"
        )),
        (CodeAuthor::Agent, true) => Verdict::Warn(format!(
            "workers.allow_unsandboxed = true: code written by an LLM or CLI agent runs \
             {exposure}"
        )),
        (CodeAuthor::Template, _) => Verdict::Warn(format!(
            "the template's code and its tests run {exposure}; to sandbox them: {fixes}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_hidden_dirs_are_dropped_and_tmp_is_always_hidden() {
        let b = Bwrap::new(
            "bwrap".into(),
            [
                PathBuf::from("/nonexistent-a/b"),
                PathBuf::from("/nonexistent-a"),
            ],
        );
        assert_eq!(
            b.hidden(),
            [PathBuf::from("/nonexistent-a"), PathBuf::from("/tmp")]
        );
    }

    #[test]
    fn a_signal_death_is_decoded() {
        assert_eq!(decode_exit(Some(137), None), (None, Some(9)));
        assert_eq!(decode_exit(Some(1), None), (Some(1), None));
        assert_eq!(decode_exit(None, Some(9)), (None, Some(9)));
    }

    #[test]
    fn the_rule_refuses_only_unsandboxed_agents_under_a_non_root_artel() {
        use CodeAuthor::*;
        assert_eq!(unsandboxed_verdict(Agent, true, false, false), Verdict::Run);
        assert_eq!(unsandboxed_verdict(Agent, false, true, false), Verdict::Run);
        assert!(matches!(
            unsandboxed_verdict(Agent, false, false, false),
            Verdict::Refuse(_)
        ));
        assert!(matches!(
            unsandboxed_verdict(Agent, false, false, true),
            Verdict::Warn(_)
        ));
        assert!(matches!(
            unsandboxed_verdict(Template, false, false, false),
            Verdict::Warn(_)
        ));
    }
}
