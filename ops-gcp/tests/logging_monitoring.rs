//! Cloud Logging `entries:list` and Cloud Monitoring `timeSeries.list` with exact request
//! shapes, pagination, decoding of real response shapes, and faults.

mod support;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ops_core::ErrorKind;
use ops_core::contracts::*;
use ops_gcp::auth::{AccessToken, TokenProvider, TokenSource};
use ops_gcp::{CloudLogging, CloudMonitoring, GcpClient};
use serde_json::json;
use support::*;
use wiremock::matchers::{body_json, header, method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn window() -> TimeWindow {
    TimeWindow::ending_at(t0(), Duration::from_secs(3600)).unwrap()
}

const FILTER: &str = "resource.type=\"cloud_run_revision\" AND resource.labels.service_name=\"api\" AND timestamp>=\"2026-11-23T08:00:00Z\" AND timestamp<\"2026-11-23T09:00:00Z\" AND severity>=ERROR";

fn entry(ts: &str, sev: &str, text: &str) -> serde_json::Value {
    json!({
        "textPayload": text,
        "insertId": format!("{ts}-id"),
        "resource": {"type": "cloud_run_revision", "labels": {
            "service_name": "api", "revision_name": "api-00002-xyz", "location": "europe-west1",
            "project_id": "acme-prod", "configuration_name": "api"}},
        "timestamp": ts,
        "severity": sev,
        "labels": {"instanceId": "00c61b117c"},
        "logName": "projects/acme-prod/logs/run.googleapis.com%2Fstderr",
        "receiveTimestamp": ts
    })
}

#[tokio::test]
async fn log_queries_send_the_typed_filter_and_follow_pages() {
    let server = MockServer::start().await;
    let request = |token: Option<&str>| {
        let mut b = json!({
            "resourceNames": ["projects/acme-prod"],
            "filter": FILTER,
            "orderBy": "timestamp asc",
            "pageSize": 2
        });
        if let Some(t) = token {
            b["pageToken"] = json!(t);
        }
        b
    };
    Mock::given(method("POST"))
        .and(path("/v2/entries:list"))
        .and(header("authorization", bearer().as_str()))
        .and(body_json(request(None)))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "entries": [entry("2026-11-23T08:10:00.123Z", "ERROR", "db timeout"),
                        entry("2026-11-23T08:11:00Z", "CRITICAL", "pool exhausted")],
            "nextPageToken": "EAE4AUo"
        })))
        .expect(2) // once for the page, once more for the count
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v2/entries:list"))
        .and(body_json(request(Some("EAE4AUo"))))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "entries": [entry("2026-11-23T08:12:00Z", "ERROR", "db timeout")]
        })))
        .expect(1)
        .mount(&server)
        .await;
    let logs = CloudLogging::new(client(&server, clock()), "api").unwrap();
    let q = LogQuery {
        page_size: 2,
        ..LogQuery::new(window()).min_severity(LogSeverity::Error)
    };
    let first = logs.query_page(&q).await.unwrap();
    assert_eq!(first.entries.len(), 2);
    assert_eq!(first.entries[1].severity, LogSeverity::Critical);
    assert_eq!(first.entries[0].release.as_deref(), Some("api-00002-xyz"));
    assert_eq!(
        first.entries[0].timestamp,
        "2026-11-23T08:10:00.123Z"
            .parse::<chrono::DateTime<chrono::Utc>>()
            .unwrap()
    );
    assert_eq!(logs.count(&q, 100).await.unwrap(), 3);
}

#[tokio::test]
async fn log_search_text_and_revision_are_escaped_into_the_filter() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v2/entries:list"))
        .and(body_json(json!({
            "resourceNames": ["projects/acme-prod"],
            "filter": "resource.type=\"cloud_run_revision\" AND resource.labels.service_name=\"api\" AND timestamp>=\"2026-11-23T08:00:00Z\" AND timestamp<\"2026-11-23T09:00:00Z\" AND resource.labels.revision_name=\"api-00002-xyz\" AND (textPayload:\"say \\\"hi\\\"\" OR jsonPayload.message:\"say \\\"hi\\\"\")",
            "orderBy": "timestamp asc",
            "pageSize": 1000
        })))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
        .expect(1)
        .mount(&server)
        .await;
    let logs = CloudLogging::new(client(&server, clock()), "api").unwrap();
    let q = LogQuery {
        contains: Some("say \"hi\"".into()),
        release: Some("api-00002-xyz".into()),
        ..LogQuery::new(window())
    };
    let page = logs.query_page(&q).await.unwrap();
    assert!(page.entries.is_empty() && page.next_page_token.is_none());
}

#[tokio::test]
async fn log_faults_are_typed_and_reads_are_retried() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v2/entries:list"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "1")
                .set_body_json(google_error(
                    429,
                    "RESOURCE_EXHAUSTED",
                    "Quota exceeded for quota metric 'Read requests'",
                )),
        )
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v2/entries:list"))
        .respond_with(ResponseTemplate::new(400).set_body_json(google_error(
            400,
            "INVALID_ARGUMENT",
            "Unparseable filter: syntax error at line 1, column 5",
        )))
        .mount(&server)
        .await;
    let logs = CloudLogging::new(client(&server, clock()), "api").unwrap();
    let err = logs.query_page(&LogQuery::new(window())).await.unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::InvalidInput { reason, .. } if reason.contains("Unparseable filter")),
        "{err}"
    );
    assert_eq!(
        server.received_requests().await.unwrap().len(),
        2,
        "the 429 was retried"
    );
}

fn series_query(server_path: &str) -> wiremock::MockBuilder {
    Mock::given(method("GET"))
        .and(path(server_path))
        .and(header("authorization", bearer().as_str()))
        .and(query_param("interval.startTime", "2026-11-23T08:00:00Z"))
        .and(query_param("interval.endTime", "2026-11-23T09:00:00Z"))
        .and(query_param("aggregation.alignmentPeriod", "3600s"))
}

const SERIES_PATH: &str = "/v3/projects/acme-prod/timeSeries";

fn count_series(class: &str, points: &[&str]) -> serde_json::Value {
    json!({
        "metric": {"type": "run.googleapis.com/request_count", "labels": {"response_code_class": class}},
        "resource": {"type": "cloud_run_revision", "labels": {"project_id": "acme-prod", "service_name": "api"}},
        "metricKind": "DELTA",
        "valueType": "INT64",
        "points": points.iter().map(|n| json!({
            "interval": {"startTime": "2026-11-23T08:00:00Z", "endTime": "2026-11-23T09:00:00Z"},
            "value": {"int64Value": n}
        })).collect::<Vec<_>>()
    })
}

#[tokio::test]
async fn the_error_ratio_sums_response_classes_across_pages() {
    let server = MockServer::start().await;
    let filter = "metric.type=\"run.googleapis.com/request_count\" AND resource.type=\"cloud_run_revision\" AND resource.labels.service_name=\"api\" AND resource.labels.revision_name=\"api-00002-xyz\"";
    series_query(SERIES_PATH)
        .and(query_param("filter", filter))
        .and(query_param("aggregation.perSeriesAligner", "ALIGN_DELTA"))
        .and(query_param("view", "FULL"))
        .and(query_param("aggregation.crossSeriesReducer", "REDUCE_SUM"))
        .and(query_param(
            "aggregation.groupByFields",
            "metric.labels.response_code_class",
        ))
        .and(query_param_is_missing("pageToken"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "timeSeries": [count_series("2xx", &["900", "50"]), count_series("4xx", &["20"])],
            "nextPageToken": "page-2",
            "unit": "1"
        })))
        .expect(1)
        .mount(&server)
        .await;
    series_query(SERIES_PATH)
        .and(query_param("pageToken", "page-2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "timeSeries": [count_series("5xx", &["30"])]
        })))
        .expect(1)
        .mount(&server)
        .await;
    let metrics = CloudMonitoring::new(client(&server, clock()), "api").unwrap();
    let reading = metrics
        .read(&MetricQuery {
            metric: Metric::ErrorRatio,
            window: window(),
            release: Some("api-00002-xyz".into()),
            min_samples: 100,
        })
        .await
        .unwrap();
    assert_eq!(
        reading,
        MetricReading::Value {
            value: 0.03,
            samples: 1000
        }
    );
}

#[tokio::test]
async fn latency_percentiles_come_from_merged_distributions() {
    let server = MockServer::start().await;
    let dist = |counts: &[&str]| {
        json!({
            "metric": {"type": "run.googleapis.com/request_latencies"},
            "resource": {"type": "cloud_run_revision", "labels": {"service_name": "api"}},
            "metricKind": "DELTA", "valueType": "DISTRIBUTION",
            "points": [{"interval": {"startTime": "2026-11-23T08:00:00Z", "endTime": "2026-11-23T09:00:00Z"},
                        "value": {"distributionValue": {
                            "count": counts.iter().map(|c| c.parse::<u64>().unwrap()).sum::<u64>().to_string(),
                            "mean": 120.5,
                            "bucketOptions": {"exponentialBuckets": {"numFiniteBuckets": 3, "growthFactor": 10, "scale": 1}},
                            "bucketCounts": counts}}}]
        })
    };
    series_query(SERIES_PATH)
        .and(query_param("aggregation.perSeriesAligner", "ALIGN_DELTA"))
        .and(query_param_is_missing("aggregation.crossSeriesReducer"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            // Buckets: (-inf,1) [1,10) [10,100) [100,1000) [1000,inf)
            "timeSeries": [dist(&["0", "0", "40", "40"]), dist(&["0", "0", "10", "0", "10"])],
            "unit": "ms"
        })))
        .mount(&server)
        .await;
    let metrics = CloudMonitoring::new(client(&server, clock()), "api").unwrap();
    let read = |p: f64| {
        let m = metrics.clone();
        async move {
            m.read(&MetricQuery {
                metric: Metric::LatencyPercentile { percentile: p },
                window: window(),
                release: None,
                min_samples: 1,
            })
            .await
            .unwrap()
        }
    };
    assert_eq!(
        read(50.0).await,
        MetricReading::Value {
            value: 100.0,
            samples: 100
        }
    );
    assert_eq!(
        read(95.0).await,
        MetricReading::Value {
            value: 1000.0,
            samples: 100
        }
    );
}

#[tokio::test]
async fn too_few_requests_is_insufficient_data_never_a_value() {
    let server = MockServer::start().await;
    series_query(SERIES_PATH)
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
        .mount(&server)
        .await;
    let metrics = CloudMonitoring::new(client(&server, clock()), "api").unwrap();
    let reading = metrics
        .read(&MetricQuery {
            metric: Metric::ErrorRatio,
            window: window(),
            release: None,
            min_samples: 100,
        })
        .await
        .unwrap();
    assert!(
        matches!(reading, MetricReading::InsufficientData { samples: 0, .. }),
        "{reading:?}"
    );
}

#[tokio::test]
async fn monitoring_faults_are_typed() {
    let server = MockServer::start().await;
    series_query(SERIES_PATH)
        .respond_with(ResponseTemplate::new(403).set_body_json(google_error(
            403,
            "PERMISSION_DENIED",
            "Permission monitoring.timeSeries.list denied (or the resource may not exist).",
        )))
        .mount(&server)
        .await;
    let metrics = CloudMonitoring::new(client(&server, clock()), "api").unwrap();
    let q = MetricQuery {
        metric: Metric::CpuUtilisation,
        window: window(),
        release: None,
        min_samples: 1,
    };
    assert!(matches!(
        metrics.read(&q).await.unwrap_err().kind(),
        ErrorKind::Forbidden { .. }
    ));
    let server = MockServer::start().await;
    series_query(SERIES_PATH)
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"timeSeries": [
            {"metric": {"type": "x"}, "points": [{"interval": {}, "value": {"doubleValue": 0.5}}]}
        ]})))
        .mount(&server)
        .await;
    let metrics = CloudMonitoring::new(client(&server, clock()), "api").unwrap();
    assert!(
        matches!(
            metrics.read(&q).await.unwrap_err().kind(),
            ErrorKind::Decode { .. }
        ),
        "a CPU point must be a distribution"
    );
}

/// A source that hands out a new token on each fetch.
#[derive(Debug, Default)]
struct Rotating(std::sync::atomic::AtomicU32);

#[async_trait]
impl TokenSource for Rotating {
    async fn fetch(&self) -> ops_core::Result<AccessToken> {
        let n = self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        Ok(AccessToken::new(format!("ya29.rotated-{n}"), None))
    }
}

#[tokio::test]
async fn a_revoked_token_is_refreshed_once() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(header("authorization", "Bearer ya29.rotated-1"))
        .respond_with(ResponseTemplate::new(401).set_body_json(google_error(
            401,
            "UNAUTHENTICATED",
            "Request had invalid authentication credentials.",
        )))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(header("authorization", "Bearer ya29.rotated-2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
        .expect(1)
        .mount(&server)
        .await;
    let auth = Arc::new(TokenProvider::new(Arc::new(Rotating::default())));
    let client = GcpClient::new(config(&server), auth)
        .unwrap()
        .with_clock(clock());
    let logs = CloudLogging::new(client, "api").unwrap();
    assert!(logs.query_page(&LogQuery::new(window())).await.is_ok());
}
