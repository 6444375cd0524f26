//! The labels artel puts on supervision-tree nodes: which session, project or task a node
//! serves. The actors that start a node label it; the API reads the same keys to show each
//! user only the nodes of their own work. One spelling here, so the two cannot drift apart.

/// The session a node serves (a `session/<id>` actor): a [`SessionId`](crate::SessionId).
pub const SESSION: &str = "session";
/// The project a node serves: a [`ProjectId`](crate::ProjectId).
pub const PROJECT: &str = "project";
/// The task a node serves (its workflow and roles): a [`TaskId`](crate::TaskId).
pub const TASK: &str = "task";

/// Every label that says whose work a node is: a reader that scopes the tree to one user
/// shows a node only if each of these it carries names that user's session, project or task.
pub const OWNERSHIP: [&str; 3] = [SESSION, PROJECT, TASK];
