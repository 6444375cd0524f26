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
//!
//! The pipeline roles (ProductOwner, Scaffolder, Developer, Tester, EnvAnalyzer,
//! SecretResolver, Deployer, WorkerManager, scheduler jobs) arrive with the pipeline issue;
//! their messages are already in the catalog.

pub mod bus;
pub mod demo;
pub mod health;
pub mod managed_postgres;
pub mod settings;
pub mod store;
pub mod worker_manager;
pub mod workflow;
