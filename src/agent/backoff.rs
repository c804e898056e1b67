//! Exponential backoff with jitter, for per-container retries and event stream reconnects.

use std::hash::{BuildHasher, RandomState};
use std::time::Duration;

/// The delay schedule: `initial * multiplier^retry`, capped at `max_delay`, then shortened by
/// a random share of up to `jitter` so that agents on many hosts do not retry in step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BackoffPolicy {
    pub initial: Duration,
    pub multiplier: u32,
    pub max_delay: Duration,
    /// Attempts in total, the first one included; `None` retries forever.
    pub max_attempts: Option<u32>,
    /// Share of the delay that jitter may remove, from 0.0 (none) to 1.0 (all of it).
    pub jitter: f64,
}

impl BackoffPolicy {
    /// Retries of one container's attach or detach: about 7.5 s over 5 attempts at most.
    /// These values are a starting point, not measured.
    pub const PER_CONTAINER: Self = Self {
        initial: Duration::from_millis(500),
        multiplier: 2,
        max_delay: Duration::from_secs(30),
        max_attempts: Some(5),
        jitter: 0.5,
    };

    /// Reconnects of the Docker event stream: forever, at most 15 s apart, because the
    /// agent is useless without the stream. These values are a starting point, not measured.
    pub const EVENT_STREAM: Self = Self {
        initial: Duration::from_millis(250),
        multiplier: 2,
        max_delay: Duration::from_secs(15),
        max_attempts: None,
        jitter: 0.5,
    };

    /// Returns the delay before retry number `retry` (0 for the first retry), given a
    /// jitter sample in `[0, 1)`. Out-of-range samples and jitter values are clamped.
    pub fn delay(&self, retry: u32, sample: f64) -> Duration {
        let growth = self.multiplier.checked_pow(retry).unwrap_or(u32::MAX);
        let base = self.initial.saturating_mul(growth).min(self.max_delay);
        let cut = self.jitter.clamp(0.0, 1.0) * sample.clamp(0.0, 1.0);
        base.mul_f64(1.0 - cut)
    }
}

/// A source of jitter samples in `[0, 1)`.
pub trait Jitter {
    /// Returns the next sample.
    fn sample(&mut self) -> f64;
}

/// Samples from the standard library's randomly keyed hasher, which is random enough to
/// spread retries and needs no extra crate.
#[derive(Debug, Default)]
pub struct RandomJitter {
    state: RandomState,
    counter: u64,
}

impl Jitter for RandomJitter {
    fn sample(&mut self) -> f64 {
        self.counter = self.counter.wrapping_add(1);
        // The top 53 bits fill an f64 mantissa exactly, so the result is below 1.0.
        let bits = self.state.hash_one(self.counter) >> 11;
        bits as f64 / (1u64 << 53) as f64
    }
}

/// The same sample every time, for tests and for turning jitter off.
#[derive(Debug, Clone, Copy)]
pub struct FixedJitter(pub f64);

impl Jitter for FixedJitter {
    fn sample(&mut self) -> f64 {
        self.0
    }
}

/// Retry state for one operation or one connection.
#[derive(Debug)]
pub struct Backoff<J = RandomJitter> {
    policy: BackoffPolicy,
    jitter: J,
    retries: u32,
}

impl Backoff<RandomJitter> {
    /// Creates the retry state for `policy` with random jitter.
    pub fn new(policy: BackoffPolicy) -> Self {
        Self::with_jitter(policy, RandomJitter::default())
    }
}

impl<J: Jitter> Backoff<J> {
    /// Creates the retry state for `policy` with the given jitter source.
    pub fn with_jitter(policy: BackoffPolicy, jitter: J) -> Self {
        Self {
            policy,
            jitter,
            retries: 0,
        }
    }

    /// Call after a failed attempt. Returns the delay before the next attempt, or `None`
    /// when `max_attempts` attempts have been made.
    pub fn next_delay(&mut self) -> Option<Duration> {
        let attempts_made = self.retries.saturating_add(1);
        if self
            .policy
            .max_attempts
            .is_some_and(|max| attempts_made >= max)
        {
            return None;
        }
        let delay = self.policy.delay(self.retries, self.jitter.sample());
        self.retries = attempts_made;
        Some(delay)
    }

    /// Sleeps for the next delay. Returns `false` at once, without sleeping, when no
    /// attempt is left.
    pub async fn wait(&mut self) -> bool {
        match self.next_delay() {
            Some(delay) => {
                tokio::time::sleep(delay).await;
                true
            }
            None => false,
        }
    }

    /// Starts the schedule again, for example once a reconnected stream delivers an event.
    pub fn reset(&mut self) {
        self.retries = 0;
    }

    /// Returns the number of retries handed out since the start or the last reset.
    pub fn retries(&self) -> u32 {
        self.retries
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn millis(values: &[u64]) -> Vec<Duration> {
        values.iter().map(|&ms| Duration::from_millis(ms)).collect()
    }

    fn schedule<J: Jitter>(backoff: &mut Backoff<J>, max: usize) -> Vec<Duration> {
        std::iter::from_fn(|| backoff.next_delay())
            .take(max)
            .collect()
    }

    #[test]
    fn per_container_schedule_without_jitter() {
        let mut backoff = Backoff::with_jitter(BackoffPolicy::PER_CONTAINER, FixedJitter(0.0));

        assert_eq!(schedule(&mut backoff, 10), millis(&[500, 1000, 2000, 4000]));
        assert_eq!(backoff.retries(), 4);
    }

    #[test]
    fn event_stream_schedule_caps_and_never_ends() {
        let mut backoff = Backoff::with_jitter(BackoffPolicy::EVENT_STREAM, FixedJitter(0.0));

        let delays = schedule(&mut backoff, 10);

        assert_eq!(
            delays,
            millis(&[250, 500, 1000, 2000, 4000, 8000, 15000, 15000, 15000, 15000])
        );
    }

    #[test]
    fn jitter_shortens_by_its_share() {
        let mut backoff = Backoff::with_jitter(BackoffPolicy::PER_CONTAINER, FixedJitter(0.5));

        assert_eq!(schedule(&mut backoff, 10), millis(&[375, 750, 1500, 3000]));
    }

    #[test]
    fn delay_clamps_sample_and_jitter() {
        let policy = BackoffPolicy {
            jitter: 3.0,
            ..BackoffPolicy::PER_CONTAINER
        };

        assert_eq!(policy.delay(0, -1.0), Duration::from_millis(500));
        assert_eq!(policy.delay(0, 2.0), Duration::ZERO);
    }

    #[test]
    fn delay_saturates_on_huge_retry() {
        let policy = BackoffPolicy::EVENT_STREAM;

        assert_eq!(policy.delay(u32::MAX, 0.0), Duration::from_secs(15));
    }

    #[test]
    fn single_attempt_policy_never_retries() {
        let policy = BackoffPolicy {
            max_attempts: Some(1),
            ..BackoffPolicy::PER_CONTAINER
        };
        let mut backoff = Backoff::new(policy);

        assert_eq!(backoff.next_delay(), None);
    }

    #[test]
    fn reset_restarts_schedule() {
        let mut backoff = Backoff::with_jitter(BackoffPolicy::PER_CONTAINER, FixedJitter(0.0));
        schedule(&mut backoff, 10);

        backoff.reset();

        assert_eq!(backoff.retries(), 0);
        assert_eq!(backoff.next_delay(), Some(Duration::from_millis(500)));
    }

    #[test]
    fn random_jitter_stays_in_range() {
        let mut jitter = RandomJitter::default();
        let samples: Vec<f64> = (0..1000).map(|_| jitter.sample()).collect();

        assert!(samples.iter().all(|s| (0.0..1.0).contains(s)));
        assert!(samples.iter().any(|&s| s < 0.5));
        assert!(samples.iter().any(|&s| s >= 0.5));
    }

    #[tokio::test]
    async fn wait_sleeps_then_stops() {
        let policy = BackoffPolicy {
            initial: Duration::from_millis(1),
            max_attempts: Some(3),
            ..BackoffPolicy::PER_CONTAINER
        };
        let mut backoff = Backoff::new(policy);

        assert!(backoff.wait().await);
        assert!(backoff.wait().await);
        assert!(!backoff.wait().await);
    }
}
