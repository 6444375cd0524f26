//! `artel tree`: the live supervision tree, redrawn in place on a terminal.

use crate::cli::TreeArgs;
use anyhow::bail;
use artel_supervisors::{Registry, TreeSnapshot};
use std::io::{IsTerminal, Write};
use std::time::Duration;

pub async fn run(args: TreeArgs) -> anyhow::Result<()> {
    if !args.demo {
        bail!(
            "`artel tree` reads the tree of a running artel server, and this build has no server \
             to ask yet (`artel up` arrives with the control plane). Run `artel tree --demo` to \
             watch a live demo tree in this process."
        );
    }
    let root = artel_actors::demo::tree().start().await;
    let result = show(root.registry(), &args).await;
    root.shutdown().await;
    result
}

async fn show(registry: &Registry, args: &TreeArgs) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if args.once {
        tokio::time::sleep(Duration::from_millis(args.warmup_ms)).await;
        return print_snapshot(&mut out, &registry.snapshot(), args.json, false);
    }
    let redraw = !args.json && std::io::stdout().is_terminal();
    let mut ticks = tokio::time::interval(Duration::from_millis(args.interval_ms));
    let mut shown = 0u64;
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
        print_snapshot(&mut out, &registry.snapshot(), args.json, redraw)?;
        shown += 1;
        if args.iterations.is_some_and(|n| shown >= n) {
            return Ok(());
        }
    }
}

fn print_snapshot(
    out: &mut impl Write,
    snapshot: &TreeSnapshot,
    json: bool,
    redraw: bool,
) -> anyhow::Result<()> {
    if json {
        serde_json::to_writer(&mut *out, snapshot)?;
        writeln!(out)?;
    } else {
        if redraw {
            // Cursor home, clear screen.
            write!(out, "\x1b[H\x1b[2J")?;
        }
        write!(out, "{}", snapshot.render())?;
        if redraw {
            writeln!(out, "\n(Ctrl-C to stop)")?;
        } else {
            writeln!(out)?;
        }
    }
    out.flush()?;
    Ok(())
}
