//! The bounded multi-producer, single-consumer queue under every mailbox.
//!
//! Why artel has its own instead of tokio's bounded `mpsc`: profiled in `benches/actors.rs`
//! (`perf` on the fire-and-forget group), tokio's channel machinery was about 60 % of a one-way
//! message — a fair semaphore whose release takes a mutex on *every* receive, an `AtomicWaker`
//! touched on every send whether or not the receiver waits, and a lock-free block list — which
//! is where supervision lost to actix's unbounded queue. This queue does the same job with less:
//!
//! - **Senders** take one short lock to check room, push and, only if the receiver is parked,
//!   wake it by reference (the receiver keeps its waker between parks, so neither side clones
//!   one per message; a wake only schedules a task). No atomic read-modify-write besides the
//!   lock itself and that wake.
//! - **The receiver** takes everything queued in one swap of two `VecDeque`s (the buffers trade
//!   places, so a steady stream allocates nothing) and then hands messages out from its batch
//!   without a lock or a read-modify-write: it is the only writer of the batch's count, so a
//!   plain store keeps the bound exact.
//! - **The bound** is exact: queued messages plus the receiver's batch never exceed `capacity`,
//!   and [`Queue::len`] is what is waiting, wherever it waits.
//! - **Waiting for room** uses `tokio::sync::Notify`, and only while some sender waits. The
//!   receiver wakes one waiting sender at the first slot it frees in a batch (a quick, unordered
//!   look), and every waiting sender whenever it comes back to the lock with its batch done —
//!   that look is ordered by the lock, so no waiter is ever forgotten; at worst a sender that
//!   started waiting mid-batch waits for the batch's end. It is not FIFO against a sender that
//!   arrives just as a slot frees (that one may take it first), as with
//!   `std::sync::mpsc::sync_channel`.
//!
//! The receiver's batch lives in [`Receiver`], which the mailbox keeps across runs of an actor:
//! messages taken out of the queue but not yet handled are not lost when a run ends.

use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};
use tokio::sync::Notify;

/// Why a push did not go through; the item is handed back.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum PushError<T> {
    /// No room: `capacity` items wait already.
    Full(T),
    /// The queue was closed for good.
    Closed(T),
}

/// Why there is nothing to receive right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Empty {
    /// Nothing queued yet.
    Empty,
    /// Closed, and everything that was queued has been handed out or dropped.
    Closed,
}

/// The shared half: what senders and the receiver both touch.
pub(crate) struct Queue<T> {
    shared: Mutex<Shared<T>>,
    /// Items in the receiver's batch not yet handed out. Written by the receiver only (plain
    /// stores); read by senders under the lock to compute room.
    batched: AtomicUsize,
    capacity: usize,
    /// Senders waiting for room, and how many there are (so the receiver skips `Notify` when
    /// nobody waits). A sender counts itself before it takes the lock to look again, which is
    /// what makes the receiver's look under the lock reliable.
    room: Notify,
    waiting: AtomicUsize,
    /// Mirrors `Shared::closed` for lock-free reads.
    closed: AtomicBool,
}

struct Shared<T> {
    items: VecDeque<T>,
    /// The receiver's waker, kept between parks (re-registering the same task costs a
    /// comparison, not a clone), and whether it is parked now.
    receiver: Option<Waker>,
    parked: bool,
    closed: bool,
}

impl<T> Queue<T> {
    /// A queue holding at most `capacity` items (at least 1). Allocates nothing until the
    /// first push.
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            shared: Mutex::new(Shared {
                items: VecDeque::new(),
                receiver: None,
                parked: false,
                closed: false,
            }),
            batched: AtomicUsize::new(0),
            capacity: capacity.max(1),
            room: Notify::new(),
            waiting: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
        }
    }

    /// Pushes `item` if there is room, waking the receiver if it is parked. `into` turns it
    /// into the queue's item type once it is certain to go in (an unsizing coercion for the
    /// mailbox), so a refused item comes back as it was given.
    pub(crate) fn try_push<U>(
        &self,
        item: U,
        into: impl FnOnce(U) -> T,
    ) -> Result<(), PushError<U>> {
        {
            let mut shared = self.shared.lock();
            if shared.closed {
                return Err(PushError::Closed(item));
            }
            if shared.items.len() + self.batched.load(Ordering::Acquire) >= self.capacity {
                return Err(PushError::Full(item));
            }
            shared.items.push_back(into(item));
            shared.wake_receiver();
        };
        Ok(())
    }

    /// Pushes `item`, waiting for room while the queue is full. `Err` hands it back when the
    /// queue is (or becomes) closed. Cancel-safe: dropping the future drops the item unsent.
    pub(crate) async fn push<U>(&self, item: U, into: impl Fn(U) -> T) -> Result<(), U> {
        // The common case is straight-line code; the waiting machinery is built only when full.
        match self.try_push(item, &into) {
            Ok(()) => Ok(()),
            Err(PushError::Closed(back)) => Err(back),
            Err(PushError::Full(back)) => self.push_when_room(back, into).await,
        }
    }

    async fn push_when_room<U>(&self, mut item: U, into: impl Fn(U) -> T) -> Result<(), U> {
        loop {
            // Register before looking again, so a slot freed in between is not missed.
            let notified = self.room.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();
            let _waiting = Waiting::enter(&self.waiting);
            match self.try_push(item, &into) {
                Ok(()) => return Ok(()),
                Err(PushError::Closed(back)) => return Err(back),
                Err(PushError::Full(back)) => item = back,
            }
            notified.await;
            match self.try_push(item, &into) {
                Ok(()) => return Ok(()),
                Err(PushError::Closed(back)) => return Err(back),
                Err(PushError::Full(back)) => item = back,
            }
        }
    }

    /// Items waiting: queued, or taken by the receiver and not yet handed out.
    pub(crate) fn len(&self) -> usize {
        let queued = self.shared.lock().items.len();
        queued + self.batched.load(Ordering::Acquire)
    }

    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Closes the queue for good: pushes fail from now on, waiting senders get their items
    /// back, a parked receiver wakes to find it closed. Returns what was queued, for the caller
    /// to drop (outside the lock: dropping an item may wake its own waiter).
    pub(crate) fn close(&self) -> VecDeque<T> {
        let items = {
            let mut shared = self.shared.lock();
            shared.closed = true;
            self.closed.store(true, Ordering::Release);
            shared.wake_receiver();
            std::mem::take(&mut shared.items)
        };
        self.room.notify_waiters();
        items
    }

    /// Wakes the receiver if it is parked, so it looks at something besides the queue (a stop
    /// request). It re-registers on its next poll.
    pub(crate) fn wake_receiver(&self) {
        self.shared.lock().wake_receiver();
    }
}

impl<T> Shared<T> {
    /// Wakes the receiver if it is parked. Under the lock, by reference: no waker clone per
    /// wake-up, and a wake only schedules the receiver's task. That holds because the receiver
    /// is always an actor's run loop on a tokio task; a waker that called back into this queue
    /// would deadlock here (the lock is not reentrant).
    fn wake_receiver(&mut self) {
        if std::mem::take(&mut self.parked)
            && let Some(waker) = &self.receiver
        {
            waker.wake_by_ref();
        }
    }
}

/// Counts one sender as waiting for as long as it lives (also when its future is dropped).
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn enter(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Self(count)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The receiving half: the one consumer and its batch.
pub(crate) struct Receiver<T> {
    queue: Arc<Queue<T>>,
    batch: VecDeque<T>,
    /// A waiting sender was woken during this batch already.
    nudged: bool,
}

impl<T> Receiver<T> {
    pub(crate) fn new(queue: Arc<Queue<T>>) -> Self {
        Self {
            queue,
            batch: VecDeque::new(),
            nudged: false,
        }
    }

    /// The next item if one is waiting, without registering anything.
    #[cfg(test)]
    fn try_recv(&mut self) -> Result<T, Empty> {
        self.next(None)
    }

    /// The next item, or `Ready(None)` once closed; `Pending` parks this task until a push, a
    /// close or [`Queue::wake_receiver`].
    pub(crate) fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        match self.next(Some(cx.waker())) {
            Ok(item) => Poll::Ready(Some(item)),
            Err(Empty::Closed) => Poll::Ready(None),
            Err(Empty::Empty) => Poll::Pending,
        }
    }

    /// Drops everything in the batch (the queue itself is drained by [`Queue::close`]). The
    /// items are dropped after the count is settled: dropping one may wake its caller.
    pub(crate) fn clear(&mut self) {
        let dropped = std::mem::take(&mut self.batch);
        self.queue.batched.store(0, Ordering::Release);
        drop(dropped);
    }

    fn next(&mut self, park: Option<&Waker>) -> Result<T, Empty> {
        if self.queue.is_closed() {
            // Closed for good: what is left in the batch is dropped, as the queue's own items
            // were, so every waiting caller hears that the actor stopped.
            self.clear();
            return Err(Empty::Closed);
        }
        if let Some(item) = self.batch.pop_front() {
            self.handed_out();
            return Ok(item);
        }
        // The batch is done: every slot it held is free. What the senders see of that, and
        // who is waiting, is settled under the lock.
        let waiters = {
            let mut shared = self.queue.shared.lock();
            let waiters = self.queue.waiting.load(Ordering::Relaxed) != 0;
            if shared.items.is_empty() {
                if shared.closed {
                    return Err(Empty::Closed);
                }
                if let Some(waker) = park {
                    match &shared.receiver {
                        Some(parked) if parked.will_wake(waker) => {}
                        _ => shared.receiver = Some(waker.clone()),
                    }
                    shared.parked = true;
                }
                drop(shared);
                if waiters {
                    self.queue.room.notify_waiters();
                }
                return Err(Empty::Empty);
            }
            // The buffers trade places, and the count moves with them under the lock, so
            // senders always see queued + batched.
            std::mem::swap(&mut shared.items, &mut self.batch);
            self.queue
                .batched
                .store(self.batch.len(), Ordering::Release);
            waiters
        };
        self.nudged = false;
        if waiters {
            self.queue.room.notify_waiters();
        }
        match self.batch.pop_front() {
            Some(item) => {
                self.handed_out();
                Ok(item)
            }
            None => Err(Empty::Empty),
        }
    }

    /// One item left the batch: its slot is free. The first free slot of a batch wakes one
    /// waiting sender, if a quick look finds one (the look under the lock at the batch's end
    /// is the one that never misses).
    fn handed_out(&mut self) {
        self.queue
            .batched
            .store(self.batch.len(), Ordering::Release);
        if !self.nudged && self.queue.waiting.load(Ordering::Relaxed) != 0 {
            self.nudged = true;
            self.queue.room.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn pair(capacity: usize) -> (Arc<Queue<u32>>, Receiver<u32>) {
        let queue = Arc::new(Queue::new(capacity));
        (queue.clone(), Receiver::new(queue))
    }

    fn same(item: u32) -> u32 {
        item
    }

    /// A sender pushing `item` from its own task, after it has had a turn to start waiting.
    async fn waiting_push(
        queue: &Arc<Queue<u32>>,
        item: u32,
    ) -> tokio::task::JoinHandle<Result<(), u32>> {
        let q = queue.clone();
        let sender = tokio::spawn(async move { q.push(item, same).await });
        tokio::task::yield_now().await;
        sender
    }

    #[test]
    fn items_come_out_in_order_and_the_bound_counts_the_batch() {
        let (queue, mut rx) = pair(3);
        for i in 0..3 {
            queue.try_push(i, same).unwrap();
        }
        assert_eq!(queue.try_push(9, same), Err(PushError::Full(9)));
        assert_eq!(rx.try_recv(), Ok(0));
        // Two are still waiting, in the receiver's batch now: one slot is free.
        assert_eq!(queue.len(), 2);
        queue.try_push(3, same).unwrap();
        assert_eq!(queue.try_push(9, same), Err(PushError::Full(9)));
        assert_eq!(
            (0..3).map(|_| rx.try_recv().unwrap()).collect::<Vec<_>>(),
            [1, 2, 3]
        );
        assert_eq!(rx.try_recv(), Err(Empty::Empty));
        assert_eq!(queue.len(), 0);
    }

    #[test]
    fn a_refused_item_comes_back_unconverted() {
        let queue: Queue<Box<dyn std::fmt::Debug + Send>> = Queue::new(1);
        queue.try_push(1u8, |n| Box::new(n) as Box<_>).unwrap();
        assert_eq!(
            queue.try_push(2u8, |n| Box::new(n) as Box<_>),
            Err(PushError::Full(2u8))
        );
        queue.close();
        assert_eq!(
            queue.try_push(3u8, |n| Box::new(n) as Box<_>),
            Err(PushError::Closed(3u8))
        );
    }

    #[test]
    fn close_drops_everything_waiting_and_refuses_more() {
        let (queue, mut rx) = pair(4);
        queue.try_push(1, same).unwrap();
        queue.try_push(2, same).unwrap();
        assert_eq!(rx.try_recv(), Ok(1));
        queue.try_push(3, same).unwrap();
        // 2 sits in the receiver's batch, 3 in the queue.
        assert_eq!(Vec::from(queue.close()), [3]);
        assert!(queue.is_closed());
        assert_eq!(queue.try_push(4, same), Err(PushError::Closed(4)));
        assert_eq!(rx.try_recv(), Err(Empty::Closed));
        assert_eq!(queue.len(), 0, "the batch was dropped too");
    }

    #[test]
    fn clear_frees_the_batch_slots() {
        let (queue, mut rx) = pair(2);
        queue.try_push(1, same).unwrap();
        queue.try_push(2, same).unwrap();
        assert_eq!(rx.try_recv(), Ok(1));
        rx.clear();
        assert_eq!(queue.len(), 0);
        queue.try_push(3, same).unwrap();
        queue.try_push(4, same).unwrap();
        assert_eq!(queue.try_push(5, same), Err(PushError::Full(5)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_parked_receiver_wakes_on_push_on_wake_and_on_close() {
        let (queue, mut rx) = pair(2);
        let woken = Arc::new(AtomicUsize::new(0));
        let w = woken.clone();
        let consumer = tokio::spawn(async move {
            let mut got = Vec::new();
            loop {
                let next = std::future::poll_fn(|cx| {
                    w.fetch_add(1, Ordering::SeqCst);
                    rx.poll_recv(cx)
                })
                .await;
                match next {
                    Some(item) => got.push(item),
                    None => return got,
                }
            }
        });
        tokio::task::yield_now().await;
        queue.try_push(7, same).unwrap();
        tokio::task::yield_now().await;
        let polls = woken.load(Ordering::SeqCst);
        queue.wake_receiver();
        tokio::task::yield_now().await;
        assert!(
            woken.load(Ordering::SeqCst) > polls,
            "wake_receiver polls it again"
        );
        queue.try_push(8, same).unwrap();
        tokio::time::sleep(Duration::from_millis(1)).await;
        queue.close();
        assert_eq!(consumer.await.unwrap(), [7, 8]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_sender_waits_for_room_and_a_close_hands_its_item_back() {
        let (queue, mut rx) = pair(1);
        queue.try_push(1, same).unwrap();
        let waiting = waiting_push(&queue, 2).await;
        assert!(!waiting.is_finished(), "push must wait while full");
        assert_eq!(rx.try_recv(), Ok(1));
        assert_eq!(waiting.await.unwrap(), Ok(()));
        assert_eq!(rx.try_recv(), Ok(2));

        queue.try_push(3, same).unwrap();
        let refused = waiting_push(&queue, 4).await;
        queue.close();
        assert_eq!(refused.await.unwrap(), Err(4));
    }

    #[tokio::test(start_paused = true)]
    async fn waiting_senders_are_woken_as_the_receiver_frees_slots() {
        let (queue, mut rx) = pair(3);
        for i in 1..=3 {
            queue.try_push(i, same).unwrap();
        }
        assert_eq!(rx.try_recv(), Ok(1));
        queue.try_push(4, same).unwrap();
        let waiters = [waiting_push(&queue, 5).await, waiting_push(&queue, 6).await];
        assert!(waiters.iter().all(|w| !w.is_finished()), "both wait");
        // The first slot freed in a batch wakes one waiter; the next batch wakes the next.
        // (The look under the lock at a batch's end is the safety net for a sender that
        // registered where the receiver's quick look missed it, a cross-thread race.)
        assert_eq!(rx.try_recv(), Ok(2));
        assert_eq!(rx.try_recv(), Ok(3));
        assert_eq!(rx.try_recv(), Ok(4));
        for waiter in waiters {
            let pushed = tokio::time::timeout(Duration::from_secs(5), waiter).await;
            assert_eq!(pushed.expect("woken").unwrap(), Ok(()));
        }
        let mut rest = vec![rx.try_recv().unwrap(), rx.try_recv().unwrap()];
        rest.sort_unstable();
        assert_eq!(rest, [5, 6]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_waiting_sender_leaves_no_trace() {
        let (queue, mut rx) = pair(1);
        queue.try_push(1, same).unwrap();
        let cancelled = waiting_push(&queue, 2).await;
        cancelled.abort();
        assert!(cancelled.await.unwrap_err().is_cancelled());
        assert_eq!(queue.waiting.load(Ordering::SeqCst), 0);
        assert_eq!(rx.try_recv(), Ok(1));
        assert_eq!(rx.try_recv(), Err(Empty::Empty));
        assert_eq!(queue.len(), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn many_senders_on_many_threads_lose_nothing_and_never_exceed_the_bound() {
        const SENDERS: u32 = 4;
        const EACH: u32 = 5_000;
        let (queue, mut rx) = pair(8);
        let senders: Vec<_> = (0..SENDERS)
            .map(|s| {
                let q = queue.clone();
                tokio::spawn(async move {
                    for i in 0..EACH {
                        q.push(s * 100_000 + i, same).await.unwrap();
                    }
                })
            })
            .collect();
        let mut seen = vec![Vec::new(); SENDERS as usize];
        let mut max_len = 0;
        for _ in 0..SENDERS * EACH {
            max_len = max_len.max(queue.len());
            let item = std::future::poll_fn(|cx| rx.poll_recv(cx))
                .await
                .expect("open");
            seen[(item / 100_000) as usize].push(item % 100_000);
        }
        for sender in senders {
            sender.await.unwrap();
        }
        assert!(max_len <= 8, "the bound held: {max_len}");
        for per_sender in seen {
            assert_eq!(
                per_sender,
                (0..EACH).collect::<Vec<_>>(),
                "each sender's order holds"
            );
        }
        assert_eq!(queue.len(), 0);
    }
}
