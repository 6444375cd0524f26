//! The store: Postgres, artel's source of truth (DESIGN.md rule 2).
//!
//! Everything a user would miss after a restart lives in Postgres, in the normalized tables of
//! `migrations/` — never in memory and never in one state blob. [`Store`] wraps a
//! [`sqlx::PgPool`] and offers the repository functions the rest of artel needs, one
//! `async fn` per question, each returning the catalog's typed records (typed ids, typed
//! statuses, [`Timestamp`](artel_messages::Timestamp)s) or a classified [`StoreError`].
//!
//! The durable workflow journal (DESIGN.md rule 3) is here: a workflow calls
//! [`Store::begin_step`] before a step runs and [`Store::finish_step`] or
//! [`Store::fail_step`] after; `begin_step` is idempotent by key, so after a crash the workflow
//! asks again and gets the same row — already `succeeded` (skip it, use its output) or still
//! `running` (run it again). [`Store::unfinished_tasks`] is what a restarted `workflows`
//! supervisor rebuilds from.
//!
//! Queries are runtime-checked (`sqlx::query` with binds), not the compile-time `query!`
//! macros: building artel needs no database and no offline query data. The row mapping and
//! the tests in `actors/tests/store.rs` keep the SQL honest.
//!
//! Values bound to queries are never logged by sqlx (only statement text is, at `debug`), and
//! no function here records a secret value or a step's input/output in its tracing span.

pub mod api_keys;
mod deployments;
mod events;
mod handled;
pub mod llm;
mod llm_keys;
mod ownership;
mod rows;
pub mod secrets;
mod sessions;
mod stats;
mod tasks;
pub mod telegram;
mod users;

pub use api_keys::{NewApiKey, Principal};
pub use deployments::{DeploymentRecord, NewDeployment};
pub use events::EventScope;
pub use llm::{BudgetRaise, LlmRequestRow, LlmUsage, Spending};
pub use ownership::WorkIds;
pub use secrets::MasterKey;
pub use sessions::ChatLink;
pub use stats::{LlmTotal, Stats, StatusCounts};
pub use tasks::{NewTask, StepRecord, TaskRecord};
pub use telegram::{PendingLine, PooledBot, TelegramChat, TelegramQuestion, TrackedTask};
pub use users::UserRecord;

use artel_messages::{Classify, ErrorClass};
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

/// The migrations in `migrations/`, embedded at build time.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// How many connections a store opens at most, unless told otherwise.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 10;

/// How long a query waits for a free connection before failing (retryable).
pub const DEFAULT_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// A handle on artel's Postgres database: a connection pool plus, for the secret functions,
/// the master key. Cheap to clone; clones share the pool.
#[derive(Clone)]
pub struct Store {
    pool: PgPool,
    master_key: Option<Arc<MasterKey>>,
    /// Every event this store appends, for in-process subscribers (see [`crate::bus`]).
    bus: tokio::sync::broadcast::Sender<artel_messages::Event>,
    /// Held from an append's insert to its publication, so this process publishes events
    /// in id order (the database lock alone orders commits, not the sends after them).
    append_lock: Arc<tokio::sync::Mutex<()>>,
}

/// Events an in-process subscriber may fall behind by before it must catch up from the
/// journal (it then re-reads what it missed: nothing is lost, see [`crate::bus`]).
pub const BUS_CAPACITY: usize = 4096;

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("pool_size", &self.pool.size())
            .field("master_key", &self.master_key)
            .finish()
    }
}

impl Store {
    /// Connects to the database at `url` (`postgres://user:password@host:port/database`).
    ///
    /// The URL is not recorded anywhere (it may hold a password).
    #[tracing::instrument(skip(url))]
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_sized(url, DEFAULT_MAX_CONNECTIONS).await
    }

    /// Connects to the database at `url` with a pool of at most `max_connections`.
    #[tracing::instrument(skip(url))]
    pub async fn connect_sized(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(url).map_err(StoreError::Sqlx)?;
        Self::pool_with(options, max_connections).await
    }

    /// Connects with explicit options (e.g. a URL's options with another database name).
    #[tracing::instrument(skip(options))]
    pub async fn connect_with(options: PgConnectOptions) -> Result<Self, StoreError> {
        Self::pool_with(options, DEFAULT_MAX_CONNECTIONS).await
    }

    async fn pool_with(
        options: PgConnectOptions,
        max_connections: u32,
    ) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(DEFAULT_ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await?;
        Ok(Self::from_pool(pool))
    }

    /// A store over an existing pool, without a master key.
    pub fn from_pool(pool: PgPool) -> Self {
        Self {
            pool,
            master_key: None,
            bus: tokio::sync::broadcast::channel(BUS_CAPACITY).0,
            append_lock: Arc::default(),
        }
    }

    /// The same store, able to encrypt and decrypt secrets with `key`.
    pub fn with_master_key(mut self, key: MasterKey) -> Self {
        self.master_key = Some(Arc::new(key));
        self
    }

    /// A live feed of the events this store (and its clones) append from now on. Use
    /// [`crate::bus::EventFeed`] for a feed that also replays the journal without gaps.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<artel_messages::Event> {
        self.bus.subscribe()
    }

    /// The connection pool, for queries this module does not offer yet.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Applies every migration in `migrations/` not yet applied. Safe to call on every start:
    /// applied migrations are skipped (and a changed applied migration is refused).
    #[tracing::instrument(skip(self))]
    pub async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    /// Closes the pool, waiting for connections in use to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// The master key, or [`StoreError::NoMasterKey`].
    fn master_key(&self) -> Result<&MasterKey, StoreError> {
        self.master_key.as_deref().ok_or(StoreError::NoMasterKey)
    }
}

/// Everything a store function can fail with, classified for supervisors.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database said no, or could not be reached. Whether a retry helps depends on why:
    /// see [`StoreError::class`].
    #[error("database error: {0}")]
    Sqlx(#[from] sqlx::Error),
    /// A migration could not be applied (or an applied one was changed).
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The row asked for does not exist (or belongs to someone else).
    #[error("{what} `{key}` not found")]
    NotFound {
        /// What kind of row, e.g. `task`.
        what: &'static str,
        /// Which one.
        key: String,
    },
    /// A row holds something the code cannot read: an unknown status, a malformed payload.
    #[error("cannot read {what} from the database: {reason}")]
    Decode {
        /// What was being read, e.g. `task status`.
        what: &'static str,
        /// Why it could not be read.
        reason: String,
    },
    /// A lifecycle change that the catalog's transition rules refuse.
    #[error("{what} `{key}` cannot move from `{from}` to `{to}`")]
    InvalidTransition {
        /// What kind of row, e.g. `task`.
        what: &'static str,
        /// Which one.
        key: String,
        /// Its status now.
        from: &'static str,
        /// The status asked for.
        to: &'static str,
    },
    /// An idempotency key, or a caller-chosen id, already names a different piece of work.
    #[error("{what} `{key}` is already used for different work: {detail}")]
    Conflict {
        /// What was reused, e.g. `idempotency key`.
        what: &'static str,
        /// The key or id.
        key: String,
        /// What it already names.
        detail: String,
    },
    /// Input the store refuses before asking the database (e.g. a malformed secret name).
    #[error("invalid {what}: {reason}")]
    Invalid {
        /// Which input.
        what: &'static str,
        /// Why it was refused.
        reason: String,
    },
    /// A scarce resource (a port) has no free unit left; one may be released later.
    #[error("no free {what}: {detail}")]
    Exhausted {
        /// What ran out, e.g. `port`.
        what: &'static str,
        /// Where it ran out.
        detail: String,
    },
    /// Master key material that is not 32 bytes of base64, hex or raw bytes.
    #[error("bad master key: {0}")]
    BadKey(String),
    /// A secret function was called on a store without a master key.
    #[error("no master key configured: secrets can be neither stored nor read")]
    NoMasterKey,
    /// A secret was encrypted under another master key than the one given.
    #[error(
        "secret `{name}` was encrypted under master key {stored_key_id}, \
         not the configured key {key_id}"
    )]
    WrongMasterKey {
        /// The secret's name.
        name: String,
        /// The id of the key that encrypted it.
        stored_key_id: String,
        /// The id of the key given.
        key_id: String,
    },
    /// A secret's ciphertext failed authentication: tampered, moved to another row, or
    /// encrypted under another key.
    #[error("secret `{name}` cannot be decrypted: the ciphertext fails authentication")]
    Decrypt {
        /// The secret's name.
        name: String,
    },
}

impl StoreError {
    /// The name of the database constraint a statement violated, if that is what happened.
    pub fn constraint(&self) -> Option<&str> {
        match self {
            Self::Sqlx(sqlx::Error::Database(db)) => db.constraint(),
            _ => None,
        }
    }

    /// True for "the row is not there".
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            Self::NotFound { .. } | Self::Sqlx(sqlx::Error::RowNotFound)
        )
    }
}

/// SQLSTATE codes after which the same statement may well succeed.
const RETRYABLE_SQLSTATES: &[&str] = &[
    "40001", // serialization_failure
    "40P01", // deadlock_detected
    "53300", // too_many_connections
    "55P03", // lock_not_available
    "57P01", // admin_shutdown
    "57P02", // crash_shutdown
    "57P03", // cannot_connect_now
    "08000", // connection_exception
    "08003", // connection_does_not_exist
    "08006", // connection_failure
];

/// Whether a sqlx error is worth a retry: the connection, the pool or the server's momentary
/// state; never the statement or the data.
fn sqlx_class(err: &sqlx::Error) -> ErrorClass {
    match err {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => ErrorClass::Retryable,
        sqlx::Error::Database(db) => match db.code() {
            Some(code) if RETRYABLE_SQLSTATES.contains(&code.as_ref()) => ErrorClass::Retryable,
            _ => ErrorClass::Fatal,
        },
        _ => ErrorClass::Fatal,
    }
}

impl Classify for StoreError {
    fn class(&self) -> ErrorClass {
        match self {
            Self::Sqlx(err) => sqlx_class(err),
            Self::Migrate(sqlx::migrate::MigrateError::Execute(err)) => sqlx_class(err),
            Self::Exhausted { .. } => ErrorClass::Retryable,
            Self::Migrate(_)
            | Self::NotFound { .. }
            | Self::Decode { .. }
            | Self::InvalidTransition { .. }
            | Self::Conflict { .. }
            | Self::Invalid { .. }
            | Self::BadKey(_)
            | Self::NoMasterKey
            | Self::WrongMasterKey { .. }
            | Self::Decrypt { .. } => ErrorClass::Fatal,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_trouble_is_retryable_and_bad_data_fatal() {
        let io = StoreError::Sqlx(sqlx::Error::Io(std::io::Error::other("reset")));
        assert_eq!(io.class(), ErrorClass::Retryable);
        assert_eq!(
            StoreError::Sqlx(sqlx::Error::PoolTimedOut).class(),
            ErrorClass::Retryable
        );
        assert_eq!(
            StoreError::Sqlx(sqlx::Error::RowNotFound).class(),
            ErrorClass::Fatal
        );
        let decode = StoreError::Decode {
            what: "task status",
            reason: "unknown".into(),
        };
        assert_eq!(decode.class(), ErrorClass::Fatal);
        assert_eq!(StoreError::NoMasterKey.class(), ErrorClass::Fatal);
        assert!(
            StoreError::Sqlx(sqlx::Error::RowNotFound).is_not_found()
                && !StoreError::NoMasterKey.is_not_found()
        );
    }
}
