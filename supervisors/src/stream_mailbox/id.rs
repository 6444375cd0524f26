//! Stream entry ids (`<milliseconds>-<sequence>`) as an ordered value, so that the producer can
//! compute the lowest id any consumer group still needs and callers can compare ids without
//! string tricks.

use std::fmt;
use std::str::FromStr;

/// The id Redis gave a stream entry; ordered as Redis orders them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EntryId {
    /// Milliseconds part.
    pub ms: u64,
    /// Sequence within the millisecond.
    pub seq: u64,
}

impl EntryId {
    /// `0-0`, below every entry.
    pub const ZERO: Self = Self { ms: 0, seq: 0 };

    /// The smallest id above this one.
    pub fn successor(self) -> Self {
        match self.seq.checked_add(1) {
            Some(seq) => Self { ms: self.ms, seq },
            None => Self {
                ms: self.ms.saturating_add(1),
                seq: 0,
            },
        }
    }
}

impl fmt::Display for EntryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// A string that is not `<u64>-<u64>` (or a bare `<u64>`, which Redis reads as `<u64>-0`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a stream entry id: `{0}`")]
pub struct BadEntryId(pub String);

impl FromStr for EntryId {
    type Err = BadEntryId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BadEntryId(s.to_owned());
        let (ms, seq) = s.split_once('-').unwrap_or((s, "0"));
        Ok(Self {
            ms: ms.parse().map_err(|_| bad())?,
            seq: seq.parse().map_err(|_| bad())?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_orders_and_steps() {
        let a: EntryId = "1700000000000-5".parse().unwrap();
        let b: EntryId = "1700000000001-0".parse().unwrap();
        assert!(a < b);
        assert_eq!(a.to_string(), "1700000000000-5");
        assert_eq!(a.successor().to_string(), "1700000000000-6");
        assert_eq!("7".parse::<EntryId>().unwrap(), EntryId { ms: 7, seq: 0 });
        assert_eq!(
            EntryId {
                ms: 1,
                seq: u64::MAX
            }
            .successor(),
            EntryId { ms: 2, seq: 0 }
        );
        assert!("x-1".parse::<EntryId>().is_err());
        assert!("1-2-3".parse::<EntryId>().is_err());
    }
}
