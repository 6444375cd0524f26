//! Typed identifiers: a task id can never be passed where a project id is meant.
//!
//! Every id is a newtype that serializes as its bare value (`serde(transparent)`), prints as
//! that value and parses back from it with an error that names the kind of id. Entity ids are
//! UUIDs; [`new`](TaskId::new) makes a version 7 UUID, which sorts by creation time and so
//! keeps database indexes compact. [`EventId`] is the journal's `bigint` sequence number, so
//! events order by it.

use crate::error::{Classify, ErrorClass};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

/// A string that is not a valid id of the expected kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} `{input}`: {reason}")]
pub struct IdParseError {
    /// Which kind of id was parsed, e.g. `task id`.
    pub what: &'static str,
    /// The string that was given.
    pub input: String,
    /// Why it was refused.
    pub reason: String,
}

impl Classify for IdParseError {
    fn class(&self) -> ErrorClass {
        ErrorClass::Fatal
    }
}

/// Declares a UUID-backed id newtype.
macro_rules! uuid_id {
    ($(#[$meta:meta])* $name:ident, $what:literal) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A fresh id: a version 7 UUID, ordered by creation time.
            #[allow(clippy::new_without_default, reason = "a default id would silently be a fresh one")]
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            /// The id with this UUID value (read from the database or the wire).
            pub const fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            /// The UUID value.
            pub const fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0.hyphenated(), f)
            }
        }

        #[cfg(feature = "openapi")]
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                $crate::openapi::uuid_schema(concat!("A ", $what, " (UUID)."))
            }
        }

        #[cfg(feature = "openapi")]
        impl utoipa::ToSchema for $name {}

        impl FromStr for $name {
            type Err = IdParseError;

            fn from_str(input: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(input).map(Self).map_err(|err| IdParseError {
                    what: $what,
                    input: input.to_owned(),
                    reason: format!("expected a UUID ({err})"),
                })
            }
        }
    };
}

uuid_id!(
    /// A user: the owner of projects, whoever they talk to artel through.
    UserId,
    "user id"
);
uuid_id!(
    /// A project: a repository, its deployments and secrets.
    ProjectId,
    "project id"
);
uuid_id!(
    /// A task: one unit of work on a project, engineering or deploy.
    ///
    /// Callers choose it when they start a task, so a repeated start is recognized.
    TaskId,
    "task id"
);
uuid_id!(
    /// A session: one conversation with the ProductOwner.
    SessionId,
    "session id"
);
uuid_id!(
    /// A worker: one sandbox, a container or a local process.
    WorkerId,
    "worker id"
);
uuid_id!(
    /// A deployment: one attempt to run a project's commit on a target.
    DeploymentId,
    "deployment id"
);
uuid_id!(
    /// An API key: its id is public (listings, revocation); its secret is shown once.
    ApiKeyId,
    "API key id"
);
uuid_id!(
    /// One envelope crossing a process boundary.
    MessageId,
    "message id"
);
uuid_id!(
    /// Ties together every envelope caused, directly or not, by one first message.
    CorrelationId,
    "correlation id"
);

/// An event's position in the append-only journal, assigned by the store.
///
/// Ids grow with append order, so a subscriber resumes with "everything after id N".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EventId(i64);

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for EventId {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        crate::openapi::event_id_schema()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for EventId {}

impl EventId {
    /// The event id with this sequence number.
    pub const fn new(sequence: i64) -> Self {
        Self(sequence)
    }

    /// The sequence number.
    pub const fn get(self) -> i64 {
        self.0
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl FromStr for EventId {
    type Err = IdParseError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        input.parse().map(Self).map_err(|err| IdParseError {
            what: "event id",
            input: input.to_owned(),
            reason: format!("expected a whole number ({err})"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_ids_serialize_bare_and_round_trip_through_text() {
        let id = TaskId::new();
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{id}\""));
        assert_eq!(serde_json::from_str::<TaskId>(&json).unwrap(), id);
        assert_eq!(id.to_string().parse::<TaskId>().unwrap(), id);
        assert_eq!(TaskId::from_uuid(id.as_uuid()), id);
    }

    #[test]
    fn new_ids_are_version_7_and_ordered_by_creation() {
        let first = ProjectId::new();
        let second = ProjectId::new();
        assert_eq!(first.as_uuid().get_version_num(), 7);
        assert!(first < second);
    }

    #[test]
    fn parse_errors_name_the_kind_of_id() {
        let err = "nope".parse::<DeploymentId>().unwrap_err();
        assert_eq!(err.what, "deployment id");
        assert!(
            err.to_string()
                .starts_with("invalid deployment id `nope`: expected a UUID"),
            "{err}"
        );
        let err = "1.5".parse::<EventId>().unwrap_err();
        assert!(
            err.to_string()
                .starts_with("invalid event id `1.5`: expected a whole number"),
            "{err}"
        );
    }

    #[test]
    fn event_ids_are_ordered_numbers() {
        let id: EventId = "42".parse().unwrap();
        assert_eq!(id, EventId::new(42));
        assert_eq!(serde_json::to_string(&id).unwrap(), "42");
        assert!(EventId::new(41) < id);
        assert_eq!(id.get(), 42);
    }
}
