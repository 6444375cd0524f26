//! `artel up` and `artel worker-manager`: run until SIGTERM or Ctrl-C, then stop everything in
//! order.

use crate::app::{App, Mode};
use crate::commands::{Overrides, load_settings};
use anyhow::Context as _;
use std::path::PathBuf;
use tokio::signal::unix::{SignalKind, signal};

pub async fn run(config: Option<PathBuf>, mode: Mode, flags: Overrides) -> anyhow::Result<()> {
    let settings = load_settings(config, flags)?;
    let drain = std::time::Duration::from_secs(settings.http.drain_secs);
    // Watch SIGTERM before starting, so one that arrives during start-up is a clean stop
    // once started rather than the default abrupt exit.
    let mut terminate = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    let mut app = App::start(settings, mode).await?;
    // The first line on stdout says where artel is, so scripts and tests can find a port-0
    // server.
    match app.address() {
        Some(address) => println!("artel is up on http://{address}"),
        None => println!("artel worker-manager is serving"),
    }
    if let Some((key, path)) = app.admin_key() {
        println!(
            "operator API key (shown once; also written to {}): {key}",
            path.display()
        );
    }
    tokio::select! {
        _ = terminate.recv() => {
            tracing::info!("SIGTERM: draining, then shutting down");
            app.drain();
            let idle = app.wait_idle(drain).await;
            if !idle {
                tracing::warn!(
                    "tasks still running after the drain deadline: their steps are journaled \
                     and resume on the next start"
                );
            }
        }
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
