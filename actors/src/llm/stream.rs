//! What both dialects share when assembling a streamed answer.
//!
//! A stream delivers an answer in pieces: text deltas, and tool calls whose JSON arguments
//! arrive as string fragments. [`ToolCallAssembler`] joins the fragments into whole calls.
//! OpenAI numbers concurrent calls by `index` and names each (`id`) only in its first chunk;
//! Ollama sends every call whole with `index` 0 and its own `id`; Anthropic numbers content
//! blocks. So a delta with a new id starts a new call, one with a known id extends that call,
//! and one without an id extends the latest call at its index.

use super::conversation::ToolCall;
use super::error::ErrorBody;
use std::collections::HashMap;

/// A piece of a streamed answer, as it arrives (for showing progress).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delta {
    /// More of the assistant's text.
    Text(String),
    /// The model started a tool call.
    ToolCallStarted {
        /// The call's id.
        id: String,
        /// The tool's name.
        name: String,
    },
    /// More of a tool call's JSON arguments.
    ToolCallArguments {
        /// The call's id.
        id: String,
        /// The fragment.
        fragment: String,
    },
}

/// Why a stream could not be assembled into an answer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum StreamFault {
    /// The provider sent an error event midway; `status` is the HTTP status it stands for.
    Provider {
        /// The status the error's type corresponds to.
        status: u16,
        /// The error.
        body: ErrorBody,
    },
    /// An event did not parse.
    Malformed(String),
    /// The stream ended before its last event.
    Incomplete(String),
}

#[derive(Debug)]
struct PartialCall {
    id: String,
    name: String,
    arguments: String,
}

/// Joins tool-call fragments into calls (see the module docs for the servers' habits).
#[derive(Debug, Default)]
pub(crate) struct ToolCallAssembler {
    calls: Vec<PartialCall>,
    latest_at_index: HashMap<u64, usize>,
}

impl ToolCallAssembler {
    /// Adds a fragment; emits the deltas it means.
    pub(crate) fn fragment(
        &mut self,
        index: u64,
        id: Option<&str>,
        name: Option<&str>,
        arguments: &str,
        on_delta: &mut dyn FnMut(Delta),
    ) {
        let id = id.filter(|id| !id.is_empty());
        let known = match id {
            Some(id) => self.calls.iter().position(|call| call.id == id),
            None => self.latest_at_index.get(&index).copied(),
        };
        let position = known.unwrap_or_else(|| {
            let id = id.map_or_else(|| format!("call_{}", self.calls.len()), str::to_owned);
            self.calls.push(PartialCall {
                id,
                name: String::new(),
                arguments: String::new(),
            });
            self.latest_at_index.insert(index, self.calls.len() - 1);
            self.calls.len() - 1
        });
        let call = &mut self.calls[position];
        if let Some(name) = name.filter(|n| !n.is_empty())
            && call.name.is_empty()
        {
            call.name = name.to_owned();
            on_delta(Delta::ToolCallStarted {
                id: call.id.clone(),
                name: call.name.clone(),
            });
        }
        if !arguments.is_empty() {
            call.arguments.push_str(arguments);
            on_delta(Delta::ToolCallArguments {
                id: call.id.clone(),
                fragment: arguments.to_owned(),
            });
        }
    }

    /// Whether any call was started.
    pub(crate) fn is_empty(&self) -> bool {
        self.calls.is_empty()
    }

    /// The whole calls, in the order they started.
    pub(crate) fn finish(self) -> Vec<ToolCall> {
        self.calls
            .into_iter()
            .map(|call| ToolCall {
                arguments: parse_arguments(&call.arguments),
                id: call.id,
                name: call.name,
            })
            .collect()
    }
}

/// A tool call's arguments text as JSON: `{}` when empty, the raw text as a JSON string when
/// it is not valid JSON (the loop answers the model with an error then).
pub(crate) fn parse_arguments(raw: &str) -> serde_json::Value {
    if raw.trim().is_empty() {
        return serde_json::Value::Object(serde_json::Map::new());
    }
    serde_json::from_str(raw).unwrap_or_else(|_| serde_json::Value::String(raw.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn openai_fragments_join_by_index_and_interleave() {
        let mut calls = ToolCallAssembler::default();
        let mut deltas = Vec::new();
        let mut on = |d| deltas.push(d);
        calls.fragment(0, Some("a"), Some("bash"), "", &mut on);
        calls.fragment(1, Some("b"), Some("finish"), "{\"summary\":", &mut on);
        calls.fragment(0, None, None, "{\"command\":", &mut on);
        calls.fragment(0, None, None, "\"ls\"}", &mut on);
        calls.fragment(1, None, None, "\"done\"}", &mut on);
        let calls = calls.finish();
        assert_eq!(calls.len(), 2);
        assert_eq!(
            (calls[0].id.as_str(), calls[0].name.as_str()),
            ("a", "bash")
        );
        assert_eq!(calls[0].arguments, json!({"command": "ls"}));
        assert_eq!(calls[1].arguments, json!({"summary": "done"}));
        assert_eq!(deltas.len(), 6, "two starts and four fragments: {deltas:?}");
    }

    #[test]
    fn ollama_calls_all_at_index_zero_are_told_apart_by_id() {
        let mut calls = ToolCallAssembler::default();
        let mut on = |_| {};
        calls.fragment(
            0,
            Some("call_x"),
            Some("bash"),
            "{\"command\":\"ls\"}",
            &mut on,
        );
        calls.fragment(
            0,
            Some("call_y"),
            Some("bash"),
            "{\"command\":\"pwd\"}",
            &mut on,
        );
        let calls = calls.finish();
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[1].id, "call_y");
        assert_eq!(calls[1].arguments, json!({"command": "pwd"}));
    }

    #[test]
    fn calls_without_ids_get_one_and_bad_json_is_kept_as_text() {
        let mut calls = ToolCallAssembler::default();
        calls.fragment(0, None, Some("bash"), "{\"command\": ls", &mut |_| {});
        let calls = calls.finish();
        assert_eq!(calls[0].id, "call_0");
        assert_eq!(calls[0].arguments, json!("{\"command\": ls"));
        assert_eq!(parse_arguments(" "), json!({}));
    }
}
