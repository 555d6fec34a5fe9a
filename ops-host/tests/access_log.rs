//! `AccessLog` on real files in the `ops_canary` format: the testkit's metrics source suite,
//! attempts retried elsewhere, rotations (plain and gzip), only the window's tail read, the
//! config's bounds.

use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, Utc};
use ops_core::ErrorKind;
use ops_core::contracts::{Metric, MetricQuery, MetricReading, MetricsSource, TimeWindow};
use ops_core::testkit::{self, CountsFixture, MetricsFixture};
use ops_host::access_log::{AccessLog, AccessLogConfig};

const STABLE: &str = "127.0.0.1:3001";
const CANARY: &str = "127.0.0.1:3002";

fn t0() -> DateTime<Utc> {
    "2026-11-30T12:00:00Z".parse().unwrap()
}

fn window(from: i64, to: i64) -> TimeWindow {
    TimeWindow::new(t0() + Duration::seconds(from), t0() + Duration::seconds(to)).unwrap()
}

/// One request ending `at` seconds after t0 (plus `ms`), served by `server` with `status` in
/// `millis`.
fn line(at: i64, ms: i64, server: &str, status: u16, millis: u64) -> String {
    let end = (t0() + Duration::seconds(at) + Duration::milliseconds(ms)).timestamp_millis();
    format!(
        "{}.{:03} {status} {}.{:03} \"{server}\" \"{status}\" \"{}.{:03}\"\n",
        end / 1000,
        end % 1000,
        millis / 1000,
        millis % 1000,
        millis / 1000,
        millis % 1000
    )
}

/// 100 s of traffic, 10 requests a second: 9 to stable (1 % errors), 1 to the canary (every
/// 5th fails); stable takes 20 ms, the canary 40 ms (its failures 5 ms).
fn traffic(range: std::ops::Range<i64>) -> String {
    let mut out = String::new();
    for s in range {
        for k in 0..10 {
            if k == 9 {
                let fails = s % 5 == 0;
                let (status, ms) = if fails { (500, 5) } else { (200, 40) };
                out.push_str(&line(s, k * 100, CANARY, status, ms));
            } else {
                let status = if s % 10 == 0 && k == 0 { 502 } else { 200 };
                out.push_str(&line(s, k * 100, STABLE, status, 20));
            }
        }
    }
    out
}

fn config(path: &Path) -> AccessLogConfig {
    AccessLogConfig::new(path)
        .release("v2.0.0", &[STABLE])
        .release("v2.1.0", &[CANARY])
}

fn log_of(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

fn query(metric: Metric, release: Option<&str>, w: TimeWindow) -> MetricQuery {
    MetricQuery {
        metric,
        window: w,
        release: release.map(str::to_string),
        min_samples: 10,
    }
}

#[tokio::test]
async fn an_access_log_passes_the_metrics_source_suite() {
    let (_dir, path) = log_of(&traffic(0..100));
    let log = AccessLog::new("nginx", config(&path)).unwrap();
    let w = window(0, 100);
    // 1000 requests: 900 stable with 10 of them 502, 100 canary with 20 of them 500.
    let p = |percentile| Metric::LatencyPercentile { percentile };
    testkit::metrics_source(
        &log,
        &MetricsFixture {
            cases: vec![
                (query(Metric::ErrorRatio, None, w), 30.0 / 1000.0),
                (query(Metric::ErrorRatio, Some("v2.1.0"), w), 0.2),
                (query(Metric::ErrorRatio, Some("v2.0.0"), w), 10.0 / 900.0),
                (query(p(50.0), Some("v2.1.0"), w), 40.0),
                (query(p(10.0), Some("v2.1.0"), w), 5.0),
                (query(p(99.0), None, w), 40.0),
            ],
            tolerance: 1e-9,
            counts: Some(CountsFixture {
                release: "v2.1.0".into(),
                window: w,
                requests: 100,
                errors: 20,
            }),
        },
    )
    .await;
    let counts = log.counts("v2.1.0", &w).await.unwrap();
    let h = counts.latency.unwrap();
    // 5 ms falls in the first bucket (≤ 5), 40 ms in the one up to 50.
    assert_eq!(h.counts[0], 20);
    assert_eq!(h.counts[3], 80);
    assert_eq!(h.total().unwrap(), 100);
}

#[tokio::test]
async fn a_canary_failure_retried_on_stable_still_counts_against_the_canary() {
    let end = t0().timestamp_millis() + 1000;
    let text = format!(
        "{}.{:03} 200 0.031 \"{CANARY}, {STABLE}\" \"502, 200\" \"0.001, 0.029\"\n\
         {}.{:03} 200 0.020 \"{CANARY}\" \"-\" \"-\"\n",
        end / 1000,
        end % 1000,
        end / 1000,
        end % 1000
    );
    let (_dir, path) = log_of(&text);
    let log = AccessLog::new("nginx", config(&path)).unwrap();
    let canary = log.counts("v2.1.0", &window(0, 10)).await.unwrap();
    assert_eq!((canary.requests, canary.errors), (2, 2));
    let stable = log.counts("v2.0.0", &window(0, 10)).await.unwrap();
    assert_eq!((stable.requests, stable.errors), (1, 0));
    // The clients saw two successes.
    let all = MetricQuery {
        min_samples: 1,
        ..query(Metric::ErrorRatio, None, window(0, 10))
    };
    assert_eq!(
        log.read(&all).await.unwrap(),
        MetricReading::Value {
            value: 0.0,
            samples: 2
        }
    );
}

fn gzip(path: &Path, text: &str) {
    let mut gz = flate2::write::GzEncoder::new(
        std::fs::File::create(path).unwrap(),
        flate2::Compression::fast(),
    );
    gz.write_all(text.as_bytes()).unwrap();
    gz.finish().unwrap();
}

#[tokio::test]
async fn rotations_are_read_while_the_window_reaches_them_and_no_further() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    gzip(&dir.path().join("app.log.2.gz"), &traffic(0..1000));
    std::fs::write(dir.path().join("app.log.1"), traffic(1000..2000)).unwrap();
    std::fs::write(&path, traffic(2000..3000)).unwrap();
    let log = AccessLog::new("nginx", config(&path)).unwrap();
    // Across all three files.
    let c = log.counts("v2.1.0", &window(900, 2100)).await.unwrap();
    assert_eq!((c.requests, c.errors), (1200, 240));

    // A window inside the newest file never opens the rotations for reading: a broken one
    // (a directory) fails only a query that reaches it.
    std::fs::remove_file(dir.path().join("app.log.2.gz")).unwrap();
    std::fs::create_dir(dir.path().join("app.log.2")).unwrap();
    let c = log.counts("v2.1.0", &window(2500, 3000)).await.unwrap();
    assert_eq!(c.requests, 500);
    let err = log.counts("v2.1.0", &window(0, 3000)).await.unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Io { .. }), "{err}");
}

#[tokio::test]
async fn foreign_lines_a_line_being_written_and_other_metrics() {
    let mut text =
        String::from("127.0.0.1 - - [30/Nov/2026:12:00:00 +0000] \"GET / HTTP/1.1\" 200 12\n");
    text.push_str(&traffic(0..10));
    text.push_str(&line(11, 0, CANARY, 500, 5)[..20]); // cut mid-line: not yet a request
    let (_dir, path) = log_of(&text);
    let log = AccessLog::new("nginx", config(&path)).unwrap();
    let c = log.counts("v2.1.0", &window(0, 100)).await.unwrap();
    assert_eq!((c.requests, c.errors), (10, 2));
    let err = log
        .read(&query(Metric::CpuUtilisation, None, window(0, 100)))
        .await
        .unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Unsupported { .. }), "{err}");
    // Too few requests is no value.
    let few = log
        .read(&query(Metric::ErrorRatio, Some("v2.1.0"), window(0, 5)))
        .await
        .unwrap();
    assert!(
        matches!(few, MetricReading::InsufficientData { samples: 5, .. }),
        "{few:?}"
    );
}

#[test]
fn a_config_that_cannot_work_is_refused() {
    let path = PathBuf::from("/var/log/nginx/app.log");
    for bad in [
        config(&path).release("v3", &[STABLE]),
        config(&path).release("v3", &["a b"]),
        AccessLogConfig {
            latency_bounds_ms: vec![10.0, 5.0],
            ..config(&path)
        },
        AccessLogConfig {
            max_rotated: 101,
            ..config(&path)
        },
        AccessLogConfig::new("/"),
    ] {
        let err = AccessLog::new("nginx", bad).unwrap_err();
        assert!(
            matches!(err.kind(), ErrorKind::InvalidInput { .. }),
            "{err}"
        );
    }
    let missing = AccessLog::new("nginx", config(Path::new("/nonexistent/app.log"))).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let err = rt
        .block_on(missing.counts("v2.1.0", &window(0, 1)))
        .unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::NotFound { .. }), "{err}");
}
