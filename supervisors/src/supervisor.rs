//! Supervisors: ordered children, restart strategies, intensity, backoff, dynamic children,
//! ordered shutdown, escalation.
//!
//! A supervisor is itself a child (of another supervisor, or of the process for the root), so
//! trees nest: when a supervisor gives up it stops its children in reverse start order and
//! exits [`ExitReason::Escalated`], and its parent applies its own policy to that exit.
//!
//! Dynamic children (one per session, one per workflow) are started and terminated at run time
//! through a [`SupervisorRef`]. They live as long as the supervisor run that started them: if
//! the supervisor itself restarts, whoever owns them rebuilds them (workflows do so from the
//! journal).

use crate::backoff::BackoffState;
use crate::error::SupervisorError;
use crate::exit::{ExitReason, panic_message};
use crate::intensity::{Intensity, RestartWindow, Verdict};
use crate::registry::{MailboxProbe, NewNode, NodeId, NodeKind, NodeStatus, Registry};
use crate::run::{Run, StopSignal};
use crate::spec::{ChildSpec, Restart, Starter, Strategy};
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use tokio::sync::{Mutex, mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Bound of a supervisor's command queue (start/terminate/restart requests).
const COMMAND_CAPACITY: usize = 256;

/// A supervisor's definition: a name, a strategy, an intensity and ordered children.
pub struct Supervisor {
    name: Arc<str>,
    strategy: Strategy,
    intensity: Intensity,
    children: Vec<ChildSpec>,
    seed: Option<u64>,
    commands: mpsc::Sender<Command>,
    inbox: Arc<Mutex<mpsc::Receiver<Command>>>,
}

impl Supervisor {
    /// A `one_for_one` supervisor with the default [`Intensity`] and no children yet.
    pub fn new(name: impl Into<String>) -> Self {
        let (commands, inbox) = mpsc::channel(COMMAND_CAPACITY);
        Self {
            name: name.into().into(),
            strategy: Strategy::default(),
            intensity: Intensity::default(),
            children: Vec::new(),
            seed: None,
            commands,
            inbox: Arc::new(Mutex::new(inbox)),
        }
    }

    /// Which siblings restart when one fails.
    pub fn strategy(mut self, strategy: Strategy) -> Self {
        self.strategy = strategy;
        self
    }

    /// How many restarts within which window before giving up.
    pub fn intensity(mut self, intensity: Intensity) -> Self {
        self.intensity = intensity;
        self
    }

    /// Adds a child; children start in the order they are added and stop in reverse.
    pub fn child(mut self, spec: ChildSpec) -> Self {
        self.children.push(spec);
        self
    }

    /// Seeds the backoff jitter, so a test can predict every delay.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// A handle for starting and terminating children at run time; valid across restarts.
    pub fn handle(&self) -> SupervisorRef {
        SupervisorRef {
            commands: self.commands.clone(),
        }
    }

    /// This supervisor as a child of another.
    pub fn into_child(self) -> ChildSpec {
        let name = self.name.clone();
        ChildSpec::from_starter(name, "supervisor", Arc::new(self.into_starter()))
    }

    fn into_starter(self) -> SupervisorStarter {
        SupervisorStarter {
            shared: Arc::new(Shared {
                name: self.name,
                strategy: self.strategy,
                intensity: self.intensity,
                children: self.children,
                seed: self.seed,
                inbox: self.inbox,
            }),
            commands: self.commands,
        }
    }

    /// Starts this supervisor as the root of a new tree and waits until its children are up.
    pub async fn start(self) -> SupervisorHandle {
        self.start_in(Registry::new()).await
    }

    /// Starts this supervisor as a root in `registry` and waits until its children are up.
    pub async fn start_in(self, registry: Registry) -> SupervisorHandle {
        let supervisor = self.handle();
        let name = self.name.clone();
        let starter = self.into_starter();
        let node = registry.add(NewNode {
            parent: None,
            name: name.clone(),
            role: "supervisor".into(),
            kind: NodeKind::Supervisor,
            detail: starter.detail(),
            mailbox: None,
            backlog: None,
            labels: Arc::new([]),
        });
        let stop = Arc::new(StopSignal::default());
        let (started, up) = oneshot::channel();
        let run = starter.run(Run {
            node,
            name,
            registry: registry.clone(),
            stop: stop.clone(),
            deadline: None,
            started: Some(started),
        });
        let reg = registry.clone();
        let join = tokio::spawn(async move {
            let reason = AssertUnwindSafe(run)
                .catch_unwind()
                .await
                .unwrap_or_else(|payload| ExitReason::Panicked {
                    message: panic_message(payload.as_ref()),
                });
            reg.record_exit(node, reason.is_abnormal().then(|| reason.to_string()));
            reg.set_status(
                node,
                if reason.is_abnormal() {
                    NodeStatus::Failed
                } else {
                    NodeStatus::Stopped
                },
            );
            reason
        });
        let _ = up.await;
        SupervisorHandle {
            supervisor,
            node,
            registry,
            stop,
            join,
            exit: None,
        }
    }
}

/// A running root supervisor.
pub struct SupervisorHandle {
    supervisor: SupervisorRef,
    node: NodeId,
    registry: Registry,
    stop: Arc<StopSignal>,
    join: JoinHandle<ExitReason>,
    exit: Option<ExitReason>,
}

impl SupervisorHandle {
    /// The tree's registry (for snapshots).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The root's node id.
    pub fn node(&self) -> NodeId {
        self.node
    }

    /// A handle for dynamic children of the root.
    pub fn supervisor(&self) -> SupervisorRef {
        self.supervisor.clone()
    }

    /// True once the root has exited (given up or shut down).
    pub fn is_finished(&self) -> bool {
        self.join.is_finished()
    }

    /// Stops the whole tree in reverse start order, each child within its deadline.
    pub async fn shutdown(mut self) -> ExitReason {
        self.stop.request();
        self.finished().await
    }

    /// Waits until the root exits on its own (it gives up only by escalation).
    pub async fn wait(mut self) -> ExitReason {
        self.finished().await
    }

    /// Waits until the root has exited, without giving up the handle (for `select!`).
    pub async fn finished(&mut self) -> ExitReason {
        if let Some(reason) = &self.exit {
            return reason.clone();
        }
        let reason = (&mut self.join)
            .await
            .unwrap_or_else(|err| ExitReason::Panicked {
                message: err.to_string(),
            });
        self.exit = Some(reason.clone());
        reason
    }
}

/// A cheap, cloneable handle to a supervisor for dynamic children.
#[derive(Clone, Debug)]
pub struct SupervisorRef {
    commands: mpsc::Sender<Command>,
}

impl SupervisorRef {
    /// Starts a dynamic child and waits until it is up (or failed to start and is being
    /// handled under its policy). Names are unique among live siblings.
    pub async fn start_child(&self, spec: ChildSpec) -> Result<NodeId, SupervisorError> {
        self.ask(|reply| Command::Start { spec, reply }).await?
    }

    /// Starts a dynamic child now or, if a live sibling has its name, as soon as that sibling
    /// ends for good (at most one follower per name; a second is redundant and dropped). For a
    /// child that re-reads durable work when it starts: asking while the namesake is on its
    /// way out is then never lost. A follower does not start if this supervisor stops first.
    pub async fn start_child_or_follow(
        &self,
        spec: ChildSpec,
    ) -> Result<ChildStart, SupervisorError> {
        self.ask(|reply| Command::Follow { spec, reply }).await?
    }

    /// Stops a child for good (gracefully, then forced after its shutdown deadline).
    pub async fn terminate_child(&self, id: NodeId) -> Result<(), SupervisorError> {
        self.ask(|reply| Command::Terminate { id, reply }).await?
    }

    /// Stops and starts a child at once (an operator's restart; does not count toward
    /// intensity).
    pub async fn restart_child(&self, id: NodeId) -> Result<(), SupervisorError> {
        self.ask(|reply| Command::Restart { id, reply }).await?
    }

    /// The live child named `name` (running, or waiting to be restarted), if any.
    pub async fn child_named(&self, name: &str) -> Result<Option<NodeId>, SupervisorError> {
        let name = name.to_owned();
        self.ask(|reply| Command::Find { name, reply }).await
    }

    async fn ask<T>(
        &self,
        command: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, SupervisorError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(command(reply))
            .await
            .map_err(|_| SupervisorError::Stopped)?;
        answer.await.map_err(|_| SupervisorError::Stopped)
    }
}

/// What [`SupervisorRef::start_child_or_follow`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildStart {
    /// The child is up (or failed to start and is handled under its policy).
    Now(NodeId),
    /// A live sibling has the name; the child starts when that one ends for good.
    AfterNamesake,
}

enum Command {
    Start {
        spec: ChildSpec,
        reply: oneshot::Sender<Result<NodeId, SupervisorError>>,
    },
    Follow {
        spec: ChildSpec,
        reply: oneshot::Sender<Result<ChildStart, SupervisorError>>,
    },
    Terminate {
        id: NodeId,
        reply: oneshot::Sender<Result<(), SupervisorError>>,
    },
    Restart {
        id: NodeId,
        reply: oneshot::Sender<Result<(), SupervisorError>>,
    },
    Find {
        name: String,
        reply: oneshot::Sender<Option<NodeId>>,
    },
}

struct Shared {
    name: Arc<str>,
    strategy: Strategy,
    intensity: Intensity,
    children: Vec<ChildSpec>,
    seed: Option<u64>,
    inbox: Arc<Mutex<mpsc::Receiver<Command>>>,
}

struct SupervisorStarter {
    shared: Arc<Shared>,
    /// Keeps the command queue open while the spec exists, even with no `SupervisorRef` out.
    #[allow(dead_code)]
    commands: mpsc::Sender<Command>,
}

impl Starter for SupervisorStarter {
    fn kind(&self) -> NodeKind {
        NodeKind::Supervisor
    }

    fn detail(&self) -> Option<Arc<str>> {
        Some(self.shared.strategy.as_str().into())
    }

    fn probe(&self) -> Option<Arc<dyn MailboxProbe>> {
        None
    }

    fn run(&self, run: Run) -> BoxFuture<'static, ExitReason> {
        run.registry.set_control(
            run.node,
            SupervisorRef {
                commands: self.commands.clone(),
            },
        );
        Box::pin(run_supervisor(self.shared.clone(), run))
    }

    fn close(&self) {}

    fn is_closed(&self) -> bool {
        false
    }
}

struct ExitNote {
    id: NodeId,
    run: u64,
    reason: ExitReason,
}

enum SlotState {
    Running {
        run: u64,
        stop: Arc<StopSignal>,
        join: JoinHandle<()>,
    },
    /// Waiting out a backoff; starts again at `due`.
    Waiting { due: Instant },
    /// Down for good under this supervisor run.
    Down,
}

struct Slot {
    spec: ChildSpec,
    dynamic: bool,
    state: SlotState,
    backoff: BackoffState,
    runs: u64,
    started_at: Instant,
}

struct State {
    name: Arc<str>,
    node: NodeId,
    strategy: Strategy,
    registry: Registry,
    window: RestartWindow,
    rng: fastrand::Rng,
    slots: BTreeMap<NodeId, Slot>,
    /// Live children by name, so a name check does not scan every child.
    names: HashMap<Arc<str>, NodeId>,
    /// Children waiting out a backoff, soonest first.
    waiting: BTreeSet<(Instant, NodeId)>,
    /// Dynamic children to start once their live namesake ends for good.
    followers: HashMap<Arc<str>, ChildSpec>,
    /// Followers whose namesake has ended, to start on the next turn of the loop.
    due_followers: Vec<ChildSpec>,
    exits: mpsc::UnboundedSender<ExitNote>,
}

async fn run_supervisor(shared: Arc<Shared>, mut run: Run) -> ExitReason {
    let mut commands = shared.inbox.clone().lock_owned().await;
    // One exit note per child run at most, so this channel is bounded by the children.
    let (exits, mut exit_notes) = mpsc::unbounded_channel();
    let mut state = State {
        name: shared.name.clone(),
        node: run.node,
        strategy: shared.strategy,
        registry: run.registry.clone(),
        window: RestartWindow::new(shared.intensity),
        rng: shared
            .seed
            .map(fastrand::Rng::with_seed)
            .unwrap_or_default(),
        slots: BTreeMap::new(),
        names: HashMap::new(),
        waiting: BTreeSet::new(),
        followers: HashMap::new(),
        due_followers: Vec::new(),
        exits,
    };
    for spec in &shared.children {
        let id = state.add_slot(spec.clone(), false);
        if spec.starter.is_closed() {
            state.finish(id, NodeStatus::Failed);
        } else {
            state.start(id).await;
        }
    }
    run.registry.set_status(run.node, NodeStatus::Running);
    if let Some(started) = run.started.take() {
        let _ = started.send(());
    }

    let reason = loop {
        let due = state.next_due();
        tokio::select! {
            biased;
            () = run.stop.wait() => break ExitReason::Shutdown,
            Some(note) = exit_notes.recv() => {
                if let Some(escalation) = state.on_exit(note).await {
                    break escalation;
                }
            }
            Some(command) = commands.recv() => state.on_command(command).await,
            () = sleep_until_some(due) => state.start_due().await,
        }
        state.start_followers().await;
    };
    state.stop_all().await;
    for id in state.slots.keys() {
        run.registry.remove(*id);
    }
    if let ExitReason::Escalated { reason } = &reason {
        tracing::error!(supervisor = %state.name, %reason, "supervisor gave up; escalating");
    }
    reason
}

async fn sleep_until_some(due: Option<Instant>) {
    match due {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

impl State {
    fn add_slot(&mut self, spec: ChildSpec, dynamic: bool) -> NodeId {
        let id = self.registry.add(NewNode {
            parent: Some(self.node),
            name: spec.name.clone(),
            role: spec.role.clone(),
            kind: spec.starter.kind(),
            detail: spec.starter.detail(),
            mailbox: spec.starter.probe(),
            backlog: spec.backlog.clone(),
            labels: spec.labels.clone(),
        });
        self.names.insert(spec.name.clone(), id);
        self.slots.insert(
            id,
            Slot {
                spec,
                dynamic,
                state: SlotState::Down,
                backoff: BackoffState::default(),
                runs: 0,
                started_at: Instant::now(),
            },
        );
        id
    }

    /// Starts one run of a child and waits until it is up or has failed to start (its exit
    /// note then arrives like any other).
    async fn start(&mut self, id: NodeId) {
        let Some(slot) = self.slots.get_mut(&id) else {
            return;
        };
        if let SlotState::Waiting { due } = slot.state {
            self.waiting.remove(&(due, id));
        }
        slot.runs += 1;
        let run_no = slot.runs;
        let stop = Arc::new(StopSignal::default());
        let (started, up) = oneshot::channel();
        self.registry.set_status(id, NodeStatus::Starting);
        let future = slot.spec.starter.run(Run {
            node: id,
            name: slot.spec.name.clone(),
            registry: self.registry.clone(),
            stop: stop.clone(),
            deadline: slot.spec.deadline,
            started: Some(started),
        });
        let exits = self.exits.clone();
        let join = tokio::spawn(async move {
            let reason = AssertUnwindSafe(future)
                .catch_unwind()
                .await
                .unwrap_or_else(|payload| ExitReason::Panicked {
                    message: panic_message(payload.as_ref()),
                });
            let _ = exits.send(ExitNote {
                id,
                run: run_no,
                reason,
            });
        });
        slot.state = SlotState::Running {
            run: run_no,
            stop,
            join,
        };
        slot.started_at = Instant::now();
        let _ = up.await;
    }

    /// Asks a running child to stop; aborts it after its shutdown deadline.
    async fn stop(&mut self, id: NodeId) {
        let Some(slot) = self.slots.get_mut(&id) else {
            return;
        };
        if let SlotState::Waiting { due } = slot.state {
            self.waiting.remove(&(due, id));
        }
        let SlotState::Running { stop, mut join, .. } =
            std::mem::replace(&mut slot.state, SlotState::Down)
        else {
            return;
        };
        self.registry.set_status(id, NodeStatus::Stopping);
        stop.request();
        if tokio::time::timeout(slot.spec.shutdown, &mut join)
            .await
            .is_err()
        {
            join.abort();
            let _ = join.await;
            tracing::warn!(supervisor = %self.name, child = %slot.spec.name, deadline = ?slot.spec.shutdown, "child did not stop in time; killed");
            self.registry
                .record_exit(id, Some(ExitReason::Killed.to_string()));
        }
        self.registry.set_status(id, NodeStatus::Stopped);
    }

    /// Stops every child in reverse start order.
    async fn stop_all(&mut self) {
        let ids: Vec<NodeId> = self.slots.keys().rev().copied().collect();
        for id in ids {
            self.stop(id).await;
        }
    }

    /// Leaves a child down for good under this run: its mailbox closes, a dynamic child
    /// disappears from the tree.
    fn finish(&mut self, id: NodeId, status: NodeStatus) {
        let Some(slot) = self.slots.get_mut(&id) else {
            return;
        };
        if let SlotState::Waiting { due } = slot.state {
            self.waiting.remove(&(due, id));
        }
        slot.state = SlotState::Down;
        slot.spec.starter.close();
        if slot.dynamic {
            if self.names.get(&slot.spec.name) == Some(&id) {
                self.names.remove(&slot.spec.name);
                if let Some(follower) = self.followers.remove(&slot.spec.name) {
                    self.due_followers.push(follower);
                }
            }
            self.slots.remove(&id);
            self.registry.remove(id);
        } else {
            self.registry.set_status(id, status);
        }
    }

    /// Applies the restart policy to one exit. Returns how the supervisor itself ends: the
    /// escalation when intensity is exceeded, or a significant child's end.
    async fn on_exit(&mut self, note: ExitNote) -> Option<ExitReason> {
        let slot = self.slots.get_mut(&note.id)?;
        match &slot.state {
            SlotState::Running { run, .. } if *run == note.run => {}
            // A run we stopped ourselves, reporting late.
            _ => return None,
        }
        slot.state = SlotState::Down;
        let reason = note.reason;
        let abnormal = reason.is_abnormal();
        self.registry
            .record_exit(note.id, abnormal.then(|| reason.to_string()));
        let child = slot.spec.name.clone();
        let significant = slot.spec.significant;
        if reason.is_fatal() {
            tracing::error!(supervisor = %self.name, %child, %reason, "child failed fatally; not restarting");
            self.finish(note.id, NodeStatus::Failed);
            return significant.then_some(reason);
        }
        let restart = match self.slots.get(&note.id)?.spec.restart {
            Restart::Permanent => true,
            Restart::Transient => abnormal,
            Restart::Temporary => false,
        };
        if !restart {
            tracing::debug!(supervisor = %self.name, %child, %reason, "child exited; not restarting");
            self.finish(note.id, NodeStatus::Stopped);
            // A significant child's end is the supervisor's: it stops the rest and exits.
            return significant.then_some(if abnormal { reason } else { ExitReason::Normal });
        }
        let now = Instant::now();
        if self.window.record(now) == Verdict::Exceeded {
            return Some(ExitReason::Escalated {
                reason: format!(
                    "{child} in {} exited ({reason}) after more than {} restarts within {:?}",
                    self.name,
                    self.window.limit().max_restarts,
                    self.window.limit().within
                ),
            });
        }
        let unit = self.rng.f64();
        let slot = self.slots.get_mut(&note.id)?;
        let ran_for = now.duration_since(slot.started_at);
        let delay = slot.backoff.next_delay(&slot.spec.backoff, ran_for, unit);
        // A failure that says how long to wait (a server's `retry-after`) waits at least that.
        let delay = match &reason {
            ExitReason::Failed(failure) => delay.max(failure.retry_after().unwrap_or_default()),
            _ => delay,
        };
        tracing::warn!(supervisor = %self.name, %child, %reason, delay_ms = delay.as_millis() as u64, strategy = self.strategy.as_str(), "restarting child");
        let due = now + delay;
        let group: Vec<NodeId> = match self.strategy {
            Strategy::OneForOne => vec![note.id],
            Strategy::OneForAll => self.slots.keys().copied().collect(),
            Strategy::RestForOne => self.slots.range(note.id..).map(|(id, _)| *id).collect(),
        };
        // Stop the rest of the group, newest first, then schedule the group in start order.
        for id in group.iter().rev().filter(|id| **id != note.id) {
            if matches!(
                self.slots.get(id).map(|s| &s.state),
                Some(SlotState::Running { .. })
            ) {
                self.stop(*id).await;
                if self.slots.get(id).map(|s| s.spec.restart) == Some(Restart::Temporary) {
                    self.finish(*id, NodeStatus::Stopped);
                    continue;
                }
                self.schedule(*id, due);
            }
        }
        self.schedule(note.id, due);
        None
    }

    fn schedule(&mut self, id: NodeId, due: Instant) {
        if let Some(slot) = self.slots.get_mut(&id) {
            if let SlotState::Waiting { due } = slot.state {
                self.waiting.remove(&(due, id));
            }
            self.waiting.insert((due, id));
            slot.state = SlotState::Waiting { due };
            self.registry.record_restart(id);
            self.registry.set_status(id, NodeStatus::Restarting);
        }
    }

    fn next_due(&self) -> Option<Instant> {
        self.waiting.first().map(|(due, _)| *due)
    }

    /// Starts every child whose backoff has passed, in start order.
    async fn start_due(&mut self) {
        let now = Instant::now();
        let mut due: Vec<NodeId> = self
            .waiting
            .iter()
            .take_while(|(at, _)| *at <= now)
            .map(|(_, id)| *id)
            .collect();
        // A group restarts in start order.
        due.sort_unstable();
        for id in due {
            self.start(id).await;
        }
    }

    /// The live child (running or waiting to restart) named `name`.
    fn live_named(&self, name: &str) -> Option<NodeId> {
        self.names.get(name).copied().filter(|id| {
            self.slots
                .get(id)
                .is_some_and(|s| !matches!(s.state, SlotState::Down))
        })
    }

    fn name_taken(&self, name: &str) -> bool {
        self.live_named(name).is_some()
    }

    fn closed_spec(spec: &ChildSpec) -> SupervisorError {
        SupervisorError::InvalidSpec(format!(
            "child {:?} has stopped for good; build a new spec",
            spec.name
        ))
    }

    /// Adds and starts a dynamic child whose name is free.
    async fn start_dynamic(&mut self, spec: ChildSpec) -> NodeId {
        let id = self.add_slot(spec, true);
        self.start(id).await;
        id
    }

    /// Starts the followers whose namesakes have ended (a follower whose name was taken again
    /// meanwhile waits for that one instead).
    async fn start_followers(&mut self) {
        for spec in std::mem::take(&mut self.due_followers) {
            if self.name_taken(&spec.name) {
                self.followers.entry(spec.name.clone()).or_insert(spec);
            } else if !spec.starter.is_closed() {
                self.start_dynamic(spec).await;
            }
        }
    }

    async fn on_command(&mut self, command: Command) {
        match command {
            Command::Start { spec, reply } => {
                if self.name_taken(&spec.name) {
                    let _ = reply.send(Err(SupervisorError::InvalidSpec(format!(
                        "a child named {:?} is already running under {}",
                        spec.name, self.name
                    ))));
                    return;
                }
                if spec.starter.is_closed() {
                    let _ = reply.send(Err(Self::closed_spec(&spec)));
                    return;
                }
                let id = self.start_dynamic(spec).await;
                let _ = reply.send(Ok(id));
            }
            Command::Follow { spec, reply } => {
                if spec.starter.is_closed() {
                    let _ = reply.send(Err(Self::closed_spec(&spec)));
                    return;
                }
                if self.name_taken(&spec.name) {
                    self.followers.entry(spec.name.clone()).or_insert(spec);
                    let _ = reply.send(Ok(ChildStart::AfterNamesake));
                    return;
                }
                let id = self.start_dynamic(spec).await;
                let _ = reply.send(Ok(ChildStart::Now(id)));
            }
            Command::Terminate { id, reply } => {
                if !self.slots.contains_key(&id) {
                    let _ = reply.send(Err(SupervisorError::NoSuchChild(id.0)));
                    return;
                }
                self.stop(id).await;
                self.finish(id, NodeStatus::Stopped);
                let _ = reply.send(Ok(()));
            }
            Command::Find { name, reply } => {
                let _ = reply.send(self.live_named(&name));
            }
            Command::Restart { id, reply } => {
                if !self.slots.contains_key(&id) {
                    let _ = reply.send(Err(SupervisorError::NoSuchChild(id.0)));
                    return;
                }
                self.stop(id).await;
                self.registry.record_restart(id);
                self.start(id).await;
                let _ = reply.send(Ok(()));
            }
        }
    }
}
