//! Agents: what writes the code inside a Developer's worker.
//!
//! - [`Agent::Template`] — the offline default. Not an LLM and never pretending to be one: a
//!   deterministic generator ([`template`]) that turns the request into a standard-library
//!   Python service with a JSON API, file persistence and its own tests.
//! - [`Agent::Cli`] — any command line (an installed coding CLI, a script), run in the
//!   checkout with the task in its environment; artel checks that it committed.
//! - `llm` (artel's own tool-calling loop) plugs in here as a third variant.
//!
//! - [`spec_service`] — the offline compiler: a confirmed spec becomes a multi-resource
//!   service with relations, typed validation, actions, filters and its own tests.
//!
//! Every project carries a [`manifest`] (`artel.json`) saying how to test it, run it and
//! check its health, and which environment it needs.

pub mod manifest;
pub mod spec_service;
pub mod template;

use crate::settings::AgentSettings;
use artel_messages::Failure;

/// The agent the Developer runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Agent {
    /// The offline, deterministic template generator.
    Template,
    /// A shell command run in the worker's checkout; it must commit its work.
    Cli {
        /// The command line.
        command: String,
    },
}

impl Agent {
    /// The agent `[agent]` configures.
    pub fn from_settings(settings: &AgentSettings) -> Result<Self, Failure> {
        match (settings.kind.as_str(), &settings.command) {
            ("template", _) => Ok(Self::Template),
            ("cli", Some(command)) if !command.trim().is_empty() => Ok(Self::Cli {
                command: command.clone(),
            }),
            ("cli", _) => Err(Failure::fatal(
                "the `cli` agent needs a command: set agent.command (ARTEL_AGENT__COMMAND)",
            )),
            (other, _) => Err(Failure::fatal(format!(
                "{other:?} is not an agent: use \"template\" or \"cli\""
            ))),
        }
    }
}
