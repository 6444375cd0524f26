//! # artel-supervisors — supervision trees for artel's actors
//!
//! A generic runtime in the spirit of Erlang/OTP, built on the tokio runtime that actix runs
//! on. It knows no domain word: roles live in `artel-actors`, messages in `artel-messages`.
//!
//! ```text
//! root (one_for_one)                 Supervisor::new("artel").start()
//! ├── store        actor             ChildSpec::actor("store", Store::new)
//! ├── gateways     supervisor        Supervisor::new("gateways").into_child()
//! │   └── http     actor
//! └── workflows    supervisor        dynamic children via SupervisorRef::start_child
//!     └── engineering/42
//! ```
//!
//! ## The rule: a role's retries ARE its child spec
//!
//! Role code never loops to retry. A handler that cannot do its work returns its error to the
//! caller, or fails its actor with [`Context::fail`] and a classified [`Failure`]; the actor's
//! [`ChildSpec`] — restart type, [`Backoff`], shutdown deadline, handler deadline — and its
//! supervisor's [`Strategy`] and [`Intensity`] decide what happens next. Fatal failures never
//! restart. Durable work is reloaded in [`Actor::started`], so a restart *is* the retry.
//!
//! ## What it adds over actix's `Supervisor`
//! - strategies `one_for_one`, `one_for_all`, `rest_for_one`; ordered start, reverse stop;
//! - significant children ([`ChildSpec::significant`]): a supervisor that ends with its
//!   driver, for a unit of work with helpers;
//! - dynamic children, started and terminated at run time; a child asked for while a live
//!   namesake still runs can follow it ([`SupervisorRef::start_child_or_follow`]) instead of
//!   being refused, for children that re-read durable work when they start;
//! - restart types `permanent`, `transient`, `temporary`;
//! - restart intensity (default: 5 within 30 s) with escalation to the parent supervisor;
//! - per-child exponential backoff with jitter, a cap and a reset window (default: 100 ms
//!   doubling to 10 s, ±20 %, reset after 30 s up);
//! - panic isolation: a panic in a handler (sync part or after an `.await`) fails only that
//!   actor, the caller gets [`CallError::Panicked`], and queued messages wait for the restart;
//! - stuck detection: a handler past its deadline (default 60 s, per message overridable) is
//!   cancelled, its caller gets [`CallError::Stuck`] and the actor restarts under its policy;
//! - bounded mailboxes (default 64) that survive restarts: `send` waits, `try_send` fails with
//!   [`TrySendError::Full`], a failed send hands the message back; an actor that always has
//!   mail steps aside after 128 messages in a row, so it cannot starve its thread's other tasks;
//! - shutdown in reverse start order, each child within its deadline (graceful, then aborted);
//! - two handler shapes, like actix's sync and async handlers: `async fn handle` for work that
//!   waits (a boxed future per message), and [`Handler::handle_now`] for answers that never
//!   wait (no future, no allocation) — both under the same panic isolation;
//! - the sender's tracing span is the parent of the handler's span;
//! - a live [`Registry`] of the tree, snapshotted as plain data for REST and the CLI.
//!
//! # Layout
//! - [`actor`] — the [`Actor`] and [`Handler`] traits and the [`Context`] an actor sees.
//! - [`mailbox`] — [`Addr`]: bounded, typed, request-reply and fire-and-forget sends, over
//!   artel's own bounded queue (one short lock per send, a batch per receive; its module doc
//!   says why it replaced tokio's `mpsc`).
//! - [`spec`] — [`ChildSpec`], [`Restart`], [`Strategy`] and the defaults.
//! - [`supervisor`] — [`Supervisor`], its run loop, [`SupervisorRef`] for dynamic children.
//! - [`later`] — [`Deferred`] requests and their [`Later`] replies: an actor that gates slow
//!   work admits a request in its handler and answers from work it runs beside itself.
//! - [`backoff`], [`intensity`] — the two restart policies, pure and unit-tested.
//! - [`exit`] — [`ExitReason`], the one input to every restart decision.
//! - [`registry`] — the live tree and its [`TreeSnapshot`].
//! - [`scope`] — a reader's part of the tree ([`TreeSnapshot::scoped`], [`Visibility`]).
//! - [`stream_mailbox`] — envelopes across processes over Redis Streams: consumer groups,
//!   `XACK` after handling, `XAUTOCLAIM`, dead letters (unused, and Redis unneeded, in one process).
//! - [`error`] — what callers see: [`SendError`], [`TrySendError`], [`CallError`],
//!   [`SupervisorError`], each classified retryable or fatal.

pub mod actor;
pub mod backoff;
pub mod error;
pub mod exit;
pub mod intensity;
pub mod later;
pub mod mailbox;
pub mod registry;
mod run;
pub mod scope;
pub mod spec;
pub mod stream_mailbox;
pub mod supervisor;

pub use actor::{Actor, Context, Handler};
pub use artel_messages::{Classify, ErrorClass, Failure, Request};
pub use backoff::Backoff;
pub use error::{CallError, SendError, SupervisorError, TrySendError};
pub use exit::ExitReason;
pub use intensity::Intensity;
pub use later::{Deferred, Later};
pub use mailbox::Addr;
pub use registry::{
    BacklogProbe, Labels, NodeId, NodeKind, NodeSnapshot, NodeStatus, Registry, TreeSnapshot,
};
pub use scope::Visibility;
pub use spec::{ChildSpec, Restart, Strategy};
pub use stream_mailbox::{
    DeadLetter, EntryId, Inbound, StreamClient, StreamConfig, StreamConsumer, StreamError,
    StreamHandler, StreamProducer,
};
pub use supervisor::{ChildStart, Supervisor, SupervisorHandle, SupervisorRef};
