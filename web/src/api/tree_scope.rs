//! The supervision tree a caller may see.
//!
//! An operator sees all of it. Anyone else sees only the nodes that serve their own sessions,
//! projects and tasks — as the nodes' labels ([`tree_labels`]) name them — with each node's
//! subtree, and the bare path from the root to it ([`TreeSnapshot::scoped`]). A node labelled
//! with someone else's work is left out with everything under it, so another user's
//! `session/<id>`, its errors and its children never appear; nodes that serve no one in
//! particular (the scheduler, the gateways) appear only as a path, or not at all.
//!
//! Whose work the labels name is asked of the store once per read, for the ids the tree
//! holds right now ([`Store::owned_work`]).

use crate::api::auth::Caller;
use crate::api::error::ApiError;
use artel_actors::store::{Store, WorkIds};
use artel_messages::tree_labels::{self, OWNERSHIP};
use artel_messages::{ProjectId, SessionId, TaskId};
use artel_supervisors::{NodeSnapshot, TreeSnapshot, Visibility};

/// `tree` as `caller` may see it.
pub async fn visible_tree(
    store: &Store,
    caller: &Caller,
    tree: TreeSnapshot,
) -> Result<TreeSnapshot, ApiError> {
    if caller.is_operator() {
        return Ok(tree);
    }
    let owned = store.owned_work(caller.user(), &named_work(&tree)).await?;
    Ok(tree.scoped(|node| judge(node, &owned)))
}

/// Every session, project and task the tree's labels name (values that are not ids are
/// skipped: [`judge`] hides their nodes anyway).
fn named_work(tree: &TreeSnapshot) -> WorkIds {
    fn walk(node: &NodeSnapshot, ids: &mut WorkIds) {
        for (key, value) in &node.labels {
            match key.as_str() {
                tree_labels::SESSION => ids.sessions.extend(value.parse::<SessionId>().ok()),
                tree_labels::PROJECT => ids.projects.extend(value.parse::<ProjectId>().ok()),
                tree_labels::TASK => ids.tasks.extend(value.parse::<TaskId>().ok()),
                _ => {}
            }
        }
        node.children.iter().for_each(|child| walk(child, ids));
    }
    let mut ids = WorkIds::default();
    tree.roots.iter().for_each(|root| walk(root, &mut ids));
    ids
}

/// Shown when every ownership label on `node` names `owned` work, hidden when one names
/// anything else, inherited when it has none.
fn judge(node: &NodeSnapshot, owned: &WorkIds) -> Visibility {
    let mut labelled = false;
    for key in OWNERSHIP {
        let Some(value) = node.labels.get(key) else {
            continue;
        };
        labelled = true;
        let mine = match key {
            tree_labels::SESSION => value.parse().is_ok_and(|id| owned.sessions.contains(&id)),
            tree_labels::PROJECT => value.parse().is_ok_and(|id| owned.projects.contains(&id)),
            tree_labels::TASK => value.parse().is_ok_and(|id| owned.tasks.contains(&id)),
            _ => false,
        };
        if !mine {
            return Visibility::Hidden;
        }
    }
    if labelled {
        Visibility::Shown
    } else {
        Visibility::Inherit
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use artel_supervisors::{NodeId, NodeKind, NodeStatus};
    use std::collections::BTreeMap;

    fn node(labels: &[(&str, String)], children: Vec<NodeSnapshot>) -> NodeSnapshot {
        NodeSnapshot {
            id: NodeId(1),
            name: "n".into(),
            role: "r".into(),
            kind: NodeKind::Actor,
            detail: None,
            status: NodeStatus::Running,
            restarts: 0,
            last_error: None,
            mailbox_depth: None,
            mailbox_capacity: None,
            backlog: None,
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect::<BTreeMap<_, _>>(),
            uptime_ms: None,
            path_only: false,
            children,
        }
    }

    struct Work {
        session: SessionId,
        project: ProjectId,
        task: TaskId,
    }

    fn work() -> Work {
        Work {
            session: SessionId::new(),
            project: ProjectId::new(),
            task: TaskId::new(),
        }
    }

    fn owning(work: &Work) -> WorkIds {
        WorkIds {
            sessions: [work.session].into(),
            projects: [work.project].into(),
            tasks: [work.task].into(),
        }
    }

    #[test]
    fn a_node_is_shown_when_every_label_names_the_callers_work() {
        let mine = work();
        let owned = owning(&mine);
        for labels in [
            vec![("session", mine.session.to_string())],
            vec![("project", mine.project.to_string())],
            vec![
                ("task", mine.task.to_string()),
                ("project", mine.project.to_string()),
            ],
            vec![
                ("task", mine.task.to_string()),
                ("role_detail", "anything".to_owned()),
            ],
        ] {
            assert_eq!(
                judge(&node(&labels, vec![]), &owned),
                Visibility::Shown,
                "{labels:?}"
            );
        }
    }

    #[test]
    fn one_label_naming_other_work_hides_the_node() {
        let (mine, theirs) = (work(), work());
        let owned = owning(&mine);
        for labels in [
            vec![("session", theirs.session.to_string())],
            vec![("task", theirs.task.to_string())],
            vec![
                ("task", mine.task.to_string()),
                ("project", theirs.project.to_string()),
            ],
            vec![("session", "not-a-uuid".to_owned())],
            // An id of the caller's, under the wrong key, is not theirs.
            vec![("task", mine.session.to_string())],
        ] {
            assert_eq!(
                judge(&node(&labels, vec![]), &owned),
                Visibility::Hidden,
                "{labels:?}"
            );
        }
    }

    #[test]
    fn a_node_without_ownership_labels_inherits() {
        let owned = owning(&work());
        assert_eq!(judge(&node(&[], vec![]), &owned), Visibility::Inherit);
        assert_eq!(
            judge(&node(&[("pool", "developers".to_owned())], vec![]), &owned),
            Visibility::Inherit
        );
    }

    #[test]
    fn the_ids_asked_about_are_those_the_tree_names() {
        let (a, b) = (work(), work());
        let tree = TreeSnapshot {
            roots: vec![node(
                &[],
                vec![
                    node(&[("session", a.session.to_string())], vec![]),
                    node(
                        &[
                            ("task", b.task.to_string()),
                            ("project", b.project.to_string()),
                        ],
                        vec![node(&[("session", "garbage".to_owned())], vec![])],
                    ),
                ],
            )],
        };
        assert_eq!(
            named_work(&tree),
            WorkIds {
                sessions: [a.session].into(),
                projects: [b.project].into(),
                tasks: [b.task].into(),
            }
        );
    }
}
