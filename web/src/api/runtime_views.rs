//! What runs: workers (list, stop), deploy targets, and the supervision tree (read, scoped
//! to the caller's own nodes; restart or stop a node — operators only).

use crate::api::auth::Caller;
use crate::api::error::{ApiError, ErrorBody};
use crate::api::tree_scope;
use crate::api::{ApiState, Items, OptionalJson, check_limit, check_text};
use actix_web::{HttpResponse, web};
use artel_messages::deployer::DeployTarget;
use artel_messages::dto::WorkerDto;
use artel_messages::{Classify as _, WorkerId};
use artel_supervisors::{NodeId, SupervisorError, TreeSnapshot};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// The routes of this module.
pub fn routes(config: &mut web::ServiceConfig) {
    config
        .route("/workers", web::get().to(workers))
        .route("/workers/{id}/stop", web::post().to(stop_worker))
        .route("/targets", web::get().to(targets))
        .route("/tree", web::get().to(tree))
        .route("/tree/{node}/restart", web::post().to(restart_node))
        .route("/tree/{node}/stop", web::post().to(stop_node));
}

/// How many workers to list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct WorkerQuery {
    /// At most this many, newest first (1 to 500, default 100).
    pub limit: Option<u32>,
}

/// Workers of the caller's projects (an operator's: all), newest first.
#[utoipa::path(get, operation_id = "list_workers", path = "/api/v1/workers", tag = "workers", params(WorkerQuery),
    responses((status = 200, body = Items<WorkerDto>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn workers(
    state: web::Data<ApiState>,
    caller: Caller,
    query: web::Query<WorkerQuery>,
) -> Result<web::Json<Items<WorkerDto>>, ApiError> {
    let limit = check_limit(query.limit, 100, 500)?;
    let workers = state
        .workers
        .list(caller.scope(), limit)
        .await
        .map_err(|e| ApiError::from(e.to_failure()))?;
    Ok(web::Json(Items::new(workers)))
}

/// Why a worker is stopped.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StopRequest {
    /// In the operator's words (at most 500 characters).
    #[serde(default)]
    pub reason: Option<String>,
}

/// Stops a worker: kills its command and destroys its sandbox.
#[utoipa::path(post, path = "/api/v1/workers/{id}/stop", tag = "workers", request_body = StopRequest,
    params(("id" = String, Path, description = "The worker's id")),
    responses((status = 200, body = WorkerDto), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn stop_worker(
    state: web::Data<ApiState>,
    caller: Caller,
    id: web::Path<String>,
    body: OptionalJson<StopRequest>,
) -> Result<web::Json<WorkerDto>, ApiError> {
    let not_found = || ApiError::not_found(format!("worker `{id}`"));
    let worker: WorkerId = id.parse().map_err(|_| not_found())?;
    let record = state
        .workers
        .record(worker)
        .await
        .map_err(|e| ApiError::from(e.to_failure()))?
        .ok_or_else(not_found)?;
    // Visible through its project, or not at all.
    state
        .project(&caller, &record.project.to_string())
        .await
        .map_err(|_| not_found())?;
    let reason = body
        .0
        .and_then(|b| b.reason)
        .unwrap_or_else(|| format!("stopped by {} through the API", caller.0.name));
    check_text("reason", &reason, 500)?;
    let stopped = state
        .workers
        .stop(worker, &reason)
        .await
        .map_err(|e| ApiError::from(e.to_failure()))?;
    Ok(web::Json(stopped))
}

/// A place services run.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TargetView {
    /// `local`: processes on this host; `docker`: containers on a Docker host.
    pub kind: String,
    /// Where the services' code and data live (local), or the Docker host.
    pub root: String,
    /// The ports services are given.
    pub ports: String,
    /// Deployments of the caller's projects running there now.
    pub live: usize,
    /// Whether new deployments go there.
    pub default: bool,
}

/// Deploy targets.
#[utoipa::path(get, operation_id = "list_targets", path = "/api/v1/targets", tag = "deployments",
    responses((status = 200, body = Items<TargetView>), (status = 401, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn targets(
    state: web::Data<ApiState>,
    caller: Caller,
) -> Result<web::Json<Items<TargetView>>, ApiError> {
    let live = state.store.live_deployments().await?;
    let (mut local, mut docker) = (0, 0);
    for deployment in &live {
        if state
            .project(&caller, &deployment.project.to_string())
            .await
            .is_ok()
        {
            match deployment.target {
                DeployTarget::Docker => docker += 1,
                _ => local += 1,
            }
        }
    }
    let config = state.target.local().config();
    let mut targets = vec![TargetView {
        kind: "local".to_owned(),
        root: config.root.display().to_string(),
        ports: format!("{}-{}", config.ports.start(), config.ports.end()),
        live: local,
        default: state.target.default_target() == DeployTarget::Local,
    }];
    if let Some(target) = state.target.docker() {
        let config = target.config();
        targets.push(TargetView {
            kind: "docker".to_owned(),
            root: config
                .host
                .clone()
                .unwrap_or_else(|| "the local Docker daemon".to_owned()),
            ports: format!("{}-{}", config.ports.start(), config.ports.end()),
            live: docker,
            default: state.target.default_target() == DeployTarget::Docker,
        });
    }
    Ok(web::Json(Items::new(targets)))
}

/// The live supervision tree, as the caller may see it: all of it for an operator; for
/// anyone else only the nodes of their own sessions, projects and tasks, with the bare path
/// to them (see [`tree_scope`]).
#[utoipa::path(get, operation_id = "get_tree", path = "/api/v1/tree", tag = "tree",
    responses((status = 200, description = "`{roots: [node]}`. Each node: id, name, role, kind, detail, status, \
        restarts, last_error, mailbox_depth, mailbox_capacity, backlog (work accepted, not started; when the \
        actor keeps such a queue), labels (what it serves: `session`, `project`, `task` ids), uptime_ms, children. \
        An operator sees every node. Anyone else sees only the nodes whose labels name their own sessions, \
        projects and tasks, with those nodes' subtrees, and the path from the root to them: such an ancestor \
        has `path_only: true` and only its id, name, role, kind and status (no error, labels or other children).",
        content_type = "application/json"), (status = 401, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn tree(
    state: web::Data<ApiState>,
    caller: Caller,
) -> Result<web::Json<TreeSnapshot>, ApiError> {
    let tree = tree_scope::visible_tree(&state.store, &caller, state.registry.snapshot()).await?;
    Ok(web::Json(tree))
}

/// What an operator's tree action did.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct NodeAction {
    /// The node acted on.
    pub node: u64,
    /// `restarted` or `stopped`.
    pub done: String,
}

fn node_id(segment: &str) -> Result<NodeId, ApiError> {
    segment
        .parse::<u64>()
        .map(NodeId)
        .map_err(|_| ApiError::not_found(format!("tree node `{segment}`")))
}

fn tree_error(node: NodeId, err: SupervisorError) -> ApiError {
    match err {
        SupervisorError::NoSuchChild(_) => ApiError::not_found(format!("tree node `{node}`")),
        SupervisorError::InvalidSpec(reason) => ApiError::conflict(reason),
        SupervisorError::Stopped => {
            ApiError::conflict(format!("node {node}'s supervisor has stopped"))
        }
    }
}

/// What an operator does to a node.
#[derive(Clone, Copy)]
enum TreeAction {
    Restart,
    Stop,
}

async fn act_on_node(
    state: &ApiState,
    caller: &Caller,
    segment: &str,
    action: TreeAction,
) -> Result<HttpResponse, ApiError> {
    let (what, done) = match action {
        TreeAction::Restart => ("restarting a tree node", "restarted"),
        TreeAction::Stop => ("stopping a tree node", "stopped"),
    };
    caller.require_operator(what)?;
    let node = node_id(segment)?;
    let result = match action {
        TreeAction::Restart => state.registry.restart_node(node).await,
        TreeAction::Stop => state.registry.stop_node(node).await,
    };
    result.map_err(|e| tree_error(node, e))?;
    tracing::warn!(%node, by = %caller.0.name, done, "operator action on a tree node");
    Ok(HttpResponse::Ok().json(NodeAction {
        node: node.0,
        done: done.to_owned(),
    }))
}

/// Restarts a node under its supervisor (operators only).
#[utoipa::path(post, path = "/api/v1/tree/{node}/restart", tag = "tree",
    params(("node" = u64, Path, description = "The node's id in the tree snapshot")),
    responses((status = 200, body = NodeAction), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn restart_node(
    state: web::Data<ApiState>,
    caller: Caller,
    node: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    act_on_node(&state, &caller, &node, TreeAction::Restart).await
}

/// Stops a node for good; its supervisor does not restart it (operators only).
#[utoipa::path(post, path = "/api/v1/tree/{node}/stop", tag = "tree",
    params(("node" = u64, Path, description = "The node's id in the tree snapshot")),
    responses((status = 200, body = NodeAction), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn stop_node(
    state: web::Data<ApiState>,
    caller: Caller,
    node: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    act_on_node(&state, &caller, &node, TreeAction::Stop).await
}
