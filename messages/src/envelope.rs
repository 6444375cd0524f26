//! Envelopes: what a message becomes when it crosses a process boundary.
//!
//! Inside one process actors pass typed messages directly. Between processes (over a Redis
//! stream, see [`crate::streams`]) a message travels as JSON inside an [`Envelope`], which adds
//! what a receiver in another process needs: a unique id (for de-duplication and dead-letter
//! forensics), a correlation id shared by everything one request set off, the id of the
//! message that caused this one, when it was sent, and the payload's kind and schema version
//! so that a receiver refuses what it cannot read instead of misreading it.

use crate::error::{Classify, ErrorClass};
use crate::ids::{CorrelationId, MessageId};
use crate::time::Timestamp;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// A message type that may travel in an [`Envelope`].
pub trait Payload: Serialize + DeserializeOwned {
    /// The payload's type name, written into every envelope's `kind`; unique in the catalog.
    const KIND: &'static str;
    /// The newest schema of this payload the code can read and writes. Bump it when a change
    /// would make older code misread new messages; older versions must stay readable.
    const SCHEMA_VERSION: u16;
}

/// A payload with the metadata it needs to cross a process boundary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope<T> {
    /// This envelope's own id.
    pub message_id: MessageId,
    /// Shared by every envelope one original request led to.
    pub correlation_id: CorrelationId,
    /// The envelope whose handling sent this one, if any.
    pub causation_id: Option<MessageId>,
    /// The payload's schema version when it was written.
    pub schema_version: u16,
    /// When the sender built the envelope.
    pub sent_at: Timestamp,
    /// The payload's [`Payload::KIND`].
    pub kind: String,
    /// The message itself.
    pub payload: T,
}

/// Why bytes could not become (or be made from) an envelope. Every case is fatal: the same
/// bytes will fail the same way, so they go to the stream's dead-letter stream.
#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    /// Not JSON, or JSON without the envelope's fields.
    #[error("malformed envelope: {0}")]
    Malformed(#[source] serde_json::Error),
    /// An envelope for another payload type.
    #[error("envelope of kind `{found}` where `{expected}` was expected")]
    WrongKind {
        /// The kind this code reads.
        expected: &'static str,
        /// The kind the envelope carries.
        found: String,
    },
    /// Written by newer code than this one.
    #[error("`{kind}` envelope has schema version {found}, newer than the {known} this code knows")]
    NewerSchema {
        /// The payload's kind.
        kind: &'static str,
        /// The version in the envelope.
        found: u16,
        /// The newest version this code reads.
        known: u16,
    },
    /// The right kind and version, but the payload does not fit its type.
    #[error("invalid `{kind}` payload: {source}")]
    InvalidPayload {
        /// The payload's kind.
        kind: &'static str,
        /// What did not fit.
        #[source]
        source: serde_json::Error,
    },
    /// The envelope could not be written (a value JSON cannot hold).
    #[error("cannot encode envelope: {0}")]
    Encode(#[source] serde_json::Error),
}

impl Classify for EnvelopeError {
    fn class(&self) -> ErrorClass {
        match self {
            Self::Malformed(_)
            | Self::WrongKind { .. }
            | Self::NewerSchema { .. }
            | Self::InvalidPayload { .. }
            | Self::Encode(_) => ErrorClass::Fatal,
        }
    }
}

impl<T: Payload> Envelope<T> {
    /// An envelope starting a new conversation: fresh message and correlation ids, no cause.
    pub fn new(payload: T) -> Self {
        Self::build(CorrelationId::new(), None, payload)
    }

    /// An envelope sent while handling `parent`: same correlation, caused by `parent`.
    pub fn caused_by<P>(parent: &Envelope<P>, payload: T) -> Self {
        Self::build(parent.correlation_id, Some(parent.message_id), payload)
    }

    fn build(correlation_id: CorrelationId, causation_id: Option<MessageId>, payload: T) -> Self {
        Self {
            message_id: MessageId::new(),
            correlation_id,
            causation_id,
            schema_version: T::SCHEMA_VERSION,
            sent_at: Timestamp::now(),
            kind: T::KIND.to_owned(),
            payload,
        }
    }

    /// The JSON bytes put on a stream.
    pub fn encode(&self) -> Result<Vec<u8>, EnvelopeError> {
        serde_json::to_vec(self).map_err(EnvelopeError::Encode)
    }

    /// Reads an envelope of this payload type, refusing another kind or a newer schema.
    pub fn decode(bytes: &[u8]) -> Result<Self, EnvelopeError> {
        let raw: Envelope<serde_json::Value> =
            serde_json::from_slice(bytes).map_err(EnvelopeError::Malformed)?;
        if raw.kind != T::KIND {
            return Err(EnvelopeError::WrongKind {
                expected: T::KIND,
                found: raw.kind,
            });
        }
        if raw.schema_version > T::SCHEMA_VERSION {
            return Err(EnvelopeError::NewerSchema {
                kind: T::KIND,
                found: raw.schema_version,
                known: T::SCHEMA_VERSION,
            });
        }
        let payload = serde_json::from_value(raw.payload).map_err(|source| {
            EnvelopeError::InvalidPayload {
                kind: T::KIND,
                source,
            }
        })?;
        Ok(Envelope {
            message_id: raw.message_id,
            correlation_id: raw.correlation_id,
            causation_id: raw.causation_id,
            schema_version: raw.schema_version,
            sent_at: raw.sent_at,
            kind: raw.kind,
            payload,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    struct Ping {
        n: u32,
    }

    impl Payload for Ping {
        const KIND: &'static str = "Ping";
        const SCHEMA_VERSION: u16 = 2;
    }

    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    struct Pong {
        n: u32,
    }

    impl Payload for Pong {
        const KIND: &'static str = "Pong";
        const SCHEMA_VERSION: u16 = 1;
    }

    fn json_of(envelope: &Envelope<Ping>) -> serde_json::Value {
        serde_json::from_slice(&envelope.encode().unwrap()).unwrap()
    }

    #[test]
    fn new_starts_a_conversation() {
        let envelope = Envelope::new(Ping { n: 1 });
        assert_eq!(envelope.kind, "Ping");
        assert_eq!(envelope.schema_version, 2);
        assert_eq!(envelope.causation_id, None);
        assert_ne!(
            envelope.correlation_id.as_uuid(),
            envelope.message_id.as_uuid()
        );
    }

    #[test]
    fn caused_by_keeps_the_correlation_and_names_the_cause() {
        let parent = Envelope::new(Ping { n: 1 });
        let child = Envelope::caused_by(&parent, Pong { n: 2 });
        assert_eq!(child.correlation_id, parent.correlation_id);
        assert_eq!(child.causation_id, Some(parent.message_id));
        assert_ne!(child.message_id, parent.message_id);
        assert_eq!(child.kind, "Pong");
    }

    #[test]
    fn round_trips_and_pins_the_field_names() {
        let envelope = Envelope::new(Ping { n: 7 });
        let json = json_of(&envelope);
        let mut keys: Vec<_> = json.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "causation_id",
                "correlation_id",
                "kind",
                "message_id",
                "payload",
                "schema_version",
                "sent_at"
            ]
        );
        assert_eq!(json["payload"], serde_json::json!({ "n": 7 }));
        assert!(json["sent_at"].as_str().unwrap().ends_with('Z'));
        let back = Envelope::<Ping>::decode(&envelope.encode().unwrap()).unwrap();
        assert_eq!(back, envelope);
    }

    #[test]
    fn older_schema_versions_are_read() {
        let mut json = json_of(&Envelope::new(Ping { n: 7 }));
        json["schema_version"] = 1.into();
        let back = Envelope::<Ping>::decode(json.to_string().as_bytes()).unwrap();
        assert_eq!(back.schema_version, 1);
        assert_eq!(back.payload, Ping { n: 7 });
    }

    #[test]
    fn newer_schema_versions_are_refused() {
        let mut json = json_of(&Envelope::new(Ping { n: 7 }));
        json["schema_version"] = 3.into();
        let err = Envelope::<Ping>::decode(json.to_string().as_bytes()).unwrap_err();
        assert!(matches!(
            err,
            EnvelopeError::NewerSchema {
                kind: "Ping",
                found: 3,
                known: 2
            }
        ));
        assert_eq!(err.class(), ErrorClass::Fatal);
    }

    #[test]
    fn another_kind_is_refused() {
        let bytes = Envelope::new(Pong { n: 1 }).encode().unwrap();
        let err = Envelope::<Ping>::decode(&bytes).unwrap_err();
        assert_eq!(
            err.to_string(),
            "envelope of kind `Pong` where `Ping` was expected"
        );
        assert_eq!(err.class(), ErrorClass::Fatal);
    }

    #[test]
    fn malformed_bytes_and_payloads_are_fatal() {
        let err = Envelope::<Ping>::decode(b"{not json").unwrap_err();
        assert!(matches!(err, EnvelopeError::Malformed(_)));
        assert_eq!(err.class(), ErrorClass::Fatal);

        let mut json = json_of(&Envelope::new(Ping { n: 7 }));
        json["payload"] = serde_json::json!({ "n": "seven" });
        let err = Envelope::<Ping>::decode(json.to_string().as_bytes()).unwrap_err();
        assert!(matches!(err, EnvelopeError::InvalidPayload { .. }));
        assert_eq!(err.to_failure().class, ErrorClass::Fatal);

        let mut json = json_of(&Envelope::new(Ping { n: 7 }));
        json["sent_at"] = "2026-11-23T19:51:07".into();
        let err = Envelope::<Ping>::decode(json.to_string().as_bytes()).unwrap_err();
        assert!(err.to_string().contains("has no UTC offset"), "{err}");
    }
}
