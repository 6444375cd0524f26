//! The `artel` binary: parse the command line, set up logging, run one command.

mod api;
mod app;
mod cli;
mod client;
mod commands;
mod dashboard;
mod gateways;
mod progress;

use clap::Parser;

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            // `{:#}` prints the whole chain on one line: what failed, then why.
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    let cli = cli::Cli::parse();
    cli::init_logging(&cli)?;
    // Supervisors catch every panic in an actor and restart it; the panic is an event to log,
    // not a backtrace to spray over the terminal.
    std::panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "non-string panic payload".to_owned());
        tracing::error!(%location, %message, "panic (caught by its supervisor when inside an actor)");
    }));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("artel")
        .build()?;
    let result = runtime.block_on(commands::run(cli.command, cli.config));
    // A blocking read of stdin (`artel new`'s conversation) must not hold the exit.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    result
}
