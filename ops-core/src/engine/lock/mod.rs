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
#[derive(Debug, Clone)]
pub struct LockLease {
    /// The key locked (the target).
    pub key: String,
    /// Who holds it.
    pub holder: LockHolder,
    /// A holder whose process died without releasing, taken over by this lease.
    pub recovered_from: Option<LockHolder>,
    /// The fencing token: a number that grows with every acquisition of this key, where the
    /// lock keeps one. The runner records it with every mutating step, so the writes of a run
    /// that lost its lock can be told from those of the run that took it over.
    pub fence: Option<u64>,
    /// Fired by the lock when it learns the lease is gone (its session died, a keepalive
    /// failed); the runner then cancels the run before its next mutation.
    pub lost: LeaseLoss,
}

impl PartialEq for LockLease {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
            && self.holder == other.holder
            && self.recovered_from == other.recovered_from
            && self.fence == other.fence
    }
}

impl Eq for LockLease {}

impl LockLease {
    /// A lease of `key` by `holder`, with no fencing token and a loss signal that never fires
    /// unless the lock fires it.
    pub fn new(key: impl Into<String>, holder: LockHolder) -> Self {
        Self {
            key: key.into(),
            holder,
            recovered_from: None,
            fence: None,
            lost: LeaseLoss::default(),
        }
    }
}

/// The signal that a lease was lost. Clones share it; the first reason given wins.
#[derive(Debug, Clone, Default)]
pub struct LeaseLoss {
    fired: tokio_util::sync::CancellationToken,
    reason: std::sync::Arc<std::sync::Mutex<Option<String>>>,
}

impl LeaseLoss {
    /// Says the lease is lost, and why.
    pub fn signal(&self, reason: impl Into<String>) {
        {
            let mut r = self.reason.lock().unwrap_or_else(|p| p.into_inner());
            if r.is_none() {
                *r = Some(reason.into());
            }
        }
        self.fired.cancel();
    }

    /// Whether it was lost.
    pub fn is_lost(&self) -> bool {
        self.fired.is_cancelled()
    }

    /// Waits until it is lost; returns why.
    pub async fn lost(&self) -> String {
        self.fired.cancelled().await;
        self.reason
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .unwrap_or_else(|| "lost".into())
    }
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
