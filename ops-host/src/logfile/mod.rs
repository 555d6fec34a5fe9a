//! [`LogFiles`]: a log file and its rotations (`error.log`, `error.log.1`, `error.log.2.gz` …)
//! as a [`LogSource`] — the seed's `tail -1000 logs/error.log | grep ERROR` as a query by
//! time window, severity and text.
//!
//! Each query reads only what its window needs: the newest file from its end backwards, and
//! older files only while their lines are still inside the window. A rotation while a query
//! runs loses nothing and repeats nothing: files are told apart by inode, and pages continue
//! from the last entry's time, not from a position in a file.

mod scan;

use std::path::PathBuf;

use async_trait::async_trait;
use chrono::{DateTime, FixedOffset, Offset, Utc};
use ops_core::contracts::{LogEntry, LogPage, LogQuery, LogSeverity, LogSource};
use ops_core::{Error, Result};

pub use ops_core::log_line::{LineFormat, ParsedLine, level_word, parse_line, parse_timestamp};

/// Where the log is and how its lines are written.
#[derive(Debug, Clone)]
pub struct LogFilesConfig {
    /// The current file (`/srv/app/logs/error.log`); its rotations sit beside it.
    pub path: PathBuf,
    /// Plain, JSON lines, or either by line (the default).
    pub format: LineFormat,
    /// The zone of timestamps written without one (default UTC).
    pub zone: FixedOffset,
    /// The severity of a line that names none: `Error` for a file of stderr (pm2's
    /// `error.log`), `Default` otherwise.
    pub default_severity: LogSeverity,
    /// The release every entry is labelled with (the version the files belong to), if known.
    pub release: Option<String>,
    /// How many rotations (`.1` to `.N`, plain or `.gz`) are read at most (0 to 100; default 9).
    pub max_rotated: u32,
    /// How far out of order lines may be (several processes writing one file): reading stops
    /// at a line this much older than the window (default 5 minutes; at most a day).
    pub disorder: chrono::Duration,
    /// The most matching entries one query keeps (1 to 10,000,000; default 200,000); more is
    /// `InvalidInput` asking for a narrower window.
    pub max_entries: usize,
}

impl LogFilesConfig {
    /// The log at `path`, lines of either kind, UTC, rotations up to `.9`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            format: LineFormat::Auto,
            zone: chrono::Utc.fix(),
            default_severity: LogSeverity::Default,
            release: None,
            max_rotated: 9,
            disorder: chrono::Duration::minutes(5),
            max_entries: 200_000,
        }
    }

    /// Refuses what cannot work: a path without a file name, bounds outside their ranges.
    pub fn validate(&self) -> Result<()> {
        let bad = |field: &str, why: &str| Error::invalid_input("host", "log_files", field, why);
        if self.path.file_name().is_none() {
            return Err(bad("path", "must name a file"));
        }
        if self.max_rotated > 100 {
            return Err(bad("max_rotated", "must be 0 to 100"));
        }
        if self.disorder < chrono::Duration::zero() || self.disorder > chrono::Duration::days(1) {
            return Err(bad("disorder", "must be 0 to one day"));
        }
        if !(1..=10_000_000).contains(&self.max_entries) {
            return Err(bad("max_entries", "must be 1 to 10,000,000"));
        }
        Ok(())
    }
}

/// A log file and its rotations as a [`LogSource`].
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> ops_core::Result<()> {
/// use ops_core::contracts::{LogQuery, LogSeverity, LogSource, TimeWindow};
/// use ops_host::logfile::{LogFiles, LogFilesConfig};
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("error.log");
/// std::fs::write(&path, "2026-11-30T12:00:00Z INFO up\n2026-11-30T12:00:05Z ERROR db timeout\n    at pool.js:10\n").unwrap();
/// let logs = LogFiles::new("api", LogFilesConfig::new(&path))?;
/// let window = TimeWindow::new("2026-11-30T00:00:00Z".parse().unwrap(), "2026-12-01T00:00:00Z".parse().unwrap())?;
/// let page = logs.query_page(&LogQuery::new(window).min_severity(LogSeverity::Error)).await?;
/// assert_eq!(page.entries[0].message, "ERROR db timeout\n    at pool.js:10");
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct LogFiles {
    name: String,
    config: LogFilesConfig,
}

impl LogFiles {
    /// A source named `name` over the log `config` describes.
    pub fn new(name: impl Into<String>, config: LogFilesConfig) -> Result<Self> {
        config.validate()?;
        Ok(Self {
            name: name.into(),
            config,
        })
    }

    /// Every entry matching `query` (its page token aside), oldest first; with `enough`, the
    /// reading stops once that many are found (a count with a cap).
    async fn matching(&self, query: &LogQuery, enough: Option<usize>) -> Result<Vec<LogEntry>> {
        let config = self.config.clone();
        let query = query.clone();
        // File reads block: off the async threads.
        let mut found = tokio::task::spawn_blocking(move || scan::collect(&config, &query, enough))
            .await
            .map_err(|e| {
                Error::new(
                    "host",
                    "log_files",
                    ops_core::ErrorKind::Panicked {
                        message: e.to_string(),
                    },
                )
            })??;
        // Oldest first; equal times keep the order of the files and of their lines.
        found.sort_by_key(|(e, place)| (e.timestamp, *place));
        Ok(found.into_iter().map(|(e, _)| e).collect())
    }
}

/// Where the next page starts: after the entries before `at`, and after `skip` entries at `at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PageToken {
    at: DateTime<Utc>,
    skip: usize,
}

impl PageToken {
    fn encode(&self) -> String {
        format!(
            "{}.{}",
            self.at.timestamp_nanos_opt().unwrap_or(i64::MAX),
            self.skip
        )
    }

    fn decode(token: &str) -> Result<Self> {
        let bad = || {
            Error::invalid_input(
                "host",
                "log_files",
                "page_token",
                "not a token of this source",
            )
        };
        let (at, skip) = token.split_once('.').ok_or_else(bad)?;
        let at = DateTime::from_timestamp_nanos(at.parse().map_err(|_| bad())?);
        Ok(Self {
            at,
            skip: skip.parse().map_err(|_| bad())?,
        })
    }

    /// The entries of `sorted` this token has not returned yet.
    fn rest(self, sorted: &[LogEntry]) -> &[LogEntry] {
        let before = sorted.partition_point(|e| e.timestamp < self.at);
        let same = sorted[before..].partition_point(|e| e.timestamp == self.at);
        &sorted[before + self.skip.min(same)..]
    }

    /// The token after `page`, following `previous` (`None` for the first page).
    fn after(page: &[LogEntry], previous: Option<PageToken>) -> Option<PageToken> {
        let last = page.last()?.timestamp;
        let in_page = page
            .iter()
            .rev()
            .take_while(|e| e.timestamp == last)
            .count();
        let carried = match previous {
            Some(p) if p.at == last => p.skip,
            _ => 0,
        };
        Some(PageToken {
            at: last,
            skip: carried.saturating_add(in_page),
        })
    }
}

#[async_trait]
impl LogSource for LogFiles {
    fn name(&self) -> &str {
        &self.name
    }

    async fn query_page(&self, query: &LogQuery) -> Result<LogPage> {
        query.validate()?;
        let token = query
            .page_token
            .as_deref()
            .map(PageToken::decode)
            .transpose()?;
        let sorted = self.matching(query, None).await?;
        let rest = match token {
            Some(t) => t.rest(&sorted),
            None => &sorted[..],
        };
        let size = usize::try_from(query.page_size).unwrap_or(usize::MAX);
        let page: Vec<LogEntry> = rest.iter().take(size).cloned().collect();
        let next_page_token = if rest.len() > page.len() {
            PageToken::after(&page, token).map(|t| t.encode())
        } else {
            None
        };
        Ok(LogPage {
            entries: page,
            next_page_token,
        })
    }

    /// Counts in one pass over the files (no pages), reading no further than `cap` entries.
    async fn count(&self, query: &LogQuery, cap: u64) -> Result<u64> {
        let mut q = query.clone();
        q.page_token = None;
        let enough = usize::try_from(cap).unwrap_or(usize::MAX);
        let n = self.matching(&q, Some(enough)).await?.len();
        Ok(u64::try_from(n).unwrap_or(u64::MAX).min(cap))
    }
}
