//! The primary rate limit (`x-ratelimit-remaining` / `x-ratelimit-reset`), as GitHub last
//! reported it. When it is exhausted the next call waits for the reset instead of spending a
//! request on a certain 403.

use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use ops_core::clock::SharedClock;
use ops_core::{Error, ErrorKind, Result};
use reqwest::header::HeaderMap;

/// The last reported primary rate limit.
#[derive(Debug, Default)]
pub struct RateLimit {
    state: Mutex<Option<(u64, DateTime<Utc>)>>,
}

impl RateLimit {
    /// Requests left in the window and when it resets, as last reported.
    pub fn last(&self) -> Option<(u64, DateTime<Utc>)> {
        *self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records the headers of a response.
    pub fn observe(&self, headers: &HeaderMap) {
        let get = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<i64>().ok())
        };
        if let (Some(remaining), Some(reset)) =
            (get("x-ratelimit-remaining"), get("x-ratelimit-reset"))
            && let (Ok(remaining), Some(reset)) = (
                u64::try_from(remaining),
                DateTime::<Utc>::from_timestamp(reset, 0),
            )
        {
            *self.state.lock().unwrap_or_else(|e| e.into_inner()) = Some((remaining, reset));
        }
    }

    /// Waits for the reset when the limit is exhausted, up to `max_wait`; beyond it fails with
    /// `RateLimited` without sending anything.
    pub async fn wait_if_exhausted(
        &self,
        clock: &SharedClock,
        max_wait: Duration,
        operation: &'static str,
    ) -> Result<()> {
        let Some((0, reset)) = self.last() else {
            return Ok(());
        };
        let wait = (reset - clock.now()).to_std().unwrap_or(Duration::ZERO);
        if wait.is_zero() {
            return Ok(());
        }
        if wait > max_wait {
            return Err(Error::new(
                "github",
                operation,
                ErrorKind::RateLimited {
                    retry_after: Some(wait),
                },
            ));
        }
        tracing::info!(
            ?wait,
            operation,
            "GitHub rate limit exhausted; waiting for the reset"
        );
        clock.sleep(wait).await;
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if *state == Some((0, reset)) {
            *state = None;
        }
        Ok(())
    }
}
