//! The demo tree behind `artel tree --demo`: real supervised actors misbehaving on purpose,
//! so an operator (or a newcomer) can watch restarts, backoff, `rest_for_one` and mailbox
//! depth in the live tree without configuring anything.
//!
//! ```text
//! demo                 one_for_one
//! ├── ticker           counts ticks every 250 ms; never fails
//! ├── crasher          panics every 2 s; restarted with backoff
//! └── pipeline         rest_for_one
//!     ├── source       emits a number every 100 ms; restarted after transform (rest_for_one)
//!     ├── transform    doubles it for sink; fails (retryable) on every 25th number
//!     └── sink         sums what it gets; started first, so it outlives transform's failures
//! ```

use artel_messages::{Failure, Request};
use artel_supervisors::{
    Actor, Addr, Backoff, ChildSpec, Context, Handler, Intensity, Strategy, Supervisor,
};
use std::time::Duration;

/// Builds the demo tree (not started).
pub fn tree() -> Supervisor {
    let (sink, sink_spec) = ChildSpec::actor("sink", Sink::default);
    let (transform, transform_spec) = ChildSpec::actor("transform", move || Transform {
        sink: sink.clone(),
        seen: 0,
    });
    let (_source, source_spec) = ChildSpec::actor("source", move || Source {
        transform: transform.clone(),
        next: 0,
    });
    let (_ticker, ticker_spec) = ChildSpec::actor("ticker", || Ticker { ticks: 0 });
    let (_crasher, crasher_spec) = ChildSpec::actor("crasher", || Crasher);

    let pipeline = Supervisor::new("pipeline")
        .strategy(Strategy::RestForOne)
        .intensity(Intensity {
            max_restarts: 10,
            within: Duration::from_secs(30),
        })
        // Started so that a stage's consumers exist before it does: sink, transform, source.
        .child(sink_spec.role("sink"))
        .child(transform_spec.role("transform"))
        .child(source_spec.role("source"));

    Supervisor::new("demo")
        .intensity(Intensity {
            max_restarts: 30,
            within: Duration::from_secs(30),
        })
        .child(ticker_spec.role("ticker"))
        .child(crasher_spec.role("crasher").backoff(Backoff {
            initial: Duration::from_millis(200),
            max: Duration::from_secs(2),
            reset_after: Duration::from_secs(1),
            ..Backoff::default()
        }))
        .child(pipeline.into_child())
}

/// A periodic self-message.
#[derive(Debug)]
pub struct Tick;
impl Request for Tick {
    type Reply = ();
}

/// Counts ticks; the healthy neighbour.
pub struct Ticker {
    ticks: u64,
}

impl Actor for Ticker {
    async fn started(&mut self, ctx: &mut Context<Self>) -> Result<(), Failure> {
        ctx.every(Duration::from_millis(250), || Tick);
        Ok(())
    }
}

impl Handler<Tick> for Ticker {
    async fn handle(&mut self, _msg: Tick, _ctx: &mut Context<Self>) {
        self.ticks += 1;
    }
}

/// Panics two seconds into every run.
pub struct Crasher;

impl Actor for Crasher {
    async fn started(&mut self, ctx: &mut Context<Self>) -> Result<(), Failure> {
        ctx.send_later(Duration::from_secs(2), Tick);
        Ok(())
    }
}

impl Handler<Tick> for Crasher {
    async fn handle(&mut self, _msg: Tick, _ctx: &mut Context<Self>) {
        panic!("demo crash: this actor panics every 2 s on purpose");
    }
}

/// A number flowing down the pipeline.
#[derive(Debug)]
pub struct Number(pub u64);
impl Request for Number {
    type Reply = ();
}

/// Emits numbers to `transform`.
pub struct Source {
    transform: Addr<Transform>,
    next: u64,
}

impl Actor for Source {
    async fn started(&mut self, ctx: &mut Context<Self>) -> Result<(), Failure> {
        ctx.every(Duration::from_millis(100), || Tick);
        Ok(())
    }
}

impl Handler<Tick> for Source {
    async fn handle(&mut self, _msg: Tick, _ctx: &mut Context<Self>) {
        self.next += 1;
        // Waits when transform is behind: backpressure, not loss.
        let _ = self.transform.send(Number(self.next)).await;
    }
}

/// Doubles numbers for `sink`; fails on every 25th.
pub struct Transform {
    sink: Addr<Sink>,
    seen: u64,
}

impl Actor for Transform {}

impl Handler<Number> for Transform {
    async fn handle(&mut self, msg: Number, ctx: &mut Context<Self>) {
        self.seen += 1;
        if self.seen.is_multiple_of(25) {
            ctx.fail(Failure::retryable(format!(
                "demo failure on number {}: transform fails every 25th on purpose",
                msg.0
            )));
            return;
        }
        let _ = self.sink.send(Number(msg.0 * 2)).await;
    }
}

/// Sums what arrives.
#[derive(Default)]
pub struct Sink {
    total: u64,
}

impl Actor for Sink {}

impl Handler<Number> for Sink {
    async fn handle(&mut self, msg: Number, _ctx: &mut Context<Self>) {
        self.total += msg.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use artel_supervisors::NodeStatus;

    #[tokio::test(start_paused = true)]
    async fn the_demo_tree_crashes_and_recovers_on_schedule() {
        let root = tree().start().await;
        tokio::time::sleep(Duration::from_millis(5_100)).await;
        let snap = root.registry().snapshot();
        let crasher = snap.find("demo/crasher").expect("crasher node");
        assert!(crasher.restarts >= 2, "{crasher:?}");
        assert!(
            crasher
                .last_error
                .as_deref()
                .is_some_and(|e| e.contains("demo crash")),
            "{crasher:?}"
        );
        let transform = snap.find("demo/pipeline/transform").expect("transform");
        let sink = snap.find("demo/pipeline/sink").expect("sink");
        let source = snap.find("demo/pipeline/source").expect("source");
        assert!(transform.restarts >= 1, "{transform:?}");
        assert_eq!(sink.restarts, 0, "sink starts before transform: untouched");
        assert_eq!(source.restarts, transform.restarts, "rest_for_one");
        let ticker = snap.find("demo/ticker").expect("ticker");
        assert_eq!((ticker.status, ticker.restarts), (NodeStatus::Running, 0));
        root.shutdown().await;
    }
}
