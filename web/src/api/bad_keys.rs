//! Unknown keys are cheap to refuse and expensive to guess.
//!
//! Without this, every request with a made-up key costs a database query, and a client may
//! try keys as fast as it can send them. A key the store did not know is remembered for
//! [`NEGATIVE_TTL`] (at most [`MAX_REMEMBERED`] of them), so presenting it again costs a map
//! lookup; and each client address may present [`BURST`] unknown keys at once, then one per
//! [`REFILL`]. Past that, the address gets 429 with `Retry-After` for any key the
//! positive cache does not already hold, before the store is asked.
//!
//! The address is the TCP peer's: `X-Forwarded-For` is anyone's to write.

use crate::api::rate_limit::{Decision, LocalBuckets};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// How long a key the store did not know is refused without asking it again.
pub const NEGATIVE_TTL: Duration = Duration::from_secs(30);
/// How many unknown keys are remembered at most.
pub const MAX_REMEMBERED: usize = 10_000;
/// Unknown keys one address may present at once.
pub const BURST: u32 = 20;
/// After the burst, one more unknown key per this long.
pub const REFILL: Duration = Duration::from_secs(6);

/// Remembered unknown keys and each address's budget of them.
pub struct BadKeys {
    unknown: Mutex<HashMap<[u8; 32], Instant>>,
    per_address: LocalBuckets<IpAddr>,
    ttl: Duration,
    capacity: usize,
}

impl Default for BadKeys {
    fn default() -> Self {
        Self::new(NEGATIVE_TTL, MAX_REMEMBERED, REFILL, BURST)
    }
}

impl BadKeys {
    /// Remembers up to `capacity` unknown keys for `ttl`; `burst` per address, then one per
    /// `refill`.
    pub fn new(ttl: Duration, capacity: usize, refill: Duration, burst: u32) -> Self {
        Self {
            unknown: Mutex::new(HashMap::new()),
            per_address: LocalBuckets::every(refill, burst),
            ttl,
            capacity: capacity.max(1),
        }
    }

    /// Whether the key with this hash was unknown to the store within the TTL.
    pub fn known_bad(&self, hash: &[u8; 32], now: Instant) -> bool {
        self.unknown
            .lock()
            .get(hash)
            .is_some_and(|at| now.saturating_duration_since(*at) < self.ttl)
    }

    /// Remembers that the store did not know this key.
    pub fn remember(&self, hash: [u8; 32], now: Instant) {
        let mut unknown = self.unknown.lock();
        if unknown.len() >= self.capacity {
            let ttl = self.ttl;
            unknown.retain(|_, at| now.saturating_duration_since(*at) < ttl);
        }
        if unknown.len() >= self.capacity {
            // All still fresh: drop the oldest, so the map never grows past its bound.
            if let Some(oldest) = unknown.iter().min_by_key(|(_, at)| **at).map(|(h, _)| *h) {
                unknown.remove(&oldest);
            }
        }
        unknown.insert(hash, now);
    }

    /// How many unknown keys are remembered now.
    #[cfg(test)]
    fn remembered(&self) -> usize {
        self.unknown.lock().len()
    }

    /// Whether `address` may have a key checked against the store (its budget is not spent).
    pub fn admit(&self, address: IpAddr, now: Instant) -> Decision {
        self.per_address.peek(&address, now)
    }

    /// Spends one of `address`'s unknown-key tokens; `Deny` once it has none left.
    pub fn charge(&self, address: IpAddr, now: Instant) -> Decision {
        self.per_address.check(address, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(n: u8) -> [u8; 32] {
        [n; 32]
    }

    #[test]
    fn an_unknown_key_is_remembered_until_its_ttl() {
        let bad = BadKeys::new(Duration::from_secs(30), 10, REFILL, BURST);
        let now = Instant::now();
        assert!(!bad.known_bad(&hash(1), now));
        bad.remember(hash(1), now);
        assert!(bad.known_bad(&hash(1), now + Duration::from_secs(29)));
        assert!(!bad.known_bad(&hash(1), now + Duration::from_secs(30)));
        assert!(!bad.known_bad(&hash(2), now));
    }

    #[test]
    fn the_memory_of_unknown_keys_is_bounded() {
        let bad = BadKeys::new(Duration::from_secs(30), 3, REFILL, BURST);
        let now = Instant::now();
        for n in 0..10u8 {
            bad.remember(hash(n), now + Duration::from_millis(u64::from(n)));
            assert!(bad.remembered() <= 3);
        }
        assert!(bad.known_bad(&hash(9), now + Duration::from_millis(9)));
        assert!(!bad.known_bad(&hash(0), now + Duration::from_millis(9)));
    }

    #[test]
    fn an_address_has_a_burst_of_unknown_keys_then_waits() {
        let bad = BadKeys::new(NEGATIVE_TTL, 10, Duration::from_secs(6), 3);
        let (a, b): (IpAddr, IpAddr) = ([10, 0, 0, 1].into(), [10, 0, 0, 2].into());
        let now = Instant::now();
        for i in 0..3 {
            assert_eq!(bad.admit(a, now), Decision::Allow, "{i}");
            assert_eq!(bad.charge(a, now), Decision::Allow, "{i}");
        }
        let Decision::Deny { retry_after } = bad.admit(a, now) else {
            panic!("a fourth unknown key at once is refused");
        };
        assert!(retry_after > Duration::ZERO && retry_after <= Duration::from_secs(6));
        assert_eq!(
            bad.admit(b, now),
            Decision::Allow,
            "other addresses are not touched"
        );
        assert_eq!(bad.admit(a, now + Duration::from_secs(6)), Decision::Allow);
    }
}
