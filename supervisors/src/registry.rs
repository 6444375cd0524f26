//! The live tree registry: every supervisor and actor, its status, restarts, last error,
//! mailbox depth and uptime, readable at any moment without asking the actors.
//!
//! Supervisors write it as they start, restart and stop children; readers (REST, the CLI,
//! the dashboard) take a [`TreeSnapshot`], which is plain data and serializes to JSON.

use crate::error::SupervisorError;
use crate::supervisor::SupervisorRef;
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::{self, Write as _};
use std::sync::Arc;
use tokio::time::Instant;

/// A node's id in the tree; ids grow with start order and are never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NodeId(pub u64);

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// Whether a node is a supervisor or a worker actor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeKind {
    /// Supervises children.
    Supervisor,
    /// Handles messages.
    Actor,
}

/// Where a node is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeStatus {
    /// Its run is being set up (`started` has not returned yet).
    Starting,
    /// Running and handling messages.
    Running,
    /// Failed; waiting out its backoff before the next run.
    Restarting,
    /// Asked to stop; finishing its current message.
    Stopping,
    /// Stopped and will not run again under this supervisor run.
    Stopped,
    /// Stopped for good by a fatal failure or by giving up.
    Failed,
}

impl NodeStatus {
    /// The lowercase name, as in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Starting => "starting",
            Self::Running => "running",
            Self::Restarting => "restarting",
            Self::Stopping => "stopping",
            Self::Stopped => "stopped",
            Self::Failed => "failed",
        }
    }
}

/// Reads a mailbox's depth and bound without touching the actor.
pub(crate) trait MailboxProbe: Send + Sync {
    fn depth(&self) -> usize;
    fn capacity(&self) -> usize;
}

/// Reads how much work an actor has accepted but not started (a queue it keeps besides its
/// mailbox, e.g. requests waiting for a free slot), without touching the actor.
pub type BacklogProbe = Arc<dyn Fn() -> usize + Send + Sync>;

/// Free-form `key = value` facts about a node that its supervisor does not interpret (what
/// the node serves, for readers that scope or group the tree).
pub type Labels = Arc<[(Arc<str>, Arc<str>)]>;

struct Node {
    parent: Option<NodeId>,
    name: Arc<str>,
    role: Arc<str>,
    kind: NodeKind,
    detail: Option<Arc<str>>,
    status: NodeStatus,
    restarts: u64,
    last_error: Option<String>,
    since: Option<Instant>,
    mailbox: Option<Arc<dyn MailboxProbe>>,
    backlog: Option<BacklogProbe>,
    labels: Labels,
    /// For a running supervisor: its command queue, so an operator can restart or stop one of
    /// its children by id.
    control: Option<SupervisorRef>,
    children: BTreeSet<NodeId>,
}

#[derive(Default)]
struct Inner {
    nodes: HashMap<NodeId, Node>,
    roots: BTreeSet<NodeId>,
    next: u64,
}

/// The shared registry of one supervision tree (cheap to clone).
#[derive(Clone, Default)]
pub struct Registry {
    inner: Arc<RwLock<Inner>>,
}

/// What is needed to add a node.
pub(crate) struct NewNode {
    pub parent: Option<NodeId>,
    pub name: Arc<str>,
    pub role: Arc<str>,
    pub kind: NodeKind,
    pub detail: Option<Arc<str>>,
    pub mailbox: Option<Arc<dyn MailboxProbe>>,
    pub backlog: Option<BacklogProbe>,
    pub labels: Labels,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    pub(crate) fn add(&self, new: NewNode) -> NodeId {
        let mut inner = self.inner.write();
        inner.next += 1;
        let id = NodeId(inner.next);
        match new.parent {
            Some(parent) => {
                if let Some(p) = inner.nodes.get_mut(&parent) {
                    p.children.insert(id);
                }
            }
            None => {
                inner.roots.insert(id);
            }
        }
        inner.nodes.insert(
            id,
            Node {
                parent: new.parent,
                name: new.name,
                role: new.role,
                kind: new.kind,
                detail: new.detail,
                status: NodeStatus::Starting,
                restarts: 0,
                last_error: None,
                since: None,
                mailbox: new.mailbox,
                backlog: new.backlog,
                labels: new.labels,
                control: None,
                children: BTreeSet::new(),
            },
        );
        id
    }

    /// Removes a node and everything under it.
    pub(crate) fn remove(&self, id: NodeId) {
        let mut inner = self.inner.write();
        let parent = inner.nodes.get(&id).and_then(|n| n.parent);
        match parent {
            Some(p) => {
                if let Some(p) = inner.nodes.get_mut(&p) {
                    p.children.remove(&id);
                }
            }
            None => {
                inner.roots.remove(&id);
            }
        }
        let mut stack = vec![id];
        while let Some(next) = stack.pop() {
            if let Some(node) = inner.nodes.remove(&next) {
                stack.extend(node.children);
            }
        }
    }

    pub(crate) fn set_status(&self, id: NodeId, status: NodeStatus) {
        if let Some(node) = self.inner.write().nodes.get_mut(&id) {
            if status == NodeStatus::Running && node.status != NodeStatus::Running {
                node.since = Some(Instant::now());
            }
            if !matches!(status, NodeStatus::Running | NodeStatus::Stopping) {
                node.since = None;
            }
            node.status = status;
        }
    }

    pub(crate) fn record_exit(&self, id: NodeId, error: Option<String>) {
        if let Some(node) = self.inner.write().nodes.get_mut(&id)
            && error.is_some()
        {
            node.last_error = error;
        }
    }

    pub(crate) fn record_restart(&self, id: NodeId) {
        if let Some(node) = self.inner.write().nodes.get_mut(&id) {
            node.restarts += 1;
        }
    }

    pub(crate) fn set_control(&self, id: NodeId, control: SupervisorRef) {
        if let Some(node) = self.inner.write().nodes.get_mut(&id) {
            node.control = Some(control);
        }
    }

    /// The supervisor of node `id`, for an operator's restart or stop.
    fn parent_control(&self, id: NodeId) -> Result<SupervisorRef, SupervisorError> {
        let inner = self.inner.read();
        let node = inner
            .nodes
            .get(&id)
            .ok_or(SupervisorError::NoSuchChild(id.0))?;
        let parent = node.parent.ok_or_else(|| {
            SupervisorError::InvalidSpec(format!(
                "node {} is a root: stop the process instead",
                id.0
            ))
        })?;
        inner
            .nodes
            .get(&parent)
            .and_then(|p| p.control.clone())
            .ok_or(SupervisorError::Stopped)
    }

    /// Restarts node `id` under its supervisor (an operator's restart: it does not count
    /// toward the supervisor's intensity). A root cannot be restarted this way.
    pub async fn restart_node(&self, id: NodeId) -> Result<(), SupervisorError> {
        self.parent_control(id)?.restart_child(id).await
    }

    /// Stops node `id` for good (gracefully, then forced after its shutdown deadline); its
    /// supervisor does not restart it. A root cannot be stopped this way.
    pub async fn stop_node(&self, id: NodeId) -> Result<(), SupervisorError> {
        self.parent_control(id)?.terminate_child(id).await
    }

    /// Number of nodes in the tree.
    pub fn len(&self) -> usize {
        self.inner.read().nodes.len()
    }

    /// True when the tree has no node.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The whole tree as plain data.
    pub fn snapshot(&self) -> TreeSnapshot {
        let inner = self.inner.read();
        let now = Instant::now();
        let roots = inner
            .roots
            .iter()
            .filter_map(|id| snapshot_node(&inner, *id, now))
            .collect();
        TreeSnapshot { roots }
    }

    /// One node and its subtree, if it exists.
    pub fn node(&self, id: NodeId) -> Option<NodeSnapshot> {
        let inner = self.inner.read();
        snapshot_node(&inner, id, Instant::now())
    }
}

fn snapshot_node(inner: &Inner, id: NodeId, now: Instant) -> Option<NodeSnapshot> {
    let node = inner.nodes.get(&id)?;
    Some(NodeSnapshot {
        id,
        name: node.name.to_string(),
        role: node.role.to_string(),
        kind: node.kind,
        detail: node.detail.as_deref().map(str::to_owned),
        status: node.status,
        restarts: node.restarts,
        last_error: node.last_error.clone(),
        mailbox_depth: node.mailbox.as_ref().map(|m| m.depth()),
        mailbox_capacity: node.mailbox.as_ref().map(|m| m.capacity()),
        backlog: node.backlog.as_ref().map(|probe| probe()),
        labels: node
            .labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        uptime_ms: node
            .since
            .map(|s| u64::try_from(now.duration_since(s).as_millis()).unwrap_or(u64::MAX)),
        path_only: false,
        children: node
            .children
            .iter()
            .filter_map(|c| snapshot_node(inner, *c, now))
            .collect(),
    })
}

/// One node of a [`TreeSnapshot`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeSnapshot {
    /// Stable id while the node exists.
    pub id: NodeId,
    /// Name, unique among its siblings (e.g. `http`, `session/42`).
    pub name: String,
    /// The role it plays (e.g. `gateway`, `product_owner`, `supervisor`).
    pub role: String,
    /// Supervisor or actor.
    pub kind: NodeKind,
    /// For supervisors: the strategy; free text otherwise.
    pub detail: Option<String>,
    /// Where it is in its life.
    pub status: NodeStatus,
    /// Restarts since its supervisor started.
    pub restarts: u64,
    /// The last abnormal exit, in words.
    pub last_error: Option<String>,
    /// Messages waiting (actors only).
    pub mailbox_depth: Option<usize>,
    /// The mailbox's bound (actors only).
    pub mailbox_capacity: Option<usize>,
    /// Work the actor accepted and holds but has not started (for actors that keep such a
    /// queue besides their mailbox).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backlog: Option<usize>,
    /// What the node serves, as its spec labelled it (e.g. `task`, `project`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Milliseconds since its current run started (running nodes only).
    pub uptime_ms: Option<u64>,
    /// True when a scoped view ([`TreeSnapshot::scoped`]) shows this node only as the way to
    /// nodes below it: its name, role, kind and status are real; everything else about it
    /// (restarts, errors, mailbox, labels, its other children) is withheld.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub path_only: bool,
    /// Its children, in start order.
    pub children: Vec<NodeSnapshot>,
}

impl NodeSnapshot {
    /// Finds a descendant (or this node) by a `/`-separated path of names below this node,
    /// e.g. `"gateways/http"`; the empty path is this node.
    ///
    /// A child's name may itself hold `/` (`engineering/<task>`): such a child matches as many
    /// segments as its name has.
    pub fn find(&self, path: &str) -> Option<&NodeSnapshot> {
        let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
        self.find_parts(&parts)
    }

    fn find_parts(&self, parts: &[&str]) -> Option<&NodeSnapshot> {
        if parts.is_empty() {
            return Some(self);
        }
        self.children.iter().find_map(|child| {
            let width = child.name.split('/').count();
            let matches = parts.len() >= width && parts[..width].join("/") == child.name;
            if matches {
                child.find_parts(&parts[width..])
            } else {
                None
            }
        })
    }
}

/// The whole tree at one moment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TreeSnapshot {
    /// Top-level supervisors, in start order.
    pub roots: Vec<NodeSnapshot>,
}

impl TreeSnapshot {
    /// Finds a node by its path from a root, e.g. `"artel/gateways/http"`.
    pub fn find(&self, path: &str) -> Option<&NodeSnapshot> {
        let mut parts = path.splitn(2, '/');
        let root = parts.next()?;
        let rest = parts.next().unwrap_or("");
        self.roots.iter().find(|r| r.name == root)?.find(rest)
    }

    /// The tree drawn for a terminal, one node a line:
    /// `├── http  gateway  running  up 3.2s  restarts 0  mailbox 0/64`.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for root in &self.roots {
            render_line(&mut out, root, "", "");
            render_children(&mut out, root, "");
        }
        out
    }
}

fn render_children(out: &mut String, node: &NodeSnapshot, prefix: &str) {
    let last = node.children.len().saturating_sub(1);
    for (i, child) in node.children.iter().enumerate() {
        let (branch, extend) = if i == last {
            ("└── ", "    ")
        } else {
            ("├── ", "│   ")
        };
        render_line(out, child, prefix, branch);
        render_children(out, child, &format!("{prefix}{extend}"));
    }
}

fn render_line(out: &mut String, node: &NodeSnapshot, prefix: &str, branch: &str) {
    let _ = write!(out, "{prefix}{branch}{}", node.name);
    match (&node.kind, &node.detail) {
        // A plain supervisor is known by its strategy; one with a role of its own (a task's
        // subtree) by both.
        (NodeKind::Supervisor, Some(detail)) if node.role == "supervisor" => {
            let _ = write!(out, "  [{detail}]");
        }
        (NodeKind::Supervisor, Some(detail)) => {
            let _ = write!(out, "  {} [{detail}]", node.role);
        }
        _ => {
            let _ = write!(out, "  {}", node.role);
        }
    }
    let _ = write!(out, "  {}", node.status.as_str());
    if node.path_only {
        out.push('\n');
        return;
    }
    if let Some(ms) = node.uptime_ms {
        let _ = write!(out, "  up {}", human_duration(ms));
    }
    let _ = write!(out, "  restarts {}", node.restarts);
    if let (Some(depth), Some(cap)) = (node.mailbox_depth, node.mailbox_capacity) {
        let _ = write!(out, "  mailbox {depth}/{cap}");
    }
    if let Some(backlog) = node.backlog {
        let _ = write!(out, "  queued {backlog}");
    }
    for (key, value) in &node.labels {
        let _ = write!(out, "  {key}={value}");
    }
    if let Some(err) = &node.last_error {
        let _ = write!(out, "  last error: {err}");
    }
    out.push('\n');
}

fn human_duration(ms: u64) -> String {
    match ms {
        0..1_000 => format!("{ms}ms"),
        1_000..60_000 => format!("{:.1}s", ms as f64 / 1000.0),
        60_000..3_600_000 => format!("{}m{}s", ms / 60_000, (ms % 60_000) / 1000),
        _ => format!("{}h{}m", ms / 3_600_000, (ms % 3_600_000) / 60_000),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add(reg: &Registry, parent: Option<NodeId>, name: &str, kind: NodeKind) -> NodeId {
        reg.add(NewNode {
            parent,
            name: name.into(),
            role: if kind == NodeKind::Supervisor {
                "supervisor".into()
            } else {
                "test".into()
            },
            kind,
            detail: (kind == NodeKind::Supervisor).then(|| "one_for_one".into()),
            mailbox: None,
            backlog: None,
            labels: Arc::new([]),
        })
    }

    #[test]
    fn renders_a_tree_with_branches() {
        let reg = Registry::new();
        let root = add(&reg, None, "artel", NodeKind::Supervisor);
        let a = add(&reg, Some(root), "a", NodeKind::Actor);
        let _b = add(&reg, Some(root), "b", NodeKind::Actor);
        reg.set_status(a, NodeStatus::Restarting);
        reg.record_restart(a);
        reg.record_exit(a, Some("panicked: boom".into()));
        let text = reg.snapshot().render();
        assert_eq!(
            text,
            "artel  [one_for_one]  starting  restarts 0\n\
             ├── a  test  restarting  restarts 1  last error: panicked: boom\n\
             └── b  test  starting  restarts 0\n"
        );
    }

    #[test]
    fn renders_what_a_node_serves_and_what_it_holds() {
        let node = NodeSnapshot {
            id: NodeId(7),
            name: "developer".into(),
            role: "developer".into(),
            kind: NodeKind::Actor,
            detail: None,
            status: NodeStatus::Running,
            restarts: 1,
            last_error: Some("agent timed out".into()),
            mailbox_depth: Some(2),
            mailbox_capacity: Some(16),
            backlog: Some(3),
            labels: BTreeMap::from([
                ("task".to_owned(), "t-1".to_owned()),
                ("project".to_owned(), "p-1".to_owned()),
            ]),
            uptime_ms: Some(61_000),
            path_only: false,
            children: vec![],
        };
        let tree = TreeSnapshot { roots: vec![node] };
        assert_eq!(
            tree.render(),
            "developer  developer  running  up 1m1s  restarts 1  mailbox 2/16  queued 3  \
             project=p-1  task=t-1  last error: agent timed out\n"
        );
    }

    #[test]
    fn a_supervisor_with_a_role_of_its_own_shows_it_beside_its_strategy() {
        let reg = Registry::new();
        let task = reg.add(NewNode {
            parent: None,
            name: "engineering/t-1".into(),
            role: "engineering_task".into(),
            kind: NodeKind::Supervisor,
            detail: Some("one_for_one".into()),
            mailbox: None,
            backlog: None,
            labels: Arc::new([("task".into(), "t-1".into())]),
        });
        reg.set_status(task, NodeStatus::Stopping);
        assert_eq!(
            reg.snapshot().render(),
            "engineering/t-1  engineering_task [one_for_one]  stopping  restarts 0  task=t-1\n"
        );
    }

    #[test]
    fn removing_a_node_removes_its_subtree() {
        let reg = Registry::new();
        let root = add(&reg, None, "artel", NodeKind::Supervisor);
        let sub = add(&reg, Some(root), "sub", NodeKind::Supervisor);
        add(&reg, Some(sub), "leaf", NodeKind::Actor);
        assert_eq!(reg.len(), 3);
        reg.remove(sub);
        assert_eq!(reg.len(), 1);
        assert!(reg.snapshot().find("artel/sub").is_none());
    }
}
