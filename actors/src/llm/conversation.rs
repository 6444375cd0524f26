//! The provider-neutral conversation: what the agent loop keeps, journals and sends.
//!
//! Both dialects ([`super::openai`], [`super::anthropic`]) translate to and from these types,
//! so the code above them never sees a vendor's wire format. A [`Message`] is a role and a
//! list of [`Part`]s: text, the model's tool calls, or the results the loop answers them with.

use serde::{Deserialize, Serialize};

/// Who said it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Instructions for the whole conversation.
    System,
    /// The person (or artel on their behalf).
    User,
    /// The model.
    Assistant,
    /// Results of the model's tool calls.
    Tool,
}

/// One turn of the conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// Who said it.
    pub role: Role,
    /// What was said, in order.
    pub content: Vec<Part>,
}

/// A piece of a message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Part {
    /// Plain text.
    Text {
        /// The text.
        text: String,
    },
    /// The model asks for a tool to run (assistant messages only).
    ToolCall(ToolCall),
    /// The answer to a tool call (tool messages only).
    ToolResult(ToolResult),
}

/// The model asks for a tool to run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    /// The provider's id for this call; its result must carry the same id.
    pub id: String,
    /// The tool's name, as in its [`ToolSpec`].
    pub name: String,
    /// The arguments. A JSON object when the model wrote valid JSON; the raw text as a JSON
    /// string when it did not, so the loop can answer with an error instead of failing.
    pub arguments: serde_json::Value,
}

/// The answer to one tool call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolResult {
    /// The [`ToolCall::id`] this answers.
    pub tool_call_id: String,
    /// What the tool printed or returned.
    pub content: String,
    /// Whether the tool failed (the model is told so).
    pub is_error: bool,
}

/// A tool offered to the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    /// The name the model calls it by.
    pub name: String,
    /// What it does and when to use it, for the model.
    pub description: String,
    /// A JSON Schema of its arguments (an object schema).
    pub input_schema: serde_json::Value,
}

/// What is sent to the model: the conversation so far and the tools it may call.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Request {
    /// The conversation, oldest first; system messages may appear anywhere (Anthropic gets
    /// them joined into its top-level `system`).
    pub messages: Vec<Message>,
    /// The tools offered.
    pub tools: Vec<ToolSpec>,
    /// Overrides `llm.max_output_tokens` for this request.
    pub max_output_tokens: Option<u32>,
}

/// Why the model stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// It finished its turn.
    EndTurn,
    /// It wants its tool calls run.
    ToolUse,
    /// It hit the output token limit.
    MaxTokens,
    /// A stop sequence matched.
    StopSequence,
    /// The provider filtered or the model refused the output.
    Refusal,
    /// Anything else the provider said, verbatim.
    Other(String),
}

/// Tokens a request used, normalized across dialects (see [`super::cost`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Usage {
    /// Every input token, cached ones included.
    pub input: u64,
    /// Output tokens.
    pub output: u64,
    /// The part of `input` read from the provider's prompt cache (billed cheaper).
    pub cached_input: u64,
}

/// The model's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Completion {
    /// The assistant message: its text and tool calls.
    pub message: Message,
    /// Why it stopped.
    pub stop_reason: StopReason,
    /// What it cost in tokens.
    pub usage: Usage,
}

impl Message {
    /// A system message.
    pub fn system(text: impl Into<String>) -> Self {
        Self::text(Role::System, text)
    }

    /// A user message.
    pub fn user(text: impl Into<String>) -> Self {
        Self::text(Role::User, text)
    }

    /// An assistant message with text only.
    pub fn assistant(text: impl Into<String>) -> Self {
        Self::text(Role::Assistant, text)
    }

    /// A tool message answering calls.
    pub fn tool_results(results: impl IntoIterator<Item = ToolResult>) -> Self {
        Self {
            role: Role::Tool,
            content: results.into_iter().map(Part::ToolResult).collect(),
        }
    }

    fn text(role: Role, text: impl Into<String>) -> Self {
        Self {
            role,
            content: vec![Part::Text { text: text.into() }],
        }
    }

    /// All text parts joined by blank lines.
    pub fn joined_text(&self) -> String {
        let texts: Vec<&str> = self
            .content
            .iter()
            .filter_map(|part| match part {
                Part::Text { text } => Some(text.as_str()),
                _ => None,
            })
            .collect();
        texts.join("\n\n")
    }

    /// The tool calls, in order.
    pub fn tool_calls(&self) -> impl Iterator<Item = &ToolCall> {
        self.content.iter().filter_map(|part| match part {
            Part::ToolCall(call) => Some(call),
            _ => None,
        })
    }

    /// The tool results, in order.
    pub fn tool_results_iter(&self) -> impl Iterator<Item = &ToolResult> {
        self.content.iter().filter_map(|part| match part {
            Part::ToolResult(result) => Some(result),
            _ => None,
        })
    }
}

impl ToolResult {
    /// A successful result.
    pub fn ok(tool_call_id: impl Into<String>, content: impl Into<String>) -> Self {
        Self {
            tool_call_id: tool_call_id.into(),
            content: content.into(),
            is_error: false,
        }
    }

    /// A failed result.
    pub fn error(tool_call_id: impl Into<String>, content: impl Into<String>) -> Self {
        Self {
            tool_call_id: tool_call_id.into(),
            content: content.into(),
            is_error: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_conversation_round_trips_through_json_for_the_journal() {
        let message = Message {
            role: Role::Assistant,
            content: vec![
                Part::Text {
                    text: "running".into(),
                },
                Part::ToolCall(ToolCall {
                    id: "call_1".into(),
                    name: "bash".into(),
                    arguments: serde_json::json!({"command": "ls"}),
                }),
            ],
        };
        let json = serde_json::to_value(&message).unwrap();
        assert_eq!(json["content"][1]["type"], "tool_call");
        let back: Message = serde_json::from_value(json).unwrap();
        assert_eq!(back, message);
        assert_eq!(back.tool_calls().count(), 1);
        assert_eq!(back.joined_text(), "running");
    }
}
