//! Every reply the Google clients decode, in the shapes its official description allows
//! (derived by `ops_conformance::replies`): sparse, typical, unknown fields, empty objects, and
//! every enum value including one added later. A client may answer with a typed error where
//! the content makes no sense for it (a checksum that does not match), never with a decode
//! failure, and never a panic.

mod support;

use ops_conformance::replay::Replay;
use ops_conformance::replies::variants;
use ops_conformance::vendored;
use ops_core::contracts::*;
use ops_gcp::{CloudLogging, CloudMonitoring, CloudRun, CloudStorage, SecretManager};
use support::*;

#[tokio::test]
async fn storage_objects_in_every_described_shape() {
    let d = vendored("google-storage.v1.json");
    // A server always names the object it answers for.
    let keep = ["name", "generation"];
    Replay::new("GET", r"^/storage/v1/b/acme-backups/o/[^/]+$")
        .each(variants(&d, "Object", &keep), |base| async move {
            let store =
                CloudStorage::new(client_at(&base, clock()), "acme-backups", "backup/").unwrap();
            store.describe("a.db").await.map(|_| ())
        })
        .await;
    let keep = ["items[].name", "items[].generation"];
    Replay::new("GET", r"^/storage/v1/b/acme-backups/o$")
        .each(variants(&d, "Objects", &keep), |base| async move {
            let store =
                CloudStorage::new(client_at(&base, clock()), "acme-backups", "backup/").unwrap();
            store.list(&BackupFilter::default()).await.map(|_| ())
        })
        .await;
}

#[tokio::test]
async fn cloud_run_services_and_revisions_in_every_described_shape() {
    let d = vendored("google-run.v2.json");
    let revisions = serde_json::json!({"revisions": []});
    Replay::new(
        "GET",
        r"^/v2/projects/acme-prod/locations/europe-west1/services/api$",
    )
    .also("GET", r"/revisions$", revisions)
    .each(
        variants(&d, "GoogleCloudRunV2Service", &["name"]),
        |base| async move {
            let run = CloudRun::new(client_at(&base, clock()), "api").unwrap();
            run.current().await.map(|_| ())
        },
    )
    .await;
    let service = service("api-00001-abc", "api-00001-abc", latest_100(), "\"etag-7\"");
    Replay::new("GET", r"/revisions$")
        .also(
            "GET",
            r"^/v2/projects/acme-prod/locations/europe-west1/services/api$",
            service,
        )
        .each(
            variants(
                &d,
                "GoogleCloudRunV2ListRevisionsResponse",
                &["revisions[].name"],
            ),
            |base| async move {
                let run = CloudRun::new(client_at(&base, clock()), "api").unwrap();
                run.releases().await.map(|_| ())
            },
        )
        .await;
}

fn window() -> TimeWindow {
    TimeWindow::new(t0() - chrono::Duration::hours(1), t0()).unwrap()
}

#[tokio::test]
async fn logging_and_monitoring_pages_in_every_described_shape() {
    let d = vendored("google-logging.v2.json");
    Replay::new("POST", r"^/v2/entries:list$")
        .each(
            variants(&d, "ListLogEntriesResponse", &[]),
            |base| async move {
                let logs = CloudLogging::new(client_at(&base, clock()), "api").unwrap();
                logs.query_page(&LogQuery::new(window())).await.map(|_| ())
            },
        )
        .await;
    let d = vendored("google-monitoring.v3.json");
    Replay::new("GET", r"/timeSeries$")
        .each(
            variants(&d, "ListTimeSeriesResponse", &[]),
            |base| async move {
                let metrics = CloudMonitoring::new(client_at(&base, clock()), "api").unwrap();
                let q = MetricQuery {
                    metric: Metric::ErrorRatio,
                    window: window(),
                    release: None,
                    min_samples: 1,
                };
                metrics.read(&q).await.map(|_| ())
            },
        )
        .await;
}

#[tokio::test]
async fn secret_versions_in_every_described_shape() {
    let d = vendored("google-secretmanager.v1.json");
    // The response names the version it read, and carries a payload (whose empty `data`
    // proto3 JSON leaves out).
    Replay::new("GET", r":access$")
        .each(
            variants(&d, "AccessSecretVersionResponse", &["name", "payload"]),
            |base| async move {
                let sm = SecretManager::new(client_at(&base, clock()));
                sm.read("db-url", &VersionRef::Latest).await.map(|_| ())
            },
        )
        .await;
}

fn cost_query_params() -> Vec<ops_gcp::billing::bigquery::QueryParam> {
    vec![ops_gcp::billing::bigquery::QueryParam {
        name: "project",
        kind: "STRING",
        value: "acme-prod".into(),
    }]
}

/// One query against `base`, its rows dropped.
async fn run_query(base: String) -> ops_core::Result<()> {
    let client = client_at(&base, clock());
    let options = query_options();
    ops_gcp::billing::bigquery::query(
        &client,
        "acme-prod",
        "SELECT 1",
        &cost_query_params(),
        &options,
    )
    .await
    .map(|_| ())
}

fn query_options() -> ops_gcp::billing::bigquery::QueryOptions {
    ops_gcp::billing::bigquery::QueryOptions {
        page_size: 100,
        deadline: std::time::Duration::from_secs(60),
        location: None,
    }
}

#[tokio::test]
async fn bigquery_query_results_in_every_described_shape() {
    let d = vendored("google-bigquery.v2.json");
    let finished = serde_json::json!({"jobComplete": true, "totalRows": "0",
        "jobReference": {"projectId": "acme-prod", "jobId": "job_1"}});
    // BigQuery always says whether the job is complete, and names the job it made (the client
    // asks for a job: it sets no jobCreationMode).
    let keep = ["jobComplete", "jobReference.jobId"];
    Replay::new("POST", r"^/bigquery/v2/projects/acme-prod/queries$")
        .also(
            "GET",
            r"^/bigquery/v2/projects/acme-prod/queries/[^/]+$",
            finished.clone(),
        )
        .each(variants(&d, "QueryResponse", &keep), run_query)
        .await;
    let running = serde_json::json!({"jobComplete": false,
        "jobReference": {"projectId": "acme-prod", "jobId": "job_1"}});
    Replay::new("GET", r"^/bigquery/v2/projects/acme-prod/queries/[^/]+$")
        .then(finished)
        .also(
            "POST",
            r"^/bigquery/v2/projects/acme-prod/queries$",
            running,
        )
        .each(
            variants(&d, "GetQueryResultsResponse", &["jobComplete"]),
            run_query,
        )
        .await;
}

#[tokio::test]
async fn budgets_in_every_described_shape() {
    use ops_gcp::billing::{BillingExport, BillingExportConfig};
    let d = vendored("google-billingbudgets.v1.json");
    Replay::new("GET", r"^/v1/billingAccounts/0123AB-4567CD-89EF01/budgets$")
        .each(
            variants(&d, "GoogleCloudBillingBudgetsV1ListBudgetsResponse", &[]),
            |base| async move {
                let config = BillingExportConfig::new("acme-prod.billing.gcp_billing_export_v1_X")
                    .billing_account("0123AB-4567CD-89EF01");
                let bill = BillingExport::new(client_at(&base, clock()), config).unwrap();
                bill.budgets().await.map(|_| ())
            },
        )
        .await;
}
