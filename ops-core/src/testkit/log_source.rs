//! The [`LogSource`] suite.

use super::{Case, always, cases, check_cases, expect_kind, expect_ok};
use crate::ErrorKind;
use crate::contracts::{LogEntry, LogQuery, LogSeverity, LogSource, TimeWindow};

/// What the source under test holds.
#[derive(Debug, Clone)]
pub struct LogFixture {
    /// A window.
    pub window: TimeWindow,
    /// Every entry the source holds in `window`, oldest first (at least 5, mixed severities).
    pub expected: Vec<LogEntry>,
}

/// The log suite's cases.
pub fn log_source_cases() -> Vec<Case<dyn LogSource, LogFixture>> {
    cases![dyn LogSource, LogFixture;
        paging_returns_every_entry_once_oldest_first unless always,
        count_honours_min_severity_and_its_cap unless always,
        contains_filters_by_text unless always,
        nothing_outside_the_window_is_returned unless always,
        a_zero_page_size_is_invalid unless always,
    ]
}

/// Checks paging, filters and counting against what the source is known to hold.
pub async fn log_source(source: &(dyn LogSource + 'static), fixture: &LogFixture) {
    assert!(
        fixture.expected.len() >= 5,
        "the fixture needs at least 5 entries"
    );
    check_cases("log_source", source, fixture, &log_source_cases()).await;
}

async fn paging_returns_every_entry_once_oldest_first(
    source: &dyn LogSource,
    fixture: &LogFixture,
) {
    // Small pages, followed to the end.
    let mut q = LogQuery {
        page_size: 2,
        ..LogQuery::new(fixture.window)
    };
    let mut got = Vec::new();
    for _ in 0..1000 {
        let page = expect_ok("query_page", source.query_page(&q).await);
        assert!(
            page.entries.len() <= 2,
            "a page holds at most page_size entries"
        );
        got.extend(page.entries);
        match page.next_page_token {
            Some(t) => q.page_token = Some(t),
            None => break,
        }
    }
    let msgs = |v: &[LogEntry]| v.iter().map(|e| e.message.clone()).collect::<Vec<_>>();
    assert_eq!(
        msgs(&got),
        msgs(&fixture.expected),
        "paging returns every entry once, oldest first"
    );
}

async fn count_honours_min_severity_and_its_cap(source: &dyn LogSource, fixture: &LogFixture) {
    let threshold = LogSeverity::Error;
    let want: Vec<&LogEntry> = fixture
        .expected
        .iter()
        .filter(|e| e.severity >= threshold)
        .collect();
    let n = expect_ok(
        "count errors",
        source
            .count(
                &LogQuery::new(fixture.window).min_severity(threshold),
                10_000,
            )
            .await,
    );
    assert_eq!(n, want.len() as u64, "count honours min_severity");
    let capped = expect_ok(
        "count with a cap",
        source.count(&LogQuery::new(fixture.window), 3).await,
    );
    assert_eq!(capped, 3, "count stops at the cap");
}

async fn contains_filters_by_text(source: &dyn LogSource, fixture: &LogFixture) {
    let word = fixture.expected[0]
        .message
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_string();
    let q = LogQuery {
        contains: Some(word.clone()),
        ..LogQuery::new(fixture.window)
    };
    let page = expect_ok("query contains", source.query_page(&q).await);
    assert!(
        !page.entries.is_empty() && page.entries.iter().all(|e| e.message.contains(&word)),
        "contains filters by text"
    );
}

async fn nothing_outside_the_window_is_returned(source: &dyn LogSource, fixture: &LogFixture) {
    let before = TimeWindow::new(
        fixture.window.start - chrono::Duration::days(400),
        fixture.window.start - chrono::Duration::days(399),
    )
    .expect("a valid window");
    let none = expect_ok(
        "query an empty window",
        source.query_page(&LogQuery::new(before)).await,
    );
    assert!(
        none.entries.is_empty() && none.next_page_token.is_none(),
        "nothing outside the window"
    );
}

async fn a_zero_page_size_is_invalid(source: &dyn LogSource, fixture: &LogFixture) {
    let bad = LogQuery {
        page_size: 0,
        ..LogQuery::new(fixture.window)
    };
    expect_kind("page_size 0", source.query_page(&bad).await, |k| {
        matches!(k, ErrorKind::InvalidInput { .. })
    });
}
