//! Small types shared by several contracts.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// A half-open time window `[start, end)`.
///
/// ```
/// use ops_core::contracts::TimeWindow;
/// let end = "2026-01-02T00:00:00Z".parse().unwrap();
/// let w = TimeWindow::ending_at(end, std::time::Duration::from_secs(86_400)).unwrap();
/// assert_eq!(w.start.to_rfc3339(), "2026-01-01T00:00:00+00:00");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeWindow {
    /// Inclusive start.
    pub start: DateTime<Utc>,
    /// Exclusive end.
    pub end: DateTime<Utc>,
}

impl TimeWindow {
    /// A window from `start` to `end`; `InvalidInput` when `end` is before `start`.
    pub fn new(start: DateTime<Utc>, end: DateTime<Utc>) -> Result<Self> {
        if end < start {
            return Err(Error::invalid_input(
                "ops-core",
                "time_window",
                "end",
                "the window ends before it starts",
            ));
        }
        Ok(Self { start, end })
    }

    /// The `length` before `end`.
    pub fn ending_at(end: DateTime<Utc>, length: std::time::Duration) -> Result<Self> {
        let length = chrono::Duration::from_std(length)
            .map_err(|_| Error::invalid_input("ops-core", "time_window", "length", "too long"))?;
        Self::new(end - length, end)
    }

    /// Whether `t` is inside the window.
    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        self.start <= t && t < self.end
    }

    /// The window's length.
    pub fn duration(&self) -> std::time::Duration {
        (self.end - self.start).to_std().unwrap_or_default()
    }
}

/// Checks that a resource name is usable: not empty, at most 255 bytes, no control characters.
/// `what` names the field for the error.
pub fn validate_name(
    provider: &'static str,
    operation: &'static str,
    what: &str,
    name: &str,
) -> Result<()> {
    let reason = if name.is_empty() {
        Some("must not be empty")
    } else if name.len() > 255 {
        Some("must be at most 255 bytes")
    } else if name.chars().any(char::is_control) {
        Some("must not contain control characters")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(Error::invalid_input(provider, operation, what, reason)),
        None => Ok(()),
    }
}

/// Why `name` is not a plain name, safe as a file name in every store: 1 to `max` bytes of
/// `A-Z a-z 0-9 . _ -`, not starting with `.` (so no path, no traversal, no whitespace).
/// `None` when it is one.
///
/// ```
/// use ops_core::contracts::plain_name_problem;
/// assert_eq!(plain_name_problem("app-20261123.db", 64), None);
/// assert!(plain_name_problem("../etc/x", 64).is_some());
/// ```
pub fn plain_name_problem(name: &str, max: usize) -> Option<String> {
    if name.is_empty() {
        Some("must not be empty".into())
    } else if name.len() > max {
        Some(format!("must be at most {max} bytes"))
    } else if name.starts_with('.') {
        Some("must not start with '.'".into())
    } else if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        Some("may contain only letters, digits, '.', '_' and '-'".into())
    } else {
        None
    }
}

/// The error of a contract method's default body: `store` cannot do `operation` at all (its
/// capabilities say so). Implementations that can override the method.
pub(crate) fn unsupported_by(store: &str, operation: &'static str, what: &str) -> crate::Error {
    crate::Error::unsupported(
        store.to_string(),
        operation,
        format!("{what} (not among {store}'s capabilities)"),
    )
}
