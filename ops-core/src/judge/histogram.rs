//! Latency histograms as the metrics sources give them: bucket bounds and counts.

use serde::{Deserialize, Serialize};

use super::bad;
use crate::Result;

/// The most buckets a histogram may have (Cloud Monitoring's distributions have up to 200).
pub const MAX_BUCKETS: usize = 4096;

/// Request latencies in buckets: `counts[i]` requests took at most `bounds_ms[i]` (and more
/// than `bounds_ms[i - 1]`); the last count, one more than there are bounds, took longer than
/// every bound.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    /// Upper bounds in milliseconds, strictly increasing, finite, not negative.
    pub bounds_ms: Vec<f64>,
    /// Requests per bucket: `bounds_ms.len() + 1` of them.
    pub counts: Vec<u64>,
}

impl Histogram {
    /// `InvalidInput` unless the shape is as documented on [`Histogram`].
    pub fn check(&self) -> Result<()> {
        if self.bounds_ms.len() > MAX_BUCKETS {
            return Err(bad(format!("more than {MAX_BUCKETS} latency buckets")));
        }
        if self.counts.len() != self.bounds_ms.len() + 1 {
            return Err(bad(format!(
                "{} latency counts for {} bounds: want one more count than bounds",
                self.counts.len(),
                self.bounds_ms.len()
            )));
        }
        if self.bounds_ms.iter().any(|b| !(b.is_finite() && *b >= 0.0))
            || self.bounds_ms.windows(2).any(|w| w[0] >= w[1])
        {
            return Err(bad(
                "latency bounds must be finite, not negative and strictly increasing",
            ));
        }
        self.total().map(|_| ())
    }

    /// All requests counted.
    pub fn total(&self) -> Result<u64> {
        self.counts
            .iter()
            .try_fold(0u64, |sum, c| sum.checked_add(*c))
            .ok_or_else(|| bad("latency counts overflow"))
    }

    /// Requests slower than the first bound at or above `threshold_ms` (the test is fixed
    /// before any data by the bucket layout, so rounding up keeps it valid). Zero when no
    /// bound reaches it.
    pub fn slower_than(&self, threshold_ms: f64) -> u64 {
        match self.bounds_ms.iter().position(|b| *b >= threshold_ms) {
            Some(i) => self
                .counts
                .get(i + 1..)
                .unwrap_or_default()
                .iter()
                .fold(0u64, |s, c| s.saturating_add(*c)),
            None => 0,
        }
    }
}
