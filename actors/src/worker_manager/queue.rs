//! The concurrency limit: at most N workers busy at once, the rest waiting in FIFO order.
//!
//! A plain semaphore is fair, but it cannot say *where* a waiter stands, and a user whose
//! test run is queued wants to see "position 2". So this is a small ticket queue: a waiter is
//! pushed onto a list under the same lock that decides whether a slot is free, which makes the
//! list's order the order slots are handed out, and a waiter's position its index in that
//! list. A freed slot is handed straight to the first waiter (never "released then raced
//! for"), so nobody is overtaken.
//!
//! Cancellation is safe at every point: a waiter dropped while queued removes itself; a slot
//! handed to a waiter that is gone is dropped with the channel and so passes on to the next.

use artel_messages::WorkerId;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use tokio::sync::oneshot;

/// The shared state of the limit.
#[derive(Debug)]
struct State {
    capacity: usize,
    busy: usize,
    waiting: VecDeque<(WorkerId, oneshot::Sender<Slot>)>,
}

/// A FIFO-fair concurrency limit that knows every waiter's position. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Slots {
    state: Arc<Mutex<State>>,
}

/// One unit of the limit, held while a command runs; dropping it passes it on.
#[derive(Debug)]
pub(crate) struct Slot {
    state: Arc<Mutex<State>>,
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    // The lock guards plain counters and a list, each left consistent by every holder, so a
    // panic elsewhere while holding it cannot have broken them.
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Slots {
    /// A limit of `capacity` (at least 1) slots.
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            state: Arc::new(Mutex::new(State {
                capacity: capacity.max(1),
                busy: 0,
                waiting: VecDeque::new(),
            })),
        }
    }

    /// Waits for a slot for `worker`, behind everyone who asked earlier.
    pub(crate) async fn acquire(&self, worker: WorkerId) -> Slot {
        loop {
            let rx = {
                let mut state = lock(&self.state);
                if state.busy < state.capacity && state.waiting.is_empty() {
                    state.busy += 1;
                    return Slot {
                        state: self.state.clone(),
                    };
                }
                let (tx, rx) = oneshot::channel();
                state.waiting.push_back((worker, tx));
                rx
            };
            let guard = Waiting {
                state: &self.state,
                worker,
            };
            // The sender stays in the list until it is used, and `Waiting` only removes it
            // when this future is dropped, so the channel cannot close under a receiver that
            // is still awaiting. Should it ever, asking again keeps the caller correct.
            let slot = rx.await;
            drop(guard);
            if let Ok(slot) = slot {
                return slot;
            }
        }
    }

    /// Where `worker` waits: 1 for next in line; `None` when it is not waiting.
    pub(crate) fn position(&self, worker: WorkerId) -> Option<usize> {
        lock(&self.state)
            .waiting
            .iter()
            .position(|(w, _)| *w == worker)
            .map(|i| i + 1)
    }

    /// Every waiting worker, next in line first.
    pub(crate) fn waiting(&self) -> Vec<WorkerId> {
        lock(&self.state).waiting.iter().map(|(w, _)| *w).collect()
    }

    /// How many slots are held right now.
    pub(crate) fn busy(&self) -> usize {
        lock(&self.state).busy
    }
}

/// Removes a waiter that gives up (its future dropped) from the list.
struct Waiting<'a> {
    state: &'a Mutex<State>,
    worker: WorkerId,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        lock(self.state).waiting.retain(|(w, _)| *w != self.worker);
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let next = {
            let mut state = lock(&self.state);
            match state.waiting.pop_front() {
                Some((_, tx)) => tx,
                None => {
                    state.busy = state.busy.saturating_sub(1);
                    return;
                }
            }
        };
        // Hand the slot over without changing `busy`. If that waiter is gone, the slot comes
        // back and is dropped here, outside the lock, which hands it to the next one.
        let _ = next.send(Slot {
            state: self.state.clone(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn slots_go_to_waiters_in_order_and_positions_follow() {
        let slots = Slots::new(1);
        let (a, b, c) = (WorkerId::new(), WorkerId::new(), WorkerId::new());
        let first = slots.acquire(a).await;
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for w in [b, c] {
            let (mine, order) = (slots.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                let slot = mine.acquire(w).await;
                order.lock().unwrap().push(w);
                tokio::time::sleep(Duration::from_millis(10)).await;
                drop(slot);
            }));
            while slots.position(w).is_none() {
                tokio::task::yield_now().await;
            }
        }
        assert_eq!(slots.position(b), Some(1));
        assert_eq!(slots.position(c), Some(2));
        assert_eq!(slots.waiting(), [b, c]);
        assert_eq!(slots.busy(), 1);
        drop(first);
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(*order.lock().unwrap(), [b, c]);
        assert_eq!(slots.busy(), 0);
    }

    #[tokio::test]
    async fn a_waiter_that_gives_up_leaves_the_line_and_loses_no_slot() {
        let slots = Slots::new(1);
        let (a, b, c) = (WorkerId::new(), WorkerId::new(), WorkerId::new());
        let first = slots.acquire(a).await;
        let quitter = {
            let slots = slots.clone();
            tokio::spawn(async move { slots.acquire(b).await })
        };
        while slots.position(b).is_none() {
            tokio::task::yield_now().await;
        }
        quitter.abort();
        let _ = quitter.await;
        assert_eq!(slots.position(b), None);
        drop(first);
        let again = tokio::time::timeout(Duration::from_secs(1), slots.acquire(c))
            .await
            .expect("the slot was passed on, not lost");
        assert_eq!(slots.busy(), 1);
        drop(again);
        assert_eq!(slots.busy(), 0);
    }
}
