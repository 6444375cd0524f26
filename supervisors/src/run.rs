//! One run of an actor: build it, start it, handle messages until told to stop, fail or
//! finish, and report why. Every panic and every overrun deadline inside a run becomes an
//! [`ExitReason`]; nothing escapes to the runtime.

use crate::actor::{Actor, Context};
use crate::exit::{ExitReason, panic_message};
use crate::mailbox::{Addr, Delivered, Inbox, Outcome};
use crate::registry::{NodeId, NodeStatus, Registry};
use futures_util::FutureExt;
use futures_util::task::AtomicWaker;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// A one-shot "please stop" from a supervisor to one run of a child. Lock-free: the run
/// loop polls it every time its mailbox runs dry, so it must cost a few atomics, not a lock.
/// It has one waiter (the run loop).
#[derive(Default)]
pub(crate) struct StopSignal {
    requested: AtomicBool,
    waker: AtomicWaker,
}

impl StopSignal {
    pub(crate) fn request(&self) {
        self.requested.store(true, Ordering::Release);
        self.waker.wake();
    }

    pub(crate) fn is_requested(&self) -> bool {
        self.requested.load(Ordering::Acquire)
    }

    pub(crate) fn wait(&self) -> impl std::future::Future<Output = ()> + '_ {
        std::future::poll_fn(move |cx| {
            if self.is_requested() {
                return Poll::Ready(());
            }
            self.waker.register(cx.waker());
            // A request between the check and the registration would have found no waker.
            if self.is_requested() {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
    }
}

/// What a supervisor hands to one run of a child.
pub(crate) struct Run {
    pub node: NodeId,
    pub name: Arc<str>,
    pub registry: Registry,
    pub stop: Arc<StopSignal>,
    pub deadline: Option<Duration>,
    /// Fired once the child is up (after `started`, or after a supervisor's children started).
    pub started: Option<oneshot::Sender<()>>,
}

pub(crate) async fn run_actor<A: Actor>(
    factory: Arc<dyn Fn() -> A + Send + Sync>,
    inbox: Arc<Inbox<A>>,
    addr: Addr<A>,
    mut run: Run,
) -> ExitReason {
    let mut rx = inbox.take().await;
    let mut actor = match std::panic::catch_unwind(AssertUnwindSafe(|| factory())) {
        Ok(actor) => actor,
        Err(payload) => {
            return ExitReason::Panicked {
                message: panic_message(payload.as_ref()),
            };
        }
    };
    let mut ctx = Context::new(addr, run.node, run.name.clone(), run.deadline);

    let starting = AssertUnwindSafe(actor.started(&mut ctx)).catch_unwind();
    let started = match run.deadline {
        Some(limit) => match tokio::time::timeout(limit, starting).await {
            Ok(result) => result,
            Err(_) => {
                return ExitReason::Stuck {
                    message_type: "started",
                    deadline: limit,
                };
            }
        },
        None => starting.await,
    };
    match started {
        Ok(Ok(())) => {}
        Ok(Err(failure)) => return ExitReason::Failed(failure),
        Err(payload) => {
            return ExitReason::Panicked {
                message: panic_message(payload.as_ref()),
            };
        }
    }
    run.registry.set_status(run.node, NodeStatus::Running);
    if let Some(started) = run.started.take() {
        let _ = started.send(());
    }

    let stop = run.stop.clone();
    let stopping = stop.wait();
    tokio::pin!(stopping);
    let reason = loop {
        if stop.is_requested() {
            break ExitReason::Shutdown;
        }
        // Mailbox first, without a future while messages are waiting; the stop future is only
        // polled when there is nothing to do, and the flag above catches a stop while messages
        // keep coming.
        let envelope = match rx.try_recv() {
            Ok(envelope) => Some(envelope),
            Err(mpsc::error::TryRecvError::Disconnected) => None,
            Err(mpsc::error::TryRecvError::Empty) => tokio::select! {
                biased;
                envelope = rx.recv() => envelope,
                () = &mut stopping => break ExitReason::Shutdown,
            },
        };
        let Some(envelope) = envelope else {
            break ExitReason::Normal;
        };
        let outcome = match envelope.deliver(&mut actor, &mut ctx) {
            Delivered::Done(outcome) => outcome,
            Delivered::Running(handling) => handling.await,
        };
        match outcome {
            Outcome::Handled => {}
            Outcome::Panicked(message) => break ExitReason::Panicked { message },
            Outcome::Stuck {
                message_type,
                deadline,
            } => {
                break ExitReason::Stuck {
                    message_type,
                    deadline,
                };
            }
        }
        if let Some(exit) = ctx.exit.take() {
            break exit;
        }
    };
    if let Err(payload) = AssertUnwindSafe(actor.stopped(&mut ctx, &reason))
        .catch_unwind()
        .await
    {
        tracing::warn!(actor = %run.name, panic = %panic_message(payload.as_ref()), "stopped hook panicked");
    }
    reason
}
