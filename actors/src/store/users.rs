//! Users and their projects: who owns what.
//!
//! Every project belongs to one user, and every project query that a front door makes on a
//! user's behalf is scoped by owner: asking for another user's project answers `None`, exactly
//! as for a project that does not exist, so ids cannot be probed.

use super::rows::{get, name, time};
use super::{Store, StoreError};
use artel_messages::dto::{ProjectDto, UserDto};
use artel_messages::{ProjectId, Timestamp, UserId, UserRole};
use sqlx::postgres::PgRow;

/// A user, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// Their id.
    pub id: UserId,
    /// How artel addresses them.
    pub name: String,
    /// Their e-mail address, if given.
    pub email: Option<String>,
    /// What they may do through the control plane.
    pub role: UserRole,
    /// When they were created.
    pub created_at: Timestamp,
}

impl UserRecord {
    /// The record as the control plane shows it.
    pub fn to_dto(&self) -> UserDto {
        UserDto {
            id: self.id,
            name: self.name.clone(),
            email: self.email.clone(),
            role: self.role,
            created_at: self.created_at,
        }
    }
}

const USER_COLUMNS: &str = "id, name, email, role, created_at";
const PROJECT_COLUMNS: &str = "id, owner_id, name, description, repo_url, created_at, updated_at";

fn user_from_row(row: &PgRow) -> Result<UserRecord, StoreError> {
    Ok(UserRecord {
        id: UserId::from_uuid(get(row, "id")?),
        name: get(row, "name")?,
        email: get(row, "email")?,
        role: name(row, "role")?,
        created_at: time(row, "created_at")?,
    })
}

fn project_from_row(row: &PgRow) -> Result<ProjectDto, StoreError> {
    Ok(ProjectDto {
        id: ProjectId::from_uuid(get(row, "id")?),
        owner: UserId::from_uuid(get(row, "owner_id")?),
        name: get(row, "name")?,
        description: get(row, "description")?,
        repo_url: get(row, "repo_url")?,
        created_at: time(row, "created_at")?,
        updated_at: time(row, "updated_at")?,
    })
}

impl Store {
    /// Creates a user with a fresh id.
    #[tracing::instrument(skip(self))]
    pub async fn create_user(
        &self,
        name: &str,
        email: Option<&str>,
    ) -> Result<UserRecord, StoreError> {
        self.create_user_with_role(name, email, UserRole::User)
            .await
    }

    /// Creates a user with a fresh id and this role. A taken e-mail fails on constraint
    /// `users_email_key`.
    #[tracing::instrument(skip(self))]
    pub async fn create_user_with_role(
        &self,
        name: &str,
        email: Option<&str>,
        role: UserRole,
    ) -> Result<UserRecord, StoreError> {
        let row = sqlx::query(&format!(
            "INSERT INTO users (id, name, email, role) VALUES ($1, $2, $3, $4) \
             RETURNING {USER_COLUMNS}"
        ))
        .bind(UserId::new().as_uuid())
        .bind(name)
        .bind(email)
        .bind(role.as_str())
        .fetch_one(&self.pool)
        .await?;
        user_from_row(&row)
    }

    /// The user with this id, if any.
    #[tracing::instrument(skip(self))]
    pub async fn user(&self, id: UserId) -> Result<Option<UserRecord>, StoreError> {
        let row = sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
            .bind(id.as_uuid())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    /// The user with this email, created with `name` if there is none. The command line's
    /// own user (`artel new` on this machine) is found this way.
    #[tracing::instrument(skip(self))]
    pub async fn ensure_user(&self, name: &str, email: &str) -> Result<UserRecord, StoreError> {
        let row = sqlx::query(&format!(
            "INSERT INTO users (id, name, email) VALUES ($1, $2, $3) \
             ON CONFLICT (email) DO UPDATE SET email = excluded.email RETURNING {USER_COLUMNS}"
        ))
        .bind(UserId::new().as_uuid())
        .bind(name)
        .bind(email)
        .fetch_one(&self.pool)
        .await?;
        user_from_row(&row)
    }

    /// Creates a project owned by `owner`. `name` is short, lowercase (`[a-z0-9][a-z0-9_-]*`)
    /// and unique per owner; a duplicate fails on constraint `projects_owner_name_key`.
    #[tracing::instrument(skip(self, description))]
    pub async fn create_project(
        &self,
        owner: UserId,
        name: &str,
        description: &str,
    ) -> Result<ProjectDto, StoreError> {
        let row = sqlx::query(&format!(
            "INSERT INTO projects (id, owner_id, name, description) VALUES ($1, $2, $3, $4) \
             RETURNING {PROJECT_COLUMNS}"
        ))
        .bind(ProjectId::new().as_uuid())
        .bind(owner.as_uuid())
        .bind(name)
        .bind(description)
        .fetch_one(&self.pool)
        .await?;
        project_from_row(&row)
    }

    /// The project `id` if `owner` owns it; `None` if it does not exist or is someone else's.
    #[tracing::instrument(skip(self))]
    pub async fn project(
        &self,
        owner: UserId,
        id: ProjectId,
    ) -> Result<Option<ProjectDto>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {PROJECT_COLUMNS} FROM projects WHERE id = $1 AND owner_id = $2"
        ))
        .bind(id.as_uuid())
        .bind(owner.as_uuid())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(project_from_row).transpose()
    }

    /// `owner`'s project called `name`, if any.
    #[tracing::instrument(skip(self))]
    pub async fn project_by_name(
        &self,
        owner: UserId,
        name: &str,
    ) -> Result<Option<ProjectDto>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {PROJECT_COLUMNS} FROM projects WHERE owner_id = $1 AND name = $2"
        ))
        .bind(owner.as_uuid())
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(project_from_row).transpose()
    }

    /// Every project `owner` owns, oldest first.
    #[tracing::instrument(skip(self))]
    pub async fn projects(&self, owner: UserId) -> Result<Vec<ProjectDto>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {PROJECT_COLUMNS} FROM projects WHERE owner_id = $1 ORDER BY created_at, id"
        ))
        .bind(owner.as_uuid())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(project_from_row).collect()
    }

    /// Every user's projects, oldest first (operators' view).
    #[tracing::instrument(skip(self))]
    pub async fn all_projects(&self) -> Result<Vec<ProjectDto>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {PROJECT_COLUMNS} FROM projects ORDER BY created_at, id"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(project_from_row).collect()
    }

    /// Sets project `id`'s description.
    #[tracing::instrument(skip(self, description))]
    pub async fn set_project_description(
        &self,
        id: ProjectId,
        description: &str,
    ) -> Result<ProjectDto, StoreError> {
        let row = sqlx::query(&format!(
            "UPDATE projects SET description = $2, updated_at = now() WHERE id = $1 \
             RETURNING {PROJECT_COLUMNS}"
        ))
        .bind(id.as_uuid())
        .bind(description)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref()
            .map(project_from_row)
            .transpose()?
            .ok_or_else(|| StoreError::NotFound {
                what: "project",
                key: id.to_string(),
            })
    }

    /// Deletes project `id` and everything of it (tasks, events, deployments, secrets) —
    /// refused with [`StoreError::Conflict`] while one of its tasks is queued or running.
    #[tracing::instrument(skip(self))]
    pub async fn delete_project(&self, id: ProjectId) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT id FROM projects WHERE id = $1 FOR UPDATE")
            .bind(id.as_uuid())
            .fetch_optional(&mut *tx)
            .await?;
        let busy: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM tasks WHERE project_id = $1 AND status IN ('queued', 'running')",
        )
        .bind(id.as_uuid())
        .fetch_one(&mut *tx)
        .await?;
        if busy > 0 {
            return Err(StoreError::Conflict {
                what: "project",
                key: id.to_string(),
                detail: format!("{busy} of its tasks are running; cancel them first"),
            });
        }
        let deleted = sqlx::query("DELETE FROM projects WHERE id = $1")
            .bind(id.as_uuid())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(deleted.rows_affected() > 0)
    }

    /// The project `id`, whoever owns it — for roles working on one of its tasks (front doors
    /// use the owner-scoped [`Store::project`]). A missing project is
    /// [`StoreError::NotFound`].
    #[tracing::instrument(skip(self))]
    pub async fn project_of_task(&self, id: ProjectId) -> Result<ProjectDto, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {PROJECT_COLUMNS} FROM projects WHERE id = $1"
        ))
        .bind(id.as_uuid())
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| StoreError::NotFound {
            what: "project",
            key: id.to_string(),
        })?;
        project_from_row(&row)
    }

    /// The name of project `id`.
    pub async fn project_name(&self, id: ProjectId) -> Result<String, StoreError> {
        Ok(self.project_of_task(id).await?.name)
    }

    /// Records where project `id`'s repository is.
    #[tracing::instrument(skip(self))]
    pub async fn set_project_repo(&self, id: ProjectId, repo_url: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE projects SET repo_url = $2, updated_at = now() WHERE id = $1")
            .bind(id.as_uuid())
            .bind(repo_url)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

impl Store {
    /// Who owns `project`, if it exists.
    pub async fn project_owner(&self, project: ProjectId) -> Result<Option<UserId>, StoreError> {
        let owner: Option<uuid::Uuid> =
            sqlx::query_scalar("SELECT owner_id FROM projects WHERE id = $1")
                .bind(project.as_uuid())
                .fetch_optional(&self.pool)
                .await?;
        Ok(owner.map(UserId::from_uuid))
    }
}
