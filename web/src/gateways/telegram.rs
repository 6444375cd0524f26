//! The Telegram front door: a bot whose chats are sessions with the ProductOwner.
//!
//! ```text
//! gateways/telegram   (supervisor, rest_for_one)
//! ├── bot      (actor; its tasks below run beside it and fail it on a store error)
//! │   poller     lease the token → getUpdates (long poll) → journal each update → offset moves
//! │   chats      the dispatcher: chats with unhandled updates → wake each chat's actor
//! │   delivery   see below
//! └── chats    (supervisor) chat/<chat id>: journaled updates in order → link the chat →
//!              Sessions::say (keyed by update); hibernates when idle ([`chats`])
//!
//! delivery:
//!   delivery   ProductOwner lines after each chat's cursor → sendMessage (questions with an
//!              inline keyboard) → cursor moves; one status message per task, edited in place
//! ```
//!
//! - **Exactly once in.** An update is journaled before the offset that confirms it is sent,
//!   and its line is journaled under the update's id, so a crash at any point neither loses
//!   an update nor says it twice.
//! - **Once out.** What the ProductOwner says is in the transcript; each chat has a cursor in
//!   it that moves after a line is sent. (Between Telegram's answer and the cursor's commit a
//!   crash would send that one line again: the Bot API has no idempotency key.)
//! - **One poller per token** across processes: a lease row with an expiry
//!   (`telegram_pollers`). A process without it stands by; chats and delivery run only on the
//!   lease holder.
//! - **Or webhooks**: with `telegram.webhook_url`, the lease holder registers the webhook
//!   and [`webhook`] journals what Telegram posts; the rest is the same.
//! - **Limits.** [`outbox::Pace`] paces every send; a 429 pauses only its chat. An outage is
//!   retried with backoff and reported by the `telegram` readiness check.
//!
//! Modules: [`client`] (the Bot API client and its errors), [`poller`], [`chats`] (the chat
//! actors and their dispatcher), [`chat`] (one update:
//! linking, commands, secrets, buttons), [`delivery`] (lines, questions, progress),
//! [`outbox`] (limits), [`html`] (escaping, splitting), [`progress`] (a task's status text),
//! [`webhook`] (the webhook route), [`pool`] (bots for generated services).

pub mod chat;
pub mod chats;
pub mod client;
pub mod delivery;
pub mod html;
pub mod outbox;
pub mod poller;
pub mod pool;
pub mod progress;
pub mod webhook;

use artel_actors::health::Probe;
use artel_actors::pipeline::Pipeline;
use artel_actors::sessions::Sessions;
use artel_actors::settings::TelegramSettings;
use artel_actors::store::Store;
use artel_messages::{Failure, Request};
use artel_supervisors::{Actor, ChildSpec, Context, ExitReason, Handler, Strategy, Supervisor};
use futures_util::future::BoxFuture;
use parking_lot::Mutex;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use teloxide_core::Bot;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// How long a poller lease lasts without renewal (renewed before every poll).
pub const LEASE: Duration = Duration::from_secs(60);

/// What the Telegram gateway shares among its tasks. Cheap to clone.
#[derive(Clone)]
pub struct Telegram {
    inner: Arc<Inner>,
}

struct Inner {
    bot: Bot,
    /// The bot's id (the token's prefix): the key of its updates, chats and lease.
    bot_id: i64,
    store: Store,
    sessions: Sessions<Pipeline>,
    settings: TelegramSettings,
    /// This process's name on the poller lease.
    owner: String,
    /// True while this process holds the poller lease: only then it handles and delivers.
    leased: AtomicBool,
    /// Woken when updates were journaled.
    updates: Notify,
    pace: tokio::sync::Mutex<outbox::Pace>,
    health: TelegramHealth,
    chats: chats::Chats,
}

impl Telegram {
    /// The gateway for `settings` (which must name a token), and its `telegram` subtree:
    /// `bot` (the [`TelegramGateway`] actor) and `chats` (a [`chats::ChatActor`] per chat).
    pub fn new(
        settings: &TelegramSettings,
        instance: &str,
        store: Store,
        sessions: Sessions<Pipeline>,
        health: TelegramHealth,
    ) -> Result<(Self, Supervisor), Failure> {
        let token = settings
            .token
            .as_ref()
            .ok_or_else(|| Failure::fatal("the Telegram gateway needs telegram.token"))?;
        let bot_id = client::bot_id(token.expose())
            .ok_or_else(|| Failure::fatal("telegram.token is not a bot token (`<id>:<secret>`)"))?;
        let poll = Duration::from_secs(u64::from(settings.poll_timeout_secs));
        let bot = client::bot(token.expose(), &settings.api_url, poll)?;
        let (chats, chats_tree) =
            chats::Chats::subtree(Duration::from_secs(settings.chat_idle_secs));
        let telegram = Self {
            inner: Arc::new(Inner {
                bot,
                bot_id,
                store,
                sessions,
                settings: settings.clone(),
                owner: format!("{instance}/{}", uuid::Uuid::now_v7()),
                leased: AtomicBool::new(false),
                updates: Notify::new(),
                pace: tokio::sync::Mutex::new(outbox::Pace::default()),
                health,
                chats,
            }),
        };
        let gateway = telegram.clone();
        let (_bot, bot) = ChildSpec::actor("bot", move || TelegramGateway::new(gateway.clone()));
        // The bot first: it stops last, so no chat is handled once the lease is given back;
        // and when it restarts, the chats (started after it) restart with it.
        let tree = Supervisor::new("telegram")
            .strategy(Strategy::RestForOne)
            .child(bot.role("gateway"))
            .child(chats_tree.into_child());
        Ok((telegram, tree))
    }

    fn bot(&self) -> &Bot {
        &self.inner.bot
    }

    fn bot_id(&self) -> i64 {
        self.inner.bot_id
    }

    fn store(&self) -> &Store {
        &self.inner.store
    }

    fn leased(&self) -> bool {
        self.inner.leased.load(Ordering::SeqCst)
    }
}

/// The Telegram part of `/health/ready`: the poller's last word.
#[derive(Clone)]
pub struct TelegramHealth(Arc<Mutex<Result<(), String>>>);

impl Default for TelegramHealth {
    fn default() -> Self {
        Self(Arc::new(Mutex::new(Err(
            "not connected to the Bot API yet".to_owned(),
        ))))
    }
}

impl TelegramHealth {
    fn set(&self, state: Result<(), String>) {
        *self.0.lock() = state;
    }
}

impl Probe for TelegramHealth {
    fn name(&self) -> &'static str {
        "telegram"
    }

    fn check(&self) -> BoxFuture<'_, Result<(), String>> {
        let state = self.0.lock().clone();
        Box::pin(async move { state })
    }
}

/// The actor owning the gateway's tasks.
pub struct TelegramGateway {
    telegram: Telegram,
    tasks: Vec<JoinHandle<()>>,
}

impl TelegramGateway {
    /// A gateway actor over `telegram`.
    pub fn new(telegram: Telegram) -> Self {
        Self {
            telegram,
            tasks: Vec::new(),
        }
    }
}

/// Starts one of the gateway's tasks.
type TaskRun = fn(Telegram) -> BoxFuture<'static, Result<(), Failure>>;

/// One of the gateway's tasks ended on a failure it cannot retry itself.
#[derive(Debug)]
pub struct TaskFailed(pub Failure);
impl Request for TaskFailed {
    type Reply = ();
}

impl Actor for TelegramGateway {
    async fn started(&mut self, ctx: &mut Context<Self>) -> Result<(), Failure> {
        let runs: [TaskRun; 3] = [
            |t| Box::pin(poller::run(t)),
            |t| Box::pin(chats::run(t)),
            |t| Box::pin(delivery::run(t)),
        ];
        for run in runs {
            let addr = ctx.addr();
            let future = run(self.telegram.clone());
            self.tasks.push(tokio::spawn(async move {
                if let Err(failure) = future.await {
                    let _ = addr.send(TaskFailed(failure)).await;
                }
            }));
        }
        Ok(())
    }

    async fn stopped(&mut self, _ctx: &mut Context<Self>, _reason: &ExitReason) {
        for task in self.tasks.drain(..) {
            task.abort();
        }
        let telegram = &self.telegram;
        if telegram.inner.leased.swap(false, Ordering::SeqCst)
            && let Err(err) = telegram
                .store()
                .release_telegram_poller(telegram.bot_id(), &telegram.inner.owner)
                .await
        {
            tracing::warn!(%err, "cannot give the Telegram poller lease back; it expires");
        }
    }
}

impl Handler<TaskFailed> for TelegramGateway {
    async fn handle(&mut self, msg: TaskFailed, ctx: &mut Context<Self>) {
        ctx.fail(msg.0);
    }
}
