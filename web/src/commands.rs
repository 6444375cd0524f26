//! One module per subcommand; each takes its parsed flags and does its job.

mod new;
pub mod remote;
mod streams;
pub mod telegram;
mod tree;
mod up;
pub mod worker_image;

pub use new::NewArgs;

use crate::app::Mode;
use crate::cli::Command;
use crate::cli::RuntimeFlag;
use artel_actors::settings::{DeployTargetChoice, Settings, WorkerRuntimeChoice};
use std::path::PathBuf;

/// Runs one subcommand to completion.
pub async fn run(command: Command, config: Option<PathBuf>) -> anyhow::Result<()> {
    match command {
        Command::New(args) => new::run(config, args).await,
        Command::Up(args) => up::run(config, Mode::Up, args.overrides()).await,
        Command::WorkerManager(args) => {
            up::run(config, Mode::WorkerManager, args.overrides()).await
        }
        Command::Tree(args) => tree::run(config, args).await,
        Command::Streams(args) => streams::run(args),
        Command::WorkerImage(args) => worker_image::run(args),
        Command::Status(args) => remote::status(config, args).await,
        Command::Projects(args) => remote::projects(config, args).await,
        Command::Deploy(args) => remote::deploy(config, args).await,
        Command::Logs(args) => remote::logs(config, args).await,
        Command::Telegram(args) => telegram::run(config, args).await,
    }
}

/// What command-line flags change in the settings (the last layer).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--redis-url`.
    pub redis_url: Option<String>,
    /// `--runtime`.
    pub runtime: Option<RuntimeFlag>,
}

/// Settings from `--config` (required to exist when given) or `./artel.toml` (if present),
/// the environment, and the flags.
pub fn load_settings(config: Option<PathBuf>, flags: Overrides) -> anyhow::Result<Settings> {
    let (file, required) = match config {
        Some(path) => (path, true),
        None => (PathBuf::from("artel.toml"), false),
    };
    let mut settings = Settings::load(Some(&file), required, std::env::vars())?;
    if let Some(url) = flags.redis_url {
        settings.redis.url = Some(artel_messages::SecretValue::new(url));
    }
    match flags.runtime {
        Some(RuntimeFlag::Process) => {
            settings.workers.runtime = WorkerRuntimeChoice::Process;
            settings.deploy.target = DeployTargetChoice::Local;
        }
        Some(RuntimeFlag::Docker) => {
            settings.workers.runtime = WorkerRuntimeChoice::Docker;
            settings.deploy.target = DeployTargetChoice::Docker;
        }
        None => {}
    }
    Ok(settings)
}
