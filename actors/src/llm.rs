//! LLM providers: the clients the roles that think with a model talk through.
//!
//! Two dialects cover the field: OpenAI Chat Completions (OpenAI itself and the compatible
//! servers: vLLM, llama.cpp's server, Ollama, LiteLLM) and the Anthropic Messages API. Both
//! are spoken streamed (SSE) and not, with tools. Everything above this module sees only the
//! provider-neutral [`conversation`] and classified [`LlmError`]s.
//!
//! # Layout
//! - [`conversation`] — messages, tool calls and results, tool specs, completions, usage.
//! - [`client`] — [`LlmClient`]: one configured provider; `complete` and `stream`.
//! - [`openai`], [`anthropic`] — each dialect's request body, answer and stream assembly,
//!   with the server quirks each handles listed in its docs.
//! - [`sse`] — server-sent event framing; [`stream`] — what both streams share.
//! - [`error`] — [`LlmError`], retryable or fatal, with the server's retry delay.
//! - [`cost`] — usage normalized across dialects and priced by `[llm.prices]`.
//! - [`budget`] — caps per task, project and user per day, checked before each call.

pub mod anthropic;
pub mod budget;
pub mod client;
pub mod conversation;
pub mod cost;
pub mod error;
pub mod openai;
pub mod sse;
pub mod stream;

pub use client::LlmClient;
pub use conversation::{
    Completion, Message, Part, Request, Role, StopReason, ToolCall, ToolResult, ToolSpec, Usage,
};
pub use error::{Caller, LlmError};
pub use stream::Delta;
