//! Rate limiting of repeated log lines, so an event storm cannot flood the journal.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Allows at most `burst` lines per key in each `window`, and counts the rest.
#[derive(Debug)]
pub struct LogLimiter {
    window: Duration,
    burst: u32,
    keys: Mutex<HashMap<String, Window>>,
}

#[derive(Debug)]
struct Window {
    started: Instant,
    logged: u32,
    suppressed: u64,
}

/// Whether a line may be logged, and how many of its kind were dropped before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Log { suppressed_before: u64 },
    Drop,
}

impl LogLimiter {
    pub fn new(window: Duration, burst: u32) -> Self {
        Self {
            window,
            burst,
            keys: Mutex::new(HashMap::new()),
        }
    }

    /// Decides on one line of kind `key` at time `now`.
    pub fn check_at(&self, key: &str, now: Instant) -> Verdict {
        let Ok(mut keys) = self.keys.lock() else {
            return Verdict::Log {
                suppressed_before: 0,
            };
        };
        let window = keys.entry(key.to_string()).or_insert(Window {
            started: now,
            logged: 0,
            suppressed: 0,
        });
        let mut suppressed_before = 0;
        if now.duration_since(window.started) >= self.window {
            suppressed_before = window.suppressed;
            *window = Window {
                started: now,
                logged: 0,
                suppressed: 0,
            };
        }
        if window.logged < self.burst {
            window.logged += 1;
            Verdict::Log { suppressed_before }
        } else {
            window.suppressed += 1;
            Verdict::Drop
        }
    }

    /// Decides on one line of kind `key` now.
    pub fn check(&self, key: &str) -> Verdict {
        self.check_at(key, Instant::now())
    }
}

impl Default for LogLimiter {
    /// Ten lines per kind every ten seconds.
    fn default() -> Self {
        Self::new(Duration::from_secs(10), 10)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_drop_then_report() {
        let limiter = LogLimiter::new(Duration::from_secs(10), 2);
        let start = Instant::now();

        assert_eq!(
            limiter.check_at("attach failed", start),
            Verdict::Log {
                suppressed_before: 0
            }
        );
        assert_eq!(
            limiter.check_at("attach failed", start),
            Verdict::Log {
                suppressed_before: 0
            }
        );
        assert_eq!(limiter.check_at("attach failed", start), Verdict::Drop);
        assert_eq!(limiter.check_at("attach failed", start), Verdict::Drop);
        let later = start + Duration::from_secs(11);
        assert_eq!(
            limiter.check_at("attach failed", later),
            Verdict::Log {
                suppressed_before: 2
            }
        );
    }

    #[test]
    fn keys_are_independent() {
        let limiter = LogLimiter::new(Duration::from_secs(10), 1);
        let now = Instant::now();

        assert_eq!(
            limiter.check_at("a", now),
            Verdict::Log {
                suppressed_before: 0
            }
        );
        assert_eq!(
            limiter.check_at("b", now),
            Verdict::Log {
                suppressed_before: 0
            }
        );
        assert_eq!(limiter.check_at("a", now), Verdict::Drop);
    }
}
