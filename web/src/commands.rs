//! One module per subcommand; each takes its parsed flags and does its job.

mod streams;
mod tree;
mod up;

use crate::app::Mode;
use crate::cli::Command;
use std::path::PathBuf;

/// Runs one subcommand to completion.
pub async fn run(command: Command, config: Option<PathBuf>) -> anyhow::Result<()> {
    match command {
        Command::Up(args) => up::run(config, Mode::Up, args.redis_url).await,
        Command::WorkerManager(args) => up::run(config, Mode::WorkerManager, args.redis_url).await,
        Command::Tree(args) => tree::run(args).await,
        Command::Streams(args) => streams::run(args),
    }
}
