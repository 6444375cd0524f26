//! Restart intensity: at most `max_restarts` restarts within a sliding window.
//!
//! This is OTP's `intensity`/`period`. Past it a supervisor stops trying: restarting a child
//! that crashes in a loop only burns money (the seeds' and OpenHands' stuck loops), so the
//! failure escalates to the next supervisor up, which may restart the whole subtree or give up
//! in turn.

use serde::Serialize;
use std::collections::VecDeque;
use std::time::Duration;
use tokio::time::Instant;

/// The limit: more than `max_restarts` restarts within `within` means give up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Intensity {
    /// Restarts allowed inside the window; the next one escalates.
    pub max_restarts: u32,
    /// Length of the sliding window.
    #[serde(serialize_with = "serialize_millis")]
    pub within: Duration,
}

impl Default for Intensity {
    /// 5 restarts within 30 s: with the default backoff (100 ms doubling) a child that crashes
    /// at once every time is given up on after about 3 s of trying.
    fn default() -> Self {
        Self {
            max_restarts: 5,
            within: Duration::from_secs(30),
        }
    }
}

fn serialize_millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Whether one more restart is allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Within the limit: restart.
    Allowed,
    /// Past the limit: stop the children and escalate.
    Exceeded,
}

/// The sliding window of recent restart times for one supervisor.
#[derive(Debug, Clone)]
pub struct RestartWindow {
    limit: Intensity,
    times: VecDeque<Instant>,
}

impl RestartWindow {
    /// An empty window with this limit.
    pub fn new(limit: Intensity) -> Self {
        Self {
            limit,
            times: VecDeque::new(),
        }
    }

    /// Records a restart at `now` and says whether it is allowed. Times must not go backwards
    /// (they come from a monotonic clock).
    pub fn record(&mut self, now: Instant) -> Verdict {
        while let Some(&oldest) = self.times.front() {
            if now.duration_since(oldest) >= self.limit.within {
                self.times.pop_front();
            } else {
                break;
            }
        }
        self.times.push_back(now);
        if self.times.len() > self.limit.max_restarts as usize {
            Verdict::Exceeded
        } else {
            Verdict::Allowed
        }
    }

    /// The limit this window enforces.
    pub fn limit(&self) -> Intensity {
        self.limit
    }

    /// Restarts currently inside the window.
    pub fn len(&self) -> usize {
        self.times.len()
    }

    /// True when no restart is inside the window.
    pub fn is_empty(&self) -> bool {
        self.times.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at(base: Instant, ms: u64) -> Instant {
        base + Duration::from_millis(ms)
    }

    #[test]
    fn allows_max_then_exceeds_inside_the_window() {
        let base = Instant::now();
        let mut w = RestartWindow::new(Intensity {
            max_restarts: 2,
            within: Duration::from_secs(1),
        });
        assert_eq!(w.record(at(base, 0)), Verdict::Allowed);
        assert_eq!(w.record(at(base, 100)), Verdict::Allowed);
        assert_eq!(w.record(at(base, 200)), Verdict::Exceeded);
    }

    #[test]
    fn old_restarts_slide_out() {
        let base = Instant::now();
        let mut w = RestartWindow::new(Intensity {
            max_restarts: 2,
            within: Duration::from_secs(1),
        });
        assert_eq!(w.record(at(base, 0)), Verdict::Allowed);
        assert_eq!(w.record(at(base, 600)), Verdict::Allowed);
        // The first restart is exactly one window old: it no longer counts.
        assert_eq!(w.record(at(base, 1000)), Verdict::Allowed);
        assert_eq!(w.len(), 2);
    }

    #[test]
    fn zero_restarts_allowed_means_the_first_escalates() {
        let mut w = RestartWindow::new(Intensity {
            max_restarts: 0,
            within: Duration::from_secs(1),
        });
        assert_eq!(w.record(Instant::now()), Verdict::Exceeded);
    }

    proptest! {
        /// The verdict equals a brute-force count over the whole history: exceeded exactly
        /// when more than `max` restarts (this one included) fall in `(now - within, now]`.
        #[test]
        fn matches_a_brute_force_count(
            max in 0u32..6,
            within_ms in 1u64..2_000,
            gaps in proptest::collection::vec(0u64..800, 1..60),
        ) {
            let base = Instant::now();
            let limit = Intensity { max_restarts: max, within: Duration::from_millis(within_ms) };
            let mut w = RestartWindow::new(limit);
            let mut history: Vec<u64> = Vec::new();
            let mut t = 0u64;
            for gap in gaps {
                t += gap;
                history.push(t);
                let in_window = history.iter().filter(|&&h| t - h < within_ms).count();
                let expected = if in_window > max as usize { Verdict::Exceeded } else { Verdict::Allowed };
                prop_assert_eq!(w.record(at(base, t)), expected);
                prop_assert!(w.len() <= history.len());
            }
        }
    }
}
