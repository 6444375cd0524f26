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
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::Poll;
use std::time::Duration;
use tokio::sync::oneshot;

/// A one-shot "please stop" from a supervisor to one run of a child. Lock-free: the run
/// loop checks it after every message, so it must cost an atomic load, not a lock. It has one
/// waiter: a supervisor's loop awaits [`wait`](Self::wait); an actor's loop parks on its
/// mailbox instead, and registers the mailbox's wake-up with [`also_wake`](Self::also_wake) so
/// that waiting for a message and for a stop is one registration, not two.
#[derive(Default)]
pub(crate) struct StopSignal {
    requested: AtomicBool,
    waker: AtomicWaker,
    hook: OnceLock<Box<dyn Fn() + Send + Sync>>,
}

impl StopSignal {
    pub(crate) fn request(&self) {
        self.requested.store(true, Ordering::SeqCst);
        self.waker.wake();
        if let Some(hook) = self.hook.get() {
            hook();
        }
    }

    pub(crate) fn is_requested(&self) -> bool {
        self.requested.load(Ordering::SeqCst)
    }

    /// Also runs `wake` on a request (once per run; a second hook is ignored). A request
    /// made before this call is seen by [`is_requested`](Self::is_requested).
    pub(crate) fn also_wake(&self, wake: impl Fn() + Send + Sync + 'static) {
        let _ = self.hook.set(Box::new(wake));
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

/// Messages an actor handles in a row before it steps aside for its neighbours on the same
/// worker thread: tokio's own budget per task poll, which its channels spend one unit per
/// message of (taking from a batch costs no tokio budget, so the run loop keeps its own count).
const FAIR_SHARE: u32 = 128;

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
    {
        let inbox = inbox.clone();
        stop.also_wake(move || inbox.wake_receiver());
    }
    // Messages taken since this run last waited or stepped aside.
    let mut in_a_row = 0;
    let reason = loop {
        if stop.is_requested() {
            break ExitReason::Shutdown;
        }
        // One poll takes a waiting message (no lock while the batch lasts) or, on an empty
        // mailbox, parks on it; a stop request wakes the same registration, and the flag is
        // looked at after registering, so a request in between is not missed.
        let next = std::future::poll_fn(|cx| {
            if in_a_row >= FAIR_SHARE {
                // A flooded actor steps aside, as tokio's budget makes its own channels do:
                // to the back of the run queue, before taking the next message (so a yield
                // never holds one).
                in_a_row = 0;
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            match rx.poll_recv(cx) {
                Poll::Ready(envelope) => {
                    in_a_row += 1;
                    Poll::Ready(Some(envelope))
                }
                Poll::Pending => {
                    in_a_row = 0;
                    if stop.is_requested() {
                        Poll::Ready(None)
                    } else {
                        Poll::Pending
                    }
                }
            }
        })
        .await;
        let envelope = match next {
            Some(Some(envelope)) => envelope,
            Some(None) => break ExitReason::Normal,
            None => break ExitReason::Shutdown,
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
