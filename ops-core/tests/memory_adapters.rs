//! The in-memory deployer, log source and metrics source: their suites and their own behaviour.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use ops_core::ErrorKind;
use ops_core::contracts::*;
use ops_core::memory::{MemoryDeployer, MemoryLogSource, MemoryMetricsSource};
use ops_core::testkit::{self, DeployerFixture, LogFixture, MetricsFixture};

fn t(secs: i64) -> DateTime<Utc> {
    "2026-02-01T00:00:00Z".parse::<DateTime<Utc>>().unwrap() + Duration::seconds(secs)
}

fn window() -> TimeWindow {
    TimeWindow::new(t(0), t(3600)).unwrap()
}

#[tokio::test]
async fn memory_deployer_passes_the_suite() {
    let d = MemoryDeployer::new("api");
    testkit::deployer(
        &d,
        &DeployerFixture {
            version_a: "api:1.0".into(),
            version_b: "api:1.1".into(),
        },
    )
    .await;
}

#[tokio::test]
async fn a_failed_release_is_reported_and_cannot_take_traffic() {
    let d = MemoryDeployer::new("api");
    let stable = d.deploy(&DeployRequest::new("api:1.0")).await.unwrap();
    d.fail_deploys_of("api:1.1-broken");
    let err = d
        .deploy(&DeployRequest {
            traffic: InitialTraffic::All,
            ..DeployRequest::new("api:1.1-broken")
        })
        .await
        .unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::Provider { code: Some(c), .. } if c == "RELEASE_FAILED"),
        "{err}"
    );
    let releases = d.releases().await.unwrap();
    assert_eq!(releases[0].state, ReleaseState::Failed);
    assert_eq!(
        d.current().await.unwrap().primary_release(),
        Some(stable.id.as_str()),
        "traffic stays on the stable release"
    );
    let to_broken = TrafficSplit::all_to(releases[0].id.as_str()).unwrap();
    assert!(matches!(
        d.set_traffic(&to_broken).await.unwrap_err().kind(),
        ErrorKind::InvalidInput { .. }
    ));
}

#[tokio::test]
async fn scale_merges_with_what_is_set() {
    let d = MemoryDeployer::new("api");
    d.scale(&ScaleSpec {
        min_instances: Some(2),
        max_instances: Some(10),
        ..Default::default()
    })
    .await
    .unwrap();
    let s = d
        .scale(&ScaleSpec {
            memory: Some("1Gi".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let scale = s.scale.unwrap();
    assert_eq!(
        (
            scale.min_instances,
            scale.max_instances,
            scale.memory.as_deref()
        ),
        (Some(2), Some(10), Some("1Gi"))
    );
    let err = d
        .scale(&ScaleSpec {
            min_instances: Some(11),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::InvalidInput { .. }),
        "min above the max already set: {err}"
    );
}

fn entry(secs: i64, severity: LogSeverity, message: &str) -> LogEntry {
    LogEntry {
        timestamp: t(secs),
        severity,
        message: message.into(),
        payload: None,
        release: None,
        labels: BTreeMap::new(),
    }
}

#[tokio::test]
async fn memory_log_source_passes_the_suite() {
    let logs = MemoryLogSource::new("app");
    let expected = vec![
        entry(10, LogSeverity::Info, "started worker 1"),
        entry(20, LogSeverity::Error, "database timeout after 5000 ms"),
        entry(30, LogSeverity::Warning, "slow query 812 ms"),
        entry(40, LogSeverity::Error, "database timeout after 5001 ms"),
        entry(50, LogSeverity::Critical, "out of memory"),
        entry(60, LogSeverity::Info, "started worker 2"),
    ];
    // Pushed out of order, plus entries outside the window.
    for e in expected.iter().rev() {
        logs.push(e.clone());
    }
    logs.push(entry(-100, LogSeverity::Error, "before the window"));
    logs.push(entry(7200, LogSeverity::Error, "after the window"));
    testkit::log_source(
        &logs,
        &LogFixture {
            window: window(),
            expected,
        },
    )
    .await;
    let bad = LogQuery {
        page_token: Some("garbage".into()),
        ..LogQuery::new(window())
    };
    assert!(matches!(
        logs.query_page(&bad).await.unwrap_err().kind(),
        ErrorKind::InvalidInput { .. }
    ));
}

#[tokio::test]
async fn memory_metrics_source_passes_the_suite_and_tells_releases_apart() {
    let m = MemoryMetricsSource::new("app");
    // Stable: 1000 requests, 1 % 5xx, latencies 1..=1000 ms. Canary: 100 requests, 20 % 5xx.
    for i in 1..=1000 {
        m.record_request(
            t(i % 3600),
            Some("stable"),
            if i % 100 == 0 { 500 } else { 200 },
            i as f64,
        );
    }
    for i in 0..100 {
        m.record_request(
            t(i),
            Some("canary"),
            if i % 5 == 0 { 503 } else { 200 },
            50.0,
        );
    }
    for (i, v) in [0.5, 0.7, 0.9].into_iter().enumerate() {
        m.record_sample(t(i as i64 * 60), Some("stable"), Metric::CpuUtilisation, v)
            .unwrap();
    }
    let q = |metric, release: &str| MetricQuery {
        metric,
        window: window(),
        release: Some(release.into()),
        min_samples: 3,
    };
    let fixture = MetricsFixture {
        cases: vec![
            (q(Metric::ErrorRatio, "stable"), 0.01),
            (q(Metric::ErrorRatio, "canary"), 0.20),
            (
                q(Metric::LatencyPercentile { percentile: 50.0 }, "stable"),
                500.0,
            ),
            (
                q(Metric::LatencyPercentile { percentile: 95.0 }, "stable"),
                950.0,
            ),
            (
                q(Metric::LatencyPercentile { percentile: 99.0 }, "stable"),
                990.0,
            ),
            (q(Metric::CpuUtilisation, "stable"), 0.7),
        ],
        tolerance: 1e-9,
        counts: Some(testkit::CountsFixture {
            release: "canary".into(),
            window: window(),
            requests: 100,
            errors: 20,
        }),
    };
    testkit::metrics_source(&m, &fixture).await;
    let all = MetricQuery {
        metric: Metric::ErrorRatio,
        window: window(),
        release: None,
        min_samples: 1,
    };
    assert_eq!(
        m.read(&all).await.unwrap(),
        MetricReading::Value {
            value: 30.0 / 1100.0,
            samples: 1100
        }
    );
    let cpu_canary = q(Metric::CpuUtilisation, "canary");
    assert!(matches!(
        m.read(&cpu_canary).await.unwrap(),
        MetricReading::InsufficientData { samples: 0, .. }
    ));
    assert!(
        m.record_sample(t(0), None, Metric::ErrorRatio, 0.5)
            .is_err()
    );
    assert!(
        m.record_sample(t(0), None, Metric::MemoryUtilisation, f64::NAN)
            .is_err()
    );
}

#[tokio::test]
async fn memory_costs_pass_the_cost_source_suite() {
    use ops_core::contracts::{Budget, CostLine, DayRange};
    use ops_core::memory::MemoryCosts;
    use ops_core::money::{Currency, Money};
    let usd = |s: &str| Money::parse(Currency::USD, s).unwrap();
    let day = |d: u32| chrono::NaiveDate::from_ymd_opt(2026, 11, d).unwrap();
    let costs = MemoryCosts::new(Currency::USD);
    for d in 1..=10 {
        costs.add_line(CostLine {
            day: day(d),
            service: "Cloud Run".into(),
            cost: usd("1.1"),
            credits: usd("-0.1"),
        });
    }
    costs.add_budget(Budget {
        id: "b1".into(),
        display_name: "monthly".into(),
        amount: Some(usd("100")),
        thresholds_percent: vec![50.0, 100.0],
        etag: None,
    });
    let fixture = testkit::CostFixture {
        days: DayRange::new(day(1), day(10)).unwrap(),
        total: usd("10"),
        quiet: DayRange::new(day(11), day(20)).unwrap(),
    };
    testkit::cost_source(&costs, &fixture).await;
}
