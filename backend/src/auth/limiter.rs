//! Failed-login limits per user and per client address: after `limit` failures within
//! `window`, further attempts get 429 until the oldest failure leaves the window.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::api::ApiError;

pub struct LoginLimiter {
    limit: u32,
    window: Duration,
    failures: Mutex<HashMap<String, Vec<Instant>>>,
}

impl LoginLimiter {
    pub fn new(limit: u32, window: Duration) -> Self {
        Self {
            limit,
            window,
            failures: Mutex::new(HashMap::new()),
        }
    }

    fn keys(username: &str, addr: Option<IpAddr>) -> Vec<String> {
        let mut keys = vec![format!("user:{username}")];
        if let Some(addr) = addr {
            keys.push(format!("addr:{addr}"));
        }
        keys
    }

    /// 429 when the user or the address used up its failures.
    pub fn check(&self, username: &str, addr: Option<IpAddr>) -> Result<(), ApiError> {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        for key in Self::keys(username, addr) {
            if let Some(times) = map.get_mut(&key) {
                times.retain(|t| t.elapsed() < self.window);
                if times.len() as u32 >= self.limit {
                    let wait = self.window.saturating_sub(times[0].elapsed()).as_secs() + 1;
                    return Err(ApiError::TooManyRequests {
                        detail: format!(
                            "Too many failed logins for this user or address; try again in {wait} s"
                        ),
                        retry_after: wait,
                    });
                }
            }
        }
        Ok(())
    }

    pub fn failure(&self, username: &str, addr: Option<IpAddr>) {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() > 100_000 {
            map.retain(|_, times| times.iter().any(|t| t.elapsed() < self.window));
        }
        for key in Self::keys(username, addr) {
            map.entry(key).or_default().push(Instant::now());
        }
    }

    /// A good password clears the user's failures (not the address's).
    pub fn success(&self, username: &str) {
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&format!("user:{username}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_per_user_and_address() {
        let l = LoginLimiter::new(2, Duration::from_secs(60));
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        l.failure("ada", Some(a));
        l.failure("bob", Some(a));
        assert!(
            l.check("carl", Some(a)).is_err(),
            "address a used its 2 failures"
        );
        assert!(l.check("carl", Some(b)).is_ok());
        l.failure("ada", Some(b));
        assert!(
            l.check("ada", Some(b)).is_err(),
            "user ada used its 2 failures"
        );
        l.success("ada");
        assert!(l.check("ada", Some(b)).is_ok());
    }
}
