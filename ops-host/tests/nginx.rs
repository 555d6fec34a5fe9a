//! `Nginx` on a real nginx (Debian's package; `.ci/run` installs it), started by the tests as
//! its own process on free ports with its own configuration: splits in force as counted at the
//! backends, `nginx -t` refusing a broken configuration (the previous file stays), nginx not
//! running, and the access log nginx writes read by `AccessLog`.

mod support;

use std::path::PathBuf;

use ops_core::ErrorKind;
use ops_core::clock::{Clock, SystemClock};
use ops_core::contracts::{Metric, MetricQuery, MetricsSource, TimeWindow, TrafficSplit};
use ops_core::testkit::{self, CountsFixture, MetricsFixture};
use ops_host::access_log::{AccessLog, AccessLogConfig};
use ops_host::nginx::Nginx;
use support::nginx::{NginxUnderTest, backend};

fn split(canary: u8) -> TrafficSplit {
    match canary {
        0 => TrafficSplit::new([("v2.0.0", 100)]),
        100 => TrafficSplit::new([("v2.1.0", 100)]),
        c => TrafficSplit::new([("v2.1.0", c), ("v2.0.0", 100 - c)]),
    }
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn splits_are_in_force_at_the_backends_and_in_nginxs_access_log() {
    let (stable, _s) = backend("stable").await;
    let (canary, _c) = backend("canary").await;
    let mut n = NginxUnderTest::prepare();
    let nginx = Nginx::new(n.config(&stable, &canary)).unwrap();
    nginx.write_split(&split(0)).await.unwrap();
    n.start().await;
    let started = SystemClock.now();

    // The seed's first stages; one worker's weighted round robin is exact over a cycle.
    for (pct, want) in [(5u8, 5usize), (25, 25), (100, 100), (0, 0)] {
        let plan = nginx.set_split(&split(pct)).await.unwrap();
        assert!((plan.shares["v2.1.0"] - f64::from(pct)).abs() < 1e-9);
        let seen = n.traffic(100).await;
        assert_eq!(
            seen.get("canary").copied().unwrap_or(0),
            want,
            "{pct} %: {seen:?}"
        );
        assert_eq!(seen.values().sum::<usize>(), 100, "{seen:?}");
    }
    let in_force = nginx.split_in_force().await.unwrap();
    assert_eq!(
        in_force
            .iter()
            .map(|w| (w.release.as_str(), w.weight))
            .collect::<Vec<_>>(),
        vec![("v2.0.0", 1), ("v2.1.0", 0)]
    );

    // nginx's own access log, in the format AccessLog reads: 5 + 25 + 100 canary requests.
    let log = AccessLog::new(
        "nginx",
        AccessLogConfig::new(n.path("access.log"))
            .release("v2.0.0", &[stable.as_str()])
            .release("v2.1.0", &[canary.as_str()]),
    )
    .unwrap();
    let window = TimeWindow::new(
        started - chrono::Duration::minutes(1),
        SystemClock.now() + chrono::Duration::minutes(1),
    )
    .unwrap();
    let counts = log.counts("v2.1.0", &window).await.unwrap();
    assert_eq!((counts.requests, counts.errors), (130, 0));
    let counts = log.counts("v2.0.0", &window).await.unwrap();
    assert_eq!((counts.requests, counts.errors), (270, 0));
    // And the metrics suite on what nginx wrote: 400 requests, none failed.
    let all = MetricQuery {
        metric: Metric::ErrorRatio,
        window,
        release: None,
        min_samples: 100,
    };
    let canary_share = MetricQuery {
        release: Some("v2.1.0".into()),
        ..all.clone()
    };
    testkit::metrics_source(
        &log,
        &MetricsFixture {
            cases: vec![(all, 0.0), (canary_share, 0.0)],
            tolerance: 0.0,
            counts: Some(CountsFixture {
                release: "v2.1.0".into(),
                window,
                requests: 130,
                errors: 0,
            }),
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configuration_nginx_refuses_leaves_the_previous_file_and_traffic() {
    let (stable, _s) = backend("stable").await;
    let (canary, _c) = backend("canary").await;
    let mut n = NginxUnderTest::prepare();
    let nginx = Nginx::new(n.config(&stable, &canary)).unwrap();
    nginx.write_split(&split(5)).await.unwrap();
    n.start().await;
    let before = std::fs::read_to_string(n.path("upstream.conf")).unwrap();

    // Someone broke another part of the configuration.
    std::fs::write(n.path("extra.conf"), "this is not a directive;\n").unwrap();
    let err = nginx.set_split(&split(50)).await.unwrap_err();
    assert!(
        matches!(&err.kind(), ErrorKind::VerificationFailed { check, .. } if check == "nginx -t"),
        "{err}"
    );
    assert!(err.to_string().contains("unknown directive"), "{err}");
    assert_eq!(
        std::fs::read_to_string(n.path("upstream.conf")).unwrap(),
        before
    );
    let seen = n.traffic(20).await;
    assert_eq!(seen.get("canary").copied(), Some(1), "{seen:?}");

    // Mended, the split goes through.
    std::fs::write(n.path("extra.conf"), "").unwrap();
    nginx.set_split(&split(50)).await.unwrap();
    let seen = n.traffic(20).await;
    assert_eq!(seen.get("canary").copied(), Some(10), "{seen:?}");

    // nginx stopped: a reload has nobody to reload, and says so.
    n.stop();
    let err = nginx.set_split(&split(5)).await.unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::NotFound { .. }), "{err}");
    assert!(err.to_string().contains("a running nginx"), "{err}");
}

#[tokio::test]
async fn a_missing_nginx_program_is_a_typed_error() {
    let n = NginxUnderTest::prepare();
    let mut config = n.config("127.0.0.1:1", "127.0.0.1:2");
    config.bin = Some(PathBuf::from("/nonexistent/nginx"));
    let nginx = Nginx::new(config).unwrap();
    let err = nginx.write_split(&split(5)).await.unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Io { .. }), "{err}");
    // And the file it wrote was taken back.
    assert!(!n.path("upstream.conf").exists());
    // A dry run runs nothing and names the commands.
    let plan = nginx.plan(&split(5)).unwrap();
    assert_eq!(plan.commands[0].last().map(String::as_str), Some("-t"));
    assert!(plan.file.contains("weight=19"), "{}", plan.file);
}
