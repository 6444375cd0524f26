//! The outbox's pace: Telegram's limits, shared by every chat of the process.
//!
//! Telegram allows about 1 message a second in one chat, 20 a minute in a group and 30 a
//! second overall; past them it answers 429 with `retry_after`. [`Pace`] hands out send
//! slots that respect all three, and a 429 pauses only the chat it was about
//! ([`Pace::pause`]), so one noisy chat never holds up the others.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// One message a second per chat.
const PER_CHAT: Duration = Duration::from_secs(1);
/// Twenty messages a minute per group.
const GROUP_WINDOW: Duration = Duration::from_secs(60);
const GROUP_MAX: usize = 20;
/// Thirty messages a second overall.
const GLOBAL_WINDOW: Duration = Duration::from_secs(1);
const GLOBAL_MAX: usize = 30;

/// Send slots for every chat of the process.
#[derive(Debug, Default)]
pub struct Pace {
    /// Per chat: the earliest time its next message may go.
    next: HashMap<i64, Instant>,
    /// Per group chat: when its recent messages went (within the last minute).
    groups: HashMap<i64, VecDeque<Instant>>,
    /// When the process's recent messages went (within the last second).
    global: VecDeque<Instant>,
}

impl Pace {
    /// Takes a slot for a message to `chat` at `now` or later; answers when it may be sent.
    /// The slot is booked, so the caller sleeps until then and sends.
    pub fn reserve(&mut self, chat: i64, group: bool, now: Instant) -> Instant {
        let mut at = self.next.get(&chat).copied().unwrap_or(now).max(now);
        while self
            .global
            .front()
            .is_some_and(|t| *t + GLOBAL_WINDOW <= at)
        {
            self.global.pop_front();
        }
        if self.global.len() >= GLOBAL_MAX
            && let Some(oldest) = self.global.get(self.global.len() - GLOBAL_MAX)
        {
            at = at.max(*oldest + GLOBAL_WINDOW);
        }
        if group {
            let sent = self.groups.entry(chat).or_default();
            while sent.front().is_some_and(|t| *t + GROUP_WINDOW <= at) {
                sent.pop_front();
            }
            if sent.len() >= GROUP_MAX
                && let Some(oldest) = sent.get(sent.len() - GROUP_MAX)
            {
                at = at.max(*oldest + GROUP_WINDOW);
            }
            sent.push_back(at);
        }
        insert_sorted(&mut self.global, at);
        self.next.insert(chat, at + PER_CHAT);
        at
    }

    /// Telegram said 429 for `chat`: nothing more goes to it before `until`.
    pub fn pause(&mut self, chat: i64, until: Instant) {
        let next = self.next.entry(chat).or_insert(until);
        *next = (*next).max(until);
    }
}

fn insert_sorted(times: &mut VecDeque<Instant>, at: Instant) {
    let i = times.partition_point(|t| *t <= at);
    times.insert(i, at);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_message_a_second_per_chat_and_chats_do_not_wait_for_each_other() {
        let mut pace = Pace::default();
        let t0 = Instant::now();
        assert_eq!(pace.reserve(1, false, t0), t0);
        assert_eq!(pace.reserve(1, false, t0), t0 + PER_CHAT);
        assert_eq!(pace.reserve(1, false, t0), t0 + 2 * PER_CHAT);
        assert_eq!(pace.reserve(2, false, t0), t0);
    }

    #[test]
    fn thirty_a_second_overall() {
        let mut pace = Pace::default();
        let t0 = Instant::now();
        for chat in 0..30 {
            assert_eq!(pace.reserve(chat, false, t0), t0);
        }
        assert_eq!(pace.reserve(99, false, t0), t0 + GLOBAL_WINDOW);
    }

    #[test]
    fn twenty_a_minute_per_group() {
        let mut pace = Pace::default();
        let t0 = Instant::now();
        let mut last = t0;
        for _ in 0..20 {
            last = pace.reserve(-5, true, t0);
        }
        assert_eq!(last, t0 + 19 * PER_CHAT);
        assert_eq!(pace.reserve(-5, true, t0), t0 + GROUP_WINDOW);
    }

    #[test]
    fn a_429_pauses_only_its_chat() {
        let mut pace = Pace::default();
        let t0 = Instant::now();
        pace.pause(1, t0 + Duration::from_secs(7));
        assert_eq!(pace.reserve(1, false, t0), t0 + Duration::from_secs(7));
        assert_eq!(pace.reserve(2, false, t0), t0);
    }
}
