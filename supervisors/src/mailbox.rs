//! Typed, bounded mailboxes with explicit backpressure.
//!
//! An [`Addr`] is the sending half; it stays valid across restarts because the receiving half
//! is owned by the child spec, not by one incarnation of the actor: messages sent while the
//! actor is restarting wait in the mailbox instead of being lost. `send` waits for room,
//! `try_send` fails with [`TrySendError::Full`], and a failed send hands the message back.
//! Underneath is artel's own bounded queue (the private `queue` module, whose doc says why it
//! is not tokio's `mpsc`).

mod queue;

use crate::actor::{Actor, Context, Handler};
use crate::error::{CallError, SendError, TrySendError};
use crate::exit::panic_message;
use crate::later::Deferred;
use artel_messages::Request;
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use queue::{PushError, Queue, Receiver};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::task::Poll;
use tokio::sync::{Mutex, oneshot};
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
    /// followed across actors. `None` while tracing is off (nothing to carry or drop).
    span: Option<Span>,
}

impl<A, M> Envelope<A> for Delivery<M>
where
    A: Handler<M>,
    M: Request,
{
    fn deliver<'a>(self: Box<Self>, actor: &'a mut A, ctx: &'a mut Context<A>) -> Delivered<'a> {
        let Delivery { msg, reply, span } = *self;
        let message_type = std::any::type_name::<M>();
        let handling = span.map(|span| {
            tracing::debug_span!(parent: &span, "handle", actor = %ctx.name(), message = message_type)
        });
        // Immediate handlers first: no future, no allocation.
        let now = {
            let _entered = handling.as_ref().map(Span::enter);
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
                .instrument(handling.unwrap_or_else(Span::none));
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
fn sender_span() -> Option<Span> {
    (!tracing_is_off()).then(Span::current)
}

fn tracing_is_off() -> bool {
    tracing::level_filters::LevelFilter::current() == tracing::level_filters::LevelFilter::OFF
}

pub(crate) type Boxed<A> = Box<dyn Envelope<A>>;

/// The unsizing step from a typed delivery to the mailbox's item, applied only once the
/// message is certain to go in (a refused one comes back typed, so its message can be handed
/// back).
fn erase<A, M>(delivery: Box<Delivery<M>>) -> Boxed<A>
where
    A: Handler<M>,
    M: Request,
{
    delivery
}

/// The sending half of an actor's mailbox. Cheap to clone; valid across restarts.
pub struct Addr<A: Actor> {
    queue: Arc<Queue<Boxed<A>>>,
}

impl<A: Actor> Clone for Addr<A> {
    fn clone(&self) -> Self {
        Self {
            queue: self.queue.clone(),
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
        let (reply, answer) = oneshot::channel();
        let delivery = Box::new(Delivery {
            msg,
            reply: Some(reply),
            span: sender_span(),
        });
        self.queue
            .push(delivery, erase)
            .await
            .map_err(|_| CallError::Closed)?;
        answer.await.unwrap_or(Err(CallError::Stopped))
    }

    /// Sends `msg` as a [`Deferred`] request and waits for its later reply: the handler admits
    /// it and answers from work it runs beside the actor (see [`later`](crate::later)).
    pub async fn call_later<M>(&self, msg: M) -> Result<M::Reply, CallError>
    where
        A: Handler<Deferred<M>>,
        M: Request,
    {
        self.call(Deferred(msg)).await?.await
    }

    /// Sends `msg` without waiting for a reply; waits for room when the mailbox is full.
    /// A closed mailbox hands the message back.
    pub async fn send<M>(&self, msg: M) -> Result<(), SendError<M>>
    where
        A: Handler<M>,
        M: Request,
    {
        self.queue
            .push(Self::fire(msg), erase)
            .await
            .map_err(|back| SendError(back.msg))
    }

    /// Sends `msg` without waiting, for room or for a reply. A full or closed mailbox hands
    /// the message back.
    pub fn try_send<M>(&self, msg: M) -> Result<(), TrySendError<M>>
    where
        A: Handler<M>,
        M: Request,
    {
        self.queue
            .try_push(Self::fire(msg), erase)
            .map_err(|refused| match refused {
                PushError::Full(back) => TrySendError::Full(back.msg),
                PushError::Closed(back) => TrySendError::Closed(back.msg),
            })
    }

    fn fire<M: Request>(msg: M) -> Box<Delivery<M>> {
        Box::new(Delivery {
            msg,
            reply: None,
            span: sender_span(),
        })
    }

    /// Messages waiting in the mailbox.
    pub fn depth(&self) -> usize {
        self.queue.len()
    }

    /// The mailbox's bound.
    pub fn capacity(&self) -> usize {
        self.queue.capacity()
    }

    /// True once the actor has stopped for good.
    pub fn is_closed(&self) -> bool {
        self.queue.is_closed()
    }
}

/// The receiving end of one run: the queue's one consumer.
pub(crate) type Mail<A> = Receiver<Boxed<A>>;

/// The receiving half, owned by the child spec so it outlives any one incarnation.
pub(crate) struct Inbox<A: Actor> {
    queue: Arc<Queue<Boxed<A>>>,
    /// The consumer, with messages it took from the queue but has not handed out yet; one run
    /// at a time holds it.
    rx: Arc<Mutex<Mail<A>>>,
}

impl<A: Actor> Inbox<A> {
    /// Takes the receiver for one run. If that run is aborted the guard is dropped and the
    /// receiver, with its queued messages, stays here for the next run.
    pub(crate) async fn take(&self) -> tokio::sync::OwnedMutexGuard<Mail<A>> {
        self.rx.clone().lock_owned().await
    }

    /// Closes the mailbox for good: new sends fail and every queued message is dropped, so
    /// its caller gets `CallError::Stopped` instead of waiting forever.
    pub(crate) fn close(&self) {
        drop(self.queue.close());
        match self.rx.try_lock() {
            Ok(mut rx) => rx.clear(),
            // A run that is still ending holds the receiver; it drops its batch when it looks
            // next, or here once it has let go (an aborted run never looks again).
            Err(_) => {
                if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                    let rx = self.rx.clone();
                    runtime.spawn(async move { rx.lock().await.clear() });
                }
            }
        }
    }

    /// Wakes the run waiting on an empty mailbox, so it sees a stop request.
    pub(crate) fn wake_receiver(&self) {
        self.queue.wake_receiver();
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.queue.is_closed()
    }

    pub(crate) fn depth(&self) -> usize {
        self.queue.len()
    }

    pub(crate) fn capacity(&self) -> usize {
        self.queue.capacity()
    }
}

impl<A: Actor> Drop for Inbox<A> {
    /// The receiving side is gone (its tree is gone): sends fail fast from now on instead of
    /// queueing for nobody, and what was queued is dropped, so its callers hear `Stopped`.
    fn drop(&mut self) {
        drop(self.queue.close());
    }
}

/// A new mailbox holding at most `capacity` messages (at least 1).
pub(crate) fn mailbox<A: Actor>(capacity: usize) -> (Addr<A>, Inbox<A>) {
    let queue = Arc::new(Queue::new(capacity));
    (
        Addr {
            queue: queue.clone(),
        },
        Inbox {
            rx: Arc::new(Mutex::new(Receiver::new(queue.clone()))),
            queue,
        },
    )
}
