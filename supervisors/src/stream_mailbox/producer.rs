//! The sending half: `XADD` an envelope, fail fast and typed when Redis is away, and keep the
//! stream bounded without ever dropping an entry a consumer group still needs.
//!
//! `XADD … MAXLEN ~ n` would be the obvious cap, but it trims by count alone and so can drop
//! entries that are pending (delivered, not yet acknowledged) or not yet delivered at all — a
//! lost message. Instead, once every [`StreamConfig::trim_every`](super::StreamConfig) sends,
//! a producer whose stream is longer than [`StreamConfig::max_len`](super::StreamConfig)
//! computes, for every consumer group, the lowest id it still needs (its oldest pending entry,
//! or the entry after the last one delivered to it) and trims with `XTRIM … MINID` below the
//! lowest of those. Those bounds only ever rise, so a bound computed a moment ago is still
//! safe when the trim runs. A stream without groups is never trimmed: nobody has read it yet.

use super::{ENVELOPE_FIELD, EntryId, StreamClient, StreamError};
use artel_messages::{Envelope, Payload};
use redis::FromRedisValue;
use redis::aio::MultiplexedConnection;
use redis::streams::{StreamInfoGroupsReply, StreamPendingReply};
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::Mutex;

/// Appends `T` envelopes to one stream. Cheap to share (`&self` methods). It keeps one
/// connection and forgets it when Redis fails it, so the first send after Redis is back
/// connects afresh; it never waits for Redis: while Redis is away every send fails with a
/// retryable [`StreamError`] within the connect plus response timeout.
pub struct StreamProducer<T> {
    client: StreamClient,
    stream: String,
    connection: Mutex<Option<MultiplexedConnection>>,
    sent: AtomicU64,
    payload: PhantomData<fn(T)>,
}

impl<T> std::fmt::Debug for StreamProducer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamProducer")
            .field("stream", &self.stream)
            .finish_non_exhaustive()
    }
}

impl<T: Payload> StreamProducer<T> {
    pub(crate) fn new(client: StreamClient, stream: String) -> Self {
        Self {
            client,
            stream,
            connection: Mutex::new(None),
            sent: AtomicU64::new(0),
            payload: PhantomData,
        }
    }

    /// The stream this producer writes.
    pub fn stream(&self) -> &str {
        &self.stream
    }

    /// Appends `envelope` and returns the id Redis gave it. Once this returns `Ok`, the entry
    /// is Redis's: it is delivered to every consumer group at least once or dead-lettered.
    ///
    /// Fails with [`StreamError::Unavailable`] or [`StreamError::Timeout`] (retryable) when
    /// Redis is down or slow — within the configured connect plus response timeout, never
    /// later — and with [`StreamError::Envelope`] (fatal) when the envelope cannot be encoded.
    pub async fn send(&self, envelope: &Envelope<T>) -> Result<EntryId, StreamError> {
        let bytes = envelope.encode()?;
        let id: String = self
            .query(
                redis::cmd("XADD")
                    .arg(&self.stream)
                    .arg("*")
                    .arg(ENVELOPE_FIELD)
                    .arg(bytes),
            )
            .await?;
        let id = parse_id(&id)?;
        let every = self.client.config().trim_every;
        if self.sent.fetch_add(1, Ordering::Relaxed) % every == every - 1 {
            // The entry is in; a failed trim only postpones trimming to the next check.
            if let Err(err) = self.trim().await {
                tracing::warn!(stream = %self.stream, error = %err, "stream trim failed");
            }
        }
        Ok(id)
    }

    /// If the stream is longer than `max_len`, removes every entry all consumer groups have
    /// acknowledged, and returns the id below which entries were removed. Pending and
    /// undelivered entries are never removed. [`send`](Self::send) calls this every
    /// `trim_every` sends.
    pub async fn trim(&self) -> Result<Option<EntryId>, StreamError> {
        let Some(max_len) = self.client.config().max_len else {
            return Ok(None);
        };
        let len: usize = self.query(redis::cmd("XLEN").arg(&self.stream)).await?;
        if len <= max_len {
            return Ok(None);
        }
        let groups: StreamInfoGroupsReply = self
            .query(redis::cmd("XINFO").arg("GROUPS").arg(&self.stream))
            .await?;
        let mut needed: Option<EntryId> = None;
        for group in &groups.groups {
            // Everything up to the last delivered entry that is not pending is acknowledged.
            let mut bound = parse_id(&group.last_delivered_id)?.successor();
            if group.pending > 0 {
                let pending: StreamPendingReply = self
                    .query(redis::cmd("XPENDING").arg(&self.stream).arg(&group.name))
                    .await?;
                if let StreamPendingReply::Data(data) = pending {
                    bound = bound.min(parse_id(&data.start_id)?);
                }
            }
            needed = Some(needed.map_or(bound, |lowest| lowest.min(bound)));
        }
        let Some(min_id) = needed else {
            return Ok(None);
        };
        let removed: usize = self
            .query(
                redis::cmd("XTRIM")
                    .arg(&self.stream)
                    .arg("MINID")
                    .arg(min_id.to_string()),
            )
            .await?;
        tracing::debug!(stream = %self.stream, %min_id, removed, "trimmed acknowledged entries");
        Ok(Some(min_id))
    }

    /// Runs one command on the kept connection; forgets the connection when Redis failed it,
    /// so the next command reconnects.
    async fn query<V: FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<V, StreamError> {
        let mut conn = self.connection().await?;
        let result = self.client.timed(cmd.query_async(&mut conn)).await;
        if let Err(StreamError::Unavailable(_) | StreamError::Timeout(_)) = &result {
            *self.connection.lock().await = None;
        }
        result
    }

    /// The kept connection, or a new one.
    async fn connection(&self) -> Result<MultiplexedConnection, StreamError> {
        let mut kept = self.connection.lock().await;
        if let Some(conn) = kept.as_ref() {
            return Ok(conn.clone());
        }
        let conn = self
            .client
            .connect(self.client.config().response_timeout)
            .await?;
        *kept = Some(conn.clone());
        Ok(conn)
    }
}

fn parse_id(id: &str) -> Result<EntryId, StreamError> {
    id.parse()
        .map_err(|err: super::id::BadEntryId| StreamError::UnexpectedReply(err.to_string()))
}
