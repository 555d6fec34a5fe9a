//! [`MemoryLogSource`]: log entries in memory.

use std::sync::Mutex;

use async_trait::async_trait;

use super::lock;
use crate::contracts::{LogEntry, LogPage, LogQuery, LogSource};
use crate::{Error, Result};

const PROVIDER: &str = "memory-logs";

/// Log entries held in memory, filtered by [`LogQuery::matches`], oldest first, paged by
/// offset tokens.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> ops_core::Result<()> {
/// use ops_core::memory::MemoryLogSource;
/// use ops_core::contracts::{LogEntry, LogQuery, LogSeverity, LogSource, TimeWindow};
/// let logs = MemoryLogSource::new("app");
/// let at = "2026-01-01T00:00:00Z".parse().unwrap();
/// logs.push(LogEntry { timestamp: at, severity: LogSeverity::Error, message: "db timeout".into(),
///     payload: None, release: None, labels: Default::default() });
/// let window = TimeWindow::ending_at(at + chrono::Duration::hours(1), std::time::Duration::from_secs(86_400))?;
/// let errors = logs.count(&LogQuery::new(window).min_severity(LogSeverity::Error), 1000).await?;
/// assert_eq!(errors, 1);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct MemoryLogSource {
    name: String,
    entries: Mutex<Vec<LogEntry>>,
}

impl MemoryLogSource {
    /// An empty source.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            entries: Mutex::new(Vec::new()),
        }
    }

    /// Adds an entry.
    pub fn push(&self, entry: LogEntry) {
        let mut entries = lock(&self.entries);
        // Keep time order so pages are stable; entries usually arrive in order.
        let at = entries.partition_point(|e| e.timestamp <= entry.timestamp);
        entries.insert(at, entry);
    }
}

#[async_trait]
impl LogSource for MemoryLogSource {
    fn name(&self) -> &str {
        &self.name
    }

    async fn query_page(&self, query: &LogQuery) -> Result<LogPage> {
        query.validate()?;
        let offset = match &query.page_token {
            None => 0,
            Some(t) => t.parse::<usize>().map_err(|_| {
                Error::invalid_input(
                    PROVIDER,
                    "query_page",
                    "page_token",
                    "not a token this source issued",
                )
            })?,
        };
        let entries = lock(&self.entries);
        let mut matching = entries.iter().filter(|e| query.matches(e)).skip(offset);
        let page: Vec<LogEntry> = matching
            .by_ref()
            .take(query.page_size as usize)
            .cloned()
            .collect();
        let more = matching.next().is_some();
        let next = offset + page.len();
        Ok(LogPage {
            entries: page,
            next_page_token: more.then(|| next.to_string()),
        })
    }
}
