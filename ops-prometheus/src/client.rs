//! The Prometheus HTTP API client and its one error mapping.

use async_trait::async_trait;
use ops_core::config::{Env, RunbookConfig};
use ops_core::contracts::{
    Histogram, Metric, MetricQuery, MetricReading, MetricsSource, RequestCounts, TimeWindow,
};
use ops_core::http::{HttpClient, HttpConfig, SendOptions, decode_json};
use ops_core::redact::redact_text;
use ops_core::{Error, ErrorKind, Result};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use url::Url;

use crate::queries::PromQueries;

/// One series' value at a time.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Unix time (seconds) and value; `NaN` and infinities as Prometheus gives them.
    pub points: Vec<(f64, f64)>,
}

/// How to reach a Prometheus server and what to ask it.
///
/// ```
/// use ops_prometheus::PrometheusConfig;
/// let c: PrometheusConfig = ops_core::config::from_toml(r#"
/// base_url = "http://prometheus:9090"
/// bearer = "s3cret"
/// [queries]
/// error_ratio = 'sum(rate(errors[$window])) / sum(rate(requests[$window]))'
/// "#).unwrap();
/// assert_eq!(c.base_url.as_str(), "http://prometheus:9090/");
/// assert!(!format!("{c:?}").contains("s3cret"));
/// ```
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrometheusConfig {
    /// The server (e.g. `http://prometheus:9090`), or a path under a proxy.
    pub base_url: Url,
    /// The PromQL behind each metric.
    #[serde(default)]
    pub queries: PromQueries,
    /// A bearer token for a proxy or a managed Prometheus (a secret).
    #[serde(default)]
    pub bearer: Option<SecretString>,
    /// Timeouts and retries.
    #[serde(default)]
    pub http: HttpConfig,
}

impl std::fmt::Debug for PrometheusConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrometheusConfig")
            .field("base_url", &self.base_url.as_str())
            .field("queries", &self.queries)
            .field("bearer", &self.bearer.as_ref().map(|_| "[redacted]"))
            .finish_non_exhaustive()
    }
}

impl PrometheusConfig {
    /// The server at `base` (e.g. `http://prometheus:9090`), reading metrics with `queries`.
    pub fn new(base: &str, queries: PromQueries) -> Result<Self> {
        Ok(Self {
            base_url: Url::parse(base).map_err(|e| {
                Error::invalid_input("prometheus", "config", "base_url", e.to_string())
            })?,
            queries,
            bearer: None,
            http: HttpConfig::default(),
        })
    }

    /// `PROMETHEUS_URL` (and `PROMETHEUS_BEARER_TOKEN` if set) from the environment, with
    /// `queries`.
    pub fn from_env(queries: PromQueries) -> Result<Self> {
        Self::from_vars(Env::from_env("prometheus"), queries)
    }

    /// [`Self::from_env`] over any variable lookup.
    pub fn from_vars(env: Env<'_>, queries: PromQueries) -> Result<Self> {
        let mut config = Self::new(
            &env.required("PROMETHEUS_URL", "the server's URL (http://host:9090)")?,
            queries,
        )?;
        config.bearer = env
            .optional("PROMETHEUS_BEARER_TOKEN")
            .map(SecretString::from);
        Ok(config)
    }

    /// The same settings sending `Authorization: Bearer TOKEN`.
    pub fn bearer(mut self, token: impl Into<String>) -> Self {
        self.bearer = Some(SecretString::from(token.into()));
        self
    }
}

/// A Prometheus server.
#[derive(Debug, Clone)]
pub struct Prometheus {
    http: HttpClient,
    base: Url,
    queries: Arc<PromQueries>,
    bearer: Option<Arc<SecretString>>,
    name: String,
}

#[derive(Deserialize)]
struct Envelope {
    status: String,
    #[serde(default)]
    data: Option<Data>,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
struct Data {
    #[serde(rename = "resultType")]
    result_type: String,
    result: serde_json::Value,
}

/// `status: error` bodies (HTTP 400, 422, 503) by `errorType`.
pub fn parse_error(status: StatusCode, _: &HeaderMap, body: &[u8]) -> Option<ErrorKind> {
    let e: Envelope = serde_json::from_slice(body).ok()?;
    if e.status != "error" {
        return None;
    }
    let message = redact_text(e.error.as_deref().unwrap_or(""));
    Some(match e.error_type.as_deref().unwrap_or("") {
        "bad_data" => ErrorKind::InvalidInput {
            field: "query".into(),
            reason: message,
        },
        "timeout" => ErrorKind::Timeout {
            after: std::time::Duration::ZERO,
        },
        "canceled" => ErrorKind::Cancelled,
        "unavailable" => ErrorKind::Unavailable { retry_after: None },
        other => ErrorKind::Provider {
            status: status.as_u16(),
            code: Some(other.to_string()),
            body_excerpt: message,
        },
    })
}

impl Prometheus {
    /// The client `config` describes. Invalid queries are refused here.
    pub fn new(config: PrometheusConfig) -> Result<Self> {
        config.queries.validate()?;
        let mut url = config.base_url;
        if !url.path().ends_with('/') {
            let p = format!("{}/", url.path());
            url.set_path(&p);
        }
        let http =
            HttpClient::new("prometheus", &config.http)?.with_error_parser(Arc::new(parse_error));
        Ok(Self {
            name: format!("prometheus:{}", url.host_str().unwrap_or("")),
            http,
            base: url,
            queries: Arc::new(config.queries),
            bearer: config.bearer.map(Arc::new),
        })
    }

    /// The same client on `clock` (retry waits).
    pub fn with_clock(mut self, clock: ops_core::clock::SharedClock) -> Self {
        self.http = self.http.with_clock(clock);
        self
    }

    /// The same client on another HTTP client (its clock, timeouts, retries).
    pub fn with_http(mut self, http: HttpClient) -> Self {
        self.http = http
            .with_provider("prometheus")
            .with_error_parser(Arc::new(parse_error));
        self
    }

    async fn api(&self, path: &str, params: &[(&str, String)]) -> Result<Data> {
        let mut url = self
            .base
            .join(path)
            .map_err(|e| Error::invalid_input("prometheus", "url", "path", e.to_string()))?;
        url.query_pairs_mut()
            .extend_pairs(params.iter().map(|(k, v)| (*k, v.as_str())));
        let mut req = self.http.get(url);
        if let Some(t) = &self.bearer {
            req = req.header(
                reqwest::header::AUTHORIZATION,
                ops_core::http::bearer(t.expose_secret())?,
            );
        }
        let options = SendOptions {
            resource: Some("query".into()),
            ..SendOptions::default()
        };
        let (_, _, body) = self.http.send_bytes("query", req, &options).await?;
        let e: Envelope = decode_json("prometheus", "query", &body)?;
        if e.status != "success" {
            // A status this client does not know is the server's answer, not unreadable JSON.
            let kind = parse_error(StatusCode::OK, &HeaderMap::new(), &body).unwrap_or(
                ErrorKind::Provider {
                    status: 200,
                    code: Some(redact_text(&e.status)),
                    body_excerpt: redact_text(e.error.as_deref().unwrap_or("")),
                },
            );
            return Err(Error::new("prometheus", "query", kind));
        }
        e.data.ok_or_else(|| {
            Error::new(
                "prometheus",
                "query",
                ErrorKind::Decode {
                    detail: "no data".into(),
                },
            )
        })
    }

    /// An instant query at `time` (unix seconds).
    pub async fn query(&self, promql: &str, time: f64) -> Result<Vec<Sample>> {
        let data = self
            .api(
                "api/v1/query",
                &[("query", promql.to_string()), ("time", format!("{time}"))],
            )
            .await?;
        samples(&data)
    }

    /// A range query over `window` every `step_secs`.
    pub async fn query_range(
        &self,
        promql: &str,
        window: &TimeWindow,
        step_secs: u64,
    ) -> Result<Vec<Sample>> {
        let params = [
            ("query", promql.to_string()),
            ("start", window.start.timestamp().to_string()),
            ("end", window.end.timestamp().to_string()),
            ("step", format!("{}s", step_secs.max(1))),
        ];
        let data = self.api("api/v1/query_range", &params).await?;
        samples(&data)
    }

    /// One value from an instant query; `None` when nothing or `NaN` came back.
    async fn single(&self, promql: &str, time: f64) -> Result<Option<f64>> {
        let series = self.query(promql, time).await?;
        match series.as_slice() {
            [] => Ok(None),
            [one] => Ok(one.points.last().map(|p| p.1).filter(|v| v.is_finite())),
            many => Err(Error::invalid_input(
                "prometheus",
                "query",
                "query",
                format!(
                    "returned {} series; aggregate it to one (sum, avg, max): {promql}",
                    many.len()
                ),
            )),
        }
    }
}

/// A classic histogram's cumulative `le` series as per-bucket counts: bounds in ms, counts
/// rounded and made non-decreasing (`increase` can dip between buckets), the `+Inf` bucket
/// the overflow. `None` for no series; a series without `le`, or an `le` that is not a
/// number, is a decode error.
fn histogram(series: &[Sample], unit_ms: u32) -> Result<Option<Histogram>> {
    if series.is_empty() {
        return Ok(None);
    }
    let mut cumulative = Vec::with_capacity(series.len());
    for s in series {
        let le = s
            .labels
            .get("le")
            .ok_or_else(|| decode("a latency bucket series has no le label"))?;
        let bound = match le.as_str() {
            "+Inf" => f64::INFINITY,
            other => other
                .parse::<f64>()
                .map_err(|_| decode("an le label is not a number"))?,
        };
        let value = s.points.last().map_or(0.0, |p| p.1);
        let n = if value.is_finite() && value > 0.0 {
            value.round().min(u64::MAX as f64) as u64
        } else {
            0
        };
        cumulative.push((bound, n));
    }
    cumulative.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (mut bounds_ms, mut counts, mut below) = (Vec::new(), Vec::new(), 0u64);
    for (bound, n) in cumulative {
        let n = n.max(below);
        if bound.is_finite() {
            let ms = bound * f64::from(unit_ms);
            if bounds_ms.last().is_some_and(|last: &f64| *last >= ms) || ms.is_nan() || ms < 0.0 {
                return Err(decode("le labels repeat or are negative"));
            }
            bounds_ms.push(ms);
        }
        counts.push(n - below);
        below = n;
    }
    if counts.len() == bounds_ms.len() {
        counts.push(0); // no +Inf series: nothing above the last bound
    }
    if bounds_ms.len() > ops_core::judge::MAX_BUCKETS || counts.len() != bounds_ms.len() + 1 {
        return Ok(None);
    }
    let h = Histogram { bounds_ms, counts };
    Ok(h.check().is_ok().then_some(h))
}

fn number(v: &serde_json::Value) -> Result<f64> {
    let s = v
        .as_str()
        .ok_or_else(|| decode("a sample value is not a string"))?;
    match s {
        "NaN" => Ok(f64::NAN),
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        s => s
            .parse()
            .map_err(|_| decode("a sample value is not a number")),
    }
}

fn point(v: &serde_json::Value) -> Result<(f64, f64)> {
    let pair = v
        .as_array()
        .filter(|a| a.len() == 2)
        .ok_or_else(|| decode("a sample is not [time, value]"))?;
    Ok((
        pair[0]
            .as_f64()
            .ok_or_else(|| decode("a sample time is not a number"))?,
        number(&pair[1])?,
    ))
}

fn decode(detail: &str) -> Error {
    Error::new(
        "prometheus",
        "query",
        ErrorKind::Decode {
            detail: detail.to_string(),
        },
    )
}

/// A native-histogram series: its points are histograms, not numbers, and no single reading
/// can stand for one without choosing a statistic.
fn native_histogram() -> Error {
    Error::unsupported(
        "prometheus",
        "query",
        "a native histogram series (`histogram`/`histograms`); query a number from it, such as \
         histogram_quantile(0.99, …), histogram_count(…) or histogram_sum(…)",
    )
}

/// `vector`, `matrix`, `scalar` and `string` results as samples. A `string` result counts as a
/// number when it reads as one; native histograms are a typed [`ErrorKind::Unsupported`].
fn samples(data: &Data) -> Result<Vec<Sample>> {
    let labels = |s: &serde_json::Value| -> BTreeMap<String, String> {
        serde_json::from_value(s.get("metric").cloned().unwrap_or_default()).unwrap_or_default()
    };
    match data.result_type.as_str() {
        "scalar" => Ok(vec![Sample {
            labels: BTreeMap::new(),
            points: vec![point(&data.result)?],
        }]),
        "string" => {
            let text = data
                .result
                .get(1)
                .and_then(|v| v.as_str())
                .ok_or_else(|| decode("a string result is not [time, \"text\"]"))?;
            match point(&data.result) {
                Ok(p) => Ok(vec![Sample {
                    labels: BTreeMap::new(),
                    points: vec![p],
                }]),
                Err(_) => Err(Error::unsupported(
                    "prometheus",
                    "query",
                    format!(
                        "a string result that is not a number ({:?})",
                        text.chars().take(64).collect::<String>()
                    ),
                )),
            }
        }
        "vector" => data
            .result
            .as_array()
            .ok_or_else(|| decode("a vector result is not a list"))?
            .iter()
            .map(|s| {
                if s.get("value").is_none() && s.get("histogram").is_some() {
                    return Err(native_histogram());
                }
                Ok(Sample {
                    labels: labels(s),
                    points: vec![point(s.get("value").unwrap_or(&serde_json::Value::Null))?],
                })
            })
            .collect(),
        "matrix" => data
            .result
            .as_array()
            .ok_or_else(|| decode("a matrix result is not a list"))?
            .iter()
            .map(|s| {
                if s.get("histograms").is_some() {
                    return Err(native_histogram());
                }
                let values = s
                    .get("values")
                    .and_then(|v| v.as_array())
                    .ok_or_else(|| decode("a matrix series has no values"))?;
                Ok(Sample {
                    labels: labels(s),
                    points: values.iter().map(point).collect::<Result<_>>()?,
                })
            })
            .collect(),
        other => Err(Error::unsupported(
            "prometheus",
            "query",
            format!(
                "the result type {:?}",
                other.chars().take(32).collect::<String>()
            ),
        )),
    }
}

#[async_trait]
impl MetricsSource for Prometheus {
    fn name(&self) -> &str {
        &self.name
    }

    /// The `requests` and `errors` queries for `release` over `window` (rounded: `increase`
    /// extrapolates), and the `latency_buckets` query as a histogram. `Unsupported` unless
    /// `requests` and `errors` are configured.
    async fn counts(&self, release: &str, window: &TimeWindow) -> Result<RequestCounts> {
        let q = &self.queries;
        if q.requests.trim().is_empty() || q.errors.trim().is_empty() {
            return Err(Error::unsupported(
                "prometheus",
                "counts",
                "request counts per release: configure the requests and errors queries",
            ));
        }
        let secs = window.duration().as_secs().max(1);
        let time = window.end.timestamp() as f64;
        let count = |v: Option<f64>| v.map_or(0, |n| n.round().max(0.0) as u64);
        let requests = count(
            self.single(
                &PromQueries::fill(&q.requests, secs, Some(release), None),
                time,
            )
            .await?,
        );
        let errors = count(
            self.single(
                &PromQueries::fill(&q.errors, secs, Some(release), None),
                time,
            )
            .await?,
        )
        .min(requests);
        let latency = if q.latency_buckets.trim().is_empty() {
            None
        } else {
            let promql = PromQueries::fill(&q.latency_buckets, secs, Some(release), None);
            histogram(&self.query(&promql, time).await?, q.le_unit_ms)?
        };
        Ok(RequestCounts {
            requests,
            errors,
            latency,
        })
    }

    async fn read(&self, q: &MetricQuery) -> Result<MetricReading> {
        q.validate()?;
        let secs = q.window.duration().as_secs().max(1);
        let release = q.release.as_deref();
        let (template, quantile) = match &q.metric {
            Metric::ErrorRatio => (self.queries.error_ratio.clone(), None),
            Metric::LatencyPercentile { percentile } => {
                (self.queries.latency.clone(), Some(percentile / 100.0))
            }
            Metric::CpuUtilisation => (self.queries.cpu.clone(), None),
            Metric::MemoryUtilisation => (self.queries.memory.clone(), None),
            Metric::Named { name } => (
                self.queries.named.get(name).cloned().unwrap_or_default(),
                None,
            ),
        };
        if template.trim().is_empty() {
            return Err(Error::unsupported(
                "prometheus",
                "read",
                format!("{:?}: no query configured for it", q.metric),
            ));
        }
        let time = q.window.end.timestamp() as f64;
        let value = self
            .single(&PromQueries::fill(&template, secs, release, quantile), time)
            .await?;
        // Requests back request metrics; gauges rest on the one reading.
        let request_metric = matches!(
            q.metric,
            Metric::ErrorRatio | Metric::LatencyPercentile { .. }
        );
        let samples = if !request_metric || self.queries.requests.trim().is_empty() {
            u64::from(value.is_some())
        } else {
            let n = self
                .single(
                    &PromQueries::fill(&self.queries.requests, secs, release, None),
                    time,
                )
                .await?;
            n.map_or(0, |n| n.round().max(0.0) as u64)
        };
        Ok(match value {
            Some(value) if samples >= q.min_samples.max(1) => {
                MetricReading::Value { value, samples }
            }
            _ => MetricReading::InsufficientData {
                samples,
                detail: format!(
                    "{samples} samples for {:?}{} (need {})",
                    q.metric,
                    release.map(|r| format!(" of {r}")).unwrap_or_default(),
                    q.min_samples.max(1)
                ),
            },
        })
    }
}

#[cfg(test)]
mod histogram_tests {
    use super::*;
    use proptest::strategy::Strategy;

    proptest::proptest! {
        /// Any `le` series a server sends: a well-formed histogram, none, or a decode error;
        /// never a panic.
        #[test]
        fn any_bucket_series_is_a_histogram_or_a_typed_error(
            series in proptest::collection::vec(
                (
                    proptest::prop_oneof![
                        proptest::sample::select(vec!["+Inf", "0.1", "0.1", "1e308", "-1", "NaN", "x", ""])
                            .prop_map(String::from),
                        proptest::num::f64::ANY.prop_map(|f| f.to_string()),
                    ],
                    proptest::num::f64::ANY,
                ),
                0..12,
            ),
            unit in 1u32..100_000,
        ) {
            let samples: Vec<Sample> = series
                .into_iter()
                .map(|(le, v)| Sample {
                    labels: [("le".to_string(), le)].into(),
                    points: vec![(0.0, v)],
                })
                .collect();
            match histogram(&samples, unit) {
                Ok(Some(h)) => proptest::prop_assert!(h.check().is_ok(), "{:?}", h),
                Ok(None) => {}
                Err(e) => proptest::prop_assert!(
                    matches!(e.kind(), ErrorKind::Decode { .. }), "{}", e
                ),
            }
        }
    }
}
