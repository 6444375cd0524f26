//! Backoff between restarts: exponential, capped, jittered, reset after a healthy run.
//!
//! A child that crashes at once is restarted after `initial`, then twice that, and so on up to
//! `max`; each delay is spread by ±`jitter` so a fleet of children that failed together (a
//! database blip) does not come back in lockstep. A child that stayed up for `reset_after`
//! starts again from `initial`.

use serde::Serialize;
use std::time::Duration;

/// The backoff policy of one child.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Backoff {
    /// Delay before the first restart.
    #[serde(serialize_with = "ms")]
    pub initial: Duration,
    /// Growth factor per consecutive restart.
    pub multiplier: f64,
    /// Upper bound of any delay (before jitter).
    #[serde(serialize_with = "ms")]
    pub max: Duration,
    /// Fraction of the delay added or removed at random, in `[0, 1]`.
    pub jitter: f64,
    /// A run at least this long resets the schedule to `initial`.
    #[serde(serialize_with = "ms")]
    pub reset_after: Duration,
}

fn ms<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl Default for Backoff {
    /// 100 ms doubling to 10 s, ±20 % jitter, reset after 30 s of healthy running.
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(100),
            multiplier: 2.0,
            max: Duration::from_secs(10),
            jitter: 0.2,
            reset_after: Duration::from_secs(30),
        }
    }
}

impl Backoff {
    /// Restart at once, every time (for tests and for children whose restart is cheap and
    /// whose failures are bounded by intensity alone).
    pub fn none() -> Self {
        Self {
            initial: Duration::ZERO,
            multiplier: 1.0,
            max: Duration::ZERO,
            jitter: 0.0,
            reset_after: Duration::ZERO,
        }
    }

    /// The delay before restart number `attempt` (0-based), before jitter.
    pub fn base_delay(&self, attempt: u32) -> Duration {
        let factor = self.multiplier.max(1.0).powi(attempt.min(64) as i32);
        let secs = (self.initial.as_secs_f64() * factor).min(self.max.as_secs_f64());
        Duration::from_secs_f64(secs.max(0.0))
    }
}

/// Where one child is in its backoff schedule.
#[derive(Debug, Clone, Default)]
pub struct BackoffState {
    attempt: u32,
}

impl BackoffState {
    /// The delay before the next restart of a child that ran for `ran_for`; advances the
    /// schedule. `unit` is a uniform random number in `[0, 1)` (injected, so tests are exact).
    pub fn next_delay(&mut self, policy: &Backoff, ran_for: Duration, unit: f64) -> Duration {
        if ran_for >= policy.reset_after {
            self.attempt = 0;
        }
        let base = policy.base_delay(self.attempt);
        self.attempt = self.attempt.saturating_add(1);
        let jitter = policy.jitter.clamp(0.0, 1.0);
        let spread = 1.0 + jitter * (2.0 * unit.clamp(0.0, 1.0) - 1.0);
        Duration::from_secs_f64(base.as_secs_f64() * spread)
    }

    /// Consecutive restarts counted since the last reset.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Backoff {
        Backoff {
            initial: Duration::from_millis(100),
            multiplier: 2.0,
            max: Duration::from_millis(1000),
            jitter: 0.0,
            reset_after: Duration::from_secs(5),
        }
    }

    #[test]
    fn doubles_up_to_the_cap() {
        let p = policy();
        let mut s = BackoffState::default();
        let got: Vec<u128> = (0..6)
            .map(|_| s.next_delay(&p, Duration::ZERO, 0.5).as_millis())
            .collect();
        assert_eq!(got, vec![100, 200, 400, 800, 1000, 1000]);
    }

    #[test]
    fn a_long_healthy_run_resets_the_schedule() {
        let p = policy();
        let mut s = BackoffState::default();
        s.next_delay(&p, Duration::ZERO, 0.5);
        s.next_delay(&p, Duration::ZERO, 0.5);
        assert_eq!(
            s.next_delay(&p, Duration::from_secs(5), 0.5),
            Duration::from_millis(100)
        );
        assert_eq!(
            s.next_delay(&p, Duration::ZERO, 0.5),
            Duration::from_millis(200)
        );
    }

    #[test]
    fn jitter_stays_inside_its_band() {
        let p = Backoff {
            jitter: 0.2,
            ..policy()
        };
        for unit in [0.0, 0.25, 0.5, 0.75, 0.999] {
            let d = BackoffState::default().next_delay(&p, Duration::ZERO, unit);
            assert!(
                d >= Duration::from_millis(80) && d <= Duration::from_millis(120),
                "{d:?}"
            );
        }
        assert_eq!(
            BackoffState::default().next_delay(&p, Duration::ZERO, 0.0),
            Duration::from_millis(80)
        );
    }

    #[test]
    fn none_is_immediate() {
        let mut s = BackoffState::default();
        for _ in 0..5 {
            assert_eq!(
                s.next_delay(&Backoff::none(), Duration::ZERO, 0.9),
                Duration::ZERO
            );
        }
    }
}
