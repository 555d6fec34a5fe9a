//! The PromQL behind each metric, as configuration.

use std::collections::BTreeMap;

use ops_core::config::RunbookConfig;
use ops_core::{Error, Result};
use serde::{Deserialize, Serialize};

/// PromQL per metric, with `$window`, `$release` and `$quantile` placeholders.
///
/// ```toml
/// error_ratio = 'sum(rate(http_requests_total{code=~"5..",release=~"$release"}[$window])) / sum(rate(http_requests_total{release=~"$release"}[$window]))'
/// latency = 'histogram_quantile($quantile, sum by (le) (rate(http_request_duration_seconds_bucket{release=~"$release"}[$window]))) * 1000'
/// requests = 'sum(increase(http_requests_total{release=~"$release"}[$window]))'
/// errors = 'sum(increase(http_requests_total{code=~"5..",release=~"$release"}[$window]))'
/// latency_buckets = 'sum by (le) (increase(http_request_duration_seconds_bucket{release=~"$release"}[$window]))'
/// le_unit_ms = 1000                 # the `le` label is in seconds
/// cpu = 'avg(rate(container_cpu_usage_seconds_total{pod=~"api-.*"}[$window]))'
/// memory = 'avg(container_memory_working_set_bytes{pod=~"api-.*"} / container_spec_memory_limit_bytes{pod=~"api-.*"})'
///
/// [named]                       # Metric::Named { name } → this query
/// api_latency_p95 = 'api_latency_p95'
/// up = 'min(up{job="api"})'
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PromQueries {
    /// Failed requests / all requests (0 to 1).
    pub error_ratio: String,
    /// Latency in milliseconds at `$quantile` (0 to 1).
    pub latency: String,
    /// Requests in the window: the sample count behind an error-ratio or latency reading.
    /// Empty (and for the other metrics): a reading rests on one sample.
    pub requests: String,
    /// CPU utilisation (0 to 1).
    pub cpu: String,
    /// Memory utilisation (0 to 1).
    pub memory: String,
    /// Failed requests in the window. With `requests`, what the canary judge compares
    /// (`MetricsSource::counts`); empty: counts are `Unsupported`.
    pub errors: String,
    /// Cumulative latency buckets in the window, one series per `le` label (a classic
    /// Prometheus histogram); empty: counts carry no latency.
    pub latency_buckets: String,
    /// Milliseconds per unit of the `le` label: 1000 for seconds, 1 for milliseconds.
    pub le_unit_ms: u32,
    /// Queries by name for `Metric::Named`.
    pub named: BTreeMap<String, String>,
}

impl Default for PromQueries {
    fn default() -> Self {
        Self {
            error_ratio: String::new(),
            latency: String::new(),
            requests: String::new(),
            cpu: String::new(),
            memory: String::new(),
            errors: String::new(),
            latency_buckets: String::new(),
            le_unit_ms: 1000,
            named: BTreeMap::new(),
        }
    }
}

impl RunbookConfig for PromQueries {
    fn validate(&self) -> Result<()> {
        let all = [
            ("error_ratio", &self.error_ratio),
            ("latency", &self.latency),
            ("requests", &self.requests),
            ("errors", &self.errors),
            ("latency_buckets", &self.latency_buckets),
            ("cpu", &self.cpu),
            ("memory", &self.memory),
        ];
        if self.le_unit_ms == 0 {
            return Err(Error::invalid_input(
                "prometheus",
                "queries",
                "le_unit_ms",
                "must be at least 1",
            ));
        }
        for (field, q) in all
            .into_iter()
            .chain(self.named.iter().map(|(k, v)| (k.as_str(), v)))
        {
            let unknown = q.match_indices('$').map(|(i, _)| &q[i + 1..]).find(|rest| {
                !["window", "release", "quantile"]
                    .iter()
                    .any(|p| rest.starts_with(p))
            });
            if let Some(rest) = unknown {
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                return Err(Error::invalid_input(
                    "prometheus",
                    "queries",
                    field,
                    format!("unknown placeholder ${name}"),
                ));
            }
        }
        Ok(())
    }
}

impl PromQueries {
    /// `query` with the placeholders filled in. The release is escaped for a regex matcher.
    pub fn fill(
        query: &str,
        window_secs: u64,
        release: Option<&str>,
        quantile: Option<f64>,
    ) -> String {
        let release = release.map(escape_regex).unwrap_or_else(|| ".*".into());
        let mut q = query
            .replace("$window", &format!("{window_secs}s"))
            .replace("$release", &release);
        if let Some(x) = quantile {
            q = q.replace("$quantile", &format!("{x}"));
        }
        q
    }
}

/// Escapes regex metacharacters (and `"` for the PromQL string) in a label value.
fn escape_regex(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push_str("\\\\");
        } else if c == '"' {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_fill_and_unknown_ones_are_refused() {
        let q = PromQueries::fill(
            "rate(x{release=~\"$release\"}[$window]) > $quantile",
            300,
            Some("v1.2"),
            Some(0.95),
        );
        assert_eq!(q, "rate(x{release=~\"v1\\\\.2\"}[300s]) > 0.95");
        assert_eq!(
            PromQueries::fill("x{r=~\"$release\"}", 60, None, None),
            "x{r=~\".*\"}"
        );
        let err = PromQueries::from_toml("error_ratio = 'rate(x[$windw])'").unwrap_err();
        assert!(
            err.to_string().contains("error_ratio") && err.to_string().contains("$windw"),
            "{err}"
        );
        assert!(
            PromQueries::from_toml("errorratio = 'x'").is_err(),
            "unknown keys are refused"
        );
    }
}
