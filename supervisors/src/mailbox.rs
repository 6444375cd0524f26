//! Typed, bounded mailboxes with explicit backpressure.
//!
//! An [`Addr`] is the sending half; it stays valid across restarts because the receiving half
//! is owned by the child spec, not by one incarnation of the actor: messages sent while the
//! actor is restarting wait in the mailbox instead of being lost. `send` waits for room,
//! `try_send` fails with [`TrySendError::Full`], and a failed send hands the message back.

use crate::actor::{Actor, Context, Handler};
use crate::error::{CallError, SendError, TrySendError};
use crate::exit::panic_message;
use artel_messages::Request;
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;
use tokio::sync::{Mutex, mpsc, oneshot};
use tracing::{Instrument, Span};

/// How handling one message ended, as the run loop needs to know.
pub(crate) enum Outcome {
    /// Handled; the reply (if any) was sent.
    Handled,
    /// The handler panicked; the caller was told.
    Panicked(String),
    /// The handler ran past its deadline; the caller was told.
    Stuck {
        message_type: &'static str,
        deadline: std::time::Duration,
    },
}

/// What delivering a message came to: handled at once ([`Handler::handle_now`]), or a
/// handler future to drive.
pub(crate) enum Delivered<'a> {
    Done(Outcome),
    Running(BoxFuture<'a, Outcome>),
}

/// A message on its way to an actor of type `A`, type-erased so one mailbox carries every
/// message type the actor handles.
pub(crate) trait Envelope<A: Actor>: Send {
    fn deliver<'a>(self: Box<Self>, actor: &'a mut A, ctx: &'a mut Context<A>) -> Delivered<'a>;
}

struct Delivery<M: Request> {
    msg: M,
    reply: Option<oneshot::Sender<Result<M::Reply, CallError>>>,
    /// The sender's span: the handler runs inside a child of it, so one request can be
    /// followed across actors.
    span: Span,
}

impl<A, M> Envelope<A> for Delivery<M>
where
    A: Handler<M>,
    M: Request,
{
    fn deliver<'a>(self: Box<Self>, actor: &'a mut A, ctx: &'a mut Context<A>) -> Delivered<'a> {
        let Delivery { msg, reply, span } = *self;
        let message_type = std::any::type_name::<M>();
        let handling = if tracing_is_off() {
            Span::none()
        } else {
            tracing::debug_span!(parent: &span, "handle", actor = %ctx.name(), message = message_type)
        };
        // Immediate handlers first: no future, no allocation.
        let now = {
            let _entered = handling.enter();
            std::panic::catch_unwind(AssertUnwindSafe(|| actor.handle_now(msg, ctx)))
        };
        let msg = match now {
            Ok(Ok(answer)) => {
                if let Some(reply) = reply {
                    let _ = reply.send(Ok(answer));
                }
                return Delivered::Done(Outcome::Handled);
            }
            Ok(Err(msg)) => msg,
            Err(payload) => {
                let message = panic_message(payload.as_ref());
                if let Some(reply) = reply {
                    let _ = reply.send(Err(CallError::Panicked(message.clone())));
                }
                return Delivered::Done(Outcome::Panicked(message));
            }
        };
        Delivered::Running(Box::pin(async move {
            let deadline = actor.deadline(&msg).or(ctx.default_deadline);
            let handled = AssertUnwindSafe(actor.handle(msg, ctx))
                .catch_unwind()
                .instrument(handling);
            let mut handled = std::pin::pin!(handled);
            // Fast path: most handlers finish without suspending, and then no timer is armed
            // (arming one reads the clock and touches the timer wheel on every message).
            let first = std::future::poll_fn(|cx| Poll::Ready(handled.as_mut().poll(cx))).await;
            let result = match (first, deadline) {
                (Poll::Ready(result), _) => result,
                (Poll::Pending, None) => handled.await,
                (Poll::Pending, Some(limit)) => match tokio::time::timeout(limit, handled).await {
                    Ok(result) => result,
                    Err(_) => {
                        if let Some(reply) = reply {
                            let _ = reply.send(Err(CallError::Stuck(limit)));
                        }
                        return Outcome::Stuck {
                            message_type,
                            deadline: limit,
                        };
                    }
                },
            };
            match result {
                Ok(answer) => {
                    if let Some(reply) = reply {
                        // The caller may have given up waiting; that is its business.
                        let _ = reply.send(Ok(answer));
                    }
                    Outcome::Handled
                }
                Err(payload) => {
                    let message = panic_message(payload.as_ref());
                    if let Some(reply) = reply {
                        let _ = reply.send(Err(CallError::Panicked(message.clone())));
                    }
                    Outcome::Panicked(message)
                }
            }
        }))
    }
}

/// The sender's span, captured only when some subscriber could record it: with tracing off
/// this costs one load of a global.
fn sender_span() -> Span {
    if tracing_is_off() {
        Span::none()
    } else {
        Span::current()
    }
}

fn tracing_is_off() -> bool {
    tracing::level_filters::LevelFilter::current() == tracing::level_filters::LevelFilter::OFF
}

pub(crate) type Boxed<A> = Box<dyn Envelope<A>>;

/// The sending half of an actor's mailbox. Cheap to clone; valid across restarts.
pub struct Addr<A: Actor> {
    tx: mpsc::Sender<Boxed<A>>,
}

impl<A: Actor> Clone for Addr<A> {
    fn clone(&self) -> Self {
        Self {
            tx: self.tx.clone(),
        }
    }
}

impl<A: Actor> std::fmt::Debug for Addr<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Addr")
            .field("actor", &std::any::type_name::<A>())
            .field("depth", &self.depth())
            .finish()
    }
}

impl<A: Actor> Addr<A> {
    /// Sends `msg` and waits for the reply. Waits for room when the mailbox is full.
    pub async fn call<M>(&self, msg: M) -> Result<M::Reply, CallError>
    where
        A: Handler<M>,
        M: Request,
    {
        let permit = self.permit().await.map_err(|_| CallError::Closed)?;
        let (reply, answer) = oneshot::channel();
        permit.send(Box::new(Delivery {
            msg,
            reply: Some(reply),
            span: sender_span(),
        }));
        answer.await.unwrap_or(Err(CallError::Stopped))
    }

    /// Sends `msg` without waiting for a reply; waits for room when the mailbox is full.
    /// A closed mailbox hands the message back.
    pub async fn send<M>(&self, msg: M) -> Result<(), SendError<M>>
    where
        A: Handler<M>,
        M: Request,
    {
        match self.permit().await {
            Ok(permit) => {
                permit.send(Self::fire(msg));
                Ok(())
            }
            Err(_) => Err(SendError(msg)),
        }
    }

    /// Sends `msg` without waiting, for room or for a reply. A full or closed mailbox hands
    /// the message back.
    pub fn try_send<M>(&self, msg: M) -> Result<(), TrySendError<M>>
    where
        A: Handler<M>,
        M: Request,
    {
        match self.tx.try_reserve() {
            Ok(permit) => {
                permit.send(Self::fire(msg));
                Ok(())
            }
            Err(mpsc::error::TrySendError::Full(())) => Err(TrySendError::Full(msg)),
            Err(mpsc::error::TrySendError::Closed(())) => Err(TrySendError::Closed(msg)),
        }
    }

    /// A slot in the mailbox: at once when there is room (no future, no waiter node), else
    /// waiting for one. `Err` when the mailbox is closed.
    async fn permit(&self) -> Result<mpsc::Permit<'_, Boxed<A>>, ()> {
        match self.tx.try_reserve() {
            Ok(permit) => Ok(permit),
            Err(mpsc::error::TrySendError::Full(())) => self.tx.reserve().await.map_err(drop),
            Err(mpsc::error::TrySendError::Closed(())) => Err(()),
        }
    }

    fn fire<M>(msg: M) -> Boxed<A>
    where
        A: Handler<M>,
        M: Request,
    {
        Box::new(Delivery {
            msg,
            reply: None,
            span: sender_span(),
        })
    }

    /// Messages waiting in the mailbox.
    pub fn depth(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }

    /// The mailbox's bound.
    pub fn capacity(&self) -> usize {
        self.tx.max_capacity()
    }

    /// True once the actor has stopped for good.
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}

/// The receiving half, owned by the child spec so it outlives any one incarnation.
pub(crate) struct Inbox<A: Actor> {
    rx: Arc<Mutex<mpsc::Receiver<Boxed<A>>>>,
    /// Kept so the mailbox never closes merely because every caller dropped its `Addr`.
    tx: mpsc::Sender<Boxed<A>>,
    closed: AtomicBool,
}

impl<A: Actor> Inbox<A> {
    /// Takes the receiver for one run. If that run is aborted the guard is dropped and the
    /// receiver, with its queued messages, stays here for the next run.
    pub(crate) async fn take(&self) -> tokio::sync::OwnedMutexGuard<mpsc::Receiver<Boxed<A>>> {
        self.rx.clone().lock_owned().await
    }

    /// Closes the mailbox for good: new sends fail and every queued message is dropped, so
    /// its caller gets `CallError::Stopped` instead of waiting forever.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        if let Ok(mut rx) = self.rx.try_lock() {
            rx.close();
            while rx.try_recv().is_ok() {}
        }
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    pub(crate) fn depth(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }

    pub(crate) fn capacity(&self) -> usize {
        self.tx.max_capacity()
    }
}

/// A new mailbox holding at most `capacity` messages (at least 1).
pub(crate) fn mailbox<A: Actor>(capacity: usize) -> (Addr<A>, Inbox<A>) {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    (
        Addr { tx: tx.clone() },
        Inbox {
            rx: Arc::new(Mutex::new(rx)),
            tx,
            closed: AtomicBool::new(false),
        },
    )
}
