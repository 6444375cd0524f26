//! Sessions: one SessionActor per live conversation with the ProductOwner, and the herald
//! that brings each session the news about its tasks.
//!
//! - **Nothing is lost.** [`Sessions::say`] journals the user's line in the transcript
//!   *before* the session handles it (a line that gave a secret is journaled redacted, after
//!   the secret is stored encrypted). The actor then answers every unanswered line in order
//!   ([`WakeSession`]); lines that arrive while it is busy wait in its mailbox, and lines that
//!   arrive while it is asleep, crashed or restarting are answered when it wakes.
//! - **Hibernation.** An actor idle for the configured time stops and its session is marked
//!   `hibernated`; the transcript is in Postgres, so the next line (or news) starts a new actor
//!   with the conversation intact.
//! - **The user never polls.** The herald reads the event journal from a saved cursor; for an
//!   event worth telling about a task that a session started, it wakes the session with a
//!   [`TaskUpdate`], and the session says it once (lines are unique per event, so a replay
//!   after a crash says nothing twice): tests pass, the service is live at its URL, a secret
//!   is needed, a task needs the user, a task failed.
//!
//! The supervision tree: `sessions` (one_for_one) holds `herald` and the dynamic
//! `session/<id>` actors (transient: a crash restarts it, hibernation does not), each
//! labelled `session = <id>` so the API shows it to that session's user only.

pub mod llm_product_owner;
mod product_owner;

use crate::bus::EventFeed;
use crate::intent;
use crate::llm::LlmClient;
use crate::settings::{LlmRole, ProductOwnerKind, Settings};
use crate::store::{ChatLink, EventScope, Store, TaskRecord};
use crate::workflow::{Staffing, Workflows};
use artel_messages::dto::{ChatLineDto, SessionDto};
use artel_messages::event::{ChatRole, EventBody, NewEvent};
use artel_messages::product_owner::{Intent, TaskUpdate, WakeSession};
use artel_messages::tree_labels;
use artel_messages::{
    Classify, ErrorClass, Event, Failure, Request, SessionChannel, SessionId, SessionStatus,
    TaskId, UserId,
};
use artel_supervisors::{
    Actor, Addr, ChildSpec, Context, Handler, Intensity, Restart, Supervisor, SupervisorRef,
};
use llm_product_owner::LlmProductOwner;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The herald's saved position in the event journal.
const HERALD_CURSOR: &str = "sessions.herald";

/// Sessions: opens conversations, takes users' lines, wakes sessions. Cheap to clone.
pub struct Sessions<R: Staffing> {
    inner: Arc<Inner<R>>,
}

impl<R: Staffing> Clone for Sessions<R> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

struct Inner<R: Staffing> {
    store: Store,
    workflows: Workflows<R>,
    supervisor: SupervisorRef,
    idle: Duration,
    /// Who understands the user's lines.
    brain: Brain,
    live: tokio::sync::Mutex<HashMap<SessionId, Addr<SessionActor<R>>>>,
    /// Set when artel shuts down: no session is woken any more (its lines stay journaled).
    closing: std::sync::atomic::AtomicBool,
}

impl<R: Staffing> Sessions<R> {
    /// The `sessions` subtree: the herald and, dynamically, one actor per live session, whose
    /// lines `brain` understands.
    pub fn subtree(
        store: Store,
        workflows: Workflows<R>,
        idle: Duration,
        brain: Brain,
    ) -> (Self, Supervisor) {
        let tree = Supervisor::new("sessions").intensity(Intensity {
            max_restarts: 100,
            within: Duration::from_secs(60),
        });
        let sessions = Self {
            inner: Arc::new(Inner {
                store,
                workflows,
                supervisor: tree.handle(),
                idle,
                brain,
                live: tokio::sync::Mutex::new(HashMap::new()),
                closing: std::sync::atomic::AtomicBool::new(false),
            }),
        };
        let for_herald = sessions.clone();
        let (_addr, herald) = ChildSpec::actor("herald", move || Herald {
            sessions: for_herald.clone(),
            feed: None,
            tasks: HashMap::new(),
        });
        let tree = tree.child(herald.role("herald").shutdown(Duration::from_secs(1)));
        (sessions, tree)
    }

    /// Starts a conversation.
    pub async fn open(&self, user: UserId, channel: SessionChannel) -> Result<SessionDto, Failure> {
        self.inner
            .store
            .create_session(user, channel)
            .await
            .map_err(|e| e.to_failure())
    }

    /// Takes a user's line: stores a secret it gives, journals it (redacted if it gave one),
    /// and has the session answer. Returns the ProductOwner's answer lines. If the session
    /// cannot answer now, the line stays journaled and is answered when it can.
    pub async fn say(&self, session: SessionId, text: &str) -> Result<Vec<ChatLineDto>, Failure> {
        self.say_from(session, text, None).await
    }

    /// [`Sessions::say`] for a line that a front door identifies as `source` (e.g. a
    /// Telegram update): said again after a crash, it is journaled once and answered once.
    pub async fn say_from(
        &self,
        session: SessionId,
        text: &str,
        source: Option<&str>,
    ) -> Result<Vec<ChatLineDto>, Failure> {
        let text = text.trim();
        if text.is_empty() {
            return Err(Failure::fatal("say something: the line is empty"));
        }
        if text.len() > 10_000 {
            return Err(Failure::fatal(
                "that line is too long (at most 10,000 bytes)",
            ));
        }
        let store = &self.inner.store;
        let dto = store
            .session(session)
            .await
            .map_err(|e| e.to_failure())?
            .ok_or_else(|| Failure::fatal(format!("session {session} does not exist")))?;
        if dto.status == SessionStatus::Closed {
            return Err(Failure::fatal(format!("session {session} is closed")));
        }
        let intent = intent::parse(text);
        if let (Intent::ProvideSecret { name, value }, Some(project)) = (&intent, dto.project) {
            store
                .set_secret(project, name, value)
                .await
                .map_err(|e| e.to_failure())?;
        }
        let journaled = intent::redact(text, &intent);
        // The store orders a session's lines by commit (see `append_chat_line`).
        let line = match source {
            None => record_line(store, &dto, ChatRole::User, &journaled, ChatLink::None)
                .await?
                .ok_or_else(|| Failure::fatal("the line was not journaled"))?,
            Some(source) => {
                let (line, new) = store
                    .append_user_line_from(session, &journaled, source)
                    .await
                    .map_err(|e| e.to_failure())?;
                if new {
                    publish_line(store, &dto, ChatRole::User, &journaled).await?;
                }
                line
            }
        };
        self.wake(session).await?;
        let answers = store
            .chat_lines(session, line.id)
            .await
            .map_err(|e| e.to_failure())?;
        Ok(answers
            .into_iter()
            .filter(|l| l.role == ChatRole::ProductOwner)
            .collect())
    }

    /// Has the session answer its unanswered lines; returns how many it answered, counting
    /// those it answered on its own as it woke up (since the last `wake` reported them).
    pub async fn wake(&self, session: SessionId) -> Result<u32, Failure> {
        self.call(session, WakeSession { session }).await
    }

    /// Tells the session about one of its tasks' events.
    pub async fn tell(&self, session: SessionId, event: Event) -> Result<Option<String>, Failure> {
        self.call(session, TaskUpdate { session, event }).await
    }

    async fn call<M, T>(&self, session: SessionId, msg: M) -> Result<T, Failure>
    where
        M: Request<Reply = Result<T, Failure>> + Clone + Send + 'static,
        T: Send + 'static,
        SessionActor<R>: Handler<M>,
    {
        // A session that just hibernated closes its mailbox: start it again and retry once.
        for _ in 0..2 {
            let addr = self.actor(session).await?;
            match addr.call(msg.clone()).await {
                Ok(reply) => return reply,
                Err(err) if err.class() == ErrorClass::Retryable || addr.is_closed() => continue,
                Err(err) => return Err(err.to_failure()),
            }
        }
        Err(Failure::retryable(format!(
            "session {session} is restarting; its line is journaled and will be answered"
        )))
    }

    /// Stops waking sessions: called before the tree shuts down, so nothing restarts a
    /// session while its supervisor is stopping. Lines said meanwhile stay journaled and are
    /// answered at the next start.
    pub fn close(&self) {
        self.inner
            .closing
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// The live actor of `session`, started (woken) if need be.
    async fn actor(&self, session: SessionId) -> Result<Addr<SessionActor<R>>, Failure> {
        if self.inner.closing.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(Failure::retryable(
                "artel is shutting down; the line is journaled and answered at the next start",
            ));
        }
        let mut live = self.inner.live.lock().await;
        if let Some(addr) = live.get(&session)
            && !addr.is_closed()
        {
            return Ok(addr.clone());
        }
        let sessions = self.clone();
        let (addr, spec) = ChildSpec::actor(format!("session/{session}"), move || SessionActor {
            session,
            sessions: sessions.clone(),
            last_active: Instant::now(),
            caught_up: 0,
        });
        let spec = spec
            .role("session")
            .label(tree_labels::SESSION, session.to_string())
            .restart(Restart::Transient);
        self.inner
            .supervisor
            .start_child(spec)
            .await
            .map_err(|e| e.to_failure())?;
        self.inner
            .store
            .set_session_status(session, SessionStatus::Active)
            .await
            .map_err(|e| e.to_failure())?;
        live.insert(session, addr.clone());
        Ok(addr)
    }

    fn store(&self) -> &Store {
        &self.inner.store
    }
}

/// Who understands a session's lines: the offline intent parser, or the ProductOwner's model
/// (`product_owner.kind = llm`) with the offline parser as its fallback.
#[derive(Clone, Default)]
pub enum Brain {
    /// The offline intent parser.
    #[default]
    Offline,
    /// The model.
    Llm(Arc<LlmProductOwner>),
}

impl Brain {
    /// The brain `[product_owner]` configures (`llm` also reads `[llm]` and
    /// `[llm.product_owner]`).
    pub fn from_settings(settings: &Settings) -> Result<Self, Failure> {
        match settings.product_owner.kind {
            ProductOwnerKind::Offline => Ok(Self::Offline),
            ProductOwnerKind::Llm => {
                let client = LlmClient::for_role(&settings.llm, LlmRole::ProductOwner)
                    .map_err(|e| e.to_failure())?;
                Ok(Self::Llm(Arc::new(LlmProductOwner::new(
                    client,
                    &settings.llm,
                )?)))
            }
        }
    }
}

/// Journals a transcript line and publishes it as a `session_message` event (so every front
/// door shows the conversation). `None` when the line was said already (news told twice).
async fn record_line(
    store: &Store,
    session: &SessionDto,
    role: ChatRole,
    text: &str,
    link: ChatLink,
) -> Result<Option<ChatLineDto>, Failure> {
    let line = store
        .append_chat_line(session.id, role, text, link)
        .await
        .map_err(|e| e.to_failure())?;
    if line.is_some() {
        publish_line(store, session, role, text).await?;
    }
    Ok(line)
}

/// Publishes a journaled line as a `session_message` event.
async fn publish_line(
    store: &Store,
    session: &SessionDto,
    role: ChatRole,
    text: &str,
) -> Result<(), Failure> {
    let mut event = NewEvent::new(EventBody::SessionMessage {
        session: session.id,
        role,
        text: text.to_owned(),
    });
    if let Some(project) = session.project {
        event = event.project(project);
    }
    store
        .append_event(event)
        .await
        .map_err(|e| e.to_failure())?;
    Ok(())
}

/// The actor of one live session.
pub struct SessionActor<R: Staffing> {
    session: SessionId,
    sessions: Sessions<R>,
    last_active: Instant,
    /// Lines answered by [`CatchUp`] that no [`WakeSession`] reply has counted yet: a `wake`
    /// that starts the actor finds them answered already, and still reports them.
    caught_up: u32,
}

/// "Answer what waited while the session slept or restarted": sent to itself at start.
#[derive(Debug, Clone)]
pub struct CatchUp;
impl Request for CatchUp {
    type Reply = ();
}

/// "Hibernate if idle": checked on a timer.
#[derive(Debug, Clone)]
pub struct CheckIdle;
impl Request for CheckIdle {
    type Reply = ();
}

impl<R: Staffing> Actor for SessionActor<R> {
    async fn started(&mut self, ctx: &mut Context<Self>) -> Result<(), Failure> {
        let period = (self.sessions.inner.idle / 4).max(Duration::from_millis(50));
        ctx.every(period, || CheckIdle);
        // Answer what waited while the session slept or restarted.
        let _ = ctx.addr().try_send(CatchUp);
        Ok(())
    }
}

impl<R: Staffing> Handler<CheckIdle> for SessionActor<R> {
    async fn handle(&mut self, _msg: CheckIdle, ctx: &mut Context<Self>) {
        if self.last_active.elapsed() < self.sessions.inner.idle {
            return;
        }
        match self
            .sessions
            .store()
            .set_session_status(self.session, SessionStatus::Hibernated)
            .await
        {
            Ok(()) => {
                tracing::debug!(session = %self.session, "session hibernates");
                ctx.stop();
            }
            Err(err) => tracing::warn!(session = %self.session, %err, "cannot hibernate yet"),
        }
    }
}

impl<R: Staffing> Handler<CatchUp> for SessionActor<R> {
    async fn handle(&mut self, _msg: CatchUp, _ctx: &mut Context<Self>) {
        match self.answer_unanswered().await {
            Ok(answered) => self.caught_up += answered,
            // The lines stay journaled: the next wake answers them.
            Err(err) => tracing::warn!(session = %self.session, %err, "cannot catch up yet"),
        }
    }
}

impl<R: Staffing> Handler<WakeSession> for SessionActor<R> {
    async fn handle(
        &mut self,
        _msg: WakeSession,
        _ctx: &mut Context<Self>,
    ) -> Result<u32, Failure> {
        let answered = self.answer_unanswered().await?;
        Ok(answered + std::mem::take(&mut self.caught_up))
    }
}

impl<R: Staffing> Handler<TaskUpdate> for SessionActor<R> {
    async fn handle(
        &mut self,
        msg: TaskUpdate,
        _ctx: &mut Context<Self>,
    ) -> Result<Option<String>, Failure> {
        self.last_active = Instant::now();
        let session = self.load().await?;
        let Some(text) = product_owner::news(&self.sessions, &msg.event).await? else {
            return Ok(None);
        };
        let said = record_line(
            self.sessions.store(),
            &session,
            ChatRole::ProductOwner,
            &text,
            ChatLink::AboutEvent(msg.event.id),
        )
        .await?;
        Ok(said.map(|_| text))
    }
}

impl<R: Staffing> SessionActor<R> {
    /// Answers every unanswered line, in order; returns how many.
    async fn answer_unanswered(&mut self) -> Result<u32, Failure> {
        self.last_active = Instant::now();
        let store = self.sessions.store().clone();
        let mut answered = 0;
        for line in store
            .unanswered_lines(self.session)
            .await
            .map_err(|e| e.to_failure())?
        {
            let session = self.load().await?;
            let text = product_owner::answer(&self.sessions, &session, &line).await?;
            record_line(
                &store,
                &self.load().await?,
                ChatRole::ProductOwner,
                &text,
                ChatLink::ReplyTo(line.id),
            )
            .await?;
            answered += 1;
        }
        Ok(answered)
    }

    async fn load(&self) -> Result<SessionDto, Failure> {
        self.sessions
            .store()
            .session(self.session)
            .await
            .map_err(|e| e.to_failure())?
            .ok_or_else(|| Failure::fatal(format!("session {} does not exist", self.session)))
    }
}

/// Reads the event journal and wakes sessions with news about their tasks.
struct Herald<R: Staffing> {
    sessions: Sessions<R>,
    feed: Option<EventFeed>,
    /// Which session (if any) each task reports to.
    tasks: HashMap<TaskId, Option<SessionId>>,
}

/// "Read the next events."
#[derive(Debug)]
struct Listen;
impl Request for Listen {
    type Reply = ();
}

impl<R: Staffing> Actor for Herald<R> {
    async fn started(&mut self, ctx: &mut Context<Self>) -> Result<(), Failure> {
        let store = self.sessions.store();
        let from = store
            .cursor(HERALD_CURSOR)
            .await
            .map_err(|e| e.to_failure())?;
        self.feed = Some(EventFeed::new(store, EventScope::All, from));
        let _ = ctx.addr().try_send(Listen);
        Ok(())
    }
}

impl<R: Staffing> Handler<Listen> for Herald<R> {
    async fn handle(&mut self, _msg: Listen, ctx: &mut Context<Self>) {
        match self.listen().await {
            Ok(()) => {
                let _ = ctx.addr().try_send(Listen);
            }
            Err(failure) => ctx.fail(failure),
        }
    }
}

impl<R: Staffing> Herald<R> {
    /// Handles the events that arrive within a quarter second, then saves the cursor.
    async fn listen(&mut self) -> Result<(), Failure> {
        if self
            .sessions
            .inner
            .closing
            .load(std::sync::atomic::Ordering::SeqCst)
        {
            // Shutting down: leave the rest of the journal to the next start.
            tokio::time::sleep(Duration::from_millis(50)).await;
            return Ok(());
        }
        let Some(feed) = self.feed.as_mut() else {
            return Err(Failure::retryable("the herald has no feed yet"));
        };
        let deadline = tokio::time::Instant::now() + Duration::from_millis(250);
        let mut moved = false;
        while let Ok(next) = tokio::time::timeout_at(deadline, feed.next()).await {
            let event = next.map_err(|e| e.to_failure())?;
            moved = true;
            let Some(task) = event.task else { continue };
            if !product_owner::is_news(&event.body) {
                continue;
            }
            let session = match self.tasks.get(&task) {
                Some(session) => *session,
                None => {
                    let record: Option<TaskRecord> = self
                        .sessions
                        .store()
                        .task(task)
                        .await
                        .map_err(|e| e.to_failure())?;
                    let session = record.and_then(|t| t.session);
                    self.tasks.insert(task, session);
                    session
                }
            };
            if let Some(session) = session {
                self.sessions.tell(session, event).await?;
            }
        }
        if moved && let Some(feed) = self.feed.as_ref() {
            self.sessions
                .store()
                .save_cursor(HERALD_CURSOR, feed.position())
                .await
                .map_err(|e| e.to_failure())?;
        }
        Ok(())
    }
}
