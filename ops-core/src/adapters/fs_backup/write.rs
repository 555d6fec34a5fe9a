//! Writing a backup so that a crash never leaves one that lists as complete: a locked temp
//! file, fsynced, hard-linked into place, then the sidecar the same way.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use tokio::fs;
use tokio::io::{AsyncRead, AsyncWriteExt, BufReader};

use super::sidecar::Sidecar;
use super::{COPY_BUFFER, FsBackupStore, ORPHAN_AFTER, PROVIDER, io_err, validate_id};
use crate::checksum::HashingReader;
use crate::contracts::BackupInfo;
use crate::{Error, ErrorKind, Result};

impl FsBackupStore {
    /// Writes `data` to a fresh temp file, fsyncs it, and returns its path, size and checksum.
    async fn write_temp<R: AsyncRead + Unpin>(
        &self,
        op: &'static str,
        id: &str,
        data: R,
    ) -> Result<(PathBuf, Sidecar)> {
        let tmp = self.temp_path(id);
        let result = async {
            let file = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&tmp)
                .await
                .map_err(|e| io_err(op, &tmp, &e))?;
            // Held until the file is closed: the sweep never removes a live write.
            let file = file.into_std().await;
            file.try_lock().map_err(|e| {
                io_err(
                    op,
                    &tmp,
                    &std::io::Error::other(format!("cannot lock a new temp file: {e}")),
                )
            })?;
            let mut file = fs::File::from_std(file);
            let mut reader = BufReader::with_capacity(COPY_BUFFER, HashingReader::new(data));
            tokio::io::copy_buf(&mut reader, &mut file)
                .await
                .map_err(|e| crate::error::from_io(PROVIDER, op, e))?;
            file.flush().await.map_err(|e| io_err(op, &tmp, &e))?;
            if self.fsync {
                file.sync_all().await.map_err(|e| io_err(op, &tmp, &e))?;
            }
            let hasher = *reader.get_ref().hasher();
            Ok(Sidecar::new(
                id,
                self.clock.now(),
                hasher.len(),
                hasher.checksum(),
            ))
        }
        .await;
        match result {
            Ok(sidecar) => Ok((tmp, sidecar)),
            Err(e) => {
                let _ = fs::remove_file(&tmp).await;
                Err(e)
            }
        }
    }

    /// Links `tmp` to `dest` (failing with `AlreadyExists` instead of overwriting) and removes
    /// `tmp`.
    async fn link_into_place(
        &self,
        op: &'static str,
        id: &str,
        tmp: &Path,
        dest: &Path,
    ) -> Result<()> {
        let linked = fs::hard_link(tmp, dest).await;
        let _ = fs::remove_file(tmp).await;
        match linked {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(Error::new(
                PROVIDER,
                op,
                ErrorKind::AlreadyExists {
                    resource: id.to_string(),
                },
            )),
            Err(e) => Err(io_err(op, dest, &e)),
        }
    }

    /// Links the written data into place. A data file already there without a sidecar is
    /// either what a crashed put left (taken over once older than [`ORPHAN_AFTER`]) or another
    /// put of the same id between its two links (a conflict): it is never removed while it may
    /// still be in use.
    async fn place_data(
        &self,
        op: &'static str,
        id: &str,
        tmp: &Path,
        data_path: &Path,
    ) -> Result<()> {
        match fs::hard_link(tmp, data_path).await {
            Ok(()) => {
                let _ = fs::remove_file(tmp).await;
                return Ok(());
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                let _ = fs::remove_file(tmp).await;
                return Err(io_err(op, data_path, &e));
            }
        }
        let refuse = |kind| async move {
            let _ = fs::remove_file(tmp).await;
            Err(Error::new(PROVIDER, op, kind))
        };
        if fs::try_exists(self.sidecar_path(id)).await.unwrap_or(false) {
            return refuse(ErrorKind::AlreadyExists {
                resource: id.to_string(),
            })
            .await;
        }
        let age = fs::metadata(data_path)
            .await
            .and_then(|m| m.modified())
            .map(|t| self.clock.now() - chrono::DateTime::<chrono::Utc>::from(t));
        let stale = age.is_ok_and(|a| a.to_std().is_ok_and(|a| a > ORPHAN_AFTER));
        if !stale {
            return refuse(ErrorKind::Conflict {
                detail: format!("another write of {id} is in progress"),
            })
            .await;
        }
        tracing::warn!(store = %self.name, id, "replacing the data of a write that was interrupted");
        let _ = fs::remove_file(data_path).await;
        self.link_into_place(op, id, tmp, data_path).await
    }

    pub(super) async fn sync_dir(&self, op: &'static str) -> Result<()> {
        if self.fsync {
            let dir = fs::File::open(&self.root)
                .await
                .map_err(|e| io_err(op, &self.root, &e))?;
            dir.sync_all()
                .await
                .map_err(|e| io_err(op, &self.root, &e))?;
        }
        Ok(())
    }

    pub(super) async fn put_inner<R: AsyncRead + Unpin>(
        &self,
        op: &'static str,
        id: &str,
        source: Option<String>,
        labels: BTreeMap<String, String>,
        data: R,
    ) -> Result<BackupInfo> {
        validate_id(op, id)?;
        if fs::try_exists(self.sidecar_path(id)).await.unwrap_or(false) {
            return Err(Error::new(
                PROVIDER,
                op,
                ErrorKind::AlreadyExists {
                    resource: id.to_string(),
                },
            ));
        }
        // Before writing: what killed writes left must not add up to a full disk.
        self.sweep_temp_files(op).await?;
        let (tmp, mut sidecar) = self.write_temp(op, id, data).await?;
        sidecar.source = source;
        sidecar.labels = labels;
        let data_path = self.data_path(id);
        self.place_data(op, id, &tmp, &data_path).await?;
        let committed = async {
            let sidecar_tmp = self.temp_path(id);
            let mut f = fs::File::create(&sidecar_tmp)
                .await
                .map_err(|e| io_err(op, &sidecar_tmp, &e))?;
            let write = async {
                f.write_all(&sidecar.encode()).await?;
                if self.fsync {
                    f.sync_all().await?;
                }
                Ok::<_, std::io::Error>(())
            };
            if let Err(e) = write.await {
                let _ = fs::remove_file(&sidecar_tmp).await;
                return Err(io_err(op, &sidecar_tmp, &e));
            }
            self.link_into_place(op, id, &sidecar_tmp, &self.sidecar_path(id))
                .await?;
            self.sync_dir(op).await
        }
        .await;
        if let Err(e) = committed {
            let _ = fs::remove_file(&data_path).await;
            return Err(e);
        }
        tracing::info!(store = %self.name, id, bytes = sidecar.size_bytes, checksum = %sidecar.checksum, "backup written");
        Ok(sidecar.into_info(&self.root))
    }
}
