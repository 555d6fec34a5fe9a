//! The [`MetricsSource`] suite.

use super::{Case, always, cases, check_cases, expect_kind, expect_ok};
use crate::ErrorKind;
use crate::contracts::{Metric, MetricQuery, MetricReading, MetricsSource, TimeWindow};

/// Queries with known answers.
#[derive(Debug, Clone)]
pub struct MetricsFixture {
    /// Each query and the value it must read (within `tolerance`); at least one, and the first
    /// must have data.
    pub cases: Vec<(MetricQuery, f64)>,
    /// Allowed absolute difference.
    pub tolerance: f64,
    /// A release, a window, and the requests and errors it served there; `None` when the
    /// source does not count per release (then `counts` must be `Unsupported`).
    pub counts: Option<CountsFixture>,
}

/// What [`MetricsSource::counts`] must answer for one release over one window.
#[derive(Debug, Clone)]
pub struct CountsFixture {
    /// The release.
    pub release: String,
    /// The window.
    pub window: TimeWindow,
    /// Requests it served there.
    pub requests: u64,
    /// Of which failed.
    pub errors: u64,
}

/// The metrics suite's cases.
pub fn metrics_source_cases() -> Vec<Case<dyn MetricsSource, MetricsFixture>> {
    cases![dyn MetricsSource, MetricsFixture;
        known_values_read_back unless always,
        too_few_samples_are_never_a_value unless always,
        no_data_is_not_zero unless always,
        an_impossible_percentile_is_invalid unless always,
        counts_are_the_releases_requests_and_errors_or_unsupported unless always,
    ]
}

/// Checks known values, honest "insufficient data", and validation.
pub async fn metrics_source(source: &(dyn MetricsSource + 'static), fixture: &MetricsFixture) {
    assert!(
        !fixture.cases.is_empty(),
        "the fixture needs at least one case"
    );
    check_cases("metrics_source", source, fixture, &metrics_source_cases()).await;
}

async fn known_values_read_back(source: &dyn MetricsSource, fixture: &MetricsFixture) {
    for (q, want) in &fixture.cases {
        match expect_ok("read", source.read(q).await) {
            MetricReading::Value { value, samples } => {
                assert!(
                    (value - want).abs() <= fixture.tolerance,
                    "{:?}: read {value}, expected {want}",
                    q.metric
                );
                assert!(
                    samples >= q.min_samples,
                    "a value rests on at least min_samples"
                );
            }
            other => panic!("{:?}: expected {want}, got {other:?}", q.metric),
        }
    }
}

async fn too_few_samples_are_never_a_value(source: &dyn MetricsSource, fixture: &MetricsFixture) {
    let (first, _) = &fixture.cases[0];
    let starved = MetricQuery {
        min_samples: u64::MAX,
        ..first.clone()
    };
    let reading = expect_ok(
        "read with an unreachable min_samples",
        source.read(&starved).await,
    );
    assert!(
        matches!(reading, MetricReading::InsufficientData { .. }),
        "too little data is never a value: {reading:?}"
    );
}

async fn no_data_is_not_zero(source: &dyn MetricsSource, fixture: &MetricsFixture) {
    let (first, _) = &fixture.cases[0];
    let empty_window = crate::contracts::TimeWindow::new(
        first.window.start - chrono::Duration::days(400),
        first.window.start - chrono::Duration::days(399),
    )
    .expect("a valid window");
    let reading = expect_ok(
        "read of an empty window",
        source
            .read(&MetricQuery {
                window: empty_window,
                min_samples: 1,
                ..first.clone()
            })
            .await,
    );
    assert!(
        matches!(reading, MetricReading::InsufficientData { samples: 0, .. }),
        "no data is not zero: {reading:?}"
    );
}

async fn an_impossible_percentile_is_invalid(source: &dyn MetricsSource, fixture: &MetricsFixture) {
    let (first, _) = &fixture.cases[0];
    let bad = MetricQuery {
        metric: Metric::LatencyPercentile { percentile: 150.0 },
        ..first.clone()
    };
    expect_kind("percentile 150", source.read(&bad).await, |k| {
        matches!(k, ErrorKind::InvalidInput { .. })
    });
}

async fn counts_are_the_releases_requests_and_errors_or_unsupported(
    source: &dyn MetricsSource,
    fixture: &MetricsFixture,
) {
    let Some(want) = &fixture.counts else {
        let window = fixture.cases[0].0.window;
        expect_kind(
            "counts of a source the fixture says cannot count",
            source.counts("any-release", &window).await,
            |k| matches!(k, ErrorKind::Unsupported { .. }),
        );
        return;
    };
    let got = expect_ok("counts", source.counts(&want.release, &want.window).await);
    assert_eq!(
        (got.requests, got.errors),
        (want.requests, want.errors),
        "requests and errors of {}",
        want.release
    );
    if let Some(h) = &got.latency {
        expect_ok("a well-formed histogram", h.check());
        let total = expect_ok("its total", h.total());
        assert!(
            total <= got.requests,
            "the histogram counts {total} of {} requests",
            got.requests
        );
    }
    let other = expect_ok(
        "counts of a release that served nothing",
        source.counts("no-such-release-0", &want.window).await,
    );
    assert_eq!(
        (other.requests, other.errors),
        (0, 0),
        "another release's requests are not counted"
    );
}
