//! The receiving half: read a stream in a consumer group, hand each envelope to a local
//! handler, acknowledge only after the handler's effect is committed, take over the work of
//! consumers that died, and move what cannot be handled to the dead-letter stream.
//!
//! One [`StreamConsumer::run`] is one incarnation: it opens its own connections, makes sure
//! its group exists, and loops until Redis fails it. It has no retry loop of its own — when
//! Redis goes away `run` returns a retryable [`StreamError`] and whoever supervises it (see
//! [`StreamConsumer::child_spec`]) restarts it under its child spec. Whatever it had read but
//! not acknowledged stays pending in Redis and is claimed again after `claim_after`.
//!
//! Handling is sequential within one consumer; run more instances (consumers) in the group to
//! handle in parallel.

use super::{ENVELOPE_FIELD, GroupStart, StreamClient, StreamError, dead_letter};
use crate::actor::Handler;
use crate::exit::panic_message;
use crate::mailbox::Addr;
use artel_messages::{Classify, Envelope, ErrorClass, Failure, Payload, Request};
use futures_util::FutureExt;
use redis::Value;
use redis::aio::MultiplexedConnection;
use redis::streams::{StreamAutoClaimReply, StreamId, StreamPendingCountReply, StreamReadReply};
use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::marker::PhantomData;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tracing::Instrument;

/// What a consumer hands each envelope to. `Ok` means the effect is committed and the entry
/// may be acknowledged; a retryable `Err` leaves it pending for redelivery after
/// `claim_after`; a fatal `Err` (or the last allowed delivery failing) dead-letters it.
///
/// Implemented for `async` closures `Fn(Envelope<T>) -> impl Future<Output = Result<(),
/// Failure>>` and for a supervised actor's [`Addr`] handling [`Inbound<T>`].
pub trait StreamHandler<T>: Send + Sync + 'static {
    /// Handles one envelope. A panic is caught and counts as a retryable failure.
    fn handle(&self, envelope: Envelope<T>) -> impl Future<Output = Result<(), Failure>> + Send;
}

impl<T, F, Fut> StreamHandler<T> for F
where
    F: Fn(Envelope<T>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), Failure>> + Send,
{
    fn handle(&self, envelope: Envelope<T>) -> impl Future<Output = Result<(), Failure>> + Send {
        self(envelope)
    }
}

/// An envelope delivered from a stream to a supervised actor: implement
/// `Handler<Inbound<T>>` and pass the actor's [`Addr`] as the [`StreamHandler`]. The entry is
/// acknowledged when the handler returns `Ok`; a panicked or stuck handler leaves it pending.
#[derive(Debug)]
pub struct Inbound<T>(pub Envelope<T>);

impl<T: Send + 'static> Request for Inbound<T> {
    type Reply = Result<(), Failure>;
}

impl<A, T> StreamHandler<T> for Addr<A>
where
    A: Handler<Inbound<T>>,
    T: Send + 'static,
{
    async fn handle(&self, envelope: Envelope<T>) -> Result<(), Failure> {
        match self.call(Inbound(envelope)).await {
            Ok(reply) => reply,
            Err(err) => Err(err.to_failure()),
        }
    }
}

/// Renews this consumer's claim on each listed entry it still owns (`XCLAIM … JUSTID` resets
/// the idle time without counting a delivery); an entry another consumer took over is left
/// alone. Returns how many were renewed.
const RENEW_SCRIPT: &str = r"
local renewed = 0
for i = 3, #ARGV do
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)
  if #p == 1 and p[1][2] == ARGV[2] then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'JUSTID')
    renewed = renewed + 1
  end
end
return renewed
";

/// One entry as read or claimed, with how often Redis has delivered it.
pub(crate) struct Delivery {
    pub(crate) id: String,
    pub(crate) fields: HashMap<String, Value>,
    pub(crate) deliveries: u64,
}

pub(crate) struct Names {
    pub(crate) stream: String,
    pub(crate) group: String,
    pub(crate) consumer: String,
}

/// Reads one stream as one consumer of one consumer group. Cheap to clone.
pub struct StreamConsumer<T> {
    client: StreamClient,
    names: Arc<Names>,
    payload: PhantomData<fn() -> T>,
}

impl<T> Clone for StreamConsumer<T> {
    fn clone(&self) -> Self {
        Self {
            client: self.client.clone(),
            names: self.names.clone(),
            payload: PhantomData,
        }
    }
}

impl<T> std::fmt::Debug for StreamConsumer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamConsumer")
            .field("stream", &self.names.stream)
            .field("group", &self.names.group)
            .field("consumer", &self.names.consumer)
            .finish_non_exhaustive()
    }
}

impl<T: Payload + Send + 'static> StreamConsumer<T> {
    pub(crate) fn new(
        client: StreamClient,
        stream: String,
        group: String,
        consumer: String,
    ) -> Self {
        Self {
            client,
            names: Arc::new(Names {
                stream,
                group,
                consumer,
            }),
            payload: PhantomData,
        }
    }

    /// The stream read.
    pub fn stream(&self) -> &str {
        &self.names.stream
    }

    /// The consumer group (the role).
    pub fn group(&self) -> &str {
        &self.names.group
    }

    /// This consumer's name (the process instance).
    pub fn consumer(&self) -> &str {
        &self.names.consumer
    }

    /// Creates the consumer group (and the stream) if missing, starting where
    /// [`StreamConfig::group_start`](super::StreamConfig) says. [`run`](Self::run) calls it.
    pub async fn ensure_group(&self) -> Result<(), StreamError> {
        let mut conn = self
            .client
            .connect(self.client.config().response_timeout)
            .await?;
        self.create_group(&mut conn).await
    }

    async fn create_group(&self, conn: &mut MultiplexedConnection) -> Result<(), StreamError> {
        let start = match self.client.config().group_start {
            GroupStart::Beginning => "0",
            GroupStart::NewEntries => "$",
        };
        let created = self
            .client
            .timed(
                redis::cmd("XGROUP")
                    .arg("CREATE")
                    .arg(&self.names.stream)
                    .arg(&self.names.group)
                    .arg(start)
                    .arg("MKSTREAM")
                    .query_async::<()>(conn),
            )
            .await;
        match created {
            Err(StreamError::Rejected(err)) if err.code() == Some("BUSYGROUP") => Ok(()),
            other => other,
        }
    }

    /// Consumes until Redis fails this incarnation, and returns that error (retryable when
    /// Redis is away or restarting). Dropping the future stops consuming; an entry being
    /// handled at that moment stays pending and is claimed again after `claim_after`.
    pub async fn run<H: StreamHandler<T>>(&self, handler: &H) -> Result<Infallible, StreamError> {
        let config = self.client.config().clone();
        let mut reader = self
            .client
            .connect(config.block + config.response_timeout)
            .await?;
        let mut commands = self.client.connect(config.response_timeout).await?;
        self.create_group(&mut commands).await?;
        tracing::debug!(
            stream = %self.names.stream,
            group = %self.names.group,
            consumer = %self.names.consumer,
            "stream consumer running"
        );
        // Entries this consumer took and did not acknowledge before its last run ended (a
        // crash, a kill): handle them now rather than waiting out `claim_after`.
        let own = self.reclaim_own(&mut commands).await?;
        if !own.is_empty() {
            tracing::info!(
                stream = %self.names.stream,
                consumer = %self.names.consumer,
                entries = own.len(),
                "resuming entries this consumer left unacknowledged"
            );
            self.deliver_all(&mut commands, own, handler).await?;
        }
        let mut cursor = String::from("0-0");
        let mut next_sweep = Instant::now();
        loop {
            let now = Instant::now();
            if now >= next_sweep {
                let (claimed, next) = self.claim_idle(&mut commands, &cursor).await?;
                // A full page may have more behind it: sweep on at once; else rest.
                next_sweep = if next == "0-0" {
                    now + config.janitor_every
                } else {
                    now
                };
                cursor = next;
                self.deliver_all(&mut commands, claimed, handler).await?;
            }
            let wait = next_sweep
                .saturating_duration_since(Instant::now())
                .min(config.block);
            let fresh = self.read_new(&mut reader, wait).await?;
            self.deliver_all(&mut commands, fresh, handler).await?;
        }
    }

    /// `XREADGROUP … >`: entries never delivered to this group, waiting up to `wait`.
    async fn read_new(
        &self,
        reader: &mut MultiplexedConnection,
        wait: Duration,
    ) -> Result<Vec<Delivery>, StreamError> {
        let config = self.client.config();
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP")
            .arg(&self.names.group)
            .arg(&self.names.consumer)
            .arg("COUNT")
            .arg(config.batch);
        let wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
        if wait_ms > 0 {
            cmd.arg("BLOCK").arg(wait_ms);
        }
        cmd.arg("STREAMS").arg(&self.names.stream).arg(">");
        let reply: Option<StreamReadReply> = self
            .client
            .timed_for(
                config.block + config.response_timeout,
                cmd.query_async(reader),
            )
            .await?;
        Ok(reply
            .into_iter()
            .flat_map(|reply| reply.keys)
            .flat_map(|key| key.ids)
            .map(|entry| Delivery {
                id: entry.id,
                fields: entry.map,
                deliveries: 1,
            })
            .collect())
    }

    /// This consumer's own pending entries (up to a few batches), re-claimed so their delivery
    /// counts go up like any redelivery's.
    async fn reclaim_own(
        &self,
        conn: &mut MultiplexedConnection,
    ) -> Result<Vec<Delivery>, StreamError> {
        let config = self.client.config();
        let pending: redis::streams::StreamPendingCountReply = self
            .client
            .timed(
                redis::cmd("XPENDING")
                    .arg(&self.names.stream)
                    .arg(&self.names.group)
                    .arg("-")
                    .arg("+")
                    .arg(config.batch * 4)
                    .arg(&self.names.consumer)
                    .query_async(conn),
            )
            .await?;
        if pending.ids.is_empty() {
            return Ok(Vec::new());
        }
        let counts: HashMap<String, u64> = pending
            .ids
            .iter()
            .map(|p| (p.id.clone(), p.times_delivered as u64))
            .collect();
        let mut cmd = redis::cmd("XCLAIM");
        cmd.arg(&self.names.stream)
            .arg(&self.names.group)
            .arg(&self.names.consumer)
            .arg(0);
        for p in &pending.ids {
            cmd.arg(&p.id);
        }
        let claimed: redis::streams::StreamClaimReply =
            self.client.timed(cmd.query_async(conn)).await?;
        Ok(claimed
            .ids
            .into_iter()
            .map(|entry| Delivery {
                deliveries: counts.get(&entry.id).copied().unwrap_or(0) + 1,
                id: entry.id,
                fields: entry.map,
            })
            .collect())
    }

    /// The janitor: `XAUTOCLAIM`s up to one batch of entries idle past `claim_after` (their
    /// consumer died or overran), with each one's delivery count. Returns them and the cursor
    /// for the next sweep (`0-0` when the scan is complete).
    async fn claim_idle(
        &self,
        conn: &mut MultiplexedConnection,
        cursor: &str,
    ) -> Result<(Vec<Delivery>, String), StreamError> {
        let config = self.client.config();
        let idle_ms = u64::try_from(config.claim_after.as_millis()).unwrap_or(u64::MAX);
        let reply: StreamAutoClaimReply = self
            .client
            .timed(
                redis::cmd("XAUTOCLAIM")
                    .arg(&self.names.stream)
                    .arg(&self.names.group)
                    .arg(&self.names.consumer)
                    .arg(idle_ms)
                    .arg(cursor)
                    .arg("COUNT")
                    .arg(config.batch)
                    .query_async(conn),
            )
            .await?;
        if !reply.deleted_ids.is_empty() {
            tracing::warn!(
                stream = %self.names.stream,
                group = %self.names.group,
                deleted = ?reply.deleted_ids,
                "pending entries were deleted from the stream before being handled"
            );
        }
        let claimed: Vec<StreamId> = reply
            .claimed
            .into_iter()
            .filter(|entry| !entry.id.is_empty())
            .collect();
        if claimed.is_empty() {
            return Ok((Vec::new(), reply.next_stream_id));
        }
        let mut pipe = redis::pipe();
        for entry in &claimed {
            pipe.cmd("XPENDING")
                .arg(&self.names.stream)
                .arg(&self.names.group)
                .arg(&entry.id)
                .arg(&entry.id)
                .arg(1);
        }
        let counts: Vec<StreamPendingCountReply> =
            self.client.timed(pipe.query_async(conn)).await?;
        let counts: HashMap<String, u64> = counts
            .into_iter()
            .flat_map(|reply| reply.ids)
            .map(|pending| (pending.id, pending.times_delivered as u64))
            .collect();
        tracing::info!(
            stream = %self.names.stream,
            group = %self.names.group,
            consumer = %self.names.consumer,
            claimed = claimed.len(),
            "claimed entries idle past claim_after"
        );
        let deliveries = claimed
            .into_iter()
            .map(|entry| Delivery {
                deliveries: counts.get(&entry.id).copied().unwrap_or(1),
                id: entry.id,
                fields: entry.map,
            })
            .collect();
        Ok((deliveries, reply.next_stream_id))
    }

    async fn deliver_all<H: StreamHandler<T>>(
        &self,
        commands: &mut MultiplexedConnection,
        batch: Vec<Delivery>,
        handler: &H,
    ) -> Result<(), StreamError> {
        let ids: Vec<String> = batch.iter().map(|entry| entry.id.clone()).collect();
        // Handled entries are acknowledged together at the end of the batch (one round trip);
        // until then they stay held, with the rest of the batch, and their claim is renewed.
        let mut handled: Vec<String> = Vec::with_capacity(ids.len());
        for (index, entry) in batch.into_iter().enumerate() {
            let held = [handled.as_slice(), &ids[index..]];
            if let Some(id) = self.deliver(commands, entry, held, handler).await? {
                handled.push(id);
            }
        }
        if handled.is_empty() {
            return Ok(());
        }
        let acked: u64 = self
            .client
            .timed(
                redis::cmd("XACK")
                    .arg(&self.names.stream)
                    .arg(&self.names.group)
                    .arg(&handled)
                    .query_async(commands),
            )
            .await?;
        if acked < handled.len() as u64 {
            tracing::debug!(
                acked,
                handled = handled.len(),
                "some entries were no longer pending when acknowledged"
            );
        }
        Ok(())
    }

    /// Handles one entry: dead-letters it when it is unreadable or over-delivered, otherwise
    /// runs the handler (renewing the claim on `held` meanwhile). Returns the entry's id when
    /// the handler succeeded and the entry is to be acknowledged.
    async fn deliver<H: StreamHandler<T>>(
        &self,
        commands: &mut MultiplexedConnection,
        entry: Delivery,
        held: [&[String]; 2],
        handler: &H,
    ) -> Result<Option<String>, StreamError> {
        let config = self.client.config();
        let max = u64::from(config.max_deliveries);
        let bytes = entry
            .fields
            .get(ENVELOPE_FIELD)
            .and_then(|value| redis::from_redis_value_ref::<Vec<u8>>(value).ok());
        let Some(bytes) = bytes else {
            let failure = Failure::fatal(format!(
                "stream entry has no `{ENVELOPE_FIELD}` field (fields: {:?})",
                entry.fields.keys().collect::<Vec<_>>()
            ));
            return self
                .dead_letter(commands, &entry, &[], failure)
                .await
                .map(|()| None);
        };
        if entry.deliveries > max {
            let failure = Failure::fatal(format!(
                "delivered {} times without being acknowledged (limit {max}): its consumer \
                 died or its handler ran past claim_after ({:?}) each time",
                entry.deliveries, config.claim_after
            ));
            return self
                .dead_letter(commands, &entry, &bytes, failure)
                .await
                .map(|()| None);
        }
        let envelope = match Envelope::<T>::decode(&bytes) {
            Ok(envelope) => envelope,
            Err(err) => {
                return self
                    .dead_letter(commands, &entry, &bytes, err.to_failure())
                    .await
                    .map(|()| None);
            }
        };
        let span = tracing::info_span!(
            "stream_message",
            stream = %self.names.stream,
            group = %self.names.group,
            entry = %entry.id,
            delivery = entry.deliveries,
            message_id = %envelope.message_id,
            correlation_id = %envelope.correlation_id,
        );
        let outcome = self
            .handle_renewing(commands.clone(), handler, envelope, held)
            .instrument(span)
            .await;
        match outcome {
            Ok(()) => Ok(Some(entry.id)),
            Err(failure) if failure.class == ErrorClass::Fatal || entry.deliveries >= max => self
                .dead_letter(commands, &entry, &bytes, failure)
                .await
                .map(|()| None),
            Err(failure) => {
                tracing::warn!(
                    stream = %self.names.stream,
                    group = %self.names.group,
                    entry = %entry.id,
                    delivery = entry.deliveries,
                    max_deliveries = max,
                    %failure,
                    "handler failed; the entry stays pending and is redelivered after claim_after"
                );
                Ok(None)
            }
        }
    }

    /// Runs the handler (a panic becomes a retryable failure), renewing the claim on `held`
    /// every `renew_every` while it runs. The renewal timer is only armed when the handler
    /// does not finish at once, so a fast handler costs no timer and no task.
    async fn handle_renewing<H: StreamHandler<T>>(
        &self,
        mut conn: MultiplexedConnection,
        handler: &H,
        envelope: Envelope<T>,
        held: [&[String]; 2],
    ) -> Result<(), Failure> {
        let handling = AssertUnwindSafe(handler.handle(envelope)).catch_unwind();
        tokio::pin!(handling);
        let period = self.client.config().renew_every;
        let mut ticks = tokio::time::interval_at(Instant::now() + period, period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let outcome = loop {
            tokio::select! {
                biased;
                outcome = &mut handling => break outcome,
                _ = ticks.tick() => renew(&self.client, &mut conn, &self.names, held).await,
            }
        };
        outcome.unwrap_or_else(|payload| {
            Err(Failure::retryable(format!(
                "stream handler panicked: {}",
                panic_message(payload.as_ref())
            )))
        })
    }

    async fn dead_letter(
        &self,
        conn: &mut MultiplexedConnection,
        entry: &Delivery,
        bytes: &[u8],
        failure: Failure,
    ) -> Result<(), StreamError> {
        tracing::error!(
            stream = %self.names.stream,
            group = %self.names.group,
            entry = %entry.id,
            deliveries = entry.deliveries,
            %failure,
            "entry moved to the dead-letter stream"
        );
        dead_letter::write(&self.client, conn, &self.names, entry, bytes, &failure).await
    }
}

/// Renews the claim on `held` once. A failed renewal is only logged: if Redis is away the
/// acknowledgement will fail too and the run ends.
async fn renew(
    client: &StreamClient,
    conn: &mut MultiplexedConnection,
    names: &Names,
    held: [&[String]; 2],
) {
    let count = held[0].len() + held[1].len();
    let mut cmd = redis::cmd("EVAL");
    cmd.arg(RENEW_SCRIPT)
        .arg(1)
        .arg(&names.stream)
        .arg(&names.group)
        .arg(&names.consumer)
        .arg(held[0])
        .arg(held[1]);
    match client.timed(cmd.query_async::<u64>(conn)).await {
        Ok(renewed) if renewed < count as u64 => tracing::debug!(
            stream = %names.stream,
            renewed,
            held = count,
            "some held entries are no longer ours (acknowledged, or claimed after claim_after)"
        ),
        Ok(_) => {}
        Err(err) => tracing::warn!(
            stream = %names.stream,
            error = %err,
            "could not renew the claim on held entries"
        ),
    }
}
