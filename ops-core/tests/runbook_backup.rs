//! Backup and verify against a real filesystem store: GFS pruning, corruption caught before
//! anything is pruned, restore tests, streamed artifacts, dry runs and configuration.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

use std::time::Duration;
use tokio::io::AsyncReadExt as _;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ops_core::adapters::FsBackupStore;
use ops_core::clock::ManualClock;
use ops_core::contracts::*;
use ops_core::engine::{Mode, RunOutcome, Runner, StepStatus};
use ops_core::runbooks::*;
use ops_core::{ErrorKind, Result};

fn t0() -> DateTime<Utc> {
    "2026-09-01T00:30:00Z".parse().unwrap()
}

struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
    db: PathBuf,
    clock: Arc<ManualClock>,
    store: Arc<FsBackupStore>,
}

/// A store with `hours` hourly backups `app-…` already in it (the newest `hours` hours before
/// now), and an `app` database file to back up.
async fn fixture(hours: u32) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("backups");
    let db = dir.path().join("app");
    std::fs::write(&db, b"SQLite format 3\0 live data").unwrap();
    let clock = Arc::new(ManualClock::starting_at(t0()));
    let store = Arc::new(
        FsBackupStore::open(&root)
            .await
            .unwrap()
            .without_fsync()
            .with_clock(clock.clone()),
    );
    for _ in 0..hours {
        store
            .create(&CreateBackup {
                source: db.display().to_string(),
                name: None,
                labels: Default::default(),
            })
            .await
            .unwrap();
        clock.advance(Duration::from_secs(3600));
    }
    Fixture {
        _dir: dir,
        root,
        db,
        clock,
        store,
    }
}

fn ids(store_root: &PathBuf) -> BTreeSet<String> {
    std::fs::read_dir(store_root)
        .unwrap()
        .filter_map(|e| {
            e.unwrap()
                .file_name()
                .to_str()
                .and_then(|n| n.strip_suffix(".meta.json"))
                .map(str::to_string)
        })
        .collect()
}

fn create_source(f: &Fixture) -> BackupSource {
    BackupSource::Create(CreateBackup {
        source: f.db.display().to_string(),
        name: None,
        labels: Default::default(),
    })
}

fn runner(f: &Fixture) -> Runner {
    Runner::new().with_clock(f.clock.clone())
}

#[test]
fn gfs_keeps_the_newest_of_each_recent_hour_day_week_and_month() {
    // A backup every 6 hours for 60 days, newest first.
    let start: DateTime<Utc> = "2026-03-01T00:00:00Z".parse().unwrap();
    let backups: Vec<BackupInfo> = (0..240)
        .map(|i| BackupInfo {
            id: format!("b{i:03}"),
            created_at: start + chrono::Duration::hours(6 * i),
            state: BackupState::Complete,
            size_bytes: Some(1),
            checksum: None,
            source: None,
            location: String::new(),
            labels: Default::default(),
            verification: Verification::Unverified,
        })
        .collect();
    let keep = Retention {
        hourly: 3,
        daily: 3,
        weekly: 2,
        monthly: 2,
    }
    .keep(&backups, "new");
    // hourly: b239 b238 b237 (distinct hours); daily: newest of the last 3 days b239 b235 b231;
    // weekly: newest of 2 ISO weeks; monthly: newest of April and of March.
    for id in ["new", "b239", "b238", "b237", "b235", "b231"] {
        assert!(keep.contains(id), "{id} kept: {keep:?}");
    }
    let march_last = backups
        .iter()
        .filter(|b| b.created_at.format("%Y%m").to_string() == "202603")
        .map(|b| b.id.clone())
        .max()
        .unwrap();
    assert!(keep.contains(&march_last), "the newest of March is kept");
    assert!(keep.len() <= 1 + 3 + 3 + 2 + 2);
    assert!(!keep.contains("b000"));
    // Incomplete backups never count as kept generations.
    let mut pending = backups[239].clone();
    pending.id = "pending".into();
    pending.state = BackupState::Pending;
    assert!(
        !Retention::default()
            .keep(&[pending], "new")
            .contains("pending")
    );
}

#[tokio::test]
async fn a_verified_backup_is_kept_and_old_ones_pruned() {
    let f = fixture(30).await;
    let config = BackupVerifyConfig {
        retention: Retention {
            hourly: 5,
            daily: 0,
            weekly: 0,
            monthly: 0,
        },
        ..Default::default()
    };
    let Finished {
        report,
        summary: info,
    } = BackupAndVerify::new("app", f.store.clone(), create_source(&f), config)
        .run(&runner(&f), Mode::Execute)
        .await
        .unwrap();
    assert_eq!(
        report.outcome,
        Some(RunOutcome::Succeeded),
        "{}",
        report.summary()
    );
    let info = info.unwrap();
    assert!(info.id.starts_with("app-20260902-"), "{}", info.id);
    let left = ids(&f.root);
    assert_eq!(left.len(), 5, "{left:?}");
    assert!(left.contains(&info.id), "the new backup is kept");
    let plan: PrunePlan = report.output("plan-prune").unwrap();
    assert_eq!(plan.delete.len(), 26);
    let check: ArtifactCheck = report.output("verify-checksum").unwrap();
    assert_eq!((check.stored_bytes, check.plain_bytes), (26, 26));
    // The check is recorded on the backup, and it is what a restore of "the latest" picks.
    let described = f.store.describe(&info.id).await.unwrap();
    assert!(described.verification.is_verified(), "{described:?}");
    let latest = latest_verified(f.store.as_ref(), &BackupFilter::default())
        .await
        .unwrap();
    assert_eq!(latest.id, info.id);
}

#[test]
fn retention_prefers_verified_backups_and_never_counts_failed_ones() {
    let start: DateTime<Utc> = "2026-03-01T00:00:00Z".parse().unwrap();
    let at = |minutes: i64| start + chrono::Duration::minutes(minutes);
    let backup = |id: &str, minutes: i64, v: Verification| BackupInfo {
        id: id.into(),
        created_at: at(minutes),
        state: BackupState::Complete,
        size_bytes: Some(1),
        checksum: None,
        source: None,
        location: String::new(),
        labels: Default::default(),
        verification: v,
    };
    let verified = |m| Verification::Verified { at: at(m) };
    let failed = |m| Verification::failed(at(m), "checksum mismatch");
    let backups = [
        // Hour 3: the newest failed its check; the one before it is unverified.
        backup("h3-failed", 190, failed(191)),
        backup("h3-unverified", 185, Verification::Unverified),
        // Hour 2: an unverified newest and a verified older one.
        backup("h2-unverified", 130, Verification::Unverified),
        backup("h2-verified", 125, verified(126)),
        // Hour 1: failed only.
        backup("h1-failed", 70, failed(71)),
        // Hour 0: verified, long before the window of 2 hours.
        backup("h0-verified", 10, verified(11)),
    ];
    let keep = Retention {
        hourly: 2,
        daily: 0,
        weekly: 0,
        monthly: 0,
    }
    .keep(&backups, "new");
    assert_eq!(
        keep,
        BTreeSet::from(["new", "h3-unverified", "h2-verified"].map(String::from)),
        "a failed backup fills no slot; within a slot a verified one wins"
    );
    // With no slot reaching it, the newest verified backup is still kept.
    let only_old_verified = [
        backup("h3-unverified", 185, Verification::Unverified),
        backup("h0-verified", 10, verified(11)),
    ];
    let keep = Retention {
        hourly: 1,
        daily: 0,
        weekly: 0,
        monthly: 0,
    }
    .keep(&only_old_verified, "new");
    assert!(keep.contains("h0-verified"), "{keep:?}");
    assert!(keep.contains("h3-unverified"), "{keep:?}");
}

/// A store whose bytes rot between being written and being read back.
struct Rotting {
    inner: FsBackupStore,
    root: PathBuf,
}

#[async_trait]
impl BackupStore for Rotting {
    fn name(&self) -> &str {
        "rotting"
    }
    fn capabilities(&self) -> BackupCapabilities {
        self.inner.capabilities()
    }
    async fn create(&self, r: &CreateBackup) -> Result<BackupInfo> {
        self.inner.create(r).await
    }
    async fn put_artifact(&self, r: &PutArtifact, d: ArtifactReader) -> Result<BackupInfo> {
        self.inner.put_artifact(r, d).await
    }
    async fn get_artifact(&self, id: &str) -> Result<ArtifactReader> {
        let path = self.root.join(id);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[3] ^= 0x40;
        std::fs::write(&path, bytes).unwrap();
        self.inner.get_artifact(id).await
    }
    async fn list(&self, f: &BackupFilter) -> Result<Vec<BackupInfo>> {
        self.inner.list(f).await
    }
    async fn describe(&self, id: &str) -> Result<BackupInfo> {
        self.inner.describe(id).await
    }
    async fn restore(&self, id: &str, t: &RestoreTarget) -> Result<RestoreOutcome> {
        self.inner.restore(id, t).await
    }
    async fn delete(&self, id: &str) -> Result<()> {
        self.inner.delete(id).await
    }
    async fn record_verification(&self, id: &str, v: &Verification) -> Result<()> {
        self.inner.record_verification(id, v).await
    }
}

#[tokio::test]
async fn a_corrupt_backup_fails_verification_and_nothing_is_pruned() {
    let f = fixture(10).await;
    let before = ids(&f.root);
    let rotting = Arc::new(Rotting {
        inner: (*f.store).clone(),
        root: f.root.clone(),
    });
    let config = BackupVerifyConfig {
        retention: Retention {
            hourly: 1,
            daily: 0,
            weekly: 0,
            monthly: 0,
        },
        ..Default::default()
    };
    let Finished { report, summary: _ } =
        BackupAndVerify::new("app", rotting, create_source(&f), config)
            .run(&runner(&f), Mode::Execute)
            .await
            .unwrap();
    assert_eq!(report.outcome, Some(RunOutcome::Failed));
    assert_eq!(report.error.as_ref().unwrap().kind, "checksum_mismatch");
    let status = |s: &str| report.steps.iter().find(|x| x.name == s).unwrap().status;
    assert_eq!(status("prune"), StepStatus::NotReached);
    let after = ids(&f.root);
    assert!(
        before.is_subset(&after) && after.len() == before.len() + 1,
        "every old backup is still there, and the bad one for inspection"
    );
    // Marked, in a way that survives a restart: a new store over the same directory lists it
    // as failed, never as the latest good backup.
    let reopened = FsBackupStore::open(&f.root).await.unwrap();
    let bad_id = after.difference(&before).next().unwrap().clone();
    let bad = reopened.describe(&bad_id).await.unwrap();
    assert!(bad.verification.is_failed(), "{:?}", bad.verification);
    let Verification::Failed { reason, .. } = &bad.verification else {
        unreachable!()
    };
    assert!(reason.contains("checksum"), "{reason}");
    let latest = latest_verified(&reopened, &BackupFilter::default()).await;
    assert!(
        latest
            .as_ref()
            .is_err_and(|e| matches!(e.kind(), ErrorKind::NotFound { .. })),
        "no backup here was ever verified: {latest:?}"
    );
}

struct Integrity {
    ok: bool,
}

#[async_trait]
impl RestoreTest for Integrity {
    fn name(&self) -> &str {
        "integrity_check"
    }
    async fn check(&self, store: &dyn BackupStore, backup: &BackupInfo) -> Result<String> {
        let mut bytes = Vec::new();
        tokio::io::AsyncReadExt::read_to_end(
            &mut store.get_artifact(&backup.id).await?,
            &mut bytes,
        )
        .await
        .unwrap();
        if self.ok && bytes.starts_with(b"SQLite format 3\0") {
            Ok("ok".into())
        } else {
            Err(ops_core::Error::new(
                "sqlite",
                "integrity_check",
                ErrorKind::Decode {
                    detail: "database disk image is malformed".into(),
                },
            ))
        }
    }
}

#[tokio::test]
async fn a_restore_test_can_veto_pruning() {
    let f = fixture(3).await;
    let Finished {
        report: ok,
        summary: _,
    } = BackupAndVerify::new(
        "app",
        f.store.clone(),
        create_source(&f),
        BackupVerifyConfig::default(),
    )
    .restore_test(Arc::new(Integrity { ok: true }))
    .run(&runner(&f), Mode::Execute)
    .await
    .unwrap();
    assert!(ok.is_success());
    assert_eq!(ok.output::<String>("restore-test").as_deref(), Some("ok"));

    let g = fixture(30).await;
    let before = ids(&g.root).len();
    let config = BackupVerifyConfig {
        retention: Retention {
            hourly: 1,
            daily: 0,
            weekly: 0,
            monthly: 0,
        },
        ..Default::default()
    };
    let Finished {
        report: bad,
        summary: info,
    } = BackupAndVerify::new("app", g.store.clone(), create_source(&g), config)
        .restore_test(Arc::new(Integrity { ok: false }))
        .run(&runner(&g), Mode::Execute)
        .await
        .unwrap();
    assert_eq!(bad.outcome, Some(RunOutcome::Failed));
    assert!(bad.error.as_ref().unwrap().message.contains("malformed"));
    assert_eq!(ids(&g.root).len(), before + 1, "nothing pruned");
    let vetoed = g.store.describe(&info.unwrap().id).await.unwrap();
    assert!(
        vetoed.verification.is_failed(),
        "the vetoed backup lists as failed: {:?}",
        vetoed.verification
    );
}

#[tokio::test]
async fn a_streamed_artifact_is_named_by_stem_time_and_extension() {
    let f = fixture(0).await;
    let open: OpenArtifact = Arc::new(|| {
        Box::pin(async {
            Ok(Box::pin(std::io::Cursor::new(vec![7u8; 1_000_000])) as ArtifactReader)
        })
    });
    let source = BackupSource::Artifact {
        stem: "orders".into(),
        extension: Some("dump".into()),
        source: Some("postgres://db/orders".into()),
        open,
    };
    let Finished {
        report,
        summary: info,
    } = BackupAndVerify::new(
        "orders",
        f.store.clone(),
        source,
        BackupVerifyConfig::default(),
    )
    .run(&runner(&f), Mode::Execute)
    .await
    .unwrap();
    assert!(report.is_success(), "{}", report.summary());
    let info = info.unwrap();
    assert_eq!(info.id, "orders-20260901-003000.dump");
    assert_eq!(info.source.as_deref(), Some("postgres://db/orders"));
    // Compressed by default, and the labels say how; the check read it back whole.
    assert!(info.size_bytes.unwrap() < 1_000, "{:?}", info.size_bytes);
    assert_eq!(info.labels.get("codec").map(String::as_str), Some("zstd"));
    assert_eq!(
        info.labels.get("codec_level").map(String::as_str),
        Some("3")
    );
    let check: ArtifactCheck = report.output("verify-checksum").unwrap();
    assert_eq!(
        (check.plain_bytes, check.codec.as_str()),
        (1_000_000, "zstd-3")
    );
}

#[tokio::test]
async fn a_dry_run_plan_names_the_codec() {
    let f = fixture(0).await;
    let open: OpenArtifact = Arc::new(|| {
        Box::pin(async { Ok(Box::pin(std::io::Cursor::new(vec![1u8; 10])) as ArtifactReader) })
    });
    let source = BackupSource::Artifact {
        stem: "orders".into(),
        extension: None,
        source: None,
        open,
    };
    let plan = BackupAndVerify::new(
        "orders",
        f.store.clone(),
        source,
        BackupVerifyConfig::default(),
    )
    .run(&runner(&f), Mode::DryRun)
    .await
    .unwrap()
    .report;
    let md = plan.to_markdown();
    assert!(md.contains(r#""compression":"zstd-3""#), "{md}");

    // A backup the store takes itself: the plan says how the store keeps it.
    let plan = BackupAndVerify::new(
        "orders",
        f.store.clone(),
        create_source(&f),
        BackupVerifyConfig::default(),
    )
    .run(&runner(&f), Mode::DryRun)
    .await
    .unwrap()
    .report;
    let md = plan.to_markdown();
    assert!(
        md.contains(r#""compression":"raw (a copy of the file)""#),
        "{md}"
    );
}

#[tokio::test]
async fn a_raw_config_and_an_incompressible_stream_store_the_bytes_as_they_are() {
    for (compression, data) in [
        (ops_core::codec::Codec::Raw, vec![7u8; 100_000]),
        (ops_core::codec::Codec::DEFAULT, {
            let mut rng = fastrand::Rng::with_seed(3);
            (0..100_000).map(|_| rng.u8(..)).collect()
        }),
    ] {
        let f = fixture(0).await;
        let bytes = data.clone();
        let open: OpenArtifact = Arc::new(move || {
            let bytes = bytes.clone();
            Box::pin(async move { Ok(Box::pin(std::io::Cursor::new(bytes)) as ArtifactReader) })
        });
        let source = BackupSource::Artifact {
            stem: "blob".into(),
            extension: None,
            source: None,
            open,
        };
        let config = BackupVerifyConfig {
            compression,
            ..Default::default()
        };
        let done = BackupAndVerify::new("blob", f.store.clone(), source, config)
            .run(&runner(&f), Mode::Execute)
            .await
            .unwrap();
        let info = done.summary.unwrap();
        assert_eq!(info.size_bytes, Some(100_000), "{compression:?}");
        assert_eq!(info.labels.get("codec").map(String::as_str), Some("raw"));
        let mut back = Vec::new();
        f.store
            .get_artifact(&info.id)
            .await
            .unwrap()
            .read_to_end(&mut back)
            .await
            .unwrap();
        assert_eq!(back, data);
    }
}

#[tokio::test]
async fn a_dry_run_writes_and_deletes_nothing() {
    let f = fixture(5).await;
    let before = ids(&f.root);
    let Finished {
        report,
        summary: info,
    } = BackupAndVerify::new(
        "app",
        f.store.clone(),
        create_source(&f),
        BackupVerifyConfig::default(),
    )
    .run(&runner(&f), Mode::DryRun)
    .await
    .unwrap();
    assert_eq!(report.outcome, Some(RunOutcome::Planned));
    assert!(info.is_none());
    assert_eq!(report.planned[0].call, "BackupStore::create");
    assert_eq!(ids(&f.root), before);
}

#[test]
fn config_rejects_keeping_nothing_and_an_empty_prefix() {
    let c = BackupVerifyConfig::from_toml("[retention]\nhourly = 6").unwrap();
    assert_eq!(
        (
            c.retention.hourly,
            c.retention.daily,
            c.retention.weekly,
            c.retention.monthly
        ),
        (6, 7, 4, 12)
    );
    for (toml, field) in [
        (
            "[retention]\nhourly = 0\ndaily = 0\nweekly = 0\nmonthly = 0",
            "retention",
        ),
        ("prune_prefix = \"\"", "prune_prefix"),
        ("[retention]\nhourly = -1", "retention.hourly"),
    ] {
        match BackupVerifyConfig::from_toml(toml).unwrap_err().kind() {
            ErrorKind::InvalidInput { field: f, .. } => assert_eq!(f, field, "{toml}"),
            other => panic!("{toml}: {other:?}"),
        }
    }
}
