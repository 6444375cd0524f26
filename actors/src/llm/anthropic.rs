//! The Anthropic Messages dialect.
//!
//! Differences from OpenAI's handled here:
//! - system messages go to the top-level `system` field, joined;
//! - there are two roles only: tool results are `tool_result` blocks of a *user* message,
//!   placed before any text, and consecutive messages of one role are merged;
//! - `tool_use.input` must be an object: arguments that were not JSON are sent as
//!   `{"arguments": "<the raw text>"}`;
//! - `max_tokens` is required;
//! - a stream is named events: `message_start` (input usage), `content_block_start` /
//!   `content_block_delta` (`text_delta`, `input_json_delta`), `message_delta` (stop reason,
//!   cumulative output usage), `message_stop`; `error` events midway carry an error type
//!   (`overloaded_error`…) that stands for an HTTP status.

use super::conversation::{Completion, Message, Part, Request, Role, StopReason, ToolCall, Usage};
use super::error::ErrorBody;
use super::sse::SseEvent;
use super::stream::{Delta, StreamFault, ToolCallAssembler};
use serde_json::{Value, json};

/// The path appended to `llm.base_url`.
pub const PATH: &str = "/v1/messages";
/// The API version artel speaks (the `anthropic-version` header).
pub const VERSION: &str = "2023-06-01";

/// The request body.
pub fn request_body(model: &str, max_tokens: u32, request: &Request, stream: bool) -> Value {
    let system: Vec<String> = request
        .messages
        .iter()
        .filter(|m| m.role == Role::System)
        .map(Message::joined_text)
        .collect();
    let mut body = json!({
        "model": model,
        "max_tokens": max_tokens,
        "messages": messages(&request.messages),
    });
    if !system.is_empty() {
        body["system"] = json!(system.join("\n\n"));
    }
    if !request.tools.is_empty() {
        body["tools"] = request
            .tools
            .iter()
            .map(|t| json!({"name": t.name, "description": t.description, "input_schema": t.input_schema}))
            .collect();
    }
    if stream {
        body["stream"] = json!(true);
    }
    body
}

fn messages(conversation: &[Message]) -> Vec<Value> {
    let mut out: Vec<(&'static str, Vec<Value>)> = Vec::new();
    for message in conversation {
        let role = match message.role {
            Role::System => continue,
            Role::Assistant => "assistant",
            Role::User | Role::Tool => "user",
        };
        let blocks: Vec<Value> = message.content.iter().filter_map(block).collect();
        if blocks.is_empty() {
            continue;
        }
        match out.last_mut() {
            Some((last, existing)) if *last == role => existing.extend(blocks),
            _ => out.push((role, blocks)),
        }
    }
    out.into_iter()
        .map(|(role, mut blocks)| {
            // Tool results must open a user message.
            blocks.sort_by_key(|b| b["type"] != "tool_result");
            json!({"role": role, "content": blocks})
        })
        .collect()
}

fn block(part: &Part) -> Option<Value> {
    Some(match part {
        Part::Text { text } if text.is_empty() => return None,
        Part::Text { text } => json!({"type": "text", "text": text}),
        Part::ToolCall(call) => {
            let input = match &call.arguments {
                object @ Value::Object(_) => object.clone(),
                other => json!({"arguments": other}),
            };
            json!({"type": "tool_use", "id": call.id, "name": call.name, "input": input})
        }
        Part::ToolResult(result) => json!({
            "type": "tool_result",
            "tool_use_id": result.tool_call_id,
            "content": result.content,
            "is_error": result.is_error,
        }),
    })
}

/// A non-streamed answer.
pub fn parse_response(body: &Value) -> Result<Completion, String> {
    let blocks = body
        .get("content")
        .and_then(Value::as_array)
        .ok_or("no content in the answer")?;
    let mut text = String::new();
    let mut calls = Vec::new();
    for block in blocks {
        match block.get("type").and_then(Value::as_str) {
            Some("text") => text.push_str(block.get("text").and_then(Value::as_str).unwrap_or("")),
            Some("tool_use") => calls.push(ToolCall {
                id: str_at(block, "id")
                    .ok_or("a tool_use has no id")?
                    .to_owned(),
                name: str_at(block, "name")
                    .ok_or("a tool_use has no name")?
                    .to_owned(),
                arguments: block.get("input").cloned().unwrap_or_else(|| json!({})),
            }),
            _ => {}
        }
    }
    let mut counters = Counters::default();
    counters.update(body.get("usage"));
    Ok(Completion {
        message: assistant(text, calls),
        stop_reason: stop_reason(body.get("stop_reason").and_then(Value::as_str)),
        usage: counters.usage(),
    })
}

fn str_at<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value.get(key).and_then(Value::as_str)
}

fn assistant(text: String, calls: Vec<ToolCall>) -> Message {
    let mut content = Vec::new();
    if !text.is_empty() {
        content.push(Part::Text { text });
    }
    content.extend(calls.into_iter().map(Part::ToolCall));
    Message {
        role: Role::Assistant,
        content,
    }
}

/// Anthropic's four counters, as reported so far. Stream events repeat them cumulatively,
/// so a count present in a later event replaces the earlier one.
#[derive(Debug, Default, Clone, Copy)]
struct Counters {
    input: u64,
    output: u64,
    cache_read: u64,
    cache_write: u64,
}

impl Counters {
    fn update(&mut self, usage: Option<&Value>) {
        let Some(usage) = usage else { return };
        let set = |field: &mut u64, key: &str| {
            if let Some(n) = usage.get(key).and_then(Value::as_u64) {
                *field = n;
            }
        };
        set(&mut self.input, "input_tokens");
        set(&mut self.output, "output_tokens");
        set(&mut self.cache_read, "cache_read_input_tokens");
        set(&mut self.cache_write, "cache_creation_input_tokens");
    }

    fn usage(self) -> Usage {
        Usage::from_anthropic(self.input, self.output, self.cache_read, self.cache_write)
    }
}

fn stop_reason(reason: Option<&str>) -> StopReason {
    match reason {
        Some("end_turn") | None => StopReason::EndTurn,
        Some("tool_use") => StopReason::ToolUse,
        Some("max_tokens") => StopReason::MaxTokens,
        Some("stop_sequence") => StopReason::StopSequence,
        Some("refusal") => StopReason::Refusal,
        Some(other) => StopReason::Other(other.to_owned()),
    }
}

/// The HTTP status an error event's type stands for.
fn status_of(kind: &str) -> u16 {
    match kind {
        "invalid_request_error" => 400,
        "authentication_error" => 401,
        "permission_error" => 403,
        "not_found_error" => 404,
        "request_too_large" => 413,
        "rate_limit_error" => 429,
        "overloaded_error" => 529,
        _ => 500,
    }
}

/// Assembles a streamed answer from its events.
#[derive(Debug, Default)]
pub struct StreamAssembler {
    text: String,
    calls: ToolCallAssembler,
    stop_reason: Option<String>,
    counters: Counters,
    done: bool,
    /// Whether a `message_start` came (the stream is in this dialect).
    started: bool,
}

impl StreamAssembler {
    /// Takes one event; true once the stream is over (`message_stop`).
    pub(crate) fn event(
        &mut self,
        event: &SseEvent,
        on_delta: &mut dyn FnMut(Delta),
    ) -> Result<bool, StreamFault> {
        let data: Value = serde_json::from_str(&event.data)
            .map_err(|e| StreamFault::Malformed(format!("an event is not JSON: {e}")))?;
        let kind = event
            .event
            .clone()
            .or_else(|| str_at(&data, "type").map(str::to_owned))
            .unwrap_or_default();
        let index = data.get("index").and_then(Value::as_u64).unwrap_or(0);
        match kind.as_str() {
            "message_start" => {
                self.started = true;
                self.counters.update(data.pointer("/message/usage"));
            }
            "content_block_start" => {
                let block = data.get("content_block").cloned().unwrap_or_default();
                match str_at(&block, "type") {
                    Some("text") => self.text_delta(str_at(&block, "text"), on_delta),
                    Some("tool_use") => self.calls.fragment(
                        index,
                        str_at(&block, "id"),
                        str_at(&block, "name"),
                        "",
                        on_delta,
                    ),
                    _ => {}
                }
            }
            "content_block_delta" => {
                let delta = data.get("delta").cloned().unwrap_or_default();
                match str_at(&delta, "type") {
                    Some("text_delta") => self.text_delta(str_at(&delta, "text"), on_delta),
                    Some("input_json_delta") => self.calls.fragment(
                        index,
                        None,
                        None,
                        str_at(&delta, "partial_json").unwrap_or(""),
                        on_delta,
                    ),
                    _ => {}
                }
            }
            "message_delta" => {
                if let Some(reason) = data.pointer("/delta/stop_reason").and_then(Value::as_str) {
                    self.stop_reason = Some(reason.to_owned());
                }
                self.counters.update(data.get("usage"));
            }
            "message_stop" => {
                self.done = true;
                return Ok(true);
            }
            "error" => {
                let body = ErrorBody::from_json(&data).unwrap_or_default();
                return Err(StreamFault::Provider {
                    status: status_of(&body.kind),
                    body,
                });
            }
            _ => {}
        }
        Ok(false)
    }

    fn text_delta(&mut self, text: Option<&str>, on_delta: &mut dyn FnMut(Delta)) {
        if let Some(text) = text.filter(|t| !t.is_empty()) {
            self.text.push_str(text);
            on_delta(Delta::Text(text.to_owned()));
        }
    }

    /// The answer, once the stream has ended; without `message_stop` it was cut.
    pub(crate) fn finish(self) -> Result<Completion, StreamFault> {
        if !self.started && !self.done {
            return Err(StreamFault::Malformed(
                "the stream has no message_start".to_owned(),
            ));
        }
        if !self.done {
            return Err(StreamFault::Incomplete(
                "the stream ended before message_stop".to_owned(),
            ));
        }
        let had_calls = !self.calls.is_empty();
        let mut stop_reason = stop_reason(self.stop_reason.as_deref());
        if had_calls && stop_reason == StopReason::EndTurn {
            stop_reason = StopReason::ToolUse;
        }
        Ok(Completion {
            message: assistant(self.text, self.calls.finish()),
            stop_reason,
            usage: self.counters.usage(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::conversation::ToolResult;

    fn event(name: &str, data: Value) -> SseEvent {
        SseEvent {
            event: Some(name.to_owned()),
            data: data.to_string(),
        }
    }

    #[test]
    fn system_goes_on_top_and_tool_results_open_a_merged_user_message() {
        let request = Request {
            messages: vec![
                Message::system("rules"),
                Message::user("go"),
                Message {
                    role: Role::Assistant,
                    content: vec![Part::ToolCall(ToolCall {
                        id: "t1".into(),
                        name: "bash".into(),
                        arguments: json!("not json"),
                    })],
                },
                Message::user("also this"),
                Message::tool_results([ToolResult::ok("t1", "out")]),
            ],
            ..Request::default()
        };
        let body = request_body("claude", 64, &request, false);
        assert_eq!(body["system"], "rules");
        let messages = body["messages"].as_array().unwrap();
        assert_eq!(messages.len(), 3, "{messages:?}");
        assert_eq!(
            messages[1]["content"][0]["input"],
            json!({"arguments": "not json"})
        );
        assert_eq!(messages[2]["content"][0]["type"], "tool_result");
        assert_eq!(messages[2]["content"][0]["is_error"], false);
        assert_eq!(messages[2]["content"][1]["text"], "also this");
    }

    #[test]
    fn stream_usage_adds_cache_reads_to_input_and_keeps_the_last_output_count() {
        let mut stream = StreamAssembler::default();
        let mut on = |_| {};
        for e in [
            event(
                "message_start",
                json!({"message": {"usage": {"input_tokens": 20, "cache_read_input_tokens": 100, "output_tokens": 1}}}),
            ),
            event(
                "content_block_start",
                json!({"index": 0, "content_block": {"type": "text", "text": ""}}),
            ),
            event(
                "content_block_delta",
                json!({"index": 0, "delta": {"type": "text_delta", "text": "hi"}}),
            ),
            event(
                "message_delta",
                json!({"delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 7}}),
            ),
            event("message_stop", json!({"type": "message_stop"})),
        ] {
            stream.event(&e, &mut on).unwrap();
        }
        let completion = stream.finish().unwrap();
        assert_eq!(
            completion.usage,
            Usage {
                input: 120,
                output: 7,
                cached_input: 100
            }
        );
        assert_eq!(completion.message.joined_text(), "hi");
    }

    #[test]
    fn an_overloaded_event_midway_stands_for_529_and_a_cut_stream_is_incomplete() {
        let mut stream = StreamAssembler::default();
        let fault = stream
            .event(
                &event("error", json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})),
                &mut |_| {},
            )
            .unwrap_err();
        assert!(matches!(fault, StreamFault::Provider { status: 529, .. }));
        assert!(matches!(
            StreamAssembler::default().finish(),
            Err(StreamFault::Malformed(_))
        ));
        let mut cut = StreamAssembler::default();
        cut.event(&event("message_start", json!({"message": {}})), &mut |_| {})
            .unwrap();
        assert!(matches!(cut.finish(), Err(StreamFault::Incomplete(_))));
    }
}
