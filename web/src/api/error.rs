//! The one error shape of the control plane: `{"error": {"code", "message"}}` with a stable
//! `code` a client can switch on and a `message` that says what happened and what to do.
//!
//! Handlers return `Result<_, ApiError>`; store and role errors map here in one place, so a
//! database outage is a 503 everywhere and never a 500 with a driver message in it.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use artel_actors::store::StoreError;
use artel_messages::Classify as _;
use artel_messages::{ErrorClass, Failure};
use serde::{Deserialize, Serialize};
use std::fmt;
use utoipa::ToSchema;

/// The body of every error response.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// What went wrong, for machines (`code`) and people (`message`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable: `bad_request`, `validation_failed`, `unauthorized`, `forbidden`, `not_found`,
    /// `conflict`, `payload_too_large`, `rate_limited`, `unavailable`, `internal`.
    pub code: String,
    /// What happened and what to do about it.
    pub message: String,
}

/// A failed request.
#[derive(Debug, Clone)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    retry_after_secs: Option<u64>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after_secs: None,
        }
    }

    /// The request itself is malformed (JSON syntax, a query parameter's type).
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// A field's value is not acceptable.
    pub fn validation(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "validation_failed", message)
    }

    /// No key, or a key that is unknown or revoked.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// The caller's role may not do this at all.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// Nothing the caller can see has this id (another user's thing included).
    pub fn not_found(what: impl fmt::Display) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} does not exist, or is not yours"),
        )
    }

    /// The request clashes with the current state.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }

    /// The body is over the limit.
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the request body is over {limit} bytes; send less (http.max_body_bytes)"),
        )
    }

    /// The key spent its rate budget.
    pub fn rate_limited(retry_after_secs: u64) -> Self {
        Self::too_many(retry_after_secs, "this key sent too many requests", "")
    }

    /// This client address presented too many unknown keys.
    pub fn too_many_bad_keys(retry_after_secs: u64) -> Self {
        Self::too_many(
            retry_after_secs,
            "this address presented too many unknown API keys",
            " with a valid key",
        )
    }

    /// A 429 `rate_limited` saying what was too much and when to retry (at least 1 s).
    fn too_many(retry_after_secs: u64, what: &str, how: &str) -> Self {
        let secs = retry_after_secs.max(1);
        Self {
            retry_after_secs: Some(secs),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!("{what}; retry after {secs} s{how}"),
            )
        }
    }

    /// Something artel needs is down, or artel is shutting down.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self {
            retry_after_secs: Some(5),
            ..Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
        }
    }

    /// A bug or an unexpected state; the message is logged in full, the client gets a hint.
    pub fn internal(message: impl fmt::Display) -> Self {
        tracing::error!(error = %message, "internal error in the control plane");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "artel failed unexpectedly; the server log has the details",
        )
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}", self.status, self.code, self.message)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        if let Some(secs) = self.retry_after_secs {
            response.insert_header((header::RETRY_AFTER, HeaderValue::from(secs)));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response.insert_header((header::WWW_AUTHENTICATE, "Bearer realm=\"artel\""));
        }
        response.json(ErrorBody {
            error: ErrorDetail {
                code: self.code.to_owned(),
                message: self.message.clone(),
            },
        })
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match &err {
            StoreError::Invalid { .. } => return Self::validation(err.to_string()),
            StoreError::NotFound { .. } => {
                return Self::new(StatusCode::NOT_FOUND, "not_found", err.to_string());
            }
            StoreError::Conflict { .. } | StoreError::InvalidTransition { .. } => {
                return Self::conflict(err.to_string());
            }
            StoreError::Exhausted { .. } => return Self::unavailable(err.to_string()),
            _ => {}
        }
        if err.constraint().is_some() {
            return Self::conflict(format!("that would break a rule of the data: {err}"));
        }
        match err.class() {
            ErrorClass::Retryable => {
                tracing::warn!(error = %err, "the database is unavailable");
                Self::unavailable("the database is unavailable; retry shortly")
            }
            ErrorClass::Fatal => Self::internal(err),
        }
    }
}

impl From<Failure> for ApiError {
    fn from(failure: Failure) -> Self {
        match failure.class {
            ErrorClass::Retryable => {
                Self::unavailable(format!("{}; retry shortly", failure.reason))
            }
            ErrorClass::Fatal => Self::conflict(failure.reason),
        }
    }
}
