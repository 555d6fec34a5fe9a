//! The ops-core testkit suites and end-to-end behaviour against the simulator.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use ops_core::ErrorKind;
use ops_core::clock::{Clock, ManualClock};
use ops_core::contracts::*;
use ops_core::http::SendOptions;
use ops_core::sim::Simulator;
use ops_core::testkit;
use ops_gcp::sim::{Behaviour, Fault, GcpSim};
use ops_gcp::{CloudLogging, CloudMonitoring, CloudRun};
use serde_json::json;

fn t0() -> DateTime<Utc> {
    "2026-11-23T09:00:00Z".parse().unwrap()
}

async fn sim() -> (GcpSim, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::starting_at(t0()));
    let sim = GcpSim::builder()
        .clock(clock.clone())
        .operation_delay(Duration::from_secs(3))
        .start()
        .await;
    sim.create_service("api", "img:0");
    (sim, clock)
}

fn run(sim: &GcpSim) -> CloudRun {
    CloudRun::new(sim.client().unwrap(), "api").unwrap()
}

#[tokio::test]
async fn cloud_run_passes_the_deployer_suite() {
    let (sim, _) = sim().await;
    testkit::deployer(
        &run(&sim),
        &testkit::DeployerFixture {
            version_a: "img:a".into(),
            version_b: "img:b".into(),
        },
    )
    .await;
}

#[tokio::test]
async fn cloud_run_health_passes_the_probe_suite() {
    let (sim, _) = sim().await;
    let run = run(&sim);
    testkit::health_probe(&run.health_probe(), HealthStatus::Healthy).await;
    run.stop_serving().await.unwrap();
    let report = testkit::health_probe(&run.health_probe(), HealthStatus::Unhealthy).await;
    assert!(
        report
            .checks
            .iter()
            .any(|c| c.name == "ingress" && c.status == HealthStatus::Unhealthy)
    );
}

#[tokio::test]
async fn cloud_logging_passes_the_log_source_suite() {
    let (sim, _) = sim().await;
    // Before the service existed: only these entries, no generated ones.
    let at = |m: i64| t0() - chrono::Duration::minutes(m);
    let lines = [
        (170, "INFO", "starting server on :8080"),
        (160, "WARNING", "slow query took 900ms"),
        (150, "ERROR", "database connection refused"),
        (140, "INFO", "request served"),
        (130, "CRITICAL", "out of memory"),
        (120, "ERROR", "upstream timeout"),
    ];
    for (m, sev, text) in lines {
        sim.push_log(at(m), sev, text, Some("api-00001-aaa"));
    }
    let expected = lines
        .iter()
        .map(|(m, sev, text)| LogEntry {
            timestamp: at(*m),
            severity: serde_json::from_value(json!(sev)).unwrap(),
            message: text.to_string(),
            payload: None,
            release: Some("api-00001-aaa".into()),
            labels: Default::default(),
        })
        .collect();
    let logs = CloudLogging::new(sim.client().unwrap(), "api").unwrap();
    testkit::log_source(
        &logs,
        &testkit::LogFixture {
            window: TimeWindow::new(at(180), at(60)).unwrap(),
            expected,
        },
    )
    .await;
}

#[tokio::test]
async fn cloud_monitoring_passes_the_metrics_suite() {
    let (sim, clock) = sim().await;
    sim.set_behaviour(
        "img:0",
        Behaviour {
            error_ratio: 0.1,
            ..Behaviour::default()
        },
    );
    clock.advance(Duration::from_secs(600));
    let window = TimeWindow::new(t0(), t0() + chrono::Duration::minutes(10)).unwrap();
    let q = |metric| MetricQuery {
        metric,
        window,
        release: None,
        min_samples: 100,
    };
    let metrics = CloudMonitoring::new(sim.client().unwrap(), "api").unwrap();
    let release = run(&sim)
        .current()
        .await
        .unwrap()
        .primary_release()
        .unwrap()
        .to_string();
    testkit::metrics_source(
        &metrics,
        &testkit::MetricsFixture {
            cases: vec![
                (q(Metric::ErrorRatio), 0.1),
                // 80 ms falls in the [50, 100) bucket: the median interpolates to 75.
                (q(Metric::LatencyPercentile { percentile: 50.0 }), 75.0),
                (
                    MetricQuery {
                        min_samples: 5,
                        ..q(Metric::CpuUtilisation)
                    },
                    0.35,
                ),
                (
                    MetricQuery {
                        min_samples: 5,
                        ..q(Metric::MemoryUtilisation)
                    },
                    0.45,
                ),
            ],
            tolerance: 1e-9,
            // 20 requests a second for ten minutes, a tenth of them failing.
            counts: Some(testkit::CountsFixture {
                release,
                window,
                requests: 12_000,
                errors: 1_200,
            }),
        },
    )
    .await;
}

#[tokio::test]
async fn a_bad_canary_shows_in_its_own_metrics_and_logs() {
    let (sim, clock) = sim().await;
    sim.set_behaviour("img:bad", Behaviour::failing(0.3));
    let run = run(&sim);
    let stable = run
        .current()
        .await
        .unwrap()
        .primary_release()
        .unwrap()
        .to_string();
    let canary = run.deploy(&DeployRequest::new("img:bad")).await.unwrap();
    run.set_traffic(&TrafficSplit::new([(canary.id.as_str(), 10), (stable.as_str(), 90)]).unwrap())
        .await
        .unwrap();
    let start = clock.now();
    clock.advance(Duration::from_secs(600));
    let window = TimeWindow::new(start, clock.now()).unwrap();
    let metrics = CloudMonitoring::new(sim.client().unwrap(), "api").unwrap();
    let ratio = |release: &str| {
        let m = metrics.clone();
        let q = MetricQuery {
            metric: Metric::ErrorRatio,
            window,
            release: Some(release.to_string()),
            min_samples: 100,
        };
        async move { m.read(&q).await.unwrap() }
    };
    // 20 rps × 600 s × 10 % = 1,200 canary requests, 30 % failing.
    assert_eq!(
        ratio(&canary.id).await,
        MetricReading::Value {
            value: 0.3,
            samples: 1200
        }
    );
    let stable_ratio = ratio(&stable).await.value().unwrap();
    assert!(stable_ratio < 0.01, "{stable_ratio}");

    let logs = CloudLogging::new(sim.client().unwrap(), "api").unwrap();
    let q = LogQuery {
        release: Some(canary.id.clone()),
        ..LogQuery::new(window).min_severity(LogSeverity::Error)
    };
    assert_eq!(
        logs.count(&q, 10_000).await.unwrap(),
        360,
        "one ERROR entry per failed request"
    );
}

#[tokio::test]
async fn a_load_dependent_bug_hides_at_a_small_share_and_shows_at_a_large_one() {
    let (sim, clock) = sim().await;
    sim.set_behaviour("img:leaky", Behaviour::failing_from_share(25, 0.2));
    let run = run(&sim);
    let stable = run
        .current()
        .await
        .unwrap()
        .primary_release()
        .unwrap()
        .to_string();
    let canary = run.deploy(&DeployRequest::new("img:leaky")).await.unwrap();
    let metrics = CloudMonitoring::new(sim.client().unwrap(), "api").unwrap();
    let mut ratios = Vec::new();
    for share in [5, 25] {
        let split =
            TrafficSplit::new([(canary.id.as_str(), share), (stable.as_str(), 100 - share)]);
        run.set_traffic(&split.unwrap()).await.unwrap();
        let start = clock.now();
        clock.advance(Duration::from_secs(600));
        let q = MetricQuery {
            metric: Metric::ErrorRatio,
            window: TimeWindow::new(start, clock.now()).unwrap(),
            release: Some(canary.id.clone()),
            min_samples: 100,
        };
        ratios.push(metrics.read(&q).await.unwrap().value().unwrap());
    }
    assert!(ratios[0] < 0.01, "healthy at 5 %: {ratios:?}");
    assert!(
        (ratios[1] - 0.2).abs() < 1e-9,
        "failing at 25 %: {ratios:?}"
    );
}

#[tokio::test]
async fn a_container_that_never_starts_fails_the_deploy_and_keeps_traffic() {
    let (sim, _) = sim().await;
    sim.set_behaviour("img:crash", Behaviour::crashing());
    let run = run(&sim);
    let before = run.current().await.unwrap();
    let err = run
        .deploy(&DeployRequest {
            traffic: InitialTraffic::All,
            ..DeployRequest::new("img:crash")
        })
        .await
        .unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::Conflict { detail } if detail.contains("failed to start")),
        "{err}"
    );
    let after = run.current().await.unwrap();
    assert_eq!(
        after.traffic, before.traffic,
        "traffic stays on the working revision"
    );
    let report = run.health_probe().check().await.unwrap();
    assert_eq!(
        report.status,
        HealthStatus::Unhealthy,
        "{:?}",
        report.checks
    );
}

#[tokio::test]
async fn injected_faults_are_retried_or_surface_typed() {
    let (sim, clock) = sim().await;
    let run = run(&sim);
    sim.inject(
        Some("GET"),
        "/services/api",
        2,
        Fault::Status {
            status: 503,
            retry_after: Some(4),
        },
    );
    run.current().await.unwrap();
    assert_eq!(
        clock.sleeps(),
        vec![Duration::from_secs(4), Duration::from_secs(4)]
    );

    sim.inject(
        Some("PATCH"),
        "/services/api",
        1,
        Fault::Status {
            status: 500,
            retry_after: None,
        },
    );
    let err = run.deploy(&DeployRequest::new("img:1")).await.unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::Provider { status: 500, .. }),
        "{err}"
    );
    let patches = sim
        .requests()
        .iter()
        .filter(|r| r.starts_with("PATCH"))
        .count();
    assert_eq!(
        (patches, sim.mutations()),
        (1, 0),
        "a failed write is sent once"
    );

    sim.inject(Some("GET"), "/services/api", 1, Fault::TruncatedJson);
    assert!(matches!(
        run.current().await.unwrap_err().kind(),
        ErrorKind::Decode { .. }
    ));
}

#[tokio::test]
async fn a_stale_etag_never_overwrites_another_operators_change() {
    let (sim, _) = sim().await;
    let run = run(&sim);
    let seen = run.service().await.unwrap();
    run.scale(&ScaleSpec {
        max_instances: Some(10),
        ..Default::default()
    })
    .await
    .unwrap();
    let client = sim.client().unwrap();
    let mut url = client
        .url(
            &client.config().endpoints.run,
            &format!("v2/{}", run.resource_name()),
        )
        .unwrap();
    url.query_pairs_mut().append_pair("updateMask", "ingress");
    let body = json!({"ingress": "INGRESS_TRAFFIC_INTERNAL_ONLY", "etag": seen.etag});
    let err = client
        .call::<_, serde_json::Value>(
            "patch",
            reqwest::Method::PATCH,
            url,
            Some(&body),
            &SendOptions::default(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Conflict { .. }), "{err}");
    assert_eq!(
        run.service().await.unwrap().ingress.as_deref(),
        Some("INGRESS_TRAFFIC_ALL")
    );
}
