//! [`FileRunLock`]: an OS file lock per key, plus a fair in-process queue.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::OwnedMutexGuard;

use super::{LockHolder, LockLease, LockWait, RunLock, lock_conflict};
use crate::clock::{SharedClock, system_clock};
use crate::{Error, ErrorKind, Result};

const PROVIDER: &str = "file-lock";

/// A lock per key as a file `DIR/KEY.lock` holding the holder's record, locked with the OS's
/// advisory file lock (`flock`). The OS drops the lock when the holding process dies, so a
/// crashed run never blocks the next one: the leftover record is reported as
/// [`LockLease::recovered_from`]. In one process, waiters queue in arrival order.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> ops_core::Result<()> {
/// use ops_core::engine::{FileRunLock, LockHolder, LockWait, RunLock};
/// let dir = tempfile::tempdir().unwrap();
/// let locks = FileRunLock::open(dir.path()).await?;
/// let me = LockHolder::this_process("run-1", "canary", chrono::DateTime::UNIX_EPOCH);
/// let lease = locks.acquire("api", &me, LockWait::Fail).await?;
/// let other = LockHolder::this_process("run-2", "canary", chrono::DateTime::UNIX_EPOCH);
/// let err = locks.acquire("api", &other, LockWait::Fail).await.unwrap_err();
/// assert!(err.to_string().contains("locked by run run-1"));
/// locks.release(&lease).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct FileRunLock {
    dir: PathBuf,
    clock: SharedClock,
    poll: Duration,
    queues: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
    held: Arc<Mutex<HashMap<String, Held>>>,
}

#[derive(Debug)]
struct Held {
    file: File,
    _turn: OwnedMutexGuard<()>,
}

impl FileRunLock {
    /// Locks under `dir` (created if needed).
    pub async fn open(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(|e| io_err("open", &dir, &e))?;
        Ok(Self {
            dir,
            clock: system_clock(),
            poll: Duration::from_millis(200),
            queues: Default::default(),
            held: Default::default(),
        })
    }

    /// Uses `clock` for waiting.
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// How often a waiter looks again at a lock held by another process (default 200 ms).
    pub fn poll_every(mut self, poll: Duration) -> Self {
        self.poll = poll;
        self
    }

    fn path(&self, key: &str) -> Result<PathBuf> {
        crate::contracts::validate_name(PROVIDER, "acquire", "key", key)?;
        Ok(self.dir.join(format!("{}.lock", lock_file_stem(key))))
    }

    fn queue(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut q = self.queues.lock().unwrap_or_else(|p| p.into_inner());
        q.entry(key.to_string()).or_default().clone()
    }
}

/// The file name (without `.lock`) for a lock key. Every valid target has one, in one
/// documented way: a key of up to 200 letters, digits, `.`, `_` and `-` not starting with `.`
/// is its own name (so lock files stay readable); any other key (`postgres:victim`, `a/b`,
/// `../x`) becomes its plain characters, cut to 100, then `~` and the 64-bit FNV-1a hash of
/// the whole key in hex. No key names a path outside the lock directory.
///
/// ```
/// use ops_core::engine::lock_file_stem;
/// assert_eq!(lock_file_stem("api"), "api");
/// let s = lock_file_stem("postgres:victim");
/// assert!(s.starts_with("postgresvictim~") && !s.contains(':'));
/// assert_ne!(lock_file_stem("a/b"), lock_file_stem("a:b"));
/// ```
pub fn lock_file_stem(key: &str) -> String {
    let plain = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-');
    if !key.is_empty() && key.len() <= 200 && !key.starts_with('.') && key.bytes().all(plain) {
        return key.to_string();
    }
    let hash = key.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    let kept: String = key
        .bytes()
        .filter(|b| plain(*b) && *b != b'.')
        .take(100)
        .map(char::from)
        .collect();
    format!("{kept}~{hash:016x}")
}

/// What one look at the OS lock found.
enum Take {
    /// Ours now; the record a previous holder left, if any.
    Taken(File, Option<LockHolder>),
    /// Another holder has it (its record, if readable).
    Held(Option<LockHolder>),
}

/// Tries the OS lock on `path`.
fn try_take(path: &Path) -> std::io::Result<Take> {
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)?;
    match file.try_lock() {
        Ok(()) => {
            let previous = read_record(&mut file);
            Ok(Take::Taken(file, previous))
        }
        Err(std::fs::TryLockError::WouldBlock) => Ok(Take::Held(read_record(&mut file))),
        Err(std::fs::TryLockError::Error(e)) => Err(e),
    }
}

fn read_record(file: &mut File) -> Option<LockHolder> {
    let mut s = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.read_to_string(&mut s).ok()?;
    serde_json::from_str(&s).ok()
}

fn write_record(file: &mut File, holder: Option<&LockHolder>) -> std::io::Result<()> {
    file.set_len(0)?;
    file.seek(SeekFrom::Start(0))?;
    if let Some(h) = holder {
        file.write_all(&serde_json::to_vec(h).map_err(std::io::Error::other)?)?;
    }
    file.sync_data()
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
impl RunLock for FileRunLock {
    async fn acquire(&self, key: &str, holder: &LockHolder, wait: LockWait) -> Result<LockLease> {
        let path = self.path(key)?;
        let start = self.clock.instant();
        // In this process: wait our turn, in order of arrival.
        let queue = self.queue(key);
        let turn = match wait {
            LockWait::Fail => queue.try_lock_owned().ok(),
            LockWait::Wait(limit) => {
                crate::clock::timeout(self.clock.as_ref(), limit, queue.lock_owned()).await
            }
        };
        let Some(turn) = turn else {
            let current = self
                .held
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(key)
                .map(|h| {
                    let mut f = h.file.try_clone().ok();
                    f.as_mut().and_then(read_record)
                });
            let waited = matches!(wait, LockWait::Wait(_))
                .then(|| self.clock.instant().saturating_duration_since(start));
            return Err(lock_conflict(
                PROVIDER,
                key,
                current.flatten().as_ref(),
                waited,
            ));
        };
        // Across processes: the OS lock, looked at again until the deadline.
        loop {
            let p = path.clone();
            let attempt = tokio::task::spawn_blocking(move || try_take(&p))
                .await
                .map_err(|e| {
                    Error::new(
                        PROVIDER,
                        "acquire",
                        ErrorKind::Io {
                            kind: std::io::ErrorKind::Other,
                            message: e.to_string(),
                        },
                    )
                })?
                .map_err(|e| io_err("acquire", &path, &e))?;
            match attempt {
                Take::Taken(mut file, previous) => {
                    write_record(&mut file, Some(holder))
                        .map_err(|e| io_err("acquire", &path, &e))?;
                    if let Some(prev) = &previous {
                        tracing::warn!(key, previous_run = %prev.run_id, previous_pid = prev.pid, "recovered a lock left by a run that ended without releasing it");
                    }
                    self.held
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(key.to_string(), Held { file, _turn: turn });
                    let mut lease = LockLease::new(key, holder.clone());
                    lease.recovered_from = previous;
                    return Ok(lease);
                }
                Take::Held(other) => {
                    let elapsed = self.clock.instant().saturating_duration_since(start);
                    match wait {
                        // Wait the full limit: the last poll is shortened to end at it, and one
                        // more look is taken there.
                        LockWait::Wait(limit) if elapsed < limit => {
                            self.clock.sleep(self.poll.min(limit - elapsed)).await
                        }
                        LockWait::Wait(_) => {
                            return Err(lock_conflict(
                                PROVIDER,
                                key,
                                other.as_ref(),
                                Some(elapsed),
                            ));
                        }
                        LockWait::Fail => {
                            return Err(lock_conflict(PROVIDER, key, other.as_ref(), None));
                        }
                    }
                }
            }
        }
    }

    async fn release(&self, lease: &LockLease) -> Result<()> {
        let held = self
            .held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&lease.key);
        let Some(mut held) = held else {
            return Err(Error::new(
                PROVIDER,
                "release",
                ErrorKind::NotFound {
                    resource: format!("lock {}", lease.key),
                },
            ));
        };
        let path = self.path(&lease.key)?;
        // Clear the record before unlocking: an empty file is a lock released cleanly.
        write_record(&mut held.file, None).map_err(|e| io_err("release", &path, &e))?;
        held.file
            .unlock()
            .map_err(|e| io_err("release", &path, &e))?;
        Ok(())
    }
}
