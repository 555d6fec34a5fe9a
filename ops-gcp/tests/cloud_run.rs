//! Cloud Run Admin API v2 with exact request shapes: paths, queries, the bearer header and
//! JSON bodies as the API reference gives them; long-running operations; the fault matrix.

mod support;

use std::time::Duration;

use ops_core::ErrorKind;
use ops_core::contracts::*;
use ops_gcp::CloudRun;
use serde_json::json;
use support::*;
use wiremock::matchers::{body_json, header, method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, ResponseTemplate};

const OP_PATH: &str = "/v2/projects/acme-prod/locations/europe-west1/operations/op-1";
const IMAGE_2: &str = "europe-docker.pkg.dev/acme-prod/app/api:1.1.0";

async fn get_service_returns(server: &MockServer, body: serde_json::Value) {
    Mock::given(method("GET"))
        .and(path(SERVICE_PATH))
        .and(header("authorization", bearer().as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(body))
        .mount(server)
        .await;
}

/// The service at rest: one ready revision with all traffic, etag 7.
async fn serves_stable(server: &MockServer) {
    get_service_returns(
        server,
        service("api-00001-abc", "api-00001-abc", latest_100(), "\"etag-7\""),
    )
    .await;
}

fn run(server: &MockServer, clock: std::sync::Arc<ops_core::clock::ManualClock>) -> CloudRun {
    CloudRun::new(client(server, clock), "api").unwrap()
}

#[tokio::test]
async fn current_reads_traffic_scale_and_etag() {
    let server = MockServer::start().await;
    serves_stable(&server).await;
    let state = run(&server, clock()).current().await.unwrap();
    assert!(state.serving);
    assert_eq!(state.primary_release(), Some("api-00001-abc"));
    assert_eq!(state.latest_ready.as_deref(), Some("api-00001-abc"));
    assert_eq!(state.etag.as_deref(), Some("\"etag-7\""));
    assert_eq!(
        state.url.as_deref(),
        Some("https://api-7f3kq2xyza-ew.a.run.app")
    );
    let scale = state.scale.unwrap();
    assert_eq!(scale.max_instances, Some(100));
    assert_eq!(scale.cpu.as_deref(), Some("1000m"));
    assert_eq!(scale.memory.as_deref(), Some("512Mi"));
}

#[tokio::test]
async fn deploy_pins_traffic_keeps_the_template_and_awaits_the_operation() {
    let server = MockServer::start().await;
    let clock = clock();
    serves_stable(&server).await;
    let mut template = template(IMAGE_2);
    template["labels"] = json!({"release": "r42"});
    Mock::given(method("PATCH"))
        .and(path(SERVICE_PATH))
        .and(query_param("updateMask", "template,traffic"))
        .and(query_param("forceNewRevision", "true"))
        .and(query_param_is_missing("validateOnly"))
        .and(header("authorization", bearer().as_str()))
        .and(header("content-type", "application/json"))
        .and(body_json(json!({
            "template": template,
            "traffic": [{"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION",
                         "revision": "api-00001-abc", "percent": 100}],
            "etag": "\"etag-7\""
        })))
        .respond_with(ResponseTemplate::new(200).set_body_json(operation("op-1", false, None)))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(OP_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_json(operation("op-1", false, None)))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    let done = service(
        "api-00002-xyz",
        "api-00002-xyz",
        json!([{"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION", "revision": "api-00001-abc", "percent": 100}]),
        "\"etag-8\"",
    );
    Mock::given(method("GET"))
        .and(path(OP_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_json(operation("op-1", true, Some(done))))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{SERVICE_PATH}/revisions/api-00002-xyz")))
        .respond_with(ResponseTemplate::new(200).set_body_json(revision(
            "api-00002-xyz",
            IMAGE_2,
            "2026-11-23T09:00:01.5Z",
            "CONDITION_SUCCEEDED",
        )))
        .mount(&server)
        .await;

    let mut request = DeployRequest::new(IMAGE_2);
    request.labels.insert("release".into(), "r42".into());
    let release = run(&server, clock.clone()).deploy(&request).await.unwrap();
    assert_eq!(release.id, "api-00002-xyz");
    assert_eq!(release.version, IMAGE_2);
    assert_eq!(release.state, ReleaseState::Ready);
    assert_eq!(
        clock.sleeps(),
        vec![Duration::from_millis(500), Duration::from_millis(750)],
        "the operation is polled with growing waits"
    );
}

#[tokio::test]
async fn deploy_with_all_traffic_follows_latest() {
    let server = MockServer::start().await;
    serves_stable(&server).await;
    let done = service("api-00002-xyz", "api-00002-xyz", latest_100(), "\"etag-8\"");
    Mock::given(method("PATCH"))
        .and(path(SERVICE_PATH))
        .and(body_json(json!({
            "template": template(IMAGE_2),
            "traffic": [{"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST", "percent": 100}],
            "etag": "\"etag-7\""
        })))
        .respond_with(ResponseTemplate::new(200).set_body_json(operation("op-1", true, Some(done))))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{SERVICE_PATH}/revisions/api-00002-xyz")))
        .respond_with(ResponseTemplate::new(200).set_body_json(revision(
            "api-00002-xyz",
            IMAGE_2,
            "2026-11-23T09:00:01Z",
            "CONDITION_SUCCEEDED",
        )))
        .mount(&server)
        .await;
    let request = DeployRequest {
        traffic: InitialTraffic::All,
        ..DeployRequest::new(IMAGE_2)
    };
    let release = run(&server, clock()).deploy(&request).await.unwrap();
    assert_eq!(release.id, "api-00002-xyz");
}

#[tokio::test]
async fn a_failed_operation_is_a_typed_error_with_its_message() {
    let server = MockServer::start().await;
    serves_stable(&server).await;
    let mut failed = operation("op-1", true, None);
    failed["error"] = json!({"code": 9, "message": "Revision 'api-00002-xyz' is not ready and cannot serve traffic. The user-provided container failed to start and listen on the port defined provided by the PORT=8080 environment variable."});
    Mock::given(method("PATCH"))
        .and(path(SERVICE_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_json(failed))
        .expect(1)
        .mount(&server)
        .await;
    let err = run(&server, clock())
        .deploy(&DeployRequest::new(IMAGE_2))
        .await
        .unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::Conflict { detail } if detail.contains("failed to start")),
        "{err}"
    );
}

#[tokio::test]
async fn an_operation_past_its_deadline_is_a_timeout() {
    let server = MockServer::start().await;
    let clock = clock();
    serves_stable(&server).await;
    Mock::given(method("PATCH"))
        .and(path(SERVICE_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_json(operation("op-1", false, None)))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(OP_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_json(operation("op-1", false, None)))
        .mount(&server)
        .await;
    let request = DeployRequest {
        deadline: Duration::from_secs(30),
        ..DeployRequest::new(IMAGE_2)
    };
    let err = run(&server, clock.clone())
        .deploy(&request)
        .await
        .unwrap_err();
    assert_eq!(
        err.kind(),
        &ErrorKind::Timeout {
            after: Duration::from_secs(30)
        }
    );
    assert_eq!(
        clock.sleeps().iter().sum::<Duration>(),
        Duration::from_secs(30)
    );
}

async fn two_revision_pages(server: &MockServer) {
    Mock::given(method("GET"))
        .and(path(format!("{SERVICE_PATH}/revisions")))
        .and(query_param("pageSize", "100"))
        .and(query_param_is_missing("pageToken"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "revisions": [revision("api-00002-xyz", IMAGE_2, "2026-11-23T09:00:01Z", "CONDITION_SUCCEEDED")],
            "nextPageToken": "CgxhcGktMDAwMDEtYWJj"
        })))
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{SERVICE_PATH}/revisions")))
        .and(query_param("pageToken", "CgxhcGktMDAwMDEtYWJj"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "revisions": [revision("api-00001-abc", "europe-docker.pkg.dev/acme-prod/app/api:1.0.0",
                                   "2026-11-20T16:12:00Z", "CONDITION_SUCCEEDED")]
        })))
        .mount(server)
        .await;
}

#[tokio::test]
async fn releases_follow_every_page_newest_first() {
    let server = MockServer::start().await;
    two_revision_pages(&server).await;
    let releases = run(&server, clock()).releases().await.unwrap();
    let ids: Vec<&str> = releases.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, vec!["api-00002-xyz", "api-00001-abc"]);
    assert_eq!(
        releases[1].version,
        "europe-docker.pkg.dev/acme-prod/app/api:1.0.0"
    );
}

#[tokio::test]
async fn set_traffic_sends_the_split_with_the_etag() {
    let server = MockServer::start().await;
    two_revision_pages(&server).await;
    get_service_returns(
        &server,
        service("api-00002-xyz", "api-00002-xyz",
            json!([{"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION", "revision": "api-00001-abc", "percent": 100},
                   {"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION", "revision": "api-00002-xyz", "tag": "canary"}]),
            "\"etag-8\""),
    )
    .await;
    let split_json = json!([
        {"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION", "revision": "api-00002-xyz", "percent": 10},
        {"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION", "revision": "api-00001-abc", "percent": 90},
        {"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION", "revision": "api-00002-xyz", "percent": 0, "tag": "canary"}
    ]);
    let done = service(
        "api-00002-xyz",
        "api-00002-xyz",
        split_json.clone(),
        "\"etag-9\"",
    );
    Mock::given(method("PATCH"))
        .and(path(SERVICE_PATH))
        .and(query_param("updateMask", "traffic"))
        .and(body_json(
            json!({"traffic": split_json, "etag": "\"etag-8\""}),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(operation("op-1", true, Some(done))))
        .expect(1)
        .mount(&server)
        .await;
    let split = TrafficSplit::new([("api-00002-xyz", 10), ("api-00001-abc", 90)]).unwrap();
    let state = run(&server, clock()).set_traffic(&split).await.unwrap();
    assert_eq!(state.primary_release(), Some("api-00001-abc"));
    assert_eq!(state.etag.as_deref(), Some("\"etag-9\""));
}

#[tokio::test]
async fn traffic_to_an_unknown_revision_is_refused_before_any_write() {
    let server = MockServer::start().await;
    two_revision_pages(&server).await;
    Mock::given(method("PATCH"))
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(&server)
        .await;
    let split = TrafficSplit::all_to("api-00009-zzz").unwrap();
    let err = run(&server, clock()).set_traffic(&split).await.unwrap_err();
    assert!(
        matches!(
            err.kind(),
            ErrorKind::InvalidInput { .. } | ErrorKind::NotFound { .. }
        ),
        "{err}"
    );
}

#[tokio::test]
async fn an_etag_mismatch_is_a_conflict_and_is_not_retried() {
    let server = MockServer::start().await;
    serves_stable(&server).await;
    Mock::given(method("PATCH"))
        .and(path(SERVICE_PATH))
        .respond_with(ResponseTemplate::new(409).set_body_json(google_error(
            409,
            "ABORTED",
            "Conflict for resource 'api': version '7' was specified but current version is '8'.",
        )))
        .expect(1)
        .mount(&server)
        .await;
    let err = run(&server, clock()).stop_serving().await.unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::Conflict { detail } if detail.contains("current version")),
        "{err}"
    );
}

/// Seed 000's daemon is kept up by minimum instances: closing the ingress alone would leave it
/// running. The stop closes ingress and pins the instances at zero in one write; resuming puts
/// back exactly what was there.
#[tokio::test]
async fn stop_serving_closes_ingress_stops_the_instances_and_set_traffic_restores_both() {
    let server = MockServer::start().await;
    let mut svc = service("api-00001-abc", "api-00001-abc", latest_100(), "\"etag-7\"");
    svc["scaling"] =
        json!({"minInstanceCount": 1, "maxInstanceCount": 4, "scalingMode": "AUTOMATIC"});
    get_service_returns(&server, svc.clone()).await;
    let before_scaling = r#"{"minInstanceCount":1,"maxInstanceCount":4,"scalingMode":"AUTOMATIC"}"#;
    let annotations = json!({
        "ops.rs/ingress-before-stop": "INGRESS_TRAFFIC_ALL",
        "ops.rs/scaling-before-stop": before_scaling,
    });
    let stopped_scaling = json!({"minInstanceCount": 1, "maxInstanceCount": 4,
                                 "scalingMode": "MANUAL", "manualInstanceCount": 0});
    let mut stopped = svc.clone();
    stopped["ingress"] = json!("INGRESS_TRAFFIC_NONE");
    stopped["scaling"] = stopped_scaling.clone();
    stopped["annotations"] = annotations.clone();
    stopped["etag"] = json!("\"etag-8\"");
    Mock::given(method("PATCH"))
        .and(path(SERVICE_PATH))
        .and(query_param("updateMask", "ingress,annotations,scaling"))
        .and(body_json(json!({
            "ingress": "INGRESS_TRAFFIC_NONE",
            "scaling": stopped_scaling,
            "annotations": annotations,
            "etag": "\"etag-7\""
        })))
        .respond_with(ResponseTemplate::new(200).set_body_json(operation(
            "op-1",
            true,
            Some(stopped.clone()),
        )))
        .expect(1)
        .mount(&server)
        .await;
    let state = run(&server, clock()).stop_serving().await.unwrap();
    assert!(!state.serving);
    assert!(state.traffic.is_empty());

    // Stopping again changes nothing and records nothing over what there was.
    let server = MockServer::start().await;
    get_service_returns(&server, stopped.clone()).await;
    Mock::given(method("PATCH"))
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(&server)
        .await;
    assert!(!run(&server, clock()).stop_serving().await.unwrap().serving);

    // Resuming: the stopped service is read, the old ingress and scaling come back.
    let server = MockServer::start().await;
    get_service_returns(&server, stopped).await;
    Mock::given(method("GET"))
        .and(path(format!("{SERVICE_PATH}/revisions")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "revisions": [revision("api-00001-abc", "img", "2026-11-20T16:12:00Z", "CONDITION_SUCCEEDED")]
        })))
        .mount(&server)
        .await;
    Mock::given(method("PATCH"))
        .and(path(SERVICE_PATH))
        .and(query_param("updateMask", "traffic,ingress,annotations,scaling"))
        .and(body_json(json!({
            "traffic": [{"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION", "revision": "api-00001-abc", "percent": 100}],
            "ingress": "INGRESS_TRAFFIC_ALL",
            "scaling": {"minInstanceCount": 1, "maxInstanceCount": 4, "scalingMode": "AUTOMATIC"},
            "annotations": {},
            "etag": "\"etag-8\""
        })))
        .respond_with(ResponseTemplate::new(200).set_body_json(operation("op-2", true, Some(svc))))
        .expect(1)
        .mount(&server)
        .await;
    let state = run(&server, clock())
        .set_traffic(&TrafficSplit::all_to("api-00001-abc").unwrap())
        .await
        .unwrap();
    assert!(state.serving);
}

#[tokio::test]
async fn scale_sets_service_level_instance_counts() {
    let server = MockServer::start().await;
    serves_stable(&server).await;
    let mut scaled = service("api-00001-abc", "api-00001-abc", latest_100(), "\"etag-8\"");
    scaled["scaling"] = json!({"minInstanceCount": 1, "maxInstanceCount": 4});
    Mock::given(method("PATCH"))
        .and(path(SERVICE_PATH))
        .and(query_param("updateMask", "scaling"))
        .and(body_json(json!({"scaling": {"minInstanceCount": 1, "maxInstanceCount": 4}, "etag": "\"etag-7\""})))
        .respond_with(ResponseTemplate::new(200).set_body_json(operation("op-1", true, Some(scaled))))
        .expect(1)
        .mount(&server)
        .await;
    let spec = ScaleSpec {
        min_instances: Some(1),
        max_instances: Some(4),
        ..Default::default()
    };
    let state = run(&server, clock()).scale(&spec).await.unwrap();
    let s = state.scale.unwrap();
    assert_eq!((s.min_instances, s.max_instances), (Some(1), Some(4)));
}

#[tokio::test]
async fn changing_cpu_while_traffic_is_split_is_refused() {
    let server = MockServer::start().await;
    get_service_returns(
        &server,
        service("api-00002-xyz", "api-00002-xyz",
            json!([{"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION", "revision": "api-00001-abc", "percent": 90},
                   {"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION", "revision": "api-00002-xyz", "percent": 10}]),
            "\"etag-8\""),
    )
    .await;
    Mock::given(method("PATCH"))
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(&server)
        .await;
    let spec = ScaleSpec {
        cpu: Some("2".into()),
        ..Default::default()
    };
    let err = run(&server, clock()).scale(&spec).await.unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::InvalidInput { field, .. } if field == "cpu"),
        "{err}"
    );
}

#[tokio::test]
async fn validate_uses_validate_only() {
    let server = MockServer::start().await;
    serves_stable(&server).await;
    Mock::given(method("PATCH"))
        .and(path(SERVICE_PATH))
        .and(query_param("updateMask", "template,traffic"))
        .and(query_param("validateOnly", "true"))
        .respond_with(ResponseTemplate::new(200).set_body_json(operation("op-v", true, None)))
        .expect(1)
        .mount(&server)
        .await;
    let v = run(&server, clock())
        .validate(&DeployAction::Deploy(DeployRequest::new(IMAGE_2)))
        .await
        .unwrap();
    assert_eq!(v, Validation::ValidatedByProvider);
}

// The fault matrix on a read (retried) and a write (not retried).

async fn read_with(fault: ResponseTemplate, times: u64) -> (ops_core::Result<ServiceState>, usize) {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(SERVICE_PATH))
        .respond_with(fault)
        .up_to_n_times(times)
        .mount(&server)
        .await;
    serves_stable(&server).await;
    let result = run(&server, clock()).current().await;
    (result, server.received_requests().await.unwrap().len())
}

fn error(status: u16, name: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(google_error(status, name, "injected"))
}

#[tokio::test]
async fn reads_fail_fast_on_client_errors() {
    let (r, n) = read_with(error(401, "UNAUTHENTICATED"), 1).await;
    assert_eq!(r.unwrap_err().kind(), &ErrorKind::Unauthorized);
    assert_eq!(n, 1, "a static token cannot be refreshed: no second try");
    let (r, _) = read_with(error(403, "PERMISSION_DENIED"), 1).await;
    assert!(matches!(r.unwrap_err().kind(), ErrorKind::Forbidden { .. }));
    let (r, _) = read_with(error(404, "NOT_FOUND"), 1).await;
    assert!(matches!(r.unwrap_err().kind(), ErrorKind::NotFound { .. }));
}

#[tokio::test]
async fn reads_retry_throttling_outages_and_server_errors() {
    let throttled = error(429, "RESOURCE_EXHAUSTED").insert_header("retry-after", "3");
    let (r, n) = read_with(throttled, 1).await;
    assert!(r.is_ok());
    assert_eq!(n, 2);
    let (r, n) = read_with(error(503, "UNAVAILABLE"), 2).await;
    assert!(r.is_ok());
    assert_eq!(n, 3);
    let (r, n) = read_with(error(500, "INTERNAL"), 1).await;
    assert!(r.is_ok());
    assert_eq!(n, 2);
    let (r, n) = read_with(error(503, "UNAVAILABLE"), 100).await;
    assert!(matches!(
        r.unwrap_err().kind(),
        ErrorKind::Unavailable { .. }
    ));
    assert_eq!(n, 5, "gives up after the policy's attempts");
}

#[tokio::test]
async fn reads_time_out_and_reject_malformed_json() {
    let slow = ResponseTemplate::new(200)
        .set_body_json(service("a", "a", latest_100(), "e"))
        .set_delay(Duration::from_secs(2));
    let (r, n) = read_with(slow, 1).await;
    assert!(r.is_ok(), "a timed-out read is retried");
    assert_eq!(n, 2);
    let truncated = ResponseTemplate::new(200)
        .set_body_raw(b"{\"name\": \"projects/acme".to_vec(), "application/json");
    let (r, _) = read_with(truncated, 1).await;
    assert!(matches!(r.unwrap_err().kind(), ErrorKind::Decode { .. }));
}

#[tokio::test]
async fn a_write_that_failed_on_the_server_is_not_repeated() {
    let server = MockServer::start().await;
    serves_stable(&server).await;
    Mock::given(method("PATCH"))
        .respond_with(error(500, "INTERNAL"))
        .expect(1)
        .mount(&server)
        .await;
    let err = run(&server, clock()).stop_serving().await.unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::Provider { status: 500, .. }),
        "{err}"
    );
}

#[tokio::test]
async fn health_reads_the_conditions() {
    let server = MockServer::start().await;
    let mut svc = service("api-00001-abc", "api-00002-xyz", latest_100(), "\"etag-7\"");
    svc["reconciling"] = json!(false);
    get_service_returns(&server, svc).await;
    let report = run(&server, clock()).health_probe().check().await.unwrap();
    assert_eq!(report.status, HealthStatus::Degraded);
    let rev = report
        .checks
        .iter()
        .find(|c| c.name == "latest-revision")
        .unwrap();
    assert!(
        rev.detail.contains("api-00002-xyz never became ready"),
        "{}",
        rev.detail
    );
}

#[tokio::test]
async fn route_all_to_latest_sends_one_latest_target() {
    let server = MockServer::start().await;
    get_service_returns(
        &server,
        service("api-00002-xyz", "api-00002-xyz",
            json!([{"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION", "revision": "api-00001-abc", "percent": 100}]),
            "\"etag-8\""),
    )
    .await;
    let done = service("api-00002-xyz", "api-00002-xyz", latest_100(), "\"etag-9\"");
    Mock::given(method("PATCH"))
        .and(path(SERVICE_PATH))
        .and(query_param("updateMask", "traffic"))
        .and(body_json(json!({
            "traffic": [{"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST", "percent": 100}],
            "etag": "\"etag-8\""
        })))
        .respond_with(ResponseTemplate::new(200).set_body_json(operation("op-1", true, Some(done))))
        .expect(1)
        .mount(&server)
        .await;
    let state = run(&server, clock()).route_all_to_latest().await.unwrap();
    assert_eq!(state.primary_release(), Some("api-00002-xyz"));
}
