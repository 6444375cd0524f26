//! `/metrics` in the Prometheus text format: the supervision tree (restarts, mailbox depth,
//! nodes by status), dependency readiness, tasks and workers by status, events appended, model
//! tokens, cost and calls (from `llm_requests`), and HTTP requests served. Rendered from
//! snapshots on each scrape — nothing is sampled in between, so the figures and the tree
//! never disagree.
//!
//! The route asks for no key, so the nodes that serve someone's session, project or task (and
//! those below them, whose paths hold its id) are counted by status but never named.

use artel_actors::health::ReadinessReport;
use artel_actors::store::Stats;
use artel_messages::tree_labels::OWNERSHIP;
use artel_supervisors::{NodeSnapshot, TreeSnapshot};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// Restarts of each node since its supervisor started it.
pub const ACTOR_RESTARTS: &str = "artel_actor_restarts_total";
/// Messages waiting in each actor's mailbox.
pub const MAILBOX_DEPTH: &str = "artel_actor_mailbox_depth";
/// Each actor's mailbox bound.
pub const MAILBOX_CAPACITY: &str = "artel_actor_mailbox_capacity";
/// Work an actor accepted and holds but has not started (the worker-manager's commands
/// waiting for a free worker).
pub const BACKLOG: &str = "artel_actor_backlog";
/// Tree nodes by status.
pub const TREE_NODES: &str = "artel_tree_nodes";
/// 1 when a dependency answers, else 0.
pub const DEPENDENCY_UP: &str = "artel_dependency_up";
/// Tasks by status.
pub const TASKS: &str = "artel_tasks";
/// Workers by status.
pub const WORKERS: &str = "artel_workers";
/// Events appended to the journal.
pub const EVENTS: &str = "artel_events_total";
/// Model tokens, by role, model and kind (`input`, `output`, `cached`).
pub const LLM_TOKENS: &str = "artel_llm_tokens_total";
/// Model cost in USD, by role and model.
pub const LLM_COST: &str = "artel_llm_cost_usd_total";
/// Model calls, by status.
pub const LLM_REQUESTS: &str = "artel_llm_requests_total";
/// HTTP requests answered, by status class.
pub const HTTP_REQUESTS: &str = "artel_http_requests_total";
/// Entries of a Redis stream a consumer group has not read yet.
pub const STREAM_LAG: &str = "artel_stream_lag";
/// Entries a consumer group has read but not acknowledged.
pub const STREAM_PENDING: &str = "artel_stream_pending";

/// One consumer group of one registered stream, as `XINFO GROUPS` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupLag {
    /// The stream's key.
    pub stream: String,
    /// The consumer group.
    pub group: String,
    /// Entries not yet delivered to the group (`None` when Redis cannot tell).
    pub lag: Option<u64>,
    /// Entries delivered and not acknowledged.
    pub pending: u64,
}

/// Reads every registered stream's groups (streams not created yet have none).
pub async fn stream_lag(
    redis: &mut redis::aio::ConnectionManager,
) -> Result<Vec<GroupLag>, redis::RedisError> {
    let mut lags = Vec::new();
    for spec in artel_messages::STREAMS {
        let exists: bool = redis::cmd("EXISTS")
            .arg(spec.name)
            .query_async(redis)
            .await?;
        if !exists {
            continue;
        }
        let groups: Vec<std::collections::HashMap<String, redis::Value>> = redis::cmd("XINFO")
            .arg("GROUPS")
            .arg(spec.name)
            .query_async(redis)
            .await?;
        for group in groups {
            let number = |key: &str| match group.get(key) {
                Some(redis::Value::Int(n)) => u64::try_from(*n).ok(),
                _ => None,
            };
            let name = match group.get("name") {
                Some(redis::Value::BulkString(bytes)) => {
                    String::from_utf8_lossy(bytes).into_owned()
                }
                Some(redis::Value::SimpleString(text)) => text.clone(),
                _ => continue,
            };
            lags.push(GroupLag {
                stream: spec.name.to_owned(),
                group: name,
                lag: number("lag"),
                pending: number("pending").unwrap_or(0),
            });
        }
    }
    Ok(lags)
}

/// Open WebSocket event subscriptions.
pub const WS_SUBSCRIBERS: &str = "artel_websocket_subscribers";

/// Renders the WebSocket gauge.
pub fn render_subscribers(count: usize) -> String {
    let mut out = String::new();
    header(
        &mut out,
        WS_SUBSCRIBERS,
        "gauge",
        "Open WebSocket event subscriptions.",
    );
    let _ = writeln!(out, "{WS_SUBSCRIBERS} {count}");
    out
}

/// Renders the stream metrics (appended to [`render`]'s output when Redis is configured).
pub fn render_streams(lags: &[GroupLag]) -> String {
    let mut out = String::new();
    header(
        &mut out,
        STREAM_LAG,
        "gauge",
        "Entries of a stream its consumer group has not read yet.",
    );
    for l in lags {
        if let Some(lag) = l.lag {
            let _ = writeln!(
                out,
                "{STREAM_LAG}{{stream=\"{}\",group=\"{}\"}} {lag}",
                l.stream, l.group
            );
        }
    }
    header(
        &mut out,
        STREAM_PENDING,
        "gauge",
        "Entries a consumer group has read and not acknowledged.",
    );
    for l in lags {
        let _ = writeln!(
            out,
            "{STREAM_PENDING}{{stream=\"{}\",group=\"{}\"}} {}",
            l.stream, l.group, l.pending
        );
    }
    out
}

/// HTTP responses by status class (1xx–5xx), counted by the gateway's middleware.
#[derive(Default)]
pub struct HttpCounters([AtomicU64; 5]);

impl HttpCounters {
    /// Counts one response with this status code.
    pub fn record(&self, status: u16) {
        let class = usize::from((status / 100).clamp(1, 5)) - 1;
        self.0[class].fetch_add(1, Ordering::Relaxed);
    }
}

/// Renders every metric.
pub fn render(
    tree: &TreeSnapshot,
    readiness: &ReadinessReport,
    stats: Option<&Stats>,
    http: &HttpCounters,
) -> String {
    let mut out = String::new();
    let mut all = Vec::new();
    for root in &tree.roots {
        flatten(root, "", false, &mut all);
    }
    // `/metrics` asks for no key: nodes of someone's session, project or task (their paths
    // hold its id) are only counted, never named.
    let nodes: Vec<(&String, &NodeSnapshot)> = all
        .iter()
        .filter_map(|(path, node)| Some((path.as_ref()?, *node)))
        .collect();

    header(
        &mut out,
        ACTOR_RESTARTS,
        "counter",
        "Restarts of each supervision-tree node.",
    );
    for (path, node) in &nodes {
        let _ = writeln!(
            out,
            "{ACTOR_RESTARTS}{{node=\"{}\",role=\"{}\"}} {}",
            escape(path),
            escape(&node.role),
            node.restarts
        );
    }
    header(
        &mut out,
        MAILBOX_DEPTH,
        "gauge",
        "Messages waiting in each actor's mailbox.",
    );
    for (path, node) in &nodes {
        if let Some(depth) = node.mailbox_depth {
            let _ = writeln!(out, "{MAILBOX_DEPTH}{{node=\"{}\"}} {depth}", escape(path));
        }
    }
    header(
        &mut out,
        MAILBOX_CAPACITY,
        "gauge",
        "Each actor's mailbox bound.",
    );
    for (path, node) in &nodes {
        if let Some(capacity) = node.mailbox_capacity {
            let _ = writeln!(
                out,
                "{MAILBOX_CAPACITY}{{node=\"{}\"}} {capacity}",
                escape(path)
            );
        }
    }
    header(
        &mut out,
        BACKLOG,
        "gauge",
        "Work each actor accepted and holds but has not started.",
    );
    for (path, node) in &nodes {
        if let Some(backlog) = node.backlog {
            let _ = writeln!(
                out,
                "{BACKLOG}{{node=\"{}\",role=\"{}\"}} {backlog}",
                escape(path),
                escape(&node.role)
            );
        }
    }
    header(
        &mut out,
        TREE_NODES,
        "gauge",
        "Supervision-tree nodes by status.",
    );
    let mut by_status: BTreeMap<&str, u64> = BTreeMap::new();
    for (_, node) in &all {
        *by_status.entry(node.status.as_str()).or_default() += 1;
    }
    for (status, count) in by_status {
        let _ = writeln!(out, "{TREE_NODES}{{status=\"{status}\"}} {count}");
    }

    header(
        &mut out,
        DEPENDENCY_UP,
        "gauge",
        "1 when a dependency answers its probe.",
    );
    for (name, check) in &readiness.checks {
        let _ = writeln!(
            out,
            "{DEPENDENCY_UP}{{dependency=\"{name}\"}} {}",
            u8::from(check.ok)
        );
    }

    if let Some(stats) = stats {
        header(&mut out, TASKS, "gauge", "Tasks by status.");
        for (status, count) in &stats.tasks {
            let _ = writeln!(out, "{TASKS}{{status=\"{}\"}} {count}", escape(status));
        }
        header(&mut out, WORKERS, "gauge", "Workers by status.");
        for (status, count) in &stats.workers {
            let _ = writeln!(out, "{WORKERS}{{status=\"{}\"}} {count}", escape(status));
        }
        header(
            &mut out,
            EVENTS,
            "counter",
            "Events appended to the journal.",
        );
        let _ = writeln!(out, "{EVENTS} {}", stats.events);
        render_llm(&mut out, &stats.llm);
    }

    header(
        &mut out,
        HTTP_REQUESTS,
        "counter",
        "HTTP requests answered, by status class.",
    );
    for (i, count) in http.0.iter().enumerate() {
        let _ = writeln!(
            out,
            "{HTTP_REQUESTS}{{class=\"{}xx\"}} {}",
            i + 1,
            count.load(Ordering::Relaxed)
        );
    }
    out
}

/// The model counters, from `llm_requests` (so they survive restarts and cover every node).
fn render_llm(out: &mut String, totals: &[artel_actors::store::LlmTotal]) {
    let mut by_model: BTreeMap<(&str, &str), [i64; 4]> = BTreeMap::new();
    let mut by_status: BTreeMap<&str, i64> = BTreeMap::new();
    for t in totals {
        let sums = by_model.entry((&t.role, &t.model)).or_default();
        sums[0] += t.tokens_in;
        sums[1] += t.tokens_out;
        sums[2] += t.tokens_cached;
        sums[3] += t.cost_micro_usd;
        *by_status.entry(&t.status).or_default() += t.requests;
    }
    header(
        out,
        LLM_TOKENS,
        "counter",
        "Model tokens, by role, model and kind (input counts cached ones too).",
    );
    for ((role, model), sums) in &by_model {
        for (kind, n) in [("input", sums[0]), ("output", sums[1]), ("cached", sums[2])] {
            let _ = writeln!(
                out,
                "{LLM_TOKENS}{{role=\"{}\",model=\"{}\",kind=\"{kind}\"}} {n}",
                escape(role),
                escape(model)
            );
        }
    }
    header(
        out,
        LLM_COST,
        "counter",
        "Model cost in USD, by role and model.",
    );
    for ((role, model), sums) in &by_model {
        let _ = writeln!(
            out,
            "{LLM_COST}{{role=\"{}\",model=\"{}\"}} {}",
            escape(role),
            escape(model),
            sums[3] as f64 / 1e6
        );
    }
    header(out, LLM_REQUESTS, "counter", "Model calls, by status.");
    for (status, n) in &by_status {
        let _ = writeln!(out, "{LLM_REQUESTS}{{status=\"{}\"}} {n}", escape(status));
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Every node below `node` (and itself), each with its path — `None` for the nodes that
/// serve someone's work and those below them.
fn flatten<'a>(
    node: &'a NodeSnapshot,
    prefix: &str,
    of_someone: bool,
    out: &mut Vec<(Option<String>, &'a NodeSnapshot)>,
) {
    let path = if prefix.is_empty() {
        node.name.clone()
    } else {
        format!("{prefix}/{}", node.name)
    };
    let of_someone = of_someone || OWNERSHIP.iter().any(|key| node.labels.contains_key(*key));
    for child in &node.children {
        flatten(child, &path, of_someone, out);
    }
    out.push(((!of_someone).then_some(path), node));
}

/// A label value as the text format wants it.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_calls_render_as_the_three_counters() {
        use artel_actors::store::LlmTotal;
        let call = |status: &str, n, i, cost| LlmTotal {
            role: "Developer".into(),
            model: "gpt-x".into(),
            status: status.into(),
            requests: n,
            tokens_in: i,
            tokens_out: 10,
            tokens_cached: 5,
            cost_micro_usd: cost,
        };
        let mut out = String::new();
        render_llm(
            &mut out,
            &[call("ok", 3, 300, 1_500_000), call("rate_limited", 2, 0, 0)],
        );
        for line in [
            "artel_llm_tokens_total{role=\"Developer\",model=\"gpt-x\",kind=\"input\"} 300",
            "artel_llm_tokens_total{role=\"Developer\",model=\"gpt-x\",kind=\"output\"} 20",
            "artel_llm_tokens_total{role=\"Developer\",model=\"gpt-x\",kind=\"cached\"} 10",
            "artel_llm_cost_usd_total{role=\"Developer\",model=\"gpt-x\"} 1.5",
            "artel_llm_requests_total{status=\"ok\"} 3",
            "artel_llm_requests_total{status=\"rate_limited\"} 2",
            "# TYPE artel_llm_cost_usd_total counter",
        ] {
            assert!(out.contains(line), "{line} missing from:\n{out}");
        }
    }

    #[test]
    fn stream_lag_renders_per_group() {
        let out = render_streams(&[
            GroupLag {
                stream: "artel.worker-manager.commands".into(),
                group: "worker-manager".into(),
                lag: Some(3),
                pending: 1,
            },
            GroupLag {
                stream: "artel.worker-manager.replies".into(),
                group: "workflows.a".into(),
                lag: None,
                pending: 0,
            },
        ]);
        assert!(out.contains(
            "artel_stream_lag{stream=\"artel.worker-manager.commands\",group=\"worker-manager\"} 3"
        ));
        assert!(!out.contains("group=\"workflows.a\"} 0\nartel_stream_lag"));
        assert!(out.contains(
            "artel_stream_pending{stream=\"artel.worker-manager.replies\",group=\"workflows.a\"} 0"
        ));
    }

    #[test]
    fn the_worker_queue_is_a_backlog_gauge() {
        let node = |name: &str, backlog: Option<usize>, children| NodeSnapshot {
            id: artel_supervisors::NodeId(1),
            name: name.into(),
            role: "worker-manager".into(),
            kind: artel_supervisors::NodeKind::Actor,
            detail: None,
            status: artel_supervisors::NodeStatus::Running,
            restarts: 0,
            last_error: None,
            mailbox_depth: Some(1),
            mailbox_capacity: Some(1024),
            backlog,
            labels: BTreeMap::new(),
            uptime_ms: Some(5),
            path_only: false,
            children,
        };
        let tree = TreeSnapshot {
            roots: vec![node(
                "artel",
                None,
                vec![node("worker-manager", Some(2), vec![])],
            )],
        };
        let readiness = ReadinessReport {
            ready: true,
            checks: BTreeMap::new(),
        };
        let text = render(&tree, &readiness, None, &HttpCounters::default());
        assert!(
            text.contains(
                "artel_actor_backlog{node=\"artel/worker-manager\",role=\"worker-manager\"} 2"
            ),
            "{text}"
        );
        assert!(text.contains("artel_actor_mailbox_depth{node=\"artel/worker-manager\"} 1"));
        assert!(
            !text.contains("artel_actor_backlog{node=\"artel\""),
            "{text}"
        );
    }

    #[test]
    fn nodes_of_someones_work_are_counted_not_named() {
        let node = |name: &str, labels: &[(&str, &str)], children| NodeSnapshot {
            id: artel_supervisors::NodeId(1),
            name: name.to_owned(),
            role: name.to_owned(),
            kind: artel_supervisors::NodeKind::Actor,
            detail: None,
            status: artel_supervisors::NodeStatus::Running,
            restarts: 0,
            last_error: None,
            mailbox_depth: Some(0),
            mailbox_capacity: Some(64),
            backlog: None,
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            uptime_ms: None,
            path_only: false,
            children,
        };
        let tree = TreeSnapshot {
            roots: vec![node(
                "artel",
                &[],
                vec![
                    node("scheduler", &[], vec![]),
                    node("session/s-1", &[("session", "s-1")], vec![]),
                    node(
                        "engineering/t-1",
                        &[("task", "t-1")],
                        vec![node("developer", &[], vec![])],
                    ),
                ],
            )],
        };
        let text = render(
            &tree,
            &ReadinessReport {
                ready: true,
                checks: BTreeMap::new(),
            },
            None,
            &HttpCounters::default(),
        );
        assert!(
            text.contains("artel_actor_mailbox_capacity{node=\"artel/scheduler\"} 64"),
            "{text}"
        );
        for id in ["s-1", "t-1"] {
            assert!(!text.contains(id), "{id} in {text}");
        }
        assert!(
            text.contains("artel_tree_nodes{status=\"running\"} 5"),
            "{text}"
        );
    }

    #[test]
    fn label_values_are_escaped_and_classes_counted() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        let http = HttpCounters::default();
        http.record(200);
        http.record(204);
        http.record(503);
        let text = render(
            &TreeSnapshot { roots: Vec::new() },
            &ReadinessReport {
                ready: false,
                checks: BTreeMap::new(),
            },
            None,
            &http,
        );
        assert!(
            text.contains("artel_http_requests_total{class=\"2xx\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("artel_http_requests_total{class=\"5xx\"} 1"),
            "{text}"
        );
    }
}
