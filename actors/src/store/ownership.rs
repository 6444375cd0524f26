//! Whose work ids name: which of some sessions, projects and tasks belong to one user.
//!
//! The API shows a non-operator only the tree nodes that serve their own sessions, projects
//! and tasks. The tree names that work by id (its nodes' labels); this answers, in one query
//! bounded by the ids asked about (not by how much the user ever did), which of them are the
//! user's: their sessions, their projects, and the tasks of their projects.

use super::rows::get;
use super::{Store, StoreError};
use artel_messages::{ProjectId, SessionId, TaskId, UserId};
use std::collections::BTreeSet;

/// Sessions, projects and tasks, by id.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct WorkIds {
    /// Sessions.
    pub sessions: BTreeSet<SessionId>,
    /// Projects.
    pub projects: BTreeSet<ProjectId>,
    /// Tasks.
    pub tasks: BTreeSet<TaskId>,
}

impl WorkIds {
    /// True when no id is held.
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty() && self.projects.is_empty() && self.tasks.is_empty()
    }
}

impl Store {
    /// The ids among `ids` that are `owner`'s: sessions they opened, projects they own, tasks
    /// of projects they own. Ids of nothing (or of someone else's work) are left out.
    #[tracing::instrument(skip(self, ids))]
    pub async fn owned_work(&self, owner: UserId, ids: &WorkIds) -> Result<WorkIds, StoreError> {
        if ids.is_empty() {
            return Ok(WorkIds::default());
        }
        let rows = sqlx::query(
            "SELECT 'session' AS kind, id FROM sessions WHERE user_id = $1 AND id = ANY($2) \
             UNION ALL \
             SELECT 'project', id FROM projects WHERE owner_id = $1 AND id = ANY($3) \
             UNION ALL \
             SELECT 'task', t.id FROM tasks t JOIN projects p ON p.id = t.project_id \
             WHERE p.owner_id = $1 AND t.id = ANY($4)",
        )
        .bind(owner.as_uuid())
        .bind(
            ids.sessions
                .iter()
                .map(SessionId::as_uuid)
                .collect::<Vec<_>>(),
        )
        .bind(
            ids.projects
                .iter()
                .map(ProjectId::as_uuid)
                .collect::<Vec<_>>(),
        )
        .bind(ids.tasks.iter().map(TaskId::as_uuid).collect::<Vec<_>>())
        .fetch_all(&self.pool)
        .await?;
        let mut owned = WorkIds::default();
        for row in &rows {
            let id: uuid::Uuid = get(row, "id")?;
            match get::<String>(row, "kind")?.as_str() {
                "session" => owned.sessions.insert(SessionId::from_uuid(id)),
                "project" => owned.projects.insert(ProjectId::from_uuid(id)),
                "task" => owned.tasks.insert(TaskId::from_uuid(id)),
                other => {
                    return Err(StoreError::Decode {
                        what: "kind",
                        reason: format!("`{other}` is not a kind of work"),
                    });
                }
            };
        }
        Ok(owned)
    }
}
