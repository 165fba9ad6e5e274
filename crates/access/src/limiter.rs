//! A token bucket per caller: each holds up to `burst` calls and refills at `rate` a second,
//! so a caller may burst and then keeps to its rate, and one caller's flood takes nothing from
//! the others' buckets.
//!
//! The map is bounded: past [`MAX_CALLERS`] buckets, full ones (callers idle long enough to
//! have refilled) are forgotten, as a forgotten bucket comes back full anyway.

use std::{
    collections::HashMap,
    hash::Hash,
    sync::Mutex,
    time::{Duration, Instant},
};

/// Buckets kept before idle ones are forgotten.
pub const MAX_CALLERS: usize = 10_000;

/// How long a refused caller should wait before its next call fits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryAfter(pub Duration);

#[derive(Clone, Copy, Debug)]
struct Bucket {
    calls: f64,
    at: Instant,
}

/// Rate limits per caller `K`.
#[derive(Debug)]
pub struct Limiter<K> {
    rate: f64,
    burst: f64,
    burst_calls: u32,
    // Held for a lookup and an update only, never across I/O or an await.
    buckets: Mutex<HashMap<K, Bucket>>,
}

impl<K: Hash + Eq + Clone> Limiter<K> {
    /// `rate` calls a second per caller, `burst` at once (both at least 1).
    pub fn new(rate: u32, burst: u32) -> Self {
        Self {
            rate: f64::from(rate.max(1)),
            burst: f64::from(burst.max(1)),
            burst_calls: burst.max(1),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes `calls` from `caller`'s bucket at `now`, or says how long until they fit. Calls
    /// beyond [`Self::burst`] at once never fit: callers check that first.
    pub fn take(&self, caller: &K, calls: u32, now: Instant) -> Result<(), RetryAfter> {
        let calls = f64::from(calls);
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= MAX_CALLERS && !buckets.contains_key(caller) {
            self.forget_full(&mut buckets, now);
        }
        let bucket = buckets.entry(caller.clone()).or_insert(Bucket {
            calls: self.burst,
            at: now,
        });
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.calls = (bucket.calls + elapsed * self.rate).min(self.burst);
        bucket.at = now;
        if bucket.calls >= calls {
            bucket.calls -= calls;
            return Ok(());
        }
        let missing = calls.min(self.burst) - bucket.calls;
        Err(RetryAfter(Duration::from_secs_f64(
            (missing / self.rate).max(0.001),
        )))
    }

    fn forget_full(&self, buckets: &mut HashMap<K, Bucket>, now: Instant) {
        let (rate, burst) = (self.rate, self.burst);
        buckets.retain(|_, bucket| {
            let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
            bucket.calls + elapsed * rate < burst
        });
    }

    /// The most calls one caller may make at once.
    pub fn burst(&self) -> u32 {
        self.burst_calls
    }

    /// Callers with a bucket (for tests and metrics).
    pub fn callers(&self) -> usize {
        self.buckets.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_is_held_to_the_rate_while_another_caller_is_untouched() {
        let limiter = Limiter::new(10, 20);
        let start = Instant::now();
        for _ in 0..20 {
            assert_eq!(limiter.take(&"flood", 1, start), Ok(()));
        }
        let Err(RetryAfter(wait)) = limiter.take(&"flood", 1, start) else {
            panic!("the 21st call at once passed");
        };
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_millis(100),
            "{wait:?}"
        );
        assert_eq!(limiter.take(&"quiet", 1, start), Ok(()));
        // A tenth of a second refills one call.
        let later = start + Duration::from_millis(100);
        assert_eq!(limiter.take(&"flood", 1, later), Ok(()));
        assert!(limiter.take(&"flood", 1, later).is_err());
    }

    #[test]
    fn a_batch_counts_each_call_and_idle_callers_are_forgotten() {
        let limiter = Limiter::new(100, 100);
        let start = Instant::now();
        assert_eq!(limiter.take(&0u32, 100, start), Ok(()));
        assert!(limiter.take(&0u32, 1, start).is_err());
        assert!(limiter.take(&1u32, 101, start).is_err(), "beyond the burst");
        for caller in 2..MAX_CALLERS as u32 + 10 {
            limiter
                .take(&caller, 1, start)
                .expect("a new caller's first call");
        }
        let refilled = start + Duration::from_secs(2);
        limiter.take(&u32::MAX, 1, refilled).expect("passes");
        assert!(limiter.callers() < 10, "{} buckets kept", limiter.callers());
    }
}
