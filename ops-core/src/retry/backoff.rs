//! Decorrelated-jitter backoff (as in the AWS architecture blog and `object_store`).

use std::time::Duration;

/// Produces waits between attempts: each is random between `base` and three times the
/// previous, capped at `cap`.
#[derive(Debug)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    prev: Duration,
    rng: fastrand::Rng,
}

impl Backoff {
    /// A backoff between `base` and `cap`.
    pub fn new(base: Duration, cap: Duration) -> Self {
        Self::with_rng(base, cap, fastrand::Rng::new())
    }

    /// A backoff with a seeded random source (for reproducible tests).
    pub fn with_rng(base: Duration, cap: Duration, rng: fastrand::Rng) -> Self {
        Self {
            base,
            cap: cap.max(base),
            prev: base,
            rng,
        }
    }

    /// The next wait.
    pub fn next_wait(&mut self) -> Duration {
        let lo = self.base.as_secs_f64();
        let hi = (self.prev.as_secs_f64() * 3.0).max(lo);
        let pick = lo + (hi - lo) * self.rng.f64();
        let wait = Duration::from_secs_f64(pick).min(self.cap);
        self.prev = wait;
        wait
    }
}
