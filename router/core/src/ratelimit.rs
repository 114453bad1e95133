//! Per-User token buckets. Excess is answered *throttled*; lanes L0 and L1 are exempt (the
//! admission stage does not ask), being limited only by their own lane capacity.

use std::time::Instant;

use dashmap::DashMap;
use dcc_signing::Eui64;

use crate::policy::RateLimit;

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// User → bucket.
#[derive(Debug, Default)]
pub struct RateLimiter {
    buckets: DashMap<Eui64, Bucket>,
}

impl RateLimiter {
    /// Takes one token from `user`'s bucket under `limit`; false when empty.
    pub fn try_take(&self, user: Eui64, limit: RateLimit, now: Instant) -> bool {
        let burst = f64::from(limit.burst());
        let mut b = self.buckets.entry(user).or_insert(Bucket {
            tokens: burst,
            last: now,
        });
        let elapsed = now.saturating_duration_since(b.last).as_secs_f64();
        b.tokens = (b.tokens + elapsed * f64::from(limit.per_second())).min(burst);
        b.last = now.max(b.last);
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::time::Duration;

    #[test]
    fn burst_then_refill() {
        let r = RateLimiter::default();
        let u = Eui64::from_u64(1);
        let l = RateLimit::new(10, 3).unwrap();
        let t0 = Instant::now();
        assert!((0..3).all(|_| r.try_take(u, l, t0)));
        assert!(!r.try_take(u, l, t0));
        assert!(r.try_take(u, l, t0 + Duration::from_millis(100)));
        assert!(!r.try_take(u, l, t0 + Duration::from_millis(100)));
        assert!(r.try_take(Eui64::from_u64(2), l, t0));
    }
}
