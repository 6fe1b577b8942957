//! A per-client-IP token bucket in front of `/auth/*`: a person logging in never notices it, a
//! script guessing passwords or flooding codes gets 429 with `Retry-After`.
//!
//! The buckets live in this process's memory. Several processes behind one balancer each keep
//! their own, so the effective budget is the configured one times the number of processes; the
//! per-account lock (five failures) is what holds across processes.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Buckets kept before full (idle) ones are swept out, so memory stays bounded under a flood of
/// distinct addresses.
pub const MAX_TRACKED_CLIENTS: usize = 100_000;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    refilled_at: Instant,
}

/// A token bucket per client IP: `capacity` requests at once, refilled at `capacity` per minute.
#[derive(Debug)]
pub struct RateLimiter {
    capacity: f64,
    per_second: f64,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

impl RateLimiter {
    pub fn per_minute(requests: u32) -> Self {
        let capacity = f64::from(requests.max(1));
        Self {
            capacity,
            per_second: capacity / 60.0,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `client` at `now`, or says how long until one is available.
    pub fn check(&self, client: IpAddr, now: Instant) -> Result<(), Duration> {
        let mut buckets = match self.buckets.lock() {
            Ok(guard) => guard,
            // A panic while holding the lock cannot leave a bucket half-written; keep serving.
            Err(poisoned) => poisoned.into_inner(),
        };
        if buckets.len() >= MAX_TRACKED_CLIENTS {
            let (capacity, per_second) = (self.capacity, self.per_second);
            buckets.retain(|_, b| refill(b, now, capacity, per_second) < capacity);
        }
        let bucket = buckets.entry(client).or_insert(Bucket {
            tokens: self.capacity,
            refilled_at: now,
        });
        let tokens = refill(bucket, now, self.capacity, self.per_second);
        bucket.tokens = tokens;
        bucket.refilled_at = now;
        if tokens >= 1.0 {
            bucket.tokens = tokens - 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - tokens) / self.per_second))
        }
    }
}

fn refill(bucket: &Bucket, now: Instant, capacity: f64, per_second: f64) -> f64 {
    let elapsed = now
        .saturating_duration_since(bucket.refilled_at)
        .as_secs_f64();
    (bucket.tokens + elapsed * per_second).min(capacity)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, last])
    }

    #[test]
    fn a_client_gets_its_burst_then_waits_for_the_refill() {
        let limiter = RateLimiter::per_minute(3);
        let start = Instant::now();
        for _ in 0..3 {
            assert!(limiter.check(ip(1), start).is_ok());
        }
        let wait = limiter.check(ip(1), start).err();
        assert_eq!(wait.map(|d| d.as_secs()), Some(20));
        assert!(limiter
            .check(ip(1), start + Duration::from_secs(20))
            .is_ok());
        assert!(limiter
            .check(ip(1), start + Duration::from_secs(21))
            .is_err());
    }

    #[test]
    fn clients_have_separate_budgets() {
        let limiter = RateLimiter::per_minute(1);
        let now = Instant::now();
        assert!(limiter.check(ip(1), now).is_ok());
        assert!(limiter.check(ip(1), now).is_err());
        assert!(limiter.check(ip(2), now).is_ok());
    }

    #[test]
    fn a_full_bucket_does_not_grow_past_its_capacity() {
        let limiter = RateLimiter::per_minute(2);
        let start = Instant::now();
        assert!(limiter.check(ip(1), start).is_ok());
        let later = start + Duration::from_secs(3600);
        assert!(limiter.check(ip(1), later).is_ok());
        assert!(limiter.check(ip(1), later).is_ok());
        assert!(limiter.check(ip(1), later).is_err());
    }
}
