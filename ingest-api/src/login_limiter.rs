//! The login limiter: slows password guessing down without letting a stranger lock anyone out.
//!
//! Three counts of failures within the window, kept per API replica:
//! - per address: past `max_per_address` failures, that address gets 429 for any username;
//! - per username *and* address: past `max_per_user` failures, that pair gets 429 until the
//!   window passes — whoever types the wrong password five times locks out only themselves,
//!   not the account's owner on another device;
//! - per username, from every address (a guess spread over many addresses): past
//!   `max_per_user` failures, an attempt from an address the user has not signed in from
//!   recently (a known device: a successful login within [`KNOWN_DEVICE_FOR`]) waits a delay
//!   that doubles with each further failure ([`BASE_DELAY`] up to [`MAX_DELAY`]) before its
//!   password is checked. The right password still gets in; a known device goes straight
//!   through.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::Mutex,
    time::{Duration, Instant},
};

/// How long a successful login makes its address a known device for that user.
pub const KNOWN_DEVICE_FOR: Duration = Duration::from_secs(30 * 24 * 3600);
/// The delay of the first attempt past the username's threshold, doubling after.
pub const BASE_DELAY: Duration = Duration::from_millis(250);
pub const MAX_DELAY: Duration = Duration::from_secs(5);
/// Entries kept before old ones are swept.
const MAX_ENTRIES: usize = 100_000;

pub struct LoginLimiter {
    window: Duration,
    max_per_user: usize,
    max_per_address: usize,
    failures: Mutex<HashMap<String, Vec<Instant>>>,
    known: Mutex<HashMap<(String, IpAddr), Instant>>,
}

impl LoginLimiter {
    pub fn new(window: Duration, max_per_user: usize, max_per_address: usize) -> Self {
        Self {
            window,
            max_per_user,
            max_per_address,
            failures: Mutex::default(),
            known: Mutex::default(),
        }
    }

    fn keys(username: &str, ip: IpAddr) -> [String; 3] {
        [
            format!("addr:{ip}"),
            format!("pair:{username}\u{0}{ip}"),
            format!("user:{username}"),
        ]
    }

    fn is_known(&self, username: &str, ip: IpAddr, now: Instant) -> bool {
        self.known
            .lock()
            .expect("limiter lock")
            .get(&(username.to_owned(), ip))
            .is_some_and(|at| now.duration_since(*at) < KNOWN_DEVICE_FOR)
    }

    /// Whether an attempt for `username` from `ip` may go on: `Ok(delay)` to wait before the
    /// password is checked (zero for most), `Err(seconds)` to answer 429 with.
    pub fn check(&self, username: &str, ip: IpAddr) -> Result<Duration, u64> {
        let now = Instant::now();
        let known = self.is_known(username, ip, now);
        let mut failures = self.failures.lock().expect("limiter lock");
        let [addr_key, pair_key, user_key] = Self::keys(username, ip);
        let mut recent = |key: &str| -> Option<(usize, Instant)> {
            let times = failures.get_mut(key)?;
            times.retain(|t| now.duration_since(*t) < self.window);
            times.first().map(|oldest| (times.len(), *oldest))
        };
        for (key, max) in [
            (&addr_key, self.max_per_address),
            (&pair_key, self.max_per_user),
        ] {
            if let Some((count, oldest)) = recent(key)
                && count >= max
            {
                let retry = self.window.saturating_sub(now.duration_since(oldest));
                return Err(retry.as_secs().max(1));
            }
        }
        let delay = match recent(&user_key) {
            Some((count, _)) if count >= self.max_per_user && !known => {
                let doublings = u32::try_from(count - self.max_per_user).unwrap_or(u32::MAX);
                BASE_DELAY
                    .checked_mul(2u32.saturating_pow(doublings.min(16)))
                    .unwrap_or(MAX_DELAY)
                    .min(MAX_DELAY)
            }
            _ => Duration::ZERO,
        };
        // Keep the map from growing without bound under a spray of usernames.
        if failures.len() > MAX_ENTRIES {
            failures.retain(|_, times| times.iter().any(|t| now.duration_since(*t) < self.window));
        }
        Ok(delay)
    }

    pub fn failed(&self, username: &str, ip: IpAddr) {
        let now = Instant::now();
        let mut failures = self.failures.lock().expect("limiter lock");
        for key in Self::keys(username, ip) {
            failures.entry(key).or_default().push(now);
        }
    }

    /// A successful login: the address becomes a known device of the user and its own
    /// failures for the user are forgotten (failures from elsewhere still count: someone else
    /// may be guessing).
    pub fn succeeded(&self, username: &str, ip: IpAddr) {
        let now = Instant::now();
        {
            let [_, pair_key, _] = Self::keys(username, ip);
            self.failures
                .lock()
                .expect("limiter lock")
                .remove(&pair_key);
        }
        let mut known = self.known.lock().expect("limiter lock");
        if known.len() > MAX_ENTRIES {
            known.retain(|_, at| now.duration_since(*at) < KNOWN_DEVICE_FOR);
        }
        known.insert((username.to_owned(), ip), now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn failures_lock_only_their_own_address_for_that_user() {
        let limiter = LoginLimiter::new(Duration::from_secs(60), 3, 10);
        let attacker = ip("10.0.0.66");
        for _ in 0..3 {
            assert!(limiter.check("ana", attacker).is_ok());
            limiter.failed("ana", attacker);
        }
        assert!(limiter.check("ana", attacker).is_err(), "the guesser waits");
        assert_eq!(limiter.check("luis", attacker), Ok(Duration::ZERO));
        // The owner, from another address, is not locked out: delayed as an unknown device.
        let owner = ip("10.0.0.7");
        assert_eq!(limiter.check("ana", owner), Ok(BASE_DELAY));
        limiter.succeeded("ana", owner);
        assert_eq!(limiter.check("ana", owner), Ok(Duration::ZERO));
    }

    #[test]
    fn a_spread_guess_slows_unknown_devices_down_but_not_known_ones() {
        let limiter = LoginLimiter::new(Duration::from_secs(60), 3, 10);
        let home = ip("10.0.0.7");
        limiter.succeeded("ana", home);
        for i in 0..6 {
            limiter.failed("ana", ip(&format!("10.1.0.{i}")));
        }
        // Six failures, threshold three: 250 ms doubled three times.
        assert_eq!(limiter.check("ana", ip("10.2.0.1")), Ok(BASE_DELAY * 8));
        for i in 0..20 {
            limiter.failed("ana", ip(&format!("10.3.0.{i}")));
        }
        assert_eq!(limiter.check("ana", ip("10.2.0.1")), Ok(MAX_DELAY));
        assert_eq!(
            limiter.check("ana", home),
            Ok(Duration::ZERO),
            "a known device goes through"
        );
    }

    #[test]
    fn an_address_that_sprays_usernames_is_stopped() {
        let limiter = LoginLimiter::new(Duration::from_secs(60), 3, 10);
        let sprayer = ip("10.0.0.99");
        for i in 0..10 {
            limiter.failed(&format!("user{i}"), sprayer);
        }
        assert!(limiter.check("someone-else", sprayer).is_err());
    }
}
