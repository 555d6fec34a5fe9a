//! Request and error counts per deployment from the runtime-log stream, as a
//! [`MetricsSource`] for canary analysis and alert thresholds.
//!
//! Each request Vercel serves appears in the stream as one row with `source: request` and its
//! `responseStatusCode`; function output rows repeat their request's status and are not counted
//! again. A server error is a status of 500 or more. The stream carries no durations, so
//! latency is `Unsupported` (and [`MetricsSource::counts`] gives no histogram): a canary on
//! Vercel is judged on errors alone. Like [`VercelLogs`], the counts cover what the source has
//! read: keep one source alive across a canary's looks.

use async_trait::async_trait;
use ops_core::contracts::{
    Metric, MetricQuery, MetricReading, MetricsSource, RequestCounts, TimeWindow,
};
use ops_core::{Error, ErrorKind, Result};

use super::VercelLogs;

/// Request counts of a Vercel project's deployments, from their runtime logs.
#[derive(Debug, Clone)]
pub struct VercelRequests {
    logs: VercelLogs,
    name: String,
}

impl VercelRequests {
    /// Counts over what `logs` reads (share the source with the log queries of the same run).
    pub fn new(logs: VercelLogs) -> Self {
        let name = logs.name.replacen("vercel-logs", "vercel-requests", 1);
        Self { logs, name }
    }

    /// Reads the stream of each deployment `release` covers, then counts its request rows
    /// inside `window`.
    async fn tally(&self, release: Option<&str>, window: &TimeWindow) -> Result<RequestCounts> {
        let mut counts = RequestCounts {
            requests: 0,
            errors: 0,
            latency: None,
        };
        for deployment in self.logs.deployments(release).await? {
            match self.logs.follow(&deployment).await {
                // A deployment Vercel does not know served nothing.
                Err(e) if matches!(e.kind(), ErrorKind::NotFound { .. }) => continue,
                other => other?,
            };
            for row in self.logs.kept_rows(&deployment, window) {
                if row.is_request() {
                    counts.requests = counts.requests.saturating_add(1);
                    if row.status().is_some_and(|s| s >= 500) {
                        counts.errors = counts.errors.saturating_add(1);
                    }
                }
            }
        }
        Ok(counts)
    }
}

#[async_trait]
impl MetricsSource for VercelRequests {
    fn name(&self) -> &str {
        &self.name
    }

    /// The error ratio of one deployment (`release`) or of production; other metrics are
    /// `Unsupported`.
    async fn read(&self, query: &MetricQuery) -> Result<MetricReading> {
        query.validate()?;
        if query.metric != Metric::ErrorRatio {
            return Err(Error::unsupported(
                self.name.clone(),
                "read",
                format!(
                    "{:?}: Vercel's runtime logs carry status codes only",
                    query.metric
                ),
            ));
        }
        let c = self.tally(query.release.as_deref(), &query.window).await?;
        let wanted = query.min_samples.max(1);
        if c.requests < wanted {
            return Ok(MetricReading::InsufficientData {
                samples: c.requests,
                detail: format!(
                    "{} requests in the window, fewer than the {wanted} asked for",
                    c.requests
                ),
            });
        }
        Ok(MetricReading::Value {
            value: c.errors as f64 / c.requests as f64,
            samples: c.requests,
        })
    }

    async fn counts(&self, release: &str, window: &TimeWindow) -> Result<RequestCounts> {
        self.tally(Some(release), window).await
    }
}
