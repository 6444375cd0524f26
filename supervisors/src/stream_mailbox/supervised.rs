//! A stream consumer as a supervised child, so that Redis going away is a restart under the
//! child spec's backoff and intensity — design rule 1 — and not a reconnect loop in the
//! consumer.
//!
//! The child's actor starts one [`StreamConsumer::run`] as a task when it starts; when the run
//! ends with an error the actor fails with that error's [`Failure`] (retryable while Redis is
//! away, fatal for a refused command or a bad configuration), and its supervisor decides.

use super::consumer::{StreamConsumer, StreamHandler};
use crate::actor::{Actor, Context, Handler};
use crate::exit::panic_message;
use crate::spec::ChildSpec;
use artel_messages::{Classify, Failure, Payload, Request};
use futures_util::FutureExt;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use tokio::task::AbortHandle;

/// The actor that owns one run of a consumer.
struct ConsumerActor<T, H> {
    consumer: StreamConsumer<T>,
    handler: Arc<H>,
    run: Option<AbortHandle>,
}

impl<T, H> Drop for ConsumerActor<T, H> {
    fn drop(&mut self) {
        if let Some(run) = self.run.take() {
            run.abort();
        }
    }
}

/// The run ended with this failure.
struct RunEnded(Failure);

impl Request for RunEnded {
    type Reply = ();
}

impl<T, H> Actor for ConsumerActor<T, H>
where
    T: Payload + Send + 'static,
    H: StreamHandler<T>,
{
    async fn started(&mut self, ctx: &mut Context<Self>) -> Result<(), Failure> {
        let consumer = self.consumer.clone();
        let handler = self.handler.clone();
        let addr = ctx.addr();
        let task = tokio::spawn(async move {
            let failure = match AssertUnwindSafe(consumer.run(handler.as_ref()))
                .catch_unwind()
                .await
            {
                Ok(Err(err)) => err.to_failure(),
                Err(payload) => Failure::retryable(format!(
                    "stream consumer panicked: {}",
                    panic_message(payload.as_ref())
                )),
            };
            let _ = addr.send(RunEnded(failure)).await;
        });
        self.run = Some(task.abort_handle());
        Ok(())
    }
}

impl<T, H> Handler<RunEnded> for ConsumerActor<T, H>
where
    T: Payload + Send + 'static,
    H: StreamHandler<T>,
{
    async fn handle(&mut self, msg: RunEnded, ctx: &mut Context<Self>) {
        tracing::warn!(
            stream = %self.consumer.stream(),
            group = %self.consumer.group(),
            consumer = %self.consumer.consumer(),
            failure = %msg.0,
            "stream consumer stopped"
        );
        ctx.fail(msg.0);
    }
}

impl<T: Payload + Send + 'static> StreamConsumer<T> {
    /// A child spec named `name` that runs this consumer with `handler` under a supervisor:
    /// each (re)start is a fresh [`run`](Self::run); a run that ends fails the child with the
    /// run's classified error, so reconnecting after Redis comes back is the child's restart
    /// policy (tune it with [`ChildSpec::backoff`] and the supervisor's intensity). Its role
    /// in the tree is the consumer group.
    pub fn child_spec<H: StreamHandler<T>>(
        &self,
        name: impl Into<String>,
        handler: H,
    ) -> ChildSpec {
        let consumer = self.clone();
        let handler = Arc::new(handler);
        let (_addr, spec) = ChildSpec::actor(name, move || ConsumerActor {
            consumer: consumer.clone(),
            handler: handler.clone(),
            run: None,
        });
        spec.role(self.group())
    }
}
