//! Child specs: everything a supervisor needs to know to start, restart and stop one child.
//!
//! The spec *is* the retry policy: restart type, backoff and shutdown deadline live here and
//! nowhere else. Role code contains no retry loops.

use crate::actor::Actor;
use crate::backoff::Backoff;
use crate::exit::ExitReason;
use crate::mailbox::{Addr, Inbox, mailbox};
use crate::registry::{BacklogProbe, Labels, MailboxProbe, NodeKind};
use crate::run::{Run, run_actor};
use futures_util::future::BoxFuture;
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;

/// Default mailbox bound for an actor.
pub const DEFAULT_MAILBOX_CAPACITY: usize = 64;
/// Default deadline for one handler before the actor counts as stuck.
pub const DEFAULT_HANDLER_DEADLINE: Duration = Duration::from_secs(60);
/// Default time an actor gets to finish its current message when asked to stop.
pub const DEFAULT_SHUTDOWN: Duration = Duration::from_secs(5);
/// Default time a supervisor gets to stop its whole subtree.
pub const DEFAULT_SUPERVISOR_SHUTDOWN: Duration = Duration::from_secs(30);

/// Which siblings restart when one child fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Only the failed child restarts.
    #[default]
    OneForOne,
    /// Every child stops (in reverse order) and all restart (in order).
    OneForAll,
    /// The failed child and every child started after it restart.
    RestForOne,
}

impl Strategy {
    /// The snake_case name, as in JSON and the rendered tree.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OneForOne => "one_for_one",
            Self::OneForAll => "one_for_all",
            Self::RestForOne => "rest_for_one",
        }
    }
}

/// When a child that exited is restarted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Restart {
    /// Always (the default): a service that must be up.
    #[default]
    Permanent,
    /// Only after an abnormal exit: a job that may finish.
    Transient,
    /// Never: a best-effort helper.
    Temporary,
}

/// Type-erased "how to run this child", shared by every run of it.
pub(crate) trait Starter: Send + Sync {
    fn kind(&self) -> NodeKind;
    fn detail(&self) -> Option<Arc<str>>;
    fn probe(&self) -> Option<Arc<dyn MailboxProbe>>;
    fn run(&self, run: Run) -> BoxFuture<'static, ExitReason>;
    /// Stops accepting messages for good (after a fatal failure or a final stop).
    fn close(&self);
    fn is_closed(&self) -> bool;
}

/// How to start, restart and stop one child. Cheap to clone.
#[derive(Clone)]
pub struct ChildSpec {
    pub(crate) name: Arc<str>,
    pub(crate) role: Arc<str>,
    pub(crate) restart: Restart,
    pub(crate) shutdown: Duration,
    pub(crate) backoff: Backoff,
    pub(crate) deadline: Option<Duration>,
    pub(crate) backlog: Option<BacklogProbe>,
    pub(crate) labels: Labels,
    pub(crate) significant: bool,
    pub(crate) starter: Arc<dyn Starter>,
}

impl std::fmt::Debug for ChildSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChildSpec")
            .field("name", &self.name)
            .field("role", &self.role)
            .field("restart", &self.restart)
            .field("shutdown", &self.shutdown)
            .field("backoff", &self.backoff)
            .field("deadline", &self.deadline)
            .field("significant", &self.significant)
            .finish_non_exhaustive()
    }
}

impl ChildSpec {
    /// A child actor built by `factory` on every (re)start, with a mailbox of
    /// [`DEFAULT_MAILBOX_CAPACITY`]. Returns its address, valid across restarts.
    pub fn actor<A, F>(name: impl Into<String>, factory: F) -> (Addr<A>, ChildSpec)
    where
        A: Actor,
        F: Fn() -> A + Send + Sync + 'static,
    {
        Self::actor_with_capacity(name, DEFAULT_MAILBOX_CAPACITY, factory)
    }

    /// Like [`ChildSpec::actor`] with a mailbox bound of `capacity` messages.
    pub fn actor_with_capacity<A, F>(
        name: impl Into<String>,
        capacity: usize,
        factory: F,
    ) -> (Addr<A>, ChildSpec)
    where
        A: Actor,
        F: Fn() -> A + Send + Sync + 'static,
    {
        let (addr, inbox) = mailbox::<A>(capacity);
        let starter = ActorStarter {
            factory: Arc::new(factory),
            inbox: Arc::new(inbox),
            addr: addr.clone(),
        };
        let role = short_type_name::<A>();
        let spec = ChildSpec {
            name: name.into().into(),
            role: role.into(),
            restart: Restart::default(),
            shutdown: DEFAULT_SHUTDOWN,
            backoff: Backoff::default(),
            deadline: Some(DEFAULT_HANDLER_DEADLINE),
            backlog: None,
            labels: Arc::new([]),
            significant: false,
            starter: Arc::new(starter),
        };
        (addr, spec)
    }

    pub(crate) fn from_starter(name: Arc<str>, role: &str, starter: Arc<dyn Starter>) -> Self {
        ChildSpec {
            name,
            role: role.into(),
            restart: Restart::Permanent,
            shutdown: DEFAULT_SUPERVISOR_SHUTDOWN,
            backoff: Backoff::default(),
            deadline: None,
            backlog: None,
            labels: Arc::new([]),
            significant: false,
            starter,
        }
    }

    /// The role shown in the tree (defaults to the actor's type name).
    pub fn role(mut self, role: impl Into<String>) -> Self {
        self.role = role.into().into();
        self
    }

    /// When this child is restarted.
    pub fn restart(mut self, restart: Restart) -> Self {
        self.restart = restart;
        self
    }

    /// How long it gets to stop gracefully before it is aborted.
    pub fn shutdown(mut self, deadline: Duration) -> Self {
        self.shutdown = deadline;
        self
    }

    /// Its backoff between restarts.
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// The default deadline for each handler (and for `started`); `None` waits forever.
    pub fn deadline(mut self, deadline: Option<Duration>) -> Self {
        self.deadline = deadline;
        self
    }

    /// Shows `probe()` in the tree as the work this actor accepted but has not started (a
    /// queue it keeps besides its mailbox, such as requests waiting for a free slot).
    pub fn backlog(mut self, probe: impl Fn() -> usize + Send + Sync + 'static) -> Self {
        self.backlog = Some(Arc::new(probe));
        self
    }

    /// Adds a `key = value` label to the node (what it serves: a task, a project). The
    /// supervisor does not interpret labels; readers of the tree scope and group by them.
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        let mut labels: Vec<(Arc<str>, Arc<str>)> = self.labels.iter().cloned().collect();
        let key: Arc<str> = key.into().into();
        labels.retain(|(k, _)| *k != key);
        labels.push((key, value.into().into()));
        self.labels = labels.into();
        self
    }

    /// Its labels, in the order they were added.
    pub fn labels(&self) -> impl Iterator<Item = (&str, &str)> {
        self.labels.iter().map(|(k, v)| (&**k, &**v))
    }

    /// Makes this child *significant* (OTP's `auto_shutdown = any_significant`): once it is
    /// down for good — it stopped normally and its restart type says no more, or it failed
    /// fatally — its supervisor stops its other children and exits the same way. A unit of
    /// work with helpers (a task's driver and the role actors it calls) ends when its driver
    /// ends, without the driver stopping its own parent.
    pub fn significant(mut self) -> Self {
        self.significant = true;
        self
    }

    /// Its name among its siblings.
    pub fn name(&self) -> &str {
        &self.name
    }
}

fn short_type_name<T>() -> String {
    let full = std::any::type_name::<T>();
    let base = full.split('<').next().unwrap_or(full);
    base.rsplit("::").next().unwrap_or(base).to_owned()
}

struct ActorStarter<A: Actor> {
    factory: Arc<dyn Fn() -> A + Send + Sync>,
    inbox: Arc<Inbox<A>>,
    addr: Addr<A>,
}

impl<A: Actor> MailboxProbe for Inbox<A> {
    fn depth(&self) -> usize {
        Inbox::depth(self)
    }
    fn capacity(&self) -> usize {
        Inbox::capacity(self)
    }
}

impl<A: Actor> Starter for ActorStarter<A> {
    fn kind(&self) -> NodeKind {
        NodeKind::Actor
    }

    fn detail(&self) -> Option<Arc<str>> {
        None
    }

    fn probe(&self) -> Option<Arc<dyn MailboxProbe>> {
        Some(self.inbox.clone())
    }

    fn run(&self, run: Run) -> BoxFuture<'static, ExitReason> {
        Box::pin(run_actor(
            self.factory.clone(),
            self.inbox.clone(),
            self.addr.clone(),
            run,
        ))
    }

    fn close(&self) {
        self.inbox.close();
    }

    fn is_closed(&self) -> bool {
        self.inbox.is_closed()
    }
}
