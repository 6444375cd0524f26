//! `artel tree`: the live supervision tree, redrawn in place on a terminal — each node's role,
//! status, uptime, restarts, mailbox, backlog, what it serves (labels) and last error, as much of
//! the tree as the key may see (`GET /api/v1/tree`).

use crate::cli::TreeArgs;
use crate::client::{Client, ServerArgs, Unreachable};
use artel_supervisors::TreeSnapshot;
use std::future::Future;
use std::io::{IsTerminal, Write};
use std::time::Duration;

/// What an empty tree means: a key sees only the nodes of its own work.
const NOTHING_OF_YOURS: &str = "Nothing of yours runs now: this key sees only the nodes of its \
own sessions, projects and tasks (an operator key sees the whole tree).";

pub async fn run(config: Option<std::path::PathBuf>, args: TreeArgs) -> anyhow::Result<()> {
    if args.demo {
        let root = artel_actors::demo::tree().start().await;
        let registry = root.registry().clone();
        if args.once {
            tokio::time::sleep(Duration::from_millis(args.warmup_ms)).await;
        }
        let result = show(&args, || {
            let registry = registry.clone();
            async move { Ok(registry.snapshot()) }
        })
        .await;
        root.shutdown().await;
        return result;
    }
    let client = Client::new(
        config,
        &ServerArgs {
            server: Some(args.server.clone()),
            api_key: args.api_key.clone(),
            json: args.json,
        },
    )?;
    show(&args, || async {
        client
            .get::<TreeSnapshot>("/api/v1/tree")
            .await
            .map_err(|err| match err.downcast_ref::<Unreachable>() {
                Some(unreachable) => {
                    anyhow::anyhow!("{unreachable}, or run `artel tree --demo` for a demo tree")
                }
                None => err,
            })
    })
    .await
}

async fn show<F, Fut>(args: &TreeArgs, mut snapshot: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<TreeSnapshot>>,
{
    let mut out = std::io::stdout().lock();
    if args.once {
        return print_snapshot(&mut out, &snapshot().await?, args.json, false);
    }
    let redraw = !args.json && std::io::stdout().is_terminal();
    let mut ticks = tokio::time::interval(Duration::from_millis(args.interval_ms));
    let mut shown = 0u64;
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
        print_snapshot(&mut out, &snapshot().await?, args.json, redraw)?;
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
        if snapshot.roots.is_empty() {
            writeln!(out, "{NOTHING_OF_YOURS}")?;
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
