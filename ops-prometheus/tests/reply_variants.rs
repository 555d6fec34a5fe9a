//! Every reply the Prometheus client decodes, in the shapes the HTTP API documents (transcribed
//! into `prometheus-http-api-v1.json`, derived by `ops_conformance::replies`): each result type
//! (vector, matrix, scalar, string), float and native-histogram samples, warnings and infos,
//! unknown fields, and a status or result type added later. A typed error (a native histogram
//! is `Unsupported`) is allowed; a decode failure or a panic is not.

use chrono::{TimeZone, Utc};
use ops_conformance::replay::Replay;
use ops_conformance::replies::variants;
use ops_conformance::{Description, vendored};
use ops_core::contracts::TimeWindow;
use ops_prometheus::{PromQueries, Prometheus, PrometheusConfig};

/// The documented envelope carries `data` with every success (and only error fields
/// otherwise); the description cannot say "required when".
const ALWAYS: [&str; 1] = ["data"];

fn d() -> Description {
    vendored("prometheus-http-api-v1.json")
}

fn prom(base: &str) -> Prometheus {
    Prometheus::new(PrometheusConfig::new(base, PromQueries::default()).unwrap()).unwrap()
}

#[tokio::test]
async fn instant_queries_in_every_documented_shape() {
    Replay::new("GET", r"^/api/v1/query$")
        .each(
            variants(&d(), "QueryResponse", &ALWAYS),
            |base| async move {
                prom(&base)
                    .query("sum(rate(http_requests_total[5m]))", 1_763_888_400.0)
                    .await
                    .map(|_| ())
            },
        )
        .await;
}

#[tokio::test]
async fn range_queries_in_every_documented_shape() {
    let window = TimeWindow::new(
        Utc.with_ymd_and_hms(2026, 11, 23, 8, 0, 0).unwrap(),
        Utc.with_ymd_and_hms(2026, 11, 23, 9, 0, 0).unwrap(),
    )
    .unwrap();
    Replay::new("GET", r"^/api/v1/query_range$")
        .each(
            variants(&d(), "QueryResponse", &ALWAYS),
            |base| async move {
                prom(&base)
                    .query_range("sum(rate(http_requests_total[5m]))", &window, 60)
                    .await
                    .map(|_| ())
            },
        )
        .await;
}
