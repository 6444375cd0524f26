//! Process groups as `/proc` shows them: who is left of a service after artel crashed.
//!
//! A crashed artel leaves its services running, and the store remembers each one's process
//! group leader. Before starting such a deployment again, the leftover group must go — but a
//! pid from before the crash may by now name somebody else's process. So a group is only
//! treated as the service's when one of its living members runs as the services' uid *and*
//! works inside the deployment's directory; anything else is left alone.

use std::path::{Path, PathBuf};

/// One living (not zombie) process of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Member {
    /// Its pid.
    pub pid: u32,
    /// Its real uid.
    pub uid: u32,
    /// Its working directory, when readable.
    pub cwd: Option<PathBuf>,
}

impl Member {
    /// True when this process looks like a service of the deployment in `workdir` run as
    /// `uid`.
    pub fn belongs_to(&self, uid: u32, workdir: &Path) -> bool {
        self.uid == uid
            && self
                .cwd
                .as_deref()
                .is_some_and(|cwd| cwd.starts_with(workdir))
    }
}

/// The living processes whose process group is `pgid`.
pub(super) fn members(pgid: u32) -> Vec<Member> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let (state, group) = state_and_group(pid)?;
            (group == pgid && state != 'Z' && state != 'X').then_some(pid)
        })
        .filter_map(|pid| {
            Some(Member {
                pid,
                uid: real_uid(pid)?,
                cwd: std::fs::read_link(format!("/proc/{pid}/cwd")).ok(),
            })
        })
        .collect()
}

/// A process's state letter and process group, from `/proc/<pid>/stat`.
fn state_and_group(pid: u32) -> Option<(char, u32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&stat)
}

/// The state and process group fields of a `stat` line. The command name (field 2) is in
/// parentheses and may itself hold spaces and parentheses, so fields are counted from the
/// last `)`.
fn parse_stat(stat: &str) -> Option<(char, u32)> {
    let (_, rest) = stat.rsplit_once(')')?;
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let _parent = fields.next()?;
    let group = fields.next()?.parse().ok()?;
    Some((state, group))
}

/// A process's real uid, from `/proc/<pid>/status`.
fn real_uid(pid: u32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_command_name() {
        let stat = "4242 (my (odd) name) S 1 4240 4240 0 -1 4194560 100 0";
        assert_eq!(parse_stat(stat), Some(('S', 4240)));
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn this_process_is_found_in_its_own_group() {
        let me = std::process::id();
        let (_, group) = state_and_group(me).unwrap();
        let found = members(group);
        let mine = found.iter().find(|m| m.pid == me).unwrap();
        assert_eq!(mine.uid, nix::unistd::getuid().as_raw());
        let cwd = std::env::current_dir().unwrap();
        assert!(mine.belongs_to(mine.uid, &cwd));
        assert!(!mine.belongs_to(mine.uid + 1, &cwd));
        assert!(!mine.belongs_to(mine.uid, Path::new("/nonexistent/dir")));
    }
}
