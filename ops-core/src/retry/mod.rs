//! Retry with backoff, shared by the HTTP plumbing and the runbook engine.
//!
//! - Decorrelated jitter (`sleep = min(cap, random(base, prev * 3))`), so many clients backing
//!   off at once spread out.
//! - A total time cap: no wait starts that would end past `max_elapsed`.
//! - A server's `Retry-After` is honoured, clamped to `max_retry_after`.
//! - A per-attempt timeout sits inside the retry (tower's order), so a hung attempt is one failed
//!   attempt, not the end of the call.
//! - Only idempotent work is retried after it may have taken effect; non-idempotent work is
//!   retried only when the error proves it did not run (throttled, or never sent).

mod backoff;

use std::future::Future;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use backoff::Backoff;

use crate::clock::Clock;
use crate::{Error, ErrorKind, Result};

/// Whether repeating an operation is harmless.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Idempotency {
    /// Running it twice has the same effect as once (reads, PUT of a full state, DELETE, and
    /// writes that carry an idempotency key or request id).
    Idempotent,
    /// Running it twice may do it twice (POST without a request id).
    NotIdempotent,
}

/// How to retry.
///
/// ```
/// use ops_core::retry::RetryPolicy;
/// use std::time::Duration;
/// let p = RetryPolicy { max_attempts: 3, ..RetryPolicy::default() };
/// assert_eq!(p.max_elapsed, Duration::from_secs(60));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (1 = no retry).
    pub max_attempts: u32,
    /// The smallest wait between attempts.
    #[serde(with = "crate::serde_duration")]
    pub initial_backoff: Duration,
    /// The largest computed wait between attempts.
    #[serde(with = "crate::serde_duration")]
    pub max_backoff: Duration,
    /// No wait starts that would end later than this after the first attempt began.
    #[serde(with = "crate::serde_duration")]
    pub max_elapsed: Duration,
    /// The longest server-requested wait (`Retry-After`) waited out. A longer one is clamped
    /// to this for an outage (503), and ends the retries for a rate limit (429, or a 403 with
    /// an exhausted quota), whose error carries the wait, rather than asking too early.
    #[serde(with = "crate::serde_duration")]
    pub max_retry_after: Duration,
    /// A deadline for each attempt; `None` leaves it to the operation.
    #[serde(with = "crate::config::duration::secs::option")]
    pub attempt_timeout: Option<Duration>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(15),
            max_elapsed: Duration::from_secs(60),
            max_retry_after: Duration::from_secs(60),
            attempt_timeout: None,
        }
    }
}

impl RetryPolicy {
    /// One attempt, no retry.
    pub fn never() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// Rejects zero attempts and a backoff range that is upside down.
    pub fn validate(&self) -> Result<()> {
        let invalid = |f: &str, r: &str| Error::invalid_input("ops-core", "retry_policy", f, r);
        if self.max_attempts == 0 {
            return Err(invalid("max_attempts", "must be at least 1"));
        }
        if self.initial_backoff > self.max_backoff {
            return Err(invalid("initial_backoff", "is greater than max_backoff"));
        }
        if self.attempt_timeout.is_some_and(|t| t.is_zero()) {
            return Err(invalid("attempt_timeout", "must be positive"));
        }
        Ok(())
    }

    /// A backoff between this policy's `initial_backoff` and `max_backoff`.
    pub fn backoff(&self) -> Backoff {
        Backoff::new(self.initial_backoff, self.max_backoff)
    }

    /// How long to wait before trying again after `err`: the server's `Retry-After` (an
    /// outage's clamped to `max_retry_after`), else the next wait of `backoff`. `None` when a
    /// rate limit asks for longer than `max_retry_after`: a quota's window is a fact, not an
    /// estimate, so coming back early is a request known to fail. For loops with their own
    /// budget (a resumable upload) that still wait the way every retry does.
    pub fn wait_after(&self, err: &Error, backoff: &mut Backoff) -> Option<Duration> {
        let computed = backoff.next_wait();
        match err.retry_after() {
            Some(asked)
                if asked > self.max_retry_after
                    && matches!(err.kind(), ErrorKind::RateLimited { .. }) =>
            {
                None
            }
            // An outage's estimate is clamped: the service may be back sooner.
            Some(asked) => Some(asked.min(self.max_retry_after)),
            None => Some(computed),
        }
    }

    /// Runs `op` until it succeeds, fails in a way that must not be retried, or the policy is
    /// exhausted; returns the last error then.
    pub async fn run<T, F, Fut>(
        &self,
        clock: &dyn Clock,
        idempotency: Idempotency,
        op: F,
    ) -> Result<T>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        self.run_observed(clock, idempotency, op, |_| {}).await
    }

    /// [`RetryPolicy::run`], calling `on_retry` before each wait (for journals and progress).
    pub async fn run_observed<T, F, Fut, O>(
        &self,
        clock: &dyn Clock,
        idempotency: Idempotency,
        mut op: F,
        mut on_retry: O,
    ) -> Result<T>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<T>>,
        O: FnMut(&RetryEvent<'_>),
    {
        let start = clock.instant();
        let mut backoff = self.backoff();
        let mut attempt = 1u32;
        loop {
            let outcome = match self.attempt_timeout {
                Some(limit) => match crate::clock::timeout(clock, limit, op(attempt)).await {
                    Some(r) => r,
                    None => Err(Error::new(
                        "ops-core",
                        "retry",
                        ErrorKind::Timeout { after: limit },
                    )),
                },
                None => op(attempt).await,
            };
            let err = match outcome {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            if attempt >= self.max_attempts || !should_retry(&err, idempotency) {
                return Err(err);
            }
            let Some(wait) = self.wait_after(&err, &mut backoff) else {
                return Err(err);
            };
            let elapsed = clock.instant().saturating_duration_since(start);
            if elapsed + wait > self.max_elapsed {
                return Err(err);
            }
            on_retry(&RetryEvent {
                attempt,
                wait,
                error: &err,
            });
            tracing::debug!(attempt, wait_ms = wait.as_millis() as u64, error = %err, "retrying");
            clock.sleep(wait).await;
            attempt += 1;
        }
    }
}

/// Told to [`RetryPolicy::run_observed`]'s observer before each wait.
#[derive(Debug)]
pub struct RetryEvent<'a> {
    /// The attempt that failed (1-based).
    pub attempt: u32,
    /// How long until the next attempt.
    pub wait: Duration,
    /// Why it failed.
    pub error: &'a Error,
}

/// Whether `err` may be retried for work of this `idempotency`.
pub fn should_retry(err: &Error, idempotency: Idempotency) -> bool {
    match idempotency {
        Idempotency::Idempotent => err.is_retryable(),
        // Throttled or never sent: the work did not happen, so trying again cannot repeat it.
        Idempotency::NotIdempotent => {
            matches!(err.kind(), ErrorKind::RateLimited { .. }) || err.was_not_sent()
        }
    }
}

#[cfg(test)]
mod tests;
