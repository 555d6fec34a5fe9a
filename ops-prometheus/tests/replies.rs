//! Result shapes the Prometheus HTTP API documents that a convenient fake never sends:
//! `string` results, native histograms (`histogram` in a vector, `histograms` in a matrix),
//! and series with both floats and histograms.

use ops_core::ErrorKind;
use ops_prometheus::PromQueries;
use ops_prometheus::{Prometheus, PrometheusConfig};
use serde_json::{Value, json};
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

async fn answering(query: &str, data: Value) -> (MockServer, Prometheus) {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v1/query"))
        .and(query_param("query", query))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"status": "success", "data": data})),
        )
        .mount(&server)
        .await;
    let prom =
        Prometheus::new(PrometheusConfig::new(&server.uri(), PromQueries::default()).unwrap())
            .unwrap();
    (server, prom)
}

fn histogram() -> Value {
    json!({"count": "10", "sum": "3.5",
           "buckets": [[0, "0.25", "0.5", "4"], [0, "0.5", "1", "6"]]})
}

#[tokio::test]
async fn a_numeric_string_result_is_a_sample_and_other_text_is_unsupported() {
    let (_s, prom) = answering(
        "\"0.5\"",
        json!({"resultType": "string", "result": [1795424700.0, "0.5"]}),
    )
    .await;
    let samples = prom.query("\"0.5\"", 1795424700.0).await.unwrap();
    assert_eq!(samples[0].points, vec![(1795424700.0, 0.5)]);

    let (_s, prom) = answering(
        "\"up\"",
        json!({"resultType": "string", "result": [1795424700.0, "up"]}),
    )
    .await;
    let err = prom.query("\"up\"", 1795424700.0).await.unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Unsupported { .. }), "{err}");
    assert!(err.to_string().contains("string result"), "{err}");
}

#[tokio::test]
async fn native_histograms_are_a_typed_unsupported_naming_the_shape() {
    let (_s, prom) = answering(
        "rate(http_request_duration_seconds[5m])",
        json!({"resultType": "vector", "result": [
            {"metric": {"job": "api"}, "histogram": [1795424700.0, histogram()]}]}),
    )
    .await;
    let err = prom
        .query("rate(http_request_duration_seconds[5m])", 1795424700.0)
        .await
        .unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Unsupported { .. }), "{err}");
    assert!(err.to_string().contains("histogram_quantile"), "{err}");

    let (_s, prom) = answering(
        "http_request_duration_seconds[5m]",
        json!({"resultType": "matrix", "result": [
            {"metric": {"job": "api"}, "values": [[1795424640.0, "1"]],
             "histograms": [[1795424700.0, histogram()]]}]}),
    )
    .await;
    let err = prom
        .query("http_request_duration_seconds[5m]", 1795424700.0)
        .await
        .unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Unsupported { .. }), "{err}");
}

/// `with_clock` is the one way to give the client its clock: a 503's `Retry-After` is waited
/// out on it, not on the wall.
#[tokio::test]
async fn retry_waits_run_on_the_injected_clock() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v1/query"))
        .respond_with(ResponseTemplate::new(503).insert_header("retry-after", "9"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/query"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"status": "success", "data": {"resultType": "vector", "result": []}}),
        ))
        .mount(&server)
        .await;
    let clock = std::sync::Arc::new(ops_core::clock::ManualClock::starting_at(
        "2026-11-23T09:00:00Z".parse().unwrap(),
    ));
    let prom =
        Prometheus::new(PrometheusConfig::new(&server.uri(), PromQueries::default()).unwrap())
            .unwrap()
            .with_clock(clock.clone());
    let series = prom.query("up", 1_763_888_400.0).await.unwrap();
    assert!(series.is_empty());
    assert_eq!(clock.sleeps(), [std::time::Duration::from_secs(9)]);
}
