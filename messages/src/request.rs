//! The one trait every actor message implements: what it answers.
//!
//! The reply type belongs to the message, so the catalog alone tells what asking a role
//! returns; `supervisors` builds typed request-reply on it without knowing any domain word.

/// A message an actor can be sent, with the type of its reply.
///
/// Fire-and-forget messages answer `()`.
pub trait Request: Send + 'static {
    /// What the handling actor answers.
    type Reply: Send + 'static;
}
