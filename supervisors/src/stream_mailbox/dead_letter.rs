//! Dead letters: entries that could not be handled, kept with the reason instead of being
//! dropped or retried forever.
//!
//! A dead letter is appended to `<stream>` + `DEAD_LETTER_SUFFIX` and the source entry is
//! acknowledged in the same `MULTI`/`EXEC`, so an entry is either still pending on its stream
//! or in the dead-letter stream — never neither. Dead-letter streams have no consumer group and
//! are never trimmed by artel: they are for operators (and a future replay command).

use super::consumer::{Delivery, Names};
use super::{ENVELOPE_FIELD, StreamClient, StreamError};
use artel_messages::{Envelope, EnvelopeError, ErrorClass, Failure, Payload, Timestamp};
use redis::Value;
use redis::aio::MultiplexedConnection;
use redis::streams::StreamRangeReply;
use std::collections::HashMap;

/// One entry of a dead-letter stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// Its id in the dead-letter stream.
    pub id: String,
    /// The stream it came from.
    pub source_stream: String,
    /// Its id in that stream.
    pub source_id: String,
    /// The consumer group that gave up on it.
    pub group: String,
    /// The consumer that moved it here.
    pub consumer: String,
    /// How often it had been delivered.
    pub deliveries: u64,
    /// Why it could not be handled: the handler's last failure, the decoding error, or the
    /// delivery limit.
    pub failure: Failure,
    /// When it was moved here.
    pub dead_at: Option<Timestamp>,
    /// The entry's envelope bytes as they were on the stream (empty if it had none).
    pub envelope: Vec<u8>,
}

impl DeadLetter {
    /// The envelope, if it is a readable `T` envelope.
    pub fn decode<T: Payload>(&self) -> Result<Envelope<T>, EnvelopeError> {
        Envelope::decode(&self.envelope)
    }

    fn from_entry(id: String, fields: &HashMap<String, Value>) -> Self {
        let text = |name: &str| {
            fields
                .get(name)
                .and_then(|value| redis::from_redis_value_ref::<String>(value).ok())
                .unwrap_or_default()
        };
        let failure = serde_json::from_str(&text("failure")).unwrap_or_else(|_| Failure {
            class: ErrorClass::Fatal,
            reason: text("failure"),
            retry_after_ms: None,
        });
        Self {
            id,
            source_stream: text("source_stream"),
            source_id: text("source_id"),
            group: text("group"),
            consumer: text("consumer"),
            deliveries: text("deliveries").parse().unwrap_or(0),
            failure,
            dead_at: Timestamp::parse(&text("dead_at")).ok(),
            envelope: fields
                .get(ENVELOPE_FIELD)
                .and_then(|value| redis::from_redis_value_ref::<Vec<u8>>(value).ok())
                .unwrap_or_default(),
        }
    }
}

/// Appends the dead letter and acknowledges the source entry, atomically.
pub(crate) async fn write(
    client: &StreamClient,
    conn: &mut MultiplexedConnection,
    names: &Names,
    entry: &Delivery,
    bytes: &[u8],
    failure: &Failure,
) -> Result<(), StreamError> {
    let failure_json = serde_json::to_string(failure)
        .unwrap_or_else(|_| format!("{{\"class\":\"fatal\",\"reason\":{:?}}}", failure.reason));
    let mut pipe = redis::pipe();
    pipe.atomic()
        .cmd("XADD")
        .arg(StreamClient::dead_letter_stream(&names.stream))
        .arg("*")
        .arg(ENVELOPE_FIELD)
        .arg(bytes)
        .arg("failure")
        .arg(failure_json)
        .arg("source_stream")
        .arg(&names.stream)
        .arg("source_id")
        .arg(&entry.id)
        .arg("group")
        .arg(&names.group)
        .arg("consumer")
        .arg(&names.consumer)
        .arg("deliveries")
        .arg(entry.deliveries)
        .arg("dead_at")
        .arg(Timestamp::now().to_string())
        .ignore()
        .cmd("XACK")
        .arg(&names.stream)
        .arg(&names.group)
        .arg(&entry.id)
        .ignore();
    client.timed(pipe.query_async::<()>(conn)).await
}

/// Up to `count` dead letters of `stream`, oldest first.
pub(crate) async fn read(
    client: &StreamClient,
    stream: &str,
    count: usize,
) -> Result<Vec<DeadLetter>, StreamError> {
    let mut conn = client.connect(client.config().response_timeout).await?;
    let reply: StreamRangeReply = client
        .timed(
            redis::cmd("XRANGE")
                .arg(StreamClient::dead_letter_stream(stream))
                .arg("-")
                .arg("+")
                .arg("COUNT")
                .arg(count)
                .query_async(&mut conn),
        )
        .await?;
    Ok(reply
        .ids
        .into_iter()
        .map(|entry| DeadLetter::from_entry(entry.id, &entry.map))
        .collect())
}
