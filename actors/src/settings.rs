//! The one typed `Settings`: every knob artel has, with defaults that work offline on one
//! machine.
//!
//! Layers, lowest first: built-in defaults < `artel.toml` < `ARTEL_*` environment variables
//! (`__` nests: `ARTEL_REDIS__URL` sets `redis.url`) < command-line flags (applied by the
//! binary). The conventional `DATABASE_URL`, `REDIS_URL` and `ARTEL_MASTER_KEY` are accepted
//! too. The environment is passed in, never read here, so loading is a pure function the
//! binary calls once and tests call with any environment they like. Values that are secrets
//! are [`SecretValue`]s and never print.

use artel_messages::{Classify, ErrorClass, SecretValue};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Prefix of artel's environment variables.
pub const ENV_PREFIX: &str = "ARTEL_";

/// Everything artel can be configured with.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Where artel keeps its managed database, repositories and workspaces.
    pub data_dir: PathBuf,
    /// The source of truth.
    pub database: DatabaseSettings,
    /// Process boundaries (optional: a single process needs no Redis).
    pub redis: RedisSettings,
    /// Encryption of secrets at rest.
    pub secrets: SecretsSettings,
    /// Durable workflows.
    pub workflows: WorkflowSettings,
    /// The HTTP front door.
    pub http: HttpSettings,
    /// Workers (sandboxes for agents and test commands).
    pub workers: WorkersSettings,
    /// This process's name among artel processes sharing one Redis (stable across restarts;
    /// it names this process's consumers). Default: the host name.
    pub instance: String,
    /// What writes the code.
    pub agent: AgentSettings,
    /// Where services run.
    pub deploy: DeploySettings,
    /// Conversations with the ProductOwner.
    pub sessions: SessionSettings,
    /// Periodic jobs.
    pub scheduler: SchedulerSettings,
    /// The LLM provider the roles that use a model talk to.
    pub llm: LlmSettings,
    /// The ProductOwner: who understands the user's lines.
    pub product_owner: ProductOwnerSettings,
    /// The Analyst: the spec written before anything is built.
    pub analyst: AnalystSettings,
    /// The Telegram front door (off without a token).
    pub telegram: TelegramSettings,
}

/// `[telegram]`: the Telegram front door. Without `token` it does not run.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelegramSettings {
    /// The bot token from @BotFather (`ARTEL_TELEGRAM__TOKEN`).
    pub token: Option<SecretValue>,
    /// The Bot API server (`ARTEL_TELEGRAM__API_URL`): Telegram's, a self-hosted
    /// `telegram-bot-api`, or a test peer.
    pub api_url: String,
    /// Telegram user ids that may talk to artel without linking; each becomes an artel user
    /// (`ARTEL_TELEGRAM__ALLOWED_USERS`, comma-separated).
    #[serde(deserialize_with = "telegram_ids")]
    pub allowed_users: Vec<i64>,
    /// Whether group chats are served (otherwise refused with a sentence).
    pub groups: bool,
    /// The `getUpdates` long-poll timeout in seconds (the HTTP client waits 15 s longer).
    pub poll_timeout_secs: u32,
    /// Receive updates by webhook instead of long polling: the public URL Telegram posts to,
    /// ending in `/telegram/webhook` (`ARTEL_TELEGRAM__WEBHOOK_URL`).
    pub webhook_url: Option<String>,
    /// The secret Telegram sends with each webhook call in `X-Telegram-Bot-Api-Secret-Token`
    /// (1–256 of `A-Z a-z 0-9 _ -`); required with `webhook_url`.
    pub webhook_secret: Option<SecretValue>,
    /// Seconds a chat's actor may stay idle before it hibernates (stops until the chat's next
    /// update) (`ARTEL_TELEGRAM__CHAT_IDLE_SECS`).
    pub chat_idle_secs: u64,
}

impl Default for TelegramSettings {
    fn default() -> Self {
        Self {
            token: None,
            api_url: "https://api.telegram.org".to_owned(),
            allowed_users: Vec::new(),
            groups: false,
            poll_timeout_secs: 25,
            webhook_url: None,
            webhook_secret: None,
            chat_idle_secs: 300,
        }
    }
}

/// Telegram user ids as a list, one number, or a comma-separated string (from the
/// environment, `ARTEL_TELEGRAM__ALLOWED_USERS=1,2` arrives as a string and `=1` as a number).
fn telegram_ids<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<i64>, D::Error> {
    use serde::de::Error as _;
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Ids {
        One(i64),
        Text(String),
        List(Vec<i64>),
    }
    match Ids::deserialize(d)? {
        Ids::One(id) => Ok(vec![id]),
        Ids::List(ids) => Ok(ids),
        Ids::Text(text) => text
            .split(',')
            .map(str::trim)
            .filter(|part| !part.is_empty())
            .map(|part| {
                part.parse::<i64>().map_err(|_| {
                    D::Error::custom(format!(
                        "`{part}` is not a Telegram user id (a number); give ids separated by commas"
                    ))
                })
            })
            .collect(),
    }
}

/// `[analyst]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AnalystSettings {
    /// Ask the user to confirm (or correct) the spec before anything is built
    /// (`ARTEL_ANALYST__CONFIRM`; `artel new --yes` turns it off for one job).
    pub confirm: bool,
}

impl Default for AnalystSettings {
    fn default() -> Self {
        Self { confirm: true }
    }
}

/// `[product_owner]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProductOwnerSettings {
    /// `offline` (the default: the deterministic intent parser) or `llm` (the session's lines
    /// go to the ProductOwner's model, `[llm]` with `[llm.product_owner]` on top;
    /// `ARTEL_PRODUCT_OWNER__KIND=llm`). `agent.kind = llm` does not turn it on.
    pub kind: ProductOwnerKind,
}

/// `product_owner.kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProductOwnerKind {
    /// The offline intent parser.
    #[default]
    Offline,
    /// The model, with the offline parser as its fallback.
    Llm,
}

/// `[llm]` — one provider endpoint and model (`ARTEL_LLM__PROVIDER`, `ARTEL_LLM__BASE_URL`,
/// `ARTEL_LLM__API_KEY`, `ARTEL_LLM__MODEL`), shared by every role that uses a model, with
/// optional per-role overrides in `[llm.developer]` and `[llm.product_owner]`
/// (`ARTEL_LLM__DEVELOPER__MODEL`, `ARTEL_LLM__PRODUCT_OWNER__BASE_URL`, …): each field set
/// there wins over `[llm]` for that role alone.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LlmSettings {
    /// The dialect: `openai` (OpenAI and compatible servers: vLLM, llama.cpp, Ollama,
    /// LiteLLM) or `anthropic`.
    pub provider: LlmProvider,
    /// Where the API lives. OpenAI-style bases include the version (`http://localhost:11434/v1`;
    /// `/chat/completions` is appended); Anthropic's do not (`/v1/messages` is appended).
    /// Unset: the vendor's own API.
    pub base_url: Option<String>,
    /// The API key (local servers may need none).
    pub api_key: Option<SecretValue>,
    /// The model name, as the provider spells it. Required by any role that uses a model.
    pub model: Option<String>,
    /// Seconds an answer may take; for a stream, to start and between two chunks.
    pub timeout_secs: u64,
    /// Output tokens one answer may have.
    pub max_output_tokens: u32,
    /// USD per million tokens, by model name: `[llm.prices."gpt-4.1"] input = 2.0`.
    pub prices: std::collections::BTreeMap<String, ModelPrice>,
    /// USD every model call of one project may spend together before its task asks the owner
    /// for more (unset: no cap). `ARTEL_LLM__PROJECT_BUDGET_USD`.
    #[serde(default, deserialize_with = "optional_number")]
    pub project_budget_usd: Option<f64>,
    /// USD one user's projects may spend on models per UTC day before a task asks them for
    /// more (unset: no cap). `ARTEL_LLM__USER_DAILY_BUDGET_USD`.
    #[serde(default, deserialize_with = "optional_number")]
    pub user_daily_budget_usd: Option<f64>,
    /// The Developer's overrides.
    pub developer: LlmRoleSettings,
    /// The ProductOwner's overrides.
    pub product_owner: LlmRoleSettings,
}

/// `[llm.developer]`, `[llm.product_owner]`: what one role changes of `[llm]`; unset fields
/// are `[llm]`'s.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LlmRoleSettings {
    /// The dialect.
    pub provider: Option<LlmProvider>,
    /// Where the API lives.
    pub base_url: Option<String>,
    /// The API key.
    pub api_key: Option<SecretValue>,
    /// The model name.
    pub model: Option<String>,
    /// Seconds an answer may take.
    pub timeout_secs: Option<u64>,
    /// Output tokens one answer may have.
    pub max_output_tokens: Option<u32>,
}

/// A role that may use a model, with its own `[llm.*]` section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LlmRole {
    /// Writes the code (`agent.kind = llm`).
    Developer,
    /// Talks with the user (`product_owner.kind = llm`).
    ProductOwner,
}

impl LlmRole {
    /// The role as users know it, in errors: `Developer`, `ProductOwner`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Developer => "Developer",
            Self::ProductOwner => "ProductOwner",
        }
    }

    /// Its section under `[llm]`: `developer`, `product_owner`.
    pub fn section(self) -> &'static str {
        match self {
            Self::Developer => "developer",
            Self::ProductOwner => "product_owner",
        }
    }
}

impl LlmSettings {
    /// The settings `role` uses: `[llm]` with the role's section on top (the sections
    /// themselves emptied), and the names of the fields the section set.
    pub fn for_role(&self, role: LlmRole) -> (LlmSettings, Vec<&'static str>) {
        let section = match role {
            LlmRole::Developer => &self.developer,
            LlmRole::ProductOwner => &self.product_owner,
        };
        let mut set = Vec::new();
        let mut mark = |name: &'static str, present: bool| {
            if present {
                set.push(name);
            }
        };
        mark("provider", section.provider.is_some());
        mark("base_url", section.base_url.is_some());
        mark("api_key", section.api_key.is_some());
        mark("model", section.model.is_some());
        mark("timeout_secs", section.timeout_secs.is_some());
        mark("max_output_tokens", section.max_output_tokens.is_some());
        let resolved = LlmSettings {
            provider: section.provider.unwrap_or(self.provider),
            base_url: section.base_url.clone().or_else(|| self.base_url.clone()),
            api_key: section.api_key.clone().or_else(|| self.api_key.clone()),
            model: section.model.clone().or_else(|| self.model.clone()),
            timeout_secs: section.timeout_secs.unwrap_or(self.timeout_secs),
            max_output_tokens: section.max_output_tokens.unwrap_or(self.max_output_tokens),
            prices: self.prices.clone(),
            project_budget_usd: self.project_budget_usd,
            user_daily_budget_usd: self.user_daily_budget_usd,
            developer: LlmRoleSettings::default(),
            product_owner: LlmRoleSettings::default(),
        };
        (resolved, set)
    }
}

impl Default for LlmSettings {
    fn default() -> Self {
        Self {
            provider: LlmProvider::Openai,
            base_url: None,
            api_key: None,
            model: None,
            timeout_secs: 300,
            max_output_tokens: 8192,
            prices: std::collections::BTreeMap::new(),
            project_budget_usd: None,
            user_daily_budget_usd: None,
            developer: LlmRoleSettings::default(),
            product_owner: LlmRoleSettings::default(),
        }
    }
}

/// `llm.provider`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LlmProvider {
    /// OpenAI Chat Completions (and compatible servers).
    Openai,
    /// The Anthropic Messages API.
    Anthropic,
}

impl LlmProvider {
    /// The lowercase name, as in settings and `llm_requests.provider`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Openai => "openai",
            Self::Anthropic => "anthropic",
        }
    }

    /// The vendor's own API, when `llm.base_url` is unset.
    pub fn default_base_url(self) -> &'static str {
        match self {
            Self::Openai => "https://api.openai.com/v1",
            Self::Anthropic => "https://api.anthropic.com",
        }
    }
}

/// One model's prices, USD per million tokens.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelPrice {
    /// Uncached input tokens.
    #[serde(deserialize_with = "number")]
    pub input: f64,
    /// Output tokens.
    #[serde(deserialize_with = "number")]
    pub output: f64,
    /// Input tokens read from the prompt cache; unset means the input price.
    #[serde(default, deserialize_with = "optional_number")]
    pub cached_input: Option<f64>,
}

/// A TOML number, integer or float (`input = 3` is as good as `input = 3.0`).
#[derive(Deserialize)]
#[serde(untagged)]
enum Number {
    Integer(i64),
    Float(f64),
}

impl From<Number> for f64 {
    fn from(n: Number) -> f64 {
        match n {
            Number::Integer(i) => i as f64,
            Number::Float(x) => x,
        }
    }
}

fn number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Number::deserialize(d).map(f64::from)
}

fn optional_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    Option::<Number>::deserialize(d).map(|n| n.map(f64::from))
}

/// `[agent]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AgentSettings {
    /// `template` (offline, deterministic; the default), `cli` (any command line) or `llm`
    /// (artel's own tool-calling loop on the `[llm]` provider).
    pub kind: String,
    /// For `cli`: the shell command run in the worker's checkout. It gets the task in
    /// `ARTEL_TASK`, the failing test output in `ARTEL_REWORK`, the user's guidance in
    /// `ARTEL_GUIDANCE`, the iteration in `ARTEL_ITERATION`, and must commit its work.
    pub command: Option<String>,
    /// Whether the agent's worker may reach the network (a coding CLI calling an LLM API
    /// needs it). Off by default: a worker is offline unless its task needs otherwise. Test
    /// commands never get the network.
    pub network: bool,
    /// For `llm`: model turns one task may take before it asks the user for more.
    pub max_turns: u32,
    /// For `llm`: USD one task may spend on the model before it asks the user for more
    /// (unset: no cap). With a cap, the model must have a price in `[llm.prices]`.
    #[serde(default, deserialize_with = "optional_number")]
    pub budget_usd: Option<f64>,
    /// For `llm`: seconds one `bash` tool call may run before its process group is killed
    /// (the model may ask for less with `timeout_s`).
    pub tool_timeout_secs: u64,
    /// For `llm`: characters of one tool observation the model sees (head and tail kept).
    pub max_observation_chars: usize,
}

impl Default for AgentSettings {
    fn default() -> Self {
        Self {
            kind: "template".to_owned(),
            command: None,
            network: false,
            max_turns: 60,
            budget_usd: None,
            tool_timeout_secs: 120,
            max_observation_chars: 12_000,
        }
    }
}

/// `[deploy]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeploySettings {
    /// The first port services may get.
    pub first_port: u16,
    /// The last port services may get.
    pub last_port: u16,
    /// How long a new deployment may take to answer its health check.
    pub health_timeout_secs: u64,
    /// Where new deployments run: `local` (a process on this host; the default) or `docker`
    /// (a container built from the project's Dockerfile, on the `[deploy.docker]` host).
    /// Deployments made before a change keep running where they were made.
    pub target: DeployTargetChoice,
    /// The Docker deploy target.
    pub docker: DockerDeploySettings,
}

impl Default for DeploySettings {
    fn default() -> Self {
        Self {
            first_port: 18_000,
            last_port: 18_999,
            health_timeout_secs: 20,
            target: DeployTargetChoice::Local,
            docker: DockerDeploySettings::default(),
        }
    }
}

/// `deploy.target`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeployTargetChoice {
    /// Local processes.
    Local,
    /// Docker containers.
    Docker,
}

/// `[deploy.docker]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DockerDeploySettings {
    /// The Docker daemon: empty for the local one (`DOCKER_HOST` or the default socket),
    /// `unix:///path/docker.sock`, or `tcp://host:2375` for a remote Docker host.
    pub host: String,
    /// The image the project's Dockerfile builds on, passed as the build argument `BASE`.
    /// The default is the local worker image (python3), since no registry is needed.
    pub base_image: String,
    /// The first host port services are published on.
    pub first_port: u16,
    /// The last host port services are published on.
    pub last_port: u16,
    /// The host address ports are published on (`127.0.0.1`: this host only).
    pub publish_address: String,
    /// The host name in services' URLs: where the Docker host's published ports are reached.
    pub public_host: String,
    /// Memory of one service container, in MiB (no swap beyond it).
    pub memory_mb: u64,
    /// Processes one service container may run.
    pub pids: u32,
    /// CPUs one service container may use (fractions allowed).
    pub cpus: f64,
}

impl Default for DockerDeploySettings {
    fn default() -> Self {
        Self {
            host: String::new(),
            base_image: "artel-worker:latest".to_owned(),
            first_port: 19_000,
            last_port: 19_999,
            publish_address: "127.0.0.1".to_owned(),
            public_host: "127.0.0.1".to_owned(),
            memory_mb: 512,
            pids: 256,
            cpus: 1.0,
        }
    }
}

/// `[sessions]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionSettings {
    /// Idle seconds after which a session's actor hibernates (its transcript stays).
    pub idle_secs: u64,
}

impl Default for SessionSettings {
    fn default() -> Self {
        Self { idle_secs: 900 }
    }
}

/// `[scheduler]` — seconds between runs of each job.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SchedulerSettings {
    /// Check every live deployment; restart one that stopped answering.
    pub health_check_secs: u64,
    /// Hibernate idle sessions.
    pub session_reaper_secs: u64,
    /// Stop workers whose task is over.
    pub worker_reaper_secs: u64,
    /// Check every project's repository.
    pub repo_sync_secs: u64,
}

impl Default for SchedulerSettings {
    fn default() -> Self {
        Self {
            health_check_secs: 15,
            session_reaper_secs: 60,
            worker_reaper_secs: 60,
            repo_sync_secs: 300,
        }
    }
}

/// `[workers]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorkersSettings {
    /// Commands running at once; the rest wait in FIFO order.
    pub max_busy: usize,
    /// Wall-clock seconds one command (an agent run, a test run) may take.
    pub timeout_secs: u64,
    /// CPU seconds one command may use.
    pub cpu_seconds: u64,
    /// Address space one command may map, in MiB.
    pub memory_mb: u64,
    /// Processes one worker may run at once.
    pub pids: u32,
    /// Largest file one command may write, in MiB.
    pub file_size_mb: u64,
    /// Under root, workers run as uids `first_uid .. first_uid + uid_count`, one per live
    /// worker. The range must belong to nobody else on the host (two artel processes on one
    /// host need two ranges): a process of such a uid is killed when its worker is reaped.
    pub first_uid: u32,
    /// How many uids the range holds.
    pub uid_count: u32,
    /// Where workers run: `auto` (the default: Docker containers when a daemon answers and
    /// the worker image exists, else local processes), `process`, or `docker` (fails at
    /// start without a daemon and the image). In a container, a `cli` agent's command runs
    /// inside the worker image: it must be installed there.
    pub runtime: WorkerRuntimeChoice,
    /// The Docker workers' image (`artel worker-image build` makes it).
    pub image: String,
    /// Docker only: containers kept created, started and idle, so a worker with the
    /// default limits and no network starts without waiting for a container. 0 turns the
    /// pool off.
    pub warm_pool: usize,
    /// Local processes only: `auto` (the default: inside bubblewrap when it is installed
    /// and works here), `bwrap` (fails at start without it), or `none`.
    pub sandbox: WorkerSandboxChoice,
    /// When artel is not root, let code written by an LLM or CLI agent (and its tests and
    /// services) run as artel's own user with no sandbox, where it can read artel's keys and
    /// database. Off: such a start is refused.
    pub allow_unsandboxed: bool,
}

/// `workers.sandbox`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkerSandboxChoice {
    /// bubblewrap when usable, else none.
    Auto,
    /// bubblewrap, or no start.
    Bwrap,
    /// No sandbox.
    None,
}

/// `workers.runtime`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkerRuntimeChoice {
    /// Local processes.
    Process,
    /// Docker containers.
    Docker,
    /// Docker when it answers with the image, else local processes.
    Auto,
}

impl Default for WorkersSettings {
    fn default() -> Self {
        Self {
            max_busy: 4,
            timeout_secs: 600,
            cpu_seconds: 600,
            memory_mb: 2048,
            pids: 256,
            file_size_mb: 256,
            first_uid: 2_000_000_000,
            uid_count: 65_536,
            runtime: WorkerRuntimeChoice::Auto,
            image: "artel-worker:latest".to_owned(),
            warm_pool: 2,
            sandbox: WorkerSandboxChoice::Auto,
            allow_unsandboxed: false,
        }
    }
}

/// `[http]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpSettings {
    /// Address to listen on (`host:port`; port 0 picks a free one).
    pub listen: String,
    /// Largest request body accepted; larger ones get 413.
    pub max_body_bytes: usize,
    /// Requests per second each API key may make on average (token bucket refill rate).
    pub rate_limit_per_sec: u32,
    /// Requests an API key may make at once after being idle (token bucket size).
    pub rate_limit_burst: u32,
    /// How long SIGTERM waits for in-flight requests before stopping the server.
    pub drain_secs: u64,
    /// An operator key to install on start (`artel_` + 40 hex). Without one, the first start
    /// creates an operator key, prints it once and writes it to `<data_dir>/admin.key`.
    pub admin_key: Option<SecretValue>,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".to_owned(),
            max_body_bytes: 64 * 1024,
            rate_limit_per_sec: 50,
            rate_limit_burst: 100,
            drain_secs: 30,
            admin_key: None,
        }
    }
}

/// `[database]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseSettings {
    /// A PostgreSQL URL; unset means the managed local cluster in the data dir.
    pub url: Option<SecretValue>,
    /// Connections in the pool.
    pub max_connections: Option<u32>,
}

/// `[redis]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisSettings {
    /// A Redis URL; unset means in-process mailboxes only.
    pub url: Option<SecretValue>,
}

/// `[secrets]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SecretsSettings {
    /// The 32-byte master key, base64 or hex. Prefer `master_key_file`.
    pub master_key: Option<SecretValue>,
    /// A file holding the master key; created (mode 0600) in the data dir when neither is set.
    pub master_key_file: Option<PathBuf>,
}

/// `[workflows]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorkflowSettings {
    /// Attempts of one step (restarts included) before its task fails with the step's error.
    pub max_step_attempts: u32,
    /// Developer ⇄ Tester iterations before a task with failing tests asks the user.
    pub max_rework_iterations: u32,
}

impl Default for WorkflowSettings {
    fn default() -> Self {
        Self {
            max_step_attempts: 3,
            max_rework_iterations: 3,
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            data_dir: default_data_dir(),
            database: DatabaseSettings::default(),
            redis: RedisSettings::default(),
            secrets: SecretsSettings::default(),
            workflows: WorkflowSettings::default(),
            http: HttpSettings::default(),
            workers: WorkersSettings::default(),
            instance: default_instance(),
            agent: AgentSettings::default(),
            deploy: DeploySettings::default(),
            sessions: SessionSettings::default(),
            scheduler: SchedulerSettings::default(),
            llm: LlmSettings::default(),
            product_owner: ProductOwnerSettings::default(),
            analyst: AnalystSettings::default(),
            telegram: TelegramSettings::default(),
        }
    }
}

/// `/var/lib/artel` for root (the managed PostgreSQL runs as `postgres` and must reach it),
/// `$HOME/.local/share/artel` otherwise, `./artel-data` when there is no home.
fn default_data_dir() -> PathBuf {
    let root = std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false);
    if root {
        return PathBuf::from("/var/lib/artel");
    }
    std::env::home_dir()
        .map(|home| home.join(".local/share/artel"))
        .unwrap_or_else(|| PathBuf::from("artel-data"))
}

/// The host name, or `artel` when it cannot be read.
fn default_instance() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "artel".to_owned())
}

/// Settings could not be loaded. Always fatal: the operator must fix the input.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// The file could not be read.
    #[error("cannot read settings file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file or an environment variable does not fit the settings.
    #[error("invalid settings ({origin}): {message}")]
    Invalid {
        /// Which layer: the file, or the environment.
        origin: String,
        /// What is wrong, as the parser says it.
        message: String,
    },
    /// A value is out of range.
    #[error("invalid setting {key}: {message}")]
    OutOfRange {
        /// The dotted key.
        key: &'static str,
        /// What is allowed.
        message: String,
    },
}

impl Classify for SettingsError {
    fn class(&self) -> ErrorClass {
        ErrorClass::Fatal
    }
}

impl Settings {
    /// Loads defaults < `file` (when given and present; an explicitly named file must exist)
    /// < `env`, then validates.
    pub fn load(
        file: Option<&Path>,
        file_required: bool,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, SettingsError> {
        let mut tree = toml::Table::new();
        let mut origin = "defaults".to_owned();
        if let Some(path) = file {
            match std::fs::read_to_string(path) {
                Ok(text) => {
                    tree = text
                        .parse::<toml::Table>()
                        .map_err(|e| SettingsError::Invalid {
                            origin: path.display().to_string(),
                            message: e.to_string(),
                        })?;
                    origin = path.display().to_string();
                }
                Err(err) if err.kind() == std::io::ErrorKind::NotFound && !file_required => {}
                Err(source) => {
                    return Err(SettingsError::Read {
                        path: path.to_owned(),
                        source,
                    });
                }
            }
        }
        let mut from_env = Vec::new();
        for (name, value) in env {
            let path: Vec<String> = match name.as_str() {
                "DATABASE_URL" => vec!["database".into(), "url".into()],
                "REDIS_URL" => vec!["redis".into(), "url".into()],
                "ARTEL_MASTER_KEY" => vec!["secrets".into(), "master_key".into()],
                "ARTEL_ADMIN_KEY" => vec!["http".into(), "admin_key".into()],
                // Flags of the binary, not settings; and the test suite's own variables.
                "ARTEL_LOG" | "ARTEL_LOG_FORMAT" | "ARTEL_CONFIG" | "ARTEL_SERVER"
                | "ARTEL_API_KEY" => continue,
                other if other.starts_with("ARTEL_TEST_") => continue,
                other => match other.strip_prefix(ENV_PREFIX) {
                    Some(rest) if !rest.is_empty() => rest
                        .split("__")
                        .map(|part| part.to_ascii_lowercase())
                        .collect(),
                    _ => continue,
                },
            };
            from_env.push(name.clone());
            insert(&mut tree, &path, env_value(&value));
        }
        if !from_env.is_empty() {
            origin = format!("{origin} + environment ({})", from_env.join(", "));
        }
        let settings: Settings =
            toml::Value::Table(tree)
                .try_into()
                .map_err(|e: toml::de::Error| SettingsError::Invalid {
                    origin,
                    message: e.message().to_owned(),
                })?;
        settings.validate()?;
        Ok(settings)
    }

    /// Checks ranges the types cannot express.
    pub fn validate(&self) -> Result<(), SettingsError> {
        if self.http.rate_limit_per_sec == 0 || self.http.rate_limit_burst == 0 {
            return Err(SettingsError::OutOfRange {
                key: "http.rate_limit_per_sec",
                message: "the rate limit and its burst must be at least 1".into(),
            });
        }
        if self.http.max_body_bytes < 1024 {
            return Err(SettingsError::OutOfRange {
                key: "http.max_body_bytes",
                message: "must be at least 1024".into(),
            });
        }
        if self.workflows.max_step_attempts == 0 {
            return Err(SettingsError::OutOfRange {
                key: "workflows.max_step_attempts",
                message: "must be at least 1".into(),
            });
        }
        if self.workers.max_busy == 0 {
            return Err(SettingsError::OutOfRange {
                key: "workers.max_busy",
                message: "must be at least 1".into(),
            });
        }
        if self.workers.warm_pool > 32 {
            return Err(SettingsError::OutOfRange {
                key: "workers.warm_pool",
                message: "at most 32 idle containers (each is a started container and a \
                          workspace directory on the Docker host)"
                    .into(),
            });
        }
        if self.instance.is_empty() || self.instance.contains(char::is_whitespace) {
            return Err(SettingsError::OutOfRange {
                key: "instance",
                message: "must be a non-empty name without spaces".into(),
            });
        }
        if self.database.max_connections == Some(0) {
            return Err(SettingsError::OutOfRange {
                key: "database.max_connections",
                message: "must be at least 1".into(),
            });
        }
        if self.http.listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(SettingsError::OutOfRange {
                key: "http.listen",
                message: format!(
                    "{:?} is not host:port (e.g. 127.0.0.1:8080)",
                    self.http.listen
                ),
            });
        }
        if let Err(failure) = crate::agent::Agent::from_settings(self) {
            return Err(SettingsError::OutOfRange {
                key: "agent",
                message: failure.reason,
            });
        }
        if let Err(failure) = crate::sessions::Brain::from_settings(self) {
            return Err(SettingsError::OutOfRange {
                key: "product_owner",
                message: failure.reason,
            });
        }
        if self.deploy.first_port < 1024 || self.deploy.first_port > self.deploy.last_port {
            return Err(SettingsError::OutOfRange {
                key: "deploy.first_port",
                message: "ports must be 1024..=65535 with first_port <= last_port".into(),
            });
        }
        let docker = &self.deploy.docker;
        if docker.first_port < 1024 || docker.first_port > docker.last_port {
            return Err(SettingsError::OutOfRange {
                key: "deploy.docker.first_port",
                message: "ports must be 1024..=65535 with first_port <= last_port".into(),
            });
        }
        if docker.publish_address.parse::<std::net::IpAddr>().is_err() {
            return Err(SettingsError::OutOfRange {
                key: "deploy.docker.publish_address",
                message: format!("{:?} is not an IP address", docker.publish_address),
            });
        }
        if docker.public_host.is_empty() || docker.public_host.contains(['/', ' ', ':']) {
            return Err(SettingsError::OutOfRange {
                key: "deploy.docker.public_host",
                message: format!(
                    "{:?} is not a host name or IPv4 address",
                    docker.public_host
                ),
            });
        }
        if docker.memory_mb < 16
            || docker.pids == 0
            || !(docker.cpus > 0.0 && docker.cpus <= 1024.0)
        {
            return Err(SettingsError::OutOfRange {
                key: "deploy.docker.memory_mb",
                message: "a service container needs at least 16 MiB, 1 process and a CPU share \
                          above 0"
                    .into(),
            });
        }
        if !(docker.host.is_empty()
            || docker.host.starts_with("unix://")
            || docker.host.starts_with("tcp://")
            || docker.host.starts_with("http://"))
        {
            return Err(SettingsError::OutOfRange {
                key: "deploy.docker.host",
                message: format!(
                    "{:?}: use empty (the local daemon), unix:///path or tcp://host:port",
                    docker.host
                ),
            });
        }
        if self.workers.first_uid < 1000
            || self.workers.uid_count == 0
            || self
                .workers
                .first_uid
                .checked_add(self.workers.uid_count)
                .is_none()
        {
            return Err(SettingsError::OutOfRange {
                key: "workers.first_uid",
                message: "the worker uid range must start at 1000 or above and fit in 32 bits"
                    .into(),
            });
        }
        if self.workers.timeout_secs == 0 || self.workflows.max_rework_iterations == 0 {
            return Err(SettingsError::OutOfRange {
                key: "workers.timeout_secs",
                message: "timeouts and iteration limits must be at least 1".into(),
            });
        }
        self.validate_llm()?;
        self.validate_telegram()?;
        if self.data_dir.as_os_str().is_empty() {
            return Err(SettingsError::OutOfRange {
                key: "data_dir",
                message: "must not be empty".into(),
            });
        }
        Ok(())
    }
}

impl Settings {
    fn validate_telegram(&self) -> Result<(), SettingsError> {
        let telegram = &self.telegram;
        if let Some(token) = &telegram.token {
            let well_formed = token.expose().split_once(':').is_some_and(|(id, rest)| {
                id.parse::<i64>().is_ok_and(|id| id > 0)
                    && !rest.is_empty()
                    && rest
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            });
            if !well_formed {
                return Err(SettingsError::OutOfRange {
                    key: "telegram.token",
                    message: "a bot token looks like `123456:ABC-def…` (from @BotFather)".into(),
                });
            }
        }
        if !(telegram.api_url.starts_with("http://") || telegram.api_url.starts_with("https://")) {
            return Err(SettingsError::OutOfRange {
                key: "telegram.api_url",
                message: format!("`{}` is not an http(s) URL", telegram.api_url),
            });
        }
        if let Some(url) = &telegram.webhook_url {
            if !url.starts_with("https://") && !url.starts_with("http://") {
                return Err(SettingsError::OutOfRange {
                    key: "telegram.webhook_url",
                    message: format!("`{url}` is not an http(s) URL"),
                });
            }
            let secret_ok = telegram.webhook_secret.as_ref().is_some_and(|s| {
                let s = s.expose();
                (1..=256).contains(&s.len())
                    && s.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            });
            if !secret_ok {
                return Err(SettingsError::OutOfRange {
                    key: "telegram.webhook_secret",
                    message: "a webhook needs a secret of 1 to 256 characters A-Z a-z 0-9 _ -"
                        .into(),
                });
            }
        }
        if telegram.chat_idle_secs == 0 {
            return Err(SettingsError::OutOfRange {
                key: "telegram.chat_idle_secs",
                message: "must be at least 1 second".into(),
            });
        }
        if !(1..=50).contains(&telegram.poll_timeout_secs) {
            return Err(SettingsError::OutOfRange {
                key: "telegram.poll_timeout_secs",
                message: "must be between 1 and 50 seconds".into(),
            });
        }
        Ok(())
    }

    fn validate_llm(&self) -> Result<(), SettingsError> {
        let llm = &self.llm;
        check_endpoint(
            ["llm.base_url", "llm.model", "llm.timeout_secs"],
            llm.base_url.as_deref(),
            llm.model.as_deref(),
            [
                Some(llm.timeout_secs),
                Some(u64::from(llm.max_output_tokens)),
            ],
        )?;
        for (section, keys) in [
            (
                &llm.developer,
                [
                    "llm.developer.base_url",
                    "llm.developer.model",
                    "llm.developer.timeout_secs",
                ],
            ),
            (
                &llm.product_owner,
                [
                    "llm.product_owner.base_url",
                    "llm.product_owner.model",
                    "llm.product_owner.timeout_secs",
                ],
            ),
        ] {
            check_endpoint(
                keys,
                section.base_url.as_deref(),
                section.model.as_deref(),
                [
                    section.timeout_secs,
                    section.max_output_tokens.map(u64::from),
                ],
            )?;
        }
        let budgets = [
            ("agent.budget_usd", self.agent.budget_usd),
            ("llm.project_budget_usd", llm.project_budget_usd),
            ("llm.user_daily_budget_usd", llm.user_daily_budget_usd),
        ];
        for (key, budget) in budgets {
            if budget.is_some_and(|usd| !(usd.is_finite() && usd > 0.0)) {
                return Err(SettingsError::OutOfRange {
                    key,
                    message: "a budget is a positive amount of USD; leave it unset for no cap"
                        .into(),
                });
            }
        }
        for (model, price) in &llm.prices {
            let prices = [price.input, price.output, price.cached_input.unwrap_or(0.0)];
            if prices.iter().any(|p| !p.is_finite() || *p < 0.0) {
                return Err(SettingsError::OutOfRange {
                    key: "llm.prices",
                    message: format!("{model:?}: prices are USD per million tokens, 0 or more"),
                });
            }
        }
        Ok(())
    }
}

/// One endpoint's fields, `[llm]` or a role's section: `keys` name its base URL, model and
/// timeout settings.
fn check_endpoint(
    keys: [&'static str; 3],
    base_url: Option<&str>,
    model: Option<&str>,
    limits: [Option<u64>; 2],
) -> Result<(), SettingsError> {
    let [base_url_key, model_key, timeout_key] = keys;
    if let Some(url) = base_url
        && !(url.starts_with("http://") || url.starts_with("https://"))
    {
        return Err(SettingsError::OutOfRange {
            key: base_url_key,
            message: format!("{url:?} is not an http:// or https:// URL"),
        });
    }
    if model.is_some_and(|m| m.trim().is_empty()) {
        return Err(SettingsError::OutOfRange {
            key: model_key,
            message: "must not be empty when set".into(),
        });
    }
    if limits.contains(&Some(0)) {
        return Err(SettingsError::OutOfRange {
            key: timeout_key,
            message: "the timeout and max_output_tokens must be at least 1".into(),
        });
    }
    Ok(())
}

/// An environment string as the TOML value it most plausibly means.
fn env_value(raw: &str) -> toml::Value {
    if let Ok(n) = raw.parse::<i64>() {
        toml::Value::Integer(n)
    } else if let Some(x) = raw
        .contains('.')
        .then(|| raw.parse::<f64>().ok())
        .flatten()
        .filter(|x| x.is_finite())
    {
        toml::Value::Float(x)
    } else if let Ok(b) = raw.parse::<bool>() {
        toml::Value::Boolean(b)
    } else {
        toml::Value::String(raw.to_owned())
    }
}

fn insert(table: &mut toml::Table, path: &[String], value: toml::Value) {
    match path {
        [] => {}
        [last] => {
            table.insert(last.clone(), value);
        }
        [first, rest @ ..] => {
            let entry = table
                .entry(first.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if !entry.is_table() {
                *entry = toml::Value::Table(toml::Table::new());
            }
            if let toml::Value::Table(inner) = entry {
                insert(inner, rest, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn telegram_settings_come_from_the_environment() {
        let s = Settings::load(
            None,
            false,
            env(&[
                ("ARTEL_TELEGRAM__TOKEN", "123456:AAE-x_y"),
                ("ARTEL_TELEGRAM__API_URL", "http://127.0.0.1:9"),
                ("ARTEL_TELEGRAM__ALLOWED_USERS", "42, 7"),
            ]),
        )
        .unwrap();
        assert_eq!(
            s.telegram.token.as_ref().unwrap().expose(),
            "123456:AAE-x_y"
        );
        assert_eq!(s.telegram.api_url, "http://127.0.0.1:9");
        assert_eq!(s.telegram.allowed_users, vec![42, 7]);
        let one = Settings::load(None, false, env(&[("ARTEL_TELEGRAM__ALLOWED_USERS", "42")]));
        assert_eq!(one.unwrap().telegram.allowed_users, vec![42]);
        let bad = Settings::load(
            None,
            false,
            env(&[("ARTEL_TELEGRAM__ALLOWED_USERS", "4,x")]),
        );
        assert!(
            bad.unwrap_err()
                .to_string()
                .contains("`x` is not a Telegram user id")
        );
        let token = Settings::load(None, false, env(&[("ARTEL_TELEGRAM__TOKEN", "nope")]));
        assert!(token.unwrap_err().to_string().contains("telegram.token"));
    }

    #[test]
    fn defaults_work_with_nothing_set() {
        let s = Settings::load(None, false, env(&[])).unwrap();
        assert!(s.database.url.is_none());
        assert!(s.redis.url.is_none());
        assert_eq!(s.workflows.max_step_attempts, 3);
    }

    #[test]
    fn file_then_environment_then_conventional_names() {
        let dir = std::env::temp_dir().join(format!("artel-settings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("artel.toml");
        std::fs::write(
            &file,
            "data_dir = \"/srv/artel\"\n[workflows]\nmax_step_attempts = 5\n[redis]\nurl = \"redis://file\"\n",
        )
        .unwrap();
        let s = Settings::load(
            Some(&file),
            true,
            env(&[
                ("ARTEL_WORKFLOWS__MAX_STEP_ATTEMPTS", "7"),
                ("REDIS_URL", "redis://env"),
                ("DATABASE_URL", "postgres://u:hunter2@db/artel"),
                ("PATH", "/usr/bin"),
            ]),
        )
        .unwrap();
        assert_eq!(s.data_dir, PathBuf::from("/srv/artel"));
        assert_eq!(s.workflows.max_step_attempts, 7);
        assert_eq!(s.redis.url.as_ref().unwrap().expose(), "redis://env");
        assert!(!format!("{s:?}").contains("hunter2"), "secrets never print");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn docker_settings_come_from_the_environment_and_are_checked() {
        let s = Settings::load(
            None,
            false,
            env(&[
                ("ARTEL_DEPLOY__TARGET", "docker"),
                ("ARTEL_DEPLOY__DOCKER__HOST", "tcp://build-host:2375"),
                ("ARTEL_DEPLOY__DOCKER__CPUS", "1.5"),
                ("ARTEL_DEPLOY__DOCKER__PUBLIC_HOST", "build-host"),
                ("ARTEL_WORKERS__WARM_POOL", "0"),
                ("ARTEL_AGENT__NETWORK", "true"),
            ]),
        )
        .unwrap();
        assert_eq!(s.deploy.target, DeployTargetChoice::Docker);
        assert_eq!(s.deploy.docker.host, "tcp://build-host:2375");
        assert!((s.deploy.docker.cpus - 1.5).abs() < f64::EPSILON);
        assert_eq!(s.workers.warm_pool, 0);
        assert!(s.agent.network);
        let defaults = Settings::load(None, false, env(&[])).unwrap();
        assert_eq!(defaults.workers.runtime, WorkerRuntimeChoice::Auto);
        assert_eq!(defaults.deploy.target, DeployTargetChoice::Local);
        for (key, value, named) in [
            (
                "ARTEL_DEPLOY__DOCKER__HOST",
                "ssh://nope",
                "deploy.docker.host",
            ),
            (
                "ARTEL_DEPLOY__DOCKER__CPUS",
                "0.0",
                "deploy.docker.memory_mb",
            ),
            (
                "ARTEL_DEPLOY__DOCKER__PUBLISH_ADDRESS",
                "everywhere",
                "deploy.docker.publish_address",
            ),
            (
                "ARTEL_DEPLOY__DOCKER__FIRST_PORT",
                "80",
                "deploy.docker.first_port",
            ),
            ("ARTEL_WORKERS__WARM_POOL", "500", "workers.warm_pool"),
            ("ARTEL_DEPLOY__TARGET", "kubernetes", "kubernetes"),
        ] {
            let err = Settings::load(None, false, env(&[(key, value)])).unwrap_err();
            assert!(err.to_string().contains(named), "{key}={value}: {err}");
        }
    }

    #[test]
    fn llm_settings_come_from_the_file_and_environment() {
        let dir = std::env::temp_dir().join(format!("artel-llm-settings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("artel.toml");
        std::fs::write(
            &file,
            "[llm]\ntimeout_secs = 30\n[llm.prices.\"claude-sonnet-4-5\"]\ninput = 3\noutput = 15.0\ncached_input = 0.3\n",
        )
        .unwrap();
        let s = Settings::load(
            Some(&file),
            true,
            env(&[
                ("ARTEL_LLM__PROVIDER", "anthropic"),
                ("ARTEL_LLM__BASE_URL", "http://127.0.0.1:9999"),
                ("ARTEL_LLM__API_KEY", "sk-ant-hunter2"),
                ("ARTEL_LLM__MODEL", "claude-sonnet-4-5"),
            ]),
        )
        .unwrap();
        assert_eq!(s.llm.provider, LlmProvider::Anthropic);
        assert_eq!(s.llm.base_url.as_deref(), Some("http://127.0.0.1:9999"));
        assert_eq!(s.llm.api_key.as_ref().unwrap().expose(), "sk-ant-hunter2");
        assert_eq!(s.llm.model.as_deref(), Some("claude-sonnet-4-5"));
        assert_eq!(s.llm.timeout_secs, 30);
        let price = &s.llm.prices["claude-sonnet-4-5"];
        assert_eq!(
            (price.input, price.output, price.cached_input),
            (3.0, 15.0, Some(0.3))
        );
        assert!(
            !format!("{s:?}").contains("hunter2"),
            "the key never prints"
        );
        let _ = std::fs::remove_dir_all(dir);

        let defaults = Settings::load(None, false, env(&[])).unwrap();
        assert_eq!(defaults.llm.provider, LlmProvider::Openai);
        assert!(defaults.llm.model.is_none() && defaults.llm.api_key.is_none());
        for (key, value, named) in [
            ("ARTEL_LLM__PROVIDER", "gemini", "gemini"),
            ("ARTEL_LLM__BASE_URL", "localhost:11434", "llm.base_url"),
            ("ARTEL_LLM__TIMEOUT_SECS", "0", "llm.timeout_secs"),
            ("ARTEL_LLM__PRICES__M__INPUT", "-1", "llm.prices"),
        ] {
            let mut pairs = vec![(key, value)];
            if key.contains("PRICES") {
                pairs.push(("ARTEL_LLM__PRICES__M__OUTPUT", "1"));
            }
            let err = Settings::load(None, false, env(&pairs)).unwrap_err();
            assert!(err.to_string().contains(named), "{key}={value}: {err}");
        }
    }

    #[test]
    fn each_role_may_override_the_shared_provider() {
        let s = Settings::load(
            None,
            false,
            env(&[
                ("ARTEL_LLM__BASE_URL", "http://shared:1/v1"),
                ("ARTEL_LLM__MODEL", "shared-model"),
                ("ARTEL_LLM__API_KEY", "sk-shared"),
                ("ARTEL_LLM__PRODUCT_OWNER__PROVIDER", "anthropic"),
                ("ARTEL_LLM__PRODUCT_OWNER__BASE_URL", "http://po:2"),
                ("ARTEL_LLM__PRODUCT_OWNER__MODEL", "po-model"),
                ("ARTEL_LLM__PRODUCT_OWNER__MAX_OUTPUT_TOKENS", "1024"),
                ("ARTEL_LLM__DEVELOPER__TIMEOUT_SECS", "900"),
                ("ARTEL_PRODUCT_OWNER__KIND", "llm"),
            ]),
        )
        .unwrap();
        assert_eq!(s.product_owner.kind, ProductOwnerKind::Llm);
        let (dev, dev_set) = s.llm.for_role(LlmRole::Developer);
        assert_eq!(dev.provider, LlmProvider::Openai);
        assert_eq!(dev.base_url.as_deref(), Some("http://shared:1/v1"));
        assert_eq!(dev.model.as_deref(), Some("shared-model"));
        assert_eq!((dev.timeout_secs, dev.max_output_tokens), (900, 8192));
        assert_eq!(dev_set, ["timeout_secs"]);
        let (po, po_set) = s.llm.for_role(LlmRole::ProductOwner);
        assert_eq!(po.provider, LlmProvider::Anthropic);
        assert_eq!(po.base_url.as_deref(), Some("http://po:2"));
        assert_eq!(po.model.as_deref(), Some("po-model"));
        assert_eq!(
            po.api_key.as_ref().unwrap().expose(),
            "sk-shared",
            "falls back"
        );
        assert_eq!((po.timeout_secs, po.max_output_tokens), (300, 1024));
        assert_eq!(
            po_set,
            ["provider", "base_url", "model", "max_output_tokens"]
        );

        // The fixed names alone configure both roles; the agent alone does not turn the
        // ProductOwner's model on.
        let s = Settings::load(
            None,
            false,
            env(&[("ARTEL_AGENT__KIND", "llm"), ("ARTEL_LLM__MODEL", "m")]),
        )
        .unwrap();
        assert_eq!(s.product_owner.kind, ProductOwnerKind::Offline);
        assert!(matches!(
            crate::sessions::Brain::from_settings(&s),
            Ok(crate::sessions::Brain::Offline)
        ));
        for role in [LlmRole::Developer, LlmRole::ProductOwner] {
            assert_eq!(s.llm.for_role(role).0.model.as_deref(), Some("m"));
        }

        for (pairs, named) in [
            (
                vec![("ARTEL_PRODUCT_OWNER__KIND", "llm")],
                "set ARTEL_LLM__MODEL (or ARTEL_LLM__PRODUCT_OWNER__MODEL for the ProductOwner alone)",
            ),
            (
                vec![
                    ("ARTEL_LLM__MODEL", "m"),
                    ("ARTEL_LLM__PRODUCT_OWNER__BASE_URL", "po:2"),
                ],
                "llm.product_owner.base_url",
            ),
            (
                vec![("ARTEL_LLM__DEVELOPER__TIMEOUT_SECS", "0")],
                "llm.developer.timeout_secs",
            ),
            (vec![("ARTEL_LLM__DEVELOPER__MODELL", "m")], "modell"),
            (vec![("ARTEL_PRODUCT_OWNER__KIND", "smart")], "smart"),
        ] {
            let err = Settings::load(None, false, env(&pairs)).unwrap_err();
            assert!(err.to_string().contains(named), "{pairs:?}: {err}");
        }
    }

    #[test]
    fn mistakes_are_named() {
        let err = Settings::load(
            None,
            false,
            env(&[("ARTEL_WORKFLOWS__MAX_STEP_ATEMPTS", "2")]),
        )
        .unwrap_err();
        assert!(err.to_string().contains("max_step_atempts"), "{err}");
        assert!(
            err.to_string()
                .contains("ARTEL_WORKFLOWS__MAX_STEP_ATEMPTS"),
            "{err}"
        );
        let err = Settings::load(
            None,
            false,
            env(&[("ARTEL_WORKFLOWS__MAX_STEP_ATTEMPTS", "0")]),
        )
        .unwrap_err();
        assert!(err.to_string().contains("at least 1"), "{err}");
        let missing = Settings::load(Some(Path::new("/nonexistent/artel.toml")), true, env(&[]));
        assert!(matches!(missing, Err(SettingsError::Read { .. })));
        assert!(
            Settings::load(Some(Path::new("/nonexistent/artel.toml")), false, env(&[])).is_ok()
        );
    }
}
