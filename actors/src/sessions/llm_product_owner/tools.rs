//! The ProductOwner's tools: one per thing it can do, each mirroring an [`Intent`].
//!
//! The model acts only by calling one of these; [`intent`] turns its call into the same
//! [`Intent`] the offline parser would give, so both brains end in the same actions. A call
//! that does not fit (an unknown tool, a missing argument) is refused here, before anything
//! is done, and the offline parser answers the line instead.

use crate::intent::REDACTED;
use crate::llm::ToolSpec;
use artel_messages::SecretValue;
use artel_messages::product_owner::Intent;
use serde_json::{Value, json};

/// Longest description or guidance the model may pass on.
const MAX_TEXT: usize = 4_000;

/// The tools offered to the model.
pub fn specs() -> Vec<ToolSpec> {
    let none = json!({"type": "object", "properties": {}});
    let spec = |name: &str, description: &str, input_schema: Value| ToolSpec {
        name: name.to_owned(),
        description: description.to_owned(),
        input_schema,
    };
    vec![
        spec(
            "build",
            "Start building a new web service for the user: artel writes a spec (which the \
             user confirms), then scaffolds, develops, tests and deploys it. Use it when the \
             user asks for something new to be made.",
            json!({
                "type": "object",
                "properties": {"description": {"type": "string",
                    "description": "What to build, complete and in the user's words: \
                                    resources, fields, actions."}},
                "required": ["description"]
            }),
        ),
        spec(
            "status",
            "Tell the user how the tasks of this conversation are doing.",
            none.clone(),
        ),
        spec(
            "list_projects",
            "List the user's projects and where each is live.",
            none.clone(),
        ),
        spec(
            "deploy",
            "Deploy the latest code of one of the user's projects.",
            json!({
                "type": "object",
                "properties": {"project": {"type": "string",
                    "description": "The project's name; empty for the project of this \
                                    conversation."}}
            }),
        ),
        spec(
            "set_secret",
            "The user gave a secret a deploy needs (you see it as NAME=<given>; artel already \
             stored its value, encrypted): resume the deploy that waits for it. Never ask \
             the user to repeat a value to you.",
            json!({
                "type": "object",
                "properties": {"name": {"type": "string",
                    "description": "The environment variable's name, e.g. STRIPE_KEY."}},
                "required": ["name"]
            }),
        ),
        spec(
            "cancel",
            "Stop every running task of this conversation.",
            none,
        ),
        spec(
            "guidance",
            "Pass the user's words on to the task that waits for them: guidance for the \
             Developer when tests keep failing, or a change to a spec that waits for \
             confirmation.",
            json!({
                "type": "object",
                "properties": {"text": {"type": "string",
                    "description": "The guidance, in the user's words."}},
                "required": ["text"]
            }),
        ),
        spec(
            "answer_question",
            "Answer the question a waiting task asked the user (for a spec: build it as \
             shown, cancel it, or change it), when the user's line answers it.",
            json!({
                "type": "object",
                "properties": {
                    "answer": {"type": "string", "enum": ["approve", "reject", "correct"]},
                    "correction": {"type": "string",
                        "description": "For \"correct\": what to change."}
                },
                "required": ["answer"]
            }),
        ),
    ]
}

/// The [`Intent`] a tool call means, or why it means none.
pub fn intent(name: &str, arguments: &Value) -> Result<Intent, String> {
    let text = |key: &str| -> Result<String, String> {
        let value = arguments
            .get(key)
            .and_then(Value::as_str)
            .map(str::trim)
            .unwrap_or_default();
        if value.is_empty() {
            return Err(format!("{name} needs a non-empty {key:?}"));
        }
        if value.chars().count() > MAX_TEXT {
            return Err(format!(
                "{name}'s {key:?} is longer than {MAX_TEXT} characters"
            ));
        }
        Ok(value.to_owned())
    };
    Ok(match name {
        "build" => Intent::BuildNew {
            description: text("description")?,
        },
        "status" => Intent::Status,
        "list_projects" => Intent::ListProjects,
        "deploy" => Intent::Deploy {
            project: arguments
                .get("project")
                .and_then(Value::as_str)
                .map(str::trim)
                .unwrap_or_default()
                .to_owned(),
        },
        "set_secret" => {
            let name = text("name")?;
            if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!("{name:?} is not an environment variable name"));
            }
            // The value is artel's, never the model's: it was stored when the line came in.
            Intent::ProvideSecret {
                name,
                value: SecretValue::new(REDACTED),
            }
        }
        "cancel" => Intent::Cancel,
        "guidance" => Intent::Guidance {
            text: text("text")?,
        },
        "answer_question" => match arguments.get("answer").and_then(Value::as_str) {
            Some("approve") => Intent::Approve,
            Some("reject") => Intent::Reject,
            Some("correct") => Intent::Guidance {
                text: text("correction")?,
            },
            other => {
                return Err(format!(
                    "answer_question's answer must be approve, reject or correct, not {other:?}"
                ));
            }
        },
        other => return Err(format!("there is no tool {other:?}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_offered_tool_means_an_intent() {
        let args = json!({"description": "d", "project": "p", "name": "API_KEY",
                          "text": "t", "answer": "approve"});
        for spec in specs() {
            assert!(intent(&spec.name, &args).is_ok(), "{}", spec.name);
            assert_eq!(spec.input_schema["type"], "object", "{}", spec.name);
        }
    }

    #[test]
    fn calls_become_the_offline_parsers_intents() {
        assert_eq!(
            intent("build", &json!({"description": " a recipe box "})),
            Ok(Intent::BuildNew {
                description: "a recipe box".into()
            })
        );
        assert_eq!(
            intent("deploy", &json!({})),
            Ok(Intent::Deploy {
                project: String::new()
            })
        );
        assert_eq!(
            intent(
                "answer_question",
                &json!({"answer": "correct", "correction": "add tags"})
            ),
            Ok(Intent::Guidance {
                text: "add tags".into()
            })
        );
        assert_eq!(
            intent("answer_question", &json!({"answer": "reject"})),
            Ok(Intent::Reject)
        );
    }

    #[test]
    fn calls_that_do_not_fit_are_refused() {
        for (name, args) in [
            ("build", json!({})),
            ("build", json!({"description": "   "})),
            ("guidance", json!({"text": 3})),
            ("set_secret", json!({"name": "not a name"})),
            ("answer_question", json!({"answer": "maybe"})),
            ("answer_question", json!({"answer": "correct"})),
            ("rm_rf", json!({})),
        ] {
            assert!(intent(name, &args).is_err(), "{name} {args}");
        }
    }
}
