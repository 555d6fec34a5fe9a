//! Every reply the Google clients decode, in the shapes its official description allows
//! (derived by `ops_conformance::replies`): sparse, typical, unknown fields, empty objects, and
//! every enum value including one added later. A client may answer with a typed error where
//! the content makes no sense for it (a checksum that does not match), never with a decode
//! failure, and never a panic.

mod support;

use std::future::Future;

use ops_conformance::replies::{Variant, variants};
use ops_conformance::vendored;
use ops_core::ErrorKind;
use ops_core::contracts::*;
use ops_gcp::{CloudLogging, CloudMonitoring, CloudRun, CloudStorage, SecretManager};
use serde_json::Value;
use support::*;
use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// Serves each variant at `(verb, path_pattern)` and runs `call`; collects every decode
/// failure (with the variant's name) and fails with all of them.
async fn each<F, Fut>(
    replies: Vec<Variant>,
    verb: &str,
    pattern: &str,
    extra: Vec<(&str, &str, Value)>,
    call: F,
) where
    F: Fn(MockServer) -> Fut,
    Fut: Future<Output = (MockServer, ops_core::Result<()>)>,
{
    assert!(!replies.is_empty(), "no variants: the schema name is wrong");
    let mut failures = Vec::new();
    let mut server = MockServer::start().await;
    for v in replies {
        server.reset().await;
        // The variant answers the first request; a listing's next page is empty, as a real
        // server's last page would be.
        Mock::given(method(verb))
            .and(path_regex(pattern))
            .respond_with(ResponseTemplate::new(200).set_body_json(&v.value))
            .up_to_n_times(1)
            .mount(&server)
            .await;
        Mock::given(method(verb))
            .and(path_regex(pattern))
            .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({})))
            .mount(&server)
            .await;
        for (m, p, body) in &extra {
            Mock::given(method(*m))
                .and(path_regex(*p))
                .respond_with(ResponseTemplate::new(200).set_body_json(body))
                .mount(&server)
                .await;
        }
        let (back, result) = call(server).await;
        server = back;
        if let Err(e) = result
            && matches!(e.kind(), ErrorKind::Decode { .. })
        {
            failures.push(format!("{}: {e}\n    reply: {}", v.name, v.value));
        }
    }
    assert!(
        failures.is_empty(),
        "valid replies refused:\n{}",
        failures.join("\n")
    );
}

#[tokio::test]
async fn storage_objects_in_every_described_shape() {
    let d = vendored("google-storage.v1.json");
    // A server always names the object it answers for.
    let keep = ["name", "generation"];
    each(
        variants(&d, "Object", &keep),
        "GET",
        r"^/storage/v1/b/acme-backups/o/[^/]+$",
        vec![],
        |server| async move {
            let store =
                CloudStorage::new(client(&server, clock()), "acme-backups", "backup/").unwrap();
            let r = store.describe("a.db").await.map(|_| ());
            (server, r)
        },
    )
    .await;
    let keep = ["items[].name", "items[].generation"];
    each(
        variants(&d, "Objects", &keep),
        "GET",
        r"^/storage/v1/b/acme-backups/o$",
        vec![],
        |server| async move {
            let store =
                CloudStorage::new(client(&server, clock()), "acme-backups", "backup/").unwrap();
            let r = store.list(&BackupFilter::default()).await.map(|_| ());
            (server, r)
        },
    )
    .await;
}

#[tokio::test]
async fn cloud_run_services_and_revisions_in_every_described_shape() {
    let d = vendored("google-run.v2.json");
    let revisions = serde_json::json!({"revisions": []});
    each(
        variants(&d, "GoogleCloudRunV2Service", &["name"]),
        "GET",
        r"^/v2/projects/acme-prod/locations/europe-west1/services/api$",
        vec![("GET", r"/revisions$", revisions)],
        |server| async move {
            let run = CloudRun::new(client(&server, clock()), "api").unwrap();
            let r = run.current().await.map(|_| ());
            (server, r)
        },
    )
    .await;
    let service = service("api-00001-abc", "api-00001-abc", latest_100(), "\"etag-7\"");
    each(
        variants(
            &d,
            "GoogleCloudRunV2ListRevisionsResponse",
            &["revisions[].name"],
        ),
        "GET",
        r"/revisions$",
        vec![(
            "GET",
            r"^/v2/projects/acme-prod/locations/europe-west1/services/api$",
            service,
        )],
        |server| async move {
            let run = CloudRun::new(client(&server, clock()), "api").unwrap();
            let r = run.releases().await.map(|_| ());
            (server, r)
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
    each(
        variants(&d, "ListLogEntriesResponse", &[]),
        "POST",
        r"^/v2/entries:list$",
        vec![],
        |server| async move {
            let logs = CloudLogging::new(client(&server, clock()), "api").unwrap();
            let r = logs.query_page(&LogQuery::new(window())).await.map(|_| ());
            (server, r)
        },
    )
    .await;
    let d = vendored("google-monitoring.v3.json");
    each(
        variants(&d, "ListTimeSeriesResponse", &[]),
        "GET",
        r"/timeSeries$",
        vec![],
        |server| async move {
            let metrics = CloudMonitoring::new(client(&server, clock()), "api").unwrap();
            let q = MetricQuery {
                metric: Metric::ErrorRatio,
                window: window(),
                release: None,
                min_samples: 1,
            };
            let r = metrics.read(&q).await.map(|_| ());
            (server, r)
        },
    )
    .await;
}

#[tokio::test]
async fn secret_versions_in_every_described_shape() {
    let d = vendored("google-secretmanager.v1.json");
    // The response names the version it read, and carries a payload (whose empty `data`
    // proto3 JSON leaves out).
    each(
        variants(&d, "AccessSecretVersionResponse", &["name", "payload"]),
        "GET",
        r":access$",
        vec![],
        |server| async move {
            let sm = SecretManager::new(client(&server, clock()));
            let r = sm.read("db-url", &VersionRef::Latest).await.map(|_| ());
            (server, r)
        },
    )
    .await;
}
