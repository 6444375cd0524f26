//! Replies that come after the handler returned.
//!
//! An actor handles one message at a time, which is what makes its state safe without locks.
//! Some actors are gates to slow work that must run side by side — the worker-manager admits
//! commands that run for minutes, a deployer starts services that take seconds to answer — and
//! a handler that awaited that work would make every later message wait behind it. Such an
//! actor handles [`Deferred<M>`]: its handler does the part that needs the actor's state
//! (admission, allocation, bookkeeping) at once, hands the slow part to
//! [`Context::spawn_reply`](crate::Context::spawn_reply), and replies with the [`Later`] that
//! part will answer. The caller's [`Addr::call_later`](crate::Addr::call_later) awaits both, so
//! it reads like any call.
//!
//! - The work runs as a task of the actor's current run: when the run ends (a restart, a
//!   stop) the work is dropped and its caller hears [`CallError::Stopped`].
//! - A caller that stops waiting (its own future is dropped, e.g. a cancelled task) drops the
//!   work too, so nothing runs for nobody.
//! - A panic in the work reaches the caller as [`CallError::Panicked`]; the actor itself is
//!   unaffected (the work ran outside its handler).

use crate::error::CallError;
use crate::exit::panic_message;
use artel_messages::Request;
use futures_util::FutureExt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};
use tokio::sync::oneshot;

/// "Handle `M`, and answer when its work is done": the handler replies with a [`Later`].
#[derive(Debug)]
pub struct Deferred<M>(pub M);

impl<M: Request> Request for Deferred<M> {
    type Reply = Later<M::Reply>;
}

/// The reply of deferred work, awaited by the caller.
#[must_use = "a Later does nothing unless awaited"]
pub struct Later<T> {
    answer: oneshot::Receiver<Result<T, CallError>>,
}

impl<T> std::fmt::Debug for Later<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Later").finish_non_exhaustive()
    }
}

impl<T: Send + 'static> Later<T> {
    /// A reply that is already known (the handler answered at once, e.g. a refusal).
    pub fn ready(value: T) -> Self {
        let (tx, answer) = oneshot::channel();
        let _ = tx.send(Ok(value));
        Self { answer }
    }

    /// Runs `work` as a tokio task whose output answers the returned reply. The task ends
    /// early when the caller drops its reply; the handle lets its owner abort it.
    pub(crate) fn spawn<F>(work: F) -> (Self, tokio::task::AbortHandle)
    where
        F: Future<Output = T> + Send + 'static,
    {
        let (mut tx, answer) = oneshot::channel();
        let task = tokio::spawn(async move {
            let mut work = std::pin::pin!(AssertUnwindSafe(work).catch_unwind());
            let outcome = std::future::poll_fn(|cx| {
                if let Poll::Ready(done) = work.as_mut().poll(cx) {
                    return Poll::Ready(Some(done));
                }
                // The caller gave up: stop doing the work.
                tx.poll_closed(cx).map(|()| None)
            })
            .await;
            match outcome {
                Some(Ok(value)) => {
                    let _ = tx.send(Ok(value));
                }
                Some(Err(payload)) => {
                    let message = panic_message(payload.as_ref());
                    tracing::error!(%message, "deferred work panicked");
                    let _ = tx.send(Err(CallError::Panicked(message)));
                }
                None => {}
            }
        });
        (Self { answer }, task.abort_handle())
    }
}

impl<T> Future for Later<T> {
    type Output = Result<T, CallError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.answer)
            .poll(cx)
            .map(|answer| answer.unwrap_or(Err(CallError::Stopped)))
    }
}
