//! `GET /api/v1/events/ws`: the event journal, live, over a WebSocket.
//!
//! A client names what it wants (`project=` repeatable or `projects=a,b`; none means all of
//! its projects, or everything for an operator) and where to start (`since=<event id>`; none
//! means only new events). The server replays what the client missed from Postgres, then
//! switches to live events without a gap or a duplicate: it subscribes to the live stream
//! *before* replaying and drops live events at or below the last id replayed.
//!
//! **One serialization per event.** An [`EventHub`] task per server turns each appended event
//! into its wire frame once and broadcasts the shared bytes; a connection only filters and
//! forwards them, so ten thousand subscribers cost ten thousand reference-count increments
//! per event, not ten thousand `serde_json` runs.
//!
//! **Slow consumers are closed, not buffered.** Frames go through actix-ws's bounded queue to
//! the socket; a frame that cannot be queued within [`SEND_DEADLINE`] closes the connection
//! with code 4008 and a reason telling the client to reconnect with `since`. A connection that
//! falls behind the hub's broadcast buffer re-reads what it missed from the journal instead.
//!
//! Messages: `{"type":"event","event":{…}}` and `{"type":"heartbeat","position":N}` every
//! [`HEARTBEAT`] (with a WebSocket ping). Close codes: 1000 normal, 1001 server shutting down,
//! 4008 too slow.

use crate::api::ApiState;
use crate::api::auth::{Caller, authenticate};
use crate::api::error::ApiError;
use actix_web::{HttpRequest, HttpResponse, web};
use actix_ws::{CloseCode, CloseReason, Message};
use artel_actors::store::{EventScope, Store, StoreError};
use artel_messages::{Event, EventId, ProjectId, UserId};
use bytestring::ByteString;
use futures_util::StreamExt as _;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::broadcast::{self, error::RecvError};

/// How long one frame may wait for room in the connection's queue before the client is
/// considered too slow.
pub const SEND_DEADLINE: Duration = Duration::from_secs(5);

/// How long a too-slow client has to make room for the close frame that tells it so.
const CLOSE_DEADLINE: Duration = Duration::from_secs(10);

/// How often an idle connection hears a heartbeat.
pub const HEARTBEAT: Duration = Duration::from_secs(15);

/// Close code for a client that does not read fast enough.
pub const CLOSE_TOO_SLOW: u16 = 4008;

/// Live events a connection may fall behind the hub by before it re-reads the journal.
const HUB_CAPACITY: usize = 4096;

/// Events read from the journal per query while catching up.
const PAGE: u32 = 500;

/// The routes of this module.
pub fn routes(config: &mut web::ServiceConfig) {
    config.route("/events/ws", web::get().to(subscribe));
}

/// One event as every connection sends it: serialized once.
#[derive(Debug)]
pub struct Frame {
    /// The event's id.
    pub id: EventId,
    /// Its project, for filtering.
    pub project: Option<ProjectId>,
    /// `{"type":"event","event":…}`.
    pub text: ByteString,
}

fn frame(event: &Event) -> Frame {
    let text = serde_json::json!({ "type": "event", "event": event }).to_string();
    Frame {
        id: event.id,
        project: event.project,
        text: ByteString::from(text),
    }
}

/// The server's one subscriber to the store's live events: serializes each once and
/// broadcasts the frame on the channel of its project (for connections that follow one
/// project) and on the channel of everything (for the rest, who filter). A connection is
/// woken only by events it may want: ten thousand subscribers spread over a hundred
/// projects cost a hundred wake-ups per event, not ten thousand.
#[derive(Clone)]
pub struct EventHub {
    all: broadcast::Sender<Arc<Frame>>,
    projects: Arc<parking_lot::Mutex<HashMap<ProjectId, broadcast::Sender<Arc<Frame>>>>>,
}

impl EventHub {
    /// Starts the hub's task on the current runtime; it runs as long as the store's bus.
    pub fn start(store: &Store) -> Self {
        let (all, _) = broadcast::channel(HUB_CAPACITY);
        let hub = Self {
            all,
            projects: Arc::default(),
        };
        let mut live = store.subscribe();
        let store = store.clone();
        let publisher = hub.clone();
        tokio::spawn(async move {
            let mut last = EventId::new(0);
            loop {
                match live.recv().await {
                    Ok(event) => {
                        last = event.id;
                        publisher.publish(&event);
                    }
                    // Connections that fall behind the hub re-read the journal; the hub
                    // itself re-reads what it missed, so every frame is sent in id order.
                    Err(RecvError::Lagged(_)) => loop {
                        match store.events_since(EventScope::All, last, PAGE).await {
                            Ok(page) => {
                                let done = page.len() < PAGE as usize;
                                for event in page {
                                    last = event.id;
                                    publisher.publish(&event);
                                }
                                if done {
                                    break;
                                }
                            }
                            Err(err) => {
                                tracing::warn!(error = %err, "event hub cannot catch up yet");
                                tokio::time::sleep(Duration::from_millis(500)).await;
                            }
                        }
                    },
                    Err(RecvError::Closed) => return,
                }
            }
        });
        hub
    }

    fn publish(&self, event: &Event) {
        let frame = Arc::new(frame(event));
        if let Some(project) = event.project {
            let mut projects = self.projects.lock();
            if let Some(sender) = projects.get(&project) {
                if sender.receiver_count() == 0 {
                    projects.remove(&project);
                } else {
                    let _ = sender.send(frame.clone());
                }
            }
        }
        let _ = self.all.send(frame);
    }

    /// The live frames of one project (before a connection replays the journal).
    fn follow_project(&self, project: ProjectId) -> broadcast::Receiver<Arc<Frame>> {
        self.projects
            .lock()
            .entry(project)
            .or_insert_with(|| broadcast::channel(HUB_CAPACITY).0)
            .subscribe()
    }

    /// Every live frame.
    fn follow_all(&self) -> broadcast::Receiver<Arc<Frame>> {
        self.all.subscribe()
    }

    /// Connections listening now.
    pub fn subscribers(&self) -> usize {
        self.all.receiver_count()
            + self
                .projects
                .lock()
                .values()
                .map(broadcast::Sender::receiver_count)
                .sum::<usize>()
    }
}

/// What a connection asked for.
#[derive(Debug, Clone)]
enum Filter {
    /// Everything (operators without a project filter).
    All,
    /// Every project of this user, including ones created later.
    Owner(UserId),
    /// These projects.
    Projects(HashSet<ProjectId>),
}

impl Filter {
    /// The journal query for catching up (narrowest that covers the filter).
    fn scope(&self, owner: UserId, operator: bool) -> EventScope {
        match self {
            Self::All => EventScope::All,
            Self::Owner(user) => EventScope::Owner(*user),
            Self::Projects(set) if set.len() == 1 => match set.iter().next() {
                Some(project) => EventScope::Project(*project),
                None => EventScope::Owner(owner),
            },
            Self::Projects(_) if operator => EventScope::All,
            Self::Projects(_) => EventScope::Owner(owner),
        }
    }
}

/// Parses the query and resolves every project the caller names (404 for one it cannot see).
async fn parse(
    state: &ApiState,
    caller: &Caller,
    query: &str,
) -> Result<(Filter, Option<EventId>), ApiError> {
    let pairs = web::Query::<Vec<(String, String)>>::from_query(query)
        .map_err(|e| ApiError::bad_request(format!("bad query string: {e}")))?;
    let mut since = None;
    let mut named = Vec::new();
    for (key, value) in pairs.into_inner() {
        match key.as_str() {
            "since" => {
                let id: i64 = value.parse().map_err(|_| {
                    ApiError::validation(format!("`since` must be an event id, not `{value}`"))
                })?;
                if id < 0 {
                    return Err(ApiError::validation("`since` must be 0 or more"));
                }
                since = Some(EventId::new(id));
            }
            "project" => named.push(value),
            "projects" => named.extend(
                value
                    .split(',')
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .map(str::to_owned),
            ),
            "access_token" => {}
            other => {
                return Err(ApiError::validation(format!(
                    "unknown parameter `{other}`: use project, projects, since, access_token"
                )));
            }
        }
    }
    if named.len() > 100 {
        return Err(ApiError::validation("at most 100 projects per connection"));
    }
    let filter = if named.is_empty() {
        match caller.scope() {
            Some(owner) => Filter::Owner(owner),
            None => Filter::All,
        }
    } else {
        let mut set = HashSet::new();
        for segment in &named {
            set.insert(state.project(caller, segment).await?.id);
        }
        Filter::Projects(set)
    };
    Ok((filter, since))
}

/// Upgrades to a WebSocket once the key, the query and every named project check out.
pub async fn subscribe(
    state: web::Data<ApiState>,
    req: HttpRequest,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let caller = authenticate(&state, &req).await?;
    let (filter, since) = parse(&state, &caller, req.query_string()).await?;
    let after = match since {
        Some(id) => id,
        None => state.store.latest_event_id().await?,
    };
    // Subscribed before the replay starts, so nothing appended meanwhile is missed.
    let live = match &filter {
        Filter::Projects(set) if set.len() == 1 => match set.iter().next() {
            Some(project) => state.hub.follow_project(*project),
            None => state.hub.follow_all(),
        },
        _ => state.hub.follow_all(),
    };
    let (response, session, messages) = actix_ws::handle(&req, body)
        .map_err(|e| ApiError::bad_request(format!("not a WebSocket upgrade: {e}")))?;
    let connection = Connection {
        state: state.into_inner(),
        owner: caller.user(),
        operator: caller.is_operator(),
        filter,
        after,
        owners: HashMap::new(),
        session,
    };
    actix_web::rt::spawn(connection.run(live, messages));
    Ok(response)
}

struct Connection {
    state: Arc<ApiState>,
    owner: UserId,
    operator: bool,
    filter: Filter,
    /// The last event id sent (or skipped as not wanted).
    after: EventId,
    /// Who owns each project seen, for [`Filter::Owner`].
    owners: HashMap<ProjectId, UserId>,
    session: actix_ws::Session,
}

/// Why a connection ends.
enum End {
    /// The client closed or went away.
    Client,
    /// Too slow to read.
    TooSlow,
    /// The server is shutting down.
    Shutdown,
    /// The journal could not be read for too long.
    Failed(String),
}

impl Connection {
    async fn run(
        mut self,
        mut live: broadcast::Receiver<Arc<Frame>>,
        mut messages: actix_ws::MessageStream,
    ) {
        let end = self.serve(&mut live, &mut messages).await;
        let reason = match end {
            End::Client => return,
            End::TooSlow => CloseReason {
                code: CloseCode::Other(CLOSE_TOO_SLOW),
                description: Some(format!(
                    "too slow: reconnect with since={}",
                    self.after.get()
                )),
            },
            End::Shutdown => CloseReason {
                code: CloseCode::Away,
                description: Some(format!(
                    "server shutting down: reconnect with since={}",
                    self.after.get()
                )),
            },
            End::Failed(why) => CloseReason {
                code: CloseCode::Error,
                description: Some(why.chars().take(100).collect()),
            },
        };
        // A full queue takes the close frame once the client reads again; a client that
        // never does is cut off when the session is dropped.
        let _ = tokio::time::timeout(CLOSE_DEADLINE, self.session.close(Some(reason))).await;
    }

    async fn serve(
        &mut self,
        live: &mut broadcast::Receiver<Arc<Frame>>,
        messages: &mut actix_ws::MessageStream,
    ) -> End {
        if let Err(end) = self.catch_up().await {
            return end;
        }
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let mut idle_ticks = 0u64;
        loop {
            tokio::select! {
                frame = live.recv() => match frame {
                    Ok(frame) => {
                        if frame.id <= self.after {
                            continue;
                        }
                        match self.wanted(frame.project).await {
                            Ok(true) => {
                                if let Err(end) = self.send(frame.text.clone()).await {
                                    return end;
                                }
                            }
                            Ok(false) => {}
                            Err(err) => {
                                return End::Failed(format!("cannot read the journal: {err}"));
                            }
                        }
                        self.after = frame.id;
                    }
                    Err(RecvError::Lagged(_)) => {
                        if let Err(end) = self.catch_up().await {
                            return end;
                        }
                    }
                    Err(RecvError::Closed) => return End::Shutdown,
                },
                message = messages.next() => match message {
                    Some(Ok(Message::Ping(bytes))) => {
                        if self.session.pong(&bytes).await.is_err() {
                            return End::Client;
                        }
                    }
                    Some(Ok(Message::Close(_)) | Err(_)) | None => return End::Client,
                    Some(Ok(_)) => {}
                },
                _ = tick.tick() => {
                    if self.state.draining.load(Ordering::Relaxed) {
                        return End::Shutdown;
                    }
                    idle_ticks += 1;
                    if idle_ticks >= HEARTBEAT.as_secs() {
                        idle_ticks = 0;
                        let beat = serde_json::json!({
                            "type": "heartbeat",
                            "position": self.after.get(),
                        })
                        .to_string();
                        if let Err(end) = self.send(ByteString::from(beat)).await {
                            return end;
                        }
                        if self.session.ping(b"artel").await.is_err() {
                            return End::Client;
                        }
                    }
                }
            }
        }
    }

    /// Queues one frame, or gives up on a client that has not made room within the deadline.
    async fn send(&mut self, text: ByteString) -> Result<(), End> {
        match tokio::time::timeout(SEND_DEADLINE, self.session.text(text)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_closed)) => Err(End::Client),
            Err(_elapsed) => Err(End::TooSlow),
        }
    }

    /// Sends everything wanted after `self.after` from the journal.
    async fn catch_up(&mut self) -> Result<(), End> {
        let scope = self.filter.scope(self.owner, self.operator);
        let mut failures = 0;
        loop {
            let page = match self.state.store.events_since(scope, self.after, PAGE).await {
                Ok(page) => page,
                Err(err) if failures < 10 => {
                    failures += 1;
                    tracing::warn!(error = %err, "a WebSocket cannot read the journal yet");
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    continue;
                }
                Err(err) => return Err(End::Failed(format!("cannot read the journal: {err}"))),
            };
            let done = page.len() < PAGE as usize;
            for event in page {
                let wanted = self
                    .wanted(event.project)
                    .await
                    .map_err(|e| End::Failed(format!("cannot read the journal: {e}")))?;
                if wanted {
                    self.send(frame(&event).text).await?;
                }
                self.after = event.id;
            }
            if done {
                return Ok(());
            }
        }
    }

    /// Whether an event of `project` is for this connection.
    async fn wanted(&mut self, project: Option<ProjectId>) -> Result<bool, StoreError> {
        Ok(match (&self.filter, project) {
            (Filter::All, _) => true,
            (_, None) => false,
            (Filter::Projects(set), Some(project)) => set.contains(&project),
            (Filter::Owner(user), Some(project)) => {
                let owner = match self.owners.get(&project) {
                    Some(owner) => *owner,
                    None => match self.state.store.project_of_task(project).await {
                        Ok(found) => {
                            self.owners.insert(project, found.owner);
                            found.owner
                        }
                        Err(err) if err.is_not_found() => return Ok(false),
                        Err(err) => return Err(err),
                    },
                };
                owner == *user
            }
        })
    }
}
