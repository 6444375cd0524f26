//! The command line: every subcommand and flag, and logging setup. Flags may also come from
//! `ARTEL_*` environment variables, named next to each flag in `--help`.

use clap::{Parser, Subcommand, ValueEnum};
use tracing_subscriber::EnvFilter;

/// artel — a supervised runtime where AI coding agents turn a chat request into a deployed
/// service.
#[derive(Debug, Parser)]
#[command(name = "artel", version, about, long_about = None)]
pub struct Cli {
    /// Log filter (tracing `EnvFilter` syntax, e.g. `info` or `artel=debug,warn`). Logs go to
    /// stderr. Default: `warn` (`off` for `tree --demo`, whose screen the tree owns).
    #[arg(long, global = true, env = "ARTEL_LOG")]
    pub log: Option<String>,

    /// Log line format.
    #[arg(long, global = true, env = "ARTEL_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Settings file (TOML). Default: `artel.toml` in the working directory, if present.
    #[arg(long, global = true, env = "ARTEL_CONFIG")]
    pub config: Option<std::path::PathBuf>,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// artel's subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build and deploy a service from a request, e.g. `artel new "A URL shortener with a REST
    /// API"`: runs artel in this process, shows progress, ends with the service's URL, and
    /// keeps it running until Ctrl-C (further lines on stdin go to the same conversation).
    New(crate::commands::NewArgs),
    /// Run artel: the supervision tree, the managed database (unless DATABASE_URL is set) and
    /// the HTTP front door, until SIGTERM or Ctrl-C.
    Up(ProcessArgs),
    /// Run only the WorkerManager, serving worker commands from Redis for `artel up`
    /// processes using the same Redis and database.
    WorkerManager(ProcessArgs),
    /// Print the live supervision tree: each node's role, status, uptime, restarts, mailbox
    /// depth/capacity, backlog, the task, project or session it serves, and its last error.
    /// An operator key sees every node; another key only the nodes of its own work.
    Tree(TreeArgs),
    /// Print the registry of Redis streams artel uses between processes.
    Streams(StreamsArgs),
    /// Build the Docker image workers run in (`build`; idempotent, no registry needed).
    WorkerImage(crate::commands::worker_image::WorkerImageArgs),
    /// A running server's readiness, tasks by status, running tasks and live services.
    Status(crate::client::ServerArgs),
    /// Your projects on a running server, with their latest task and live URL.
    Projects(crate::client::ServerArgs),
    /// Deploy a project's main branch on a running server and follow it to the end.
    Deploy(crate::commands::remote::DeployArgs),
    /// A task's events on a running server; `--follow` keeps printing until it ends.
    Logs(crate::commands::remote::LogsArgs),
    /// The Telegram front door on a running server: `link` a chat, `add-bot` to the pool.
    Telegram(crate::commands::telegram::TelegramArgs),
}

/// Flags of `artel up` and `artel worker-manager`.
#[derive(Debug, clap::Args)]
pub struct ProcessArgs {
    /// Redis, for process boundaries (overrides REDIS_URL and redis.url).
    #[arg(long)]
    pub redis_url: Option<String>,

    /// Where workers and new deployments run (overrides workers.runtime and deploy.target).
    #[arg(long, value_enum)]
    pub runtime: Option<RuntimeFlag>,
}

impl ProcessArgs {
    /// What these flags change in the settings.
    pub fn overrides(&self) -> crate::commands::Overrides {
        crate::commands::Overrides {
            redis_url: self.redis_url.clone(),
            runtime: self.runtime,
        }
    }
}

/// `--runtime`: one switch for both halves of "where things run".
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RuntimeFlag {
    /// Workers are local processes; services are local processes.
    Process,
    /// Workers are Docker containers; services are containers built from their Dockerfile.
    Docker,
}

/// Flags of `artel tree`.
#[derive(Debug, clap::Args)]
pub struct TreeArgs {
    /// The artel server to read the tree from.
    #[arg(long, env = "ARTEL_SERVER", default_value = "http://127.0.0.1:8080")]
    pub server: String,

    /// An API key for the server (default: `<data_dir>/admin.key`, written by `artel up`'s
    /// first start).
    #[arg(long, env = "ARTEL_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,

    /// Start a small demo tree in this process (a crashing child, a rest_for_one pipeline) and
    /// show it live.
    #[arg(long)]
    pub demo: bool,

    /// Print one snapshot (after `--warmup-ms` with `--demo`) and exit instead of refreshing.
    #[arg(long)]
    pub once: bool,

    /// Print snapshots as JSON, one per line.
    #[arg(long)]
    pub json: bool,

    /// Refresh period.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u64).range(50..=60_000))]
    pub interval_ms: u64,

    /// With `--once`: how long the demo runs before the snapshot.
    #[arg(long, default_value_t = 2_500, value_parser = clap::value_parser!(u64).range(0..=600_000))]
    pub warmup_ms: u64,

    /// Stop after this many refreshes (default: until Ctrl-C).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub iterations: Option<u64>,
}

/// Flags of `artel streams`.
#[derive(Debug, clap::Args)]
pub struct StreamsArgs {
    /// Print the registry as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Installs the tracing subscriber for this process.
pub fn init_logging(cli: &Cli) -> anyhow::Result<()> {
    let default = match &cli.command {
        Command::Tree(args) if args.demo => "off",
        _ => "warn",
    };
    let filter = EnvFilter::try_new(cli.log.as_deref().unwrap_or(default)).map_err(|err| {
        anyhow::anyhow!("invalid --log / ARTEL_LOG filter: {err}; try `info` or `artel=debug`")
    })?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
    Ok(())
}
