//! `artel up`: run artel until SIGTERM or Ctrl-C, then stop everything in order.

use crate::app::App;
use anyhow::Context as _;
use artel_actors::settings::Settings;
use std::path::PathBuf;
use tokio::signal::unix::{SignalKind, signal};

pub async fn run(config: Option<PathBuf>) -> anyhow::Result<()> {
    let (file, required) = match config {
        Some(path) => (path, true),
        None => (PathBuf::from("artel.toml"), false),
    };
    let settings = Settings::load(Some(&file), required, std::env::vars())?;
    let mut app = App::start(settings).await?;
    // The first line on stdout is the address, so scripts and tests can find a port-0 server.
    println!("artel is up on http://{}", app.address());
    let mut terminate = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    tokio::select! {
        _ = terminate.recv() => tracing::info!("SIGTERM: shutting down"),
        _ = tokio::signal::ctrl_c() => tracing::info!("Ctrl-C: shutting down"),
        reason = app.failed() => {
            tracing::error!(%reason, "the supervision tree gave up");
            app.shutdown().await?;
            anyhow::bail!("artel stopped: {reason}");
        }
    }
    app.shutdown().await?;
    println!("artel stopped");
    Ok(())
}
