//! [`CanaryMetrics`]: a [`MetricsSource`] keyed by Deployment name (Prometheus with
//! `deployment="$release"` in its queries, for one) read by [`KubeCanary`] release id.

use std::sync::Arc;

use async_trait::async_trait;
use ops_core::Result;
use ops_core::contracts::{MetricQuery, MetricReading, MetricsSource, RequestCounts, TimeWindow};

use super::KubeCanary;

/// Reads `inner` with each release id (`web-green@1.2.0`) replaced by its slot's Deployment
/// (`web-green`): what the canary judge compares. Ids without `@` pass through unchanged.
#[derive(Clone)]
pub struct CanaryMetrics {
    inner: Arc<dyn MetricsSource>,
}

impl std::fmt::Debug for CanaryMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CanaryMetrics")
            .field("inner", &self.inner.name())
            .finish()
    }
}

/// The Deployment a release id names.
pub fn deployment_of(release: &str) -> &str {
    release.split_once('@').map_or(release, |(d, _)| d)
}

impl CanaryMetrics {
    /// `inner`, keyed by Deployment name.
    pub fn new(inner: Arc<dyn MetricsSource>) -> Self {
        Self { inner }
    }
}

impl KubeCanary {
    /// The judge's counts for this canary's releases from `inner`, keyed by Deployment name.
    pub fn metrics(&self, inner: Arc<dyn MetricsSource>) -> CanaryMetrics {
        CanaryMetrics::new(inner)
    }
}

#[async_trait]
impl MetricsSource for CanaryMetrics {
    fn name(&self) -> &str {
        self.inner.name()
    }

    async fn read(&self, query: &MetricQuery) -> Result<MetricReading> {
        let mut q = query.clone();
        q.release = q.release.map(|r| deployment_of(&r).to_string());
        self.inner.read(&q).await
    }

    async fn counts(&self, release: &str, window: &TimeWindow) -> Result<RequestCounts> {
        self.inner.counts(deployment_of(release), window).await
    }
}
