//! Projects and what hangs off one: its tasks, deployments (and rollback) and secrets.
//!
//! `{project}` is a project id or the caller's project name. Secrets are write-only: their
//! names can be listed, their values never leave artel through the API.

use crate::api::auth::Caller;
use crate::api::error::{ApiError, ErrorBody};
use crate::api::{ApiState, Items, Validated, check_text};
use actix_web::{HttpResponse, web};
use artel_actors::store::NewTask;
use artel_messages::dto::{DeploymentDto, ProjectDto, TaskDto};
use artel_messages::{DeploymentStatus, SecretValue, TaskId, TaskKind};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The routes of this module.
pub fn routes(config: &mut web::ServiceConfig) {
    config
        .route("/projects", web::get().to(list))
        .route("/projects", web::post().to(create))
        .route("/projects/{project}", web::get().to(get))
        .route("/projects/{project}/usage", web::get().to(usage))
        .route("/projects/{project}", web::patch().to(update))
        .route("/projects/{project}", web::delete().to(delete))
        .route("/projects/{project}/tasks", web::get().to(tasks))
        .route("/projects/{project}/tasks", web::post().to(start_task))
        .route(
            "/projects/{project}/deployments",
            web::get().to(deployments),
        )
        .route(
            "/projects/{project}/deployments/rollback",
            web::post().to(rollback),
        )
        .route("/projects/{project}/notes", web::post().to(post_note))
        .route("/projects/{project}/secrets", web::get().to(secret_names))
        .route(
            "/projects/{project}/secrets/{name}",
            web::put().to(set_secret),
        )
        .route(
            "/projects/{project}/secrets/{name}",
            web::delete().to(delete_secret),
        );
}

/// A new project.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewProject {
    /// Short and unique among the caller's projects: `[a-z0-9][a-z0-9_-]{0,62}`.
    pub name: String,
    /// What it is, in the user's words (at most 2000 characters).
    #[serde(default)]
    pub description: String,
}

/// Checks a project name against the rule the database also enforces.
pub fn check_project_name(name: &str) -> Result<(), ApiError> {
    let mut bytes = name.bytes();
    let first = bytes
        .next()
        .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    let rest =
        bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if first && rest && name.len() <= 63 {
        Ok(())
    } else {
        Err(ApiError::validation(format!(
            "`name` `{name}` must be 1 to 63 characters of a-z, 0-9, `-` and `_`, starting \
             with a letter or digit"
        )))
    }
}

impl Validated for NewProject {
    fn validate(&self) -> Result<(), ApiError> {
        check_project_name(&self.name)?;
        check_text("description", &self.description, 2000)
    }
}

/// Creates a project for the caller.
#[utoipa::path(post, operation_id = "create_project", path = "/api/v1/projects", tag = "projects", request_body = NewProject,
    responses((status = 201, body = ProjectDto), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 409, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 429, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn create(
    state: web::Data<ApiState>,
    caller: Caller,
    body: web::Json<NewProject>,
) -> Result<HttpResponse, ApiError> {
    body.validate()?;
    let project = state
        .store
        .create_project(caller.user(), &body.name, body.description.trim())
        .await
        .map_err(|err| match err.constraint() {
            Some("projects_owner_name_key") => {
                ApiError::conflict(format!("you already have a project named `{}`", body.name))
            }
            _ => err.into(),
        })?;
    Ok(HttpResponse::Created().json(project))
}

/// The caller's projects (an operator's: everyone's).
#[utoipa::path(get, operation_id = "list_projects", path = "/api/v1/projects", tag = "projects",
    responses((status = 200, body = Items<ProjectDto>), (status = 401, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list(
    state: web::Data<ApiState>,
    caller: Caller,
) -> Result<web::Json<Items<ProjectDto>>, ApiError> {
    let projects = match caller.scope() {
        Some(owner) => state.store.projects(owner).await?,
        None => state.store.all_projects().await?,
    };
    Ok(web::Json(Items::new(projects)))
}

/// One project.
#[utoipa::path(get, operation_id = "get_project", path = "/api/v1/projects/{project}", tag = "projects",
    params(("project" = String, Path, description = "Project id or name")),
    responses((status = 200, body = ProjectDto), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn get(
    state: web::Data<ApiState>,
    caller: Caller,
    project: web::Path<String>,
) -> Result<web::Json<ProjectDto>, ApiError> {
    Ok(web::Json(state.project(&caller, &project).await?))
}

/// What a project's model calls used, from `llm_requests`.
#[utoipa::path(get, operation_id = "project_usage", path = "/api/v1/projects/{project}/usage", tag = "projects",
    params(("project" = String, Path, description = "The project's id or name")),
    responses((status = 200, body = artel_messages::dto::LlmUsageDto), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn usage(
    state: web::Data<ApiState>,
    caller: Caller,
    project: web::Path<String>,
) -> Result<web::Json<artel_messages::dto::LlmUsageDto>, ApiError> {
    let project = state.project(&caller, &project).await?;
    Ok(web::Json(state.store.project_llm_usage(project.id).await?))
}

/// A change to a project.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProjectUpdate {
    /// The new description (at most 2000 characters).
    pub description: String,
}

impl Validated for ProjectUpdate {
    fn validate(&self) -> Result<(), ApiError> {
        check_text("description", &self.description, 2000)
    }
}

/// Updates a project's description.
#[utoipa::path(patch, operation_id = "update_project", path = "/api/v1/projects/{project}", tag = "projects", request_body = ProjectUpdate,
    params(("project" = String, Path, description = "Project id or name")),
    responses((status = 200, body = ProjectDto), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn update(
    state: web::Data<ApiState>,
    caller: Caller,
    project: web::Path<String>,
    body: web::Json<ProjectUpdate>,
) -> Result<web::Json<ProjectDto>, ApiError> {
    body.validate()?;
    let project = state.project(&caller, &project).await?;
    Ok(web::Json(
        state
            .store
            .set_project_description(project.id, body.description.trim())
            .await?,
    ))
}

/// Deletes a project: stops its service, then removes it and everything of it.
#[utoipa::path(delete, operation_id = "delete_project", path = "/api/v1/projects/{project}", tag = "projects",
    params(("project" = String, Path, description = "Project id or name")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn delete(
    state: web::Data<ApiState>,
    caller: Caller,
    project: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let project = state.project(&caller, &project).await?;
    let busy = state
        .store
        .project_tasks(project.id)
        .await?
        .iter()
        .filter(|t| {
            matches!(
                t.status,
                artel_messages::TaskStatus::Queued | artel_messages::TaskStatus::Running
            )
        })
        .count();
    if busy > 0 {
        return Err(ApiError::conflict(format!(
            "{busy} task(s) of `{}` are running; cancel them first",
            project.name
        )));
    }
    for deployment in state.store.deployments(project.id).await? {
        if let Err(err) = state.target.stop(&deployment).await {
            return Err(ApiError::unavailable(format!(
                "cannot stop deployment {} of `{}`: {err}",
                deployment.id, project.name
            )));
        }
    }
    for (bot_id, token) in state.store.release_telegram_bots(project.id).await? {
        crate::gateways::telegram::pool::reset(&state.telegram_api_url, bot_id, &token).await;
    }
    state.store.delete_project(project.id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// A task to start.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTaskRequest {
    /// `engineering` (write and test code) or `deploy` (run main's head).
    pub kind: TaskKind,
    /// What to do, in the user's words (1 to 4000 characters).
    pub description: String,
    /// Engineering only: deploy when it completes (default false).
    #[serde(default)]
    pub then_deploy: bool,
    /// Choose the task's id to make the start idempotent (a retried request finds the task).
    #[serde(default)]
    pub id: Option<TaskId>,
}

impl Validated for NewTaskRequest {
    fn validate(&self) -> Result<(), ApiError> {
        if self.description.trim().is_empty() {
            return Err(ApiError::validation("`description` must say what to do"));
        }
        if self.then_deploy && self.kind != TaskKind::Engineering {
            return Err(ApiError::validation(
                "`then_deploy` is for engineering tasks; a deploy task deploys already",
            ));
        }
        check_text("description", &self.description, 4000)
    }
}

/// Starts a task on a project.
#[utoipa::path(post, path = "/api/v1/projects/{project}/tasks", tag = "tasks", request_body = NewTaskRequest,
    params(("project" = String, Path, description = "Project id or name")),
    responses((status = 202, body = TaskDto), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 503, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn start_task(
    state: web::Data<ApiState>,
    caller: Caller,
    project: web::Path<String>,
    body: web::Json<NewTaskRequest>,
) -> Result<HttpResponse, ApiError> {
    body.validate()?;
    state.accepting()?;
    let project = state.project(&caller, &project).await?;
    let new = NewTask {
        id: body.id.unwrap_or_else(TaskId::new),
        project: project.id,
        kind: body.kind,
        description: body.description.trim().to_owned(),
        session: None,
    };
    let record = if body.then_deploy {
        state
            .workflows
            .submit_with_follow_up(new, TaskId::new())
            .await?
    } else {
        state.workflows.submit(new).await?
    };
    Ok(HttpResponse::Accepted().json(record.to_dto()))
}

/// A project's tasks, newest first.
#[utoipa::path(get, operation_id = "list_project_tasks", path = "/api/v1/projects/{project}/tasks", tag = "tasks",
    params(("project" = String, Path, description = "Project id or name")),
    responses((status = 200, body = Items<TaskDto>), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn tasks(
    state: web::Data<ApiState>,
    caller: Caller,
    project: web::Path<String>,
) -> Result<web::Json<Items<TaskDto>>, ApiError> {
    let project = state.project(&caller, &project).await?;
    let tasks = state.store.project_tasks(project.id).await?;
    Ok(web::Json(Items::new(
        tasks.iter().map(|t| t.to_dto()).collect(),
    )))
}

/// A project's deployments, newest first.
#[utoipa::path(get, operation_id = "list_deployments", path = "/api/v1/projects/{project}/deployments", tag = "deployments",
    params(("project" = String, Path, description = "Project id or name")),
    responses((status = 200, body = Items<DeploymentDto>), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn deployments(
    state: web::Data<ApiState>,
    caller: Caller,
    project: web::Path<String>,
) -> Result<web::Json<Items<DeploymentDto>>, ApiError> {
    let project = state.project(&caller, &project).await?;
    let deployments = state.store.deployments(project.id).await?;
    Ok(web::Json(Items::new(
        deployments.iter().map(|d| d.to_dto()).collect(),
    )))
}

/// Serves the previous good deployment again: starts a deploy task pinned to the commit of
/// the newest superseded deployment older than the live one. The live deployment keeps
/// serving until the rollback's health check passes.
#[utoipa::path(post, path = "/api/v1/projects/{project}/deployments/rollback", tag = "deployments",
    params(("project" = String, Path, description = "Project id or name")),
    responses((status = 202, body = TaskDto), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn rollback(
    state: web::Data<ApiState>,
    caller: Caller,
    project: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    state.accepting()?;
    let project = state.project(&caller, &project).await?;
    let deployments = state.store.deployments(project.id).await?;
    let live = deployments
        .iter()
        .find(|d| d.status == DeploymentStatus::Live)
        .ok_or_else(|| {
            ApiError::conflict(format!(
                "`{}` has no live deployment to roll back from",
                project.name
            ))
        })?;
    let previous = deployments
        .iter()
        .filter(|d| d.created_at < live.created_at && d.status == DeploymentStatus::Superseded)
        .find(|d| d.commit != live.commit)
        .ok_or_else(|| {
            ApiError::conflict(format!(
                "`{}` has no earlier good deployment with other code to roll back to",
                project.name
            ))
        })?;
    let short = &previous.commit[..previous.commit.len().min(12)];
    let record = state
        .workflows
        .submit_deploy_at(
            NewTask {
                id: TaskId::new(),
                project: project.id,
                kind: TaskKind::Deploy,
                description: format!("roll back to {short} (deployment {})", previous.id),
                session: None,
            },
            &previous.commit,
        )
        .await?;
    Ok(HttpResponse::Accepted().json(record.to_dto()))
}

/// A project's secret names.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SecretNames {
    /// The names, sorted.
    pub names: Vec<String>,
}

/// The names of a project's secrets (never their values).
#[utoipa::path(get, path = "/api/v1/projects/{project}/secrets", tag = "secrets",
    params(("project" = String, Path, description = "Project id or name")),
    responses((status = 200, body = SecretNames), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn secret_names(
    state: web::Data<ApiState>,
    caller: Caller,
    project: web::Path<String>,
) -> Result<web::Json<SecretNames>, ApiError> {
    let project = state.project(&caller, &project).await?;
    Ok(web::Json(SecretNames {
        names: state.store.secret_names(project.id).await?,
    }))
}

/// A secret's value.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SecretBody {
    /// The value (1 to 16384 bytes). Stored encrypted; never shown again.
    #[schema(value_type = String, format = Password)]
    pub value: SecretValue,
}

/// Sets a secret of a project (encrypted at rest; the value is write-only).
#[utoipa::path(put, path = "/api/v1/projects/{project}/secrets/{name}", tag = "secrets",
    request_body = SecretBody,
    params(("project" = String, Path, description = "Project id or name"),
        ("name" = String, Path, description = "An environment variable name")),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 413, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn set_secret(
    state: web::Data<ApiState>,
    caller: Caller,
    path: web::Path<(String, String)>,
    body: web::Json<SecretBody>,
) -> Result<HttpResponse, ApiError> {
    let (project, name) = path.into_inner();
    let len = body.value.expose().len();
    if len == 0 || len > 16 * 1024 {
        return Err(ApiError::validation(
            "`value` must be 1 to 16384 bytes long",
        ));
    }
    let project = state.project(&caller, &project).await?;
    state
        .store
        .set_secret(project.id, &name, &body.value)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Deletes a secret of a project.
#[utoipa::path(delete, path = "/api/v1/projects/{project}/secrets/{name}", tag = "secrets",
    params(("project" = String, Path, description = "Project id or name"),
        ("name" = String, Path, description = "An environment variable name")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn delete_secret(
    state: web::Data<ApiState>,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (project, name) = path.into_inner();
    let project = state.project(&caller, &project).await?;
    if state.store.delete_secret(project.id, &name).await? {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(ApiError::not_found(format!("secret `{name}`")))
    }
}

/// A note for a project's event stream.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewNote {
    /// What it says (1 to 2000 characters).
    pub text: String,
}

/// Posts a note to a project's event stream (a deploy freeze, an incident, a hand-over):
/// everyone following the project sees it with its progress.
#[utoipa::path(post, path = "/api/v1/projects/{project}/notes", tag = "events", request_body = NewNote,
    params(("project" = String, Path, description = "Project id or name")),
    responses((status = 201, body = artel_messages::Event), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 413, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn post_note(
    state: web::Data<ApiState>,
    caller: Caller,
    project: web::Path<String>,
    body: web::Json<NewNote>,
) -> Result<HttpResponse, ApiError> {
    let text = body.text.trim();
    if text.is_empty() {
        return Err(ApiError::validation("`text` must say something"));
    }
    check_text("text", text, 2000)?;
    let project = state.project(&caller, &project).await?;
    let event = state
        .store
        .append_event(
            artel_messages::NewEvent::new(artel_messages::EventBody::Note {
                author: caller.0.name.clone(),
                text: text.to_owned(),
            })
            .project(project.id),
        )
        .await?;
    Ok(HttpResponse::Created().json(event))
}
