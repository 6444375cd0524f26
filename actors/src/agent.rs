//! Agents: what writes the code inside a Developer's worker.
//!
//! - [`Agent::Template`] — the offline default. Not an LLM and never pretending to be one: a
//!   deterministic generator ([`template`]) that turns the request into a standard-library
//!   Python service with a JSON API, file persistence and its own tests.
//! - [`Agent::Cli`] — any command line (an installed coding CLI, a script), run in the
//!   checkout with the task in its environment; artel checks that it committed.
//! - [`Agent::Llm`] — artel's own tool-calling loop ([`llm_agent`]): the model runs on the
//!   host, its `bash` calls in the worker, so the API key never enters the sandbox.
//!
//! - [`spec_service`] — the offline compiler: a confirmed spec becomes a multi-resource
//!   service with relations, typed validation, actions, filters and its own tests.
//!
//! Every project carries a [`manifest`] (`artel.json`) saying how to test it, run it and
//! check its health, and which environment it needs.

pub mod llm_agent;
pub mod manifest;
pub mod spec_service;
pub mod template;

use crate::llm::LlmClient;
use crate::settings::{LlmRole, Settings};
use artel_messages::{Classify, Failure};
use std::sync::Arc;

/// The agent the Developer runs.
#[derive(Debug, Clone)]
pub enum Agent {
    /// The offline, deterministic template generator.
    Template,
    /// A shell command run in the worker's checkout; it must commit its work.
    Cli {
        /// The command line.
        command: String,
    },
    /// artel's own tool-calling loop on the Developer's provider (`[llm]`, with
    /// `[llm.developer]` on top).
    Llm(Arc<llm_agent::LlmAgent>),
}

impl Agent {
    /// The agent `[agent]` configures (`llm` also reads `[llm]`).
    pub fn from_settings(all: &Settings) -> Result<Self, Failure> {
        let settings = &all.agent;
        match (settings.kind.as_str(), &settings.command) {
            ("llm", _) => {
                let client = LlmClient::for_role(&all.llm, LlmRole::Developer)
                    .map_err(|e| e.to_failure())?;
                let (llm, _) = all.llm.for_role(LlmRole::Developer);
                let agent = llm_agent::LlmAgent::new(client, settings, &llm)?;
                Ok(Self::Llm(Arc::new(agent)))
            }
            ("template", _) => Ok(Self::Template),
            ("cli", Some(command)) if !command.trim().is_empty() => Ok(Self::Cli {
                command: command.clone(),
            }),
            ("cli", _) => Err(Failure::fatal(
                "the `cli` agent needs a command: set agent.command (ARTEL_AGENT__COMMAND)",
            )),
            (other, _) => Err(Failure::fatal(format!(
                "{other:?} is not an agent: use \"template\", \"cli\" or \"llm\""
            ))),
        }
    }
}
