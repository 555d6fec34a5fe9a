//! [`BackupStore`]: create, list, verify, restore and delete backups, and stream backup
//! artifacts in and out without buffering them.

use std::collections::BTreeMap;
use std::pin::Pin;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncRead;

use crate::Result;
use crate::checksum::Checksum;

/// A stream of artifact bytes. Readers returned by [`BackupStore::get_artifact`] verify the
/// recorded checksum and fail the final read with [`crate::ErrorKind::ChecksumMismatch`] when
/// the bytes do not match, so a consumer that reads to the end never takes corrupt data as good.
pub type ArtifactReader = Pin<Box<dyn AsyncRead + Send>>;

/// Where a backup is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackupState {
    /// Being taken.
    Pending,
    /// Complete: safe to restore from.
    Complete,
    /// The provider reports it failed.
    Failed,
}

/// Whether a backup was read back and checked, as the store records it (so that it survives a
/// restart): restores and retention go by it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Verification {
    /// Not checked (yet), or taken by a store that cannot record checks. Counted for retention
    /// like before verification states existed, but never chosen as "the latest good backup".
    #[default]
    Unverified,
    /// Read back in full through its checksum (and restore-tested, where configured).
    Verified {
        /// When the check passed.
        at: DateTime<Utc>,
    },
    /// A check failed: never chosen automatically, never counted for retention; kept for
    /// inspection until pruning removes it.
    Failed {
        /// When the check failed.
        at: DateTime<Utc>,
        /// Why (at most [`Verification::REASON_LIMIT`] bytes).
        reason: String,
    },
}

impl Verification {
    /// The longest reason kept: stores keep it in small metadata fields.
    pub const REASON_LIMIT: usize = 256;

    /// A failed check, its reason cut to [`Verification::REASON_LIMIT`] bytes.
    pub fn failed(at: DateTime<Utc>, reason: impl Into<String>) -> Self {
        let mut reason = reason.into();
        if reason.len() > Self::REASON_LIMIT {
            let mut cut = Self::REASON_LIMIT;
            while !reason.is_char_boundary(cut) {
                cut -= 1;
            }
            reason.truncate(cut);
        }
        Self::Failed { at, reason }
    }

    /// Whether a check passed.
    pub fn is_verified(&self) -> bool {
        matches!(self, Self::Verified { .. })
    }

    /// Whether a check failed.
    pub fn is_failed(&self) -> bool {
        matches!(self, Self::Failed { .. })
    }
}

/// What is known about one backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupInfo {
    /// The store's id for it (a file name, an object name, a backup-run id).
    pub id: String,
    /// When it was taken.
    pub created_at: DateTime<Utc>,
    /// Its state.
    pub state: BackupState,
    /// Its size, where the store knows it.
    pub size_bytes: Option<u64>,
    /// Its recorded checksum, where the store keeps one.
    pub checksum: Option<Checksum>,
    /// What was backed up (a path, an object, an instance), where known: the target of
    /// [`RestoreTarget::Original`].
    pub source: Option<String>,
    /// Where it lives, for humans (`/var/backups/db-…`, `gs://bucket/backup/…`).
    pub location: String,
    /// Labels given when it was made.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// What its last check found.
    #[serde(default)]
    pub verification: Verification,
}

impl BackupInfo {
    /// Whether a restore may pick it without being told its id: complete and verified.
    pub fn is_restorable_unnamed(&self) -> bool {
        self.state == BackupState::Complete && self.verification.is_verified()
    }
}

/// The newest complete, *verified* backup matching `filter` (its limit aside): the one to
/// restore when none is named. Unverified and failed backups are restored only by id.
/// `NotFound` when there is none.
pub async fn latest_verified(store: &dyn BackupStore, filter: &BackupFilter) -> Result<BackupInfo> {
    let all = store
        .list(&BackupFilter {
            limit: None,
            ..filter.clone()
        })
        .await?;
    all.into_iter()
        .find(BackupInfo::is_restorable_unnamed)
        .ok_or_else(|| {
            crate::Error::new(
                store.name().to_string(),
                "latest_verified",
                crate::ErrorKind::NotFound {
                    resource: format!(
                        "a verified backup{}",
                        filter
                            .prefix
                            .as_deref()
                            .map(|p| format!(" starting with {p:?}"))
                            .unwrap_or_default()
                    ),
                },
            )
        })
}

/// Which backups [`BackupStore::list`] returns.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupFilter {
    /// Only ids starting with this.
    pub prefix: Option<String>,
    /// Only backups created at or after this.
    pub created_after: Option<DateTime<Utc>>,
    /// Only backups created before this.
    pub created_before: Option<DateTime<Utc>>,
    /// At most this many (the newest).
    pub limit: Option<usize>,
}

impl BackupFilter {
    /// Whether `info` passes the prefix and time conditions (not the limit).
    pub fn matches(&self, info: &BackupInfo) -> bool {
        self.prefix
            .as_deref()
            .is_none_or(|p| info.id.starts_with(p))
            && self.created_after.is_none_or(|t| info.created_at >= t)
            && self.created_before.is_none_or(|t| info.created_at < t)
    }

    /// Filters, sorts newest first (ties by id) and applies the limit: the shared tail of every
    /// `list` implementation.
    pub fn apply(&self, mut all: Vec<BackupInfo>) -> Vec<BackupInfo> {
        all.retain(|b| self.matches(b));
        all.sort_by(|a, b| {
            b.created_at
                .cmp(&a.created_at)
                .then_with(|| b.id.cmp(&a.id))
        });
        if let Some(n) = self.limit {
            all.truncate(n);
        }
        all
    }
}

/// What [`BackupStore::create`] backs up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateBackup {
    /// The thing to back up, in the store's terms: a file path, an object name, a database
    /// instance. Stores that back up one fixed thing may ignore it.
    pub source: String,
    /// The id's stem; the store appends a timestamp (`NAME-YYYYMMDD-HHMMSS`). Defaults to the
    /// source's last path segment.
    pub name: Option<String>,
    /// Labels to record.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// What [`BackupStore::put_artifact`] stores.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PutArtifact {
    /// The artifact's id; must not exist yet.
    pub id: String,
    /// What the bytes are a backup of, if anything (recorded as [`BackupInfo::source`]).
    pub source: Option<String>,
    /// Labels to record.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// Where [`BackupStore::restore`] puts a backup back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RestoreTarget {
    /// Back where it came from ([`BackupInfo::source`]).
    Original,
    /// Somewhere else, in the store's terms (a path, an object name, another instance).
    Other(String),
}

/// The result of a restore.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreOutcome {
    /// The backup restored.
    pub backup_id: String,
    /// Where it was restored to.
    pub target: String,
    /// Bytes written, where known.
    pub bytes: Option<u64>,
}

/// What a backup store can do; runbooks and the testkit choose by these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupCapabilities {
    /// [`BackupStore::create`] from a source.
    pub create: bool,
    /// [`BackupStore::put_artifact`] and [`BackupStore::get_artifact`].
    pub artifacts: bool,
    /// [`BackupStore::restore`].
    pub restore: bool,
    /// [`BackupStore::delete`].
    pub delete: bool,
    /// [`BackupStore::record_verification`]: verification states survive a restart.
    #[serde(default)]
    pub verification: bool,
}

/// A place backups are taken into and restored from.
///
/// Artifacts are streamed: implementations never hold a whole artifact in memory, record a
/// checksum while writing, and verify it while reading. A write that fails or is interrupted
/// never leaves something that lists as a complete backup.
///
/// Each method's `# Behavior` names the cases of the testkit's backup suite
/// (`testkit::backup_store_cases`) that check it.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait BackupStore: Send + Sync {
    /// The store's name, for reports.
    fn name(&self) -> &str;
    /// What this store supports.
    fn capabilities(&self) -> BackupCapabilities;
    /// How [`BackupStore::create`] stores what it takes, named in dry-run plans and reports
    /// (`zstd-3 (pg_dump -Fc -Z0, then zstd)`, `raw`, `server-side`); `None` (the default)
    /// when the store does not say.
    fn created_as(&self) -> Option<String> {
        None
    }
    /// Takes a backup of `request.source`.
    ///
    /// # Behavior
    /// Returns a complete backup that then lists; with `restore`, it restores whole
    /// (`created_backups_list_and_restore`).
    async fn create(&self, request: &CreateBackup) -> Result<BackupInfo>;
    /// Streams `data` into a new artifact, recording its size and checksum.
    ///
    /// # Behavior
    /// - Records the id, size, CRC32C and labels it returns, and `describe` returns the same
    ///   (`artifacts_stream_back_byte_for_byte`).
    /// - An existing id is refused (`AlreadyExists` or `Conflict`) and keeps its bytes
    ///   (`an_existing_id_is_never_overwritten`); an empty id is `InvalidInput`
    ///   (`an_empty_id_is_invalid`).
    /// - A source that fails mid-stream fails the put and leaves nothing that lists
    ///   (`a_failed_put_never_lists`).
    /// - `Unsupported` unless [`BackupCapabilities::artifacts`] (the default body;
    ///   `undeclared_capabilities_are_unsupported`).
    async fn put_artifact(
        &self,
        request: &PutArtifact,
        data: ArtifactReader,
    ) -> Result<BackupInfo> {
        let _ = (request, data);
        Err(super::common::unsupported_by(
            self.name(),
            "put_artifact",
            "storing artifacts",
        ))
    }
    /// Streams an artifact out, verifying its checksum as it is read.
    ///
    /// # Behavior
    /// Returns the bytes put, byte for byte (`artifacts_stream_back_byte_for_byte`); a missing
    /// id is `NotFound` (`missing_backups_are_not_found`). `Unsupported` unless
    /// [`BackupCapabilities::artifacts`] (the default body).
    async fn get_artifact(&self, id: &str) -> Result<ArtifactReader> {
        let _ = id;
        Err(super::common::unsupported_by(
            self.name(),
            "get_artifact",
            "reading artifacts",
        ))
    }
    /// Complete backups matching `filter`, newest first.
    ///
    /// # Behavior
    /// Prefix, `created_after` and `limit` filter; newest first
    /// (`listing_filters_orders_and_limits`); never a failed put (`a_failed_put_never_lists`)
    /// or a deleted backup (`deleted_backups_are_gone`). What it lists is what
    /// [`crate::adapters::BackupFreshness`] judges: the newest verified backup (the newest
    /// complete one, where the store records no verification), its age against the bound, and
    /// a newer backup that failed its check (`freshness_follows_the_newest_verified_backup`,
    /// `freshness_follows_the_newest_complete_backup`).
    async fn list(&self, filter: &BackupFilter) -> Result<Vec<BackupInfo>>;
    /// One backup.
    ///
    /// # Behavior
    /// A missing id is `NotFound` (`missing_backups_are_not_found`); the verification mark is
    /// shown apart from the labels (`verification_marks_are_kept_apart_from_labels`).
    async fn describe(&self, id: &str) -> Result<BackupInfo>;
    /// Restores a backup, verifying it on the way; the target is only replaced once the whole
    /// backup has been read and verified.
    async fn restore(&self, id: &str, target: &RestoreTarget) -> Result<RestoreOutcome>;
    /// Deletes a backup.
    ///
    /// # Behavior
    /// Afterwards it neither describes, reads nor lists (`deleted_backups_are_gone`); a missing
    /// id is `NotFound`, or `Unsupported` for a store that cannot delete
    /// (`missing_backups_are_not_found`).
    async fn delete(&self, id: &str) -> Result<()>;
    /// Records what a check of backup `id` found, where [`BackupInfo::verification`] will show
    /// it from then on (across restarts).
    ///
    /// # Behavior
    /// `describe` and `list` show the mark, never among the labels, marking changes no byte,
    /// and a missing id is `NotFound` (`verification_marks_are_kept_apart_from_labels`).
    /// Stores without [`BackupCapabilities::verification`] return `Unsupported` (the default
    /// body; `undeclared_capabilities_are_unsupported`).
    async fn record_verification(&self, id: &str, verification: &Verification) -> Result<()> {
        let _ = (id, verification);
        Err(crate::Error::new(
            self.name().to_string(),
            "record_verification",
            crate::ErrorKind::Unsupported {
                capability: "recording verification states".into(),
            },
        ))
    }
}

/// The id of a backup of `stem` taken `at`, the one format every store uses:
/// `{stem}-{YYYYMMDD-HHMMSS}` and `.{extension}` when there is one. Ids sort by time within a
/// stem, and the time reads at a glance in a bucket listing.
///
/// ```
/// use ops_core::contracts::backup_id;
/// let at = "2026-11-23T09:00:00Z".parse().unwrap();
/// assert_eq!(backup_id("app", Some("db"), at), "app-20261123-090000.db");
/// assert_eq!(backup_id("orders", None, at), "orders-20261123-090000");
/// ```
pub fn backup_id(stem: &str, extension: Option<&str>, at: DateTime<Utc>) -> String {
    let stamp = at.format("%Y%m%d-%H%M%S");
    match extension {
        Some(ext) => format!("{stem}-{stamp}.{ext}"),
        None => format!("{stem}-{stamp}"),
    }
}

/// A provider's deeper check of a backup (restore into a scratch database and compare row
/// counts; `PRAGMA integrity_check` on a SQLite copy).
#[async_trait]
pub trait RestoreTest: Send + Sync {
    /// Its name, for reports.
    fn name(&self) -> &str;
    /// Checks `backup`; `Ok` says what was found, an error says why it is not usable.
    async fn check(&self, store: &dyn BackupStore, backup: &BackupInfo) -> Result<String>;
}
