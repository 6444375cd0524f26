//! Stuck detection: OpenHands' four patterns of an agent going round in circles.
//!
//! Read from the conversation after the last warning (a warning resets the watch):
//! - the same action with the same observation 4 times in a row;
//! - the same action ending in an error 3 times in a row;
//! - the same message 3 times in a row with no action between;
//! - an A/B alternation (action and observation) over 6 steps.
//!
//! An *action* is one assistant message: its tool calls (name and arguments) or, with none,
//! its text. Its *observation* is the tool results answering it.

use crate::llm::{Message, Role};
use serde_json::Value;

/// A pattern that matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stuck {
    /// The same action and observation, again and again.
    Repeating {
        /// The action, in short.
        action: String,
        /// How many times.
        times: usize,
    },
    /// The same action failing again and again.
    RepeatedError {
        /// The action, in short.
        action: String,
        /// How many times.
        times: usize,
    },
    /// The same words with no action.
    Monologue {
        /// The message, in short.
        message: String,
        /// How many times.
        times: usize,
    },
    /// Two actions taking turns.
    Alternating {
        /// The first action.
        a: String,
        /// The second.
        b: String,
    },
}

impl std::fmt::Display for Stuck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Repeating { action, times } => write!(
                f,
                "it repeated the same action with the same result {times} times: {action}"
            ),
            Self::RepeatedError { action, times } => {
                write!(f, "the same action failed {times} times in a row: {action}")
            }
            Self::Monologue { message, times } => write!(
                f,
                "it said the same thing {times} times without acting: {message}"
            ),
            Self::Alternating { a, b } => {
                write!(
                    f,
                    "it alternated between two actions over 6 steps: {a} / {b}"
                )
            }
        }
    }
}

/// One step of the agent: an action and what came back.
#[derive(Debug, Clone, PartialEq)]
struct Step {
    /// Tool calls as (name, arguments), or empty for a message without action.
    calls: Vec<(String, Value)>,
    /// The text, for a message without action.
    text: String,
    /// The results' contents.
    observation: Vec<String>,
    /// Whether any result is an error.
    error: bool,
}

impl Step {
    fn is_action(&self) -> bool {
        !self.calls.is_empty()
    }

    fn same_action(&self, other: &Self) -> bool {
        self.is_action() && self.calls == other.calls
    }

    fn describe(&self) -> String {
        let text = if self.is_action() {
            self.calls
                .iter()
                .map(|(name, args)| format!("{name} {args}"))
                .collect::<Vec<_>>()
                .join("; ")
        } else {
            self.text.clone()
        };
        short(&text)
    }
}

fn short(text: &str) -> String {
    let text = text.trim().replace('\n', " ");
    if text.chars().count() > 160 {
        text.chars().take(160).collect::<String>() + "…"
    } else {
        text
    }
}

/// The steps of `messages`, oldest first: each assistant message with the tool results that
/// follow it.
fn steps(messages: &[Message]) -> Vec<Step> {
    let mut steps: Vec<Step> = Vec::new();
    for message in messages {
        match message.role {
            Role::Assistant => steps.push(Step {
                calls: message
                    .tool_calls()
                    .map(|c| (c.name.clone(), c.arguments.clone()))
                    .collect(),
                text: message.joined_text(),
                observation: Vec::new(),
                error: false,
            }),
            Role::Tool => {
                if let Some(step) = steps.last_mut() {
                    for result in message.tool_results_iter() {
                        step.observation.push(result.content.clone());
                        step.error |= result.is_error;
                    }
                }
            }
            Role::System | Role::User => {}
        }
    }
    steps
}

/// The pattern the end of `messages` shows, if any.
pub fn detect(messages: &[Message]) -> Option<Stuck> {
    let steps = steps(messages);
    let last = |n: usize| (steps.len() >= n).then(|| &steps[steps.len() - n..]);
    if let Some(tail) = last(4)
        && tail[0].is_action()
        && tail
            .iter()
            .all(|s| s.same_action(&tail[0]) && s.observation == tail[0].observation)
    {
        return Some(Stuck::Repeating {
            action: tail[0].describe(),
            times: 4,
        });
    }
    if let Some(tail) = last(3) {
        if tail[0].is_action() && tail.iter().all(|s| s.same_action(&tail[0]) && s.error) {
            return Some(Stuck::RepeatedError {
                action: tail[0].describe(),
                times: 3,
            });
        }
        if tail
            .iter()
            .all(|s| !s.is_action() && !s.text.trim().is_empty() && s.text == tail[0].text)
        {
            return Some(Stuck::Monologue {
                message: tail[0].describe(),
                times: 3,
            });
        }
    }
    if let Some(tail) = last(6) {
        let (a, b) = (&tail[0], &tail[1]);
        let same = |x: &Step, y: &Step| x.same_action(y) && x.observation == y.observation;
        if a.is_action()
            && b.is_action()
            && !same(a, b)
            && tail.iter().step_by(2).all(|s| same(s, a))
            && tail.iter().skip(1).step_by(2).all(|s| same(s, b))
        {
            return Some(Stuck::Alternating {
                a: a.describe(),
                b: b.describe(),
            });
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::{Part, ToolCall, ToolResult};
    use serde_json::json;

    fn act(command: &str) -> Message {
        Message {
            role: Role::Assistant,
            content: vec![Part::ToolCall(ToolCall {
                id: format!("id-{command}"),
                name: "bash".into(),
                arguments: json!({ "command": command }),
            })],
        }
    }

    fn obs(command: &str, out: &str, error: bool) -> Message {
        let id = format!("id-{command}");
        Message::tool_results([if error {
            ToolResult::error(id, out)
        } else {
            ToolResult::ok(id, out)
        }])
    }

    fn turns(pairs: &[(&str, &str, bool)]) -> Vec<Message> {
        let mut messages = vec![Message::system("s"), Message::user("u")];
        for (command, out, error) in pairs {
            messages.push(act(command));
            messages.push(obs(command, out, *error));
        }
        messages
    }

    #[test]
    fn four_identical_steps_are_stuck_three_are_not() {
        let three = turns(&[("ls", "a", false); 3]);
        assert_eq!(detect(&three), None);
        let four = turns(&[("ls", "a", false); 4]);
        assert!(matches!(
            detect(&four),
            Some(Stuck::Repeating { times: 4, .. })
        ));
        let changing = turns(&[
            ("ls", "a", false),
            ("ls", "a", false),
            ("ls", "b", false),
            ("ls", "a", false),
        ]);
        assert_eq!(detect(&changing), None, "the observation changed");
    }

    #[test]
    fn the_same_failing_action_three_times_is_stuck() {
        let failing = turns(&[
            ("make", "e1", true),
            ("make", "e2", true),
            ("make", "e3", true),
        ]);
        let stuck = detect(&failing).expect("stuck");
        assert!(matches!(stuck, Stuck::RepeatedError { times: 3, .. }));
        assert!(stuck.to_string().contains("make"), "{stuck}");
        let two = turns(&[("ls", "x", false), ("make", "e", true), ("make", "e", true)]);
        assert_eq!(detect(&two), None);
    }

    #[test]
    fn the_same_message_three_times_without_action_is_stuck() {
        let mut messages = turns(&[]);
        for _ in 0..3 {
            messages.push(Message::assistant("I will now write the file."));
            messages.push(Message::user("use the tools"));
        }
        assert!(matches!(detect(&messages), Some(Stuck::Monologue { .. })));
        messages.pop();
        messages.pop();
        messages.push(Message::assistant("something else"));
        assert_eq!(detect(&messages), None);
    }

    #[test]
    fn an_alternation_over_six_steps_is_stuck() {
        let ab = [("cat a", "1", false), ("cat b", "2", false)];
        let five: Vec<_> = ab.iter().cycle().take(5).copied().collect();
        assert_eq!(detect(&turns(&five)), None);
        let six: Vec<_> = ab.iter().cycle().take(6).copied().collect();
        assert!(matches!(
            detect(&turns(&six)),
            Some(Stuck::Alternating { .. })
        ));
    }

    #[test]
    fn distinct_work_is_not_stuck() {
        let work = turns(&[
            ("ls", "a", false),
            ("cat app.py", "x", false),
            ("python3 -m unittest", "ok", false),
            ("git status", "clean", false),
        ]);
        assert_eq!(detect(&work), None);
    }
}
