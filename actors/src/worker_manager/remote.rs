//! The WorkerManager across a process boundary.
//!
//! `artel worker-manager` serves [`WorkerCommand`]s from the `artel.worker-manager.commands`
//! stream ([`serve_commands`]) and answers each with a [`WorkerReply`] on
//! `artel.worker-manager.replies`, caused by the command's envelope. `artel up` with Redis
//! talks to it through a [`RemoteWorkerManager`], which sends a command and waits for the reply
//! whose causation id is that command's message id.
//!
//! Delivery is at least once: a command is acknowledged only after its reply is written, so a
//! worker-manager that dies mid-command has it redelivered (to itself after a restart, or to
//! another instance in the group). Commands are handled one at a time per instance; run more
//! instances in the `worker-manager` group to handle more at once.

use super::{Sandbox, Workers};
use crate::store::Store;
use artel_messages::streams::{WORKER_COMMANDS, WORKER_REPLIES};
use artel_messages::worker_manager::{WorkerCommand, WorkerReply};
use artel_messages::{Classify, Envelope, Failure, MessageId};
use artel_supervisors::{ChildSpec, StreamClient, StreamConsumer, StreamProducer};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

/// The consumer group of worker-manager instances.
pub const COMMANDS_GROUP: &str = "worker-manager";

/// The supervised consumer that answers commands from the stream through `workers`, the
/// worker-manager actor's mailbox (the same road every local caller takes).
/// `instance` names this process within the group (stable across restarts, e.g. the host).
///
/// A command redelivered after its acknowledgement was lost is answered from `store` with the
/// reply recorded the first time, not done again.
pub fn serve_commands<R: Sandbox>(
    client: &StreamClient,
    workers: Workers<R>,
    store: Store,
    instance: &str,
) -> ChildSpec {
    let replies = Arc::new(client.producer::<WorkerReply>(WORKER_REPLIES));
    client
        .consumer::<WorkerCommand>(WORKER_COMMANDS, COMMANDS_GROUP, instance)
        .child_spec("commands", move |command: Envelope<WorkerCommand>| {
            let (workers, replies, store) = (workers.clone(), replies.clone(), store.clone());
            async move {
                let recorded = store
                    .handled_reply(command.message_id)
                    .await
                    .map_err(|e| e.to_failure())?;
                let reply = match recorded.map(serde_json::from_value::<WorkerReply>) {
                    Some(Ok(reply)) => {
                        tracing::info!(message_id = %command.message_id, "command handled before; answering its recorded reply");
                        reply
                    }
                    Some(Err(err)) => {
                        return Err(Failure::fatal(format!(
                            "the recorded reply to {} does not decode: {err}",
                            command.message_id
                        )));
                    }
                    None => {
                        let reply = workers.handle(command.payload.clone()).await;
                        let json = serde_json::to_value(&reply)
                            .map_err(|e| Failure::fatal(format!("cannot record a reply: {e}")))?;
                        store
                            .record_handled(command.message_id, WORKER_COMMANDS, &json)
                            .await
                            .map_err(|e| e.to_failure())?;
                        reply
                    }
                };
                replies
                    .send(&Envelope::caused_by(&command, reply))
                    .await
                    .map(drop)
                    .map_err(|e| e.to_failure())
            }
        })
}

type Waiting = Arc<Mutex<HashMap<MessageId, oneshot::Sender<WorkerReply>>>>;

/// Sends worker commands to another process and waits for their replies.
#[derive(Clone)]
pub struct RemoteWorkerManager {
    commands: Arc<StreamProducer<WorkerCommand>>,
    replies: StreamConsumer<WorkerReply>,
    waiting: Waiting,
}

impl RemoteWorkerManager {
    /// A client, and the child spec of the consumer that routes replies to it (put it in the
    /// tree before anything calls). `instance` must be stable across restarts of this process:
    /// it names the reply group `workflows.<instance>`, which reads only new replies.
    pub fn new(
        commands: &StreamClient,
        replies: &StreamClient,
        instance: &str,
    ) -> (Self, ChildSpec) {
        let waiting: Waiting = Arc::default();
        let routes = waiting.clone();
        let consumer = replies.consumer::<WorkerReply>(
            WORKER_REPLIES,
            format!("workflows.{instance}"),
            instance,
        );
        let spec = consumer.child_spec("replies", move |reply: Envelope<WorkerReply>| {
            let routes = routes.clone();
            async move {
                let waiter = reply
                    .causation_id
                    .and_then(|cause| routes.lock().remove(&cause));
                if let Some(waiter) = waiter {
                    // The caller may have given up waiting; the reply is still consumed.
                    let _ = waiter.send(reply.payload);
                }
                Ok::<(), Failure>(())
            }
        });
        let client = Self {
            commands: Arc::new(commands.producer::<WorkerCommand>(WORKER_COMMANDS)),
            replies: consumer,
            waiting,
        };
        (client, spec)
    }

    /// Creates the reply group now, so no reply to a command sent from here on can be missed
    /// (the group reads only entries newer than its creation).
    pub async fn prepare(&self) -> Result<(), Failure> {
        self.replies
            .ensure_group()
            .await
            .map_err(|e| e.to_failure())
    }

    /// Sends `command` and waits up to `wait` for its reply.
    pub async fn call(
        &self,
        command: WorkerCommand,
        wait: Duration,
    ) -> Result<WorkerReply, Failure> {
        let envelope = Envelope::new(command);
        let (tx, rx) = oneshot::channel();
        self.waiting.lock().insert(envelope.message_id, tx);
        if let Err(err) = self.commands.send(&envelope).await {
            self.waiting.lock().remove(&envelope.message_id);
            return Err(err.to_failure());
        }
        match tokio::time::timeout(wait, rx).await {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(_)) => Err(Failure::retryable(
                "the reply router stopped before the worker-manager answered",
            )),
            Err(_) => {
                self.waiting.lock().remove(&envelope.message_id);
                Err(Failure::retryable(format!(
                    "no reply from the worker-manager within {wait:?}: is `artel worker-manager` \
                     running against the same Redis? The command stays queued for it"
                )))
            }
        }
    }
}
