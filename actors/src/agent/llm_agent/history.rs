//! Condensing the conversation when it outgrows the model's context window.
//!
//! On a context overflow the loop sends a shorter view of the same conversation (the journal
//! keeps it whole): the system messages, the first user message (the task), a note saying how
//! much was left out, and the last turns. The cut never separates a tool call from its result:
//! the kept tail never starts with tool results whose calls were cut away, and an assistant
//! message is kept only with the results that answer it.

use crate::llm::{Message, Part, Role};

/// The messages to send, keeping the last `keep_last` messages of the tail (one more when a
/// cut there would split a call from its result). `None` when the conversation cannot get any
/// shorter than it is.
pub fn condense(messages: &[Message], keep_last: usize) -> Option<Vec<Message>> {
    let head_len = messages
        .iter()
        .position(|m| m.role == Role::User)
        .map_or(messages.len(), |i| i + 1);
    let (head, rest) = messages.split_at(head_len);
    if rest.len() <= keep_last {
        return None;
    }
    let mut start = rest.len() - keep_last;
    // A tail opening with tool results would answer calls it no longer holds: take the
    // calls too.
    while start > 0 && rest[start].role == Role::Tool {
        start -= 1;
    }
    if start == 0 {
        return None;
    }
    let elided = start;
    let mut view: Vec<Message> = head.to_vec();
    let note = format!(
        "[artel: {elided} earlier messages of this conversation were left out to fit the \
         model's context window; the files in the checkout still hold all the work so far — \
         look at them again when you need to.]"
    );
    match view.last_mut() {
        Some(first_user) if first_user.role == Role::User => {
            first_user.content.push(Part::Text { text: note });
        }
        _ => view.push(Message::user(note)),
    }
    view.extend_from_slice(&rest[start..]);
    Some(view)
}

/// Every tool call in `messages` that has no result after it, by id.
pub fn unanswered_calls(messages: &[Message]) -> Vec<String> {
    let mut open: Vec<String> = Vec::new();
    for message in messages {
        for call in message.tool_calls() {
            open.push(call.id.clone());
        }
        for result in message.tool_results_iter() {
            open.retain(|id| *id != result.tool_call_id);
        }
    }
    open
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::{ToolCall, ToolResult};
    use serde_json::json;

    fn call(id: &str) -> Message {
        Message {
            role: Role::Assistant,
            content: vec![Part::ToolCall(ToolCall {
                id: id.into(),
                name: "bash".into(),
                arguments: json!({"command": "ls"}),
            })],
        }
    }

    fn result(id: &str) -> Message {
        Message::tool_results([ToolResult::ok(id, "out")])
    }

    fn conversation(turns: usize) -> Vec<Message> {
        let mut messages = vec![Message::system("sys"), Message::user("the task")];
        for i in 0..turns {
            messages.push(call(&format!("c{i}")));
            messages.push(result(&format!("c{i}")));
        }
        messages
    }

    /// Every kept result's call is kept before it.
    fn pairs_intact(view: &[Message]) -> bool {
        unanswered_calls(view).is_empty()
            && view.iter().enumerate().all(|(i, m)| {
                m.tool_results_iter().all(|r| {
                    view[..i]
                        .iter()
                        .any(|p| p.tool_calls().any(|c| c.id == r.tool_call_id))
                })
            })
    }

    #[test]
    fn keeps_system_first_user_and_the_last_turns() {
        let messages = conversation(10);
        let view = condense(&messages, 4).expect("shorter");
        assert_eq!(view[0], Message::system("sys"));
        assert_eq!(view[1].role, Role::User);
        assert!(view[1].joined_text().starts_with("the task"));
        assert!(view[1].joined_text().contains("16 earlier messages"));
        assert_eq!(&view[2..], &messages[messages.len() - 4..]);
        assert!(pairs_intact(&view));
    }

    #[test]
    fn never_starts_the_tail_with_an_orphaned_result() {
        let messages = conversation(10);
        for keep in 1..12 {
            let view = condense(&messages, keep).expect("shorter");
            assert_eq!(view[2].role, Role::Assistant, "keep {keep}");
            assert!(view.len() - 2 <= keep + 1, "keep {keep}");
            assert!(pairs_intact(&view), "keep {keep}");
        }
    }

    #[test]
    fn a_short_conversation_cannot_be_condensed() {
        assert_eq!(condense(&conversation(2), 4), None);
    }

    #[test]
    fn unanswered_calls_are_found() {
        let mut messages = conversation(2);
        messages.push(call("open"));
        assert_eq!(unanswered_calls(&messages), vec!["open".to_owned()]);
    }
}
