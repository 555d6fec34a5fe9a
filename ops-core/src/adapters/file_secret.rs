//! [`FileSecretStore`]: secrets as files in a directory (read-only), the way Docker and
//! Kubernetes mount them (`/run/secrets/NAME`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::fs;

use super::local_fs::readable_dir;
use super::read_only_secrets::{CAPABILITIES, CURRENT, check_version, current_version};
use crate::contracts::{
    SecretCapabilities, SecretInfo, SecretRead, SecretStore, SecretValue, SecretVersion, VersionRef,
};
use crate::{Error, ErrorKind, Result};

const PROVIDER: &str = "file-secrets";
/// Secret files larger than this are refused (a secret is not a data file).
pub const MAX_SECRET_FILE: u64 = 1024 * 1024;

/// Secrets as files: the file `DIR/NAME` is the secret `NAME`, read on every call (mounted
/// secrets are rotated in place). One version, `current`, created at the file's modification
/// time; writes are `Unsupported`. Names starting with `.` (Kubernetes' `..data`) are skipped.
#[derive(Debug, Clone)]
pub struct FileSecretStore {
    dir: PathBuf,
    name: String,
}

impl FileSecretStore {
    /// A store over `dir`, which must be a readable directory.
    pub async fn open(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        readable_dir(PROVIDER, "dir", &dir).await?;
        Ok(Self {
            name: format!("files:{}", dir.display()),
            dir,
        })
    }

    fn path(&self, op: &'static str, secret: &str) -> Result<PathBuf> {
        let ok = !secret.is_empty()
            && secret.len() <= 255
            && !secret.starts_with('.')
            && secret
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if !ok {
            return Err(Error::invalid_input(
                PROVIDER,
                op,
                "secret",
                "must be 1-255 of letters, digits, '.', '_', '-', not starting with '.'",
            ));
        }
        Ok(self.dir.join(secret))
    }

    async fn modified(
        &self,
        op: &'static str,
        secret: &str,
    ) -> Result<(u64, Option<DateTime<Utc>>)> {
        let path = self.path(op, secret)?;
        let meta = fs::metadata(&path).await.map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::new(
                PROVIDER,
                op,
                ErrorKind::NotFound {
                    resource: secret.to_string(),
                },
            ),
            _ => io_err(op, &path, &e),
        })?;
        if !meta.is_file() {
            return Err(Error::new(
                PROVIDER,
                op,
                ErrorKind::NotFound {
                    resource: secret.to_string(),
                },
            ));
        }
        Ok((meta.len(), meta.modified().ok().map(DateTime::<Utc>::from)))
    }
}

#[async_trait]
impl SecretStore for FileSecretStore {
    fn name(&self) -> &str {
        &self.name
    }

    fn capabilities(&self) -> SecretCapabilities {
        CAPABILITIES
    }

    async fn list_secrets(&self) -> Result<Vec<SecretInfo>> {
        let op = "list_secrets";
        let mut dir = fs::read_dir(&self.dir)
            .await
            .map_err(|e| io_err(op, &self.dir, &e))?;
        let mut out = Vec::new();
        while let Some(entry) = dir
            .next_entry()
            .await
            .map_err(|e| io_err(op, &self.dir, &e))?
        {
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            if name.starts_with('.') {
                continue;
            }
            // Follows symlinks, as mounted secrets are links into `..data`.
            if let Ok((_, modified)) = self.modified(op, &name).await {
                out.push(SecretInfo {
                    name,
                    created_at: modified,
                    updated_at: modified,
                    labels: BTreeMap::new(),
                });
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    async fn read(&self, secret: &str, version: &VersionRef) -> Result<SecretRead> {
        let op = "read";
        let (len, _) = self.modified(op, secret).await?;
        check_version(PROVIDER, secret, version)?;
        if len > MAX_SECRET_FILE {
            return Err(Error::invalid_input(
                PROVIDER,
                op,
                "secret",
                format!("{secret} is larger than {MAX_SECRET_FILE} bytes"),
            ));
        }
        let path = self.path(op, secret)?;
        let bytes = fs::read(&path).await.map_err(|e| io_err(op, &path, &e))?;
        Ok(SecretRead {
            version: CURRENT.to_string(),
            value: SecretValue::from_bytes(bytes),
        })
    }

    async fn list_versions(&self, secret: &str) -> Result<Vec<SecretVersion>> {
        let (_, modified) = self.modified("list_versions", secret).await?;
        Ok(vec![current_version(secret, modified)])
    }
}

fn io_err(op: &'static str, path: &Path, e: &std::io::Error) -> Error {
    super::local_fs::io_err(PROVIDER, op, path, e)
}
