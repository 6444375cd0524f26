//! A typed mailbox over Redis Streams, for envelopes that cross a process boundary.
//!
//! Inside one process actors talk through [`Addr`](crate::Addr); nothing here is used and no
//! Redis is needed. When a role runs in another process, its messages travel as
//! [`Envelope`](artel_messages::Envelope)s on a Redis stream, and this module is the one place that knows how:
//!
//! - [`StreamProducer::send`] appends an envelope (`XADD`) and returns the [`EntryId`] Redis
//!   gave it. Once that id is returned the entry is Redis's responsibility; it is never trimmed
//!   before every consumer group has acknowledged it (see [`producer`]).
//! - [`StreamConsumer`] reads with one consumer group per role (group name = role) and one
//!   consumer per process instance, hands each envelope to a local [`StreamHandler`] (a
//!   closure, or a supervised actor's [`Addr`](crate::Addr) through [`Inbound`]) and `XACK`s
//!   only after the handler returned `Ok` — delivery is at least once, so handlers are
//!   idempotent (design rule 3).
//! - Its janitor `XAUTOCLAIM`s entries idle longer than [`StreamConfig::claim_after`] (the
//!   slowest allowed handler) from consumers that died; a handler that is still running renews
//!   its claim every [`StreamConfig::renew_every`] so nobody takes its work away.
//! - An entry delivered [`StreamConfig::max_deliveries`] times without success, one whose
//!   handler failed fatally and one that is not a readable envelope go to the stream's
//!   dead-letter stream (`<stream>` + [`DEAD_LETTER_SUFFIX`]) with the failure, and are
//!   acknowledged on the source in the same transaction: the stream keeps flowing and nothing
//!   is dropped silently. [`StreamClient::dead_letters`] reads them back.
//! - Redis being down is a [`StreamError::Unavailable`] or [`StreamError::Timeout`], both
//!   *retryable*: a send fails fast (bounded connect and response timeouts), and a consumer's
//!   [`StreamConsumer::run`] returns the error, so its supervisor restarts it under its child
//!   spec ([`StreamConsumer::child_spec`]) — design rule 1: a retry is a restart, not a loop.
//!
//! Stream names come from `artel_messages::streams`; this module knows no domain word.
//!
//! [`DEAD_LETTER_SUFFIX`]: artel_messages::streams::DEAD_LETTER_SUFFIX

pub mod consumer;
pub mod dead_letter;
pub mod error;
pub mod id;
pub mod producer;
mod supervised;

pub use consumer::{Inbound, StreamConsumer, StreamHandler};
pub use dead_letter::DeadLetter;
pub use error::StreamError;
pub use id::EntryId;
pub use producer::StreamProducer;

use artel_messages::Payload;
use artel_messages::streams::DEAD_LETTER_SUFFIX;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// The field of a stream entry that holds the envelope's JSON bytes.
pub const ENVELOPE_FIELD: &str = "envelope";

/// Where a new consumer group starts reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GroupStart {
    /// From the first entry still in the stream: what was sent before the role first started
    /// is delivered too (a mailbox).
    #[default]
    Beginning,
    /// From entries added after the group was created (a broadcast a late joiner need not
    /// replay).
    NewEntries,
}

/// Timeouts, claim and dead-letter policy of a stream mailbox.
#[derive(Debug, Clone)]
pub struct StreamConfig {
    /// How long opening a connection may take before the operation fails as unavailable.
    pub connect_timeout: Duration,
    /// How long Redis may take to answer one command.
    pub response_timeout: Duration,
    /// How long one `XREADGROUP` waits for new entries before the consumer looks at its
    /// janitor again.
    pub block: Duration,
    /// How many entries one read or claim takes at most.
    pub batch: usize,
    /// An entry idle (unacknowledged, unrenewed) this long is taken over by another consumer:
    /// the slowest a handler may be.
    pub claim_after: Duration,
    /// How often a running handler renews the claim on the entries it holds; below
    /// `claim_after`.
    pub renew_every: Duration,
    /// How often a consumer looks for entries idle past `claim_after`.
    pub janitor_every: Duration,
    /// Deliveries after which an entry that still fails goes to the dead-letter stream.
    pub max_deliveries: u32,
    /// Soft cap on the stream's length. When it is exceeded, the producer trims every entry
    /// that all consumer groups have acknowledged — never one still pending or not yet
    /// delivered, so a lagging consumer makes the stream grow past the cap. `None` never trims.
    pub max_len: Option<usize>,
    /// A producer checks the cap once every this many sends (trimming costs a few commands).
    pub trim_every: u64,
    /// Where a consumer group created by [`StreamConsumer::run`] starts.
    pub group_start: GroupStart,
}

impl Default for StreamConfig {
    /// 1 s to connect, 2 s to answer, 1 s blocking reads in batches of 16, claims after 60 s
    /// renewed every 20 s and swept every 15 s, 5 deliveries, a soft cap of 10 000 entries
    /// checked every 100 sends, groups reading from the beginning.
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(1),
            response_timeout: Duration::from_secs(2),
            block: Duration::from_secs(1),
            batch: 16,
            claim_after: Duration::from_secs(60),
            renew_every: Duration::from_secs(20),
            janitor_every: Duration::from_secs(15),
            max_deliveries: 5,
            max_len: Some(10_000),
            trim_every: 100,
            group_start: GroupStart::Beginning,
        }
    }
}

impl StreamConfig {
    /// Sets `claim_after` and derives `renew_every` (a third of it) and `janitor_every` (a
    /// quarter of it) from it.
    pub fn with_claim_after(mut self, claim_after: Duration) -> Self {
        self.claim_after = claim_after;
        self.renew_every = claim_after / 3;
        self.janitor_every = claim_after / 4;
        self
    }

    fn validate(&self) -> Result<(), StreamError> {
        let invalid = |reason: &str| Err(StreamError::InvalidConfig(reason.to_owned()));
        if self.renew_every.is_zero() || self.renew_every >= self.claim_after {
            return invalid("renew_every must be above zero and below claim_after");
        }
        if self.janitor_every.is_zero() {
            return invalid("janitor_every must be above zero");
        }
        if self.batch == 0 || self.max_deliveries == 0 || self.trim_every == 0 {
            return invalid("batch, max_deliveries and trim_every must be at least 1");
        }
        if self.connect_timeout.is_zero() || self.response_timeout.is_zero() {
            return invalid("connect_timeout and response_timeout must be above zero");
        }
        if self.block.is_zero() {
            return invalid("block must be above zero (zero would block forever)");
        }
        Ok(())
    }

    /// The longest one command may take: connecting plus answering.
    fn op_timeout(&self, response: Duration) -> Duration {
        self.connect_timeout + response
    }
}

/// A Redis server's address and the mailbox policy: makes producers and consumers. Cheap to
/// clone; opens no connection by itself, so building one never fails because Redis is down.
#[derive(Debug, Clone)]
pub struct StreamClient {
    client: Client,
    config: Arc<StreamConfig>,
}

impl StreamClient {
    /// A client for the server at `url` (`redis://host:port[/db]`). Fails (fatally) only for a
    /// malformed URL or an inconsistent configuration.
    pub fn new(url: &str, config: StreamConfig) -> Result<Self, StreamError> {
        config.validate()?;
        let client = Client::open(url).map_err(StreamError::InvalidUrl)?;
        Ok(Self {
            client,
            config: Arc::new(config),
        })
    }

    /// The mailbox policy.
    pub fn config(&self) -> &StreamConfig {
        &self.config
    }

    /// A producer appending `T` envelopes to `stream`.
    pub fn producer<T: Payload>(&self, stream: impl Into<String>) -> StreamProducer<T> {
        StreamProducer::new(self.clone(), stream.into())
    }

    /// A consumer of `stream` in consumer group `group` (the role's name) as consumer
    /// `consumer` (this process instance's id, stable across restarts of the same instance).
    pub fn consumer<T: Payload + Send + 'static>(
        &self,
        stream: impl Into<String>,
        group: impl Into<String>,
        consumer: impl Into<String>,
    ) -> StreamConsumer<T> {
        StreamConsumer::new(self.clone(), stream.into(), group.into(), consumer.into())
    }

    /// The dead-letter stream of `stream`.
    pub fn dead_letter_stream(stream: &str) -> String {
        format!("{stream}{DEAD_LETTER_SUFFIX}")
    }

    /// Up to `count` dead letters of `stream`, oldest first.
    pub async fn dead_letters(
        &self,
        stream: &str,
        count: usize,
    ) -> Result<Vec<DeadLetter>, StreamError> {
        dead_letter::read(self, stream, count).await
    }

    /// How many entries of `stream` are delivered to `group` but not yet acknowledged (the
    /// group's in-flight work; 0 for a missing group).
    pub async fn pending(&self, stream: &str, group: &str) -> Result<usize, StreamError> {
        let mut conn = self.connect(self.config.response_timeout).await?;
        let reply = self
            .timed(
                redis::cmd("XPENDING")
                    .arg(stream)
                    .arg(group)
                    .query_async::<redis::streams::StreamPendingReply>(&mut conn),
            )
            .await;
        match reply {
            Ok(reply) => Ok(reply.count()),
            Err(StreamError::GroupMissing(_)) => Ok(0),
            Err(err) => Err(err),
        }
    }

    /// A fresh connection whose commands time out after `response`.
    async fn connect(&self, response: Duration) -> Result<MultiplexedConnection, StreamError> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.config.connect_timeout))
            .set_response_timeout(Some(response));
        let connecting = self
            .client
            .get_multiplexed_async_connection_with_config(&config);
        match tokio::time::timeout(self.config.op_timeout(response), connecting).await {
            Ok(result) => result.map_err(StreamError::from_redis),
            Err(_) => Err(StreamError::Timeout(self.config.connect_timeout)),
        }
    }

    /// Runs one Redis operation under the client's overall deadline, so nothing ever hangs
    /// even if a timeout inside the driver does not fire.
    async fn timed<V>(
        &self,
        operation: impl Future<Output = redis::RedisResult<V>>,
    ) -> Result<V, StreamError> {
        self.timed_for(self.config.response_timeout, operation)
            .await
    }

    async fn timed_for<V>(
        &self,
        response: Duration,
        operation: impl Future<Output = redis::RedisResult<V>>,
    ) -> Result<V, StreamError> {
        let limit = self.config.op_timeout(response);
        match tokio::time::timeout(limit, operation).await {
            Ok(result) => result.map_err(StreamError::from_redis),
            Err(_) => Err(StreamError::Timeout(limit)),
        }
    }
}
