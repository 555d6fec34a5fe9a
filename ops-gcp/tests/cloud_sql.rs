//! Cloud SQL Admin v1 managed backups: exact request shapes, operations polled to DONE,
//! failed operations, the backup configuration, and the testkit suite against the simulator.

mod support;

use std::sync::Arc;
use std::time::Duration;

use ops_core::ErrorKind;
use ops_core::clock::ManualClock;
use ops_core::contracts::*;
use ops_core::testkit;
use ops_gcp::CloudSql;
use ops_gcp::sim::GcpSim;
use serde_json::json;
use support::*;
use wiremock::matchers::{body_json, header, method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, ResponseTemplate};

const INSTANCE: &str = "/v1/projects/acme-prod/instances/main-db";
const OPS: &str = "/v1/projects/acme-prod/operations";

fn sql(server: &MockServer) -> CloudSql {
    CloudSql::new(client(server, clock()), "main-db").unwrap()
}

fn op(name: &str, status: &str, kind: &str) -> serde_json::Value {
    json!({
        "kind": "sql#operation",
        "targetLink": "https://sqladmin.googleapis.com/v1/projects/acme-prod/instances/main-db",
        "status": status,
        "user": "ops@acme-prod.iam.gserviceaccount.com",
        "insertTime": "2026-11-23T09:00:00.100Z",
        "operationType": kind,
        "name": name,
        "targetId": "main-db",
        "selfLink": format!("https://sqladmin.googleapis.com/v1/projects/acme-prod/operations/{name}"),
        "targetProject": "acme-prod"
    })
}

fn run(id: &str, status: &str, start: &str) -> serde_json::Value {
    json!({
        "kind": "sql#backupRun", "status": status, "enqueuedTime": start, "id": id,
        "startTime": start, "endTime": start, "type": "ON_DEMAND", "description": "pre-deploy",
        "windowStartTime": start, "instance": "main-db", "location": "europe-west1",
        "backupKind": "SNAPSHOT", "databaseVersion": "POSTGRES_15",
        "selfLink": format!("https://sqladmin.googleapis.com/v1/projects/acme-prod/instances/main-db/backupRuns/{id}")
    })
}

#[tokio::test]
async fn create_posts_a_backup_run_and_polls_the_operation() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("{INSTANCE}/backupRuns")))
        .and(header("authorization", bearer().as_str()))
        .and(body_json(json!({"description": "pre-deploy"})))
        .respond_with(ResponseTemplate::new(200).set_body_json(op(
            "a1b2c3",
            "PENDING",
            "BACKUP_VOLUME",
        )))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{OPS}/a1b2c3")))
        .respond_with(ResponseTemplate::new(200).set_body_json(op(
            "a1b2c3",
            "RUNNING",
            "BACKUP_VOLUME",
        )))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    let mut done = op("a1b2c3", "DONE", "BACKUP_VOLUME");
    done["backupContext"] = json!({"kind": "sql#backupContext", "backupId": "1763900000123"});
    Mock::given(method("GET"))
        .and(path(format!("{OPS}/a1b2c3")))
        .respond_with(ResponseTemplate::new(200).set_body_json(done))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{INSTANCE}/backupRuns/1763900000123")))
        .respond_with(ResponseTemplate::new(200).set_body_json(run(
            "1763900000123",
            "SUCCESSFUL",
            "2026-11-23T09:00:01.000Z",
        )))
        .mount(&server)
        .await;
    let info = sql(&server)
        .create(&CreateBackup {
            source: "main-db".into(),
            name: Some("pre-deploy".into()),
            labels: Default::default(),
        })
        .await
        .unwrap();
    assert_eq!(info.id, "1763900000123");
    assert_eq!(info.state, BackupState::Complete);
    assert_eq!(info.labels["description"], "pre-deploy");
}

#[tokio::test]
async fn a_failed_operation_carries_its_codes() {
    let server = MockServer::start().await;
    let mut failed = op("f00", "DONE", "BACKUP_VOLUME");
    failed["error"] = json!({"kind": "sql#operationErrors", "errors": [
        {"kind": "sql#operationError", "code": "BACKUP_FAILED", "message": "Backup failed: disk quota exceeded"}]});
    Mock::given(method("POST"))
        .and(path(format!("{INSTANCE}/backupRuns")))
        .respond_with(ResponseTemplate::new(200).set_body_json(failed))
        .expect(1)
        .mount(&server)
        .await;
    let err = sql(&server)
        .create(&CreateBackup {
            source: String::new(),
            name: None,
            labels: Default::default(),
        })
        .await
        .unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::Provider { code: Some(c), body_excerpt, .. }
        if c == "BACKUP_FAILED" && body_excerpt.contains("disk quota")),
        "{err}"
    );
}

#[tokio::test]
async fn list_keeps_complete_runs_across_pages() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("{INSTANCE}/backupRuns")))
        .and(query_param("maxResults", "500"))
        .and(query_param_is_missing("pageToken"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"kind": "sql#backupRunsList",
            "items": [run("3", "RUNNING", "2026-11-23T09:00:00Z"), run("2", "SUCCESSFUL", "2026-11-22T03:00:00Z")],
            "nextPageToken": "Mg"})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{INSTANCE}/backupRuns")))
        .and(query_param("pageToken", "Mg"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"kind": "sql#backupRunsList",
            "items": [run("1", "FAILED", "2026-11-21T03:00:00Z"), run("0", "SUCCESSFUL", "2026-11-20T03:00:00Z")]})))
        .mount(&server)
        .await;
    let ids: Vec<String> = sql(&server)
        .list(&BackupFilter::default())
        .await
        .unwrap()
        .into_iter()
        .map(|b| b.id)
        .collect();
    assert_eq!(ids, vec!["2", "0"]);
}

#[tokio::test]
async fn restore_names_the_source_instance_and_run() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/projects/acme-prod/instances/restore-check/restoreBackup"))
        .and(body_json(json!({"restoreBackupContext": {"backupRunId": "1763900000123", "instanceId": "main-db", "project": "acme-prod"}})))
        .respond_with(ResponseTemplate::new(200).set_body_json(op("r1", "DONE", "RESTORE_VOLUME")))
        .expect(1)
        .mount(&server)
        .await;
    let out = sql(&server)
        .restore(
            "1763900000123",
            &RestoreTarget::Other("restore-check".into()),
        )
        .await
        .unwrap();
    assert_eq!(out.target, "restore-check");
}

#[tokio::test]
async fn the_backup_configuration_is_typed() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(INSTANCE))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "kind": "sql#instance", "name": "main-db", "state": "RUNNABLE", "databaseVersion": "POSTGRES_15",
            "settings": {"tier": "db-custom-2-7680", "backupConfiguration": {
                "kind": "sql#backupConfiguration", "enabled": true, "startTime": "03:00",
                "pointInTimeRecoveryEnabled": true, "transactionLogRetentionDays": 7,
                "backupRetentionSettings": {"retentionUnit": "COUNT", "retainedBackups": 14},
                "backupTier": "STANDARD"}}})))
        .mount(&server)
        .await;
    let c = sql(&server).backup_configuration().await.unwrap();
    assert!(c.enabled && c.point_in_time_recovery_enabled);
    assert_eq!(c.start_time.as_deref(), Some("03:00"));
    assert_eq!(
        c.backup_retention_settings.unwrap().retained_backups,
        Some(14)
    );
}

#[tokio::test]
async fn faults_are_typed() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("{INSTANCE}/backupRuns/42")))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"error": {"code": 404,
            "message": "The Cloud SQL backup run does not exist.",
            "errors": [{"message": "The Cloud SQL backup run does not exist.", "domain": "global", "reason": "backupRunDoesNotExist"}]}})))
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path(format!("{INSTANCE}/backupRuns/43")))
        .respond_with(ResponseTemplate::new(409).set_body_json(json!({"error": {"code": 409,
            "message": "Operation failed because another operation was already in progress.",
            "errors": [{"message": "Operation failed because another operation was already in progress.", "domain": "global", "reason": "operationInProgress"}]}})))
        .expect(1)
        .mount(&server)
        .await;
    let s = sql(&server);
    assert!(matches!(
        s.describe("42").await.unwrap_err().kind(),
        ErrorKind::NotFound { .. }
    ));
    assert!(matches!(
        s.delete("43").await.unwrap_err().kind(),
        ErrorKind::Conflict { .. }
    ));
    assert!(matches!(
        s.get_artifact("42").await.map(|_| ()).unwrap_err().kind(),
        ErrorKind::Unsupported { .. }
    ));
}

async fn sim() -> (GcpSim, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::starting_at(t0()));
    let sim = GcpSim::builder()
        .clock(clock.clone())
        .operation_delay(Duration::from_secs(90))
        .start()
        .await;
    sim.create_sql_instance("main-db", 3);
    sim.create_sql_instance("restore-check", 0);
    (sim, clock)
}

#[tokio::test]
async fn cloud_sql_passes_the_backup_store_suite() {
    let (sim, _) = sim().await;
    let store = CloudSql::new(sim.client().unwrap(), "main-db").unwrap();
    let fixture = testkit::BackupFixture {
        create_source: Some(CreateBackup {
            source: "main-db".into(),
            name: None,
            labels: Default::default(),
        }),
        restore_target: Some(RestoreTarget::Other("restore-check".into())),
        ..testkit::BackupFixture::new("suite")
    };
    testkit::backup_store(&store, &fixture).await;
    assert!(sim.sql_restored_from("restore-check").is_some());
}

#[tokio::test]
async fn a_failed_backup_in_the_simulator_is_an_error_and_never_lists() {
    let (sim, _) = sim().await;
    let store = CloudSql::new(sim.client().unwrap(), "main-db").unwrap();
    let before = store.list(&BackupFilter::default()).await.unwrap().len();
    sim.fail_next_sql_backup();
    let err = store
        .create(&CreateBackup {
            source: "main-db".into(),
            name: None,
            labels: Default::default(),
        })
        .await
        .unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::Provider { code: Some(c), .. } if c == "BACKUP_FAILED"),
        "{err}"
    );
    assert_eq!(
        store.list(&BackupFilter::default()).await.unwrap().len(),
        before
    );
    assert_eq!(before, 3);
}
