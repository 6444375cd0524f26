//! ProductOwner's messages: a user's line in, a reply and the recognized intent out.
//!
//! The ProductOwner (PO) is the one role a user talks to. Its session actor sends it each user
//! line as a [`UserMessage`]; the PO answers with text for the user and an [`Intent`] the
//! session acts on (start a task, store a secret, …). The session also forwards its tasks'
//! events as [`TaskUpdate`], so the PO tells the user when a deploy finished instead of handing
//! out a job id to poll (the seeds' backlog item).

use crate::error::Failure;
use crate::event::Event;
use crate::ids::{SessionId, UserId};
use crate::request::Request;
use crate::secret::SecretValue;
use serde::{Deserialize, Serialize};

/// A line the user typed in a session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserMessage {
    /// The conversation.
    pub session: SessionId,
    /// Who typed it.
    pub user: UserId,
    /// What they typed.
    pub text: String,
}

impl Request for UserMessage {
    type Reply = Result<PoReply, Failure>;
}

/// The PO's answer to a [`UserMessage`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoReply {
    /// What to show the user.
    pub text: String,
    /// What the user wants done; the session carries it out.
    pub intent: Intent,
}

/// What a user's line asks for. Serialized with an `intent` tag, e.g. `{"intent": "status"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "intent", rename_all = "snake_case")]
pub enum Intent {
    /// Build a new project: start an engineering task.
    BuildNew {
        /// What to build, in the user's words.
        description: String,
    },
    /// How are my tasks doing?
    Status,
    /// Which projects do I have?
    ListProjects,
    /// Deploy a project: start a deploy task.
    Deploy {
        /// The project as the user named it; the session resolves it among the user's projects.
        project: String,
    },
    /// Here is a secret a deploy asked for.
    ProvideSecret {
        /// The environment variable name.
        name: String,
        /// The value; travels once, to the SecretResolver.
        value: SecretValue,
    },
    /// Yes to what the PO proposed.
    Approve,
    /// No to what the PO proposed.
    Reject,
    /// Stop the running task.
    Cancel,
    /// What the user says about the task that waits for them: a correction of its spec, or
    /// guidance for the Developer. (The offline parser reads it from context: a line it does
    /// not otherwise understand while such a task waits.)
    Guidance {
        /// Their words.
        text: String,
    },
    /// Nothing to act on: small talk, or not understood.
    Unknown,
}

impl Intent {
    /// True when the user's line contained a secret value: the session must journal that
    /// line redacted, never as typed.
    pub fn carries_secret(&self) -> bool {
        matches!(self, Self::ProvideSecret { .. })
    }
}

/// "Answer what is waiting": the session handles, in order, every user line of its
/// transcript that has no answer yet. Lines are journaled before this is sent, so a line
/// that arrives while the session is busy, asleep or restarting is answered when it wakes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WakeSession {
    /// The conversation.
    pub session: SessionId,
}

impl Request for WakeSession {
    /// How many lines were answered.
    type Reply = Result<u32, Failure>;
}

/// An event about one of the session's tasks, for the PO to tell the user about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskUpdate {
    /// The conversation to speak in.
    pub session: SessionId,
    /// What happened.
    pub event: Event,
}

impl Request for TaskUpdate {
    /// What to tell the user; `None` when the event is not worth a message.
    type Reply = Result<Option<String>, Failure>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn intents_are_tagged_snake_case() {
        assert_eq!(
            serde_json::to_value(Intent::ListProjects).unwrap(),
            json!({"intent": "list_projects"})
        );
        assert_eq!(
            serde_json::to_value(Intent::BuildNew {
                description: "a URL shortener".into()
            })
            .unwrap(),
            json!({"intent": "build_new", "description": "a URL shortener"})
        );
        let back: Intent =
            serde_json::from_value(json!({"intent": "deploy", "project": "blog"})).unwrap();
        assert_eq!(
            back,
            Intent::Deploy {
                project: "blog".into()
            }
        );
    }

    #[test]
    fn secrets_are_flagged_and_never_printed() {
        let intent = Intent::ProvideSecret {
            name: "API_KEY".into(),
            value: SecretValue::new("sk-123"),
        };
        assert!(intent.carries_secret());
        assert!(!Intent::Approve.carries_secret());
        let debug = format!("{intent:?}");
        assert!(!debug.contains("sk-123"), "{debug}");
        assert_eq!(
            serde_json::to_value(&intent).unwrap(),
            json!({"intent": "provide_secret", "name": "API_KEY", "value": "sk-123"})
        );
    }
}
