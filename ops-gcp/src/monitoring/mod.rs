//! Cloud Monitoring v3 `timeSeries.list` behind [`MetricsSource`], for Cloud Run services:
//!
//! | [`Metric`] | metric type | how |
//! |---|---|---|
//! | `ErrorRatio` | `run.googleapis.com/request_count` | `ALIGN_DELTA`, summed by `response_code_class`; `5xx` / all |
//! | `LatencyPercentile` | `run.googleapis.com/request_latencies` (ms) | `ALIGN_DELTA` distributions, merged, percentile interpolated in buckets |
//! | `CpuUtilisation` | `run.googleapis.com/container/cpu/utilizations` | mean of the merged distributions (0 to 1) |
//! | `MemoryUtilisation` | `run.googleapis.com/container/memory/utilizations` | mean of the merged distributions (0 to 1) |
//! | `Named { name }` | `name` as given | `ALIGN_MEAN`, `REDUCE_MEAN`; mean of the points |
//!
//! A query for one release adds `resource.labels.revision_name`, so a canary is compared with
//! the stable revision. Samples are requests (error ratio, latency), values (utilisation) or
//! points (named).

pub mod distribution;

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use ops_core::contracts::{
    Metric, MetricQuery, MetricReading, MetricsSource, RequestCounts, TimeWindow,
};
use ops_core::{Error, Result};
use serde::Deserialize;
use serde_json::Value;

use crate::client::{GcpClient, collect_pages};
use distribution::{Distribution, histogram, mean, percentile};

/// Request count by response code.
pub const REQUEST_COUNT: &str = "run.googleapis.com/request_count";
/// Request latency distribution, in milliseconds.
pub const REQUEST_LATENCIES: &str = "run.googleapis.com/request_latencies";
/// Container CPU utilisation distribution.
pub const CPU_UTILIZATIONS: &str = "run.googleapis.com/container/cpu/utilizations";
/// Container memory utilisation distribution.
pub const MEMORY_UTILIZATIONS: &str = "run.googleapis.com/container/memory/utilizations";

/// Running container instances (a gauge, labelled `state`: `active` or `idle`); read as
/// `Metric::Named { name: INSTANCE_COUNT }` to confirm a stop.
pub const INSTANCE_COUNT: &str = "run.googleapis.com/container/instance_count";

/// The most time series one reading collects (one per revision, or per group when reduced:
/// far fewer in practice).
const MAX_SERIES: usize = 10_000;

/// Metrics of one Cloud Run service.
#[derive(Debug, Clone)]
pub struct CloudMonitoring {
    client: GcpClient,
    service: String,
    name: String,
}

/// One `timeSeries.list` request, as its query parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeriesRequest {
    /// The monitoring filter.
    pub filter: String,
    /// `ALIGN_…`.
    pub aligner: &'static str,
    /// `REDUCE_…`, if series are combined on the server.
    pub reducer: Option<&'static str>,
    /// Fields kept apart by the reducer.
    pub group_by: Option<&'static str>,
}

impl CloudMonitoring {
    /// Metrics of the Cloud Run service `service` in the client's project.
    pub fn new(client: GcpClient, service: impl Into<String>) -> Result<Self> {
        let service = service.into();
        ops_core::contracts::validate_name("gcp", "cloud_monitoring", "service", &service)?;
        Ok(Self {
            name: format!("cloud-monitoring:{service}"),
            client,
            service,
        })
    }

    /// The request a query becomes.
    pub fn request_for(&self, query: &MetricQuery) -> SeriesRequest {
        let (metric_type, aligner, reducer, group_by) = match &query.metric {
            Metric::ErrorRatio => (
                REQUEST_COUNT,
                "ALIGN_DELTA",
                Some("REDUCE_SUM"),
                Some("metric.labels.response_code_class"),
            ),
            Metric::LatencyPercentile { .. } => (REQUEST_LATENCIES, "ALIGN_DELTA", None, None),
            Metric::CpuUtilisation => (CPU_UTILIZATIONS, "ALIGN_DELTA", None, None),
            Metric::MemoryUtilisation => (MEMORY_UTILIZATIONS, "ALIGN_DELTA", None, None),
            Metric::Named { name } => {
                return SeriesRequest {
                    filter: self.filter(name, query.release.as_deref()),
                    aligner: "ALIGN_MEAN",
                    reducer: Some("REDUCE_MEAN"),
                    group_by: None,
                };
            }
        };
        SeriesRequest {
            filter: self.filter(metric_type, query.release.as_deref()),
            aligner,
            reducer,
            group_by,
        }
    }

    fn filter(&self, metric_type: &str, release: Option<&str>) -> String {
        let mut f = format!(
            "metric.type=\"{metric_type}\" AND resource.type=\"cloud_run_revision\" AND \
             resource.labels.service_name=\"{}\"",
            self.service
        );
        if let Some(r) = release {
            f.push_str(&format!(" AND resource.labels.revision_name=\"{r}\""));
        }
        f
    }

    async fn series(&self, query: &MetricQuery, req: &SeriesRequest) -> Result<Vec<TimeSeries>> {
        let cfg = self.client.config();
        let path = format!("v3/projects/{}/timeSeries", cfg.project);
        let period = query.window.duration().as_secs().max(60);
        let listed = collect_pages(MAX_SERIES, |token: Option<String>| {
            let path = &path;
            async move {
                let mut url = self.client.url(&cfg.endpoints.monitoring, path)?;
                {
                    let mut q = url.query_pairs_mut();
                    q.append_pair("filter", &req.filter)
                        .append_pair("interval.startTime", &rfc3339(query.window.start))
                        .append_pair("interval.endTime", &rfc3339(query.window.end))
                        .append_pair("aggregation.alignmentPeriod", &format!("{period}s"))
                        .append_pair("aggregation.perSeriesAligner", req.aligner)
                        // Required by the official description (FULL: points, not only headers).
                        .append_pair("view", "FULL");
                    if let Some(r) = req.reducer {
                        q.append_pair("aggregation.crossSeriesReducer", r);
                    }
                    if let Some(g) = req.group_by {
                        q.append_pair("aggregation.groupByFields", g);
                    }
                    if let Some(t) = &token {
                        q.append_pair("pageToken", t);
                    }
                }
                let page: SeriesPage = self.client.get("list_time_series", url, path).await?;
                Ok((page.time_series, page.next_page_token))
            }
        })
        .await?;
        Ok(listed)
    }
}

#[async_trait]
impl MetricsSource for CloudMonitoring {
    fn name(&self) -> &str {
        &self.name
    }

    /// `request_count` by `response_code_class` (`5xx` are the errors) and the merged
    /// `request_latencies` distributions of revision `release` over `window`: two
    /// `timeSeries.list` calls. The histogram is left out when the distributions do not share
    /// one bucket layout.
    async fn counts(&self, release: &str, window: &TimeWindow) -> Result<RequestCounts> {
        let query = |metric| MetricQuery {
            metric,
            window: *window,
            release: Some(release.to_string()),
            min_samples: 0,
        };
        let q = query(Metric::ErrorRatio);
        let (errors, requests) = error_counts(&self.series(&q, &self.request_for(&q)).await?)?;
        let q = query(Metric::LatencyPercentile { percentile: 50.0 });
        let dists = distributions(&self.series(&q, &self.request_for(&q)).await?)?;
        Ok(RequestCounts {
            requests,
            errors,
            latency: histogram(&dists),
        })
    }

    async fn read(&self, query: &MetricQuery) -> Result<MetricReading> {
        query.validate()?;
        let req = self.request_for(query);
        let series = self.series(query, &req).await?;
        let (value, samples) = match &query.metric {
            Metric::ErrorRatio => {
                let (errors, total) = error_counts(&series)?;
                ((total > 0).then(|| errors as f64 / total as f64), total)
            }
            Metric::LatencyPercentile { percentile: p } => {
                let dists = distributions(&series)?;
                let buckets: Vec<_> = dists.iter().flat_map(Distribution::buckets).collect();
                let count = dists.iter().map(|d| d.count).sum();
                (percentile(&buckets, *p), count)
            }
            Metric::CpuUtilisation | Metric::MemoryUtilisation => {
                let dists = distributions(&series)?;
                (mean(&dists), dists.iter().map(|d| d.count).sum())
            }
            Metric::Named { .. } => {
                let mut values: Vec<f64> = Vec::new();
                for p in series.iter().flat_map(|s| &s.points) {
                    values.extend(p.value.number()?);
                }
                let n = values.len() as u64;
                ((n > 0).then(|| values.iter().sum::<f64>() / n as f64), n)
            }
        };
        Ok(match value {
            Some(value) if samples >= query.min_samples.max(1) => {
                MetricReading::Value { value, samples }
            }
            _ => MetricReading::InsufficientData {
                samples,
                detail: format!(
                    "{samples} samples of {} for {}{} (need {})",
                    req.filter.split('"').nth(1).unwrap_or("the metric"),
                    self.service,
                    query
                        .release
                        .as_deref()
                        .map(|r| format!(" revision {r}"))
                        .unwrap_or_default(),
                    query.min_samples.max(1)
                ),
            },
        })
    }
}

/// Server errors (`5xx`) and all requests in `request_count` series grouped by
/// `response_code_class`.
fn error_counts(series: &[TimeSeries]) -> Result<(u64, u64)> {
    let (mut errors, mut total) = (0u64, 0u64);
    for s in series {
        let mut n = 0u64;
        for p in &s.points {
            n = n.saturating_add(p.value.int64()?.unwrap_or(0));
        }
        total = total.saturating_add(n);
        if s.metric
            .labels
            .get("response_code_class")
            .map(String::as_str)
            == Some("5xx")
        {
            errors = errors.saturating_add(n);
        }
    }
    Ok((errors, total))
}

fn distributions(series: &[TimeSeries]) -> Result<Vec<Distribution>> {
    let mut out = Vec::new();
    for p in series.iter().flat_map(|s| &s.points) {
        out.extend(p.value.distribution()?);
    }
    Ok(out)
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SeriesPage {
    #[serde(default)]
    time_series: Vec<TimeSeries>,
    #[serde(default)]
    next_page_token: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct TimeSeries {
    #[serde(default)]
    metric: MetricLabels,
    #[serde(default)]
    points: Vec<Point>,
}

#[derive(Debug, Default, Deserialize)]
struct MetricLabels {
    #[serde(default)]
    labels: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
struct Point {
    value: TypedValue,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TypedValue {
    #[serde(default)]
    int64_value: Option<Value>,
    #[serde(default)]
    double_value: Option<f64>,
    #[serde(default)]
    distribution_value: Option<Distribution>,
}

/// Reading a point: a point whose `value` is unset (which the description allows) carries no
/// data and is skipped; a value of another kind than the metric's (a double where a
/// distribution belongs) or a malformed one is an error: the query is not reading what it
/// thinks it reads.
impl TypedValue {
    fn is_unset(&self) -> bool {
        self.int64_value.is_none()
            && self.double_value.is_none()
            && self.distribution_value.is_none()
    }

    fn int64(&self) -> Result<Option<u64>> {
        match (&self.int64_value, self.double_value) {
            (Some(v), _) => distribution::int64_string::deserialize(v.clone())
                .map(Some)
                .map_err(|_| unexpected("int64Value")),
            // A count written as a double (a metric rewritten by an aggregation).
            (None, Some(d)) if d >= 0.0 && d.fract() == 0.0 && d <= u64::MAX as f64 => {
                Ok(Some(d as u64))
            }
            _ if self.is_unset() => Ok(None),
            _ => Err(unexpected("int64Value")),
        }
    }

    fn number(&self) -> Result<Option<f64>> {
        match (&self.double_value, &self.int64_value) {
            (Some(d), _) => Ok(Some(*d)),
            (None, Some(_)) => Ok(self.int64()?.map(|n| n as f64)),
            _ if self.is_unset() => Ok(None),
            _ => Err(unexpected("doubleValue or int64Value")),
        }
    }

    fn distribution(&self) -> Result<Option<Distribution>> {
        match &self.distribution_value {
            Some(d) => Ok(Some(d.clone())),
            None if self.is_unset() => Ok(None),
            None => Err(unexpected("distributionValue")),
        }
    }
}

fn unexpected(wanted: &str) -> Error {
    Error::new(
        "gcp",
        "list_time_series",
        ops_core::ErrorKind::Decode {
            detail: format!("a point without the expected {wanted}"),
        },
    )
}
