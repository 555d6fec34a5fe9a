//! Vercel logs and request counts: the testkit suites on the simulator, the runtime-log
//! stream's documented shapes (from Vercel's SDK types), broken streams, and faults.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use ops_conformance::replay::Replay;
use ops_conformance::replies::variants;
use ops_conformance::vendored;
use ops_core::ErrorKind;
use ops_core::clock::{Clock, ManualClock};
use ops_core::contracts::*;
use ops_core::sim::Simulator;
use ops_core::testkit::{self, CountsFixture, LogFixture, MetricsFixture};
use ops_vercel::sim::{Fault, VercelSim};
use ops_vercel::{VercelClient, VercelConfig, VercelDeployer, VercelLogs, VercelRequests};
use serde_json::json;

fn t0() -> DateTime<Utc> {
    "2026-11-23T09:00:00Z".parse().unwrap()
}

async fn sim() -> (VercelSim, Arc<ManualClock>, VercelLogs) {
    let clock = Arc::new(ManualClock::starting_at(t0()));
    let sim = VercelSim::builder()
        .clock(clock.clone())
        .build_time(Duration::from_secs(40))
        .start()
        .await;
    let logs = VercelLogs::new(
        sim.deployer(Duration::from_secs(5)).unwrap(),
        Default::default(),
    )
    .unwrap();
    (sim, clock, logs)
}

async fn production(logs_of: &VercelSim) -> String {
    let d = logs_of.deployer(Duration::from_secs(5)).unwrap();
    d.current()
        .await
        .unwrap()
        .primary_release()
        .unwrap()
        .to_string()
}

fn entry(at: DateTime<Utc>, severity: LogSeverity, message: &str, release: &str) -> LogEntry {
    LogEntry {
        timestamp: at,
        severity,
        message: message.into(),
        payload: None,
        release: Some(release.into()),
        labels: BTreeMap::new(),
    }
}

#[tokio::test]
async fn build_output_and_runtime_logs_pass_the_log_source_suite() {
    let (sim, clock, logs) = sim().await;
    let prod = production(&sim).await;
    // The first production deployment was created a day before t0; its build logged twice.
    let built = t0() - chrono::Duration::days(1);
    clock.sleep(Duration::from_secs(1)).await;
    sim.log_line(&prod, "info", "listening on :3000");
    clock.sleep(Duration::from_secs(1)).await;
    sim.log_request(&prod, "/", 200);
    clock.sleep(Duration::from_secs(1)).await;
    sim.log_request(&prod, "/api/items", 502);
    clock.sleep(Duration::from_secs(1)).await;
    sim.log_line(&prod, "warning", "slow upstream: 2400 ms");
    let now = clock.now();
    let at = |s: i64| t0() + chrono::Duration::seconds(s);
    let expected = vec![
        entry(
            built + chrono::Duration::milliseconds(1),
            LogSeverity::Info,
            "Running \"npm run build\"",
            &prod,
        ),
        entry(
            built + chrono::Duration::milliseconds(2),
            LogSeverity::Info,
            "> next build",
            &prod,
        ),
        entry(at(1), LogSeverity::Info, "listening on :3000", &prod),
        entry(at(2), LogSeverity::Info, "GET / 200", &prod),
        entry(at(3), LogSeverity::Error, "GET /api/items 502", &prod),
        entry(
            at(3),
            LogSeverity::Error,
            "Error: handler for /api/items threw",
            &prod,
        ),
        entry(at(4), LogSeverity::Warning, "slow upstream: 2400 ms", &prod),
    ];
    let window = TimeWindow::new(built, now + chrono::Duration::seconds(1)).unwrap();
    testkit::log_source(&logs, &LogFixture { window, expected }).await;

    // The weekly review's question, on Vercel: the errors of the production deployment.
    let errors = logs
        .query_page(&LogQuery::new(window).min_severity(LogSeverity::Error))
        .await
        .unwrap();
    assert_eq!(errors.entries.len(), 2);
    assert_eq!(errors.entries[0].labels["status"], "502");
    assert_eq!(errors.entries[0].labels["source"], "request");
}

#[tokio::test]
async fn a_failed_build_reads_as_errors_of_that_deployment_only() {
    let (sim, clock, logs) = sim().await;
    sim.fail_builds_of("broken");
    let d = sim.deployer(Duration::from_secs(5)).unwrap();
    let failed = d
        .deploy(&DeployRequest {
            traffic: InitialTraffic::None,
            ..DeployRequest::new("broken")
        })
        .await
        .unwrap_err();
    assert!(
        matches!(
            failed.kind(),
            ErrorKind::VerificationFailed { .. } | ErrorKind::Provider { .. }
        ),
        "{failed}"
    );
    let bad = d.releases().await.unwrap()[0].id.clone();
    let window = TimeWindow::new(t0(), clock.now()).unwrap();
    let q = LogQuery {
        release: Some(bad.clone()),
        ..LogQuery::new(window).min_severity(LogSeverity::Error)
    };
    let page = logs.query_page(&q).await.unwrap();
    let lines: Vec<&str> = page.entries.iter().map(|e| e.message.as_str()).collect();
    // One line at the top level, one nested in `payload` (a `null` item between them).
    assert_eq!(
        lines,
        [
            "Type error: Property 'user' does not exist on type 'Session'.",
            "Error: Command \"npm run build\" exited with 1"
        ]
    );
    assert!(
        page.entries
            .iter()
            .all(|e| e.release.as_deref() == Some(bad.as_str()) && e.labels["source"] == "build")
    );
    // Production's logs hold none of it.
    let prod = logs.query_page(&LogQuery::new(window)).await.unwrap();
    assert!(
        prod.entries
            .iter()
            .all(|e| e.release.as_deref() != Some(bad.as_str()))
    );
}

#[tokio::test]
async fn request_counts_pass_the_metrics_source_suite_per_deployment() {
    let (sim, clock, logs) = sim().await;
    let d = sim.deployer(Duration::from_secs(5)).unwrap();
    let stable = production(&sim).await;
    let canary = d
        .deploy(&DeployRequest {
            traffic: InitialTraffic::None,
            ..DeployRequest::new("canary")
        })
        .await
        .unwrap()
        .id;
    let start = clock.now();
    for i in 0..40u16 {
        sim.log_request(&stable, "/", if i % 20 == 0 { 500 } else { 200 });
        sim.log_request(&canary, "/", if i % 4 == 0 { 503 } else { 200 });
        // A function's own line is not a request.
        sim.log_line(&canary, "info", "rendered /");
        clock.sleep(Duration::from_millis(100)).await;
    }
    let window = TimeWindow::new(start, clock.now()).unwrap();
    let requests = VercelRequests::new(logs);
    let q = |release: Option<&str>| MetricQuery {
        metric: Metric::ErrorRatio,
        window,
        release: release.map(str::to_string),
        min_samples: 10,
    };
    testkit::metrics_source(
        &requests,
        &MetricsFixture {
            cases: vec![
                (q(Some(&canary)), 10.0 / 40.0),
                (q(Some(&stable)), 2.0 / 40.0),
                (q(None), 2.0 / 40.0),
            ],
            tolerance: 1e-12,
            counts: Some(CountsFixture {
                release: canary.clone(),
                window,
                requests: 40,
                errors: 10,
            }),
        },
    )
    .await;
    let latency = MetricQuery {
        metric: Metric::LatencyPercentile { percentile: 95.0 },
        ..q(None)
    };
    let e = requests.read(&latency).await.unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::Unsupported { .. }), "{e}");
    assert!(
        requests
            .counts(&canary, &window)
            .await
            .unwrap()
            .latency
            .is_none()
    );
}

#[tokio::test]
async fn faults_are_typed_and_rows_read_before_a_failure_are_kept() {
    let (sim, clock, logs) = sim().await;
    let prod = production(&sim).await;
    sim.log_request(&prod, "/", 200);
    clock.sleep(Duration::from_secs(1)).await;
    // Re-reading the stream keeps each row once.
    assert_eq!(logs.follow(&prod).await.unwrap(), 1);
    assert_eq!(logs.follow(&prod).await.unwrap(), 0);
    let window = TimeWindow::new(t0(), clock.now()).unwrap();
    assert_eq!(logs.kept_rows(&prod, &window).len(), 1);

    // A stream cut mid-line is a decode error, not a silently short answer.
    sim.inject(Some("GET"), "runtime-logs", 1, Fault::TruncatedJson);
    let e = logs.follow(&prod).await.unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::Decode { .. }), "{e}");
    // Throttling is retried; an unknown deployment is NotFound; a path in an id is refused.
    sim.inject(
        Some("GET"),
        "runtime-logs",
        1,
        Fault::Status {
            status: 429,
            retry_after: Some(1),
        },
    );
    assert_eq!(logs.follow(&prod).await.unwrap(), 0);
    let e = logs.follow("dpl_missing").await.unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::NotFound { .. }), "{e}");
    let e = logs.follow("../../v9/projects").await.unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::InvalidInput { .. }), "{e}");
    let e = logs
        .query_page(&LogQuery {
            page_token: Some("garbage".into()),
            ..LogQuery::new(window)
        })
        .await
        .unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::InvalidInput { .. }), "{e}");
}

#[tokio::test]
async fn the_site_logs_its_requests_for_production() {
    let (sim, clock, logs) = sim().await;
    let prod = production(&sim).await;
    let http = reqwest::Client::new();
    assert_eq!(http.get(sim.uri()).send().await.unwrap().status(), 200);
    sim.fail_site(true);
    assert_eq!(http.get(sim.uri()).send().await.unwrap().status(), 500);
    let window = TimeWindow::new(t0(), clock.now() + chrono::Duration::seconds(1)).unwrap();
    let counts = VercelRequests::new(logs)
        .counts(&prod, &window)
        .await
        .unwrap();
    assert_eq!((counts.requests, counts.errors), (2, 1));
}

fn replay_logs(base: &str) -> VercelLogs {
    let mut cfg = VercelConfig::new("vc_test_token")
        .team("team_a1b2c3d4e5f6")
        .base_url(base)
        .unwrap();
    cfg.http.request_timeout = Duration::from_millis(300);
    let client = VercelClient::new(cfg)
        .unwrap()
        .with_clock(Arc::new(ManualClock::starting_at(t0())));
    VercelLogs::new(
        VercelDeployer::new(client, "site", None).unwrap(),
        Default::default(),
    )
    .unwrap()
}

#[tokio::test]
async fn runtime_rows_in_every_described_shape() {
    // Each variant of `GetRuntimeLogsResponseBody` as the stream's one line.
    Replay::new(
        "GET",
        r"^/v1/projects/prj_1/deployments/dpl_1/runtime-logs$",
    )
    .also(
        "GET",
        r"^/v9/projects/site$",
        json!({"id": "prj_1", "name": "site", "accountId": "team_a1b2c3d4e5f6"}),
    )
    .each(
        variants(
            &vendored("vercel-rest.json"),
            "GetRuntimeLogsResponseBody",
            &[],
        ),
        |base| async move { replay_logs(&base).follow("dpl_1").await.map(|_| ()) },
    )
    .await;
}
