//! EnvAnalyzer: reads which environment a service needs from its manifest at the commit
//! to deploy.
//!
//! Every variable is declared with where its value comes from: `target` (the deploy target
//! provides it, e.g. `PORT`), `generated` (artel makes it up and keeps it) or `user` (only
//! the user has it). Nothing is guessed from the code: an undeclared variable is the
//! project's bug, and the manifest is where to fix it.

use super::Crew;
use super::tester::read_manifest;
use artel_messages::env_analyzer::{AnalyzeEnv, EnvAnalysis};
use artel_messages::{Classify, Failure};

/// Handles an [`AnalyzeEnv`].
pub async fn analyze(crew: &Crew, msg: AnalyzeEnv) -> Result<EnvAnalysis, Failure> {
    let repo = crew.repo_of(msg.project).await?;
    let commit = crew
        .git
        .resolve_commit(&repo.name, &msg.commit)
        .await
        .map_err(|e| e.to_failure())?;
    let manifest = read_manifest(&crew.git, &repo.name, &commit).await?;
    Ok(EnvAnalysis {
        variables: manifest.env,
    })
}
