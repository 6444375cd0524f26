//! Who am I, users and API keys.
//!
//! A key's secret exists in clear only in the response that creates it; listings show its
//! prefix. Revoking evicts it from this server's key cache at once.

use crate::api::ApiState;
use crate::api::auth::Caller;
use crate::api::error::{ApiError, ErrorBody};
use crate::api::{Items, Validated};
use actix_web::{HttpResponse, web};
use artel_messages::dto::{ApiKeyDto, UserDto};
use artel_messages::{ApiKeyId, UserRole};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The routes of this module.
pub fn routes(config: &mut web::ServiceConfig) {
    config
        .route("/me", web::get().to(me))
        .route("/users", web::post().to(create_user))
        .route("/keys", web::get().to(list_keys))
        .route("/keys", web::post().to(create_key))
        .route("/keys/{id}", web::delete().to(revoke_key));
}

/// The caller.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Me {
    /// The key's owner.
    pub user: MeUser,
    /// The key used.
    pub key: MeKey,
}

/// The caller's user.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MeUser {
    /// Their id.
    pub id: artel_messages::UserId,
    /// Their name.
    pub name: String,
    /// What they may do.
    pub role: UserRole,
}

/// The key used.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MeKey {
    /// Its id.
    pub id: ApiKeyId,
    /// Its clear prefix.
    pub prefix: String,
}

/// Who is calling.
#[utoipa::path(get, path = "/api/v1/me", tag = "keys",
    responses((status = 200, body = Me), (status = 401, body = ErrorBody), (status = 429, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn me(caller: Caller) -> web::Json<Me> {
    let p = caller.0;
    web::Json(Me {
        user: MeUser {
            id: p.user,
            name: p.name,
            role: p.role,
        },
        key: MeKey {
            id: p.key,
            prefix: p.prefix,
        },
    })
}

/// A new key.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    /// What the key is for, e.g. `laptop` (at most 100 characters).
    #[serde(default)]
    pub label: String,
}

impl Validated for NewKey {
    fn validate(&self) -> Result<(), ApiError> {
        check_label(&self.label)
    }
}

fn check_label(label: &str) -> Result<(), ApiError> {
    if label.chars().count() > 100 || label.chars().any(char::is_control) {
        return Err(ApiError::validation(
            "`label` must be at most 100 characters, without control characters",
        ));
    }
    Ok(())
}

/// A created key: the listing record plus the key itself, shown this once.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CreatedKey {
    /// The key as listed.
    #[serde(flatten)]
    pub record: ApiKeyDto,
    /// The whole key. It is not stored and cannot be shown again.
    pub key: String,
}

/// Creates a key for the caller.
#[utoipa::path(post, path = "/api/v1/keys", tag = "keys", request_body = NewKey,
    responses((status = 201, body = CreatedKey), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 413, body = ErrorBody), (status = 429, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn create_key(
    state: web::Data<ApiState>,
    caller: Caller,
    body: web::Json<NewKey>,
) -> Result<HttpResponse, ApiError> {
    body.validate()?;
    let created = state
        .store
        .create_api_key(caller.user(), body.label.trim())
        .await?;
    Ok(HttpResponse::Created().json(CreatedKey {
        record: created.record,
        key: created.secret,
    }))
}

/// The caller's keys.
#[utoipa::path(get, path = "/api/v1/keys", tag = "keys",
    responses((status = 200, body = Items<ApiKeyDto>), (status = 401, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list_keys(
    state: web::Data<ApiState>,
    caller: Caller,
) -> Result<web::Json<Items<ApiKeyDto>>, ApiError> {
    Ok(web::Json(Items::new(
        state.store.api_keys(caller.user()).await?,
    )))
}

/// Revokes one of the caller's keys.
#[utoipa::path(delete, path = "/api/v1/keys/{id}", tag = "keys",
    params(("id" = String, Path, description = "The key's id")),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn revoke_key(
    state: web::Data<ApiState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id: ApiKeyId = id
        .parse()
        .map_err(|e| ApiError::not_found(format!("key `{id}` ({e})")))?;
    state
        .store
        .revoke_api_key(caller.user(), id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("key `{id}`")))?;
    state.keys.evict(id);
    Ok(HttpResponse::NoContent().finish())
}

/// A new user (operators only).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    /// How artel addresses them (1–200 characters).
    pub name: String,
    /// Their e-mail address, unique.
    #[serde(default)]
    pub email: Option<String>,
    /// What they may do (default `user`).
    #[serde(default)]
    pub role: Option<UserRole>,
}

impl Validated for NewUser {
    fn validate(&self) -> Result<(), ApiError> {
        let name = self.name.trim();
        if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
            return Err(ApiError::validation(
                "`name` must be 1 to 200 characters, without control characters",
            ));
        }
        if let Some(email) = &self.email {
            let ok = email.len() <= 254
                && email
                    .split_once('@')
                    .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'))
                && !email.chars().any(char::is_whitespace);
            if !ok {
                return Err(ApiError::validation(format!(
                    "`email` `{email}` is not an e-mail address"
                )));
            }
        }
        Ok(())
    }
}

/// A created user and their first key (shown this once).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CreatedUser {
    /// The user.
    pub user: UserDto,
    /// Their first key.
    pub key: CreatedKey,
}

/// Creates a user with a first key (operators only).
#[utoipa::path(post, path = "/api/v1/users", tag = "keys", request_body = NewUser,
    responses((status = 201, body = CreatedUser), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn create_user(
    state: web::Data<ApiState>,
    caller: Caller,
    body: web::Json<NewUser>,
) -> Result<HttpResponse, ApiError> {
    caller.require_operator("creating users")?;
    body.validate()?;
    let user = state
        .store
        .create_user_with_role(
            body.name.trim(),
            body.email.as_deref(),
            body.role.unwrap_or(UserRole::User),
        )
        .await
        .map_err(|err| match err.constraint() {
            Some("users_email_key") => ApiError::conflict(format!(
                "a user with e-mail `{}` exists",
                body.email.as_deref().unwrap_or_default()
            )),
            _ => err.into(),
        })?;
    let key = state.store.create_api_key(user.id, "first key").await?;
    Ok(HttpResponse::Created().json(CreatedUser {
        user: user.to_dto(),
        key: CreatedKey {
            record: key.record,
            key: key.secret,
        },
    }))
}
