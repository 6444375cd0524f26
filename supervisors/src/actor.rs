//! The actor contract: state built in `started`, one handler per message type, a context to
//! stop or fail from inside.
//!
//! An actor is a plain struct. A factory builds a fresh one for every run, so a restart always
//! begins from clean state; durable state is loaded in [`Actor::started`], which makes a
//! failing start a supervised failure like any other.

use crate::exit::ExitReason;
use crate::later::Later;
use crate::mailbox::Addr;
use crate::registry::NodeId;
use artel_messages::{Failure, Request};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::AbortHandle;

/// A supervised actor.
pub trait Actor: Sized + Send + 'static {
    /// Runs before the first message of each run. An `Err` ends the run as
    /// [`ExitReason::Failed`]; the supervisor decides (retryable → restart, fatal → stop).
    fn started(
        &mut self,
        _ctx: &mut Context<Self>,
    ) -> impl Future<Output = Result<(), Failure>> + Send {
        async { Ok(()) }
    }

    /// Runs after the last message of each run, whatever the reason (a panic in it is caught).
    fn stopped(
        &mut self,
        _ctx: &mut Context<Self>,
        _reason: &ExitReason,
    ) -> impl Future<Output = ()> + Send {
        async {}
    }
}

/// Handling of one message type `M`.
pub trait Handler<M: Request>: Actor {
    /// Handles `msg` and returns its reply. A panic here fails this actor (the caller gets
    /// `CallError::Panicked`); siblings are untouched.
    fn handle(&mut self, msg: M, ctx: &mut Context<Self>) -> impl Future<Output = M::Reply> + Send;

    /// How long handling `msg` may take before the actor counts as stuck. `None` uses the
    /// child spec's default deadline.
    fn deadline(&self, _msg: &M) -> Option<Duration> {
        None
    }

    /// Answers `msg` at once, without a future, for a handler that never waits (a state
    /// read, a counter, a routing decision). The mailbox calls this first and falls back to
    /// [`handle`](Self::handle) with the message handed back (`Err(msg)`, the default). An
    /// immediate answer costs no allocation and no future per message; a panic in it fails
    /// the actor exactly like one in `handle`. It must not block: it runs on the actor's task
    /// with no deadline to catch it.
    fn handle_now(&mut self, msg: M, _ctx: &mut Context<Self>) -> Result<M::Reply, M> {
        Err(msg)
    }
}

/// What a running actor can see and do about itself.
pub struct Context<A: Actor> {
    addr: Addr<A>,
    node: NodeId,
    name: Arc<str>,
    pub(crate) default_deadline: Option<Duration>,
    pub(crate) exit: Option<ExitReason>,
    /// Timers and deferred work of this run; aborted when the run ends, however it ends.
    timers: Vec<AbortHandle>,
}

impl<A: Actor> Drop for Context<A> {
    fn drop(&mut self) {
        for timer in &self.timers {
            timer.abort();
        }
    }
}

impl<A: Actor> Context<A> {
    pub(crate) fn new(
        addr: Addr<A>,
        node: NodeId,
        name: Arc<str>,
        default_deadline: Option<Duration>,
    ) -> Self {
        Self {
            addr,
            node,
            name,
            default_deadline,
            exit: None,
            timers: Vec::new(),
        }
    }

    /// This actor's own address (to hand to others, or to send itself a message).
    pub fn addr(&self) -> Addr<A> {
        self.addr.clone()
    }

    /// This actor's node in the supervision tree.
    pub fn node(&self) -> NodeId {
        self.node
    }

    /// This actor's name in the supervision tree.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Sends this actor `make()` every `period` (first after one period) for as long as this
    /// run lasts. A full mailbox delays the tick rather than dropping it.
    pub fn every<M, F>(&mut self, period: Duration, make: F)
    where
        A: Handler<M>,
        M: Request,
        F: Fn() -> M + Send + 'static,
    {
        let addr = self.addr.clone();
        let task = tokio::spawn(async move {
            let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                if addr.send(make()).await.is_err() {
                    break;
                }
            }
        });
        self.timers.retain(|timer| !timer.is_finished());
        self.timers.push(task.abort_handle());
    }

    /// Sends this actor `msg` once after `delay`, unless this run ends first.
    pub fn send_later<M>(&mut self, delay: Duration, msg: M)
    where
        A: Handler<M>,
        M: Request,
    {
        let addr = self.addr.clone();
        let task = tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let _ = addr.send(msg).await;
        });
        self.timers.retain(|timer| !timer.is_finished());
        self.timers.push(task.abort_handle());
    }

    /// Runs `work` beside this actor and answers a [`Deferred`](crate::Deferred) message with
    /// its output (see [`later`](crate::later)): the handler returns the [`Later`] this gives
    /// and the actor takes its next message at once. The work belongs to this run — it is
    /// dropped when the run ends — and to its caller, who drops it by no longer waiting.
    pub fn spawn_reply<T, F>(&mut self, work: F) -> Later<T>
    where
        T: Send + 'static,
        F: Future<Output = T> + Send + 'static,
    {
        let (later, task) = Later::spawn(work);
        self.timers.retain(|timer| !timer.is_finished());
        self.timers.push(task);
        later
    }

    /// Ends this run normally after the current message (`transient` children then stay down).
    pub fn stop(&mut self) {
        self.exit.get_or_insert(ExitReason::Normal);
    }

    /// Ends this run with a classified failure after the current message; the supervisor
    /// restarts it (retryable) or leaves it down (fatal). This is how a role retries: it
    /// fails, and its child spec says what happens next.
    pub fn fail(&mut self, failure: Failure) {
        self.exit = Some(ExitReason::Failed(failure));
    }
}
