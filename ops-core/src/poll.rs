//! Waiting for something to finish: a build, a long-running operation, a workflow run, a
//! promotion. One loop for every provider, on the injected clock: look at the state, stop when
//! it is final, otherwise wait (a fixed or growing interval, never past the deadline) and read
//! it again.
//!
//! ```
//! # async fn demo() -> ops_core::Result<()> {
//! use std::time::Duration;
//! use ops_core::clock::ManualClock;
//! use ops_core::poll::{Every, Polled, poll_until};
//! let clock = ManualClock::starting_at("2026-11-23T09:00:00Z".parse().unwrap());
//! let outcome = poll_until(
//!     &clock,
//!     Duration::from_secs(60),
//!     Every::fixed(Duration::from_secs(5)),
//!     0u32,                                        // the state as first seen
//!     |n| Ok((*n >= 3).then_some(*n)),             // final yet?
//!     |n| async move { Ok(n + 1) },                // read it again
//! )
//! .await?;
//! assert!(matches!(outcome, Polled::Done(3)));
//! # Ok(()) }
//! ```

use std::future::Future;
use std::time::Duration;

use crate::clock::Clock;
use crate::{Error, ErrorKind, Result};

/// How long to wait between looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Every {
    /// The first wait.
    pub first: Duration,
    /// The longest wait: each wait is half as long again as the one before, up to this.
    pub max: Duration,
}

impl Every {
    /// The same wait every time.
    pub fn fixed(every: Duration) -> Self {
        Self {
            first: every,
            max: every,
        }
    }

    /// `first`, then half as long again each time, up to `max` (long-running operations).
    pub fn growing(first: Duration, max: Duration) -> Self {
        Self {
            first,
            max: max.max(first),
        }
    }

    fn next(&self, wait: Duration) -> Duration {
        wait.saturating_add(wait / 2).min(self.max)
    }
}

/// How polling ended, when no look failed.
#[derive(Debug, Clone, PartialEq)]
pub enum Polled<T, S> {
    /// The state became final and gave this.
    Done(T),
    /// The deadline passed; the last state seen (the work itself may go on).
    TimedOut(S),
}

impl<T, S> Polled<T, S> {
    /// The result, or a [`ErrorKind::Timeout`] after `deadline` for `provider`'s `operation`.
    pub fn or_timeout(
        self,
        provider: &'static str,
        operation: &'static str,
        deadline: Duration,
    ) -> Result<T> {
        match self {
            Polled::Done(t) => Ok(t),
            Polled::TimedOut(_) => Err(Error::new(
                provider,
                operation,
                ErrorKind::Timeout { after: deadline },
            )),
        }
    }
}

/// Looks at `initial`, and until `check` finds it final or `deadline` has passed since the
/// call, waits and reads the state again with `refresh`. An error from `check` or `refresh`
/// ends the polling with that error. The first look costs no request, so a caller that already
/// holds the state (a creation's reply) passes it as `initial`; one that does not, reads it
/// first.
pub async fn poll_until<S, T, C, R, Fut>(
    clock: &dyn Clock,
    deadline: Duration,
    every: Every,
    initial: S,
    mut check: C,
    mut refresh: R,
) -> Result<Polled<T, S>>
where
    C: FnMut(&S) -> Result<Option<T>>,
    R: FnMut(S) -> Fut,
    Fut: Future<Output = Result<S>>,
{
    let started = clock.instant();
    let mut state = initial;
    let mut wait = every.first;
    loop {
        if let Some(done) = check(&state)? {
            return Ok(Polled::Done(done));
        }
        let elapsed = clock.instant().saturating_duration_since(started);
        if elapsed >= deadline {
            return Ok(Polled::TimedOut(state));
        }
        clock.sleep(wait.min(deadline - elapsed)).await;
        wait = every.next(wait);
        state = refresh(state).await?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    fn clock() -> ManualClock {
        ManualClock::starting_at("2026-11-23T09:00:00Z".parse().unwrap())
    }

    #[tokio::test]
    async fn waits_grow_by_half_up_to_the_max_and_never_past_the_deadline() {
        let clock = clock();
        let outcome = poll_until(
            &clock,
            Duration::from_secs(20),
            Every::growing(Duration::from_secs(2), Duration::from_secs(5)),
            (),
            |_| Ok(None::<()>),
            |s| async move { Ok(s) },
        )
        .await
        .unwrap();
        assert_eq!(outcome, Polled::TimedOut(()));
        let ms: Vec<u128> = clock.sleeps().iter().map(Duration::as_millis).collect();
        assert_eq!(ms, [2000, 3000, 4500, 5000, 5000, 500]);
    }

    #[tokio::test]
    async fn a_final_first_state_costs_no_wait_and_errors_end_the_polling() {
        let clock = clock();
        let done = poll_until(
            &clock,
            Duration::from_secs(5),
            Every::fixed(Duration::from_secs(1)),
            7,
            |n| Ok(Some(*n)),
            |n| async move { Ok(n) },
        )
        .await
        .unwrap();
        assert_eq!(done, Polled::Done(7));
        assert!(clock.sleeps().is_empty());
        let err = poll_until(
            &clock,
            Duration::from_secs(5),
            Every::fixed(Duration::from_secs(1)),
            0,
            |_| Ok(None::<()>),
            |_| async { Err::<i32, _>(Error::new("t", "read", ErrorKind::Unauthorized)) },
        )
        .await
        .unwrap_err();
        assert!(matches!(err.kind(), ErrorKind::Unauthorized));
        let timeout = Polled::<(), ()>::TimedOut(())
            .or_timeout("t", "build", Duration::from_secs(5))
            .unwrap_err();
        assert!(matches!(timeout.kind(), ErrorKind::Timeout { .. }));
    }
}
