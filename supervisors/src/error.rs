//! The errors callers of actors and supervisors see. Each is classified, so a role that gets
//! one can let its own supervisor decide: a closed mailbox is fatal (the actor is gone for
//! good), a panicked or stuck handler is retryable (the actor was restarted).

use artel_messages::{Classify, ErrorClass};
use std::time::Duration;

/// `Addr::send` failed; the message is handed back, never dropped silently.
#[derive(Debug, thiserror::Error)]
#[error("mailbox closed: the actor has stopped for good")]
pub struct SendError<M>(pub M);

impl<M: std::fmt::Debug> Classify for SendError<M> {
    fn class(&self) -> ErrorClass {
        ErrorClass::Fatal
    }
}

/// `Addr::try_send` failed; the message is handed back.
#[derive(Debug, thiserror::Error)]
pub enum TrySendError<M> {
    /// The mailbox is at capacity: back off or use `send`, which waits.
    #[error("mailbox full: the actor is behind; retry later or use send(), which waits")]
    Full(M),
    /// The actor has stopped for good.
    #[error("mailbox closed: the actor has stopped for good")]
    Closed(M),
}

impl<M> TrySendError<M> {
    /// The message that was not delivered.
    pub fn into_inner(self) -> M {
        match self {
            Self::Full(m) | Self::Closed(m) => m,
        }
    }
}

impl<M: std::fmt::Debug> Classify for TrySendError<M> {
    fn class(&self) -> ErrorClass {
        match self {
            Self::Full(_) => ErrorClass::Retryable,
            Self::Closed(_) => ErrorClass::Fatal,
        }
    }
}

/// `Addr::call` got no reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The mailbox was closed before the message was accepted.
    #[error("mailbox closed: the actor has stopped for good")]
    Closed,
    /// The actor stopped (or was restarted by a sibling's failure) before answering.
    #[error("the actor stopped before answering")]
    Stopped,
    /// The handler panicked; the actor is being restarted under its policy.
    #[error("the handler panicked: {0}")]
    Panicked(String),
    /// The handler ran past its deadline and was cancelled; the actor is being restarted.
    #[error("the handler ran past its {0:?} deadline and was cancelled")]
    Stuck(Duration),
}

impl Classify for CallError {
    fn class(&self) -> ErrorClass {
        match self {
            Self::Closed => ErrorClass::Fatal,
            Self::Stopped | Self::Panicked(_) | Self::Stuck(_) => ErrorClass::Retryable,
        }
    }
}

/// A request to a supervisor failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SupervisorError {
    /// The supervisor has stopped for good.
    #[error("the supervisor has stopped")]
    Stopped,
    /// No child with that id is under this supervisor.
    #[error("no child {0} under this supervisor")]
    NoSuchChild(u64),
    /// A child spec was refused; the reason says what to change.
    #[error("invalid child spec: {0}")]
    InvalidSpec(String),
}

impl Classify for SupervisorError {
    fn class(&self) -> ErrorClass {
        ErrorClass::Fatal
    }
}
