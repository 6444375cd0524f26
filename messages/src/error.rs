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

    /// The wait the failing party asked for before a retry (an HTTP `retry-after`); a
    /// restart waits at least this long. `None` unless the error knows one.
    fn retry_delay(&self) -> Option<std::time::Duration> {
        None
    }

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
            retry_after_ms: self.retry_delay().map(millis),
        }
    }
}

fn millis(delay: std::time::Duration) -> u64 {
    u64::try_from(delay.as_millis()).unwrap_or(u64::MAX)
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
    /// The least wait before a retry, in milliseconds, when the failing party asked for one
    /// (a provider's `retry-after`): the restart that retries waits at least this long.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
}

impl Failure {
    /// A failure that a restart may cure.
    pub fn retryable(reason: impl Into<String>) -> Self {
        Self {
            class: ErrorClass::Retryable,
            reason: reason.into(),
            retry_after_ms: None,
        }
    }

    /// A failure that no restart will cure.
    pub fn fatal(reason: impl Into<String>) -> Self {
        Self {
            class: ErrorClass::Fatal,
            reason: reason.into(),
            retry_after_ms: None,
        }
    }

    /// True when a restart may cure it.
    pub fn is_retryable(&self) -> bool {
        self.class == ErrorClass::Retryable
    }

    /// The least wait before a retry, when one was asked for.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        self.retry_after_ms.map(std::time::Duration::from_millis)
    }
}

impl Classify for Failure {
    fn class(&self) -> ErrorClass {
        self.class
    }

    fn retry_delay(&self) -> Option<std::time::Duration> {
        self.retry_after()
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
