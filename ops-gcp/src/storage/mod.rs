//! Cloud Storage JSON API behind [`BackupStore`]: objects as backups.
//!
//! The seed runbook keeps its SQLite database as an object (`data/app.db`), backs it up by
//! copying it to `backup/app-YYYYMMDD-HHMMSS.db`, and restores by copying a backup back after
//! taking a `pre-restore-…` copy. With [`CloudStorage`]:
//!
//! | runbook step | call |
//! |---|---|
//! | `gsutil cp gs://b/data/app.db gs://b/backup/app-…db` | [`BackupStore::create`] (server-side rewrite) |
//! | upload a dump | [`BackupStore::put_artifact`] (streamed, resumable, CRC32C) |
//! | `gsutil cp gs://b/backup/… -` | [`BackupStore::get_artifact`] (verified, resumed) |
//! | `gsutil ls gs://b/backup/` | [`BackupStore::list`] |
//! | copy back, keeping a pre-restore copy | [`BackupStore::restore`] |
//! | `gsutil rm` | [`BackupStore::delete`] |
//!
//! Writes use generation preconditions: a new backup never replaces an object
//! (`ifGenerationMatch=0`), and a restore replaces the target only if it is still the
//! generation that was copied aside first, so it never clobbers a write it did not see.
//! Backup ids are object names below the store's prefix.
//!
//! The seed's `PRAGMA integrity_check` on a downloaded copy is
//! `ops_core::adapters::SqliteIntegrityCheck` (feature `sqlite`), a `RestoreTest` that
//! `BackupAndVerify` runs after each backup.

pub mod cleanup;
mod config;
mod download;
mod upload;
pub mod wire;

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::SecondsFormat;
use ops_core::codec::Codec;
use ops_core::contracts::{
    ArtifactReader, BackupCapabilities, BackupFilter, BackupInfo, BackupStore, CreateBackup,
    PutArtifact, RestoreOutcome, RestoreTarget, Verification,
};
use ops_core::http::SendOptions;
use ops_core::{Error, ErrorKind, Result};
use reqwest::Method;
use url::Url;

use crate::client::{GcpClient, collect_pages};
pub use config::{
    CHUNK_GRANULE, CloudStorageConfig, DEFAULT_CHUNK_SIZE, MAX_CHUNK_SIZE, check_chunk_size,
    format_chunk_size, parse_chunk_size,
};
use wire::{Object, ObjectPage, RewriteResponse, SOURCE_KEY};

/// The most objects one listing reads.
pub const LIST_CAP: usize = 100_000;

/// Backups as objects in one bucket, below one prefix.
///
/// ```
/// # fn f(client: ops_gcp::GcpClient) -> ops_core::Result<()> {
/// let store = ops_gcp::CloudStorage::new(client, "acme-backups", "backup/")?
///     .with_chunk_size(16 * 1024 * 1024)?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct CloudStorage {
    client: GcpClient,
    bucket: String,
    prefix: String,
    chunk_size: usize,
    name: String,
}

impl CloudStorage {
    /// Backups in `bucket` under `prefix` (such as `backup/`; may be empty), uploaded in
    /// chunks of 8 MiB ([`DEFAULT_CHUNK_SIZE`]).
    pub fn new(
        client: GcpClient,
        bucket: impl Into<String>,
        prefix: impl Into<String>,
    ) -> Result<Self> {
        Self::from_config(client, &CloudStorageConfig::new(bucket, prefix))
    }

    /// The store `config` describes.
    pub fn from_config(client: GcpClient, config: &CloudStorageConfig) -> Result<Self> {
        let (bucket, prefix) = (config.bucket.clone(), config.prefix.clone());
        let ok = (3..=222).contains(&bucket.len())
            && bucket
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c));
        if !ok {
            return Err(Error::invalid_input(
                "gcp",
                "cloud_storage",
                "bucket",
                "not a bucket name",
            ));
        }
        // Endpoints set after the client's construction are checked here, before any call.
        client.config().endpoints.validate()?;
        Ok(Self {
            name: format!("gs://{bucket}/{prefix}"),
            client,
            bucket,
            prefix,
            chunk_size: check_chunk_size(config.chunk_size)?,
        })
    }

    /// Resumable chunks of `size` bytes: a positive multiple of 256 KiB, at most 1 GiB. Memory
    /// use is about twice this (see [`CloudStorageConfig`] for when to raise it).
    pub fn with_chunk_size(mut self, size: usize) -> Result<Self> {
        self.chunk_size = check_chunk_size(size)?;
        Ok(self)
    }

    fn options(&self, resource: &str) -> SendOptions {
        SendOptions {
            resource: Some(format!("gs://{}/{resource}", self.bucket)),
            ..SendOptions::default()
        }
    }

    fn api_root(&self) -> Result<Url> {
        self.client
            .url(&self.client.config().endpoints.storage, "storage/v1/")
    }

    fn upload_url(&self) -> Result<Url> {
        let base = &self.client.config().endpoints.storage;
        self.client
            .url(base, &format!("upload/storage/v1/b/{}/o", self.bucket))
    }

    /// `…/b/BUCKET/o/NAME`, then `rest` (path segments such as `rewriteTo/b/…/o/TO`), every
    /// object name one segment escaped as Google's client libraries escape it: everything but
    /// `A-Za-z0-9-._~`.
    fn object_url(&self, name: &str) -> Result<Url> {
        self.client.url(
            &self.api_root()?,
            &format!("b/{}/o/{}", self.bucket, escape_object_name(name)),
        )
    }

    fn object_name(&self, id: &str) -> Result<String> {
        let bad = id.is_empty()
            || id.starts_with('/')
            || id.contains("..")
            || id.chars().any(|c| c.is_control())
            || id.len() > 900;
        if bad {
            return Err(Error::invalid_input(
                "gcp",
                "cloud_storage",
                "id",
                "must be a non-empty relative name without '..' or control characters",
            ));
        }
        Ok(format!("{}{id}", self.prefix))
    }

    /// Every object of the bucket whose name starts with `prefix`, up to [`LIST_CAP`], and
    /// whether the cap cut the listing short.
    async fn list_objects(&self, prefix: &str) -> Result<(Vec<Object>, bool)> {
        let objects = collect_pages(LIST_CAP, |token| {
            let prefix = prefix.to_string();
            async move {
                let mut url = self
                    .client
                    .url(&self.api_root()?, &format!("b/{}/o", self.bucket))?;
                url.query_pairs_mut()
                    .append_pair("prefix", &prefix)
                    .append_pair("maxResults", "1000");
                if let Some(t) = &token {
                    url.query_pairs_mut().append_pair("pageToken", t);
                }
                let page: ObjectPage = self.client.get("list_objects", url, &prefix).await?;
                Ok((page.items, page.next_page_token))
            }
        })
        .await?;
        let truncated = objects.len() >= LIST_CAP;
        Ok((objects, truncated))
    }

    /// The object `name` (any name in the bucket, not only backups).
    pub async fn object(&self, name: &str) -> Result<Object> {
        self.client
            .get("get_object", self.object_url(name)?, name)
            .await
    }

    async fn delete_object(&self, name: &str, generation: Option<&str>) -> Result<()> {
        let mut url = self.object_url(name)?;
        if let Some(g) = generation {
            url.query_pairs_mut().append_pair("ifGenerationMatch", g);
        }
        let req = self
            .client
            .authorize(self.client.http().request(Method::DELETE, url))
            .await?;
        self.client
            .http()
            .send_bytes("delete_object", req, &self.options(name))
            .await?;
        Ok(())
    }

    /// Server-side copy of `from` (at generation `from_generation`) to `to`, looping over
    /// rewrite tokens (large objects take several calls). `if_generation` is the precondition on
    /// `to` (`"0"`: must not exist); `metadata`, if given, replaces the copied metadata.
    pub async fn rewrite(
        &self,
        from: &str,
        from_generation: &str,
        to: &str,
        if_generation: &str,
        metadata: Option<&BTreeMap<String, String>>,
    ) -> Result<Object> {
        let body = match metadata {
            Some(m) => serde_json::json!({ "metadata": m }),
            None => serde_json::json!({}),
        };
        let mut token: Option<String> = None;
        for _ in 0..10_000 {
            let mut url = self.client.url(
                &self.api_root()?,
                &format!(
                    "b/{b}/o/{}/rewriteTo/b/{b}/o/{}",
                    escape_object_name(from),
                    escape_object_name(to),
                    b = self.bucket
                ),
            )?;
            url.query_pairs_mut()
                .append_pair("ifGenerationMatch", if_generation)
                .append_pair("ifSourceGenerationMatch", from_generation);
            if let Some(t) = &token {
                url.query_pairs_mut().append_pair("rewriteToken", t);
            }
            // With its generation precondition the call cannot apply twice: safe to retry.
            let options = SendOptions {
                idempotency: Some(ops_core::retry::Idempotency::Idempotent),
                ..self.options(from)
            };
            let resp: RewriteResponse = self
                .client
                .call("rewrite_object", Method::POST, url, Some(&body), &options)
                .await?;
            if resp.done {
                return resp.resource.ok_or_else(|| {
                    Error::new(
                        "gcp",
                        "rewrite_object",
                        ErrorKind::Decode {
                            detail: "a finished rewrite without its object".into(),
                        },
                    )
                });
            }
            token = Some(resp.rewrite_token.ok_or_else(|| {
                Error::new(
                    "gcp",
                    "rewrite_object",
                    ErrorKind::Decode {
                        detail: "an unfinished rewrite without a token".into(),
                    },
                )
            })?);
        }
        Err(Error::new(
            "gcp",
            "rewrite_object",
            ErrorKind::Timeout {
                after: std::time::Duration::ZERO,
            },
        ))
    }

    fn metadata(
        source: Option<&str>,
        labels: &BTreeMap<String, String>,
    ) -> BTreeMap<String, String> {
        let mut m = labels.clone();
        if let Some(s) = source {
            m.insert(SOURCE_KEY.into(), s.to_string());
        }
        m
    }

    fn info(&self, object: &Object) -> BackupInfo {
        object.info(&self.prefix, &format!("gs://{}/", self.bucket))
    }
}

fn fmt_checksum(o: &Object) -> String {
    o.checksum().map_or_else(
        || format!("no checksum for {}", o.name),
        |c| format!("{c} ({})", o.name),
    )
}

/// `data/app.db` at 2026-11-23 09:00:00 → `app-20261123-090000.db`.
fn backup_id(source: &str, at: chrono::DateTime<chrono::Utc>) -> String {
    let file = source.rsplit('/').next().unwrap_or(source);
    match file.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => {
            ops_core::contracts::backup_id(stem, Some(ext), at)
        }
        _ => ops_core::contracts::backup_id(file, None, at),
    }
}

#[async_trait]
impl BackupStore for CloudStorage {
    fn name(&self) -> &str {
        &self.name
    }

    /// A server-side copy of the object, as it is.
    fn created_as(&self) -> Option<String> {
        Some("raw (a server-side copy of the object)".into())
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

    /// Copies the object `request.source` (a name in this bucket) to a new backup.
    async fn create(&self, request: &CreateBackup) -> Result<BackupInfo> {
        let now = self.client.clock().now();
        let id = match &request.name {
            Some(n) => n.clone(),
            None => backup_id(&request.source, now),
        };
        let to = self.object_name(&id)?;
        let source = self.object(&request.source).await?;
        let mut metadata = Self::metadata(Some(&request.source), &request.labels);
        if let (Some(crc), Some(size)) = (source.checksum(), source.size()) {
            metadata = wire::record(&metadata, crc, size);
        }
        let copy = self
            .rewrite(
                &request.source,
                &source.generation,
                &to,
                "0",
                Some(&metadata),
            )
            .await?;
        if copy.checksum().is_none() || copy.checksum() != source.checksum() {
            let _ = self.delete_object(&copy.name, Some(&copy.generation)).await;
            return Err(Error::new(
                "gcp",
                "create_backup",
                ErrorKind::ChecksumMismatch {
                    expected: fmt_checksum(&source),
                    actual: fmt_checksum(&copy),
                },
            ));
        }
        tracing::info!(source = %request.source, backup = %id, at = %now.to_rfc3339_opts(SecondsFormat::Secs, true), "backed up object");
        Ok(self.info(&copy))
    }

    async fn put_artifact(
        &self,
        request: &PutArtifact,
        data: ArtifactReader,
    ) -> Result<BackupInfo> {
        let name = self.object_name(&request.id)?;
        let metadata = Self::metadata(request.source.as_deref(), &request.labels);
        let object = self
            .upload(&name, &metadata, data)
            .await
            .map_err(|e| match e.kind() {
                ErrorKind::Conflict { .. } => Error::new(
                    "gcp",
                    "put_artifact",
                    ErrorKind::AlreadyExists {
                        resource: format!("gs://{}/{name}", self.bucket),
                    },
                ),
                _ => e,
            })?;
        Ok(self.info(&object))
    }

    async fn get_artifact(&self, id: &str) -> Result<ArtifactReader> {
        self.download(&self.object_name(id)?).await
    }

    async fn list(&self, filter: &BackupFilter) -> Result<Vec<BackupInfo>> {
        let prefix = format!("{}{}", self.prefix, filter.prefix.as_deref().unwrap_or(""));
        let (objects, _) = self.list_objects(&prefix).await?;
        Ok(filter.apply(objects.iter().map(|o| self.info(o)).collect()))
    }

    async fn describe(&self, id: &str) -> Result<BackupInfo> {
        Ok(self.info(&self.object(&self.object_name(id)?).await?))
    }

    /// Copies the backup over its source (or `Other(name)`), after copying the current target
    /// to `pre-restore-NAME-YYYYMMDD-HHMMSS` under the prefix. The final copy is conditioned on
    /// the target's generation that was copied aside.
    async fn restore(&self, id: &str, target: &RestoreTarget) -> Result<RestoreOutcome> {
        let backup = self.object(&self.object_name(id)?).await?;
        let target_name = match target {
            RestoreTarget::Other(name) => name.clone(),
            RestoreTarget::Original => {
                backup.metadata.get(SOURCE_KEY).cloned().ok_or_else(|| {
                    Error::invalid_input(
                        "gcp",
                        "restore",
                        "target",
                        "the backup records no source; name a target",
                    )
                })?
            }
        };
        let current = match self.object(&target_name).await {
            Ok(o) => Some(o),
            Err(e) if matches!(e.kind(), ErrorKind::NotFound { .. }) => None,
            Err(e) => return Err(e),
        };
        let precondition = match &current {
            Some(cur) => {
                let aside = self.object_name(&format!(
                    "pre-restore-{}",
                    backup_id(&target_name, self.client.clock().now())
                ))?;
                self.rewrite(&target_name, &cur.generation, &aside, "0", None)
                    .await?;
                tracing::info!(target = %target_name, copy = %aside, "kept a pre-restore copy");
                cur.generation.clone()
            }
            None => "0".to_string(),
        };
        // The target keeps its own metadata, not the backup's.
        let mut keep = current
            .as_ref()
            .map(|c| c.metadata.clone())
            .unwrap_or_default();
        for key in [
            wire::RECORDED_CRC32C_KEY,
            wire::RECORDED_SIZE_KEY,
            wire::UPLOAD_ID_KEY,
        ] {
            keep.remove(key);
        }
        // A compressed artifact is decompressed into a scratch object first (checked on the
        // way: zstd's checksum and the recorded length), which is then copied over the target
        // under the same guard as a raw one.
        let codec = Codec::from_labels(&self.info(&backup).labels)?;
        let scratch = match codec {
            Codec::Raw => None,
            Codec::Zstd { .. } => {
                let name = self.object_name(&format!(".restore-{:016x}", fastrand::u64(..)))?;
                let plain = ops_core::codec::decode(self.get_artifact(id).await?, codec, id).0;
                Some(self.upload(&name, &BTreeMap::new(), plain).await?)
            }
        };
        let source = scratch.as_ref().unwrap_or(&backup);
        let restored = self
            .rewrite(&source.name, &source.generation, &target_name, &precondition, Some(&keep))
            .await
            .map_err(|e| match e.kind() {
                ErrorKind::Conflict { .. } => Error::new("gcp", "restore", ErrorKind::Conflict {
                    detail: format!("{target_name} changed after the pre-restore copy; nothing was overwritten"),
                }),
                _ => e,
            });
        if let Some(s) = &scratch {
            self.discard(s).await;
        }
        let restored = restored?;
        if restored.checksum().is_none() || restored.checksum() != source.checksum() {
            return Err(Error::new(
                "gcp",
                "restore",
                ErrorKind::ChecksumMismatch {
                    expected: fmt_checksum(source),
                    actual: fmt_checksum(&restored),
                },
            ));
        }
        Ok(RestoreOutcome {
            backup_id: id.to_string(),
            target: format!("gs://{}/{target_name}", self.bucket),
            bytes: restored.size(),
        })
    }

    async fn delete(&self, id: &str) -> Result<()> {
        self.delete_object(&self.object_name(id)?, None).await
    }

    /// Patches the object's custom metadata (`ops-verification`, `ops-verified-at`,
    /// `ops-verification-reason`), conditioned on its generation: a mark is never put on other
    /// bytes than the ones checked. Setting metadata to the same values twice is harmless, so
    /// the call retries.
    async fn record_verification(&self, id: &str, verification: &Verification) -> Result<()> {
        let object = self.object(&self.object_name(id)?).await?;
        self.patch_metadata(&object, &wire::verification_metadata(verification))
            .await?;
        Ok(())
    }
}

impl CloudStorage {
    /// Merges `metadata` into `object`'s custom metadata (a `null` value removes a key), only
    /// while it is still the same generation and metageneration: a record is never put on
    /// other bytes than the ones checked. Setting the same values twice is harmless, so the
    /// call retries.
    async fn patch_metadata(
        &self,
        object: &Object,
        metadata: &impl serde::Serialize,
    ) -> Result<Object> {
        let mut url = self.object_url(&object.name)?;
        url.query_pairs_mut()
            .append_pair("ifGenerationMatch", &object.generation);
        if let Some(m) = &object.metageneration {
            url.query_pairs_mut()
                .append_pair("ifMetagenerationMatch", m);
        }
        let body = serde_json::json!({ "metadata": metadata });
        let options = SendOptions {
            idempotency: Some(ops_core::retry::Idempotency::Idempotent),
            ..self.options(&object.name)
        };
        self.client
            .call("patch_object", Method::PATCH, url, Some(&body), &options)
            .await
    }
}

/// An object name as one URL path segment: every byte but `A-Za-z0-9-._~` percent-encoded,
/// as Google's client libraries do (`/` included, so a name is never split).
fn escape_object_name(name: &str) -> String {
    const KEEP: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(name, KEEP).to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn backup_ids_follow_the_seed_runbook() {
        let at = "2026-11-23T09:05:07Z".parse().unwrap();
        assert_eq!(
            super::backup_id("data/app.db", at),
            "app-20261123-090507.db"
        );
        assert_eq!(super::backup_id("dump", at), "dump-20261123-090507");
    }
}
