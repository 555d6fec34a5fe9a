//! Time, injected. Everything in `ops` that reads the time or waits does it through a
//! [`Clock`], so retries, timeouts and bake times are tested on tokio's paused clock instead of
//! by sleeping. (A clippy `disallowed-methods` rule bans `SystemTime::now`, `Instant::now` and
//! `tokio::time::sleep` everywhere else.)

#![allow(clippy::disallowed_methods)] // the one place allowed to read the real time

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::time::Instant;

/// A boxed future returned by [`Clock::sleep`].
pub type Sleep = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// A source of wall time, monotonic time and sleeps.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The wall-clock time, for timestamps in reports and journals.
    fn now(&self) -> DateTime<Utc>;
    /// A monotonic instant, for measuring durations and deadlines.
    fn instant(&self) -> Instant;
    /// Waits for `duration`.
    fn sleep(&self, duration: Duration) -> Sleep;
}

/// A shareable clock.
pub type SharedClock = Arc<dyn Clock>;

/// The real time: `chrono::Utc::now` and tokio's timer.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
    fn instant(&self) -> Instant {
        Instant::now()
    }
    fn sleep(&self, duration: Duration) -> Sleep {
        Box::pin(tokio::time::sleep(duration))
    }
}

/// The default shared clock ([`SystemClock`]).
pub fn system_clock() -> SharedClock {
    Arc::new(SystemClock)
}

/// A clock for tests and rehearsals: wall time starts at a fixed point and advances with
/// tokio's clock, so under `tokio::time::pause` (or `#[tokio::test(start_paused = true)]`)
/// both wall and monotonic time move only when the runtime auto-advances past a sleep.
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// use ops_core::clock::{Clock, SimulatedClock};
/// use std::time::Duration;
/// let clock = SimulatedClock::starting_at("2026-01-01T00:00:00Z".parse().unwrap());
/// clock.sleep(Duration::from_secs(90)).await; // returns at once on a paused runtime
/// assert_eq!(clock.now().to_rfc3339(), "2026-01-01T00:01:30+00:00");
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct SimulatedClock {
    wall_start: DateTime<Utc>,
    mono_start: Instant,
}

impl SimulatedClock {
    /// A clock whose wall time is `wall_start` now.
    pub fn starting_at(wall_start: DateTime<Utc>) -> Self {
        Self {
            wall_start,
            mono_start: Instant::now(),
        }
    }
}

impl Clock for SimulatedClock {
    fn now(&self) -> DateTime<Utc> {
        let elapsed = Instant::now().saturating_duration_since(self.mono_start);
        self.wall_start + chrono::Duration::from_std(elapsed).unwrap_or(chrono::Duration::MAX)
    }
    fn instant(&self) -> Instant {
        Instant::now()
    }
    fn sleep(&self, duration: Duration) -> Sleep {
        Box::pin(tokio::time::sleep(duration))
    }
}

/// A clock for rehearsals people watch: real time runs `factor` times faster. A 15-minute bake
/// at factor 600 takes 1.5 s, so a whole canary rollout plays out in seconds while progress is
/// drawn as it happens. Wall and monotonic time stay consistent with each other; socket
/// timeouts (which are real time) are not scaled.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use ops_core::clock::{Clock, ScaledClock};
/// use std::time::Duration;
/// let clock = ScaledClock::starting_at(chrono::DateTime::UNIX_EPOCH, 1000.0).unwrap();
/// clock.sleep(Duration::from_secs(10)).await; // about 10 ms of real time
/// assert!(clock.now().timestamp() >= 10);
/// # }
/// ```
///
/// With [`ScaledClock::jump_beyond`], a sleep longer than a limit plays only the limit and
/// jumps the clock over the rest, so a 24-hour grace period does not hold up a rehearsal.
#[derive(Debug, Clone)]
pub struct ScaledClock {
    wall_start: DateTime<Utc>,
    mono_start: Instant,
    factor: f64,
    jump_beyond: Option<Duration>,
    jumped: Arc<std::sync::Mutex<Duration>>,
}

impl ScaledClock {
    /// The largest factor [`ScaledClock::starting_at`] accepts: a million (a year in about
    /// 32 seconds).
    pub const MAX_FACTOR: f64 = 1_000_000.0;

    /// A clock whose wall time is `wall_start` now and runs `factor` times faster than real
    /// time. `factor` must be from 1 to [`ScaledClock::MAX_FACTOR`].
    pub fn starting_at(wall_start: DateTime<Utc>, factor: f64) -> crate::Result<Self> {
        if !(factor.is_finite() && (1.0..=Self::MAX_FACTOR).contains(&factor)) {
            return Err(crate::Error::invalid_input(
                "clock",
                "ScaledClock::starting_at",
                "factor",
                format!("{factor} must be from 1 to {}", Self::MAX_FACTOR),
            ));
        }
        Ok(Self {
            wall_start,
            mono_start: Instant::now(),
            factor,
            jump_beyond: None,
            jumped: Default::default(),
        })
    }

    /// Sleeps longer than `limit` play `limit` (scaled) and jump the clock over the rest,
    /// for everyone sharing it.
    pub fn jump_beyond(mut self, limit: Duration) -> Self {
        self.jump_beyond = Some(limit);
        self
    }

    /// How many times faster than real time it runs.
    pub fn factor(&self) -> f64 {
        self.factor
    }

    fn elapsed(&self) -> Duration {
        let jumped = *self.jumped.lock().unwrap_or_else(|p| p.into_inner());
        let real = Instant::now().saturating_duration_since(self.mono_start);
        // Saturating throughout: a clock never panics, however long it runs or jumps.
        Duration::try_from_secs_f64(real.as_secs_f64() * self.factor)
            .unwrap_or(Duration::MAX)
            .saturating_add(jumped)
    }
}

impl Clock for ScaledClock {
    fn now(&self) -> DateTime<Utc> {
        chrono::Duration::from_std(self.elapsed())
            .ok()
            .and_then(|d| self.wall_start.checked_add_signed(d))
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }
    fn instant(&self) -> Instant {
        let elapsed = self.elapsed();
        self.mono_start
            .checked_add(elapsed)
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(100 * 365 * 86_400))
    }
    fn sleep(&self, duration: Duration) -> Sleep {
        let played = match self.jump_beyond {
            Some(limit) if duration > limit => {
                let mut jumped = self.jumped.lock().unwrap_or_else(|p| p.into_inner());
                *jumped = jumped.saturating_add(duration - limit);
                limit
            }
            _ => duration,
        };
        Box::pin(tokio::time::sleep(played.div_f64(self.factor)))
    }
}

/// Runs `fut` with a deadline in real time (tokio's timer); `None` when the deadline passed
/// first. For waits on a peer over a real socket (a Redis, a TCP port): how long the peer takes
/// has nothing to do with the injected clock, which may run 600 times faster in a rehearsal or
/// not at all in a test. (HTTP gets the same from reqwest's own timeout.)
pub async fn peer_timeout<F: Future>(limit: Duration, fut: F) -> Option<F::Output> {
    tokio::time::timeout(limit, fut).await.ok()
}

/// Runs `fut` with a deadline measured on `clock`; `None` when the deadline passed first.
pub async fn timeout<F: Future>(clock: &dyn Clock, limit: Duration, fut: F) -> Option<F::Output> {
    tokio::select! {
        out = fut => Some(out),
        _ = clock.sleep(limit) => None,
    }
}

/// A clock whose time moves only when someone sleeps on it: a sleep returns at once and
/// advances both wall and monotonic time by its length, and every sleep is recorded. For tests
/// that talk to real sockets, where a paused tokio clock would also fire the I/O timeouts.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use ops_core::clock::{Clock, ManualClock};
/// use std::time::Duration;
/// let clock = ManualClock::starting_at(chrono::DateTime::UNIX_EPOCH);
/// clock.sleep(Duration::from_secs(3)).await;
/// assert_eq!(clock.sleeps(), vec![Duration::from_secs(3)]);
/// assert_eq!(clock.now().timestamp(), 3);
/// # }
/// ```
#[derive(Debug)]
pub struct ManualClock {
    wall_start: DateTime<Utc>,
    mono_start: Instant,
    state: std::sync::Mutex<ManualState>,
}

#[derive(Debug, Default)]
struct ManualState {
    offset: Duration,
    sleeps: Vec<Duration>,
}

impl ManualClock {
    /// A clock whose wall time is `wall_start` until someone sleeps.
    pub fn starting_at(wall_start: DateTime<Utc>) -> Self {
        Self {
            wall_start,
            mono_start: Instant::now(),
            state: Default::default(),
        }
    }

    /// Every sleep so far, in order.
    pub fn sleeps(&self) -> Vec<Duration> {
        self.lock().sleeps.clone()
    }

    /// Moves time forward without recording a sleep.
    pub fn advance(&self, by: Duration) {
        let mut s = self.lock();
        s.offset = s.offset.saturating_add(by);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ManualState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        let offset = self.lock().offset;
        chrono::Duration::from_std(offset)
            .ok()
            .and_then(|d| self.wall_start.checked_add_signed(d))
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }
    fn instant(&self) -> Instant {
        let offset = self.lock().offset;
        self.mono_start
            .checked_add(offset)
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(100 * 365 * 86_400))
    }
    fn sleep(&self, duration: Duration) -> Sleep {
        {
            let mut s = self.lock();
            s.offset = s.offset.saturating_add(duration);
            s.sleeps.push(duration);
        }
        Box::pin(tokio::task::yield_now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_scaled_clock_runs_faster_than_real_time() {
        let start = DateTime::UNIX_EPOCH;
        let clock = ScaledClock::starting_at(start, 600.0).unwrap();
        let (real, scaled) = (Instant::now(), clock.instant());
        clock.sleep(Duration::from_secs(60)).await;
        assert_eq!(real.elapsed(), Duration::from_millis(100));
        assert_eq!(clock.instant() - scaled, Duration::from_secs(60));
        assert_eq!(clock.now(), start + chrono::Duration::seconds(60));
    }

    #[tokio::test(start_paused = true)]
    async fn a_long_sleep_jumps_the_clock() {
        let start = DateTime::UNIX_EPOCH;
        let clock = ScaledClock::starting_at(start, 600.0)
            .unwrap()
            .jump_beyond(Duration::from_secs(3600));
        let real = Instant::now();
        clock.sleep(Duration::from_secs(24 * 3600)).await;
        assert_eq!(real.elapsed(), Duration::from_secs(6), "one hour played");
        assert_eq!(clock.now(), start + chrono::Duration::hours(24));
        clock.sleep(Duration::from_secs(60)).await;
        assert_eq!(
            real.elapsed(),
            Duration::from_millis(6100),
            "short sleeps play in full"
        );
    }

    #[test]
    fn a_scaled_clock_never_runs_slower() {
        for bad in [0.5, 0.0, -1.0, f64::NAN, f64::INFINITY] {
            let err = ScaledClock::starting_at(DateTime::UNIX_EPOCH, bad).unwrap_err();
            assert!(
                matches!(err.kind(), crate::ErrorKind::InvalidInput { field, .. } if field == "factor"),
                "{bad}: {err}"
            );
        }
    }
}
