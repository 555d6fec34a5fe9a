//! Prometheus HTTP API (`/api/v1/query`, `/api/v1/query_range`) behind
//! [`MetricsSource`](ops_core::contracts::MetricsSource), so canary analysis and threshold
//! alerts run on Kubernetes or self-hosted services, not only Cloud Run.
//!
//! Metric names differ between setups, so the PromQL for each metric is configuration
//! ([`PromQueries`]) with three placeholders: `$window` (the window, e.g. `300s`), `$release`
//! (a regex matching the release, `.*` for all) and `$quantile` (for latency). Queries must
//! return one series (aggregate with `sum` / `avg`); a query that returns several is a typed
//! error saying so, not a silent average.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> ops_core::Result<()> {
//! # #[cfg(feature = "sim")] {
//! use ops_core::contracts::{Metric, MetricQuery, MetricReading, MetricsSource, TimeWindow};
//! use ops_core::config::RunbookConfig;
//! use ops_prometheus::{PromQueries, Prometheus, PrometheusConfig, sim::PrometheusSim};
//!
//! let queries = PromQueries::from_toml(r#"
//!     error_ratio = 'sum(rate(http_requests_total{job="api",code=~"5..",release=~"$release"}[$window])) / sum(rate(http_requests_total{job="api",release=~"$release"}[$window]))'
//!     requests = 'sum(increase(http_requests_total{job="api",release=~"$release"}[$window]))'
//! "#)?;
//! let sim = PrometheusSim::start().await;
//! sim.answer(&queries.error_ratio.replace("$release", "api-2").replace("$window", "300s"), 0.012);
//! sim.answer(&queries.requests.replace("$release", "api-2").replace("$window", "300s"), 4200.0);
//!
//! let prom = Prometheus::new(PrometheusConfig::new(&sim.uri(), queries)?)?;
//! let window = TimeWindow::ending_at("2026-11-23T09:05:00Z".parse().unwrap(), std::time::Duration::from_secs(300))?;
//! let q = MetricQuery { metric: Metric::ErrorRatio, window, release: Some("api-2".into()), min_samples: 100 };
//! assert_eq!(prom.read(&q).await?, MetricReading::Value { value: 0.012, samples: 4200 });
//! # }
//! # Ok(()) }
//! ```

mod client;
mod queries;
#[cfg(feature = "sim")]
pub mod sim;

pub use client::{Prometheus, PrometheusConfig, Sample, parse_error};
pub use queries::PromQueries;
