//! `MetricsSource::counts` against a real Prometheus (not our simulator): the PromQL of the
//! documented templates, `increase()`'s extrapolated, fractional answers, `le` labels as the
//! server returns them, and series that do not exist yet. The exporter is the test's own, so
//! what was served is known; Prometheus scrapes it once a second.

mod support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use ops_core::clock::{Clock, SystemClock};
use ops_core::contracts::{MetricsSource, TimeWindow};
use ops_core::judge::{Decision, Interval, JudgeConfig, SequentialJudge};
use ops_core::runbooks::RunbookConfig;
use ops_prometheus::{PromQueries, Prometheus, PrometheusConfig};
use support::real_prometheus::{Counters, RealPrometheus, Traffic};

fn queries() -> PromQueries {
    PromQueries::from_toml(
        r#"
        requests = 'sum(increase(http_requests_total{job="app",release=~"$release"}[$window]))'
        errors = 'sum(increase(http_requests_total{job="app",code=~"5..",release=~"$release"}[$window]))'
        latency_buckets = 'sum by (le) (increase(http_request_duration_seconds_bucket{job="app",release=~"$release"}[$window]))'
        le_unit_ms = 1000
        "#,
    )
    .unwrap()
}

/// Requests each release served, as the exporter counted them, with when.
type History = Arc<Mutex<Vec<(DateTime<Utc>, BTreeMap<String, u64>)>>>;

/// Every 100 ms: the stable release serves 100 requests (1 failed, 1 slower than 250 ms), the
/// canary 10 (2 failed, half slower than 250 ms).
fn serve(traffic: Traffic) -> History {
    let history: History = Arc::default();
    let h = history.clone();
    tokio::spawn(async move {
        loop {
            {
                let mut t = traffic.lock().unwrap();
                let add = |c: &mut Counters, ok, failed, buckets: [u64; 6]| {
                    c.ok += ok;
                    c.failed += failed;
                    for (b, n) in c.buckets.iter_mut().zip(buckets) {
                        *b += n;
                    }
                };
                add(
                    t.entry("api-1".into()).or_default(),
                    99,
                    1,
                    [80, 19, 0, 1, 0, 0],
                );
                add(
                    t.entry("api-2".into()).or_default(),
                    8,
                    2,
                    [2, 3, 0, 4, 1, 0],
                );
                let totals = t
                    .iter()
                    .map(|(r, c)| (r.clone(), c.ok + c.failed))
                    .collect();
                h.lock().unwrap().push((SystemClock.now(), totals));
            }
            // The traffic's own pace, not a wait for anything.
            SystemClock.sleep(Duration::from_millis(100)).await;
        }
    });
    history
}

/// What the exporter counted for `release` within the window.
fn served(history: &History, release: &str, window: &TimeWindow) -> u64 {
    let h = history.lock().unwrap();
    let at = |t: DateTime<Utc>| {
        h.iter()
            .rev()
            .find(|(when, _)| *when <= t)
            .and_then(|(_, totals)| totals.get(release).copied())
            .unwrap_or(0)
    };
    at(window.end) - at(window.start)
}

fn source(server: &RealPrometheus) -> Prometheus {
    let mut config = PrometheusConfig::new(&server.url, queries()).unwrap();
    config.http.request_timeout = Duration::from_secs(10);
    Prometheus::new(config).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_from_a_real_prometheus_are_what_the_exporter_served() {
    let server = RealPrometheus::start().await;
    let history = serve(server.traffic.clone());
    server.wait_scrapes(12).await;
    let prometheus = source(&server);
    let window = TimeWindow::ending_at(SystemClock.now(), Duration::from_secs(10)).unwrap();
    let canary = prometheus.counts("api-2", &window).await.unwrap();
    let stable = prometheus.counts("api-1", &window).await.unwrap();

    // increase() extrapolates from the scrapes inside the window to its edges: close to what
    // was served, not equal to it.
    for (release, counts) in [("api-1", &stable), ("api-2", &canary)] {
        let truth = served(&history, release, &window) as f64;
        let got = counts.requests as f64;
        assert!(
            (got - truth).abs() <= 0.25 * truth,
            "{release}: Prometheus counted {got} requests, the exporter served {truth}"
        );
    }
    let rate = |c: &ops_core::judge::RequestCounts| c.errors as f64 / c.requests as f64;
    assert!((0.15..=0.25).contains(&rate(&canary)), "{canary:?}");
    assert!((0.005..=0.02).contains(&rate(&stable)), "{stable:?}");

    // The histogram, from the `le` series as the server returns them (seconds, "+Inf").
    let (hc, hs) = (
        canary.latency.clone().unwrap(),
        stable.latency.clone().unwrap(),
    );
    assert_eq!(hc.bounds_ms, hs.bounds_ms, "one layout for both releases");
    let expected = [50.0, 100.0, 250.0, 500.0, 1000.0];
    assert_eq!(hc.bounds_ms.len(), expected.len(), "{:?}", hc.bounds_ms);
    for (got, want) in hc.bounds_ms.iter().zip(expected) {
        assert!((got - want).abs() < 1e-9, "{:?}", hc.bounds_ms);
    }
    let slow =
        |h: &ops_core::judge::Histogram| h.slower_than(250.0) as f64 / h.total().unwrap() as f64;
    assert!((0.4..=0.6).contains(&slow(&hc)), "{hc:?}");
    assert!(slow(&hs) <= 0.03, "{hs:?}");

    // The judge takes the real answers as they are, and sees the regression.
    let mut judge = SequentialJudge::new(JudgeConfig::default()).unwrap();
    let look = judge
        .observe(&Interval {
            canary,
            baseline: stable,
            canary_share: 10.0 / 110.0,
        })
        .unwrap();
    eprintln!("{}", look.why);
    assert_eq!(look.decision, Decision::Fail, "{}", look.why);
    assert!(
        look.tests
            .iter()
            .any(|t| t.test == "sample_ratio" && !t.rejected),
        "the split was honoured: {look:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_prometheus_has_never_seen_has_no_requests() {
    let server = RealPrometheus::start().await;
    let _history = serve(server.traffic.clone());
    server.wait_scrapes(3).await;
    let window = TimeWindow::ending_at(SystemClock.now(), Duration::from_secs(10)).unwrap();
    let counts = source(&server).counts("api-9", &window).await.unwrap();
    assert_eq!((counts.requests, counts.errors), (0, 0));
    assert_eq!(counts.latency, None, "no series: no histogram");
}
