//! Error classes: the one question a supervisor asks of a failure.
//!
//! Every error a role returns answers [`Classify::class`]: *retryable* errors are worth a
//! restart under the role's child spec (a dropped connection, a timeout, a busy worker pool);
//! *fatal* errors are not (bad input, a missing secret the user must give, a bug the same input
//! will hit again). A fatal failure never restarts — it is reported to whoever asked.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Whether trying again can help.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum ErrorClass {
    /// The same work may succeed later: restart under the child spec's policy.
    Retryable,
    /// The same work will fail again: do not restart, report it.
    Fatal,
}

impl ErrorClass {
    /// The lowercase name used in logs, events and the tree snapshot.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Retryable => "retryable",
            Self::Fatal => "fatal",
        }
    }
}

impl fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Implemented by every error type a role can return.
pub trait Classify: std::error::Error {
    /// Whether a restart can help.
    fn class(&self) -> ErrorClass;

    /// This error as a serializable [`Failure`] (class plus the full error chain).
    fn to_failure(&self) -> Failure {
        let mut reason = self.to_string();
        let mut source = self.source();
        while let Some(cause) = source {
            reason.push_str(": ");
            reason.push_str(&cause.to_string());
            source = cause.source();
        }
        Failure {
            class: self.class(),
            reason,
        }
    }
}

/// A classified failure with a human-readable reason: what crosses actor and process
/// boundaries, lands in the tree snapshot and in task events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{class} failure: {reason}")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Failure {
    /// Whether a restart can help.
    pub class: ErrorClass,
    /// What happened, in words a user or operator can act on.
    pub reason: String,
}

impl Failure {
    /// A failure that a restart may cure.
    pub fn retryable(reason: impl Into<String>) -> Self {
        Self {
            class: ErrorClass::Retryable,
            reason: reason.into(),
        }
    }

    /// A failure that no restart will cure.
    pub fn fatal(reason: impl Into<String>) -> Self {
        Self {
            class: ErrorClass::Fatal,
            reason: reason.into(),
        }
    }

    /// True when a restart may cure it.
    pub fn is_retryable(&self) -> bool {
        self.class == ErrorClass::Retryable
    }
}

impl Classify for Failure {
    fn class(&self) -> ErrorClass {
        self.class
    }

    fn to_failure(&self) -> Failure {
        self.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("could not reach the worker pool")]
    struct Outer(#[source] std::io::Error);

    impl Classify for Outer {
        fn class(&self) -> ErrorClass {
            ErrorClass::Retryable
        }
    }

    #[test]
    fn failure_carries_the_whole_error_chain() {
        let err = Outer(std::io::Error::other("connection refused"));
        let failure = err.to_failure();
        assert_eq!(failure.class, ErrorClass::Retryable);
        assert_eq!(
            failure.reason,
            "could not reach the worker pool: connection refused"
        );
    }

    #[test]
    fn class_serializes_as_snake_case() {
        let json = serde_json::to_string(&Failure::fatal("bad input")).unwrap();
        assert_eq!(json, r#"{"class":"fatal","reason":"bad input"}"#);
    }
}
