//! The event bus: a gapless, ordered feed of the journal's events for in-process readers.
//!
//! Events are written once, to Postgres ([`Store::append_event`]); the store also hands each
//! one to a broadcast channel. A reader that only listened live would miss what happened
//! before it subscribed, and one that only polled would be slow. [`EventFeed`] does both in
//! the one order that loses nothing: subscribe first, replay the journal after the reader's
//! last id, then serve live events, skipping any id it already served. A reader that falls
//! more than [`BUS_CAPACITY`](crate::store::BUS_CAPACITY) events behind is not dropped: it
//! goes back to the journal and catches up from there.
//!
//! Sessions use it to hear about their tasks; `artel new` uses it to draw progress.

use crate::store::{EventScope, Store, StoreError};
use artel_messages::{Event, EventId, ProjectId, UserId};
use std::collections::{HashMap, VecDeque};
use tokio::sync::broadcast::{Receiver, error::RecvError};

/// Events read from the journal per query while catching up.
const PAGE: u32 = 500;

/// An ordered feed of the events in one scope after a given id. See the module docs.
pub struct EventFeed {
    store: Store,
    scope: EventScope,
    after: EventId,
    live: Receiver<Event>,
    backlog: VecDeque<Event>,
    caught_up: bool,
    /// For [`EventScope::Owner`]: who owns each project seen (owners never change).
    owners: HashMap<ProjectId, UserId>,
}

impl EventFeed {
    /// A feed of the events in `scope` with an id greater than `after` (`EventId::new(0)`
    /// for all of them), then every new one as it is appended.
    pub fn new(store: &Store, scope: EventScope, after: EventId) -> Self {
        Self {
            live: store.subscribe(),
            store: store.clone(),
            scope,
            after,
            backlog: VecDeque::new(),
            caught_up: false,
            owners: HashMap::new(),
        }
    }

    /// The id of the last event served.
    pub fn position(&self) -> EventId {
        self.after
    }

    /// The next event, waiting for one to be appended if need be. Fails only when the
    /// journal cannot be read while catching up (retryable; calling again resumes).
    pub async fn next(&mut self) -> Result<Event, StoreError> {
        loop {
            if let Some(event) = self.backlog.pop_front() {
                self.after = event.id;
                return Ok(event);
            }
            if !self.caught_up {
                let page = self
                    .store
                    .events_since(self.scope, self.after, PAGE)
                    .await?;
                self.caught_up = page.len() < PAGE as usize;
                self.backlog.extend(page);
                continue;
            }
            match self.live.recv().await {
                Ok(event) if event.id > self.after => match self.in_scope(&event).await {
                    Ok(true) => {
                        self.after = event.id;
                        return Ok(event);
                    }
                    Ok(false) => {}
                    // Re-read from the journal next time: this event is not lost.
                    Err(err) => {
                        self.caught_up = false;
                        return Err(err);
                    }
                },
                Ok(_) => {}
                Err(RecvError::Lagged(_)) => self.caught_up = false,
                // The store (which owns the sender) outlives every feed made from it; if it
                // ever did not, the journal is still the truth: poll it.
                Err(RecvError::Closed) => {
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                    self.live = self.store.subscribe();
                    self.caught_up = false;
                }
            }
        }
    }
}

impl EventFeed {
    /// The same filter as [`Store::events_since`]'s.
    async fn in_scope(&mut self, event: &Event) -> Result<bool, StoreError> {
        Ok(match self.scope {
            EventScope::All => true,
            EventScope::Project(project) => event.project == Some(project),
            EventScope::Task(task) => event.task == Some(task),
            EventScope::Owner(user) => match event.project {
                None => false,
                Some(project) => {
                    let owner = match self.owners.get(&project) {
                        Some(owner) => *owner,
                        None => match self.store.project_of_task(project).await {
                            Ok(found) => {
                                self.owners.insert(project, found.owner);
                                found.owner
                            }
                            // Deleted since: nobody's to see.
                            Err(err) if err.is_not_found() => return Ok(false),
                            Err(err) => return Err(err),
                        },
                    };
                    owner == user
                }
            },
        })
    }
}
