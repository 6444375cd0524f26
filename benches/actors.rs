//! # What supervision costs: artel's supervised actors against bare actix and bare tokio
//!
//! artel's actors run under `artel-supervisors`: every message goes through a bounded, typed
//! mailbox, is boxed as a type-erased envelope, carries the sender's tracing span, and is
//! handled under `catch_unwind` and a stuck-detection deadline; every actor is a child in a
//! supervision tree with a registry entry. This bench prices that against the two things we
//! could have used instead, on the **same runtime kind** for fairness: one `actix_rt::System`
//! (a current-thread tokio runtime with a `LocalSet`). artel actors are spawned inside it, so
//! their `tokio::spawn` lands on the same thread as the actix actors.
//!
//! Criterion groups (run with `cargo bench -p artel-benches --bench actors`):
//! 1. `request_reply` — one request, one `u64` reply, from the `block_on` future:
//!    artel `Addr::call` vs actix `Addr::send(..).await` vs a tokio mpsc pair (a task receiving
//!    `(msg, oneshot::Sender)` and replying).
//! 2. `fire_and_forget` — a batch of [`BATCH`] one-way messages then one request-reply as a
//!    barrier: artel `Addr::send` vs actix `do_send` vs tokio mpsc `send`.
//! 3. `spawn` — cost per actor: an artel dynamic child via `SupervisorRef::start_child` (which,
//!    like OTP, returns once the child is up) into a fresh supervisor, [`SPAWN_CHUNK`] at a
//!    time, vs actix `Actor::start()` (plus the first poll that runs its `started`, so deferred
//!    work is not hidden).
//!
//! Then `main` runs its own pass, so that ratios come from one run of one binary:
//! - a self-timed pass (best of 3) of request-reply and fire-and-forget for all three, printing
//!   msgs/s and the ratios artel÷actix and artel÷tokio; request-reply is also timed from inside
//!   a task on the callee's own scheduler (actor-to-actor), where no runtime wake-up is paid,
//!   and for an artel actor with `deadline(None)` (what the per-message stuck timer costs);
//! - a contended pass: [`PRODUCERS`] tasks on a 2-worker multi-thread tokio runtime (artel's
//!   production runtime) each send a batch of one-way messages to one consumer, then one
//!   request-reply as a barrier — artel `send` vs tokio mpsc `send` (both consumers on the same
//!   runtime) vs actix `do_send` (its actor on an `Arbiter` thread of its own), so senders on
//!   several threads fight over one mailbox;
//! - resident memory per idle actor, each layout measured in a fresh child process of this
//!   binary (`VmRSS` from `/proc/self/status` before and after) so that none reuses heap that
//!   another or criterion freed, with spawn wall time per actor:
//!   100,000 idle artel actors as dynamic children of 1,000 supervisors (100 siblings each);
//!   10,000 as dynamic children of one supervisor (`ARTEL_BENCH_FLAT_IDLE=100000` for the full
//!   100,000);
//!   100,000 idle actix actors.
//!
//! The closing summary prints those figures against the targets, with criterion's medians of
//! this run (read back from its `estimates.json`) and their ratios.
//!
//! The targets: supervision costs ≤ 10 % of bare actix's throughput, spawning an actor
//! takes ≤ 10 µs, an idle actor holds ≤ 16 KiB.
//!
//! Under `--test` (`cargo test --benches`, `cargo bench -- --test`) the main pass runs with
//! small counts; `ARTEL_BENCH_QUICK=1` skips it altogether; `--list` skips it.

use artel_supervisors::{ChildSpec, Supervisor};
use criterion::{BenchmarkId, Criterion, Throughput};
use std::hint::black_box;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// One-way messages per fire-and-forget iteration (followed by one request-reply barrier).
const BATCH: u64 = 1_000;
/// Mailbox bound for the artel actor and the tokio channel (artel's default).
const MAILBOX: usize = artel_supervisors::spec::DEFAULT_MAILBOX_CAPACITY;
/// Actors spawned into one fresh supervisor in the spawn bench (few siblings: base cost).
const SPAWN_CHUNK: u64 = 100;
/// Environment variable that makes this binary a memory-measuring child process.
const CHILD_ENV: &str = "ARTEL_BENCH_MEMORY_CHILD";

// ---------------------------------------------------------------------------------------------
// Messages and actors, once per runtime.

/// A request answered with a `u64`.
struct Ping(u64);

/// A one-way message.
struct Tick(u64);

impl artel_messages::Request for Ping {
    type Reply = u64;
}

impl artel_messages::Request for Tick {
    type Reply = ();
}

impl actix::Message for Ping {
    type Result = u64;
}

impl actix::Message for Tick {
    type Result = ();
}

/// The no-op-ish actor: folds what it is sent into a sum and answers it.
#[derive(Default)]
struct Echo {
    sum: u64,
}

impl artel_supervisors::Actor for Echo {}

// `Echo`'s handlers never wait, so they answer in `handle_now`, as actix's sync handlers do
// (like for like); `AsyncOnlyEcho` below is the same actor with async handlers only.
impl artel_supervisors::Handler<Ping> for Echo {
    async fn handle(&mut self, msg: Ping, _ctx: &mut artel_supervisors::Context<Self>) -> u64 {
        self.sum = self.sum.wrapping_add(msg.0);
        self.sum
    }

    fn handle_now(
        &mut self,
        msg: Ping,
        _ctx: &mut artel_supervisors::Context<Self>,
    ) -> Result<u64, Ping> {
        self.sum = self.sum.wrapping_add(msg.0);
        Ok(self.sum)
    }
}

impl artel_supervisors::Handler<Tick> for Echo {
    async fn handle(&mut self, msg: Tick, _ctx: &mut artel_supervisors::Context<Self>) {
        self.sum = self.sum.wrapping_add(msg.0);
    }

    fn handle_now(
        &mut self,
        msg: Tick,
        _ctx: &mut artel_supervisors::Context<Self>,
    ) -> Result<(), Tick> {
        self.sum = self.sum.wrapping_add(msg.0);
        Ok(())
    }
}

/// artel's `Echo` with async handlers only: every message is a boxed handler future, the
/// model actix's `AtomicResponse` (`AsyncEcho`) is compared with.
#[derive(Default)]
struct AsyncOnlyEcho {
    sum: u64,
}

impl artel_supervisors::Actor for AsyncOnlyEcho {}

impl artel_supervisors::Handler<Ping> for AsyncOnlyEcho {
    async fn handle(&mut self, msg: Ping, _ctx: &mut artel_supervisors::Context<Self>) -> u64 {
        self.sum = self.sum.wrapping_add(msg.0);
        self.sum
    }
}

impl actix::Actor for Echo {
    type Context = actix::Context<Self>;
}

impl actix::Handler<Ping> for Echo {
    type Result = u64;
    fn handle(&mut self, msg: Ping, _ctx: &mut actix::Context<Self>) -> u64 {
        self.sum = self.sum.wrapping_add(msg.0);
        self.sum
    }
}

impl actix::Handler<Tick> for Echo {
    type Result = ();
    fn handle(&mut self, msg: Tick, _ctx: &mut actix::Context<Self>) {
        self.sum = self.sum.wrapping_add(msg.0);
    }
}

/// The actix actor whose handler is async with access to its state after an await — what
/// every artel handler is. actix's way to write that is `AtomicResponse` over an
/// `ActorFuture`, which boxes a future per message, as artel does.
#[derive(Default)]
struct AsyncEcho {
    sum: u64,
}

impl actix::Actor for AsyncEcho {
    type Context = actix::Context<Self>;
}

impl actix::Handler<Ping> for AsyncEcho {
    type Result = actix::AtomicResponse<Self, u64>;
    fn handle(&mut self, msg: Ping, _ctx: &mut actix::Context<Self>) -> Self::Result {
        use actix::{ActorFutureExt as _, WrapFuture as _};
        actix::AtomicResponse::new(Box::pin(async move { msg.0 }.into_actor(self).map(
            |n, act: &mut AsyncEcho, _ctx| {
                act.sum = act.sum.wrapping_add(n);
                act.sum
            },
        )))
    }
}

/// What the tokio mpsc "actor" receives.
enum Mail {
    Ping(u64, oneshot::Sender<u64>),
    Tick(u64),
}

/// A bare tokio task with a bounded channel: the floor under any actor runtime.
fn spawn_tokio_echo() -> mpsc::Sender<Mail> {
    let (tx, mut rx) = mpsc::channel::<Mail>(MAILBOX);
    tokio::spawn(async move {
        let mut sum = 0u64;
        while let Some(mail) = rx.recv().await {
            match mail {
                Mail::Ping(n, reply) => {
                    sum = sum.wrapping_add(n);
                    let _ = reply.send(sum);
                }
                Mail::Tick(n) => sum = sum.wrapping_add(n),
            }
        }
    });
    tx
}

async fn tokio_call(tx: &mpsc::Sender<Mail>, n: u64) -> u64 {
    let (reply, answer) = oneshot::channel();
    tx.send(Mail::Ping(n, reply))
        .await
        .expect("tokio echo is up");
    answer.await.expect("tokio echo replies")
}

/// The three contenders, set up once inside one `System`.
struct Contenders {
    artel: artel_supervisors::Addr<Echo>,
    /// artel with async handlers only (a boxed future per message).
    artel_async: artel_supervisors::Addr<AsyncOnlyEcho>,
    actix: actix::Addr<Echo>,
    /// actix with an async handler (`AtomicResponse`), artel's handler model.
    actix_async: actix::Addr<AsyncEcho>,
    tokio: mpsc::Sender<Mail>,
    /// Keeps artel's tree up.
    root: artel_supervisors::SupervisorHandle,
}

impl Contenders {
    async fn start() -> Self {
        use actix::Actor as _;
        let (artel, spec) = ChildSpec::actor("echo", Echo::default);
        let (artel_async, spec_async) = ChildSpec::actor("echo-async", AsyncOnlyEcho::default);
        let root = Supervisor::new("bench")
            .child(spec)
            .child(spec_async)
            .start()
            .await;
        Self {
            artel,
            artel_async,
            actix: Echo::default().start(),
            actix_async: AsyncEcho::default().start(),
            tokio: spawn_tokio_echo(),
            root,
        }
    }

    async fn shutdown(self) {
        self.root.shutdown().await;
    }
}

// ---------------------------------------------------------------------------------------------
// The timed loops, shared by criterion and the self-timed pass.

async fn artel_calls<A: artel_supervisors::Handler<Ping>>(
    addr: &artel_supervisors::Addr<A>,
    n: u64,
) -> Duration {
    let start = Instant::now();
    for i in 0..n {
        black_box(addr.call(Ping(i)).await.expect("artel echo replies"));
    }
    start.elapsed()
}

async fn actix_calls(c: &Contenders, n: u64) -> Duration {
    let start = Instant::now();
    for i in 0..n {
        black_box(c.actix.send(Ping(i)).await.expect("actix echo replies"));
    }
    start.elapsed()
}

async fn actix_async_calls(c: &Contenders, n: u64) -> Duration {
    let start = Instant::now();
    for i in 0..n {
        black_box(
            c.actix_async
                .send(Ping(i))
                .await
                .expect("actix echo replies"),
        );
    }
    start.elapsed()
}

async fn tokio_calls(c: &Contenders, n: u64) -> Duration {
    let start = Instant::now();
    for i in 0..n {
        black_box(tokio_call(&c.tokio, i).await);
    }
    start.elapsed()
}

async fn artel_batches(c: &Contenders, batches: u64) -> Duration {
    let start = Instant::now();
    for _ in 0..batches {
        for i in 0..BATCH {
            if c.artel.send(Tick(i)).await.is_err() {
                panic!("artel echo is down");
            }
        }
        black_box(c.artel.call(Ping(0)).await.expect("artel echo replies"));
    }
    start.elapsed()
}

async fn actix_batches(c: &Contenders, batches: u64) -> Duration {
    let start = Instant::now();
    for _ in 0..batches {
        for i in 0..BATCH {
            c.actix.do_send(Tick(i));
        }
        black_box(c.actix.send(Ping(0)).await.expect("actix echo replies"));
    }
    start.elapsed()
}

async fn tokio_batches(c: &Contenders, batches: u64) -> Duration {
    let start = Instant::now();
    for _ in 0..batches {
        for i in 0..BATCH {
            if c.tokio.send(Mail::Tick(i)).await.is_err() {
                panic!("tokio echo is down");
            }
        }
        black_box(tokio_call(&c.tokio, 0).await);
    }
    start.elapsed()
}

/// Spawns `n` artel actors as dynamic children of a fresh supervisor, in chunks; returns the
/// time spent in `start_child` (building each spec included, tearing down excluded).
async fn artel_spawns(n: u64) -> Duration {
    let mut total = Duration::ZERO;
    let mut left = n;
    while left > 0 {
        let chunk = left.min(SPAWN_CHUNK);
        left -= chunk;
        let root = Supervisor::new("spawn").start().await;
        let supervisor = root.supervisor();
        let names: Vec<String> = (0..chunk).map(|i| format!("spawn/{i}")).collect();
        let mut addrs = Vec::with_capacity(names.len());
        let start = Instant::now();
        for name in names {
            let (addr, spec) = ChildSpec::actor(name, Echo::default);
            supervisor.start_child(spec).await.expect("child starts");
            addrs.push(addr);
        }
        total += start.elapsed();
        drop(addrs);
        root.shutdown().await;
    }
    total
}

/// Starts `n` actix actors in chunks; each chunk is timed until the last actor has answered one
/// request, so every actor has also been polled once and run its `started`.
async fn actix_spawns(n: u64) -> Duration {
    use actix::Actor as _;
    let mut total = Duration::ZERO;
    let mut left = n;
    while left > 0 {
        let chunk = left.min(SPAWN_CHUNK);
        left -= chunk;
        let mut addrs = Vec::with_capacity(chunk as usize);
        let start = Instant::now();
        for _ in 0..chunk {
            addrs.push(Echo::default().start());
        }
        if let Some(last) = addrs.last() {
            black_box(last.send(Ping(0)).await.expect("actix echo replies"));
        }
        total += start.elapsed();
        drop(addrs);
        // Let the actors notice they have no address left and stop, outside the timing.
        for _ in 0..4 {
            tokio::task::yield_now().await;
        }
    }
    total
}

// ---------------------------------------------------------------------------------------------
// Criterion groups.

fn configure(c: &mut Criterion) {
    *c = std::mem::take(c)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(20)
        .configure_from_args();
}

fn request_reply(c: &mut Criterion, system: &actix_rt::SystemRunner) {
    let contenders = system.block_on(Contenders::start());
    let mut group = c.benchmark_group("request_reply");
    group.throughput(Throughput::Elements(1));
    group.bench_function("artel_call", |b| {
        b.iter_custom(|iters| system.block_on(artel_calls(&contenders.artel, iters)))
    });
    group.bench_function("actix_send", |b| {
        b.iter_custom(|iters| system.block_on(actix_calls(&contenders, iters)))
    });
    group.bench_function("tokio_mpsc_oneshot", |b| {
        b.iter_custom(|iters| system.block_on(tokio_calls(&contenders, iters)))
    });
    group.bench_function("artel_call_async_handler", |b| {
        b.iter_custom(|iters| system.block_on(artel_calls(&contenders.artel_async, iters)))
    });
    group.bench_function("actix_send_async_handler", |b| {
        b.iter_custom(|iters| system.block_on(actix_async_calls(&contenders, iters)))
    });
    group.finish();
    system.block_on(contenders.shutdown());
}

fn fire_and_forget(c: &mut Criterion, system: &actix_rt::SystemRunner) {
    let contenders = system.block_on(Contenders::start());
    let mut group = c.benchmark_group("fire_and_forget");
    group.throughput(Throughput::Elements(BATCH));
    group.bench_function(BenchmarkId::new("artel_send", BATCH), |b| {
        b.iter_custom(|iters| system.block_on(artel_batches(&contenders, iters)))
    });
    group.bench_function(BenchmarkId::new("actix_do_send", BATCH), |b| {
        b.iter_custom(|iters| system.block_on(actix_batches(&contenders, iters)))
    });
    group.bench_function(BenchmarkId::new("tokio_mpsc_send", BATCH), |b| {
        b.iter_custom(|iters| system.block_on(tokio_batches(&contenders, iters)))
    });
    group.finish();
    system.block_on(contenders.shutdown());
}

fn spawn(c: &mut Criterion, system: &actix_rt::SystemRunner) {
    let mut group = c.benchmark_group("spawn");
    group.throughput(Throughput::Elements(1));
    group.bench_function("artel_start_child", |b| {
        b.iter_custom(|iters| system.block_on(artel_spawns(iters)))
    });
    group.bench_function("actix_start", |b| {
        b.iter_custom(|iters| system.block_on(actix_spawns(iters)))
    });
    group.finish();
}

// ---------------------------------------------------------------------------------------------
// The self-timed pass.

/// Best (shortest) of `runs` timings of each contender, the contenders taking turns within
/// each round so that a slow moment of the machine hits all of them alike.
fn best_of<const N: usize>(
    runs: usize,
    mut contenders: [&mut dyn FnMut() -> Duration; N],
) -> [Duration; N] {
    let mut best = [Duration::MAX; N];
    for _ in 0..runs {
        for (once, best) in contenders.iter_mut().zip(&mut best) {
            *best = (*best).min(once());
        }
    }
    best
}

fn per_sec(messages: u64, took: Duration) -> f64 {
    messages as f64 / took.as_secs_f64()
}

fn ns_per(messages: u64, took: Duration) -> f64 {
    took.as_nanos() as f64 / messages as f64
}

/// Throughputs (msgs/s) of artel, actix and tokio mpsc for one workload.
struct Row {
    name: &'static str,
    messages: u64,
    artel: Duration,
    actix: Duration,
    tokio: Duration,
}

impl Row {
    fn print(&self) {
        let m = self.messages;
        println!(
            "  {:<34} artel {:>10.0}/s ({:>6.0} ns)  actix {:>10.0}/s ({:>6.0} ns)  tokio {:>10.0}/s ({:>6.0} ns)",
            self.name,
            per_sec(m, self.artel),
            ns_per(m, self.artel),
            per_sec(m, self.actix),
            ns_per(m, self.actix),
            per_sec(m, self.tokio),
            ns_per(m, self.tokio),
        );
    }

    /// artel's throughput as a fraction of actix's.
    fn vs_actix(&self) -> f64 {
        self.actix.as_secs_f64() / self.artel.as_secs_f64()
    }

    /// artel's throughput as a fraction of tokio mpsc's.
    fn vs_tokio(&self) -> f64 {
        self.tokio.as_secs_f64() / self.artel.as_secs_f64()
    }
}

/// Runs `f` as a task on the `LocalSet` (where actix actors live) and returns its timing.
async fn in_local_task<F>(f: F) -> Duration
where
    F: std::future::Future<Output = Duration> + 'static,
{
    let (tx, rx) = oneshot::channel();
    actix_rt::spawn(async move {
        let _ = tx.send(f.await);
    });
    rx.await.expect("timed task finishes")
}

fn self_timed(system: &actix_rt::SystemRunner, calls: u64, batches: u64) -> Vec<Row> {
    let contenders = system.block_on(Contenders::start());
    let c = &contenders;
    // Warm up every path once.
    system.block_on(async {
        artel_calls(&c.artel, 10_000).await;
        actix_calls(c, 10_000).await;
        tokio_calls(c, 10_000).await;
    });
    let mut rows = Vec::new();
    let [artel, actix, tokio, artel_async, actix_async] = best_of(
        3,
        [
            &mut || system.block_on(artel_calls(&c.artel, calls)),
            &mut || system.block_on(actix_calls(c, calls)),
            &mut || system.block_on(tokio_calls(c, calls)),
            &mut || system.block_on(artel_calls(&c.artel_async, calls)),
            &mut || system.block_on(actix_async_calls(c, calls)),
        ],
    );
    rows.push(Row {
        name: "request-reply (from block_on)",
        messages: calls,
        artel,
        actix,
        tokio,
    });
    let [artel, actix, tokio] = best_of(
        3,
        [
            &mut || system.block_on(artel_batches(c, batches)),
            &mut || system.block_on(actix_batches(c, batches)),
            &mut || system.block_on(tokio_batches(c, batches)),
        ],
    );
    rows.push(Row {
        name: "fire-and-forget (batches of 1000)",
        messages: batches * BATCH,
        artel,
        actix,
        tokio,
    });
    // Actor-to-actor: the caller is a task on the callee's scheduler (a tokio task for artel
    // and tokio, a `LocalSet` task for actix), so a reply wakes a task, not `block_on`.
    fn artel_in_task<A: artel_supervisors::Handler<Ping>>(
        system: &actix_rt::SystemRunner,
        addr: &artel_supervisors::Addr<A>,
        calls: u64,
    ) -> Duration {
        let addr = addr.clone();
        system.block_on(async move {
            let handle = tokio::spawn(async move {
                let start = Instant::now();
                for i in 0..calls {
                    black_box(addr.call(Ping(i)).await.expect("artel echo replies"));
                }
                start.elapsed()
            });
            handle.await.expect("timed task finishes")
        })
    }
    let mut actix_in_task = || {
        let addr = c.actix.clone();
        system.block_on(in_local_task(async move {
            let start = Instant::now();
            for i in 0..calls {
                black_box(addr.send(Ping(i)).await.expect("actix echo replies"));
            }
            start.elapsed()
        }))
    };
    let mut tokio_in_task = || {
        let tx = c.tokio.clone();
        system.block_on(async move {
            let handle = tokio::spawn(async move {
                let start = Instant::now();
                for i in 0..calls {
                    black_box(tokio_call(&tx, i).await);
                }
                start.elapsed()
            });
            handle.await.expect("timed task finishes")
        })
    };
    let [artel, actix, tokio, artel_task_async] = best_of(
        3,
        [
            &mut || artel_in_task(system, &c.artel, calls),
            &mut actix_in_task,
            &mut tokio_in_task,
            &mut || artel_in_task(system, &c.artel_async, calls),
        ],
    );
    rows.push(Row {
        name: "request-reply (actor-to-actor)",
        messages: calls,
        artel,
        actix,
        tokio,
    });
    for row in &rows {
        row.print();
    }
    println!(
        "  request-reply with an async handler (from block_on): artel {:>10.0}/s ({:>6.0} ns)  \
         actix AtomicResponse {:>10.0}/s ({:>6.0} ns)  artel/actix-async = {:.3}",
        per_sec(calls, artel_async),
        ns_per(calls, artel_async),
        per_sec(calls, actix_async),
        ns_per(calls, actix_async),
        actix_async.as_secs_f64() / artel_async.as_secs_f64()
    );
    println!(
        "  request-reply with an async handler (actor-to-actor): artel {:>10.0}/s ({:>6.0} ns)",
        per_sec(calls, artel_task_async),
        ns_per(calls, artel_task_async)
    );
    system.block_on(contenders.shutdown());
    rows
}

/// Producer tasks in the contended pass.
const PRODUCERS: u64 = 4;

/// The contended pass: [`PRODUCERS`] tasks on a 2-worker multi-thread runtime each send `each`
/// one-way messages to one consumer and then wait for one reply (all their messages are
/// handled by then: a mailbox is FIFO per sender). Best of 3, contenders in turns. Must run
/// inside the `System` (actix's actor gets an `Arbiter` thread of its own).
fn contended(each: u64) -> Row {
    use actix::Actor as _;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a multi-thread runtime");
    let (artel, root) = runtime.block_on(async {
        let (addr, spec) = ChildSpec::actor("echo", Echo::default);
        (addr, Supervisor::new("contended").child(spec).start().await)
    });
    let tokio = runtime.block_on(async { spawn_tokio_echo() });
    let arbiter = actix_rt::Arbiter::new();
    let actix = Echo::start_in_arbiter(&arbiter.handle(), |_| Echo::default());

    /// Runs `PRODUCERS` copies of `produce` at once and times them all.
    fn race<F, Fut>(runtime: &tokio::runtime::Runtime, produce: F) -> Duration
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        runtime.block_on(async {
            let start = Instant::now();
            let producers: Vec<_> = (0..PRODUCERS).map(|_| tokio::spawn(produce())).collect();
            for producer in producers {
                producer.await.expect("producer finishes");
            }
            start.elapsed()
        })
    }
    let [artel_took, actix_took, tokio_took] = best_of(
        3,
        [
            &mut || {
                race(&runtime, || {
                    let addr = artel.clone();
                    async move {
                        for i in 0..each {
                            if addr.send(Tick(i)).await.is_err() {
                                panic!("artel echo is down");
                            }
                        }
                        black_box(addr.call(Ping(0)).await.expect("artel echo replies"));
                    }
                })
            },
            &mut || {
                race(&runtime, || {
                    let addr = actix.clone();
                    async move {
                        for i in 0..each {
                            addr.do_send(Tick(i));
                        }
                        black_box(addr.send(Ping(0)).await.expect("actix echo replies"));
                    }
                })
            },
            &mut || {
                race(&runtime, || {
                    let tx = tokio.clone();
                    async move {
                        for i in 0..each {
                            if tx.send(Mail::Tick(i)).await.is_err() {
                                panic!("tokio echo is down");
                            }
                        }
                        black_box(tokio_call(&tx, 0).await);
                    }
                })
            },
        ],
    );
    runtime.block_on(root.shutdown());
    arbiter.stop();
    Row {
        name: "fire-and-forget, 4 producers, 2 threads",
        messages: each * PRODUCERS,
        artel: artel_took,
        actix: actix_took,
        tokio: tokio_took,
    }
}

// ---------------------------------------------------------------------------------------------
// Memory per idle actor, in a child process.

/// An idle actor: it has a handler but is never sent anything.
#[derive(Default)]
struct Idle {
    _state: u64,
}

impl artel_supervisors::Actor for Idle {}

impl artel_supervisors::Handler<Ping> for Idle {
    async fn handle(&mut self, msg: Ping, _ctx: &mut artel_supervisors::Context<Self>) -> u64 {
        msg.0
    }
}

impl actix::Actor for Idle {
    type Context = actix::Context<Self>;
}

impl actix::Handler<Ping> for Idle {
    type Result = u64;
    fn handle(&mut self, msg: Ping, _ctx: &mut actix::Context<Self>) -> u64 {
        msg.0
    }
}

/// This process's resident set in bytes (`VmRSS` in `/proc/self/status`).
fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map_or(0, |kb| kb * 1024)
}

/// Dynamic children per shard supervisor in the sharded layout.
const SHARD: u64 = 100;

/// Spawns `count` idle artel actors as dynamic children of the given supervisors, round-robin
/// in blocks of [`SHARD`]; prints timings (total, first and last 1000) and returns the addresses.
async fn spawn_idle(
    shards: &[artel_supervisors::SupervisorRef],
    count: u64,
) -> Vec<artel_supervisors::Addr<Idle>> {
    let mut addrs = Vec::with_capacity(count as usize);
    let mut chunks = Vec::new();
    let start = Instant::now();
    let mut chunk_start = Instant::now();
    for i in 0..count {
        let shard = &shards[(i / SHARD) as usize % shards.len()];
        let (addr, spec) = ChildSpec::actor(format!("idle/{i}"), Idle::default);
        shard.start_child(spec).await.expect("idle child starts");
        addrs.push(addr);
        if (i + 1) % 1_000 == 0 {
            chunks.push(chunk_start.elapsed());
            chunk_start = Instant::now();
        }
    }
    println!("spawn_total_ns={}", start.elapsed().as_nanos());
    if let (Some(first), Some(last)) = (chunks.first(), chunks.last()) {
        println!("spawn_first_1000_ns={}", first.as_nanos());
        println!("spawn_last_1000_ns={}", last.as_nanos());
    }
    addrs
}

/// The child process: spawns `count` idle actors in `layout` and prints `key=value` lines.
///
/// - `artel-flat`: all dynamic children of one supervisor;
/// - `artel-sharded`: dynamic children of `count / SHARD` supervisors (static children of one
///   root), [`SHARD`] each — same tree size, few siblings per supervisor;
/// - `actix`: `Actor::start()`, then one request to the last so every actor has been polled.
fn memory_child(layout: &str, count: u64) {
    let system = actix_rt::System::new();
    system.block_on(async {
        let before;
        let after;
        match layout {
            "artel-flat" | "artel-sharded" => {
                let shards = if layout == "artel-flat" {
                    1
                } else {
                    count.div_ceil(SHARD).max(1)
                };
                before = rss_bytes();
                let mut root = Supervisor::new("idle");
                let mut refs = Vec::new();
                let mut flat = None;
                if shards == 1 {
                    flat = Some(Supervisor::new("idle").start().await);
                    refs.extend(flat.as_ref().map(|h| h.supervisor()));
                } else {
                    for s in 0..shards {
                        let shard = Supervisor::new(format!("shard/{s}"));
                        refs.push(shard.handle());
                        root = root.child(shard.into_child());
                    }
                }
                let tree = if flat.is_none() {
                    Some(root.start().await)
                } else {
                    None
                };
                let handle = flat.or(tree).expect("a root");
                let addrs = spawn_idle(&refs, count).await;
                after = rss_bytes();
                // Prove they are alive and answering.
                if let Some(addr) = addrs.last() {
                    black_box(addr.call(Ping(1)).await.expect("idle child answers"));
                }
                println!("registry_nodes={}", handle.registry().len());
                println!("supervisors={shards}");
            }
            "actix" => {
                use actix::Actor as _;
                let mut addrs = Vec::with_capacity(count as usize);
                before = rss_bytes();
                let start = Instant::now();
                for _ in 0..count {
                    addrs.push(Idle::default().start());
                }
                if let Some(addr) = addrs.last() {
                    black_box(addr.send(Ping(1)).await.expect("idle actor answers"));
                }
                println!("spawn_total_ns={}", start.elapsed().as_nanos());
                after = rss_bytes();
            }
            other => panic!("unknown layout {other:?}"),
        }
        println!("rss_before={before}");
        println!("rss_after={after}");
    });
}

/// What one child process measured.
struct Memory {
    per_actor: f64,
    spawn_per_actor: Duration,
    fields: std::collections::BTreeMap<String, u64>,
}

/// Runs this binary again as a child measuring `count` idle actors of `runtime`.
fn measure_memory(runtime: &str, count: u64) -> Option<Memory> {
    let exe = std::env::current_exe().ok()?;
    let output = std::process::Command::new(exe)
        .env(CHILD_ENV, format!("{runtime}:{count}"))
        .output()
        .ok()?;
    if !output.status.success() {
        eprintln!(
            "memory child for {runtime} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        return None;
    }
    let fields: std::collections::BTreeMap<String, u64> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split_once('='))
        .filter_map(|(k, v)| Some((k.to_owned(), v.trim().parse().ok()?)))
        .collect();
    let before = *fields.get("rss_before")?;
    let after = *fields.get("rss_after")?;
    let total = *fields.get("spawn_total_ns")?;
    Some(Memory {
        per_actor: after.saturating_sub(before) as f64 / count as f64,
        spawn_per_actor: Duration::from_nanos(total / count),
        fields,
    })
}

// ---------------------------------------------------------------------------------------------
// main: criterion, then the self-timed pass and the memory pass, then the summary.

/// Where criterion writes its reports: `$CRITERION_HOME`, else `$CARGO_TARGET_DIR/criterion`,
/// else `target/criterion`.
fn criterion_dir() -> std::path::PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return home.into();
    }
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || std::path::PathBuf::from("target"),
        std::path::PathBuf::from,
    );
    target.join("criterion")
}

/// The median (ns per iteration) criterion estimated for `id` in this run, read back from its
/// `new/estimates.json`; `None` if there is none newer than `since` (criterion only writes it
/// when benchmarking, not under `--test`).
fn criterion_median(id: &str, since: std::time::SystemTime) -> Option<f64> {
    let path = criterion_dir().join(id).join("new").join("estimates.json");
    let fresh = std::fs::metadata(&path).ok()?.modified().ok()? >= since;
    if !fresh {
        return None;
    }
    let json = std::fs::read_to_string(path).ok()?;
    let median = &json[json.find("\"median\":")?..];
    let value = &median[median.find("\"point_estimate\":")? + "\"point_estimate\":".len()..];
    let end = value.find([',', '}'])?;
    value[..end].trim().parse().ok()
}

/// Prints criterion's medians of this run with the ratios artel÷actix and artel÷tokio.
fn print_criterion_medians(since: std::time::SystemTime) {
    let groups = [
        (
            "request-reply",
            1,
            [
                "request_reply/artel_call",
                "request_reply/actix_send",
                "request_reply/tokio_mpsc_oneshot",
            ],
        ),
        (
            "fire-and-forget",
            BATCH,
            [
                "fire_and_forget/artel_send/1000",
                "fire_and_forget/actix_do_send/1000",
                "fire_and_forget/tokio_mpsc_send/1000",
            ],
        ),
    ];
    for (name, per_iter, [artel, actix, tokio]) in groups {
        let (Some(artel), Some(actix), Some(tokio)) = (
            criterion_median(artel, since),
            criterion_median(actix, since),
            criterion_median(tokio, since),
        ) else {
            continue;
        };
        let per = per_iter as f64;
        println!(
            "criterion median {name:<16} artel {:>7.0} ns  actix {:>7.0} ns  tokio {:>7.0} ns per msg;  artel/actix = {:.3}  artel/tokio-mpsc = {:.3}",
            artel / per,
            actix / per,
            tokio / per,
            actix / artel,
            tokio / artel
        );
    }
    if let (Some(artel), Some(actix)) = (
        criterion_median("spawn/artel_start_child", since),
        criterion_median("spawn/actix_start", since),
    ) {
        println!(
            "criterion median spawn            artel {:>7.0} ns  actix {:>7.0} ns per actor ({SPAWN_CHUNK} per fresh supervisor)",
            artel, actix
        );
    }
}

fn verdict(met: bool) -> &'static str {
    if met { "MET" } else { "MISSED" }
}

fn main() {
    if let Ok(spec) = std::env::var(CHILD_ENV) {
        let (runtime, count) = spec.split_once(':').expect("runtime:count");
        memory_child(runtime, count.parse().expect("a count"));
        return;
    }

    let args: Vec<String> = std::env::args().skip(1).collect();
    let has = |flag: &str| args.iter().any(|a| a == flag);
    let listing = has("--list");
    let profiling = args.iter().any(|a| a.starts_with("--profile-time"));
    // Criterion's own rule: without `--bench` (as under `cargo test --benches`) it only tests.
    let test_mode = has("--test") || !has("--bench");

    let began = std::time::SystemTime::now();
    let system = actix_rt::System::new();
    let mut criterion = Criterion::default();
    configure(&mut criterion);
    request_reply(&mut criterion, &system);
    fire_and_forget(&mut criterion, &system);
    spawn(&mut criterion, &system);
    criterion.final_summary();

    let quick = std::env::var("ARTEL_BENCH_QUICK").is_ok_and(|v| v == "1");
    if listing || profiling || quick {
        return;
    }
    let (calls, batches, idle) = if test_mode {
        (2_000, 2, 2_000)
    } else {
        (200_000, 200, 100_000)
    };
    // One supervisor with many dynamic children costs O(siblings) per `start_child`, so the
    // flat layout is quadratic in total; 100,000 flat children take many minutes. Set
    // `ARTEL_BENCH_FLAT_IDLE=100000` to measure it anyway.
    let flat_idle = std::env::var("ARTEL_BENCH_FLAT_IDLE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if test_mode { 1_000 } else { 10_000 });

    println!();
    println!("== self-timed pass: best of 3, one System (current-thread tokio) ==");
    let mut rows = self_timed(&system, calls, batches);
    rows.push(contended(batches * BATCH / PRODUCERS));
    rows[rows.len() - 1].print();
    drop(system);

    println!();
    println!("== memory pass: idle actors, each layout in a fresh child process (VmRSS delta) ==");
    let sharded = measure_memory("artel-sharded", idle);
    let flat = measure_memory("artel-flat", flat_idle);
    let actix = measure_memory("actix", idle);
    let labelled = [
        (
            format!("artel {idle} / {} supervisors", idle.div_ceil(SHARD)),
            &sharded,
        ),
        (format!("artel {flat_idle} / 1 supervisor"), &flat),
        (format!("actix {idle}"), &actix),
    ];
    for (name, m) in &labelled {
        if let Some(m) = m {
            println!(
                "  {name:<32} memory_per_idle_actor_bytes={:.0} spawn_wall_per_actor_ns={} {:?}",
                m.per_actor,
                m.spawn_per_actor.as_nanos(),
                m.fields
            );
        }
    }

    println!();
    println!("================ SUMMARY (artel-benches/actors) ================");
    println!("runtime: actix_rt::System (current-thread tokio), same thread for all contenders");
    for row in &rows {
        println!(
            "self-timed {:<34} artel/actix = {:.3}   artel/tokio-mpsc = {:.3}   (throughput ratios)",
            row.name,
            row.vs_actix(),
            row.vs_tokio()
        );
    }
    for (i, what) in [(0, "request-reply"), (1, "fire-and-forget")] {
        if let Some(row) = rows.get(i) {
            let r = row.vs_actix();
            println!(
                "target: supervision costs <= 10% throughput vs actix ({what}): costs {:.1}% -> {}",
                (1.0 - r) * 100.0,
                verdict(r >= 0.90)
            );
        }
    }
    for (name, m) in labelled.iter().take(2) {
        if let Some(m) = m {
            let us = m.spawn_per_actor.as_secs_f64() * 1e6;
            println!(
                "target: spawn <= 10 us per actor ({name}, wall): {us:.2} us -> {}",
                verdict(us <= 10.0)
            );
            if let (Some(first), Some(last)) = (
                m.fields.get("spawn_first_1000_ns"),
                m.fields.get("spawn_last_1000_ns"),
            ) {
                println!(
                    "        first 1000 children: {:.2} us each, last 1000: {:.2} us each",
                    *first as f64 / 1e6,
                    *last as f64 / 1e6
                );
            }
        }
    }
    for (name, m) in labelled.iter().take(2) {
        if let Some(m) = m {
            println!(
                "target: <= 16 KiB per idle actor ({name}): {:.0} B -> {}",
                m.per_actor,
                verdict(m.per_actor <= 16.0 * 1024.0)
            );
        }
    }
    if let Some(m) = &actix {
        println!(
            "reference: actix {:.0} B per idle actor, {:.2} us per start() (incl. first poll)",
            m.per_actor,
            m.spawn_per_actor.as_secs_f64() * 1e6
        );
    }
    print_criterion_medians(began);
    println!("================================================================");
}
