//! [`FsBackupStore`]: backups as files in a local directory.
//!
//! Layout: `<root>/<id>` holds the bytes, `<root>/<id>.meta.json` the sidecar (size, CRC32C,
//! source, labels, time). The sidecar is the commit marker: a backup lists only once its sidecar
//! exists and its data file has the recorded size. Writes go to a `.tmp-…` file that is fsynced,
//! then hard-linked into place (which fails instead of overwriting), then the sidecar is written
//! the same way and the directory fsynced. A crash at any point leaves either nothing, an
//! ignored temp file, or a data file without a sidecar — never something that lists as complete.
//!
//! A writer holds an OS lock on its temp file while it writes. Temp files that a killed writer
//! left behind (unlocked, untouched for ten minutes) are swept when the store opens
//! and before every put, so crashes do not fill the disk.

mod leftovers;
mod sidecar;
mod write;

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use tokio::fs;
use tokio::io::{AsyncWriteExt, BufReader};

use self::sidecar::Sidecar;
use super::local_fs::readable_dir;
use crate::checksum::VerifyingReader;
use crate::clock::{SharedClock, system_clock};
use crate::contracts::{
    ArtifactReader, BackupCapabilities, BackupFilter, BackupInfo, BackupStore, CreateBackup,
    PutArtifact, RestoreOutcome, RestoreTarget, Verification,
};
use crate::{Error, ErrorKind, Result};

const PROVIDER: &str = "fs-backup";
const SIDECAR_SUFFIX: &str = ".meta.json";
const COPY_BUFFER: usize = 256 * 1024;
/// A data file without a sidecar older than this is a crashed write's leftover. A put in
/// progress has one only for the moment between linking its data and its sidecar.
const ORPHAN_AFTER: std::time::Duration = std::time::Duration::from_secs(60);
/// A temp file untouched this long and locked by no writer is a killed write's leftover.
const TEMP_STALE_AFTER: std::time::Duration = std::time::Duration::from_secs(10 * 60);
const TEMP_PREFIX: &str = ".tmp-";

/// A [`BackupStore`] over a local directory. Cheap to clone.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> ops_core::Result<()> {
/// use ops_core::adapters::FsBackupStore;
/// use ops_core::contracts::{BackupStore, PutArtifact};
/// use tokio::io::AsyncReadExt;
/// let dir = tempfile::tempdir().unwrap();
/// let store = FsBackupStore::open(dir.path()).await?;
/// let req = PutArtifact { id: "db-20260101-000000.db".into(), source: None, labels: Default::default() };
/// let info = store.put_artifact(&req, Box::pin(&b"sqlite bytes"[..])).await?;
/// assert_eq!(info.size_bytes, Some(12));
/// let mut back = Vec::new();
/// store.get_artifact(&info.id).await?.read_to_end(&mut back).await.unwrap();
/// assert_eq!(back, b"sqlite bytes");
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct FsBackupStore {
    root: PathBuf,
    name: String,
    clock: SharedClock,
    fsync: bool,
}

impl FsBackupStore {
    /// Opens (creating if needed) the backup directory; a path that is not a readable,
    /// writable directory is a typed error.
    pub async fn open(root: impl AsRef<Path>) -> Result<Self> {
        let root = root.as_ref().to_path_buf();
        fs::create_dir_all(&root)
            .await
            .map_err(|e| io_err("open", &root, &e))?;
        readable_dir(PROVIDER, "root", &root).await?;
        let name = format!("fs:{}", root.display());
        let store = Self {
            root,
            name,
            clock: system_clock(),
            fsync: true,
        };
        store.sweep_temp_files("open").await?;
        Ok(store)
    }

    /// Removes temp files left by killed writes: untouched for ten minutes and not locked
    /// by a live writer (in this process or another). Returns how many it removed.
    pub async fn sweep_temp_files(&self, op: &'static str) -> Result<usize> {
        let root = self.root.clone();
        let now = self.clock.now();
        tokio::task::spawn_blocking(move || leftovers::sweep_temp_files(&root, now))
            .await
            .map_err(|e| {
                Error::new(
                    PROVIDER,
                    op,
                    ErrorKind::Io {
                        kind: std::io::ErrorKind::Other,
                        message: e.to_string(),
                    },
                )
            })?
            .map_err(|e| io_err(op, &self.root, &e))
    }

    /// Uses `clock` for backup timestamps.
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// Turns fsync off (tests and throwaway stores only: a crash may then lose a backup that
    /// was reported as written).
    pub fn without_fsync(mut self) -> Self {
        self.fsync = false;
        self
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn data_path(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    fn sidecar_path(&self, id: &str) -> PathBuf {
        self.root.join(format!("{id}{SIDECAR_SUFFIX}"))
    }

    fn temp_path(&self, id: &str) -> PathBuf {
        self.root
            .join(format!(".tmp-{id}-{:016x}", fastrand::u64(..)))
    }

    async fn read_sidecar(&self, op: &'static str, id: &str) -> Result<Sidecar> {
        validate_id(op, id)?;
        let path = self.sidecar_path(id);
        let bytes = match fs::read(&path).await {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::new(
                    PROVIDER,
                    op,
                    ErrorKind::NotFound {
                        resource: id.to_string(),
                    },
                ));
            }
            Err(e) => return Err(io_err(op, &path, &e)),
        };
        Sidecar::decode(op, &bytes)
    }

    /// The sidecar's info, after checking the data file is there with the recorded size.
    async fn complete_info(&self, op: &'static str, id: &str) -> Result<BackupInfo> {
        let sidecar = self.read_sidecar(op, id).await?;
        let data = self.data_path(id);
        let len = match fs::metadata(&data).await {
            Ok(m) => m.len(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::new(
                    PROVIDER,
                    op,
                    ErrorKind::NotFound {
                        resource: id.to_string(),
                    },
                ));
            }
            Err(e) => return Err(io_err(op, &data, &e)),
        };
        if len != sidecar.size_bytes {
            return Err(Error::new(
                PROVIDER,
                op,
                ErrorKind::ChecksumMismatch {
                    expected: format!("{} bytes", sidecar.size_bytes),
                    actual: format!("{len} bytes"),
                },
            ));
        }
        Ok(sidecar.into_info(&self.root))
    }
}

#[async_trait]
impl BackupStore for FsBackupStore {
    fn name(&self) -> &str {
        &self.name
    }

    /// A copy of the file as it is (a runbook's artifact step compresses, `create` does not).
    fn created_as(&self) -> Option<String> {
        Some("raw (a copy of the file)".into())
    }

    fn capabilities(&self) -> BackupCapabilities {
        BackupCapabilities {
            create: true,
            artifacts: true,
            restore: true,
            delete: true,
            verification: true,
        }
    }

    /// Copies the file at `request.source` into the store as `NAME-YYYYMMDD-HHMMSS`.
    async fn create(&self, request: &CreateBackup) -> Result<BackupInfo> {
        let op = "create";
        let source = PathBuf::from(&request.source);
        let stem = match &request.name {
            Some(n) => n.clone(),
            None => source
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .ok_or_else(|| Error::invalid_input(PROVIDER, op, "source", "has no file name"))?,
        };
        let file = fs::File::open(&source).await.map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::new(
                PROVIDER,
                op,
                ErrorKind::NotFound {
                    resource: request.source.clone(),
                },
            ),
            _ => io_err(op, &source, &e),
        })?;
        let absolute = fs::canonicalize(&source)
            .await
            .map_err(|e| io_err(op, &source, &e))?;
        let id = crate::contracts::backup_id(&stem, None, self.clock.now());
        self.put_inner(
            op,
            &id,
            Some(absolute.display().to_string()),
            request.labels.clone(),
            file,
        )
        .await
    }

    async fn put_artifact(
        &self,
        request: &PutArtifact,
        data: ArtifactReader,
    ) -> Result<BackupInfo> {
        self.put_inner(
            "put_artifact",
            &request.id,
            request.source.clone(),
            request.labels.clone(),
            data,
        )
        .await
    }

    async fn get_artifact(&self, id: &str) -> Result<ArtifactReader> {
        let op = "get_artifact";
        let info = self.complete_info(op, id).await?;
        let path = self.data_path(id);
        let file = fs::File::open(&path)
            .await
            .map_err(|e| io_err(op, &path, &e))?;
        let checksum = info.checksum.ok_or_else(|| {
            Error::new(
                PROVIDER,
                op,
                ErrorKind::Decode {
                    detail: "sidecar has no checksum".into(),
                },
            )
        })?;
        Ok(Box::pin(VerifyingReader::new(
            BufReader::with_capacity(COPY_BUFFER, file),
            checksum,
            info.size_bytes,
            PROVIDER,
        )))
    }

    async fn list(&self, filter: &BackupFilter) -> Result<Vec<BackupInfo>> {
        let op = "list";
        let mut dir = fs::read_dir(&self.root)
            .await
            .map_err(|e| io_err(op, &self.root, &e))?;
        let mut all = Vec::new();
        while let Some(entry) = dir
            .next_entry()
            .await
            .map_err(|e| io_err(op, &self.root, &e))?
        {
            let file_name = entry.file_name();
            let Some(id) = file_name
                .to_str()
                .and_then(|n| n.strip_suffix(SIDECAR_SUFFIX))
            else {
                continue;
            };
            if id.starts_with('.') {
                continue;
            }
            match self.complete_info(op, id).await {
                Ok(info) => all.push(info),
                // Vanished meanwhile (deleted concurrently): not a backup any more.
                Err(e) if matches!(e.kind(), ErrorKind::NotFound { .. }) => {}
                Err(e) => {
                    tracing::warn!(store = %self.name, id, error = %e, "skipping an incomplete or damaged backup")
                }
            }
        }
        Ok(filter.apply(all))
    }

    async fn describe(&self, id: &str) -> Result<BackupInfo> {
        self.complete_info("describe", id).await
    }

    async fn restore(&self, id: &str, target: &RestoreTarget) -> Result<RestoreOutcome> {
        let op = "restore";
        let info = self.complete_info(op, id).await?;
        let dest = PathBuf::from(match target {
            RestoreTarget::Original => info.source.clone().ok_or_else(|| {
                Error::invalid_input(
                    PROVIDER,
                    op,
                    "target",
                    "the backup records no source: name a target",
                )
            })?,
            RestoreTarget::Other(p) => p.clone(),
        });
        let parent = dest
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let tmp = parent.join(format!(".restore-{:016x}", fastrand::u64(..)));
        let copied = async {
            // Decompressed on the way (an artifact written before compression as it is).
            let mut reader = crate::codec::open_plain(self, &info).await?;
            let mut file = fs::File::create(&tmp)
                .await
                .map_err(|e| io_err(op, &tmp, &e))?;
            let n = tokio::io::copy(&mut reader, &mut file)
                .await
                .map_err(|e| crate::error::from_io(PROVIDER, op, e))?;
            file.flush().await.map_err(|e| io_err(op, &tmp, &e))?;
            if self.fsync {
                file.sync_all().await.map_err(|e| io_err(op, &tmp, &e))?;
            }
            // Replace the target only now that every byte was read and verified.
            fs::rename(&tmp, &dest)
                .await
                .map_err(|e| io_err(op, &dest, &e))?;
            Ok(n)
        }
        .await;
        match copied {
            Ok(bytes) => Ok(RestoreOutcome {
                backup_id: id.to_string(),
                target: dest.display().to_string(),
                bytes: Some(bytes),
            }),
            Err(e) => {
                let _ = fs::remove_file(&tmp).await;
                Err(e)
            }
        }
    }

    /// Rewrites the sidecar with the new state (a temp file renamed over it: a crash leaves
    /// the old sidecar or the new one).
    async fn record_verification(&self, id: &str, verification: &Verification) -> Result<()> {
        let op = "record_verification";
        let mut sidecar = self.read_sidecar(op, id).await?;
        sidecar.verification = verification.clone();
        let tmp = self.temp_path(id);
        let written = async {
            let mut f = fs::File::create(&tmp).await?;
            f.write_all(&sidecar.encode()).await?;
            if self.fsync {
                f.sync_all().await?;
            }
            fs::rename(&tmp, self.sidecar_path(id)).await
        }
        .await;
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp).await;
            return Err(io_err(op, &self.sidecar_path(id), &e));
        }
        self.sync_dir(op).await
    }

    async fn delete(&self, id: &str) -> Result<()> {
        let op = "delete";
        self.read_sidecar(op, id).await?;
        // Sidecar first: the backup stops listing before its bytes go.
        let sidecar = self.sidecar_path(id);
        fs::remove_file(&sidecar)
            .await
            .map_err(|e| io_err(op, &sidecar, &e))?;
        match fs::remove_file(self.data_path(id)).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(op, &self.data_path(id), &e)),
        }
        self.sync_dir(op).await
    }
}

/// Ids are file names: 1 to 200 bytes of `A-Z a-z 0-9 . _ -`, not starting with `.`, not
/// ending with the sidecar suffix.
fn validate_id(op: &'static str, id: &str) -> Result<()> {
    let reason = crate::contracts::plain_name_problem(id, 200).or_else(|| {
        id.ends_with(SIDECAR_SUFFIX)
            .then(|| "must not end with .meta.json".to_string())
    });
    match reason {
        Some(r) => Err(Error::invalid_input(PROVIDER, op, "id", r)),
        None => Ok(()),
    }
}

fn io_err(op: &'static str, path: &Path, e: &std::io::Error) -> Error {
    super::local_fs::io_err(PROVIDER, op, path, e)
}

#[cfg(test)]
mod tests;
