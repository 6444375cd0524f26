//! A supervised, hibernating actor per Telegram chat, and the dispatcher that wakes them.
//!
//! Chats used to be plain tasks beside the gateway, invisible in the tree and lost with a
//! panic. Now each chat with updates is a `chat/<chat id>` actor ([`ChatActor`]) under the
//! dynamic `chats` supervisor of `gateways/telegram`:
//!
//! - **The journal is the source of truth.** The dispatcher ([`run`]) only finds the chats
//!   with unhandled updates and sends each one's actor a [`Wake`]; the actor reads its own
//!   chat's unhandled updates from `telegram_updates` and handles them in order
//!   ([`chat::handle_in_order`](super::chat)). An actor that fails or panics is restarted
//!   with backoff (transient, one_for_one) and resumes at its first unhandled update; the
//!   other chats go on.
//! - **Hibernation.** An actor idle for `telegram.chat_idle_secs` stops; the chat's next
//!   update starts a new one. It keeps nothing the journal does not have.
//! - **Only the poller-lease holder** runs chat actors: the dispatcher starts none without
//!   the lease, and an actor that finds the lease gone stops.

use super::{Telegram, chat};
use artel_messages::{Classify as _, Failure, Request};
use artel_supervisors::{
    Actor, Addr, ChildSpec, Context, Handler, Intensity, Restart, Supervisor, SupervisorRef,
    TrySendError,
};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How many of a chat's updates one [`Wake`] reads; more are read by the next one.
const BATCH: i64 = 20;

/// How long one batch may take before the chat's actor counts as stuck and is restarted
/// (each update waits for the ProductOwner's answer).
const BATCH_DEADLINE: Duration = Duration::from_secs(600);

/// The chats' actors: their supervisor and the addresses of the live ones.
pub struct Chats {
    supervisor: SupervisorRef,
    idle: Duration,
    live: tokio::sync::Mutex<HashMap<i64, Addr<ChatActor>>>,
}

impl Chats {
    /// The `chats` supervisor (empty until chats have updates) and its handle.
    pub fn subtree(idle: Duration) -> (Self, Supervisor) {
        let tree = Supervisor::new("chats").intensity(Intensity {
            max_restarts: 100,
            within: Duration::from_secs(60),
        });
        let chats = Self {
            supervisor: tree.handle(),
            idle,
            live: tokio::sync::Mutex::new(HashMap::new()),
        };
        (chats, tree)
    }

    /// Has `chat`'s actor look at its unhandled updates, starting (waking) it if need be.
    async fn wake(&self, telegram: &Telegram, chat: i64) -> Result<(), Failure> {
        let name = format!("chat/{chat}");
        let mut live = self.live.lock().await;
        // A supervisor that restarted has none of its dynamic children: ask it, not the map.
        let running = self
            .supervisor
            .child_named(&name)
            .await
            .map_err(|e| e.to_failure())?
            .is_some();
        if running && let Some(addr) = live.get(&chat) {
            match addr.try_send(Wake) {
                // Full: it has wakes queued already.
                Ok(()) | Err(TrySendError::Full(_)) => return Ok(()),
                // It hibernated just now: start a new one below.
                Err(TrySendError::Closed(_)) => {}
            }
        }
        let actor = telegram.clone();
        let (addr, spec) = ChildSpec::actor(name, move || ChatActor {
            telegram: actor.clone(),
            chat,
            last_active: Instant::now(),
        });
        let spec = spec
            .role("telegram_chat")
            .restart(Restart::Transient)
            .deadline(Some(BATCH_DEADLINE));
        // A namesake that is stopping (hibernating, or unreachable after our own restart) is
        // followed: the new actor starts when it has ended, and reads the journal then.
        self.supervisor
            .start_child_or_follow(spec)
            .await
            .map_err(|e| e.to_failure())?;
        live.insert(chat, addr);
        Ok(())
    }
}

/// Wakes the actor of every chat with unhandled updates, as updates are journaled; returns
/// only on a store failure.
pub async fn run(telegram: Telegram) -> Result<(), Failure> {
    loop {
        // Woken when updates are journaled; the timeout retries updates left for later.
        let _ =
            tokio::time::timeout(Duration::from_secs(2), telegram.inner.updates.notified()).await;
        if !telegram.leased() {
            continue;
        }
        let chats = telegram
            .store()
            .telegram_chats_with_unhandled_updates(telegram.bot_id())
            .await
            .map_err(|e| e.to_failure())?;
        for chat in chats {
            telegram.inner.chats.wake(&telegram, chat).await?;
        }
    }
}

/// The actor of one Telegram chat: handles its journaled updates in order.
pub struct ChatActor {
    telegram: Telegram,
    chat: i64,
    last_active: Instant,
}

/// "Handle your chat's unhandled updates."
#[derive(Debug, Clone)]
pub struct Wake;
impl Request for Wake {
    type Reply = ();
}

/// "Hibernate if idle": checked on a timer.
#[derive(Debug, Clone)]
pub struct CheckIdle;
impl Request for CheckIdle {
    type Reply = ();
}

impl Actor for ChatActor {
    async fn started(&mut self, ctx: &mut Context<Self>) -> Result<(), Failure> {
        let idle = self.telegram.inner.chats.idle;
        ctx.every((idle / 4).max(Duration::from_millis(50)), || CheckIdle);
        // Resume where the journal says, after a restart as after a wake-up.
        let _ = ctx.addr().try_send(Wake);
        Ok(())
    }
}

impl Handler<Wake> for ChatActor {
    async fn handle(&mut self, _msg: Wake, ctx: &mut Context<Self>) {
        if !self.telegram.leased() {
            ctx.stop();
            return;
        }
        self.last_active = Instant::now();
        let telegram = &self.telegram;
        let updates = match telegram
            .store()
            .unhandled_telegram_updates_of_chat(telegram.bot_id(), self.chat, BATCH)
            .await
        {
            Ok(updates) => updates,
            Err(err) => return ctx.fail(err.to_failure()),
        };
        let full = updates.len() as i64 == BATCH;
        match chat::handle_in_order(telegram, updates).await {
            // More may wait behind a full batch.
            Ok(true) if full => {
                let _ = ctx.addr().try_send(Wake);
            }
            // Left for later (a retryable failure): the dispatcher wakes it again.
            Ok(_) => {}
            Err(failure) => ctx.fail(failure),
        }
        self.last_active = Instant::now();
    }
}

impl Handler<CheckIdle> for ChatActor {
    async fn handle(&mut self, _msg: CheckIdle, ctx: &mut Context<Self>) {
        if !self.telegram.leased() || self.last_active.elapsed() >= self.telegram.inner.chats.idle {
            tracing::debug!(chat = self.chat, "Telegram chat hibernates");
            ctx.stop();
        }
    }
}
