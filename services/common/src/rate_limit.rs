//! Keyed token buckets: at most `burst` events at once per key, refilled at
//! `per_second`. The gateway limits each caller's requests with them, auth-service each
//! client address's failed logins. In memory, per process: a limit of one replica.

use std::{
    collections::HashMap,
    hash::Hash,
    sync::{Mutex, PoisonError},
    time::{Duration, Instant},
};

/// Whole seconds to wait for `wait`, at least one (Retry-After has no fractions).
pub fn retry_after_secs(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

/// A rate and the burst allowed above it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    pub per_second: f64,
    pub burst: f64,
}

impl Rate {
    /// `per_minute` events a minute, all of which may come at once.
    pub fn per_minute(per_minute: u32) -> Self {
        Self { per_second: f64::from(per_minute) / 60.0, burst: f64::from(per_minute) }
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// The buckets kept before full ones (keys idle long enough) are forgotten.
const PRUNE_ABOVE: usize = 100_000;

pub struct RateLimiter<K> {
    rate: Rate,
    buckets: Mutex<HashMap<K, Bucket>>,
}

impl<K: Hash + Eq + Clone> RateLimiter<K> {
    pub fn new(rate: Rate) -> Self {
        Self { rate, buckets: Mutex::new(HashMap::new()) }
    }

    pub fn rate(&self) -> Rate {
        self.rate
    }

    /// Takes one token for `key`, or tells how long until one is there (nothing taken).
    pub fn acquire(&self, key: &K) -> Result<(), Duration> {
        self.with_bucket(key, |bucket| {
            if bucket.tokens >= 1.0 {
                bucket.tokens -= 1.0;
                Ok(())
            } else {
                Err(self.wait_for_one(bucket.tokens))
            }
        })
    }

    /// Whether `key` has a token, without taking it (take it with [`Self::consume`]
    /// once the event turned out to count, e.g. a login that failed).
    pub fn check(&self, key: &K) -> Result<(), Duration> {
        self.with_bucket(
            key,
            |bucket| if bucket.tokens >= 1.0 { Ok(()) } else { Err(self.wait_for_one(bucket.tokens)) },
        )
    }

    /// Takes one token for `key`, going below zero if it has none (the wait grows).
    pub fn consume(&self, key: &K) {
        self.with_bucket(key, |bucket| bucket.tokens = (bucket.tokens - 1.0).max(-self.rate.burst));
    }

    fn wait_for_one(&self, tokens: f64) -> Duration {
        if self.rate.per_second <= 0.0 {
            return Duration::MAX;
        }
        Duration::from_secs_f64(((1.0 - tokens) / self.rate.per_second).max(0.001))
    }

    fn with_bucket<T>(&self, key: &K, f: impl FnOnce(&mut Bucket) -> T) -> T {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        if buckets.len() >= PRUNE_ABOVE && !buckets.contains_key(key) {
            let rate = self.rate;
            buckets.retain(|_, b| refilled(rate, b, now).tokens < rate.burst);
            if buckets.len() >= PRUNE_ABOVE {
                // Every key is busy: more distinct callers than the table holds. Forgetting
                // them all lets each start over with a full bucket; said loudly.
                tracing::warn!(keys = buckets.len(), "rate limiter table full of active keys; resetting it");
                buckets.clear();
            }
        }
        let bucket = buckets.entry(key.clone()).or_insert(Bucket { tokens: self.rate.burst, at: now });
        *bucket = refilled(self.rate, bucket, now);
        f(bucket)
    }
}

fn refilled(rate: Rate, bucket: &Bucket, now: Instant) -> Bucket {
    let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
    Bucket { tokens: (bucket.tokens + elapsed * rate.per_second).min(rate.burst), at: now }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_gets_its_burst_then_waits_and_other_keys_are_apart() {
        let limiter = RateLimiter::new(Rate { per_second: 1.0, burst: 3.0 });
        for _ in 0..3 {
            assert_eq!(limiter.acquire(&"a"), Ok(()));
        }
        let wait = limiter.acquire(&"a").expect_err("burst used up");
        assert!(wait > Duration::from_millis(900) && wait <= Duration::from_secs(1), "{wait:?}");
        assert_eq!(limiter.acquire(&"b"), Ok(()));
    }

    #[test]
    fn check_takes_nothing_and_consume_can_go_into_debt() {
        let limiter = RateLimiter::new(Rate::per_minute(2));
        assert_eq!(limiter.check(&1), Ok(()));
        assert_eq!(limiter.check(&1), Ok(()));
        limiter.consume(&1);
        limiter.consume(&1);
        limiter.consume(&1);
        let wait = limiter.check(&1).expect_err("in debt");
        // One token short of zero and one more needed, at one token per 30 s.
        assert!(wait > Duration::from_secs(59) && wait <= Duration::from_secs(60), "{wait:?}");
    }

    #[test]
    fn a_bucket_refills_at_the_rate() {
        let limiter = RateLimiter::new(Rate { per_second: 100.0, burst: 1.0 });
        assert_eq!(limiter.acquire(&"k"), Ok(()));
        assert!(limiter.acquire(&"k").is_err());
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(limiter.acquire(&"k"), Ok(()));
    }
}
