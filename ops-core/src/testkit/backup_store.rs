//! The [`BackupStore`] suite.

use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};

use super::{Case, always, cases, check_cases, expect_kind, expect_ok};
use crate::ErrorKind;
use crate::checksum::Checksum;
use crate::contracts::{
    BackupFilter, BackupInfo, BackupState, BackupStore, CreateBackup, PutArtifact, RestoreTarget,
    Verification, latest_verified,
};

/// What the backup suite needs from the store under test.
#[derive(Debug, Clone)]
pub struct BackupFixture {
    /// Prefix for every id the suite writes (unique per run when the store is shared).
    pub id_prefix: String,
    /// A source for [`BackupStore::create`], required when the store declares `create`.
    pub create_source: Option<CreateBackup>,
    /// A target for [`BackupStore::restore`], required when the store declares `restore`.
    pub restore_target: Option<RestoreTarget>,
}

impl BackupFixture {
    /// A fixture writing ids that start with `id_prefix`, with no create source or restore
    /// target.
    pub fn new(id_prefix: impl Into<String>) -> Self {
        Self {
            id_prefix: id_prefix.into(),
            create_source: None,
            restore_target: None,
        }
    }
}

/// Deterministic pseudo-random bytes, streamed in uneven chunks.
struct Generated {
    remaining: usize,
    state: u64,
    chunk: usize,
}

impl AsyncRead for Generated {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let n = self.remaining.min(buf.remaining()).min(self.chunk);
        for _ in 0..n {
            self.state = self
                .state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            buf.put_slice(&[(self.state >> 56) as u8]);
        }
        self.remaining -= n;
        self.chunk = self.chunk % 9000 + 1021; // vary chunk sizes
        Poll::Ready(Ok(()))
    }
}

fn generated(len: usize, seed: u64) -> Generated {
    Generated {
        remaining: len,
        state: seed,
        chunk: 4093,
    }
}

async fn generated_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut v = Vec::with_capacity(len);
    generated(len, seed).read_to_end(&mut v).await.unwrap();
    v
}

/// A reader that yields `good` bytes and then fails, like a dump process that dies.
struct FailsAfter {
    good: usize,
}

impl AsyncRead for FailsAfter {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.good == 0 {
            return Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::BrokenPipe,
                "source died",
            )));
        }
        let n = self.good.min(buf.remaining()).min(1000);
        buf.put_slice(&vec![7u8; n]);
        self.good -= n;
        Poll::Ready(Ok(()))
    }
}

fn put(id: String) -> PutArtifact {
    PutArtifact {
        id,
        source: Some("testkit".into()),
        labels: [("suite".to_string(), "testkit".to_string())].into(),
    }
}

/// The backup suite's cases, each with ids of its own under the fixture's prefix.
pub fn backup_store_cases() -> Vec<Case<dyn BackupStore, BackupFixture>> {
    cases![dyn BackupStore, BackupFixture;
        missing_backups_are_not_found unless always,
        undeclared_capabilities_are_unsupported unless always,
        artifacts_stream_back_byte_for_byte unless no_artifacts,
        an_existing_id_is_never_overwritten unless no_artifacts,
        an_empty_id_is_invalid unless no_artifacts,
        a_failed_put_never_lists unless no_artifacts,
        listing_filters_orders_and_limits unless no_artifacts,
        verification_marks_are_kept_apart_from_labels unless no_verification,
        freshness_follows_the_newest_verified_backup unless no_verification,
        freshness_follows_the_newest_complete_backup unless no_create_without_verification,
        deleted_backups_are_gone unless no_artifact_delete,
        created_backups_list_and_restore unless no_create,
    ]
}

/// Runs every case that applies to what `store` declares, and fails naming every broken one.
pub async fn backup_store(store: &(dyn BackupStore + 'static), fixture: &BackupFixture) {
    check_cases("backup_store", store, fixture, &backup_store_cases()).await;
}

fn no_artifacts(store: &dyn BackupStore) -> Option<&'static str> {
    (!store.capabilities().artifacts).then_some("the store does not declare `artifacts`")
}

fn no_verification(store: &dyn BackupStore) -> Option<&'static str> {
    let caps = store.capabilities();
    (!(caps.artifacts && caps.verification))
        .then_some("the store does not declare `artifacts` and `verification`")
}

fn no_create_without_verification(store: &dyn BackupStore) -> Option<&'static str> {
    let caps = store.capabilities();
    (!caps.create || caps.verification)
        .then_some("the store records verification, or does not declare `create`")
}

fn no_artifact_delete(store: &dyn BackupStore) -> Option<&'static str> {
    let caps = store.capabilities();
    (!(caps.artifacts && caps.delete))
        .then_some("the store does not declare `artifacts` and `delete`")
}

fn no_create(store: &dyn BackupStore) -> Option<&'static str> {
    (!store.capabilities().create).then_some("the store does not declare `create`")
}

/// Puts `data` as `id`, failing the case if the store refuses.
async fn put_ok(store: &dyn BackupStore, id: &str, data: &'static [u8]) -> BackupInfo {
    expect_ok(
        "put_artifact",
        store
            .put_artifact(&put(id.to_string()), Box::pin(data))
            .await,
    )
}

async fn missing_backups_are_not_found(store: &dyn BackupStore, f: &BackupFixture) {
    let missing = format!("{}-missing", f.id_prefix);
    expect_kind(
        "describe of a missing backup",
        store.describe(&missing).await,
        |k| matches!(k, ErrorKind::NotFound { .. }),
    );
    expect_kind(
        "delete of a missing backup",
        store.delete(&missing).await,
        |k| {
            matches!(
                k,
                ErrorKind::NotFound { .. } | ErrorKind::Unsupported { .. }
            )
        },
    );
    if store.capabilities().artifacts {
        expect_kind(
            "get of a missing artifact",
            store.get_artifact(&missing).await.map(|_| ()),
            |k| matches!(k, ErrorKind::NotFound { .. }),
        );
    }
}

async fn undeclared_capabilities_are_unsupported(store: &dyn BackupStore, f: &BackupFixture) {
    let caps = store.capabilities();
    let p = &f.id_prefix;
    if !caps.artifacts {
        expect_kind(
            "put_artifact without the artifacts capability",
            store
                .put_artifact(&put(format!("{p}-x")), Box::pin(&b"x"[..]))
                .await,
            |k| matches!(k, ErrorKind::Unsupported { .. }),
        );
    }
    if !caps.verification {
        expect_kind(
            "record_verification without the verification capability",
            store
                .record_verification(&format!("{p}-any"), &Verification::Unverified)
                .await,
            |k| matches!(k, ErrorKind::Unsupported { .. }),
        );
    }
}

async fn artifacts_stream_back_byte_for_byte(store: &dyn BackupStore, f: &BackupFixture) {
    // Streaming round trip of a few MiB in uneven chunks.
    let len = 3 * 1024 * 1024 + 17;
    let expected = generated_bytes(len, 42).await;
    let id = format!("{}-stream", f.id_prefix);
    let info = expect_ok(
        "put_artifact",
        store
            .put_artifact(&put(id.clone()), Box::pin(generated(len, 42)))
            .await,
    );
    assert_eq!(info.id, id, "put keeps the id");
    assert_eq!(info.state, BackupState::Complete);
    assert_eq!(info.size_bytes, Some(len as u64), "put records the size");
    assert_eq!(
        info.checksum,
        Some(Checksum::of(&expected)),
        "put records the CRC32C of the bytes"
    );
    assert_eq!(
        info.labels.get("suite").map(String::as_str),
        Some("testkit"),
        "put records labels"
    );
    let described = expect_ok("describe", store.describe(&id).await);
    assert_eq!(described, info, "describe returns what put returned");
    let mut back = Vec::new();
    let mut reader = expect_ok("get_artifact", store.get_artifact(&id).await);
    reader
        .read_to_end(&mut back)
        .await
        .unwrap_or_else(|e| panic!("reading the artifact back: {e}"));
    assert!(back == expected, "get_artifact returns the bytes put");
}

async fn an_existing_id_is_never_overwritten(store: &dyn BackupStore, f: &BackupFixture) {
    let id = format!("{}-kept", f.id_prefix);
    put_ok(store, &id, b"first").await;
    expect_kind(
        "put of an existing id",
        store
            .put_artifact(&put(id.clone()), Box::pin(&b"other bytes"[..]))
            .await,
        |k| {
            matches!(
                k,
                ErrorKind::AlreadyExists { .. } | ErrorKind::Conflict { .. }
            )
        },
    );
    let kept = expect_ok(
        "describe after refused overwrite",
        store.describe(&id).await,
    );
    assert_eq!(kept.size_bytes, Some(5), "the first put's bytes are kept");
}

async fn an_empty_id_is_invalid(store: &dyn BackupStore, _: &BackupFixture) {
    expect_kind(
        "empty id",
        store
            .put_artifact(&put(String::new()), Box::pin(&b"x"[..]))
            .await,
        |k| matches!(k, ErrorKind::InvalidInput { .. }),
    );
}

async fn a_failed_put_never_lists(store: &dyn BackupStore, f: &BackupFixture) {
    let broken = format!("{}-broken", f.id_prefix);
    let err = store
        .put_artifact(&put(broken.clone()), Box::pin(FailsAfter { good: 300_000 }))
        .await;
    assert!(err.is_err(), "a failing source must fail the put");
    expect_kind(
        "describe of a failed put",
        store.describe(&broken).await,
        |k| matches!(k, ErrorKind::NotFound { .. }),
    );
    let listed = expect_ok(
        "list after a failed put",
        store
            .list(&BackupFilter {
                prefix: Some(broken.clone()),
                ..Default::default()
            })
            .await,
    );
    assert!(listed.is_empty(), "a failed put never lists: {listed:?}");
}

async fn listing_filters_orders_and_limits(store: &dyn BackupStore, f: &BackupFixture) {
    let prefix = format!("{}-list-", f.id_prefix);
    let (a, b) = (format!("{prefix}a"), format!("{prefix}b"));
    let first = put_ok(store, &a, b"one").await;
    put_ok(store, &b, b"two").await;
    let all = expect_ok(
        "list",
        store
            .list(&BackupFilter {
                prefix: Some(prefix.clone()),
                ..Default::default()
            })
            .await,
    );
    let ids: Vec<&str> = all.iter().map(|b| b.id.as_str()).collect();
    assert!(
        ids.contains(&a.as_str()) && ids.contains(&b.as_str()),
        "list has both: {ids:?}"
    );
    assert!(
        all.windows(2).all(|w| w[0].created_at >= w[1].created_at),
        "list is newest first"
    );
    let one = expect_ok(
        "list with limit",
        store
            .list(&BackupFilter {
                prefix: Some(prefix.clone()),
                limit: Some(1),
                ..Default::default()
            })
            .await,
    );
    assert_eq!(one.len(), 1, "limit is applied");
    let none = expect_ok(
        "list other prefix",
        store
            .list(&BackupFilter {
                prefix: Some(format!("{}-nothing-", f.id_prefix)),
                ..Default::default()
            })
            .await,
    );
    assert!(none.is_empty(), "prefix filters");
    let future = expect_ok(
        "list after a future time",
        store
            .list(&BackupFilter {
                created_after: Some(first.created_at + chrono::Duration::days(365)),
                ..Default::default()
            })
            .await,
    );
    assert!(future.is_empty(), "created_after filters");
}

async fn verification_marks_are_kept_apart_from_labels(store: &dyn BackupStore, f: &BackupFixture) {
    let p = format!("{}-marks", f.id_prefix);
    let (id, id_b) = (format!("{p}-artifact-a"), format!("{p}-artifact-b"));
    put_ok(store, &id, b"verified bytes").await;
    put_ok(store, &id_b, b"failed bytes").await;
    verification(store, &p, &id, &id_b).await;
}

/// The freshness of the ids under `prefix`, judged at `now` with a bound of `max_age_secs`:
/// its status and the check's text. Stores stamp backups by their own clock (a simulator's may
/// be anywhere), so `now` is taken from a backup's own stamp.
async fn freshness_over(
    store: &dyn BackupStore,
    prefix: &str,
    max_age_secs: u64,
    now: chrono::DateTime<chrono::Utc>,
) -> (crate::contracts::HealthStatus, String) {
    let filter = BackupFilter {
        prefix: Some(prefix.to_string()),
        ..Default::default()
    };
    let max_age = std::time::Duration::from_secs(max_age_secs);
    let f = expect_ok(
        "freshness",
        crate::adapters::store_freshness("under test", store, &filter, max_age, now).await,
    );
    (f.status(None), f.detail())
}

async fn freshness_follows_the_newest_verified_backup(store: &dyn BackupStore, f: &BackupFixture) {
    use crate::contracts::HealthStatus;
    let p = format!("{}-fresh", f.id_prefix);
    let day = 24 * 3600;
    // Only an unverified backup: no good one, unhealthy, and the report says why.
    put_ok(store, &format!("{p}-a"), b"not yet checked").await;
    let a = expect_ok("describe", store.describe(&format!("{p}-a")).await);
    let hour_later = a.created_at + chrono::Duration::hours(1);
    let (status, detail) = freshness_over(store, &p, day, hour_later).await;
    assert_eq!(status, HealthStatus::Unhealthy, "{detail}");
    assert!(
        detail.starts_with("no verified backup") && detail.contains("is not verified"),
        "the check names the missing verification: {detail:?}"
    );
    // Verified: healthy an hour later within a day's bound.
    let now = a.created_at;
    let verified = Verification::Verified { at: now };
    expect_ok(
        "record verified",
        store
            .record_verification(&format!("{p}-a"), &verified)
            .await,
    );
    let (status, detail) = freshness_over(store, &p, day, hour_later).await;
    assert_eq!(status, HealthStatus::Healthy, "{detail}");
    // A newer backup that failed its check: still within the bound, but degraded and said.
    let b = put_ok(store, &format!("{p}-b"), b"bad bytes").await;
    expect_ok(
        "record failed",
        store
            .record_verification(&b.id, &Verification::failed(now, "checksum mismatch"))
            .await,
    );
    let (status, detail) = freshness_over(store, &p, day, hour_later).await;
    let listed = expect_ok(
        "list",
        store
            .list(&BackupFilter {
                prefix: Some(p.clone()),
                ..Default::default()
            })
            .await,
    );
    // Put later, and ids break ties newest first: the failed one lists first.
    assert_eq!(
        listed.first().map(|n| n.id.as_str()),
        Some(b.id.as_str()),
        "the newer backup lists first"
    );
    assert_eq!(status, HealthStatus::Degraded, "{detail}");
    assert!(
        detail.contains("failed verification: checksum mismatch"),
        "{detail:?}"
    );
    // The bound is what decides: an hour is past a bound of 59 minutes.
    let (status, detail) = freshness_over(store, &p, 59 * 60, hour_later).await;
    assert_eq!(status, HealthStatus::Unhealthy, "{detail}");
    assert!(
        detail.contains("is 1h old"),
        "the age is the store's: {detail:?}"
    );
}

async fn freshness_follows_the_newest_complete_backup(store: &dyn BackupStore, f: &BackupFixture) {
    use crate::contracts::HealthStatus;
    let source = f
        .create_source
        .as_ref()
        .expect("the store declares `create`: give the fixture a create_source");
    let info = expect_ok("create", store.create(source).await);
    let prefix = info.id.clone();
    let hour_later = info.created_at + chrono::Duration::hours(1);
    let (status, detail) = freshness_over(store, &prefix, 24 * 3600, hour_later).await;
    assert_eq!(
        status,
        HealthStatus::Healthy,
        "a store that records no verification counts its complete backups: {detail}"
    );
    assert!(detail.starts_with("newest complete backup"), "{detail:?}");
    if store.capabilities().delete {
        expect_ok("delete created", store.delete(&info.id).await);
    }
}

async fn deleted_backups_are_gone(store: &dyn BackupStore, f: &BackupFixture) {
    let id = format!("{}-deleted", f.id_prefix);
    put_ok(store, &id, b"soon gone").await;
    expect_ok("delete", store.delete(&id).await);
    expect_kind("describe after delete", store.describe(&id).await, |k| {
        matches!(k, ErrorKind::NotFound { .. })
    });
    expect_kind(
        "get after delete",
        store.get_artifact(&id).await.map(|_| ()),
        |k| matches!(k, ErrorKind::NotFound { .. }),
    );
    let left = expect_ok(
        "list after delete",
        store
            .list(&BackupFilter {
                prefix: Some(id.clone()),
                ..Default::default()
            })
            .await,
    );
    assert!(left.is_empty(), "deleted backups do not list");
}

async fn created_backups_list_and_restore(store: &dyn BackupStore, fixture: &BackupFixture) {
    let caps = store.capabilities();
    let source = fixture
        .create_source
        .as_ref()
        .expect("the store declares `create`: give the fixture a create_source");
    let info = expect_ok("create", store.create(source).await);
    assert_eq!(
        info.state,
        BackupState::Complete,
        "create returns a complete backup"
    );
    let listed = expect_ok(
        "list after create",
        store.list(&BackupFilter::default()).await,
    );
    assert!(
        listed.iter().any(|b| b.id == info.id),
        "a created backup lists"
    );
    if caps.restore {
        let target = fixture
            .restore_target
            .as_ref()
            .expect("the store declares `restore`: give the fixture a restore_target");
        let out = expect_ok("restore", store.restore(&info.id, target).await);
        assert_eq!(out.backup_id, info.id);
        // A compressed backup restores more bytes than it stores.
        let raw =
            crate::codec::Codec::from_labels(&info.labels).ok() == Some(crate::codec::Codec::Raw);
        if let (Some(a), Some(b), true) = (out.bytes, info.size_bytes, raw) {
            assert_eq!(a, b, "restore writes every byte");
        }
    }
    if caps.delete {
        expect_ok("delete created", store.delete(&info.id).await);
    }
}

/// Verification states: recorded, shown by describe and list, kept apart from the labels, and
/// what `latest_verified` goes by.
async fn verification(store: &dyn BackupStore, p: &str, id: &str, id_b: &str) {
    let fresh = expect_ok("describe a new backup", store.describe(id).await);
    assert_eq!(
        fresh.verification,
        Verification::Unverified,
        "a new backup is unverified"
    );
    let at = "2026-01-02T03:04:05Z".parse().expect("a time");
    let verified = Verification::Verified { at };
    expect_ok(
        "record verified",
        store.record_verification(id, &verified).await,
    );
    expect_ok(
        "record verified again",
        store.record_verification(id, &verified).await,
    );
    let failed = Verification::failed(at, "checksum mismatch: expected 1, got 2");
    expect_ok(
        "record failed",
        store.record_verification(id_b, &failed).await,
    );
    assert_eq!(
        expect_ok("describe verified", store.describe(id).await).verification,
        verified,
        "describe shows the recorded state"
    );
    let listed = expect_ok(
        "list with states",
        store
            .list(&BackupFilter {
                prefix: Some(format!("{p}-artifact-")),
                ..Default::default()
            })
            .await,
    );
    let state_of = |want: &str| {
        listed
            .iter()
            .find(|b| b.id == want)
            .map(|b| b.verification.clone())
    };
    assert_eq!(state_of(id), Some(verified), "list shows verified");
    assert_eq!(
        state_of(id_b),
        Some(failed),
        "list shows failed, with the reason"
    );
    for b in &listed {
        assert_eq!(
            b.labels,
            put(b.id.clone()).labels,
            "verification marks are not labels"
        );
    }
    let latest = expect_ok(
        "latest_verified",
        latest_verified(
            store,
            &BackupFilter {
                prefix: Some(format!("{p}-artifact-")),
                ..Default::default()
            },
        )
        .await,
    );
    assert_eq!(
        latest.id, id,
        "the latest verified backup, never a failed one"
    );
    expect_kind(
        "record on a missing backup",
        store
            .record_verification(&format!("{p}-missing"), &Verification::Verified { at })
            .await,
        |k| matches!(k, ErrorKind::NotFound { .. }),
    );
    let mut back = Vec::new();
    let mut reader = expect_ok("get after marking", store.get_artifact(id).await);
    reader
        .read_to_end(&mut back)
        .await
        .expect("a marked backup still reads back whole");
    assert_eq!(
        Some(Checksum::of(&back)),
        fresh.checksum,
        "marking changes no byte"
    );
}
