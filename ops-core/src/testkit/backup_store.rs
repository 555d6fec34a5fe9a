//! The [`BackupStore`] suite.

use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};

use super::{expect_kind, expect_ok};
use crate::ErrorKind;
use crate::checksum::Checksum;
use crate::contracts::{
    BackupFilter, BackupState, BackupStore, CreateBackup, PutArtifact, RestoreTarget, Verification,
    latest_verified,
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

/// Runs every behaviour `store` declares.
pub async fn backup_store(store: &dyn BackupStore, fixture: &BackupFixture) {
    let caps = store.capabilities();
    let p = &fixture.id_prefix;

    expect_kind(
        "describe of a missing backup",
        store.describe(&format!("{p}-missing")).await,
        |k| matches!(k, ErrorKind::NotFound { .. }),
    );
    expect_kind(
        "delete of a missing backup",
        store.delete(&format!("{p}-missing")).await,
        |k| {
            matches!(
                k,
                ErrorKind::NotFound { .. } | ErrorKind::Unsupported { .. }
            )
        },
    );

    if caps.artifacts {
        artifacts(store, p).await;
    } else {
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

    if caps.create {
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
            if let (Some(a), Some(b)) = (out.bytes, info.size_bytes) {
                assert_eq!(a, b, "restore writes every byte");
            }
        }
        if caps.delete {
            expect_ok("delete created", store.delete(&info.id).await);
        }
    }
}

async fn artifacts(store: &dyn BackupStore, p: &str) {
    let caps = store.capabilities();
    // Streaming round trip of a few MiB in uneven chunks.
    let len = 3 * 1024 * 1024 + 17;
    let expected = generated_bytes(len, 42).await;
    let id = format!("{p}-artifact-a");
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

    // No overwrite.
    expect_kind(
        "put of an existing id",
        store
            .put_artifact(&put(id.clone()), Box::pin(&b"other"[..]))
            .await,
        |k| {
            matches!(
                k,
                ErrorKind::AlreadyExists { .. } | ErrorKind::Conflict { .. }
            )
        },
    );
    assert_eq!(
        expect_ok(
            "describe after refused overwrite",
            store.describe(&id).await
        )
        .size_bytes,
        Some(len as u64)
    );

    expect_kind(
        "empty id",
        store
            .put_artifact(&put(String::new()), Box::pin(&b"x"[..]))
            .await,
        |k| matches!(k, ErrorKind::InvalidInput { .. }),
    );
    expect_kind(
        "get of a missing artifact",
        store
            .get_artifact(&format!("{p}-missing"))
            .await
            .map(|_| ()),
        |k| matches!(k, ErrorKind::NotFound { .. }),
    );

    // A source that dies mid-stream leaves nothing that lists.
    let broken = format!("{p}-artifact-broken");
    let err = store
        .put_artifact(&put(broken.clone()), Box::pin(FailsAfter { good: 300_000 }))
        .await;
    assert!(err.is_err(), "a failing source must fail the put");
    expect_kind(
        "describe of a failed put",
        store.describe(&broken).await,
        |k| matches!(k, ErrorKind::NotFound { .. }),
    );

    // Listing: filter, order, limit.
    let id_b = format!("{p}-artifact-b");
    expect_ok(
        "second put",
        store
            .put_artifact(&put(id_b.clone()), Box::pin(&b"small"[..]))
            .await,
    );
    let all = expect_ok(
        "list",
        store
            .list(&BackupFilter {
                prefix: Some(format!("{p}-artifact-")),
                ..Default::default()
            })
            .await,
    );
    let ids: Vec<&str> = all.iter().map(|b| b.id.as_str()).collect();
    assert!(
        ids.contains(&id.as_str()) && ids.contains(&id_b.as_str()),
        "list has both: {ids:?}"
    );
    assert!(!ids.contains(&broken.as_str()), "a failed put never lists");
    assert!(
        all.windows(2).all(|w| w[0].created_at >= w[1].created_at),
        "list is newest first"
    );
    let one = expect_ok(
        "list with limit",
        store
            .list(&BackupFilter {
                prefix: Some(format!("{p}-artifact-")),
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
                prefix: Some(format!("{p}-nothing-")),
                ..Default::default()
            })
            .await,
    );
    assert!(none.is_empty(), "prefix filters");
    let future = expect_ok(
        "list after a future time",
        store
            .list(&BackupFilter {
                created_after: Some(info.created_at + chrono::Duration::days(365)),
                ..Default::default()
            })
            .await,
    );
    assert!(future.is_empty(), "created_after filters");

    if caps.verification {
        verification(store, p, &id, &id_b).await;
    }

    if caps.delete {
        expect_ok("delete", store.delete(&id).await);
        expect_ok("delete b", store.delete(&id_b).await);
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
                    prefix: Some(format!("{p}-artifact-")),
                    ..Default::default()
                })
                .await,
        );
        assert!(left.is_empty(), "deleted backups do not list");
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
