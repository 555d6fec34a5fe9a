//! [`LogSource`]: query log entries by time, severity and text.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures_util::Stream;
use serde::{Deserialize, Serialize};

use crate::contracts::TimeWindow;
use crate::{Error, Result};

/// Log severities (Cloud Logging's scale), ordered from least to most severe.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LogSeverity {
    /// No severity given.
    #[default]
    Default,
    /// Debug.
    Debug,
    /// Info.
    Info,
    /// Notice.
    Notice,
    /// Warning.
    Warning,
    /// Error.
    Error,
    /// Critical.
    Critical,
    /// Alert.
    Alert,
    /// Emergency.
    Emergency,
}

/// One log entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogEntry {
    /// When it was logged.
    pub timestamp: DateTime<Utc>,
    /// Its severity.
    pub severity: LogSeverity,
    /// The text (for structured entries, their `message` field or the JSON as text).
    pub message: String,
    /// The structured payload, if any.
    pub payload: Option<serde_json::Value>,
    /// The release that logged it (revision, deployment), if known.
    pub release: Option<String>,
    /// Labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// A page of a log query.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogQuery {
    /// The time window.
    pub window: TimeWindow,
    /// Only entries at least this severe.
    pub min_severity: Option<LogSeverity>,
    /// Only entries whose text contains this.
    pub contains: Option<String>,
    /// Only entries from this release.
    pub release: Option<String>,
    /// Entries per page (1 to 1000).
    pub page_size: u32,
    /// The token of the page to fetch; `None` for the first.
    pub page_token: Option<String>,
}

impl LogQuery {
    /// All entries in `window`, 1000 a page.
    pub fn new(window: TimeWindow) -> Self {
        Self {
            window,
            min_severity: None,
            contains: None,
            release: None,
            page_size: 1000,
            page_token: None,
        }
    }
    /// Only entries at least as severe as `severity`.
    pub fn min_severity(mut self, severity: LogSeverity) -> Self {
        self.min_severity = Some(severity);
        self
    }
    /// Rejects a page size outside 1..=1000.
    pub fn validate(&self) -> Result<()> {
        if !(1..=1000).contains(&self.page_size) {
            return Err(Error::invalid_input(
                "ops-core",
                "log_query",
                "page_size",
                "must be 1 to 1000",
            ));
        }
        Ok(())
    }
    /// Whether `entry` passes the filters (for sources that filter locally).
    pub fn matches(&self, entry: &LogEntry) -> bool {
        self.window.contains(entry.timestamp)
            && self.min_severity.is_none_or(|s| entry.severity >= s)
            && self
                .contains
                .as_deref()
                .is_none_or(|t| entry.message.contains(t))
            && self
                .release
                .as_deref()
                .is_none_or(|r| entry.release.as_deref() == Some(r))
    }
}

/// One page of entries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogPage {
    /// Entries, oldest first.
    pub entries: Vec<LogEntry>,
    /// The next page's token, `None` on the last page.
    pub next_page_token: Option<String>,
}

/// A source of log entries.
///
/// Each method's `# Behavior` names the cases of the testkit's log source suite
/// (`testkit::log_source_cases`) that check it.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait LogSource: Send + Sync {
    /// The source's name, for reports.
    fn name(&self) -> &str;
    /// One page of entries matching `query`.
    ///
    /// # Behavior
    /// - Following the page tokens returns every entry once, oldest first
    ///   (`paging_returns_every_entry_once_oldest_first`).
    /// - Only entries inside the window (`nothing_outside_the_window_is_returned`) and
    ///   containing the text asked for (`contains_filters_by_text`).
    /// - A zero page size is `InvalidInput` (`a_zero_page_size_is_invalid`).
    async fn query_page(&self, query: &LogQuery) -> Result<LogPage>;
    /// How many entries match, counting at most `cap` (a source may count server-side; the
    /// default pages through).
    ///
    /// # Behavior
    /// Counts only entries at or above the minimum severity, and never more than `cap`
    /// (`count_honours_min_severity_and_its_cap`).
    async fn count(&self, query: &LogQuery, cap: u64) -> Result<u64> {
        let mut q = query.clone();
        let mut n = 0u64;
        loop {
            let page = self.query_page(&q).await?;
            n += page.entries.len() as u64;
            match page.next_page_token {
                Some(t) if n < cap => q.page_token = Some(t),
                _ => return Ok(n.min(cap)),
            }
        }
    }
}

/// All entries matching `query`, page by page, stopping after `cap` entries.
pub fn log_entries<'a>(
    source: &'a dyn LogSource,
    query: LogQuery,
    cap: usize,
) -> impl Stream<Item = Result<LogEntry>> + Send + 'a {
    struct State {
        query: LogQuery,
        buffered: std::vec::IntoIter<LogEntry>,
        done: bool,
        yielded: usize,
    }
    let init = State {
        query,
        buffered: Vec::new().into_iter(),
        done: false,
        yielded: 0,
    };
    futures_util::stream::unfold(init, move |mut st| async move {
        loop {
            if st.yielded >= cap {
                return None;
            }
            if let Some(e) = st.buffered.next() {
                st.yielded += 1;
                return Some((Ok(e), st));
            }
            if st.done {
                return None;
            }
            match source.query_page(&st.query).await {
                Ok(page) => {
                    st.buffered = page.entries.into_iter();
                    match page.next_page_token {
                        Some(t) => st.query.page_token = Some(t),
                        None => st.done = true,
                    }
                }
                Err(e) => {
                    st.done = true;
                    st.buffered = Vec::new().into_iter();
                    st.yielded = cap; // stop after reporting the error
                    return Some((Err(e), st));
                }
            }
        }
    })
}
