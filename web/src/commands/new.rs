//! `artel new "<request>"`: artel's main job in one command.
//!
//! Starts artel in this process (managed Postgres unless `DATABASE_URL` is set, local
//! workers, local git, the configured agent, the local deploy target), opens a CLI session
//! with the ProductOwner, says the request, and shows the job's progress until the service is
//! live — then keeps artel (and the service) running: further lines on standard input go to
//! the same session (give a secret as `NAME=value`, ask for `status`, `deploy <project>`, …),
//! and Ctrl-C or SIGTERM stops both cleanly. `--exit-when-done` exits once the job ends.
//!
//! Before anything is built the ProductOwner shows the spec it understood and waits for a
//! "yes" or a correction typed on standard input. `--yes` skips the question; so does the end
//! of standard input (nobody is left to answer: the spec is taken as it is, and said so).

use crate::app::{App, Mode};
use crate::client::{Client, POLL, ServerArgs};
use crate::commands::{Overrides, load_settings};
use crate::progress::{Ended, Progress, TaskSource};
use anyhow::Context as _;
use artel_actors::bus::EventFeed;
use artel_actors::store::EventScope;
use artel_messages::SessionChannel;
use std::path::PathBuf;
use tokio::signal::unix::{SignalKind, signal};

/// Flags of `artel new`.
#[derive(Debug, clap::Args)]
pub struct NewArgs {
    /// What to build, in your words, e.g. "A URL shortener with a REST API".
    pub request: String,

    /// Print one JSON event per line instead of progress bars.
    #[arg(long)]
    pub json: bool,

    /// Build the spec as understood, without asking to confirm it (`analyst.confirm = false`).
    #[arg(long, short = 'y')]
    pub yes: bool,

    /// Exit once the job ends (the service is live, or the job failed or needs you); the
    /// service stops with artel. Without it artel keeps running until Ctrl-C.
    #[arg(long)]
    pub exit_when_done: bool,

    /// Run artel in this process even when a server answers at `--server`.
    #[arg(long)]
    pub local: bool,

    /// A running artel to submit to (default: `http://` + the `http.listen` setting). When
    /// one answers there, the job runs on it and this command only shows its progress.
    #[arg(long, env = "ARTEL_SERVER")]
    pub server: Option<String>,

    /// The API key for `--server` (default: `<data_dir>/admin.key`).
    #[arg(long, env = "ARTEL_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,

    /// Where workers and the service run when artel runs in this process: `docker` builds
    /// and tests in containers and deploys a container built from the project's Dockerfile
    /// (overrides workers.runtime and deploy.target).
    #[arg(long, value_enum)]
    pub runtime: Option<crate::cli::RuntimeFlag>,
}

pub async fn run(config: Option<PathBuf>, args: NewArgs) -> anyhow::Result<()> {
    let request = args.request.trim().to_owned();
    if request.is_empty() {
        anyhow::bail!("say what to build, e.g. artel new \"a todo list API\"");
    }
    if !args.local {
        let client = Client::new(
            config.clone(),
            &ServerArgs {
                server: args.server.clone(),
                api_key: args.api_key.clone(),
                json: args.json,
            },
        )?;
        if client.answers().await {
            if args.runtime.is_some() {
                eprintln!(
                    "note: --runtime applies when artel runs in this process; the server uses \
                     its own settings (add --local to run here)"
                );
            }
            return remote(client, &request, &args).await;
        }
    }
    let mut settings = load_settings(
        config,
        Overrides {
            redis_url: None,
            runtime: args.runtime,
        },
    )?;
    if args.yes {
        settings.analyst.confirm = false;
    }
    // Watched before starting, so a SIGTERM during start-up is a clean stop once started.
    let terminate = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    let mut app = App::start(settings, Mode::New).await?;
    let result = drive(&mut app, &request, &args, terminate).await;
    app.shutdown().await?;
    result
}

async fn drive(
    app: &mut App,
    request: &str,
    args: &NewArgs,
    mut terminate: tokio::signal::unix::Signal,
) -> anyhow::Result<()> {
    let store = app.store().clone();
    let sessions = app
        .sessions()
        .context("artel started without sessions")?
        .clone();
    let user = store
        .ensure_user("local", "local@localhost")
        .await
        .context("cannot find or create the local user")?;
    let session = sessions.open(user.id, SessionChannel::Cli).await?;
    let since = store
        .latest_event_id()
        .await
        .context("cannot read the event journal")?;
    let mut feed = EventFeed::new(&store, EventScope::All, since);
    let mut progress = Progress::new(args.json, session.id, TaskSource::Local(store.clone()));
    if !args.json {
        progress.note(&app.placement());
    }

    if let Err(failure) = sessions.say(session.id, request).await {
        anyhow::bail!("the ProductOwner could not take the request: {failure}");
    }
    let mut stdin = stdin_lines();
    let mut stdin_open = true;
    let mut spec_waits = false;
    let mut outcome = None;
    loop {
        let confirm = spec_waits && !stdin_open;
        tokio::select! {
            event = feed.next() => {
                let event = event.context("cannot read the event journal")?;
                match progress.show(&event).await {
                    Some(Ended::SpecQuestion) => spec_waits = true,
                    Some(ended) => {
                        outcome = Some(ended);
                        if args.exit_when_done {
                            break;
                        }
                    }
                    None => {}
                }
            }
            () = std::future::ready(()), if confirm => {
                spec_waits = false;
                progress.note(NO_MORE_INPUT);
                if let Err(failure) = sessions.say(session.id, "yes").await {
                    progress.note(&format!("could not confirm the spec: {failure}"));
                }
            }
            line = stdin.recv(), if stdin_open => match line {
                Some(line) if !line.trim().is_empty() => {
                    spec_waits = false;
                    if let Err(failure) = sessions.say(session.id, &line).await {
                        progress.note(&format!("could not take that line: {failure}"));
                    }
                }
                Some(_) => {}
                None => stdin_open = false,
            },
            _ = tokio::signal::ctrl_c() => break,
            _ = terminate.recv() => break,
            reason = app.failed() => anyhow::bail!("artel stopped: {reason}"),
        }
    }
    progress.finish();
    match outcome {
        Some(Ended::Stuck(reason)) if args.exit_when_done => {
            anyhow::bail!("the job did not finish: {reason}")
        }
        _ => Ok(()),
    }
}

/// The job on a running server: a CLI session through the API, progress from its events.
async fn remote(client: Client, request: &str, args: &NewArgs) -> anyhow::Result<()> {
    let session: artel_messages::dto::SessionDto = client
        .post("/api/v1/sessions", serde_json::json!({ "channel": "cli" }))
        .await?;
    let mut since = client.latest_event().await?;
    if !args.json {
        println!("submitting to {}", client.base());
    }
    let say = |text: String| {
        let (client, id) = (&client, session.id);
        async move {
            client
                .post::<serde_json::Value>(
                    &format!("/api/v1/sessions/{id}/messages"),
                    serde_json::json!({ "text": text }),
                )
                .await
        }
    };
    // The answer also arrives as events, which the progress view prints.
    say(request.to_owned()).await?;
    let mut progress = Progress::new(args.json, session.id, TaskSource::Remote(client.clone()));
    let mut stdin = stdin_lines();
    let mut stdin_open = true;
    let mut spec_waits = false;
    let mut outcome = None;
    let mut terminate = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    'follow: loop {
        let page = client.events("", since).await?;
        since = page.next;
        for event in page.items {
            match progress.show(&event).await {
                Some(Ended::SpecQuestion) => spec_waits = true,
                Some(ended) => {
                    outcome = Some(ended);
                    if args.exit_when_done {
                        break 'follow;
                    }
                }
                None => {}
            }
        }
        // The server asks whatever its settings say: `--yes` answers for the user.
        if spec_waits && (args.yes || !stdin_open) {
            spec_waits = false;
            progress.note(if args.yes { YES } else { NO_MORE_INPUT });
            say("yes".to_owned()).await?;
        }
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            line = stdin.recv(), if stdin_open => match line {
                Some(line) if !line.trim().is_empty() => {
                    spec_waits = false;
                    if let Err(err) = say(line).await {
                        progress.note(&format!("could not take that line: {err}"));
                    }
                }
                Some(_) => {}
                None => stdin_open = false,
            },
            _ = tokio::signal::ctrl_c() => break,
            _ = terminate.recv() => break,
        }
    }
    progress.finish();
    match outcome {
        Some(Ended::Stuck(reason)) if args.exit_when_done => {
            anyhow::bail!("the job did not finish: {reason}")
        }
        _ => Ok(()),
    }
}

/// Said when the spec is confirmed for the user because standard input ended.
const NO_MORE_INPUT: &str = "(standard input ended, so nobody can answer: building the spec as it is — pass --yes to \
     say so)";

/// Said when `--yes` confirms a server's spec question.
const YES: &str = "(--yes: building the spec as it is)";

/// Lines of standard input, read on a thread of their own: a blocking read must never hold
/// artel's shutdown (the thread is simply abandoned at exit).
fn stdin_lines() -> tokio::sync::mpsc::Receiver<String> {
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if tx.blocking_send(line).is_err() {
                break;
            }
        }
    });
    rx
}
