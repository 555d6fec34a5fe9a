//! Cloud Run replies the official description allows and a convenient fake never sends: a
//! MANUAL service's `manualInstanceCount` and fields this crate does not know, and an ingress
//! that reads back as `INGRESS_TRAFFIC_UNSPECIFIED`.

mod support;

use ops_core::contracts::*;
use ops_gcp::CloudRun;
use serde_json::json;
use support::*;
use wiremock::matchers::{body_json, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn run(server: &MockServer) -> CloudRun {
    CloudRun::new(client(server, clock()), "api").unwrap()
}

async fn get_service_returns(server: &MockServer, body: serde_json::Value) {
    Mock::given(method("GET"))
        .and(path(SERVICE_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_json(body))
        .mount(server)
        .await;
}

/// `plan_scale` replaces the whole `scaling` message: what it does not change must go back as
/// it was read, or a MANUAL service loses its instance count. (Fields this crate does not know
/// are kept too: see `ServiceScaling::other`'s unit test; a fake field here would make the
/// request stray from the official description.)
#[tokio::test]
async fn scaling_keeps_the_manual_instance_count() {
    let server = MockServer::start().await;
    let mut svc = service("api-00001-abc", "api-00001-abc", latest_100(), "\"etag-7\"");
    svc["scaling"] = json!({"scalingMode": "MANUAL", "manualInstanceCount": 3,
                            "maxInstanceCount": 5, "minInstanceCount": 1});
    get_service_returns(&server, svc.clone()).await;
    let mut scaled = svc.clone();
    scaled["scaling"]["maxInstanceCount"] = json!(8);
    Mock::given(method("PATCH"))
        .and(path(SERVICE_PATH))
        .and(query_param("updateMask", "scaling"))
        .and(body_json(json!({
            "scaling": {"scalingMode": "MANUAL", "manualInstanceCount": 3, "maxInstanceCount": 8,
                        "minInstanceCount": 1},
            "etag": "\"etag-7\""
        })))
        .respond_with(ResponseTemplate::new(200).set_body_json(operation(
            "op-1",
            true,
            Some(scaled),
        )))
        .expect(1)
        .mount(&server)
        .await;
    let spec = ScaleSpec {
        max_instances: Some(8),
        ..Default::default()
    };
    let state = run(&server).scale(&spec).await.unwrap();
    assert_eq!(state.scale.unwrap().max_instances, Some(8));
}

#[tokio::test]
async fn an_unspecified_ingress_is_never_stored_or_called_healthy() {
    let server = MockServer::start().await;
    let mut svc = service("api-00001-abc", "api-00001-abc", latest_100(), "\"etag-7\"");
    svc["ingress"] = json!("INGRESS_TRAFFIC_UNSPECIFIED");
    get_service_returns(&server, svc.clone()).await;

    let health = run(&server).health_probe().check().await.unwrap();
    assert_ne!(health.status, HealthStatus::Healthy, "{health:?}");

    let mut stopped = svc.clone();
    stopped["ingress"] = json!("INGRESS_TRAFFIC_NONE");
    // What to restore later is the default (all), not the unspecified value read back.
    Mock::given(method("PATCH"))
        .and(path(SERVICE_PATH))
        .and(query_param("updateMask", "ingress,annotations,scaling"))
        .and(body_json(json!({
            "ingress": "INGRESS_TRAFFIC_NONE",
            "scaling": {"scalingMode": "MANUAL", "manualInstanceCount": 0},
            "annotations": {"ops.rs/ingress-before-stop": "INGRESS_TRAFFIC_ALL",
                            "ops.rs/scaling-before-stop": "{}"},
            "etag": "\"etag-7\""
        })))
        .respond_with(ResponseTemplate::new(200).set_body_json(operation(
            "op-1",
            true,
            Some(stopped),
        )))
        .expect(1)
        .mount(&server)
        .await;
    run(&server).stop_serving().await.unwrap();
}

/// A stop recorded by an older version (the unspecified value stored): resuming writes the
/// default back, never the unspecified value.
#[tokio::test]
async fn resuming_never_writes_an_unspecified_ingress_back() {
    let server = MockServer::start().await;
    let mut stopped = service("api-00001-abc", "api-00001-abc", latest_100(), "\"etag-8\"");
    stopped["ingress"] = json!("INGRESS_TRAFFIC_NONE");
    stopped["annotations"] = json!({"ops.rs/ingress-before-stop": "INGRESS_TRAFFIC_UNSPECIFIED"});
    get_service_returns(&server, stopped).await;
    Mock::given(method("GET"))
        .and(path(format!("{SERVICE_PATH}/revisions")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "revisions": [revision("api-00001-abc", "img", "2026-11-20T16:12:00Z", "CONDITION_SUCCEEDED")]
        })))
        .mount(&server)
        .await;
    let svc = service("api-00001-abc", "api-00001-abc", latest_100(), "\"etag-9\"");
    Mock::given(method("PATCH"))
        .and(path(SERVICE_PATH))
        .and(query_param(
            "updateMask",
            "traffic,ingress,annotations,scaling",
        ))
        .and(|req: &wiremock::Request| {
            let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
            body["ingress"] == "INGRESS_TRAFFIC_ALL" && body["scaling"] == serde_json::json!({})
        })
        .respond_with(ResponseTemplate::new(200).set_body_json(operation("op-2", true, Some(svc))))
        .expect(1)
        .mount(&server)
        .await;
    run(&server)
        .set_traffic(&TrafficSplit::all_to("api-00001-abc").unwrap())
        .await
        .unwrap();
}
