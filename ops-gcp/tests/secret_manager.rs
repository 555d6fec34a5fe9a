//! Secret Manager v1: exact request shapes, checksums both ways, states with etags, the fault
//! matrix, values that never leak, and the testkit suite against the simulator.

mod support;

use std::sync::Arc;

use ops_core::ErrorKind;
use ops_core::clock::ManualClock;
use ops_core::contracts::*;
use ops_core::runbooks::Procedure;
use ops_core::testkit;
use ops_gcp::SecretManager;
use ops_gcp::sim::GcpSim;
use serde_json::json;
use support::*;
use wiremock::matchers::{body_json, header, method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, ResponseTemplate};

const SECRETS: &str = "/v1/projects/acme-prod/secrets";
const VALUE: &str = "postgres://app:s3cr3t-Pa55@db/app";

fn crc(bytes: &[u8]) -> String {
    crc32c::crc32c(bytes).to_string()
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn store(server: &MockServer) -> SecretManager {
    SecretManager::new(client(server, clock()))
}

fn version(id: u32, state: &str, created: &str) -> serde_json::Value {
    json!({
        "name": format!("projects/123456789/secrets/db-url/versions/{id}"),
        "createTime": created,
        "state": state,
        "replicationStatus": {"automatic": {}},
        "etag": format!("\"16204b6c1e{id}\""),
        "clientSpecifiedPayloadChecksum": true
    })
}

#[tokio::test]
async fn read_decodes_and_verifies_the_payload() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("{SECRETS}/db-url/versions/latest:access")))
        .and(header("authorization", bearer().as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "name": "projects/123456789/secrets/db-url/versions/4",
            "payload": {"data": b64(VALUE.as_bytes()), "dataCrc32c": crc(VALUE.as_bytes())}
        })))
        .expect(1)
        .mount(&server)
        .await;
    let read = store(&server)
        .read("db-url", &VersionRef::Latest)
        .await
        .unwrap();
    assert_eq!(read.version, "4");
    assert_eq!(read.value.expose_str().unwrap(), VALUE);
    assert!(!format!("{read:?}").contains("s3cr3t"));
}

#[tokio::test]
async fn a_corrupted_payload_is_an_error_not_a_secret() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("{SECRETS}/db-url/versions/4:access")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "name": "projects/123456789/secrets/db-url/versions/4",
            "payload": {"data": b64(b"postgres://app:s3cr3t-Pa55@db/apq"), "dataCrc32c": crc(VALUE.as_bytes())}
        })))
        .mount(&server)
        .await;
    let err = store(&server)
        .read("db-url", &VersionRef::Id("4".into()))
        .await
        .unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::ChecksumMismatch { .. }),
        "{err}"
    );
    assert!(!format!("{err} {err:?}").contains("s3cr3t"));
}

#[tokio::test]
async fn add_version_sends_the_checksum_and_is_never_repeated() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("{SECRETS}/db-url:addVersion")))
        .and(header("content-type", "application/json"))
        .and(body_json(json!({"payload": {"data": b64(VALUE.as_bytes()), "dataCrc32c": crc(VALUE.as_bytes())}})))
        .respond_with(ResponseTemplate::new(200).set_body_json(version(5, "ENABLED", "2026-11-23T09:00:00.5Z")))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    let v = store(&server)
        .add_version("db-url", &VALUE.into())
        .await
        .unwrap();
    assert_eq!((v.id.as_str(), v.state), ("5", VersionState::Enabled));

    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("{SECRETS}/db-url:addVersion")))
        .respond_with(ResponseTemplate::new(500).set_body_json(google_error(
            500,
            "INTERNAL",
            "Internal error encountered.",
        )))
        .expect(1)
        .mount(&server)
        .await;
    let err = store(&server)
        .add_version("db-url", &VALUE.into())
        .await
        .unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::Provider { status: 500, .. }),
        "{err}"
    );
}

#[tokio::test]
async fn add_version_creates_a_missing_secret_first() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("{SECRETS}/new-key:addVersion")))
        .respond_with(ResponseTemplate::new(404).set_body_json(google_error(
            404,
            "NOT_FOUND",
            "Secret [projects/123456789/secrets/new-key] not found or has no versions.",
        )))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(SECRETS))
        .and(query_param("secretId", "new-key"))
        .and(body_json(json!({"replication": {"automatic": {}}, "labels": {"managed-by": "ops"}})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "name": "projects/123456789/secrets/new-key", "replication": {"automatic": {}},
            "createTime": "2026-11-23T09:00:00Z", "labels": {"managed-by": "ops"}, "etag": "\"1\""})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("{SECRETS}/new-key:addVersion")))
        .respond_with(ResponseTemplate::new(200).set_body_json(version(
            1,
            "ENABLED",
            "2026-11-23T09:00:01Z",
        )))
        .expect(1)
        .mount(&server)
        .await;
    let v = store(&server)
        .add_version("new-key", &"k-123".into())
        .await
        .unwrap();
    assert_eq!(v.id, "1");
}

/// `db-url` version 3, enabled, with its etag.
async fn serves_enabled_version_3(server: &MockServer) {
    Mock::given(method("GET"))
        .and(path(format!("{SECRETS}/db-url/versions/3")))
        .respond_with(ResponseTemplate::new(200).set_body_json(version(
            3,
            "ENABLED",
            "2026-10-01T00:00:00Z",
        )))
        .mount(server)
        .await;
}

#[tokio::test]
async fn disable_reads_the_etag_and_sends_it() {
    let server = MockServer::start().await;
    serves_enabled_version_3(&server).await;
    Mock::given(method("POST"))
        .and(path(format!("{SECRETS}/db-url/versions/3:disable")))
        .and(body_json(json!({"etag": "\"16204b6c1e3\""})))
        .respond_with(ResponseTemplate::new(200).set_body_json(version(
            3,
            "DISABLED",
            "2026-10-01T00:00:00Z",
        )))
        .expect(1)
        .mount(&server)
        .await;
    let v = store(&server).disable_version("db-url", "3").await.unwrap();
    assert_eq!(v.state, VersionState::Disabled);

    let server = MockServer::start().await;
    serves_enabled_version_3(&server).await;
    Mock::given(method("POST"))
        .and(path(format!("{SECRETS}/db-url/versions/3:destroy")))
        .respond_with(ResponseTemplate::new(409).set_body_json(google_error(
            409,
            "ABORTED",
            "etag mismatch",
        )))
        .expect(1)
        .mount(&server)
        .await;
    let err = store(&server)
        .destroy_version("db-url", "3")
        .await
        .unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Conflict { .. }), "{err}");
}

#[tokio::test]
async fn versions_follow_pages_and_secrets_carry_their_newest_enabled_version() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("{SECRETS}/db-url/versions")))
        .and(query_param("pageSize", "250"))
        .and(query_param_is_missing("pageToken"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "versions": [version(3, "ENABLED", "2026-11-01T00:00:00Z"), version(2, "DISABLED", "2026-08-01T00:00:00Z")],
            "nextPageToken": "CAE", "totalSize": 3
        })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{SECRETS}/db-url/versions")))
        .and(query_param("pageToken", "CAE"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "versions": [version(1, "DESTROYED", "2026-01-01T00:00:00Z")], "totalSize": 3
        })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{SECRETS}/db-url/versions")))
        .and(query_param("pageSize", "1"))
        .and(query_param("filter", "state:ENABLED"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "versions": [version(3, "ENABLED", "2026-11-01T00:00:00Z")], "nextPageToken": "x", "totalSize": 1
        })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(SECRETS))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "secrets": [{"name": "projects/123456789/secrets/db-url", "replication": {"automatic": {}},
                         "createTime": "2026-01-01T00:00:00Z", "labels": {"team": "payments"}, "etag": "\"3\""}],
            "totalSize": 1
        })))
        .mount(&server)
        .await;
    let s = store(&server);
    let versions = s.list_versions("db-url").await.unwrap();
    let ids: Vec<(&str, VersionState)> =
        versions.iter().map(|v| (v.id.as_str(), v.state)).collect();
    assert_eq!(
        ids,
        vec![
            ("3", VersionState::Enabled),
            ("2", VersionState::Disabled),
            ("1", VersionState::Destroyed)
        ]
    );
    let secrets = s.list_secrets().await.unwrap();
    assert_eq!(secrets[0].name, "db-url");
    assert_eq!(secrets[0].labels["team"], "payments");
    assert_eq!(
        secrets[0].updated_at,
        Some("2026-11-01T00:00:00Z".parse().unwrap())
    );
}

#[tokio::test]
async fn faults_are_typed_and_reads_retry() {
    let server = MockServer::start().await;
    let access = format!("{SECRETS}/db-url/versions/latest:access");
    Mock::given(method("GET"))
        .and(path(access.as_str()))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "1")
                .set_body_json(google_error(
                    429,
                    "RESOURCE_EXHAUSTED",
                    "Quota exceeded for quota metric 'Access requests'",
                )),
        )
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(access.as_str()))
        .respond_with(ResponseTemplate::new(403).set_body_json(google_error(
            403,
            "PERMISSION_DENIED",
            "Permission 'secretmanager.versions.access' denied",
        )))
        .mount(&server)
        .await;
    let err = store(&server)
        .read("db-url", &VersionRef::Latest)
        .await
        .unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Forbidden { .. }));
    assert_eq!(server.received_requests().await.unwrap().len(), 2);

    let err = store(&server)
        .read("../../etc", &VersionRef::Latest)
        .await
        .unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::InvalidInput { .. }),
        "names are checked before a request"
    );
}

async fn sim() -> GcpSim {
    let clock = Arc::new(ManualClock::starting_at(t0()));
    GcpSim::builder().clock(clock).start().await
}

#[tokio::test]
async fn secret_manager_passes_the_secret_store_suite() {
    let sim = sim().await;
    sim.put_secret("db-url", VALUE.as_bytes());
    sim.put_secret("api-key", b"k-0001-abcdef");
    let store = SecretManager::new(sim.client().unwrap());
    testkit::secret_store(
        &store,
        &testkit::SecretFixture {
            existing: vec![
                ("db-url".into(), VALUE.into()),
                ("api-key".into(), "k-0001-abcdef".into()),
            ],
            scratch: "scratch-secret".into(),
            missing: "no-such-secret".into(),
        },
    )
    .await;
}

#[tokio::test]
async fn the_rotation_runbook_rolls_secret_manager_and_cloud_run() {
    use ops_core::engine::{Mode, RunOutcome, Runner};
    use ops_core::runbooks::{GenerateSecret, RotateConfig, RotateSecret};
    let clock = Arc::new(ManualClock::starting_at(t0()));
    let sim = GcpSim::builder().clock(clock.clone()).start().await;
    sim.create_service("api", "img:1");
    sim.put_secret("api-key", b"k-0001-abcdef");
    let store = Arc::new(SecretManager::new(sim.client().unwrap()));
    let run = Arc::new(ops_gcp::CloudRun::new(sim.client().unwrap(), "api").unwrap());
    let before = run
        .current()
        .await
        .unwrap()
        .primary_release()
        .unwrap()
        .to_string();
    let generate: GenerateSecret =
        Arc::new(|| Box::pin(async { Ok(SecretValue::from("k-0002-ghijkl")) }));
    let report = RotateSecret::new(store.clone(), "api-key", generate, RotateConfig::default())
        .consumer(run.clone())
        .run(&Runner::new().with_clock(clock), Mode::Execute)
        .await
        .unwrap();
    assert_eq!(
        report.outcome,
        Some(RunOutcome::Succeeded),
        "{}",
        report.to_markdown()
    );
    let latest = store.read("api-key", &VersionRef::Latest).await.unwrap();
    assert_eq!(latest.value.expose_str().unwrap(), "k-0002-ghijkl");
    let versions = store.list_versions("api-key").await.unwrap();
    assert_eq!(
        versions[1].state,
        VersionState::Disabled,
        "the old value is disabled after the grace period"
    );
    let after = run
        .current()
        .await
        .unwrap()
        .primary_release()
        .unwrap()
        .to_string();
    assert_ne!(
        before, after,
        "Cloud Run rolled a new revision to pick up the secret"
    );
    let text = format!("{}{}", report.to_markdown(), report.to_json());
    assert!(
        !text.contains("k-0002") && !text.contains("k-0001"),
        "no value in the report"
    );
}
