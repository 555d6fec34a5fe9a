//! The Prometheus HTTP API: exact request shapes, result types, `status: error` bodies,
//! faults, and the metrics testkit suite against the simulator.

use std::time::Duration;

use ops_core::ErrorKind;
use ops_core::contracts::*;
use ops_core::runbooks::RunbookConfig;
use ops_core::testkit;
use ops_prometheus::sim::{PrometheusSim, Simulator};
use ops_prometheus::{PromQueries, Prometheus, PrometheusConfig};
use serde_json::json;
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn queries() -> PromQueries {
    PromQueries::from_toml(
        r#"
        error_ratio = 'sum(rate(http_requests_total{job="api",code=~"5..",release=~"$release"}[$window])) / sum(rate(http_requests_total{job="api",release=~"$release"}[$window]))'
        latency = 'histogram_quantile($quantile, sum by (le) (rate(http_request_duration_seconds_bucket{job="api",release=~"$release"}[$window]))) * 1000'
        requests = 'sum(increase(http_requests_total{job="api",release=~"$release"}[$window]))'
        cpu = 'avg(rate(container_cpu_usage_seconds_total{pod=~"api-.*"}[$window]))'
        [named]
        api_latency_p95 = 'api_latency_p95'
        "#,
    )
    .unwrap()
}

fn window() -> TimeWindow {
    TimeWindow::ending_at(
        "2026-11-23T09:05:00Z".parse().unwrap(),
        Duration::from_secs(300),
    )
    .unwrap()
}

const END: &str = "1795424700";

fn vector(v: &str) -> serde_json::Value {
    json!({"status": "success", "data": {"resultType": "vector", "result": [{"metric": {}, "value": [1795424700.0, v]}]}})
}

#[tokio::test]
async fn an_instant_query_sends_the_filled_promql_at_the_window_end() {
    let server = MockServer::start().await;
    let q = queries();
    Mock::given(method("GET"))
        .and(path("/api/v1/query"))
        .and(query_param(
            "query",
            PromQueries::fill(&q.latency, 300, Some("api-7"), Some(0.95)),
        ))
        .and(query_param("time", END))
        .and(header("authorization", "Bearer prom-token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(vector("412.5")))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/query"))
        .and(query_param(
            "query",
            PromQueries::fill(&q.requests, 300, Some("api-7"), None),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(vector("1500")))
        .mount(&server)
        .await;
    let prom = Prometheus::new(
        PrometheusConfig::new(&server.uri(), q)
            .unwrap()
            .bearer("prom-token"),
    )
    .unwrap();
    let r = prom
        .read(&MetricQuery {
            metric: Metric::LatencyPercentile { percentile: 95.0 },
            window: window(),
            release: Some("api-7".into()),
            min_samples: 100,
        })
        .await
        .unwrap();
    assert_eq!(
        r,
        MetricReading::Value {
            value: 412.5,
            samples: 1500
        }
    );
}

#[tokio::test]
async fn scalar_matrix_nan_and_several_series() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v1/query"))
        .and(query_param("query", "api_latency_p95"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"status": "success", "data": {"resultType": "scalar", "result": [1795424700.0, "0.25"]}})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/query"))
        .and(query_param(
            "query",
            PromQueries::fill(&queries().cpu, 300, None, None),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"status": "success", "data": {"resultType": "vector", "result": [
            {"metric": {"pod": "api-1"}, "value": [1795424700.0, "0.4"]},
            {"metric": {"pod": "api-2"}, "value": [1795424700.0, "0.6"]}]}}),
        ))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/query"))
        .and(query_param(
            "query",
            PromQueries::fill(&queries().error_ratio, 300, None, None),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(vector("NaN")))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/query_range"))
        .and(query_param("query", "up"))
        .and(query_param("start", "1795424400"))
        .and(query_param("end", END))
        .and(query_param("step", "60s"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"status": "success", "data": {"resultType": "matrix", "result": [
            {"metric": {"job": "api"}, "values": [[1795424400.0, "1"], [1795424460.0, "0"]]}]}}),
        ))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/query"))
        .respond_with(ResponseTemplate::new(200).set_body_json(vector("0")))
        .mount(&server)
        .await;
    let prom = Prometheus::new(PrometheusConfig::new(&server.uri(), queries()).unwrap()).unwrap();
    let q = |metric| MetricQuery {
        metric,
        window: window(),
        release: None,
        min_samples: 1,
    };
    let named = prom
        .read(&q(Metric::Named {
            name: "api_latency_p95".into(),
        }))
        .await
        .unwrap();
    assert_eq!(named.value(), Some(0.25));
    let err = prom.read(&q(Metric::CpuUtilisation)).await.unwrap_err();
    assert!(err.to_string().contains("returned 2 series"), "{err}");
    assert!(
        matches!(
            prom.read(&q(Metric::ErrorRatio)).await.unwrap(),
            MetricReading::InsufficientData { .. }
        ),
        "0/0 is no data, not 0"
    );
    assert!(
        matches!(
            prom.read(&q(Metric::MemoryUtilisation))
                .await
                .unwrap_err()
                .kind(),
            ErrorKind::Unsupported { .. }
        ),
        "no memory query configured"
    );
    let range = prom.query_range("up", &window(), 60).await.unwrap();
    assert_eq!(
        range[0].points,
        vec![(1795424400.0, 1.0), (1795424460.0, 0.0)]
    );
}

#[tokio::test]
async fn error_bodies_are_typed() {
    let server = MockServer::start().await;
    let body = |kind: &str, msg: &str| json!({"status": "error", "errorType": kind, "error": msg});
    Mock::given(method("GET"))
        .and(query_param("query", "bad("))
        .respond_with(ResponseTemplate::new(400).set_body_json(body(
            "bad_data",
            "1:5: parse error: unclosed left parenthesis",
        )))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(query_param("query", "slow"))
        .respond_with(
            ResponseTemplate::new(503)
                .set_body_json(body("timeout", "query timed out in expression evaluation")),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(query_param("query", "heavy"))
        .respond_with(ResponseTemplate::new(422).set_body_json(body(
            "execution",
            "query processing would load too many samples into memory",
        )))
        .mount(&server)
        .await;
    let prom = on_manual_clock(
        Prometheus::new(PrometheusConfig::new(&server.uri(), PromQueries::default()).unwrap())
            .unwrap(),
    );
    let e = prom.query("bad(", 0.0).await.unwrap_err();
    assert!(
        matches!(e.kind(), ErrorKind::InvalidInput { reason, .. } if reason.contains("unclosed")),
        "{e}"
    );
    assert!(matches!(
        prom.query("slow", 0.0).await.unwrap_err().kind(),
        ErrorKind::Timeout { .. }
    ));
    assert!(
        matches!(prom.query("heavy", 0.0).await.unwrap_err().kind(), ErrorKind::Provider { status: 422, code: Some(c), .. } if c == "execution")
    );
}

#[tokio::test]
async fn prometheus_passes_the_metrics_suite_against_the_simulator() {
    let sim = PrometheusSim::start().await;
    let q = queries();
    sim.data_since(1795420000.0);
    for (template, quantile, value) in [
        (&q.error_ratio, None, 0.02),
        (&q.requests, None, 5000.0),
        (&q.latency, Some(0.95), 180.0),
    ] {
        sim.answer(
            &PromQueries::fill(template, 300, Some("api-7"), quantile),
            value,
        );
    }
    let prom = Prometheus::new(PrometheusConfig::new(&sim.uri(), q).unwrap()).unwrap();
    let case = |metric| MetricQuery {
        metric,
        window: window(),
        release: Some("api-7".into()),
        min_samples: 100,
    };
    testkit::metrics_source(
        &prom,
        &testkit::MetricsFixture {
            cases: vec![
                (case(Metric::ErrorRatio), 0.02),
                (case(Metric::LatencyPercentile { percentile: 95.0 }), 180.0),
            ],
            tolerance: 1e-9,
            // These queries leave out `errors`: no counts.
            counts: None,
        },
    )
    .await;
}

#[tokio::test]
async fn faults_from_the_simulator() {
    let sim = PrometheusSim::start().await;
    sim.answer("up", 1.0);
    sim.inject(
        None,
        "/api/v1/query",
        1,
        ops_core::sim::Fault::Status {
            status: 503,
            retry_after: Some(1),
        },
    );
    let prom = Prometheus::new(PrometheusConfig::new(&sim.uri(), PromQueries::default()).unwrap())
        .unwrap()
        .with_http(
            ops_core::http::HttpClient::new("prometheus", &Default::default())
                .unwrap()
                .with_clock(std::sync::Arc::new(
                    ops_core::clock::ManualClock::starting_at(
                        "2026-11-23T09:00:00Z".parse().unwrap(),
                    ),
                )),
        );
    assert_eq!(
        prom.query("up", 1795424700.0).await.unwrap()[0].points[0].1,
        1.0,
        "a 503 is retried"
    );
    sim.inject(
        None,
        "/api/v1/query",
        1,
        ops_core::sim::Fault::TruncatedJson,
    );
    assert!(matches!(
        prom.query("up", 1795424700.0).await.unwrap_err().kind(),
        ErrorKind::Decode { .. }
    ));
}

/// Retries wait on a manual clock, not in real time.
fn on_manual_clock(prom: Prometheus) -> Prometheus {
    let clock = ops_core::clock::ManualClock::starting_at("2026-11-23T09:00:00Z".parse().unwrap());
    prom.with_http(
        ops_core::http::HttpClient::new("prometheus", &Default::default())
            .unwrap()
            .with_clock(std::sync::Arc::new(clock)),
    )
}

/// `counts`: requests and errors from their queries (rounded: `increase` extrapolates), the
/// latency histogram from the cumulative `le` series, `+Inf` the overflow, out of order and
/// with the small dips `increase` gives between buckets.
#[tokio::test]
async fn counts_come_from_the_request_error_and_bucket_queries() {
    let sim = PrometheusSim::start().await;
    sim.data_since(1795420000.0);
    let mut q = queries();
    q.errors =
        r#"sum(increase(http_requests_total{job="api",code=~"5..",release=~"$release"}[$window]))"#
            .into();
    q.latency_buckets = r#"sum by (le) (increase(http_request_duration_seconds_bucket{job="api",release=~"$release"}[$window]))"#.into();
    let fill = |t: &str| PromQueries::fill(t, 300, Some("api-7"), None);
    sim.answer(&fill(&q.requests), 1000.4);
    sim.answer(&fill(&q.errors), 12.6);
    let le = |l: &str, v: f64| ([("le".to_string(), l.to_string())].into(), v);
    sim.answer_series(
        &fill(&q.latency_buckets),
        vec![
            le("+Inf", 1000.4),
            le("0.1", 600.2),
            le("0.5", 949.0), // below the 0.25 bucket: an `increase` dip, read as no requests
            le("0.25", 950.0),
            le("1", 990.0),
        ],
    );
    let prom = Prometheus::new(PrometheusConfig::new(&sim.uri(), q.clone()).unwrap()).unwrap();
    let c = prom.counts("api-7", &window()).await.unwrap();
    assert_eq!((c.requests, c.errors), (1000, 13));
    let h = c.latency.expect("a histogram");
    assert_eq!(h.bounds_ms, vec![100.0, 250.0, 500.0, 1000.0]);
    assert_eq!(h.counts, vec![600, 350, 0, 40, 10]);
    assert_eq!(h.total().unwrap(), 1000);

    // Without an errors query, counts are unsupported (a rollout falls back to thresholds).
    let plain = Prometheus::new(PrometheusConfig::new(&sim.uri(), queries()).unwrap()).unwrap();
    let e = plain.counts("api-7", &window()).await.unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::Unsupported { .. }), "{e}");

    // A bucket series without `le` is a decode error, not a wrong histogram.
    sim.answer_series(&fill(&q.latency_buckets), vec![(Default::default(), 5.0)]);
    let e = prom.counts("api-7", &window()).await.unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::Decode { .. }), "{e}");
}
