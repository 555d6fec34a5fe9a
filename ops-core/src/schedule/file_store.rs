//! Occurrences in a file: the embedded default, for scheduler processes on one machine. Every
//! operation takes an OS lock on `occurrences.lock`, reads `occurrences.json`, and saves it
//! (written aside, synced, renamed over) when it changed, so a process killed mid-save leaves
//! the previous state, never half of one. Final records older than the retention (counted back
//! from the newest watermark, not from a clock) are dropped as it saves.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::memory_store::{OccurrenceState, SavedState};
use super::store::{OccurrenceRecord, OccurrenceStatus, OccurrenceStore};
use crate::{Error, ErrorKind, Result};

const PROVIDER: &str = "file-occurrences";

/// How long final records are kept by default: 90 days.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(90 * 86_400);

/// Occurrences in `DIR/occurrences.json`, shared by the processes of one machine.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> ops_core::Result<()> {
/// use ops_core::schedule::{FileOccurrenceStore, OccurrenceRecord, OccurrenceStatus, OccurrenceStore};
/// let dir = tempfile::tempdir().unwrap();
/// let store = FileOccurrenceStore::open(dir.path())?;
/// let at = "2026-12-01T09:00:00Z".parse().unwrap();
/// let r = OccurrenceRecord::new("health-check", at, OccurrenceStatus::Missed);
/// assert!(store.claim(&r).await?);
/// // Another process (here: another handle) sees it and cannot claim it again.
/// assert!(!FileOccurrenceStore::open(dir.path())?.claim(&r).await?);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct FileOccurrenceStore {
    dir: PathBuf,
    retention: Duration,
    /// One operation at a time in this process (the OS lock orders processes).
    local: Arc<tokio::sync::Mutex<()>>,
}

impl FileOccurrenceStore {
    /// A store in `dir` (created if missing).
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        std::fs::create_dir_all(&dir).map_err(|e| io_err("open", &dir, &e))?;
        Ok(Self {
            dir,
            retention: DEFAULT_RETENTION,
            local: Arc::default(),
        })
    }

    /// Keeps final records for `retention` (default [`DEFAULT_RETENTION`]).
    pub fn retention(mut self, retention: Duration) -> Self {
        self.retention = retention;
        self
    }

    /// The state file.
    pub fn path(&self) -> PathBuf {
        self.dir.join("occurrences.json")
    }

    async fn with<T, F>(&self, op: &'static str, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut OccurrenceState) -> (T, bool) + Send + 'static,
    {
        let _one = self.local.lock().await;
        let (dir, retention) = (self.dir.clone(), self.retention);
        tokio::task::spawn_blocking(move || locked(&dir, retention, op, f))
            .await
            .map_err(|e| match e.try_into_panic() {
                Ok(p) => Error::from_panic(PROVIDER, op, p.as_ref()),
                Err(_) => Error::new(PROVIDER, op, ErrorKind::Cancelled),
            })?
    }
}

fn locked<T>(
    dir: &Path,
    retention: Duration,
    op: &'static str,
    f: impl FnOnce(&mut OccurrenceState) -> (T, bool),
) -> Result<T> {
    let lock_path = dir.join("occurrences.lock");
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| io_err(op, &lock_path, &e))?;
    lock.lock().map_err(|e| io_err(op, &lock_path, &e))?;
    let path = dir.join("occurrences.json");
    let mut state = load(&path, op)?;
    let (out, changed) = f(&mut state);
    if changed {
        if let Some(newest) = state.newest_watermark() {
            let keep = chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::MAX);
            state.prune(
                newest
                    .checked_sub_signed(keep)
                    .unwrap_or(DateTime::<Utc>::MIN_UTC),
            );
        }
        save(dir, &path, &state, op)?;
    }
    // The OS lock goes with the handle.
    drop(lock);
    Ok(out)
}

fn load(path: &Path, op: &'static str) -> Result<OccurrenceState> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice::<SavedState>(&bytes)
            .map(OccurrenceState::from)
            .map_err(|e| {
                Error::new(
                    PROVIDER,
                    op,
                    ErrorKind::Decode {
                        detail: format!(
                            "{} is damaged ({e}); move it aside to start afresh (the schedules then begin again from now)",
                            path.display()
                        ),
                    },
                )
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(OccurrenceState::default()),
        Err(e) => Err(io_err(op, path, &e)),
    }
}

fn save(dir: &Path, path: &Path, state: &OccurrenceState, op: &'static str) -> Result<()> {
    let aside = dir.join("occurrences.json.new");
    let bytes = serde_json::to_vec(&SavedState::from(state)).map_err(|e| {
        Error::new(
            PROVIDER,
            op,
            ErrorKind::Decode {
                detail: e.to_string(),
            },
        )
    })?;
    let write = || -> std::io::Result<()> {
        let mut f = File::create(&aside)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        std::fs::rename(&aside, path)?;
        // The rename itself must survive a crash.
        File::open(dir)?.sync_all()
    };
    write().map_err(|e| io_err(op, path, &e))
}

fn io_err(op: &'static str, path: &Path, e: &std::io::Error) -> Error {
    Error::new(
        PROVIDER,
        op,
        ErrorKind::Io {
            kind: e.kind(),
            message: format!("{}: {e}", path.display()),
        },
    )
}

#[async_trait]
impl OccurrenceStore for FileOccurrenceStore {
    async fn claim(&self, record: &OccurrenceRecord) -> Result<bool> {
        let record = record.clone();
        self.with("claim", move |s| {
            let won = s.claim(&record);
            (won, won)
        })
        .await
    }

    async fn renew(
        &self,
        schedule: &str,
        occurrence: DateTime<Utc>,
        replica: &str,
        lease_until: DateTime<Utc>,
    ) -> Result<Option<OccurrenceRecord>> {
        let (schedule, replica) = (schedule.to_string(), replica.to_string());
        self.with("renew", move |s| {
            let r = s.renew(&schedule, occurrence, &replica, lease_until);
            let changed = r.is_some();
            (r, changed)
        })
        .await
    }

    async fn started(
        &self,
        schedule: &str,
        occurrence: DateTime<Utc>,
        replica: &str,
        run_id: &str,
    ) -> Result<bool> {
        let (schedule, replica, run_id) = (
            schedule.to_string(),
            replica.to_string(),
            run_id.to_string(),
        );
        self.with("started", move |s| {
            let held = s.started(&schedule, occurrence, &replica, &run_id);
            (held, held)
        })
        .await
    }

    async fn finish(
        &self,
        schedule: &str,
        occurrence: DateTime<Utc>,
        replica: &str,
        status: OccurrenceStatus,
        detail: Option<String>,
    ) -> Result<bool> {
        let (schedule, replica) = (schedule.to_string(), replica.to_string());
        self.with("finish", move |s| {
            let held = s.finish(&schedule, occurrence, &replica, status, detail);
            (held, held)
        })
        .await
    }

    async fn expired(&self, now: DateTime<Utc>) -> Result<Vec<OccurrenceRecord>> {
        self.with("expired", move |s| (s.expired(now), false)).await
    }

    async fn take_over(
        &self,
        expired: &OccurrenceRecord,
        replica: &str,
        lease_until: DateTime<Utc>,
    ) -> Result<bool> {
        let (expired, replica) = (expired.clone(), replica.to_string());
        self.with("take_over", move |s| {
            let won = s.take_over(&expired, &replica, lease_until);
            (won, won)
        })
        .await
    }

    async fn request_cancel(&self, schedule: &str, occurrence: DateTime<Utc>) -> Result<bool> {
        let schedule = schedule.to_string();
        self.with("request_cancel", move |s| {
            let running = s.request_cancel(&schedule, occurrence);
            (running, running)
        })
        .await
    }

    async fn running(&self, schedule: &str) -> Result<Vec<OccurrenceRecord>> {
        let schedule = schedule.to_string();
        self.with("running", move |s| (s.running(&schedule), false))
            .await
    }

    async fn watermark(&self, schedule: &str) -> Result<Option<DateTime<Utc>>> {
        let schedule = schedule.to_string();
        self.with("watermark", move |s| (s.watermark(&schedule), false))
            .await
    }

    async fn advance(&self, schedule: &str, through: DateTime<Utc>) -> Result<()> {
        let schedule = schedule.to_string();
        self.with("advance", move |s| ((), s.advance(&schedule, through)))
            .await
    }

    async fn records(
        &self,
        schedule: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<OccurrenceRecord>> {
        let schedule = schedule.to_string();
        self.with("records", move |s| (s.records(&schedule, from, to), false))
            .await
    }
}
