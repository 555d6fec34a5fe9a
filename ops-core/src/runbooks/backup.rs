//! Backup and verify: take a backup, prove it reads back (checksum, optional restore test),
//! then prune old backups by a grandfather-father-son policy.
//!
//! Replaces the seeds' `gsutil cp app.db gs://…/backup/app-$(date +%Y%m%d-%H%M%S).db`,
//! `pg_dump -Fc`, `gcloud sql backups create`, the "verify the backup" step, and the
//! retention clean-up.

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::io::AsyncReadExt;

use super::RunbookConfig;
use super::config::invalid;
use super::name_stem;
use crate::codec::{self, Codec};
pub use crate::contracts::RestoreTest;
use crate::contracts::{
    ArtifactReader, BackupFilter, BackupInfo, BackupState, BackupStore, CreateBackup, PutArtifact,
    Verification,
};
use crate::engine::{Action, Output, RunReport, Runbook, Step};
use crate::{Error, ErrorKind, Result};

/// How many backups to keep: the newest of each of the last N hours, days, ISO weeks and months.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Retention {
    /// Hours (default 24).
    pub hourly: u32,
    /// Days (default 7).
    pub daily: u32,
    /// ISO weeks (default 4).
    pub weekly: u32,
    /// Months (default 12).
    pub monthly: u32,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            hourly: 24,
            daily: 7,
            weekly: 4,
            monthly: 12,
        }
    }
}

impl Retention {
    /// The ids to keep among `backups`: for each of the newest `hourly` hours, `daily` days,
    /// `weekly` weeks and `monthly` months that have a backup, its newest *verified* complete
    /// backup, or its newest unverified one when none was verified; plus the newest verified
    /// backup of all, whatever its age, and `always`. A backup whose verification failed never
    /// counts: it fills no slot and is kept only as `always`.
    ///
    /// ```
    /// use ops_core::runbooks::Retention;
    /// let keep = Retention { hourly: 1, daily: 0, weekly: 0, monthly: 0 }.keep(&[], "new");
    /// assert!(keep.contains("new"));
    /// ```
    pub fn keep(&self, backups: &[BackupInfo], always: &str) -> BTreeSet<String> {
        let mut complete: Vec<&BackupInfo> = backups
            .iter()
            .filter(|b| b.state == BackupState::Complete && !b.verification.is_failed())
            .collect();
        complete.sort_by(|a, b| {
            b.created_at
                .cmp(&a.created_at)
                .then_with(|| b.id.cmp(&a.id))
        });
        let mut keep = BTreeSet::from([always.to_string()]);
        type Bucket = fn(&DateTime<Utc>) -> String;
        let buckets: [(u32, Bucket); 4] = [
            (self.hourly, |t| t.format("%Y%m%d%H").to_string()),
            (self.daily, |t| t.format("%Y%m%d").to_string()),
            (self.weekly, |t| t.format("%G-W%V").to_string()),
            (self.monthly, |t| t.format("%Y%m").to_string()),
        ];
        for (n, bucket) in buckets {
            // Slot → its chosen backup; newest first, so the first verified one seen in a slot
            // is its newest verified one.
            let mut chosen: HashMap<String, &BackupInfo> = HashMap::new();
            for b in &complete {
                let key = bucket(&b.created_at);
                match chosen.get(&key) {
                    None if chosen.len() < n as usize => {
                        chosen.insert(key, b);
                    }
                    Some(c) if !c.verification.is_verified() && b.verification.is_verified() => {
                        chosen.insert(key, b);
                    }
                    _ => {}
                }
            }
            keep.extend(chosen.values().map(|b| b.id.clone()));
        }
        if let Some(newest_verified) = complete.iter().find(|b| b.verification.is_verified()) {
            keep.insert(newest_verified.id.clone());
        }
        keep
    }
}

/// Settings of backup-and-verify.
///
/// ```toml
/// prune = true
/// prune_prefix = "app-"     # only backups whose id starts with this are pruned (default: the new id's stem + "-")
/// [retention]
/// hourly = 24
/// daily = 7
/// weekly = 4
/// monthly = 12
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BackupVerifyConfig {
    /// What to keep when pruning.
    pub retention: Retention,
    /// Prune after a verified backup (default true).
    pub prune: Option<bool>,
    /// Which backups pruning may touch.
    pub prune_prefix: Option<String>,
    /// How an artifact is stored (default zstd at level 3; an incompressible stream is stored
    /// raw whatever this says): `compression = { codec = "zstd", level = 1 }`, or
    /// `{ codec = "raw" }`. Backups the store takes itself ([`BackupSource::Create`]) are as
    /// the store makes them.
    pub compression: Codec,
}

impl BackupVerifyConfig {
    fn prunes(&self) -> bool {
        self.prune.unwrap_or(true)
    }
}

impl RunbookConfig for BackupVerifyConfig {
    fn validate(&self) -> Result<()> {
        let r = self.retention;
        if [r.hourly, r.daily, r.weekly, r.monthly]
            .iter()
            .all(|n| *n == 0)
        {
            return Err(invalid(
                "retention",
                "keeps nothing: at least one of hourly, daily, weekly, monthly must be above 0",
            ));
        }
        if let Some(prefix) = &self.prune_prefix {
            name_stem("prune_prefix", prefix)?;
        }
        self.compression.validate()
    }
}

/// Opens the stream of bytes to back up (a file, a `pg_dump` process).
pub type OpenArtifact =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<ArtifactReader>> + Send>> + Send + Sync>;

/// What to back up.
#[derive(Clone)]
pub enum BackupSource {
    /// The store backs up a source itself ([`BackupStore::create`]).
    Create(CreateBackup),
    /// A stream put into the store as `STEM-YYYYMMDD-HHMMSS[.EXT]`.
    Artifact {
        /// The id's stem.
        stem: String,
        /// The id's extension (`db`, `dump`), if any.
        extension: Option<String>,
        /// What the bytes are a backup of.
        source: Option<String>,
        /// Opens the stream.
        open: OpenArtifact,
    },
}

/// Takes, verifies and prunes backups.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> ops_core::Result<()> {
/// use std::sync::Arc;
/// use ops_core::adapters::FsBackupStore;
/// use ops_core::contracts::CreateBackup;
/// use ops_core::engine::{Mode, Runner};
/// use ops_core::runbooks::{BackupAndVerify, BackupSource, BackupVerifyConfig, Procedure};
/// let dir = tempfile::tempdir().unwrap();
/// std::fs::write(dir.path().join("app.db"), b"SQLite format 3\0").unwrap();
/// let store = Arc::new(FsBackupStore::open(dir.path().join("backups")).await?);
/// let source = BackupSource::Create(CreateBackup {
///     source: dir.path().join("app.db").display().to_string(), name: Some("app".into()), labels: Default::default() });
/// let ops_core::runbooks::Finished { report, summary: backup } = BackupAndVerify::new("app", store, source, BackupVerifyConfig::default())
///     .run(&Runner::new(), Mode::Execute).await?;
/// assert!(report.is_success() && backup.unwrap().id.starts_with("app-"));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct BackupAndVerify {
    config: BackupVerifyConfig,
    store: Arc<dyn BackupStore>,
    source: BackupSource,
    restore_test: Option<Arc<dyn RestoreTest>>,
    target: String,
}

/// What pruning will delete.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrunePlan {
    /// Backups kept.
    pub keep: Vec<String>,
    /// Backups to delete.
    pub delete: Vec<String>,
}

impl BackupAndVerify {
    /// Backs `source` up into `store`; `target` names what is backed up, for locks and reports.
    pub fn new(
        target: impl Into<String>,
        store: Arc<dyn BackupStore>,
        source: BackupSource,
        config: BackupVerifyConfig,
    ) -> Self {
        Self {
            config,
            store,
            source,
            restore_test: None,
            target: target.into(),
        }
    }

    /// Adds a restore test after the checksum check.
    pub fn restore_test(mut self, test: Arc<dyn RestoreTest>) -> Self {
        self.restore_test = Some(test);
        self
    }

    fn stem(&self) -> String {
        match &self.source {
            BackupSource::Create(c) => c.name.clone().unwrap_or_else(|| {
                c.source
                    .rsplit(['/', '\\'])
                    .next()
                    .unwrap_or(&c.source)
                    .to_string()
            }),
            BackupSource::Artifact { stem, .. } => stem.clone(),
        }
    }

    fn build(&self) -> Result<Runbook> {
        self.config.validate()?;
        let (store, source) = (self.store.clone(), self.source.clone());
        let compression = self.config.compression;
        let mut rb = Runbook::new("backup-and-verify", &self.target)
            .with_category(crate::engine::Category::Backup);
        let backup: Output<BackupInfo> = rb.add_step(Step::mutate("backup", move |ctx| {
            let store = store.clone();
            match source.clone() {
                BackupSource::Create(req) => {
                    // The plan says how the store will keep it (the store chooses).
                    let mut args = json!(req);
                    if let (Some(how), Some(map)) = (store.created_as(), args.as_object_mut()) {
                        map.insert("compression".into(), json!(how));
                    }
                    Ok(Action::new("BackupStore::create", args, async move {
                        store.create(&req).await
                    }))
                }
                BackupSource::Artifact {
                    stem,
                    extension,
                    source,
                    open,
                } => {
                    let id =
                        crate::contracts::backup_id(&stem, extension.as_deref(), ctx.clock().now());
                    let req = PutArtifact {
                        id,
                        source,
                        labels: Default::default(),
                    };
                    let args = json!({ "request": req, "compression": compression.describe() });
                    Ok(Action::new("BackupStore::put_artifact", args, async move {
                        let data = open().await?;
                        let encoded =
                            codec::encode(data, compression, codec::default_threads()).await?;
                        let mut req = req;
                        req.labels.extend(encoded.codec.labels());
                        store.put_artifact(&req, encoded.reader).await
                    }))
                }
            }
        }));
        let (store, taken) = (self.store.clone(), backup.clone());
        rb = rb.step(Step::read("verify-checksum", move |ctx| {
            let info = ctx.get(&taken)?;
            let (store, clock) = (store.clone(), ctx.clock().clone());
            Ok(Action::new(
                "BackupStore::get_artifact",
                json!({ "id": info.id }),
                async move {
                    let checked = verify(store.as_ref(), &info).await;
                    mark_if_failed(store.as_ref(), &info, clock.now(), checked).await
                },
            ))
        }));
        if let Some(test) = self.restore_test.clone() {
            let (store, taken) = (self.store.clone(), backup.clone());
            rb = rb.step(Step::read("restore-test", move |ctx| {
                let info = ctx.get(&taken)?;
                let (store, test, clock) = (store.clone(), test.clone(), ctx.clock().clone());
                Ok(Action::new(
                    format!("RestoreTest::{}", test.name()),
                    json!({ "id": info.id }),
                    async move {
                        let checked = test.check(store.as_ref(), &info).await;
                        mark_if_failed(store.as_ref(), &info, clock.now(), checked)
                            .await
                            .map_err(|e| {
                                super::common::failed(
                                    &format!("restore test {}", test.name()),
                                    e.to_string(),
                                )
                            })
                    },
                ))
            }));
        }
        let (store, taken) = (self.store.clone(), backup.clone());
        rb = rb.step(
            Step::mutate("record-verified", move |ctx| {
                let info = ctx.get(&taken)?;
                let (store, at) = (store.clone(), ctx.clock().now());
                Ok(Action::new(
                    "BackupStore::record_verification",
                    json!({ "id": info.id, "state": "verified" }),
                    async move { record_verified(store.as_ref(), &info.id, at).await },
                ))
            })
            .idempotent(),
        );
        if self.config.prunes() {
            let (store, retention) = (self.store.clone(), self.config.retention);
            let prefix = self
                .config
                .prune_prefix
                .clone()
                .unwrap_or_else(|| format!("{}-", self.stem()));
            let plan: Output<PrunePlan> = rb.add_step(Step::read("plan-prune", move |ctx| {
                let info = ctx.get(&backup)?;
                let (store, prefix) = (store.clone(), prefix.clone());
                Ok(Action::new(
                    "BackupStore::list",
                    json!({ "prefix": prefix }),
                    async move {
                        let all = store
                            .list(&BackupFilter {
                                prefix: Some(prefix),
                                ..Default::default()
                            })
                            .await?;
                        let keep = retention.keep(&all, &info.id);
                        let delete = all
                            .iter()
                            .map(|b| b.id.clone())
                            .filter(|id| !keep.contains(id))
                            .collect();
                        Ok(PrunePlan {
                            keep: keep.into_iter().collect(),
                            delete,
                        })
                    },
                ))
            }));
            let store = self.store.clone();
            rb = rb.step(
                Step::mutate("prune", move |ctx| {
                    let plan = ctx.get(&plan)?;
                    let store = store.clone();
                    Ok(Action::new(
                        "BackupStore::delete",
                        json!({ "ids": plan.delete }),
                        async move {
                            for id in &plan.delete {
                                match store.delete(id).await {
                                    Ok(()) => {}
                                    // Already gone (a retry, another pruner): the goal is met.
                                    Err(e) if matches!(e.kind(), ErrorKind::NotFound { .. }) => {}
                                    Err(e) => return Err(e),
                                }
                            }
                            Ok(plan.delete.len())
                        },
                    ))
                })
                .idempotent(),
            );
        }
        Ok(rb)
    }
}

impl super::Procedure for BackupAndVerify {
    type Summary = BackupInfo;

    fn runbook(&self) -> Result<Runbook> {
        self.build()
    }

    fn summary(&self, report: &RunReport) -> Option<BackupInfo> {
        report.output("backup")
    }
}

/// Records a check's definite failure on the backup, so that restores and retention never take
/// it for good; a retryable error (the store was unreachable) says nothing about the backup.
pub(crate) async fn mark_if_failed<T>(
    store: &dyn BackupStore,
    info: &BackupInfo,
    at: DateTime<Utc>,
    checked: Result<T>,
) -> Result<T> {
    if let Err(e) = &checked
        && !e.is_retryable()
        && store.capabilities().verification
    {
        let failed = Verification::failed(at, e.to_string());
        if let Err(not_recorded) = store.record_verification(&info.id, &failed).await {
            tracing::error!(backup = %info.id, error = %not_recorded, "could not mark a backup that failed its check as failed");
        }
    }
    checked
}

/// Marks a backup verified where the store can keep it; says so where it cannot.
async fn record_verified(store: &dyn BackupStore, id: &str, at: DateTime<Utc>) -> Result<String> {
    if !store.capabilities().verification {
        return Ok(format!(
            "{} cannot keep verification states: {id} lists as unverified",
            store.name()
        ));
    }
    store
        .record_verification(id, &Verification::Verified { at })
        .await?;
    Ok(format!("{id} verified"))
}

/// What reading a backup back found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactCheck {
    /// Bytes read from the store (through its checksum).
    pub stored_bytes: u64,
    /// Bytes after decompression (the length the artifact recorded, checked); the stored
    /// bytes for a raw artifact or a backup the store made itself.
    pub plain_bytes: u64,
    /// How it is stored (`zstd-3`, `raw`).
    pub codec: String,
}

/// Reads the whole backup back through the store's verifying reader, and through its codec.
pub(crate) async fn verify(store: &dyn BackupStore, info: &BackupInfo) -> Result<ArtifactCheck> {
    if info.state != BackupState::Complete {
        return Err(super::common::failed(
            "backup state",
            format!("{} is {:?}", info.id, info.state),
        ));
    }
    if !store.capabilities().artifacts {
        // Managed backups (Cloud SQL): the provider's own completion is the check available.
        let now = store.describe(&info.id).await?;
        return if now.state == BackupState::Complete {
            let size = now.size_bytes.unwrap_or(0);
            Ok(ArtifactCheck {
                stored_bytes: size,
                plain_bytes: size,
                codec: "managed".into(),
            })
        } else {
            Err(super::common::failed(
                "backup state",
                format!("{:?}", now.state),
            ))
        };
    }
    let codec = Codec::from_labels(&info.labels)?;
    let (mut reader, counts) = codec::decode(store.get_artifact(&info.id).await?, codec, &info.id);
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = reader
            .read(&mut buf)
            .await
            .map_err(|e| crate::error::from_io(store.name().to_string(), "verify", e))?;
        if n == 0 {
            break;
        }
    }
    let total = counts.stored();
    if let Some(size) = info.size_bytes
        && size != total
    {
        return Err(Error::new(
            store.name().to_string(),
            "verify",
            ErrorKind::ChecksumMismatch {
                expected: format!("{size} bytes"),
                actual: format!("{total} bytes"),
            },
        ));
    }
    Ok(ArtifactCheck {
        stored_bytes: total,
        plain_bytes: counts.plain(),
        codec: codec.describe(),
    })
}
