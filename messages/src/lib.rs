//! # artel-messages — the one catalog
//!
//! Everything that travels between artel's actors and processes is declared here, once:
//! typed messages for every role, the envelope that wraps a message when it crosses a process
//! boundary, the append-only events that feed the CLI, WebSocket, Telegram and dashboard, the
//! DTOs the front doors return, the error classes supervisors act on, the one worker lifecycle,
//! and the registry of every Redis stream.
//!
//! This crate depends on no other artel crate and on nothing but serialization-level libraries
//! (serde, serde_json, chrono for RFC 3339 time, uuid for ids, thiserror), so every other crate
//! can depend on it.
//!
//! # Layout
//! - [`error`] — [`ErrorClass`] (retryable or fatal), [`Failure`], the [`Classify`] trait.
//! - [`request`] — [`Request`]: a message and the type of its reply.

pub mod error;
pub mod request;

pub use error::{Classify, ErrorClass, Failure};
pub use request::Request;
