//! Why an actor or supervisor run ended — the input to every restart decision.
//!
//! Like Unix exit codes, the variants are few and documented: a supervisor reads only
//! [`ExitReason::is_abnormal`] (for `transient` children) and [`ExitReason::is_fatal`]
//! (fatal never restarts).

use artel_messages::{ErrorClass, Failure};
use serde::Serialize;
use std::fmt;
use std::time::Duration;

/// How one run of a supervised child ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ExitReason {
    /// The actor stopped itself (`Context::stop`) or its mailbox was closed for good.
    Normal,
    /// Its supervisor asked it to stop and it did so within its shutdown deadline.
    Shutdown,
    /// Its supervisor asked it to stop and it did not finish in time: the run was aborted.
    Killed,
    /// It returned a classified failure from `started` or through `Context::fail`.
    Failed(Failure),
    /// A handler, hook or constructor panicked; the panic message is kept.
    Panicked {
        /// The panic payload, when it was a string.
        message: String,
    },
    /// A handler ran past its deadline and was cancelled.
    Stuck {
        /// The message type whose handler hung.
        message_type: &'static str,
        /// The deadline it exceeded.
        #[serde(with = "millis")]
        deadline: Duration,
    },
    /// A supervisor exceeded its restart intensity and gave up (stopping its children).
    Escalated {
        /// Which child exceeded the intensity, and its last exit.
        reason: String,
    },
}

impl ExitReason {
    /// Abnormal exits restart `transient` children; normal ones do not.
    pub fn is_abnormal(&self) -> bool {
        !matches!(self, Self::Normal | Self::Shutdown)
    }

    /// A fatal failure: no restart can help, so none is made.
    pub fn is_fatal(&self) -> bool {
        matches!(self, Self::Failed(f) if f.class == ErrorClass::Fatal)
    }

    /// This exit as a classified failure, for callers and the tree's `last_error`.
    pub fn to_failure(&self) -> Option<Failure> {
        match self {
            Self::Normal | Self::Shutdown => None,
            Self::Failed(failure) => Some(failure.clone()),
            other => Some(Failure::retryable(other.to_string())),
        }
    }
}

impl fmt::Display for ExitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Normal => f.write_str("stopped normally"),
            Self::Shutdown => f.write_str("shut down"),
            Self::Killed => f.write_str("killed after its shutdown deadline"),
            Self::Failed(failure) => write!(f, "{failure}"),
            Self::Panicked { message } => write!(f, "panicked: {message}"),
            Self::Stuck {
                message_type,
                deadline,
            } => write!(
                f,
                "stuck: handler for {message_type} ran past its {deadline:?} deadline"
            ),
            Self::Escalated { reason } => write!(f, "gave up: {reason}"),
        }
    }
}

/// Text of a panic payload (`&str` or `String`; anything else is named as such).
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}

mod millis {
    use serde::Serializer;
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_normal_and_shutdown_are_normal() {
        assert!(!ExitReason::Normal.is_abnormal());
        assert!(!ExitReason::Shutdown.is_abnormal());
        assert!(ExitReason::Killed.is_abnormal());
        assert!(
            ExitReason::Panicked {
                message: "x".into()
            }
            .is_abnormal()
        );
        assert!(ExitReason::Failed(Failure::fatal("bad")).is_fatal());
        assert!(!ExitReason::Failed(Failure::retryable("later")).is_fatal());
    }
}
