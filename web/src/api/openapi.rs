//! The OpenAPI 3.1 document of the control plane, generated from the handlers' annotations
//! and the catalog's types (utoipa), served at `/api/v1/openapi.json`.
//!
//! A system test walks it against the running server (every documented operation answers
//! with a documented status), so the document cannot drift from the routes.

use crate::api::{events, keys, llm_keys, projects, runtime_views, sessions, tasks, telegram};
use crate::gateways::http as gateway;
use actix_web::{HttpResponse, web};
use std::sync::LazyLock;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

/// The routes of this module.
pub fn routes(config: &mut web::ServiceConfig) {
    config.route("/openapi.json", web::get().to(document));
}

/// The document.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "artel control plane",
        description = "Projects, tasks, conversations with the ProductOwner, events, workers, \
                       deployments, secrets, API keys and the supervision tree. Every route \
                       but the health checks, metrics and this document needs \
                       `Authorization: Bearer artel_…`; errors are \
                       `{\"error\": {\"code\", \"message\"}}`."
    ),
    paths(
        gateway::alive, gateway::ready, gateway::metrics,
        keys::me, keys::create_user, keys::create_key, keys::list_keys, keys::revoke_key,
        llm_keys::list, llm_keys::set, llm_keys::delete,
        projects::create, projects::list, projects::get, projects::usage, projects::update, projects::delete,
        projects::start_task, projects::tasks, projects::deployments, projects::rollback,
        projects::post_note, projects::secret_names, projects::set_secret, projects::delete_secret,
        tasks::list, tasks::get, tasks::usage, tasks::cancel, tasks::retry,
        sessions::open, sessions::get, sessions::say, sessions::transcript,
        events::list,
        telegram::create_link, telegram::register_bot, telegram::list_bots,
        runtime_views::workers, runtime_views::stop_worker, runtime_views::targets,
        runtime_views::tree, runtime_views::restart_node, runtime_views::stop_node,
    ),
    modifiers(&BearerKeys),
    tags(
        (name = "health", description = "Liveness, readiness and metrics (no key needed)"),
        (name = "keys", description = "The caller, users, API keys and their own LLM provider keys"),
        (name = "projects", description = "Projects, owner-scoped"),
        (name = "tasks", description = "Engineering and deploy tasks"),
        (name = "sessions", description = "Conversations with the ProductOwner"),
        (name = "events", description = "The event journal (live: GET /api/v1/events/ws, a WebSocket)"),
        (name = "workers", description = "Sandboxes agents and tests run in"),
        (name = "deployments", description = "Deployments, rollback and deploy targets"),
        (name = "secrets", description = "Write-only project secrets"),
        (name = "tree", description = "The supervision tree"),
        (name = "telegram", description = "Linking Telegram chats"),
    )
)]
pub struct ApiDoc;

struct BearerKeys;

impl Modify for BearerKeys {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("artel_ followed by 40 hex digits")
                    .build(),
            ),
        );
    }
}

static DOCUMENT: LazyLock<String> = LazyLock::new(|| {
    ApiDoc::openapi()
        .to_pretty_json()
        .unwrap_or_else(|err| format!("{{\"error\": \"cannot render the document: {err}\"}}"))
});

/// The OpenAPI document.
pub async fn document() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(DOCUMENT.as_str())
}
