//! `artel worker-image build`: builds the image Docker workers run in, locally (there is no
//! registry to pull one from). The recipe is `docker/worker/build.sh`, compiled into the
//! binary so the command works from any directory: a Debian bookworm minbase root filesystem
//! with python3 and git made by debootstrap, imported with `docker import`, running as uid
//! 64000 with `/workspace` as its only writable place. Idempotent: an image built from the
//! same recipe is kept, and the root filesystem is cached for rebuilds.

use anyhow::{Context as _, bail};
use std::process::Command;

/// The recipe, as shipped in `docker/worker/`.
const BUILD_SCRIPT: &str = include_str!("../../../docker/worker/build.sh");

/// Flags of `artel worker-image`.
#[derive(Debug, clap::Args)]
pub struct WorkerImageArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: WorkerImageAction,
}

/// `artel worker-image` actions.
#[derive(Debug, clap::Subcommand)]
pub enum WorkerImageAction {
    /// Build the worker image unless an image from the same recipe exists.
    Build {
        /// The image's name.
        #[arg(
            long,
            env = "ARTEL_WORKER_IMAGE",
            default_value = "artel-worker:latest"
        )]
        image: String,
    },
}

pub fn run(args: WorkerImageArgs) -> anyhow::Result<()> {
    let WorkerImageAction::Build { image } = args.action;
    let daemon = Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .output();
    match daemon {
        Ok(out) if out.status.success() => {}
        Ok(out) => bail!(
            "no Docker daemon answers ({}): start dockerd (or set DOCKER_HOST) and try again",
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Err(err) => bail!(
            "the docker command is missing ({err}): install docker.io (Debian) and start dockerd"
        ),
    }
    let status = Command::new("bash")
        .arg("-c")
        .arg(BUILD_SCRIPT)
        .arg("artel-worker-image")
        .arg(&image)
        .status()
        .context("cannot run bash to build the worker image")?;
    if !status.success() {
        bail!("building the worker image {image} failed ({status}); see the output above");
    }
    Ok(())
}
