//! A reader's part of the tree: the nodes a reader may see, with the bare path to them.
//!
//! A front door that serves many users shows each one only some nodes. Which ones is the
//! reader's business (it judges each node, typically by its labels, as [`Visibility`]); the
//! shape of the answer is decided here, once: a visible node comes with its subtree, its
//! ancestors only as the path to it ([`NodeSnapshot::path_only`]), and nothing else.

use crate::registry::{NodeSnapshot, TreeSnapshot};
use std::collections::BTreeMap;

/// How a scoped view treats one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visibility {
    /// The reader may see this node and, unless they are hidden themselves, the nodes below.
    Shown,
    /// The reader may not see this node nor anything below it.
    Hidden,
    /// The node says nothing of its own: shown under a shown node, else only as the path to
    /// a shown node below it, else not at all.
    Inherit,
}

impl TreeSnapshot {
    /// The part of the tree `judge` lets a reader see.
    ///
    /// - A [`Visibility::Shown`] node is kept whole, with every node below it that is not
    ///   [`Visibility::Hidden`].
    /// - A [`Visibility::Hidden`] node is left out with its subtree.
    /// - Any other node is kept only if a shown node is below it, and then reduced to its
    ///   id, name, role, kind and status, with only the children on the way to shown nodes
    ///   (`path_only` is set on it).
    pub fn scoped(self, judge: impl Fn(&NodeSnapshot) -> Visibility) -> TreeSnapshot {
        TreeSnapshot {
            roots: self
                .roots
                .into_iter()
                .filter_map(|root| scope(root, false, &judge))
                .collect(),
        }
    }
}

/// `node` as the reader sees it, under a shown ancestor (`under_shown`) or not.
fn scope(
    mut node: NodeSnapshot,
    under_shown: bool,
    judge: &impl Fn(&NodeSnapshot) -> Visibility,
) -> Option<NodeSnapshot> {
    let shown = match judge(&node) {
        Visibility::Hidden => return None,
        Visibility::Shown => true,
        Visibility::Inherit => under_shown,
    };
    let children: Vec<NodeSnapshot> = std::mem::take(&mut node.children)
        .into_iter()
        .filter_map(|child| scope(child, shown, judge))
        .collect();
    if shown {
        node.children = children;
        Some(node)
    } else if children.is_empty() {
        None
    } else {
        Some(NodeSnapshot {
            id: node.id,
            name: node.name,
            role: node.role,
            kind: node.kind,
            detail: None,
            status: node.status,
            restarts: 0,
            last_error: None,
            mailbox_depth: None,
            mailbox_capacity: None,
            backlog: None,
            labels: BTreeMap::new(),
            uptime_ms: None,
            path_only: true,
            children,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::{NodeId, NodeKind, NodeStatus};

    /// A running node with everything a reader could be shown, labelled `owner = <owner>`
    /// when `owner` is not empty.
    fn node(id: u64, name: &str, owner: &str, children: Vec<NodeSnapshot>) -> NodeSnapshot {
        let kind = if children.is_empty() {
            NodeKind::Actor
        } else {
            NodeKind::Supervisor
        };
        NodeSnapshot {
            id: NodeId(id),
            name: name.to_owned(),
            role: format!("{name}_role"),
            kind,
            detail: (kind == NodeKind::Supervisor).then(|| "one_for_one".to_owned()),
            status: NodeStatus::Running,
            restarts: 2,
            last_error: Some(format!("{name} failed once")),
            mailbox_depth: Some(1),
            mailbox_capacity: Some(64),
            backlog: Some(3),
            labels: if owner.is_empty() {
                BTreeMap::new()
            } else {
                BTreeMap::from([("owner".to_owned(), owner.to_owned())])
            },
            uptime_ms: Some(1_500),
            path_only: false,
            children,
        }
    }

    /// `alice` sees what is labelled hers; a label naming anyone else hides the node.
    fn alice(node: &NodeSnapshot) -> Visibility {
        match node.labels.get("owner").map(String::as_str) {
            None => Visibility::Inherit,
            Some("alice") => Visibility::Shown,
            Some(_) => Visibility::Hidden,
        }
    }

    /// ```text
    /// artel
    /// ├── scheduler
    /// ├── sessions
    /// │   ├── herald
    /// │   ├── session/a   (alice)
    /// │   └── session/b   (bob)
    /// │       └── helper
    /// └── workflows
    ///     └── tasks
    ///         ├── engineering/a   (alice)
    ///         │   ├── developer
    ///         │   └── intruder    (bob)
    ///         └── engineering/b   (bob)
    ///             └── developer   (alice: under bob's node, still hidden)
    /// ```
    fn tree() -> TreeSnapshot {
        TreeSnapshot {
            roots: vec![node(
                1,
                "artel",
                "",
                vec![
                    node(2, "scheduler", "", vec![]),
                    node(
                        3,
                        "sessions",
                        "",
                        vec![
                            node(4, "herald", "", vec![]),
                            node(5, "session/a", "alice", vec![]),
                            node(6, "session/b", "bob", vec![node(7, "helper", "", vec![])]),
                        ],
                    ),
                    node(
                        8,
                        "workflows",
                        "",
                        vec![node(
                            9,
                            "tasks",
                            "",
                            vec![
                                node(
                                    10,
                                    "engineering/a",
                                    "alice",
                                    vec![
                                        node(11, "developer", "", vec![]),
                                        node(12, "intruder", "bob", vec![]),
                                    ],
                                ),
                                node(
                                    13,
                                    "engineering/b",
                                    "bob",
                                    vec![node(14, "developer", "alice", vec![])],
                                ),
                            ],
                        )],
                    ),
                ],
            )],
        }
    }

    fn ids(tree: &TreeSnapshot) -> Vec<u64> {
        fn walk(node: &NodeSnapshot, out: &mut Vec<u64>) {
            out.push(node.id.0);
            node.children.iter().for_each(|c| walk(c, out));
        }
        let mut out = Vec::new();
        tree.roots.iter().for_each(|r| walk(r, &mut out));
        out
    }

    #[test]
    fn a_reader_sees_its_nodes_and_the_paths_to_them_and_nothing_else() {
        let scoped = tree().scoped(alice);
        assert_eq!(ids(&scoped), vec![1, 3, 5, 8, 9, 10, 11]);
    }

    #[test]
    fn a_shown_node_keeps_everything_and_its_unlabelled_children() {
        let scoped = tree().scoped(alice);
        let task = scoped.find("artel/workflows/tasks/engineering/a").unwrap();
        let whole = node(
            10,
            "engineering/a",
            "alice",
            vec![node(11, "developer", "", vec![])],
        );
        assert_eq!(
            task, &whole,
            "no field withheld, the foreign child left out"
        );
        assert_eq!(
            scoped.find("artel/sessions/session/a").unwrap(),
            &node(5, "session/a", "alice", vec![])
        );
    }

    #[test]
    fn ancestors_are_bare_paths() {
        let scoped = tree().scoped(alice);
        let sessions = scoped.find("artel/sessions").unwrap();
        assert!(sessions.path_only);
        assert_eq!(
            (sessions.name.as_str(), sessions.role.as_str()),
            ("sessions", "sessions_role")
        );
        assert_eq!(sessions.kind, NodeKind::Supervisor);
        assert_eq!(sessions.status, NodeStatus::Running);
        assert_eq!(
            (
                &sessions.detail,
                sessions.restarts,
                &sessions.last_error,
                sessions.mailbox_depth,
                sessions.mailbox_capacity,
                sessions.backlog,
                sessions.uptime_ms,
            ),
            (&None, 0, &None, None, None, None, None)
        );
        assert!(sessions.labels.is_empty());
        let names: Vec<&str> = sessions.children.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["session/a"], "no sibling that is not on the way");
        let text = scoped.render();
        assert!(
            text.contains("├── sessions  sessions_role  running\n"),
            "{text}"
        );
        assert!(!text.contains("sessions failed once"), "{text}");
    }

    #[test]
    fn another_readers_nodes_and_errors_appear_nowhere() {
        let scoped = tree().scoped(alice);
        let json = serde_json::to_string(&scoped).unwrap();
        for foreign in [
            "session/b",
            "helper",
            "engineering/b",
            "intruder",
            "bob",
            "herald",
            "scheduler",
        ] {
            assert!(!json.contains(foreign), "{foreign} in {json}");
        }
        for withheld in [
            "artel failed once",
            "sessions failed once",
            "workflows failed once",
            "tasks failed once",
        ] {
            assert!(!json.contains(withheld), "{withheld} in {json}");
        }
        assert!(json.contains("engineering/a failed once"), "{json}");
    }

    #[test]
    fn a_reader_with_nothing_shown_gets_no_roots() {
        let nobody = tree().scoped(|n| match n.labels.get("owner") {
            None => Visibility::Inherit,
            Some(_) => Visibility::Hidden,
        });
        assert!(nobody.roots.is_empty());
    }

    #[test]
    fn a_reader_who_may_see_all_gets_the_tree_unchanged() {
        assert_eq!(tree().scoped(|_| Visibility::Shown), tree());
    }

    #[test]
    fn path_only_is_in_the_json_only_when_set() {
        let whole = serde_json::to_value(node(1, "a", "", vec![])).unwrap();
        assert!(whole.get("path_only").is_none(), "{whole}");
        let scoped = serde_json::to_value(tree().scoped(alice)).unwrap();
        assert_eq!(scoped["roots"][0]["path_only"], true, "{scoped}");
        let back: TreeSnapshot = serde_json::from_value(scoped).unwrap();
        assert_eq!(back, tree().scoped(alice));
    }
}
