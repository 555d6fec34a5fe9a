//! [`MetricsSource`]: the numbers a runbook decides on (error ratio, latency, utilisation).

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::contracts::TimeWindow;
pub use crate::judge::{Histogram, RequestCounts};
use crate::{Error, Result};

/// What to measure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "metric")]
pub enum Metric {
    /// Failed requests / all requests (server errors, 5xx), from 0 to 1.
    ErrorRatio,
    /// Request latency at a percentile (`50.0`, `95.0`, `99.0`), in milliseconds.
    LatencyPercentile {
        /// The percentile, in (0, 100].
        percentile: f64,
    },
    /// CPU utilisation, from 0 to 1.
    CpuUtilisation,
    /// Memory utilisation, from 0 to 1.
    MemoryUtilisation,
    /// A source-specific metric by name (queue depth, pool use, a PromQL alias).
    Named {
        /// The name the source knows it by.
        name: String,
    },
}

/// A metric over a window, optionally for one release (to compare canary with stable).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricQuery {
    /// What to measure.
    pub metric: Metric,
    /// Over which window.
    pub window: TimeWindow,
    /// Only this release's traffic, where the source can tell releases apart.
    pub release: Option<String>,
    /// Fewer samples than this (requests, points) is [`MetricReading::InsufficientData`].
    pub min_samples: u64,
}

impl MetricQuery {
    /// Rejects a percentile outside (0, 100] and an empty named metric.
    pub fn validate(&self) -> Result<()> {
        match &self.metric {
            Metric::LatencyPercentile { percentile }
                if !(*percentile > 0.0 && *percentile <= 100.0) =>
            {
                Err(Error::invalid_input(
                    "ops-core",
                    "metric_query",
                    "percentile",
                    "must be in (0, 100]",
                ))
            }
            Metric::Named { name } if name.trim().is_empty() => Err(Error::invalid_input(
                "ops-core",
                "metric_query",
                "name",
                "must not be empty",
            )),
            _ => Ok(()),
        }
    }
}

/// A measured value, or the honest answer that there was too little data to say.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "reading")]
pub enum MetricReading {
    /// The value, and how many samples it rests on.
    Value {
        /// The value, in the metric's unit.
        value: f64,
        /// Requests or points behind it.
        samples: u64,
    },
    /// Too few samples to decide (no traffic yet): never a pass.
    InsufficientData {
        /// Samples seen.
        samples: u64,
        /// Why, for the report.
        detail: String,
    },
}

impl MetricReading {
    /// The value, when there is one.
    pub fn value(&self) -> Option<f64> {
        match self {
            MetricReading::Value { value, .. } => Some(*value),
            MetricReading::InsufficientData { .. } => None,
        }
    }
}

/// A source of metrics.
///
/// `# Behavior` names the cases of the testkit's metrics source suite
/// (`testkit::metrics_source_cases`).
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait MetricsSource: Send + Sync {
    /// The source's name, for reports.
    fn name(&self) -> &str;
    /// Measures one metric; metrics the source does not have are `Unsupported`.
    ///
    /// # Behavior
    /// - Known values read back (`known_values_read_back`).
    /// - Fewer samples than `min_samples` are never a value
    ///   (`too_few_samples_are_never_a_value`), and no data is not zero (`no_data_is_not_zero`).
    /// - A percentile outside 0–100 is `InvalidInput` (`an_impossible_percentile_is_invalid`).
    async fn read(&self, query: &MetricQuery) -> Result<MetricReading>;
    /// The requests `release` served over `window`: how many, how many failed (server errors),
    /// and their latencies as a histogram where the source has one. What the canary judge
    /// compares, canary against baseline over the same window.
    ///
    /// # Behavior
    /// The release's requests and errors, none of another release's, a well-formed histogram
    /// counting no more than the requests; `Unsupported` for a source that cannot count per
    /// release (the default body: a rollout then judges by thresholds and says so)
    /// (`counts_are_the_releases_requests_and_errors_or_unsupported`).
    async fn counts(&self, release: &str, window: &TimeWindow) -> Result<RequestCounts> {
        let _ = (release, window);
        Err(Error::unsupported(
            self.name().to_string(),
            "counts",
            "request counts per release",
        ))
    }
}
