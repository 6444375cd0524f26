//! The OpenAI Chat Completions dialect, spoken by OpenAI and by compatible servers (vLLM,
//! llama.cpp's server, Ollama, LiteLLM).
//!
//! Quirks handled:
//! - tool-call arguments travel as a JSON *string*; they are parsed (see
//!   [`super::stream::parse_arguments`]) and sent back verbatim when they were not JSON;
//! - there is no error flag on tool results, so a failed result's content is prefixed
//!   `error: `;
//! - some servers (Ollama, older llama.cpp) answer tool calls with `finish_reason: "stop"`:
//!   an answer with tool calls always stops for [`StopReason::ToolUse`];
//! - streamed tool calls are assembled by id, since Ollama gives every call index 0;
//! - `stream_options.include_usage` asks for the usage chunk (choices empty) before `[DONE]`;
//! - `max_tokens`, not `max_completion_tokens`: every compatible server knows it.

use super::conversation::{Completion, Message, Part, Request, Role, StopReason, Usage};
use super::error::ErrorBody;
use super::sse::SseEvent;
use super::stream::{Delta, StreamFault, ToolCallAssembler, parse_arguments};
use serde_json::{Value, json};

/// The path appended to `llm.base_url`.
pub const PATH: &str = "/chat/completions";

/// The request body.
pub fn request_body(model: &str, max_tokens: u32, request: &Request, stream: bool) -> Value {
    let mut body = json!({
        "model": model,
        "max_tokens": max_tokens,
        "messages": messages(&request.messages),
    });
    if !request.tools.is_empty() {
        body["tools"] = request
            .tools
            .iter()
            .map(|tool| {
                json!({"type": "function", "function": {
                    "name": tool.name,
                    "description": tool.description,
                    "parameters": tool.input_schema,
                }})
            })
            .collect();
    }
    if stream {
        body["stream"] = json!(true);
        body["stream_options"] = json!({"include_usage": true});
    }
    body
}

fn messages(conversation: &[Message]) -> Vec<Value> {
    let mut out = Vec::new();
    for message in conversation {
        for result in message.tool_results_iter() {
            let content = if result.is_error {
                format!("error: {}", result.content)
            } else {
                result.content.clone()
            };
            out.push(
                json!({"role": "tool", "tool_call_id": result.tool_call_id, "content": content}),
            );
        }
        let text = message.joined_text();
        let calls: Vec<Value> = message
            .tool_calls()
            .map(|call| {
                let arguments = match &call.arguments {
                    Value::String(raw) => raw.clone(),
                    other => other.to_string(),
                };
                json!({"id": call.id, "type": "function",
                       "function": {"name": call.name, "arguments": arguments}})
            })
            .collect();
        let role = match message.role {
            Role::System => "system",
            Role::Assistant => "assistant",
            Role::User | Role::Tool => "user",
        };
        if message.role == Role::Assistant && !calls.is_empty() {
            let content = if text.is_empty() {
                Value::Null
            } else {
                json!(text)
            };
            out.push(json!({"role": role, "content": content, "tool_calls": calls}));
        } else if !text.is_empty() || message.content.is_empty() {
            out.push(json!({"role": role, "content": text}));
        }
    }
    out
}

/// A non-streamed answer.
pub fn parse_response(body: &Value) -> Result<Completion, String> {
    let choice = body
        .pointer("/choices/0")
        .ok_or("no choices in the answer")?;
    let message = choice.get("message").ok_or("no message in the choice")?;
    let mut content = Vec::new();
    if let Some(text) = message.get("content").and_then(Value::as_str)
        && !text.is_empty()
    {
        content.push(Part::Text {
            text: text.to_owned(),
        });
    }
    for call in message
        .get("tool_calls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let function = call.get("function").ok_or("a tool call has no function")?;
        content.push(Part::ToolCall(super::conversation::ToolCall {
            id: call
                .get("id")
                .and_then(Value::as_str)
                .map_or_else(|| format!("call_{}", content.len()), str::to_owned),
            name: str_at(function, "name")
                .ok_or("a tool call has no name")?
                .to_owned(),
            arguments: match function.get("arguments") {
                Some(Value::String(raw)) => parse_arguments(raw),
                Some(object @ Value::Object(_)) => object.clone(),
                _ => json!({}),
            },
        }));
    }
    let message = Message {
        role: Role::Assistant,
        content,
    };
    let stop_reason = stop_reason(
        choice.get("finish_reason").and_then(Value::as_str),
        &message,
    );
    Ok(Completion {
        usage: usage(body.get("usage")),
        message,
        stop_reason,
    })
}

fn str_at<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value.get(key).and_then(Value::as_str)
}

fn usage(usage: Option<&Value>) -> Usage {
    let count = |pointer: &str| {
        usage
            .and_then(|u| u.pointer(pointer))
            .and_then(Value::as_u64)
            .unwrap_or(0)
    };
    Usage::from_openai(
        count("/prompt_tokens"),
        count("/completion_tokens"),
        count("/prompt_tokens_details/cached_tokens"),
    )
}

fn stop_reason(finish_reason: Option<&str>, message: &Message) -> StopReason {
    if message.tool_calls().next().is_some() {
        return StopReason::ToolUse;
    }
    match finish_reason {
        Some("stop") | None => StopReason::EndTurn,
        Some("tool_calls" | "function_call") => StopReason::ToolUse,
        Some("length") => StopReason::MaxTokens,
        Some("content_filter") => StopReason::Refusal,
        Some(other) => StopReason::Other(other.to_owned()),
    }
}

/// Assembles a streamed answer from its chunks.
#[derive(Debug, Default)]
pub struct StreamAssembler {
    text: String,
    calls: ToolCallAssembler,
    finish_reason: Option<String>,
    usage: Option<Usage>,
    done: bool,
    /// Whether any chunk had this dialect's shape (`choices` or `usage`).
    recognised: bool,
}

impl StreamAssembler {
    /// Takes one event; true once the stream is over (`[DONE]`).
    pub(crate) fn event(
        &mut self,
        event: &SseEvent,
        on_delta: &mut dyn FnMut(Delta),
    ) -> Result<bool, StreamFault> {
        if event.data.trim() == "[DONE]" {
            self.done = true;
            return Ok(true);
        }
        let chunk: Value = serde_json::from_str(&event.data)
            .map_err(|e| StreamFault::Malformed(format!("a chunk is not JSON: {e}")))?;
        if chunk.get("error").is_some() {
            let body = ErrorBody::from_json(&chunk).unwrap_or_default();
            let status = body
                .code
                .parse()
                .ok()
                .filter(|s| (400..600).contains(s))
                .unwrap_or(500);
            return Err(StreamFault::Provider { status, body });
        }
        self.recognised |= chunk.get("choices").is_some() || chunk.get("usage").is_some();
        if let Some(usage_json) = chunk.get("usage").filter(|u| u.is_object()) {
            self.usage = Some(usage(Some(usage_json)));
        }
        let Some(choice) = chunk.pointer("/choices/0") else {
            return Ok(false);
        };
        if let Some(text) = choice.pointer("/delta/content").and_then(Value::as_str)
            && !text.is_empty()
        {
            self.text.push_str(text);
            on_delta(Delta::Text(text.to_owned()));
        }
        for call in choice
            .pointer("/delta/tool_calls")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let arguments = match call.pointer("/function/arguments") {
                Some(Value::String(raw)) => raw.clone(),
                Some(object @ Value::Object(_)) => object.to_string(),
                _ => String::new(),
            };
            self.calls.fragment(
                call.get("index").and_then(Value::as_u64).unwrap_or(0),
                str_at(call, "id"),
                call.pointer("/function/name").and_then(Value::as_str),
                &arguments,
                on_delta,
            );
        }
        if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
            self.finish_reason = Some(reason.to_owned());
        }
        Ok(false)
    }

    /// The answer, once the stream has ended. A stream that ended without a `finish_reason`
    /// was cut; one with it but without `[DONE]` is accepted (some servers omit it).
    pub(crate) fn finish(self) -> Result<Completion, StreamFault> {
        if !self.recognised && !self.done {
            return Err(StreamFault::Malformed(
                "no chunk of the stream has choices".to_owned(),
            ));
        }
        if self.finish_reason.is_none() {
            let reason = if self.done {
                "[DONE] came without a finish_reason"
            } else {
                "the stream ended before finish_reason"
            };
            return Err(StreamFault::Incomplete(reason.to_owned()));
        }
        let mut content = Vec::new();
        if !self.text.is_empty() {
            content.push(Part::Text { text: self.text });
        }
        content.extend(self.calls.finish().into_iter().map(Part::ToolCall));
        let message = Message {
            role: Role::Assistant,
            content,
        };
        Ok(Completion {
            stop_reason: stop_reason(self.finish_reason.as_deref(), &message),
            usage: self.usage.unwrap_or_default(),
            message,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::conversation::{ToolCall, ToolResult, ToolSpec};

    fn sse(data: &str) -> SseEvent {
        SseEvent {
            event: None,
            data: data.to_owned(),
        }
    }

    #[test]
    fn the_request_carries_tools_calls_and_results_in_openai_shape() {
        let request = Request {
            messages: vec![
                Message::system("be brief"),
                Message::user("list files"),
                Message {
                    role: Role::Assistant,
                    content: vec![Part::ToolCall(ToolCall {
                        id: "c1".into(),
                        name: "bash".into(),
                        arguments: json!({"command": "ls"}),
                    })],
                },
                Message::tool_results([ToolResult::error("c1", "no such dir")]),
            ],
            tools: vec![ToolSpec {
                name: "bash".into(),
                description: "run".into(),
                input_schema: json!({"type": "object"}),
            }],
            max_output_tokens: None,
        };
        let body = request_body("m", 100, &request, true);
        assert_eq!(
            body["messages"][0],
            json!({"role": "system", "content": "be brief"})
        );
        assert_eq!(body["messages"][2]["content"], Value::Null);
        assert_eq!(
            body["messages"][2]["tool_calls"][0]["function"]["arguments"],
            "{\"command\":\"ls\"}"
        );
        assert_eq!(
            body["messages"][3],
            json!({"role": "tool", "tool_call_id": "c1", "content": "error: no such dir"})
        );
        assert_eq!(
            body["tools"][0]["function"]["parameters"],
            json!({"type": "object"})
        );
        assert_eq!(body["stream_options"], json!({"include_usage": true}));
        assert!(
            request_body("m", 1, &request, false)
                .get("stream")
                .is_none()
        );
    }

    #[test]
    fn a_stop_with_tool_calls_is_a_tool_use() {
        let answer = json!({"choices": [{"finish_reason": "stop", "message": {"content": null,
            "tool_calls": [{"id": "c", "type": "function", "function": {"name": "bash", "arguments": "{}"}}]}}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 2, "prompt_tokens_details": {"cached_tokens": 4}}});
        let completion = parse_response(&answer).unwrap();
        assert_eq!(completion.stop_reason, StopReason::ToolUse);
        assert_eq!(
            completion.usage,
            Usage {
                input: 10,
                output: 2,
                cached_input: 4
            }
        );
        assert!(parse_response(&json!({"id": "x"})).is_err());
    }

    #[test]
    fn a_stream_without_finish_reason_was_cut() {
        let mut stream = StreamAssembler::default();
        stream
            .event(
                &sse(r#"{"choices":[{"delta":{"content":"hel"}}]}"#),
                &mut |_| {},
            )
            .unwrap();
        assert!(matches!(stream.finish(), Err(StreamFault::Incomplete(_))));
        let mut stream = StreamAssembler::default();
        let fault = stream
            .event(
                &sse(r#"{"error":{"message":"boom","code":503}}"#),
                &mut |_| {},
            )
            .unwrap_err();
        assert!(matches!(fault, StreamFault::Provider { status: 503, .. }));
    }
}
