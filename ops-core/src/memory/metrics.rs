//! [`MemoryMetricsSource`]: metrics computed from requests and samples recorded in memory.

use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::lock;
use crate::contracts::{
    Histogram, Metric, MetricQuery, MetricReading, MetricsSource, RequestCounts, TimeWindow,
};
use crate::{Error, Result};

const PROVIDER: &str = "memory-metrics";

#[derive(Debug, Clone)]
struct Request {
    at: DateTime<Utc>,
    release: Option<String>,
    status: u16,
    latency_ms: f64,
}

#[derive(Debug, Clone)]
struct Sample {
    at: DateTime<Utc>,
    release: Option<String>,
    metric: Metric,
    value: f64,
}

/// Metrics from recorded requests (status and latency → error ratio, latency percentiles) and
/// recorded samples (CPU, memory, named gauges → their mean over the window). Fewer requests
/// or samples than the query's `min_samples` is [`MetricReading::InsufficientData`].
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> ops_core::Result<()> {
/// use ops_core::memory::MemoryMetricsSource;
/// use ops_core::contracts::{Metric, MetricQuery, MetricsSource, TimeWindow};
/// let m = MemoryMetricsSource::new("app");
/// let at: chrono::DateTime<chrono::Utc> = "2026-01-01T00:00:30Z".parse().unwrap();
/// for i in 0..100 {
///     m.record_request(at, Some("rev-2"), if i < 3 { 503 } else { 200 }, 20.0);
/// }
/// let window = TimeWindow::new("2026-01-01T00:00:00Z".parse().unwrap(), "2026-01-01T00:01:00Z".parse().unwrap())?;
/// let q = MetricQuery { metric: Metric::ErrorRatio, window, release: Some("rev-2".into()), min_samples: 50 };
/// assert_eq!(m.read(&q).await?.value(), Some(0.03));
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct MemoryMetricsSource {
    name: String,
    requests: Mutex<Vec<Request>>,
    samples: Mutex<Vec<Sample>>,
}

impl MemoryMetricsSource {
    /// An empty source.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            requests: Mutex::new(Vec::new()),
            samples: Mutex::new(Vec::new()),
        }
    }

    /// Records one served request.
    pub fn record_request(
        &self,
        at: DateTime<Utc>,
        release: Option<&str>,
        status: u16,
        latency_ms: f64,
    ) {
        lock(&self.requests).push(Request {
            at,
            release: release.map(str::to_string),
            status,
            latency_ms,
        });
    }

    /// Records a sample of a gauge: CPU or memory utilisation (0 to 1), or a named metric.
    /// Error ratio and latency come from requests and are rejected here.
    pub fn record_sample(
        &self,
        at: DateTime<Utc>,
        release: Option<&str>,
        metric: Metric,
        value: f64,
    ) -> Result<()> {
        if matches!(
            metric,
            Metric::ErrorRatio | Metric::LatencyPercentile { .. }
        ) {
            return Err(Error::invalid_input(
                PROVIDER,
                "record_sample",
                "metric",
                "error ratio and latency come from record_request",
            ));
        }
        if !value.is_finite() {
            return Err(Error::invalid_input(
                PROVIDER,
                "record_sample",
                "value",
                "must be finite",
            ));
        }
        lock(&self.samples).push(Sample {
            at,
            release: release.map(str::to_string),
            metric,
            value,
        });
        Ok(())
    }
}

/// The latency buckets of [`MemoryMetricsSource::counts`], in ms (Prometheus client libraries'
/// default buckets).
pub const LATENCY_BOUNDS_MS: [f64; 11] = [
    5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0,
];

fn insufficient(samples: u64, min: u64) -> MetricReading {
    MetricReading::InsufficientData {
        samples,
        detail: format!("{samples} samples in the window, {min} needed"),
    }
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[async_trait]
impl MetricsSource for MemoryMetricsSource {
    fn name(&self) -> &str {
        &self.name
    }

    /// Counts the recorded requests of `release` in `window`; server errors are statuses of
    /// 500 and above; latencies go into [`LATENCY_BOUNDS_MS`].
    async fn counts(&self, release: &str, window: &TimeWindow) -> Result<RequestCounts> {
        let requests = lock(&self.requests);
        let mut counts = RequestCounts {
            latency: Some(Histogram {
                bounds_ms: LATENCY_BOUNDS_MS.to_vec(),
                counts: vec![0; LATENCY_BOUNDS_MS.len() + 1],
            }),
            ..RequestCounts::default()
        };
        let scoped = requests
            .iter()
            .filter(|r| window.contains(r.at) && r.release.as_deref() == Some(release));
        for r in scoped {
            counts.requests += 1;
            counts.errors += u64::from(r.status >= 500);
            if let Some(h) = counts.latency.as_mut() {
                let bucket = LATENCY_BOUNDS_MS
                    .iter()
                    .position(|b| r.latency_ms <= *b)
                    .unwrap_or(LATENCY_BOUNDS_MS.len());
                h.counts[bucket] += 1;
            }
        }
        Ok(counts)
    }

    async fn read(&self, q: &MetricQuery) -> Result<MetricReading> {
        q.validate()?;
        let in_scope = |at: DateTime<Utc>, release: &Option<String>| {
            q.window.contains(at)
                && q.release
                    .as_ref()
                    .is_none_or(|r| release.as_ref() == Some(r))
        };
        match &q.metric {
            Metric::ErrorRatio | Metric::LatencyPercentile { .. } => {
                let requests = lock(&self.requests);
                let scoped: Vec<&Request> = requests
                    .iter()
                    .filter(|r| in_scope(r.at, &r.release))
                    .collect();
                let n = scoped.len() as u64;
                if n == 0 || n < q.min_samples {
                    return Ok(insufficient(n, q.min_samples));
                }
                let value = match q.metric {
                    Metric::LatencyPercentile { percentile: p } => {
                        let mut lat: Vec<f64> = scoped.iter().map(|r| r.latency_ms).collect();
                        lat.sort_by(f64::total_cmp);
                        percentile(&lat, p)
                    }
                    _ => scoped.iter().filter(|r| r.status >= 500).count() as f64 / n as f64,
                };
                Ok(MetricReading::Value { value, samples: n })
            }
            metric => {
                let samples = lock(&self.samples);
                let values: Vec<f64> = samples
                    .iter()
                    .filter(|s| &s.metric == metric && in_scope(s.at, &s.release))
                    .map(|s| s.value)
                    .collect();
                let n = values.len() as u64;
                if n == 0 || n < q.min_samples {
                    return Ok(insufficient(n, q.min_samples));
                }
                Ok(MetricReading::Value {
                    value: values.iter().sum::<f64>() / n as f64,
                    samples: n,
                })
            }
        }
    }
}
