//! A user's own LLM provider keys: write-only.
//!
//! A user may bring their own key for a provider; their projects' model calls use it, with
//! the system key (`[llm] api_key`) as the fallback. The API stores and forgets keys and says
//! which providers have one; it never shows a key again.

use crate::api::ApiState;
use crate::api::auth::Caller;
use crate::api::error::{ApiError, ErrorBody};
use actix_web::{HttpResponse, web};
use artel_actors::settings::LlmProvider;
use artel_messages::SecretValue;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The routes of this module.
pub fn routes(config: &mut web::ServiceConfig) {
    config
        .route("/me/llm-keys", web::get().to(list))
        .route("/me/llm-keys/{provider}", web::put().to(set))
        .route("/me/llm-keys/{provider}", web::delete().to(delete));
}

/// Which providers the caller stored a key for.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LlmKeys {
    /// `openai`, `anthropic`: never the keys.
    pub providers: Vec<String>,
}

/// A key to store.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LlmKeyBody {
    /// The provider's API key (write-only).
    #[schema(value_type = String, format = Password)]
    pub api_key: SecretValue,
}

fn provider(name: &str) -> Result<LlmProvider, ApiError> {
    match name {
        "openai" => Ok(LlmProvider::Openai),
        "anthropic" => Ok(LlmProvider::Anthropic),
        other => Err(ApiError::validation(format!(
            "`{other}` is not a provider: use openai (also for OpenAI-compatible servers) or \
             anthropic"
        ))),
    }
}

/// The providers the caller stored their own key for.
#[utoipa::path(get, path = "/api/v1/me/llm-keys", tag = "keys",
    responses((status = 200, body = LlmKeys), (status = 401, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list(
    state: web::Data<ApiState>,
    caller: Caller,
) -> Result<web::Json<LlmKeys>, ApiError> {
    Ok(web::Json(LlmKeys {
        providers: state.store.user_llm_key_providers(caller.user()).await?,
    }))
}

/// Stores the caller's own key for a provider (encrypted at rest; write-only). Their
/// projects' model calls use it from the next call on.
#[utoipa::path(put, path = "/api/v1/me/llm-keys/{provider}", tag = "keys",
    request_body = LlmKeyBody,
    params(("provider" = String, Path, description = "openai or anthropic")),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 413, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn set(
    state: web::Data<ApiState>,
    caller: Caller,
    path: web::Path<String>,
    body: web::Json<LlmKeyBody>,
) -> Result<HttpResponse, ApiError> {
    let provider = provider(&path)?;
    state
        .store
        .set_user_llm_key(caller.user(), provider, &body.api_key)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Forgets the caller's key for a provider: the system key applies again.
#[utoipa::path(delete, path = "/api/v1/me/llm-keys/{provider}", tag = "keys",
    params(("provider" = String, Path, description = "openai or anthropic")),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn delete(
    state: web::Data<ApiState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let provider = provider(&path)?;
    if state
        .store
        .delete_user_llm_key(caller.user(), provider)
        .await?
    {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(ApiError::not_found(format!(
            "no {} key of yours is stored",
            provider.as_str()
        )))
    }
}
