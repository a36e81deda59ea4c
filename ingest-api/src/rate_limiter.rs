//! The booking command limiter: a token bucket per user, so one account cannot fill a
//! doctor's agenda (or flood the command topic) faster than a person books.

use std::{collections::HashMap, sync::Mutex, time::Instant};

use uuid::Uuid;

/// A token bucket per user id: each user holds up to `burst` tokens, refilled at `per_sec`
/// tokens a second; a command takes one. Kept in memory per API replica, so with N replicas
/// behind a balancer a user gets up to N times the rate.
pub struct RateLimiter {
    per_sec: f64,
    burst: f64,
    buckets: Mutex<HashMap<Uuid, Bucket>>,
}

#[derive(Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Users tracked before idle (full) buckets are dropped.
const PRUNE_ABOVE: usize = 10_000;

impl RateLimiter {
    /// `per_sec == 0` turns the limiter off.
    pub fn new(per_sec: u32, burst: u32) -> Self {
        Self {
            per_sec: f64::from(per_sec),
            burst: f64::from(burst.max(1)),
            buckets: Mutex::default(),
        }
    }

    /// Takes a token for `user`, or answers `Err(seconds)` until the next one is due.
    pub fn check(&self, user: Uuid) -> Result<(), u64> {
        self.check_at(user, Instant::now())
    }

    fn check_at(&self, user: Uuid, now: Instant) -> Result<(), u64> {
        if self.per_sec <= 0.0 {
            return Ok(());
        }
        let mut buckets = self.buckets.lock().expect("limiter lock");
        if buckets.len() > PRUNE_ABOVE {
            // A full bucket is the same as none: forget it.
            buckets.retain(|_, b| self.refilled(*b, now) < self.burst);
        }
        let bucket = buckets.entry(user).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        let tokens = self.refilled(*bucket, now);
        if tokens >= 1.0 {
            *bucket = Bucket {
                tokens: tokens - 1.0,
                at: now,
            };
            Ok(())
        } else {
            *bucket = Bucket { tokens, at: now };
            let wait = (1.0 - tokens) / self.per_sec;
            Err(wait.ceil().max(1.0) as u64)
        }
    }

    fn refilled(&self, bucket: Bucket, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        (bucket.tokens + elapsed * self.per_sec).min(self.burst)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_user_gets_the_burst_then_the_rate_and_others_are_not_affected() {
        let limiter = RateLimiter::new(2, 3);
        let (ana, luis) = (Uuid::new_v4(), Uuid::new_v4());
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(limiter.check_at(ana, t0).is_ok());
        }
        assert_eq!(limiter.check_at(ana, t0), Err(1));
        assert!(limiter.check_at(luis, t0).is_ok(), "buckets are per user");
        // Half a second at 2/s is one token again, and only one.
        let later = t0 + Duration::from_millis(500);
        assert!(limiter.check_at(ana, later).is_ok());
        assert!(limiter.check_at(ana, later).is_err());
    }

    #[test]
    fn a_zero_rate_turns_the_limiter_off() {
        let limiter = RateLimiter::new(0, 1);
        let ana = Uuid::new_v4();
        for _ in 0..100 {
            assert!(limiter.check(ana).is_ok());
        }
    }

    #[test]
    fn idle_users_are_forgotten() {
        let limiter = RateLimiter::new(1_000, 1);
        let t0 = Instant::now();
        for _ in 0..=PRUNE_ABOVE {
            limiter.check_at(Uuid::new_v4(), t0).unwrap();
        }
        limiter
            .check_at(Uuid::new_v4(), t0 + Duration::from_secs(1))
            .unwrap();
        assert!(limiter.buckets.lock().unwrap().len() <= 2);
    }
}
