//! The stream registry: every Redis stream artel uses, with producer, consumer and payload.
//!
//! Redis carries envelopes only across process boundaries; a single-process artel uses none of
//! these streams. The systems artel replaces had queues nobody listed (the seeds' audit items 1
//! and 19); here a stream exists only if it is in [`STREAMS`], its name is used only through the
//! constants below, and a test fails if any `.rs` file in the workspace spells a stream-shaped
//! `artel.*` name the registry lacks.
//!
//! Conventions:
//! - names are `artel.<node>.<what>` (or `artel.<what>` for the shared event stream), lowercase;
//! - every entry is an [`Envelope`](crate::envelope::Envelope) of the listed payload kind;
//! - consumers read in consumer groups and `XACK` after handling; an entry whose handling fails
//!   fatally, or that was delivered too often, is copied to the stream's dead-letter stream —
//!   the stream's name plus [`DEAD_LETTER_SUFFIX`] (`.dead`) — and then acknowledged, so no
//!   message is ever silently dropped.

use crate::envelope::Payload;
use crate::event::Event;
use crate::worker_manager::{WorkerCommand, WorkerReply};
use serde::Serialize;

/// What a dead-letter stream's name adds to its stream's name.
pub const DEAD_LETTER_SUFFIX: &str = ".dead";

/// Commands to the worker-manager.
pub const WORKER_COMMANDS: &str = "artel.worker-manager.commands";
/// Dead letters of [`WORKER_COMMANDS`].
pub const WORKER_COMMANDS_DEAD: &str = "artel.worker-manager.commands.dead";
/// The worker-manager's replies.
pub const WORKER_REPLIES: &str = "artel.worker-manager.replies";
/// Dead letters of [`WORKER_REPLIES`].
pub const WORKER_REPLIES_DEAD: &str = "artel.worker-manager.replies.dead";
/// Journaled events, for the bus of every process.
pub const EVENTS: &str = "artel.events";
/// Dead letters of [`EVENTS`].
pub const EVENTS_DEAD: &str = "artel.events.dead";

/// One stream: who writes it, who reads it, what it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct StreamSpec {
    /// The Redis key.
    pub name: &'static str,
    /// The supervision-tree node(s) that write it.
    pub producer: &'static str,
    /// The node(s) that read it.
    pub consumer: &'static str,
    /// The [`Payload::KIND`] of its envelopes.
    pub payload: &'static str,
    /// Where entries that cannot be handled go: `name` + [`DEAD_LETTER_SUFFIX`].
    pub dead_letter: &'static str,
    /// Why it exists.
    pub purpose: &'static str,
}

/// Every stream artel uses.
pub const STREAMS: &[StreamSpec] = &[
    StreamSpec {
        name: WORKER_COMMANDS,
        producer: "workflows",
        consumer: "worker-manager",
        payload: <WorkerCommand as Payload>::KIND,
        dead_letter: WORKER_COMMANDS_DEAD,
        purpose: "spawn, run in and stop workers when the worker-manager runs in another process",
    },
    StreamSpec {
        name: WORKER_REPLIES,
        producer: "worker-manager",
        consumer: "workflows",
        payload: <WorkerReply as Payload>::KIND,
        dead_letter: WORKER_REPLIES_DEAD,
        purpose: "answers to worker commands, caused_by the command's envelope",
    },
    StreamSpec {
        name: EVENTS,
        producer: "any process",
        consumer: "bus (one consumer group per process)",
        payload: <Event as Payload>::KIND,
        dead_letter: EVENTS_DEAD,
        purpose: "fan out journaled events to every process's subscribers",
    },
];

/// The stream named `name`; `None` for unknown names and for dead-letter streams.
pub fn lookup(name: &str) -> Option<&'static StreamSpec> {
    STREAMS.iter().find(|spec| spec.name == name)
}

/// True when `name` is a registered stream or a registered stream's dead-letter stream.
pub fn is_registered(name: &str) -> bool {
    STREAMS
        .iter()
        .any(|spec| spec.name == name || spec.dead_letter == name)
}

/// The registry as a plain text table with aligned columns, one stream per line, for
/// `artel streams`.
pub fn render_table() -> String {
    let header = [
        "STREAM",
        "PRODUCER",
        "CONSUMER",
        "PAYLOAD",
        "DEAD LETTER",
        "PURPOSE",
    ];
    let rows: Vec<[&str; 6]> = std::iter::once(header)
        .chain(STREAMS.iter().map(|spec| {
            [
                spec.name,
                spec.producer,
                spec.consumer,
                spec.payload,
                spec.dead_letter,
                spec.purpose,
            ]
        }))
        .collect();
    let mut widths = [0usize; 6];
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut table = String::new();
    for row in &rows {
        let mut line = String::new();
        for (column, (cell, width)) in row.iter().zip(widths).enumerate() {
            if column > 0 {
                line.push_str("  ");
            }
            line.push_str(cell);
            if column + 1 < row.len() {
                line.extend(std::iter::repeat_n(' ', width - cell.chars().count()));
            }
        }
        table.push_str(line.trim_end());
        table.push('\n');
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::worker_manager::WorkerReply;
    use std::path::{Path, PathBuf};

    /// Every name starts with this and a dot; kept apart so this file spells no bare prefix.
    const NAMESPACE: &str = "artel";

    /// Last segments that make an `artel.*` literal a file name, not a stream.
    const FILE_EXTENSIONS: &[&str] = &[
        "toml", "json", "yaml", "yml", "log", "pid", "sock", "lock", "db", "sqlite", "txt", "md",
        "conf", "service",
    ];

    fn stream_char(c: char) -> bool {
        c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-'
    }

    /// Every stream-shaped token right after a `"` that opens `artel.`: the namespace, a dot
    /// and the `[a-z0-9.-]` characters that follow. File names (`artel.toml`) are skipped.
    fn stream_literals(text: &str) -> Vec<String> {
        let needle = format!("{}{NAMESPACE}.", '"');
        let mut found = Vec::new();
        let mut rest = text;
        while let Some(at) = rest.find(&needle) {
            let after = &rest[at + 1..];
            let len = after
                .char_indices()
                .find(|&(i, c)| i > NAMESPACE.len() && !stream_char(c))
                .map_or(after.len(), |(i, _)| i);
            let token = &after[..len];
            let is_file = token
                .rsplit('.')
                .next()
                .is_some_and(|last| FILE_EXTENSIONS.contains(&last));
            if !is_file {
                found.push(token.to_owned());
            }
            rest = &after[len..];
        }
        found
    }

    fn rust_files(dir: &Path, files: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if path.is_dir() {
                if name != "target" && !name.starts_with('.') {
                    rust_files(&path, files);
                }
            } else if name.ends_with(".rs") {
                files.push(path);
            }
        }
    }

    #[test]
    fn every_stream_name_in_the_workspace_is_registered() {
        // The directory at run time (cargo and nextest set it): a target dir shared between
        // checkouts may hold this binary compiled from another one, with another path baked in.
        let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into());
        let root = manifest_dir.join("..");
        let mut files = Vec::new();
        rust_files(&root, &mut files);
        let mut seen = Vec::new();
        let mut unregistered = Vec::new();
        for file in &files {
            let Ok(text) = std::fs::read_to_string(file) else {
                continue;
            };
            for token in stream_literals(&text) {
                if !is_registered(&token) {
                    unregistered.push(format!("{}: {token}", file.display()));
                }
                seen.push(token);
            }
        }
        assert!(
            seen.iter().any(|token| token == WORKER_COMMANDS),
            "the scan did not even find this registry's own names under {}",
            root.display()
        );
        assert!(
            unregistered.is_empty(),
            "stream names missing from messages/src/streams.rs (register them, or use the \
             constants):\n{}",
            unregistered.join("\n")
        );
    }

    #[test]
    fn the_scanner_finds_stream_shaped_literals_only() {
        let text = r#"
            let a = %artel.worker-manager.commands%;
            let b = format!(%artel.{}%, x);
            let c = %artel.toml%;
            let d = %artel.events.dead%;
            let e = "artel is a cooperative";
            let f = %artel.new-thing.Commands%;
        "#
        .replace('%', "\"");
        assert_eq!(
            stream_literals(&text),
            [
                WORKER_COMMANDS,
                &format!("{NAMESPACE}."),
                EVENTS_DEAD,
                &format!("{NAMESPACE}.new-thing.")
            ]
        );
        assert!(!is_registered(&format!("{NAMESPACE}.")));
    }

    #[test]
    fn registry_entries_follow_the_conventions() {
        let mut names: Vec<_> = STREAMS.iter().map(|spec| spec.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), STREAMS.len(), "duplicate stream names");
        for spec in STREAMS {
            let local = spec
                .name
                .strip_prefix(NAMESPACE)
                .and_then(|rest| rest.strip_prefix('.'));
            assert!(
                local.is_some_and(|local| !local.is_empty() && local.chars().all(stream_char)),
                "{} is not artel.<lowercase name>",
                spec.name
            );
            assert_eq!(
                spec.dead_letter,
                format!("{}{DEAD_LETTER_SUFFIX}", spec.name)
            );
            assert_eq!(lookup(spec.name), Some(spec));
            assert!(is_registered(spec.dead_letter));
            assert_eq!(lookup(spec.dead_letter), None);
            assert!(!spec.producer.is_empty() && !spec.consumer.is_empty());
            assert!(!spec.purpose.is_empty());
        }
    }

    #[test]
    fn payloads_are_catalog_kinds() {
        let kinds = [
            <WorkerCommand as Payload>::KIND,
            <WorkerReply as Payload>::KIND,
            <Event as Payload>::KIND,
        ];
        for spec in STREAMS {
            assert!(kinds.contains(&spec.payload), "{}", spec.payload);
        }
        assert_eq!(
            lookup(WORKER_COMMANDS).map(|s| s.payload),
            Some("WorkerCommand")
        );
        assert_eq!(
            lookup(WORKER_REPLIES).map(|s| s.consumer),
            Some("workflows")
        );
        assert_eq!(lookup(EVENTS).map(|s| s.payload), Some("Event"));
        assert_eq!(lookup("nope"), None);
    }

    #[test]
    fn the_table_is_aligned_with_a_header_and_one_line_per_stream() {
        let table = render_table();
        let lines: Vec<_> = table.lines().collect();
        assert_eq!(lines.len(), STREAMS.len() + 1);
        assert!(lines[0].starts_with("STREAM"));
        let producer_column = lines[0].find("PRODUCER").unwrap();
        for (line, spec) in lines[1..].iter().zip(STREAMS) {
            assert!(line.starts_with(spec.name));
            assert_eq!(
                &line[producer_column..][..spec.producer.len()],
                spec.producer
            );
            assert!(line.ends_with(spec.purpose));
        }
    }

    #[test]
    fn serializes_for_json_output() {
        let json = serde_json::to_value(STREAMS).unwrap();
        assert_eq!(json[0]["name"], WORKER_COMMANDS);
        assert_eq!(json[0]["dead_letter"], WORKER_COMMANDS_DEAD);
        assert_eq!(json.as_array().unwrap().len(), STREAMS.len());
    }
}
