//! The login limiter: slows password guessing down, per username and per address.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::Mutex,
    time::{Duration, Instant},
};

/// Slows down password guessing: after `max_per_user` failures for one username, or
/// `max_per_address` from one address, within `window`, further attempts get 429 until the
/// window passes. Kept per API replica.
pub struct LoginLimiter {
    window: Duration,
    max_per_user: usize,
    max_per_address: usize,
    failures: Mutex<HashMap<String, Vec<Instant>>>,
}

impl LoginLimiter {
    pub fn new(window: Duration, max_per_user: usize, max_per_address: usize) -> Self {
        Self {
            window,
            max_per_user,
            max_per_address,
            failures: Mutex::default(),
        }
    }

    fn keys(username: &str, ip: IpAddr) -> [String; 2] {
        [format!("user:{username}"), format!("addr:{ip}")]
    }

    /// `Err(seconds)` to wait when `username` or `ip` failed too often within the window.
    pub fn check(&self, username: &str, ip: IpAddr) -> Result<(), u64> {
        let now = Instant::now();
        let mut failures = self.failures.lock().expect("limiter lock");
        let [user_key, addr_key] = Self::keys(username, ip);
        for (key, max) in [
            (user_key, self.max_per_user),
            (addr_key, self.max_per_address),
        ] {
            if let Some(times) = failures.get_mut(&key) {
                times.retain(|t| now.duration_since(*t) < self.window);
                if times.len() >= max {
                    let oldest = times[0];
                    let retry = self.window.saturating_sub(now.duration_since(oldest));
                    return Err(retry.as_secs().max(1));
                }
            }
        }
        // Keep the map from growing without bound under a spray of usernames.
        if failures.len() > 100_000 {
            failures.retain(|_, times| times.iter().any(|t| now.duration_since(*t) < self.window));
        }
        Ok(())
    }

    pub fn failed(&self, username: &str, ip: IpAddr) {
        let now = Instant::now();
        let mut failures = self.failures.lock().expect("limiter lock");
        for key in Self::keys(username, ip) {
            failures.entry(key).or_default().push(now);
        }
    }

    pub fn succeeded(&self, username: &str) {
        self.failures
            .lock()
            .expect("limiter lock")
            .remove(&format!("user:{username}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limiter_blocks_after_repeated_failures_and_forgives_success() {
        let limiter = LoginLimiter::new(Duration::from_secs(60), 3, 10);
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        for _ in 0..3 {
            assert!(limiter.check("ana", ip).is_ok());
            limiter.failed("ana", ip);
        }
        assert!(limiter.check("ana", ip).is_err());
        assert!(
            limiter.check("luis", ip).is_ok(),
            "other users are not blocked by one's failures"
        );
        limiter.succeeded("ana");
        assert!(limiter.check("ana", ip).is_ok());
    }
}
