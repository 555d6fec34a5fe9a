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

/// Pages entries a source holds in memory (read from files, streams or an API without paging
/// of its own): those `query` matches, ordered by time then `key` (unique per entry and stable
/// between calls), `query.page_size` at a time. The page token is the last entry returned
/// (`<nanoseconds>~<key>`), so entries that arrive between pages are neither lost nor repeated.
/// A token this function did not make is `InvalidInput` naming `source`.
///
/// ```
/// use ops_core::contracts::{LogEntry, LogQuery, LogSeverity, TimeWindow, page_in_memory};
/// let at = |s| chrono::DateTime::from_timestamp(s, 0).unwrap();
/// let entry = |s, m: &str| LogEntry { timestamp: at(s), severity: LogSeverity::Info,
///     message: m.into(), payload: None, release: None, labels: Default::default() };
/// let all = vec![("b".to_string(), entry(2, "two")), ("a".to_string(), entry(1, "one"))];
/// let q = LogQuery { page_size: 1, ..LogQuery::new(TimeWindow::new(at(0), at(9)).unwrap()) };
/// let first = page_in_memory("demo", &q, all.clone()).unwrap();
/// assert_eq!(first.entries[0].message, "one");
/// let q = LogQuery { page_token: first.next_page_token, ..q };
/// assert_eq!(page_in_memory("demo", &q, all).unwrap().entries[0].message, "two");
/// ```
pub fn page_in_memory(
    source: &str,
    query: &LogQuery,
    entries: Vec<(String, LogEntry)>,
) -> Result<LogPage> {
    query.validate()?;
    let after = match query.page_token.as_deref() {
        None => None,
        Some(token) => Some(
            token
                .split_once('~')
                .and_then(|(t, k)| Some((t.parse::<i64>().ok()?, k.to_string())))
                .ok_or_else(|| {
                    Error::invalid_input(
                        source.to_string(),
                        "query_page",
                        "page_token",
                        "not a token this source gave",
                    )
                })?,
        ),
    };
    let mut all: Vec<(i64, String, LogEntry)> = entries
        .into_iter()
        .map(|(key, e)| {
            (
                e.timestamp.timestamp_nanos_opt().unwrap_or(i64::MAX),
                key,
                e,
            )
        })
        .filter(|(t, key, e)| {
            query.matches(e)
                && after
                    .as_ref()
                    .is_none_or(|(at, k)| (*t, key.as_str()) > (*at, k.as_str()))
        })
        .collect();
    all.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    let size = query.page_size as usize;
    let next_page_token = (all.len() > size)
        .then(|| all.get(size.saturating_sub(1)))
        .flatten()
        .map(|(t, k, _)| format!("{t}~{k}"));
    all.truncate(size);
    Ok(LogPage {
        entries: all.into_iter().map(|(_, _, e)| e).collect(),
        next_page_token,
    })
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
