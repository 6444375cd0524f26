//! One module per subcommand; each takes its parsed flags and does its job.

mod streams;
mod tree;

use crate::cli::Command;

/// Runs one subcommand to completion.
pub async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Tree(args) => tree::run(args).await,
        Command::Streams(args) => streams::run(args),
    }
}
