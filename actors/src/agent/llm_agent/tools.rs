//! The tools the model is given: `bash`, `str_replace_based_edit_tool` and `finish`.
//!
//! - **`bash`** runs in the task's worker, never on the host. The Developer's worker runs one
//!   command — [`Shell`]'s *tool runner*, a small POSIX shell loop — for the whole agent
//!   session. artel hands it each command through a FIFO in the worker's directory (outside
//!   the checkout, so nothing of it is committed); the runner starts it as a fresh `sh` in the
//!   checkout, in its own process group (killed whole on timeout), and answers with the exit
//!   code on a second FIFO. The output goes to a file artel reads, masks and truncates. The
//!   model's API key lives in the loop on the host and is never in the worker's environment.
//! - **`str_replace_based_edit_tool`** (the shape Anthropic's models are trained on: view,
//!   create, str_replace, insert) edits files in the checkout from the host, like the template
//!   agent writes them; every path is confined to the checkout (no `..`, no symlink out, not
//!   `.git`), and new files are owned like the checkout.
//! - **`finish`** ends the session with a summary; artel commits and runs the tests.

use super::observe::{Masker, truncate};
use crate::llm::{ToolCall, ToolResult, ToolSpec};
use crate::roles::workspace::Checkout;
use artel_messages::Failure;
use artel_messages::worker_manager::{CommandOutcome, RunCommand};
use serde_json::{Value, json};
use std::path::{Component, Path, PathBuf};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::pipe;

/// The directory, beside the checkout in the worker's own, where the runner and artel meet.
pub const TOOLS_DIR: &str = "artel-tools";

/// The tool runner: reads a command number from `in`, runs `<n>.sh` in a fresh shell in its
/// own process group with `<n>.timeout` seconds, writes `<n> <exit code>` to `out`.
const RUNNER: &str = r#"T=../artel-tools
while :; do
  IFS= read -r n < "$T/in" || exit 0
  [ "$n" = exit ] && exit 0
  t=$(cat "$T/$n.timeout")
  if command -v setsid >/dev/null 2>&1; then
    setsid sh "$T/$n.sh" > "$T/$n.out" 2>&1 < /dev/null &
  else
    sh "$T/$n.sh" > "$T/$n.out" 2>&1 < /dev/null &
  fi
  pid=$!
  ( sleep "$t" && : > "$T/$n.timedout" && kill -KILL -"$pid" 2>/dev/null; kill -KILL "$pid" 2>/dev/null ) > /dev/null 2>&1 &
  watch=$!
  wait "$pid"
  code=$?
  kill "$watch" 2>/dev/null
  echo "$n $code" > "$T/out"
done
"#;

/// The tools' specs, as the model sees them.
pub fn specs() -> Vec<ToolSpec> {
    vec![
        ToolSpec {
            name: "bash".into(),
            description: "Run a shell command in a fresh shell in the project's checkout (your \
                          current directory). Each call starts anew: `cd` and variables do not \
                          carry over. Long output is cut to its head and tail."
                .into(),
            input_schema: json!({
                "type": "object",
                "properties": {
                    "command": {"type": "string", "description": "The command line."},
                    "timeout_s": {"type": "integer", "description": "Seconds before it is killed."}
                },
                "required": ["command"]
            }),
        },
        ToolSpec {
            name: "str_replace_based_edit_tool".into(),
            description: "View, create and edit files in the checkout. Paths are relative to \
                          the checkout. `view` shows a file with line numbers (or lists a \
                          directory); `create` writes a whole file; `str_replace` replaces one \
                          exact, unique occurrence of old_str; `insert` adds text after line \
                          insert_line (0: at the top)."
                .into(),
            input_schema: json!({
                "type": "object",
                "properties": {
                    "command": {"type": "string", "enum": ["view", "create", "str_replace", "insert"]},
                    "path": {"type": "string"},
                    "file_text": {"type": "string"},
                    "old_str": {"type": "string"},
                    "new_str": {"type": "string"},
                    "insert_line": {"type": "integer"},
                    "insert_text": {"type": "string"},
                    "view_range": {"type": "array", "items": {"type": "integer"}}
                },
                "required": ["command", "path"]
            }),
        },
        ToolSpec {
            name: "finish".into(),
            description: "Say you are done, with a summary of what you did. artel then commits \
                          your work and runs the tests; if they fail you get their output."
                .into(),
            input_schema: json!({
                "type": "object",
                "properties": {"summary": {"type": "string"}},
                "required": ["summary"]
            }),
        },
    ]
}

/// What a tool call came to.
#[derive(Debug)]
pub enum Observed {
    /// The result to send back.
    Result(ToolResult),
    /// `finish` was called with this summary.
    Finish(String),
}

/// The tools of one agent session in one checkout.
pub struct Toolbox {
    shell: Shell,
    editor: Editor,
    masker: Masker,
    max_chars: usize,
    default_timeout: Duration,
}

impl Toolbox {
    /// Starts the tool runner in `checkout`'s worker.
    pub async fn open(
        checkout: &Checkout,
        masker: Masker,
        max_chars: usize,
        default_timeout: Duration,
    ) -> Result<Self, Failure> {
        Ok(Self {
            shell: Shell::start(checkout).await?,
            editor: Editor::new(checkout.dir())?,
            masker,
            max_chars,
            default_timeout,
        })
    }

    /// Runs one tool call. A call the tool cannot carry out is an error result for the model;
    /// `Err` is for failures of artel or the worker.
    pub async fn call(&mut self, call: &ToolCall) -> Result<Observed, Failure> {
        let args = &call.arguments;
        let text = |key: &str| args.get(key).and_then(Value::as_str);
        let answer = match call.name.as_str() {
            "finish" => {
                return Ok(Observed::Finish(
                    self.masker.mask(text("summary").unwrap_or("done")),
                ));
            }
            "bash" => match text("command") {
                None => Err("bash needs a `command` string".to_owned()),
                Some(command) => {
                    let timeout = args
                        .get("timeout_s")
                        .and_then(Value::as_u64)
                        .map(Duration::from_secs)
                        .map_or(self.default_timeout, |t| t.min(self.default_timeout))
                        .max(Duration::from_secs(1));
                    let ran = self.shell.run(command, timeout).await?;
                    let mut out = ran.output;
                    if ran.timed_out {
                        out.push_str(&format!(
                            "\n[killed after {}s: the command ran out of time]",
                            timeout.as_secs()
                        ));
                        Err(out)
                    } else if ran.exit_code != 0 {
                        out.push_str(&format!("\n[exit code {}]", ran.exit_code));
                        Err(out)
                    } else {
                        Ok(out)
                    }
                }
            },
            "str_replace_based_edit_tool" => self.editor.call(args),
            other => Err(format!(
                "there is no tool {other:?}: use bash, str_replace_based_edit_tool or finish"
            )),
        };
        let (content, is_error) = match answer {
            Ok(out) => (out, false),
            Err(out) => (out, true),
        };
        let content = truncate(&self.masker.mask(&content), self.max_chars);
        Ok(Observed::Result(ToolResult {
            tool_call_id: call.id.clone(),
            content,
            is_error,
        }))
    }

    /// Commits everything in the checkout (artel commits, not the model), in the worker as
    /// the template agent does.
    pub async fn commit(&mut self, message: &str) -> Result<(), Failure> {
        let file = self.shell.dir.join("commit-message");
        std::fs::write(&file, self.masker.mask(message))
            .map_err(|e| Failure::retryable(format!("cannot write the commit message: {e}")))?;
        let ran = self
            .shell
            .run(
                &format!(
                    "git add -A && git commit --quiet --allow-empty -F ../{TOOLS_DIR}/commit-message"
                ),
                self.default_timeout,
            )
            .await?;
        if ran.exit_code != 0 || ran.timed_out {
            return Err(Failure::retryable(format!(
                "artel could not commit the agent's work: {}",
                truncate(&self.masker.mask(&ran.output), 2000)
            )));
        }
        Ok(())
    }

    /// Ends the tool runner.
    pub async fn close(self) {
        self.shell.close().await;
    }
}

/// How one `bash` command ended.
struct Ran {
    exit_code: i32,
    timed_out: bool,
    output: String,
}

/// The tool runner in the worker, and the FIFOs to it.
struct Shell {
    dir: PathBuf,
    inbox: pipe::Sender,
    outbox: BufReader<pipe::Receiver>,
    session: tokio::task::JoinHandle<Result<CommandOutcome, Failure>>,
    next: u64,
}

impl Shell {
    async fn start(checkout: &Checkout) -> Result<Self, Failure> {
        let root = checkout
            .dir()
            .parent()
            .ok_or_else(|| Failure::fatal("the checkout has no parent directory"))?;
        let dir = root.join(TOOLS_DIR);
        let owner = owner_of(checkout.dir())?;
        let io = |e: std::io::Error| Failure::retryable(format!("cannot set up the tools: {e}"));
        std::fs::create_dir_all(&dir).map_err(io)?;
        std::os::unix::fs::lchown(&dir, Some(owner), None).map_err(io)?;
        for fifo in ["in", "out"] {
            let path = dir.join(fifo);
            nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600))
                .map_err(|e| io(std::io::Error::from(e)))?;
            std::os::unix::fs::lchown(&path, Some(owner), None).map_err(io)?;
        }
        // Opened read-write, the FIFOs never block artel's side nor report an end while the
        // runner reopens them between commands.
        let inbox = pipe::OpenOptions::new()
            .read_write(true)
            .open_sender(dir.join("in"))
            .map_err(io)?;
        let outbox = pipe::OpenOptions::new()
            .read_write(true)
            .open_receiver(dir.join("out"))
            .map_err(io)?;
        let workers = checkout.workers().clone();
        let command = RunCommand {
            worker: checkout.worker(),
            program: "sh".into(),
            args: vec!["-c".into(), RUNNER.into()],
            cwd: Some(crate::roles::workspace::CHECKOUT.to_owned()),
        };
        let session = tokio::spawn(async move { workers.run(command).await });
        Ok(Self {
            dir,
            inbox,
            outbox: BufReader::new(outbox),
            session,
            next: 0,
        })
    }

    async fn run(&mut self, command: &str, timeout: Duration) -> Result<Ran, Failure> {
        self.next += 1;
        let n = self.next;
        let io = |e: std::io::Error| Failure::retryable(format!("cannot hand bash a command: {e}"));
        std::fs::write(self.dir.join(format!("{n}.sh")), command).map_err(io)?;
        std::fs::write(
            self.dir.join(format!("{n}.timeout")),
            timeout.as_secs().to_string(),
        )
        .map_err(io)?;
        self.inbox
            .write_all(format!("{n}\n").as_bytes())
            .await
            .map_err(io)?;
        let mut line = String::new();
        let answered = tokio::select! {
            read = self.outbox.read_line(&mut line) => read.map(|_| true).map_err(io)?,
            ended = &mut self.session => {
                let why = match ended {
                    Ok(Ok(outcome)) if outcome.timed_out => {
                        "the agent's worker ran out of time (workers.timeout_secs)".to_owned()
                    }
                    Ok(Ok(outcome)) => format!(
                        "the tool runner ended (exit {:?}): {}",
                        outcome.exit_code, outcome.stderr_tail
                    ),
                    Ok(Err(failure)) => failure.reason,
                    Err(e) => e.to_string(),
                };
                return Err(Failure::retryable(format!("the agent's worker stopped: {why}")));
            }
            () = tokio::time::sleep(timeout + Duration::from_secs(30)) => false,
        };
        if !answered {
            return Err(Failure::retryable(
                "the tool runner did not answer past the command's timeout",
            ));
        }
        let mut parts = line.split_whitespace();
        let exit_code = match (parts.next(), parts.next()) {
            (Some(got), Some(code)) if got == n.to_string() => code.parse().unwrap_or(-1),
            _ => {
                return Err(Failure::retryable(format!(
                    "the tool runner answered {line:?} to command {n}"
                )));
            }
        };
        let output = std::fs::read(self.dir.join(format!("{n}.out")))
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default();
        let timed_out = self.dir.join(format!("{n}.timedout")).exists();
        for ext in ["sh", "timeout", "out", "timedout"] {
            let _ = std::fs::remove_file(self.dir.join(format!("{n}.{ext}")));
        }
        Ok(Ran {
            exit_code,
            timed_out,
            output,
        })
    }

    async fn close(mut self) {
        let _ = self.inbox.write_all(b"exit\n").await;
        if tokio::time::timeout(Duration::from_secs(10), &mut self.session)
            .await
            .is_err()
        {
            self.session.abort();
        }
    }
}

fn owner_of(dir: &Path) -> Result<u32, Failure> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(dir)
        .map(|m| m.uid())
        .map_err(|e| Failure::retryable(format!("cannot read the checkout: {e}")))
}

/// The file editor, confined to the checkout.
struct Editor {
    root: PathBuf,
    owner: u32,
}

impl Editor {
    fn new(root: &Path) -> Result<Self, Failure> {
        let owner = owner_of(root)?;
        let root = root
            .canonicalize()
            .map_err(|e| Failure::retryable(format!("cannot read the checkout: {e}")))?;
        Ok(Self { root, owner })
    }

    fn call(&self, args: &Value) -> Result<String, String> {
        let text = |key: &str| args.get(key).and_then(Value::as_str);
        let command = text("command").ok_or("the editor needs a `command`")?;
        let path = text("path").ok_or("the editor needs a `path`")?;
        let (shown, file) = self.resolve(path)?;
        match command {
            "view" => self.view(&shown, &file, args.get("view_range")),
            "create" => {
                let body = text("file_text").ok_or("create needs `file_text`")?;
                self.write(&shown, &file, body)?;
                Ok(format!("created {shown} ({} lines)", body.lines().count()))
            }
            "str_replace" => {
                let old = text("old_str").ok_or("str_replace needs `old_str`")?;
                let new = text("new_str").unwrap_or("");
                let current = read(&shown, &file)?;
                match current.matches(old).count() {
                    0 => Err(format!(
                        "old_str does not occur in {shown}: nothing replaced"
                    )),
                    1 => {
                        self.write(&shown, &file, &current.replacen(old, new, 1))?;
                        Ok(format!("replaced one occurrence in {shown}"))
                    }
                    n => Err(format!(
                        "old_str occurs {n} times in {shown}: give more context to make it unique"
                    )),
                }
            }
            "insert" => {
                let at = args
                    .get("insert_line")
                    .and_then(Value::as_u64)
                    .ok_or("insert needs `insert_line`")? as usize;
                let new = text("insert_text")
                    .or_else(|| text("new_str"))
                    .ok_or("insert needs `insert_text`")?;
                let current = read(&shown, &file)?;
                let mut lines: Vec<&str> = current.lines().collect();
                if at > lines.len() {
                    return Err(format!("{shown} has only {} lines", lines.len()));
                }
                lines.insert(at, new.trim_end_matches('\n'));
                let mut body = lines.join("\n");
                body.push('\n');
                self.write(&shown, &file, &body)?;
                Ok(format!("inserted after line {at} of {shown}"))
            }
            other => Err(format!(
                "the editor has no command {other:?}: use view, create, str_replace or insert"
            )),
        }
    }

    /// The path inside the checkout `path` names, or why it may not be used.
    fn resolve(&self, path: &str) -> Result<(String, PathBuf), String> {
        let relative = Path::new(path.trim());
        let relative = relative
            .strip_prefix(&self.root)
            .unwrap_or(relative)
            .to_path_buf();
        let mut clean = PathBuf::new();
        for part in relative.components() {
            match part {
                Component::Normal(p) => clean.push(p),
                Component::CurDir => {}
                _ => {
                    return Err(format!(
                        "{path:?} is not a path inside the checkout: give it relative to the \
                         checkout, without `..`"
                    ));
                }
            }
        }
        if clean
            .components()
            .next()
            .is_some_and(|c| c.as_os_str() == ".git")
        {
            return Err("the editor does not touch .git".into());
        }
        let full = self.root.join(&clean);
        // Follow what exists of the path: a symlink must not lead out of the checkout.
        let mut probe = full.clone();
        while !probe.exists() {
            if !probe.pop() {
                break;
            }
        }
        let real = probe
            .canonicalize()
            .map_err(|e| format!("cannot read {path}: {e}"))?;
        if !real.starts_with(&self.root) {
            return Err(format!("{path:?} leads outside the checkout"));
        }
        let shown = if clean.as_os_str().is_empty() {
            ".".to_owned()
        } else {
            clean.display().to_string()
        };
        Ok((shown, full))
    }

    fn view(&self, shown: &str, file: &Path, range: Option<&Value>) -> Result<String, String> {
        if file.is_dir() {
            let mut entries = Vec::new();
            list(file, file, 0, &mut entries);
            entries.sort();
            return Ok(entries.join("\n"));
        }
        let body = read(shown, file)?;
        let lines: Vec<&str> = body.lines().collect();
        let (from, to) = match range.and_then(Value::as_array).map(|r| r.as_slice()) {
            Some([a, b]) => {
                let a = a.as_u64().unwrap_or(1).max(1) as usize;
                let b = b.as_i64().unwrap_or(-1);
                let b = if b < 0 {
                    lines.len()
                } else {
                    (b as usize).min(lines.len())
                };
                (a, b)
            }
            _ => (1, lines.len()),
        };
        Ok(lines
            .iter()
            .enumerate()
            .skip(from.saturating_sub(1))
            .take(to.saturating_sub(from.saturating_sub(1)))
            .map(|(i, line)| format!("{:>6}\t{line}", i + 1))
            .collect::<Vec<_>>()
            .join("\n"))
    }

    fn write(&self, shown: &str, file: &Path, body: &str) -> Result<(), String> {
        let err = |e: std::io::Error| format!("cannot write {shown}: {e}");
        if let Some(parent) = file.parent() {
            let mut missing = Vec::new();
            let mut dir = parent.to_path_buf();
            while !dir.exists() {
                missing.push(dir.clone());
                if !dir.pop() {
                    break;
                }
            }
            std::fs::create_dir_all(parent).map_err(err)?;
            for dir in missing {
                std::os::unix::fs::lchown(&dir, Some(self.owner), None).map_err(err)?;
            }
        }
        std::fs::write(file, body).map_err(err)?;
        std::os::unix::fs::lchown(file, Some(self.owner), None).map_err(err)
    }
}

fn read(shown: &str, file: &Path) -> Result<String, String> {
    std::fs::read_to_string(file).map_err(|e| format!("cannot read {shown}: {e}"))
}

/// Two levels of `dir`, `.git` left out.
fn list(root: &Path, dir: &Path, depth: usize, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if entry.file_name() == ".git" {
            continue;
        }
        let shown = path
            .strip_prefix(root)
            .unwrap_or(&path)
            .display()
            .to_string();
        if path.is_dir() {
            out.push(format!("{shown}/"));
            if depth < 1 {
                list(root, &path, depth + 1, out);
            }
        } else {
            out.push(shown);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn editor() -> (tempfile::TempDir, Editor) {
        let dir = tempfile::tempdir().unwrap();
        let editor = Editor::new(dir.path()).unwrap();
        (dir, editor)
    }

    #[test]
    fn the_editor_creates_views_replaces_and_inserts() {
        let (_dir, editor) = editor();
        let call = |args: Value| editor.call(&args);
        call(json!({"command": "create", "path": "pkg/app.py", "file_text": "a\nb\nc\n"})).unwrap();
        assert_eq!(
            call(json!({"command": "view", "path": "pkg/app.py", "view_range": [2, 3]})).unwrap(),
            "     2\tb\n     3\tc"
        );
        call(
            json!({"command": "str_replace", "path": "pkg/app.py", "old_str": "b", "new_str": "B"}),
        )
        .unwrap();
        call(json!({"command": "insert", "path": "pkg/app.py", "insert_line": 0, "insert_text": "top"}))
            .unwrap();
        assert_eq!(
            call(json!({"command": "view", "path": "./pkg/app.py"})).unwrap(),
            "     1\ttop\n     2\ta\n     3\tB\n     4\tc"
        );
        let missing =
            call(json!({"command": "str_replace", "path": "pkg/app.py", "old_str": "zz"}));
        assert!(missing.unwrap_err().contains("does not occur"));
        assert_eq!(
            call(json!({"command": "view", "path": "."})).unwrap(),
            "pkg/\npkg/app.py"
        );
    }

    #[test]
    fn the_editor_stays_inside_the_checkout() {
        let (dir, editor) = editor();
        for path in ["../escape", "/etc/passwd", ".git/config", "a/../../b"] {
            let refused =
                editor.call(&json!({"command": "create", "path": path, "file_text": "x"}));
            assert!(refused.is_err(), "{path}");
        }
        std::os::unix::fs::symlink("/tmp", dir.path().join("out")).unwrap();
        let refused = editor.call(&json!({"command": "create", "path": "out/x", "file_text": "x"}));
        assert!(refused.unwrap_err().contains("outside"));
        let absolute = dir.path().canonicalize().unwrap().join("inside.txt");
        editor
            .call(&json!({"command": "create", "path": absolute.display().to_string(), "file_text": "ok"}))
            .unwrap();
        assert!(dir.path().join("inside.txt").exists());
    }
}
