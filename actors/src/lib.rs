//! # artel-actors — the roles
//!
//! Every role named in DESIGN.md is an actor here, built on `artel-supervisors` and speaking
//! the messages of `artel-messages`. Handlers hold the logic; retries are child specs.
//!
//! # Layout
//! - [`demo`] — a small live tree for `artel tree --demo`: a ticker, a child that crashes on
//!   a schedule, and a `rest_for_one` pipeline whose middle stage fails now and then.
//! - [`health`] — readiness probes (Postgres, Redis) behind `/health/ready`.
//! - [`settings`] — the one typed `Settings`: defaults < `artel.toml` < `ARTEL_*` env.
//! - [`workflow`] — durable workflows: journaled steps, resumed after any crash.
//! - [`managed_postgres`] — the embedded default database: a private cluster in the data dir.
//! - [`store`] — Postgres, the source of truth: the step journal, events, projects, secrets.
//! - [`worker_manager`] — sandboxes with limits (local processes; Docker later), a FIFO queue.
//! - [`deploy_target`] — where deployed services run: local processes on allocated ports.
//! - [`git`] — the local git provider: a bare repository per project, fetch, merge, export.
//! - [`intent`] — the offline intent parser: what a user's line asks for, English or Russian.
//! - [`scheduler`] — periodic jobs, one supervised actor per job, each run on one node at a
//!   time under an advisory lock.
//! - [`bus`] — a gapless, ordered feed of the event journal for in-process readers.
//! - [`acceptance`] — the Tester's HTTP acceptance suite and API contract, generated from a spec.
//! - [`agent`] — what writes code: the offline `template` generator, any `cli`; the manifest.
//! - [`analyst`] — the offline Analyst: a request (English or Russian) becomes a spec, and a
//!   correction in words edits it.
//! - [`roles`] — Analyst, Scaffolder, Developer, Tester, EnvAnalyzer, SecretResolver, Deployer.
//! - [`pipeline`] — the step runner mapping each journaled step to its role's message.
//! - [`sessions`] — one SessionActor per conversation, the ProductOwner, the news herald.
//! - [`jobs`] — the scheduler's jobs: deployment health, session and worker reapers, repos.
//! - [`llm`] — LLM providers: OpenAI-compatible and Anthropic clients, streamed or not, with
//!   classified errors and costs from the price table.
//! - [`runtime`] — all of the above assembled from `Settings` for `artel up` and `artel new`.

pub mod acceptance;
pub mod agent;
pub mod analyst;
pub mod bus;
pub mod demo;
pub mod deploy_target;
pub mod git;
pub mod health;
pub mod intent;
pub mod jobs;
pub mod llm;
pub mod managed_postgres;
pub mod pipeline;
pub mod roles;
pub mod runtime;
pub mod scheduler;
pub mod sessions;
pub mod settings;
pub mod store;
pub mod worker_manager;
pub mod workflow;
