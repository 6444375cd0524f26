//! Per-key rate limits: a token bucket of `burst` requests refilled at `per_sec`.
//!
//! Implemented as GCRA (the "virtual scheduling" form of a token bucket: one number per key,
//! the theoretical arrival time of the next request), so the Redis variant is one `EVAL` of
//! a few lines that every `artel up` sharing the Redis agrees on. Redis time is used there,
//! so nodes with skewed clocks still share one budget. When Redis fails, the limiter falls
//! back to this process's own buckets rather than refusing every request.

use artel_messages::ApiKeyId;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

/// The answer for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Go ahead.
    Allow,
    /// Refused; try again after this long.
    Deny {
        /// How long until a request would be allowed.
        retry_after: Duration,
    },
}

/// GCRA over the keys (API keys, or client addresses) this process has seen.
#[derive(Debug)]
pub struct LocalBuckets<K = ApiKeyId> {
    interval: Duration,
    tolerance: Duration,
    /// Theoretical arrival time of each key's next request.
    tat: Mutex<HashMap<K, Instant>>,
}

impl<K: Hash + Eq> LocalBuckets<K> {
    /// `per_sec` requests per second on average, `burst` at once.
    pub fn new(per_sec: u32, burst: u32) -> Self {
        Self::every(
            Duration::from_secs_f64(1.0 / f64::from(per_sec.max(1))),
            burst,
        )
    }

    /// One token per `interval`, `burst` at once.
    pub fn every(interval: Duration, burst: u32) -> Self {
        Self {
            interval,
            tolerance: interval * burst.max(1),
            tat: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `key` has a token left at `now`, without spending it.
    pub fn peek(&self, key: &K, now: Instant) -> Decision {
        let tat = self.tat.lock();
        let next = tat.get(key).copied().unwrap_or(now).max(now) + self.interval;
        let allowed_until = now + self.tolerance;
        if next > allowed_until {
            Decision::Deny {
                retry_after: next - allowed_until,
            }
        } else {
            Decision::Allow
        }
    }

    /// Spends one token of `key` at `now`.
    pub fn check(&self, key: K, now: Instant) -> Decision {
        let mut tat = self.tat.lock();
        if tat.len() > 100_000 {
            // Forget keys whose bucket is full again: they would be allowed anyway.
            tat.retain(|_, at| *at > now);
        }
        let current = tat.get(&key).copied().unwrap_or(now).max(now);
        let next = current + self.interval;
        let allowed_until = now + self.tolerance;
        if next > allowed_until {
            Decision::Deny {
                retry_after: next - allowed_until,
            }
        } else {
            tat.insert(key, next);
            Decision::Allow
        }
    }
}

/// GCRA in Redis: KEYS[1] holds the theoretical arrival time in microseconds of Redis time;
/// ARGV = interval µs, tolerance µs. Answers 0 (allowed) or the wait in µs.
const GCRA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local nxt = tat + interval
local wait = nxt - (now + tolerance)
if wait > 0 then return wait end
redis.call('SET', KEYS[1], nxt, 'PX', math.ceil((nxt - now) / 1000) + 1)
return 0
";

/// The limiter: this process's buckets, or Redis's shared ones.
pub struct RateLimiter {
    local: LocalBuckets,
    redis: Option<(redis::aio::ConnectionManager, redis::Script)>,
}

impl RateLimiter {
    /// Limits kept in this process.
    pub fn local(per_sec: u32, burst: u32) -> Self {
        Self {
            local: LocalBuckets::new(per_sec, burst),
            redis: None,
        }
    }

    /// Limits shared through Redis (falling back to local ones while Redis fails).
    pub fn shared(per_sec: u32, burst: u32, redis: redis::aio::ConnectionManager) -> Self {
        Self {
            local: LocalBuckets::new(per_sec, burst),
            redis: Some((redis, redis::Script::new(GCRA))),
        }
    }

    /// Spends one of `key`'s tokens.
    pub async fn check(&self, key: ApiKeyId) -> Decision {
        let Some((connection, script)) = &self.redis else {
            return self.local.check(key, Instant::now());
        };
        let micros = |d: Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        let mut connection = connection.clone();
        let answer: redis::RedisResult<u64> = script
            .key(format!("artel:ratelimit:{key}"))
            .arg(micros(self.local.interval))
            .arg(micros(self.local.tolerance))
            .invoke_async(&mut connection)
            .await;
        match answer {
            Ok(0) => Decision::Allow,
            Ok(wait) => Decision::Deny {
                retry_after: Duration::from_micros(wait),
            },
            Err(err) => {
                tracing::warn!(error = %err, "rate limits fall back to this process: Redis failed");
                self.local.check(key, Instant::now())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_allowed_then_the_rate() {
        let buckets = LocalBuckets::new(10, 5);
        let key = ApiKeyId::new();
        let start = Instant::now();
        for i in 0..5 {
            assert_eq!(buckets.check(key, start), Decision::Allow, "request {i}");
        }
        let Decision::Deny { retry_after } = buckets.check(key, start) else {
            panic!("the sixth request at once must be refused");
        };
        assert!(retry_after <= Duration::from_millis(100), "{retry_after:?}");
        // One interval later, one more token.
        let later = start + Duration::from_millis(100);
        assert_eq!(buckets.check(key, later), Decision::Allow);
        assert!(matches!(buckets.check(key, later), Decision::Deny { .. }));
    }

    #[test]
    fn keys_have_their_own_buckets() {
        let buckets = LocalBuckets::new(1, 1);
        let (a, b) = (ApiKeyId::new(), ApiKeyId::new());
        let now = Instant::now();
        assert_eq!(buckets.check(a, now), Decision::Allow);
        assert!(matches!(buckets.check(a, now), Decision::Deny { .. }));
        assert_eq!(buckets.check(b, now), Decision::Allow);
    }

    #[test]
    fn an_idle_key_gets_its_whole_burst_back_but_no_more() {
        let buckets = LocalBuckets::new(100, 3);
        let key = ApiKeyId::new();
        let start = Instant::now();
        let idle = start + Duration::from_secs(60);
        let allowed = (0..10)
            .filter(|_| buckets.check(key, idle) == Decision::Allow)
            .count();
        assert_eq!(allowed, 3);
    }
}
