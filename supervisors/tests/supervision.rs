//! Behaviour of the supervision runtime through its public API: strategies, restart types,
//! intensity escalation, backoff, panic isolation, backpressure, shutdown order, stuck
//! detection, dynamic children, tracing and the tree snapshot.

use artel_supervisors::{
    Actor, Addr, Backoff, CallError, ChildSpec, ChildStart, Context, ExitReason, Failure, Handler,
    Intensity, NodeKind, NodeStatus, Request, Restart, Strategy, Supervisor, TrySendError,
};
use parking_lot::Mutex;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

// ---------------------------------------------------------------------------------------------
// A configurable test actor.

/// Everything a test wants to observe about one child across its runs.
#[derive(Default)]
struct Probe {
    runs: AtomicUsize,
    handled: AtomicUsize,
    started_at: Mutex<Vec<Instant>>,
    journal: Option<Arc<Mutex<Vec<String>>>>,
    fail_start: Mutex<Option<Failure>>,
    panic_start: std::sync::atomic::AtomicBool,
}

impl Probe {
    fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }
    fn with_journal(journal: Arc<Mutex<Vec<String>>>) -> Arc<Self> {
        Arc::new(Self {
            journal: Some(journal),
            ..Self::default()
        })
    }
    fn runs(&self) -> usize {
        self.runs.load(Ordering::SeqCst)
    }
}

struct Worker {
    name: &'static str,
    probe: Arc<Probe>,
    /// State that a restart must reset.
    count: u64,
    gate: Option<Arc<Notify>>,
}

impl Worker {
    fn spec(name: &'static str, probe: &Arc<Probe>) -> (Addr<Worker>, ChildSpec) {
        let probe = probe.clone();
        let (addr, spec) = ChildSpec::actor(name, move || Worker {
            name,
            probe: probe.clone(),
            count: 0,
            gate: None,
        });
        (addr, spec.backoff(Backoff::none()))
    }
}

impl Actor for Worker {
    async fn started(&mut self, _ctx: &mut Context<Self>) -> Result<(), Failure> {
        self.probe.runs.fetch_add(1, Ordering::SeqCst);
        self.probe.started_at.lock().push(Instant::now());
        if let Some(journal) = &self.probe.journal {
            journal.lock().push(format!("start {}", self.name));
        }
        if self.probe.panic_start.load(Ordering::SeqCst) {
            panic!("cannot start {}", self.name);
        }
        match self.probe.fail_start.lock().clone() {
            Some(failure) => Err(failure),
            None => Ok(()),
        }
    }

    async fn stopped(&mut self, _ctx: &mut Context<Self>, _reason: &ExitReason) {
        if let Some(journal) = &self.probe.journal {
            journal.lock().push(format!("stop {}", self.name));
        }
    }
}

/// Adds one to the actor's counter and answers the new value.
#[derive(Debug)]
struct Incr;
impl Request for Incr {
    type Reply = u64;
}
impl Handler<Incr> for Worker {
    async fn handle(&mut self, _msg: Incr, _ctx: &mut Context<Self>) -> u64 {
        self.probe.handled.fetch_add(1, Ordering::SeqCst);
        self.count += 1;
        self.count
    }
}

/// Panics inside the handler, after an await point.
#[derive(Debug)]
struct Boom;
impl Request for Boom {
    type Reply = ();
}
impl Handler<Boom> for Worker {
    async fn handle(&mut self, _msg: Boom, _ctx: &mut Context<Self>) {
        tokio::task::yield_now().await;
        panic!("boom");
    }
}

/// Ends this run: normally, or with a failure.
#[derive(Debug)]
struct Exit(Option<Failure>);
impl Request for Exit {
    type Reply = ();
}
impl Handler<Exit> for Worker {
    async fn handle(&mut self, msg: Exit, ctx: &mut Context<Self>) {
        match msg.0 {
            Some(failure) => ctx.fail(failure),
            None => ctx.stop(),
        }
    }
}

/// Hangs for `0` (a wedged LLM call), with a 1 s declared deadline.
#[derive(Debug)]
struct Hang(Duration);
impl Request for Hang {
    type Reply = ();
}
impl Handler<Hang> for Worker {
    async fn handle(&mut self, msg: Hang, _ctx: &mut Context<Self>) {
        tokio::time::sleep(msg.0).await;
    }
    fn deadline(&self, _msg: &Hang) -> Option<Duration> {
        Some(Duration::from_secs(1))
    }
}

/// Sleeps for `0` with no deadline of its own.
#[derive(Debug)]
struct Sleep(Duration);
impl Request for Sleep {
    type Reply = ();
}
impl Handler<Sleep> for Worker {
    async fn handle(&mut self, msg: Sleep, _ctx: &mut Context<Self>) {
        tokio::time::sleep(msg.0).await;
    }
}

/// Waits on the actor's gate before answering (to hold the mailbox full).
#[derive(Debug)]
struct Blocked;
impl Request for Blocked {
    type Reply = ();
}
impl Handler<Blocked> for Worker {
    async fn handle(&mut self, _msg: Blocked, _ctx: &mut Context<Self>) {
        if let Some(gate) = &self.gate {
            gate.notified().await;
        }
    }
}

/// Answered at once by `handle_now` when `0` is true (the counter, untouched), else handed
/// back to the async `handle` (the counter plus 1000).
#[derive(Debug)]
struct Now(bool);
impl Request for Now {
    type Reply = u64;
}
impl Handler<Now> for Worker {
    async fn handle(&mut self, _msg: Now, _ctx: &mut Context<Self>) -> u64 {
        tokio::task::yield_now().await;
        self.count + 1000
    }
    fn handle_now(&mut self, msg: Now, _ctx: &mut Context<Self>) -> Result<u64, Now> {
        if msg.0 { Ok(self.count) } else { Err(msg) }
    }
}

/// Panics in the immediate handler.
#[derive(Debug)]
struct BoomNow;
impl Request for BoomNow {
    type Reply = ();
}
impl Handler<BoomNow> for Worker {
    async fn handle(&mut self, _msg: BoomNow, _ctx: &mut Context<Self>) {}
    fn handle_now(&mut self, _msg: BoomNow, _ctx: &mut Context<Self>) -> Result<(), BoomNow> {
        panic!("boom");
    }
}

/// Silences the panics these tests cause on purpose; every other panic still prints.
fn quiet_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let msg = info
                .payload()
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| info.payload().downcast_ref::<String>().cloned())
                .unwrap_or_default();
            if msg != "boom" && !msg.starts_with("cannot start") {
                default(info);
            }
        }));
    });
}

/// Two workers `a` and `b` under a `one_for_one` root, each with its probe.
struct Siblings {
    pa: Arc<Probe>,
    pb: Arc<Probe>,
    a: Addr<Worker>,
    b: Addr<Worker>,
    root: artel_supervisors::SupervisorHandle,
}

impl Siblings {
    async fn start() -> Self {
        let (pa, pb) = (Probe::new(), Probe::new());
        let (a, sa) = Worker::spec("a", &pa);
        let (b, sb) = Worker::spec("b", &pb);
        let root = Supervisor::new("root").child(sa).child(sb).start().await;
        Self { pa, pb, a, b, root }
    }
}

// ---------------------------------------------------------------------------------------------
// Strategies.

#[tokio::test]
async fn one_for_one_restarts_only_the_failed_child() {
    quiet_panics();
    let Siblings { pa, pb, a, b, root } = Siblings::start().await;

    assert_eq!(b.call(Incr).await, Ok(1));
    assert!(matches!(a.call(Boom).await, Err(CallError::Panicked(m)) if m == "boom"));
    assert_eq!(a.call(Incr).await, Ok(1), "a restarted from fresh state");
    assert_eq!(b.call(Incr).await, Ok(2), "b kept its state");
    assert_eq!((pa.runs(), pb.runs()), (2, 1));
    root.shutdown().await;
}

#[tokio::test]
async fn one_for_all_restarts_every_child() {
    quiet_panics();
    let (pa, pb, pc) = (Probe::new(), Probe::new(), Probe::new());
    let (a, sa) = Worker::spec("a", &pa);
    let (b, sb) = Worker::spec("b", &pb);
    let (c, sc) = Worker::spec("c", &pc);
    let root = Supervisor::new("root")
        .strategy(Strategy::OneForAll)
        .child(sa)
        .child(sb)
        .child(sc)
        .start()
        .await;

    assert_eq!(a.call(Incr).await, Ok(1));
    assert_eq!(c.call(Incr).await, Ok(1));
    let _ = b.call(Boom).await;
    assert_eq!(a.call(Incr).await, Ok(1));
    assert_eq!(c.call(Incr).await, Ok(1));
    assert_eq!((pa.runs(), pb.runs(), pc.runs()), (2, 2, 2));
    root.shutdown().await;
}

#[tokio::test]
async fn rest_for_one_restarts_the_failed_child_and_those_started_after_it() {
    quiet_panics();
    let (pa, pb, pc) = (Probe::new(), Probe::new(), Probe::new());
    let (a, sa) = Worker::spec("a", &pa);
    let (b, sb) = Worker::spec("b", &pb);
    let (c, sc) = Worker::spec("c", &pc);
    let root = Supervisor::new("root")
        .strategy(Strategy::RestForOne)
        .child(sa)
        .child(sb)
        .child(sc)
        .start()
        .await;

    assert_eq!(a.call(Incr).await, Ok(1));
    let _ = b.call(Boom).await;
    assert_eq!(b.call(Incr).await, Ok(1));
    assert_eq!(
        c.call(Incr).await,
        Ok(1),
        "c was started after b: restarted"
    );
    assert_eq!(
        a.call(Incr).await,
        Ok(2),
        "a was started before b: untouched"
    );
    assert_eq!((pa.runs(), pb.runs(), pc.runs()), (1, 2, 2));
    root.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Restart types and error classes.

#[tokio::test]
async fn permanent_restarts_even_after_a_normal_exit() {
    let p = Probe::new();
    let (a, spec) = Worker::spec("a", &p);
    let root = Supervisor::new("root").child(spec).start().await;
    a.call(Exit(None)).await.unwrap();
    assert_eq!(a.call(Incr).await, Ok(1));
    assert_eq!(p.runs(), 2);
    root.shutdown().await;
}

#[tokio::test]
async fn transient_restarts_only_after_an_abnormal_exit() {
    quiet_panics();
    let p = Probe::new();
    let (a, spec) = Worker::spec("a", &p);
    let root = Supervisor::new("root")
        .child(spec.restart(Restart::Transient))
        .start()
        .await;
    let _ = a.call(Boom).await;
    assert_eq!(a.call(Incr).await, Ok(1), "restarted after a panic");
    a.call(Exit(None)).await.unwrap();
    assert_eq!(
        a.call(Incr).await,
        Err(CallError::Closed),
        "down after a normal exit"
    );
    assert_eq!(p.runs(), 2);
    let snap = root.registry().snapshot();
    assert_eq!(snap.find("root/a").unwrap().status, NodeStatus::Stopped);
    root.shutdown().await;
}

#[tokio::test]
async fn temporary_is_never_restarted() {
    quiet_panics();
    let p = Probe::new();
    let (a, spec) = Worker::spec("a", &p);
    let root = Supervisor::new("root")
        .child(spec.restart(Restart::Temporary))
        .start()
        .await;
    let _ = a.call(Boom).await;
    assert_eq!(a.call(Incr).await, Err(CallError::Closed));
    assert_eq!(p.runs(), 1);
    root.shutdown().await;
}

#[tokio::test]
async fn a_fatal_failure_is_never_restarted_and_a_retryable_one_is() {
    let (pf, pr) = (Probe::new(), Probe::new());
    let (f, sf) = Worker::spec("fatal", &pf);
    let (r, sr) = Worker::spec("retryable", &pr);
    let root = Supervisor::new("root").child(sf).child(sr).start().await;

    f.call(Exit(Some(Failure::fatal("the request names no resource"))))
        .await
        .unwrap();
    r.call(Exit(Some(Failure::retryable("database went away"))))
        .await
        .unwrap();
    assert_eq!(r.call(Incr).await, Ok(1));
    assert_eq!(f.call(Incr).await, Err(CallError::Closed));
    assert_eq!((pf.runs(), pr.runs()), (1, 2));

    let snap = root.registry().snapshot();
    let fatal = snap.find("root/fatal").unwrap();
    assert_eq!(fatal.status, NodeStatus::Failed);
    assert_eq!(
        fatal.last_error.as_deref(),
        Some("fatal failure: the request names no resource")
    );
    root.shutdown().await;
}

#[tokio::test]
async fn a_failing_start_is_a_supervised_failure() {
    let p = Probe::new();
    *p.fail_start.lock() = Some(Failure::fatal("missing template"));
    let (a, spec) = Worker::spec("a", &p);
    let root = Supervisor::new("root").child(spec).start().await;
    assert_eq!(a.call(Incr).await, Err(CallError::Closed));
    assert_eq!(
        root.registry().snapshot().find("root/a").unwrap().status,
        NodeStatus::Failed
    );
    root.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Intensity and escalation.

#[tokio::test(start_paused = true)]
async fn intensity_escalates_across_two_supervisor_levels() {
    quiet_panics();
    let p = Probe::new();
    p.panic_start.store(true, Ordering::SeqCst);
    let (_a, spec) = Worker::spec("crasher", &p);
    let inner = Supervisor::new("inner")
        .intensity(Intensity {
            max_restarts: 2,
            within: Duration::from_secs(10),
        })
        .child(spec);
    let root = Supervisor::new("outer")
        .intensity(Intensity {
            max_restarts: 1,
            within: Duration::from_secs(10),
        })
        .child(inner.into_child().backoff(Backoff::none()))
        .start()
        .await;

    let reason = tokio::time::timeout(Duration::from_secs(60), root.wait())
        .await
        .expect("the root gives up instead of looping");
    let ExitReason::Escalated { reason } = reason else {
        panic!("expected escalation, got {reason:?}");
    };
    assert!(reason.contains("inner in outer"), "{reason}");
    // Inner run 1: 1 start + 2 restarts, then gives up; outer restarts inner once (run 2: 3
    // more starts); inner gives up again and outer exceeds its own intensity.
    assert_eq!(p.runs(), 6);
}

// ---------------------------------------------------------------------------------------------
// Backoff.

#[tokio::test(start_paused = true)]
async fn backoff_doubles_between_restarts_and_is_capped() {
    let p = Probe::new();
    *p.fail_start.lock() = Some(Failure::retryable("not yet"));
    let (_a, spec) = Worker::spec("flaky", &p);
    let spec = spec.backoff(Backoff {
        initial: Duration::from_millis(100),
        multiplier: 2.0,
        max: Duration::from_millis(500),
        jitter: 0.0,
        reset_after: Duration::from_secs(60),
    });
    let root = Supervisor::new("root")
        .intensity(Intensity {
            max_restarts: 100,
            within: Duration::from_secs(60),
        })
        .child(spec)
        .start()
        .await;
    tokio::time::sleep(Duration::from_millis(100 + 200 + 400 + 500 + 500 + 50)).await;
    let starts = p.started_at.lock().clone();
    let gaps: Vec<u128> = starts
        .windows(2)
        .map(|w| (w[1] - w[0]).as_millis())
        .collect();
    assert_eq!(gaps, vec![100, 200, 400, 500, 500]);
    root.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn jittered_backoff_is_reproducible_from_a_seed() {
    async fn gaps(seed: u64) -> Vec<u128> {
        let p = Probe::new();
        *p.fail_start.lock() = Some(Failure::retryable("not yet"));
        let (_a, spec) = Worker::spec("flaky", &p);
        let root = Supervisor::new("root")
            .seed(seed)
            .intensity(Intensity {
                max_restarts: 100,
                within: Duration::from_secs(60),
            })
            .child(spec.backoff(Backoff {
                jitter: 0.5,
                ..Backoff::default()
            }))
            .start()
            .await;
        tokio::time::sleep(Duration::from_secs(5)).await;
        root.shutdown().await;
        let starts = p.started_at.lock().clone();
        starts
            .windows(2)
            .map(|w| (w[1] - w[0]).as_millis())
            .collect()
    }
    let first = gaps(7).await;
    assert_eq!(first, gaps(7).await);
    assert!(first.len() >= 4);
    for (i, gap) in first.iter().enumerate() {
        let base = 100u128 << i;
        assert!(
            *gap >= base / 2 && *gap <= base * 3 / 2 + 1,
            "gap {i}: {gap}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Panic isolation.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_reply_arrives_while_a_sibling_panics_repeatedly() {
    quiet_panics();
    let (ph, pp) = (Probe::new(), Probe::new());
    let (healthy, sh) = Worker::spec("healthy", &ph);
    let (crasher, sc) = Worker::spec("crasher", &pp);
    let root = Supervisor::new("root")
        .intensity(Intensity {
            max_restarts: 100_000,
            within: Duration::from_secs(1),
        })
        .child(sh)
        .child(sc)
        .start()
        .await;

    let crasher_again = crasher.clone();
    let panics = tokio::spawn(async move {
        let mut panicked = 0;
        for _ in 0..300 {
            if let Err(CallError::Panicked(_)) = crasher.call(Boom).await {
                panicked += 1;
            }
        }
        panicked
    });
    let mut callers = Vec::new();
    for _ in 0..4 {
        let healthy = healthy.clone();
        callers.push(tokio::spawn(async move {
            let mut replies = Vec::with_capacity(250);
            for _ in 0..250 {
                replies.push(healthy.call(Incr).await.expect("healthy actor answers"));
            }
            replies
        }));
    }
    let mut all = Vec::new();
    for caller in callers {
        all.extend(caller.await.unwrap());
    }
    all.sort_unstable();
    assert_eq!(
        all,
        (1..=1000).collect::<Vec<u64>>(),
        "every reply, exactly once"
    );
    assert_eq!(panics.await.unwrap(), 300);
    assert_eq!(crasher_again.call(Incr).await, Ok(1));
    assert_eq!(ph.runs(), 1);
    assert_eq!(pp.runs(), 301);
    root.shutdown().await;
}

#[tokio::test]
async fn messages_queued_behind_a_panic_are_handled_after_the_restart() {
    quiet_panics();
    let p = Probe::new();
    let (a, spec) = Worker::spec("a", &p);
    let root = Supervisor::new("root").child(spec).start().await;
    a.send(Boom).await.unwrap();
    let calls: Vec<_> = (0..9).map(|_| a.call(Incr)).collect();
    let replies = futures_util::future::join_all(calls).await;
    assert_eq!(replies, (1..=9).map(Ok).collect::<Vec<_>>());
    assert_eq!(p.runs(), 2);
    root.shutdown().await;
}

#[tokio::test]
async fn an_immediate_handler_answers_without_a_future_or_hands_the_message_to_handle() {
    let p = Probe::new();
    let (a, spec) = Worker::spec("a", &p);
    let root = Supervisor::new("root").child(spec).start().await;
    assert_eq!(a.call(Incr).await, Ok(1));
    assert_eq!(a.call(Now(true)).await, Ok(1), "answered by handle_now");
    assert_eq!(a.call(Now(false)).await, Ok(1001), "handed back to handle");
    a.send(Now(true)).await.unwrap();
    assert_eq!(
        a.call(Incr).await,
        Ok(2),
        "a one-way immediate message is handled in order"
    );
    root.shutdown().await;
}

#[tokio::test]
async fn a_panic_in_an_immediate_handler_fails_only_that_actor_and_loses_nothing_queued() {
    quiet_panics();
    let Siblings { pa, pb, a, b, root } = Siblings::start().await;
    assert_eq!(b.call(Incr).await, Ok(1));
    match a.call(BoomNow).await {
        Err(CallError::Panicked(message)) => assert_eq!(message, "boom"),
        other => panic!("a typed panic error, not {other:?}"),
    }
    a.send(BoomNow).await.unwrap();
    let calls: Vec<_> = (0..5).map(|_| a.call(Incr)).collect();
    let replies = futures_util::future::join_all(calls).await;
    assert_eq!(replies, (1..=5).map(Ok).collect::<Vec<_>>());
    assert_eq!(pa.runs(), 3, "restarted after each panic");
    assert_eq!(b.call(Incr).await, Ok(2), "the sibling kept its state");
    assert_eq!(pb.runs(), 1);
    root.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Stuck detection.

#[tokio::test(start_paused = true)]
async fn a_handler_past_its_deadline_is_cancelled_and_the_actor_restarted() {
    let p = Probe::new();
    let (a, spec) = Worker::spec("llm", &p);
    let root = Supervisor::new("root").child(spec).start().await;
    assert_eq!(a.call(Incr).await, Ok(1));
    let started = Instant::now();
    assert_eq!(
        a.call(Hang(Duration::from_secs(3600))).await,
        Err(CallError::Stuck(Duration::from_secs(1)))
    );
    assert_eq!(started.elapsed(), Duration::from_secs(1));
    assert_eq!(a.call(Incr).await, Ok(1), "restarted with fresh state");
    assert_eq!(p.runs(), 2);
    let node = root.registry().snapshot();
    let node = node.find("root/llm").unwrap();
    assert_eq!(node.restarts, 1);
    assert!(
        node.last_error
            .as_deref()
            .unwrap()
            .starts_with("stuck: handler for")
    );
    root.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Mailboxes.

#[tokio::test(start_paused = true)]
async fn a_full_mailbox_pushes_back() {
    let gate = Arc::new(Notify::new());
    let g = gate.clone();
    let p = Probe::new();
    let (a, spec) = ChildSpec::actor_with_capacity("slow", 2, move || Worker {
        name: "slow",
        probe: p.clone(),
        count: 0,
        gate: Some(g.clone()),
    });
    let root = Supervisor::new("root").child(spec).start().await;

    a.send(Blocked).await.unwrap(); // taken by the actor, which now waits on the gate
    tokio::task::yield_now().await;
    a.try_send(Blocked).unwrap();
    a.try_send(Blocked).unwrap();
    assert_eq!(a.depth(), 2);
    match a.try_send(Incr) {
        Err(TrySendError::Full(Incr)) => {}
        other => panic!("expected Full, got {other:?}"),
    }
    // `send` waits while full…
    let waiting = tokio::time::timeout(Duration::from_secs(5), a.send(Incr)).await;
    assert!(waiting.is_err(), "send must wait for room");
    // …and goes through once the actor drains.
    gate.notify_one();
    a.send(Incr).await.unwrap();
    gate.notify_one();
    gate.notify_one();
    assert_eq!(a.call(Incr).await, Ok(2));
    root.shutdown().await;
}

#[tokio::test]
async fn a_flooded_actor_still_lets_its_neighbours_run() {
    const FLOOD: usize = 10_000;
    let p = Probe::new();
    let probe = p.clone();
    let (a, spec) = ChildSpec::actor_with_capacity("flooded", FLOOD, move || Worker {
        name: "flooded",
        probe: probe.clone(),
        count: 0,
        gate: None,
    });
    let root = Supervisor::new("root").child(spec).start().await;
    for _ in 0..FLOOD {
        a.try_send(Incr).unwrap();
    }
    // One thread: the neighbour runs only when the flooded actor yields. Its handler never
    // waits, so only the run loop's fair share (128 in a row) makes it yield.
    let probe = p.clone();
    let neighbour = tokio::spawn(async move { probe.handled.load(Ordering::SeqCst) });
    let handled_when_the_neighbour_ran = neighbour.await.unwrap();
    assert!(
        handled_when_the_neighbour_ran < FLOOD / 10,
        "the neighbour waited for {handled_when_the_neighbour_ran} messages"
    );
    assert_eq!(a.call(Incr).await, Ok(FLOOD as u64 + 1), "nothing was lost");
    root.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Shutdown.

#[tokio::test]
async fn children_start_in_order_and_stop_in_reverse() {
    let journal = Arc::new(Mutex::new(Vec::new()));
    let mut sup = Supervisor::new("root");
    let inner_probe = Probe::with_journal(journal.clone());
    let (_x, sx) = Worker::spec("x", &inner_probe);
    for name in ["a", "b"] {
        let (_addr, spec) = Worker::spec(name, &Probe::with_journal(journal.clone()));
        sup = sup.child(spec);
    }
    sup = sup.child(Supervisor::new("nested").child(sx).into_child());
    let (_c, sc) = Worker::spec("c", &Probe::with_journal(journal.clone()));
    let root = sup.child(sc).start().await;
    assert_eq!(root.shutdown().await, ExitReason::Shutdown);
    assert_eq!(
        *journal.lock(),
        [
            "start a", "start b", "start x", "start c", "stop c", "stop x", "stop b", "stop a"
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_child_that_will_not_stop_is_killed_after_its_deadline() {
    let p = Probe::new();
    let (a, spec) = Worker::spec("wedged", &p);
    let root = Supervisor::new("root")
        .child(spec.shutdown(Duration::from_secs(2)).deadline(None))
        .start()
        .await;
    a.send(Sleep(Duration::from_secs(3600))).await.unwrap();
    tokio::task::yield_now().await;
    let started = Instant::now();
    assert_eq!(root.shutdown().await, ExitReason::Shutdown);
    assert_eq!(started.elapsed(), Duration::from_secs(2));
}

// ---------------------------------------------------------------------------------------------
// Dynamic children.

#[tokio::test]
async fn dynamic_children_start_and_terminate_at_run_time() {
    let root = Supervisor::new("sessions").start().await;
    let sessions = root.supervisor();
    let p = Probe::new();
    let (a, spec) = Worker::spec("session/1", &p);
    let id = sessions.start_child(spec).await.unwrap();
    assert_eq!(a.call(Incr).await, Ok(1));

    let (_dup, dup) = Worker::spec("session/1", &p);
    let err = sessions.start_child(dup).await.unwrap_err();
    assert!(err.to_string().contains("already running"), "{err}");

    assert_eq!(root.registry().snapshot().roots[0].children.len(), 1);
    sessions.terminate_child(id).await.unwrap();
    assert_eq!(a.call(Incr).await, Err(CallError::Closed));
    assert!(root.registry().snapshot().roots[0].children.is_empty());
    assert!(sessions.terminate_child(id).await.is_err());
    root.shutdown().await;
}

#[tokio::test]
async fn a_follower_starts_when_its_live_namesake_ends() {
    let root = Supervisor::new("workflows").start().await;
    let workflows = root.supervisor();
    let first = Probe::new();
    let (a, spec) = Worker::spec("task/1", &first);
    let spec = spec.restart(Restart::Transient);
    assert!(matches!(
        workflows.start_child_or_follow(spec).await.unwrap(),
        ChildStart::Now(_)
    ));

    // Asked for while the first still runs (say, on its way out): it follows.
    let second = Probe::new();
    let (b, follower) = Worker::spec("task/1", &second);
    assert_eq!(
        workflows.start_child_or_follow(follower).await.unwrap(),
        ChildStart::AfterNamesake
    );
    let (_c, redundant) = Worker::spec("task/1", &Probe::new());
    assert_eq!(
        workflows.start_child_or_follow(redundant).await.unwrap(),
        ChildStart::AfterNamesake,
        "one follower per name; a second is dropped"
    );
    assert_eq!(second.runs(), 0, "not while the namesake lives");

    a.call(Exit(None)).await.unwrap();
    assert_eq!(b.call(Incr).await, Ok(1), "the follower took over");
    assert_eq!(second.runs(), 1);
    let names: Vec<_> = root.registry().snapshot().roots[0]
        .children
        .iter()
        .map(|c| c.name.to_string())
        .collect();
    assert_eq!(names, ["task/1"]);
    root.shutdown().await;
}

#[tokio::test]
async fn an_operator_restart_resets_the_child() {
    let p = Probe::new();
    let (a, spec) = Worker::spec("a", &p);
    let root = Supervisor::new("root").child(spec).start().await;
    assert_eq!(a.call(Incr).await, Ok(1));
    let id = root.registry().snapshot().find("root/a").unwrap().id;
    root.supervisor().restart_child(id).await.unwrap();
    assert_eq!(a.call(Incr).await, Ok(1));
    assert_eq!(root.registry().node(id).unwrap().restarts, 1);
    root.shutdown().await;
}

#[tokio::test]
async fn the_registry_restarts_and_stops_any_node_by_id_at_any_depth() {
    let (pa, pb) = (Probe::new(), Probe::new());
    let (a, sa) = Worker::spec("a", &pa);
    let (b, sb) = Worker::spec("b", &pb);
    let root = Supervisor::new("root")
        .child(Supervisor::new("inner").child(sa).child(sb).into_child())
        .start()
        .await;
    let registry = root.registry().clone();
    assert_eq!(a.call(Incr).await, Ok(1));
    assert_eq!(b.call(Incr).await, Ok(1));
    let id_a = registry.snapshot().find("root/inner/a").unwrap().id;
    let id_b = registry.snapshot().find("root/inner/b").unwrap().id;

    registry.restart_node(id_a).await.unwrap();
    assert_eq!(a.call(Incr).await, Ok(1), "a restarted: its state is fresh");
    assert_eq!(b.call(Incr).await, Ok(2), "its sibling is untouched");
    assert_eq!(registry.node(id_a).unwrap().restarts, 1);

    registry.stop_node(id_b).await.unwrap();
    assert_eq!(b.call(Incr).await, Err(CallError::Closed));
    assert_eq!(
        registry.node(id_b).unwrap().status,
        NodeStatus::Stopped,
        "a stopped static child stays in the tree, stopped"
    );
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        b.call(Incr).await,
        Err(CallError::Closed),
        "and is not restarted"
    );

    let root_id = registry.snapshot().roots[0].id;
    assert!(
        registry.stop_node(root_id).await.is_err(),
        "a root has no supervisor"
    );
    root.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// The tree snapshot.

#[tokio::test(start_paused = true)]
async fn the_snapshot_shows_every_node_with_its_live_state() {
    quiet_panics();
    let gate = Arc::new(Notify::new());
    let (pa, pq) = (Probe::new(), Probe::new());
    let (a, sa) = Worker::spec("crashy", &pa);
    let g = gate.clone();
    let pqc = pq.clone();
    let (q, sq) = ChildSpec::actor_with_capacity("queue", 8, move || Worker {
        name: "queue",
        probe: pqc.clone(),
        count: 0,
        gate: Some(g.clone()),
    });
    let root = Supervisor::new("artel")
        .child(
            Supervisor::new("gateways")
                .strategy(Strategy::RestForOne)
                .child(sa.role("gateway"))
                .into_child(),
        )
        .child(sq)
        .start()
        .await;

    let _ = a.call(Boom).await;
    q.send(Blocked).await.unwrap();
    tokio::task::yield_now().await;
    q.send(Incr).await.unwrap();
    q.send(Incr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let snap = root.registry().snapshot();
    let artel = &snap.roots[0];
    assert_eq!(
        (artel.name.as_str(), artel.kind),
        ("artel", NodeKind::Supervisor)
    );
    assert_eq!(artel.detail.as_deref(), Some("one_for_one"));
    assert_eq!(
        artel
            .children
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>(),
        ["gateways", "queue"]
    );
    let gateways = snap.find("artel/gateways").unwrap();
    assert_eq!(gateways.detail.as_deref(), Some("rest_for_one"));
    let crashy = snap.find("artel/gateways/crashy").unwrap();
    assert_eq!(crashy.role, "gateway");
    assert_eq!(crashy.status, NodeStatus::Running);
    assert_eq!(crashy.restarts, 1);
    assert_eq!(crashy.last_error.as_deref(), Some("panicked: boom"));
    assert_eq!(crashy.mailbox_capacity, Some(64));
    let queue = snap.find("artel/queue").unwrap();
    assert_eq!(queue.role, "Worker");
    assert_eq!(
        (queue.mailbox_depth, queue.mailbox_capacity),
        (Some(2), Some(8))
    );
    assert!(queue.uptime_ms.unwrap() >= 1500);
    assert_eq!(queue.restarts, 0);

    let json = serde_json::to_value(&snap).unwrap();
    let node = &json["roots"][0]["children"][1];
    for key in [
        "id",
        "name",
        "role",
        "kind",
        "status",
        "restarts",
        "last_error",
        "mailbox_depth",
        "uptime_ms",
        "children",
    ] {
        assert!(node.get(key).is_some(), "snapshot JSON lacks {key}: {node}");
    }
    assert_eq!(node["status"], "running");
    let text = snap.render();
    assert!(text.starts_with("artel  [one_for_one]  running"), "{text}");
    assert!(text.contains("│   └── crashy  gateway  running"), "{text}");
    assert!(text.contains("└── queue  Worker  running"), "{text}");
    assert!(text.contains("mailbox 2/8"), "{text}");
    gate.notify_one();
    root.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Tracing.

#[tokio::test]
async fn the_handler_runs_inside_the_senders_span() {
    use tracing_subscriber::layer::{Context as LayerContext, SubscriberExt};
    use tracing_subscriber::registry::LookupSpan;

    #[derive(Clone, Default)]
    struct Scopes(Arc<Mutex<Vec<Vec<String>>>>);
    impl<S> tracing_subscriber::Layer<S> for Scopes
    where
        S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    {
        fn on_event(&self, event: &tracing::Event<'_>, ctx: LayerContext<'_, S>) {
            if event.metadata().target() != "handler_probe" {
                return;
            }
            let names = ctx
                .event_scope(event)
                .map(|scope| scope.from_root().map(|s| s.name().to_owned()).collect())
                .unwrap_or_default();
            self.0.lock().push(names);
        }
    }

    struct Traced;
    impl Actor for Traced {}
    struct Ping;
    impl Request for Ping {
        type Reply = ();
    }
    impl Handler<Ping> for Traced {
        async fn handle(&mut self, _msg: Ping, _ctx: &mut Context<Self>) {
            tracing::info!(target: "handler_probe", "handling");
        }
    }

    let scopes = Scopes::default();
    let subscriber = tracing_subscriber::registry().with(scopes.clone());
    let _guard = tracing::subscriber::set_default(subscriber);
    let (addr, spec) = ChildSpec::actor("traced", || Traced);
    let root = Supervisor::new("root").child(spec).start().await;
    let request = tracing::info_span!("http_request", id = 7);
    tracing::Instrument::instrument(async { addr.call(Ping).await.unwrap() }, request).await;
    root.shutdown().await;
    assert_eq!(
        *scopes.0.lock(),
        vec![vec!["http_request".to_owned(), "handle".to_owned()]]
    );
}

// ---------------------------------------------------------------------------------------------
// Timers and closed mailboxes.

#[tokio::test(start_paused = true)]
async fn timers_belong_to_one_run_and_die_with_it() {
    quiet_panics();
    struct Ticking {
        ticks: Arc<AtomicUsize>,
    }
    impl Actor for Ticking {
        async fn started(&mut self, ctx: &mut Context<Self>) -> Result<(), Failure> {
            ctx.every(Duration::from_millis(100), || Tock);
            Ok(())
        }
    }
    #[derive(Debug)]
    struct Tock;
    impl Request for Tock {
        type Reply = ();
    }
    impl Handler<Tock> for Ticking {
        async fn handle(&mut self, _msg: Tock, _ctx: &mut Context<Self>) {
            self.ticks.fetch_add(1, Ordering::SeqCst);
        }
    }
    impl Handler<Boom> for Ticking {
        async fn handle(&mut self, _msg: Boom, _ctx: &mut Context<Self>) {
            panic!("boom");
        }
    }

    let ticks = Arc::new(AtomicUsize::new(0));
    let t = ticks.clone();
    let (addr, spec) = ChildSpec::actor("ticking", move || Ticking { ticks: t.clone() });
    let root = Supervisor::new("root")
        .child(spec.backoff(Backoff::none()))
        .start()
        .await;
    tokio::time::sleep(Duration::from_millis(1050)).await;
    assert_eq!(ticks.load(Ordering::SeqCst), 10);
    let _ = addr.call(Boom).await;
    ticks.store(0, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(1050)).await;
    // One timer (the new run's), not two: the old run's timer died with it.
    assert_eq!(ticks.load(Ordering::SeqCst), 10);
    root.shutdown().await;
}

#[tokio::test]
async fn a_closed_mailbox_hands_the_message_back() {
    let p = Probe::new();
    let (a, spec) = Worker::spec("a", &p);
    let root = Supervisor::new("root")
        .child(spec.restart(Restart::Temporary))
        .start()
        .await;
    a.call(Exit(None)).await.unwrap();
    // The exit is handled by the supervisor asynchronously; wait until the mailbox closes.
    while !a.is_closed() {
        tokio::task::yield_now().await;
    }
    let back = a.send(Incr).await.unwrap_err();
    assert!(matches!(back.0, Incr));
    assert!(matches!(a.try_send(Incr), Err(TrySendError::Closed(Incr))));
    root.shutdown().await;
}

#[tokio::test]
async fn shutting_down_the_root_stops_everything_and_closes_nothing_early() {
    let p = Probe::new();
    let (a, spec) = Worker::spec("a", &p);
    let root = Supervisor::new("root").child(spec).start().await;
    let registry = root.registry().clone();
    assert_eq!(root.shutdown().await, ExitReason::Shutdown);
    let snap = registry.snapshot();
    assert_eq!(snap.roots[0].status, NodeStatus::Stopped);
    assert!(snap.roots[0].children.is_empty());
    drop(registry);
    // With the tree gone, its mailboxes are gone: calls fail fast instead of hanging.
    assert_eq!(a.call(Incr).await, Err(CallError::Closed));
}

#[tokio::test(start_paused = true)]
async fn a_child_terminated_during_its_backoff_stays_down() {
    let p = Probe::new();
    *p.fail_start.lock() = Some(Failure::retryable("not yet"));
    let (_a, spec) = Worker::spec("flaky", &p);
    let root = Supervisor::new("root")
        .child(spec.backoff(Backoff {
            initial: Duration::from_secs(1),
            jitter: 0.0,
            ..Backoff::default()
        }))
        .start()
        .await;
    let id = root.registry().snapshot().find("root/flaky").unwrap().id;
    assert_eq!(
        root.registry().node(id).unwrap().status,
        NodeStatus::Restarting
    );
    root.supervisor().terminate_child(id).await.unwrap();
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(p.runs(), 1, "not started again after termination");
    assert_eq!(
        root.registry().node(id).unwrap().status,
        NodeStatus::Stopped
    );
    root.shutdown().await;
}

#[tokio::test]
async fn thousands_of_dynamic_children_start_and_stop() {
    let root = Supervisor::new("sessions").start().await;
    let sessions = root.supervisor();
    let p = Probe::new();
    let mut ids = Vec::new();
    for i in 0..2_000 {
        let (_addr, spec) = ChildSpec::actor(format!("session/{i}"), {
            let p = p.clone();
            move || Worker {
                name: "session",
                probe: p.clone(),
                count: 0,
                gate: None,
            }
        });
        ids.push(sessions.start_child(spec).await.unwrap());
    }
    assert_eq!(p.runs(), 2_000);
    assert_eq!(root.registry().len(), 2_001);
    for id in ids {
        sessions.terminate_child(id).await.unwrap();
    }
    assert_eq!(root.registry().len(), 1);
    root.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Significant children, deferred replies, labels and backlog.

#[tokio::test]
async fn a_supervisor_ends_with_its_significant_child_and_stops_the_rest() {
    let root = Supervisor::new("tasks").start().await;
    let tasks = root.supervisor();
    let (driver_probe, helper_probe) = (Probe::new(), Probe::new());
    let (driver, driver_spec) = Worker::spec("driver", &driver_probe);
    let (helper, helper_spec) = Worker::spec("helper", &helper_probe);
    let unit = Supervisor::new("task/1")
        .child(driver_spec.restart(Restart::Transient).significant())
        .child(helper_spec)
        .into_child()
        .restart(Restart::Transient);
    tasks.start_child(unit).await.unwrap();
    assert_eq!(helper.call(Incr).await, Ok(1));

    // A failure of the driver restarts it; the unit goes on.
    driver
        .call(Exit(Some(Failure::retryable("flaky"))))
        .await
        .unwrap();
    assert_eq!(driver.call(Incr).await, Ok(1));
    assert_eq!(driver_probe.runs(), 2);
    assert!(
        root.registry()
            .snapshot()
            .find("tasks/task/1/helper")
            .is_some()
    );

    // Its normal end is the unit's: the helper stops and the unit leaves the tree.
    driver.call(Exit(None)).await.unwrap();
    let until = Instant::now() + Duration::from_secs(5);
    while !root.registry().snapshot().roots[0].children.is_empty() {
        assert!(
            Instant::now() < until,
            "the unit did not end with its driver"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(helper.call(Incr).await, Err(CallError::Closed));
    assert_eq!(
        helper_probe.runs(),
        1,
        "the helper was stopped, not restarted"
    );
    root.shutdown().await;
}

/// Admits a `Sleep` at once and answers it from work beside the actor.
impl Handler<artel_supervisors::Deferred<Sleep>> for Worker {
    async fn handle(
        &mut self,
        msg: artel_supervisors::Deferred<Sleep>,
        ctx: &mut Context<Self>,
    ) -> artel_supervisors::Later<()> {
        self.probe.handled.fetch_add(1, Ordering::SeqCst);
        let Sleep(delay) = msg.0;
        ctx.spawn_reply(async move { tokio::time::sleep(delay).await })
    }
}

#[tokio::test(start_paused = true)]
async fn deferred_work_runs_side_by_side_and_dies_with_the_run() {
    let p = Probe::new();
    let (a, spec) = Worker::spec("gate", &p);
    let root = Supervisor::new("root").child(spec).start().await;
    let started = Instant::now();
    // Three 10 s jobs through one mailbox finish in 10 s, not 30 s, and the actor stays free.
    let jobs = futures_util::future::join_all(
        (0..3).map(|_| a.call_later(Sleep(Duration::from_secs(10)))),
    );
    let (answers, count) = tokio::join!(jobs, async {
        tokio::task::yield_now().await;
        a.call(Incr).await
    });
    assert!(answers.iter().all(Result::is_ok), "{answers:?}");
    assert_eq!(count, Ok(1), "the actor answered while the work ran");
    assert!(started.elapsed() < Duration::from_secs(11));

    // Work in flight when the run ends is dropped: its caller hears Stopped.
    let pending = tokio::spawn({
        let a = a.clone();
        async move { a.call_later(Sleep(Duration::from_secs(60))).await }
    });
    tokio::time::sleep(Duration::from_millis(10)).await;
    a.call(Exit(Some(Failure::retryable("restart"))))
        .await
        .unwrap();
    assert_eq!(pending.await.unwrap(), Err(CallError::Stopped));
    root.shutdown().await;
}

#[tokio::test]
async fn labels_and_backlog_show_in_the_snapshot_and_find_walks_names_with_slashes() {
    let p = Probe::new();
    let queued = Arc::new(AtomicUsize::new(2));
    let (_a, spec) = Worker::spec("developer", &p);
    let spec = spec
        .label("task", "t1")
        .label("project", "p1")
        .label("task", "t2")
        .backlog({
            let queued = queued.clone();
            move || queued.load(Ordering::SeqCst)
        });
    let root = Supervisor::new("tasks")
        .child(Supervisor::new("engineering/t2").child(spec).into_child())
        .start()
        .await;
    let tree = root.registry().snapshot();
    let node = tree
        .find("tasks/engineering/t2/developer")
        .expect("a child whose name holds a slash is found by its path");
    assert_eq!(node.labels.get("task").map(String::as_str), Some("t2"));
    assert_eq!(node.labels.get("project").map(String::as_str), Some("p1"));
    assert_eq!(node.backlog, Some(2));
    queued.store(5, Ordering::SeqCst);
    let tree = root.registry().snapshot();
    assert_eq!(
        tree.find("tasks/engineering/t2/developer").unwrap().backlog,
        Some(5)
    );
    assert!(tree.render().contains("queued 5"), "{}", tree.render());
    assert!(tree.find("tasks/engineering").is_none());
    root.shutdown().await;
}
