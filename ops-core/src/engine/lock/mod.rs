//! Run locks: two runs on one target (two rollouts of one service) never overlap.

mod file;

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use file::{FileRunLock, lock_file_stem};

use crate::{Error, ErrorKind, Result};

/// Who holds (or wants) a lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockHolder {
    /// The run.
    pub run_id: String,
    /// Its runbook.
    pub runbook: String,
    /// The machine it runs on.
    pub host: String,
    /// Its process id.
    pub pid: u32,
    /// When it took the lock.
    pub since: DateTime<Utc>,
}

impl LockHolder {
    /// This process as holder of `run_id` of `runbook`, from `since`.
    pub fn this_process(
        run_id: impl Into<String>,
        runbook: impl Into<String>,
        since: DateTime<Utc>,
    ) -> Self {
        Self {
            run_id: run_id.into(),
            runbook: runbook.into(),
            host: hostname(),
            pid: std::process::id(),
            since,
        }
    }

    fn describe(&self) -> String {
        format!(
            "run {} (runbook {}) on host {} pid {} since {}",
            self.run_id,
            self.runbook,
            self.host,
            self.pid,
            self.since.to_rfc3339()
        )
    }
}

/// The name of this machine (`/proc/sys/kernel/hostname`, `$HOSTNAME`, or `unknown`).
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".into())
}

/// What to do when the lock is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LockWait {
    /// Fail at once with a conflict naming the holder.
    Fail,
    /// Wait in line up to this long, then fail with a conflict naming the holder.
    Wait(#[serde(with = "crate::serde_duration")] Duration),
}

/// A held lock; give it back with [`RunLock::release`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockLease {
    /// The key locked (the target).
    pub key: String,
    /// Who holds it.
    pub holder: LockHolder,
    /// A holder whose process died without releasing, taken over by this lease.
    pub recovered_from: Option<LockHolder>,
}

/// Mutual exclusion of runs per key (the target).
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait RunLock: Send + Sync {
    /// Takes the lock for `key`, waiting as `wait` says. A taken lock is an
    /// [`ErrorKind::Conflict`] naming the holder and since when.
    async fn acquire(&self, key: &str, holder: &LockHolder, wait: LockWait) -> Result<LockLease>;
    /// Gives the lock back.
    async fn release(&self, lease: &LockLease) -> Result<()>;
}

/// The conflict error for a lock held by `holder`.
pub fn lock_conflict(
    provider: &'static str,
    key: &str,
    holder: Option<&LockHolder>,
    waited: Option<Duration>,
) -> Error {
    let who = holder.map_or_else(|| "another run".to_string(), LockHolder::describe);
    let waited = waited
        .map(|w| format!(" (waited {w:?})"))
        .unwrap_or_default();
    Error::new(
        provider,
        "acquire",
        ErrorKind::Conflict {
            detail: format!("{key} is locked by {who}{waited}"),
        },
    )
}
