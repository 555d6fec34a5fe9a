//! Shared set-up of the wiremock tests: a client on a manual clock and real response shapes
//! from the Cloud Run Admin API v2 reference.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use ops_core::clock::ManualClock;
use ops_core::http::HttpConfig;
use ops_gcp::auth::TokenProvider;
use ops_gcp::{Endpoints, GcpClient, GcpConfig};
use serde_json::{Value, json};
use wiremock::MockServer;

pub const TOKEN: &str = "ya29.test-token";
pub const SERVICE: &str = "projects/acme-prod/locations/europe-west1/services/api";
pub const SERVICE_PATH: &str = "/v2/projects/acme-prod/locations/europe-west1/services/api";

pub fn t0() -> DateTime<Utc> {
    "2026-11-23T09:00:00Z".parse().unwrap()
}

pub fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::starting_at(t0()))
}

pub fn config(server: &MockServer) -> GcpConfig {
    config_at(&server.uri())
}

/// A configuration whose every endpoint is `base`.
pub fn config_at(base: &str) -> GcpConfig {
    let mut config = GcpConfig::new("acme-prod", "europe-west1");
    config.endpoints = Endpoints::all_at(base).unwrap();
    config.http = HttpConfig {
        request_timeout: Duration::from_millis(300),
        read_timeout: Duration::from_millis(300),
        ..HttpConfig::default()
    };
    config
}

pub fn client(server: &MockServer, clock: Arc<ManualClock>) -> GcpClient {
    client_at(&server.uri(), clock)
}

/// A client whose every endpoint is `base`.
pub fn client_at(base: &str, clock: Arc<ManualClock>) -> GcpClient {
    let auth = TokenProvider::static_token(TOKEN).with_clock(clock.clone());
    GcpClient::new(config_at(base), Arc::new(auth))
        .unwrap()
        .with_clock(clock)
}

pub fn bearer() -> String {
    format!("Bearer {TOKEN}")
}

/// The service's template as the API returns it: more than this crate changes, so a write
/// that loses a field shows.
pub fn template(image: &str) -> Value {
    json!({
        "scaling": {"maxInstanceCount": 100},
        "timeout": "300s",
        "serviceAccount": "api@acme-prod.iam.gserviceaccount.com",
        "containers": [{
            "image": image,
            "ports": [{"name": "http1", "containerPort": 8080}],
            "env": [{"name": "DATABASE_URL",
                     "valueSource": {"secretKeyRef": {"secret": "db-url", "version": "latest"}}}],
            "resources": {"limits": {"cpu": "1000m", "memory": "512Mi"}, "cpuIdle": true,
                          "startupCpuBoost": true},
            "startupProbe": {"timeoutSeconds": 240, "periodSeconds": 240, "failureThreshold": 1,
                             "tcpSocket": {"port": 8080}}
        }],
        "maxInstanceRequestConcurrency": 80
    })
}

/// A ready service on revision `ready`, `traffic` as given (statuses equal to it).
pub fn service(ready: &str, created: &str, traffic: Value, etag: &str) -> Value {
    json!({
        "name": SERVICE,
        "uid": "0d5a1c1e-7c1b-4a43-9d0e-2f1f8a4c2b6e",
        "generation": "7",
        "labels": {"team": "payments"},
        "createTime": "2026-01-10T08:00:00.123456Z",
        "updateTime": "2026-11-20T16:12:03.551213Z",
        "creator": "deployer@acme-prod.iam.gserviceaccount.com",
        "lastModifier": "deployer@acme-prod.iam.gserviceaccount.com",
        "ingress": "INGRESS_TRAFFIC_ALL",
        "launchStage": "GA",
        "template": template("europe-docker.pkg.dev/acme-prod/app/api:1.0.0"),
        "traffic": traffic.clone(),
        "observedGeneration": "7",
        "terminalCondition": {"type": "Ready", "state": "CONDITION_SUCCEEDED",
                              "lastTransitionTime": "2026-11-20T16:12:40.120000Z"},
        "conditions": [
            {"type": "RoutesReady", "state": "CONDITION_SUCCEEDED",
             "lastTransitionTime": "2026-11-20T16:12:40.120000Z"},
            {"type": "ConfigurationsReady", "state": "CONDITION_SUCCEEDED",
             "lastTransitionTime": "2026-11-20T16:12:35.004000Z"}
        ],
        "latestReadyRevision": format!("{SERVICE}/revisions/{ready}"),
        "latestCreatedRevision": format!("{SERVICE}/revisions/{created}"),
        "trafficStatuses": traffic,
        "uri": "https://api-7f3kq2xyza-ew.a.run.app",
        "urls": ["https://api-123456789.europe-west1.run.app"],
        "etag": etag
    })
}

pub fn latest_100() -> Value {
    json!([{"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST", "percent": 100}])
}

pub fn revision(id: &str, image: &str, created: &str, state: &str) -> Value {
    json!({
        "name": format!("{SERVICE}/revisions/{id}"),
        "uid": format!("uid-{id}"),
        "generation": "1",
        "labels": {"client.knative.dev/nonce": "x1y2"},
        "createTime": created,
        "updateTime": created,
        "launchStage": "GA",
        "service": SERVICE,
        "scaling": {"maxInstanceCount": 100},
        "containers": [{"image": image, "resources": {"limits": {"cpu": "1000m", "memory": "512Mi"}}}],
        "conditions": [
            {"type": "Ready", "state": state, "lastTransitionTime": created},
            {"type": "ContainerHealthy", "state": state, "lastTransitionTime": created}
        ],
        "observedGeneration": "1",
        "logUri": "https://console.cloud.google.com/logs/viewer?project=acme-prod",
        "etag": format!("\"{id}\"")
    })
}

pub fn operation(name: &str, done: bool, response: Option<Value>) -> Value {
    let mut op = json!({
        "name": format!("projects/acme-prod/locations/europe-west1/operations/{name}"),
        "metadata": {"@type": "type.googleapis.com/google.cloud.run.v2.Service", "name": SERVICE},
        "done": done
    });
    if let Some(mut r) = response {
        r["@type"] = json!("type.googleapis.com/google.cloud.run.v2.Service");
        op["response"] = r;
    }
    op
}

pub fn google_error(code: u16, status: &str, message: &str) -> Value {
    json!({"error": {"code": code, "message": message, "status": status}})
}

pub mod fake_gcs;

/// A simulator on a manual clock (Monday 2026-11-23, 09:00 UTC) whose operations take `delay`,
/// holding the Cloud SQL instance `main-db` with `runs` daily backups, and a `CloudSql` of it
/// polling every 10 to 30 s.
pub async fn sql_sim(
    delay: Duration,
    runs: u32,
) -> (ops_gcp::sim::GcpSim, Arc<ManualClock>, ops_gcp::CloudSql) {
    let clock = clock();
    let sim = ops_gcp::sim::GcpSim::builder()
        .clock(clock.clone())
        .operation_delay(delay)
        .start()
        .await;
    sim.create_sql_instance("main-db", runs);
    let sql = ops_gcp::CloudSql::new(sim.client().unwrap(), "main-db")
        .unwrap()
        .with_operations(
            ops_gcp::client::OperationPolling {
                initial: Duration::from_secs(10),
                max: Duration::from_secs(30),
            },
            Duration::from_secs(1800),
        );
    (sim, clock, sql)
}
