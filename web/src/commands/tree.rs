//! `artel tree`: the live supervision tree, redrawn in place on a terminal.

use crate::cli::TreeArgs;
use anyhow::{anyhow, bail};
use artel_supervisors::TreeSnapshot;
use std::future::Future;
use std::io::{IsTerminal, Write};
use std::time::Duration;

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
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()?;
    let url = format!("{}/api/v1/tree", args.server.trim_end_matches('/'));
    let key = args.api_key.clone().or_else(|| {
        let settings = crate::commands::load_settings(config, Default::default()).ok()?;
        crate::client::local_key(&settings)
    });
    show(&args, || fetch(&client, &url, &args.server, key.as_deref())).await
}

async fn fetch(
    client: &reqwest::Client,
    url: &str,
    server: &str,
    key: Option<&str>,
) -> anyhow::Result<TreeSnapshot> {
    let mut request = client.get(url);
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    let response = request.send().await.map_err(|e| {
        if e.is_connect() {
            anyhow!(
                "no artel server answers at {server}: start one with `artel up`, point \
                 --server / ARTEL_SERVER at it, or run `artel tree --demo`"
            )
        } else {
            anyhow!("cannot read the tree from {server}: {e}")
        }
    })?;
    if response.status() == reqwest::StatusCode::UNAUTHORIZED {
        bail!(
            "{server} wants an API key: pass --api-key or set ARTEL_API_KEY (the operator key \
             from `artel up`'s first start is in <data_dir>/admin.key)"
        );
    }
    if !response.status().is_success() {
        bail!("{url} answered {}", response.status());
    }
    Ok(response.json().await?)
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
