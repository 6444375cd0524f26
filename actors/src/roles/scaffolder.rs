//! Scaffolder: creates a project's repository from the template and commits it.
//!
//! Idempotent: for a project whose repository already has a `main`, it answers that
//! repository and its head instead of committing again.

use super::Crew;
use crate::agent::template;
use artel_messages::scaffolder::{Scaffold, Scaffolded};
use artel_messages::{Classify, Failure};

/// The template every offline project starts from.
pub const TEMPLATE: &str = "python-service";

/// Handles a [`Scaffold`].
pub async fn scaffold(crew: &Crew, msg: Scaffold) -> Result<Scaffolded, Failure> {
    let repo = crew.repo_of(msg.project).await?;
    let git = &crew.git;
    git.create_repo(&repo.name)
        .await
        .map_err(|e| e.to_failure())?;
    let commit = match git
        .head(&repo.name, "main")
        .await
        .map_err(|e| e.to_failure())?
    {
        Some(head) => head,
        None => {
            let files: Vec<(String, String)> =
                template::scaffold_files(&msg.name, &msg.description)
                    .into_iter()
                    .map(|f| (f.path, f.contents))
                    .collect();
            git.commit_files(
                &repo.name,
                "main",
                &files,
                &format!("Scaffold {} from the {TEMPLATE} template", msg.name),
            )
            .await
            .map_err(|e| e.to_failure())?
        }
    };
    let repo_url = git.clone_url(&repo.name).map_err(|e| e.to_failure())?;
    crew.store
        .set_project_repo(msg.project, &repo_url)
        .await
        .map_err(|e| e.to_failure())?;
    Ok(Scaffolded {
        repo_url,
        branch: "main".to_owned(),
        commit,
        template: msg.template.unwrap_or_else(|| TEMPLATE.to_owned()),
    })
}
