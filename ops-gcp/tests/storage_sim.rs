//! Cloud Storage as a BackupStore against the simulator: the testkit suite, resumable uploads
//! cut mid-stream, corrupted downloads, the seed runbook's backup and restore with a
//! pre-restore copy, and generation preconditions.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use ops_core::ErrorKind;
use ops_core::checksum::Checksum;
use ops_core::clock::ManualClock;
use ops_core::contracts::*;
use ops_core::sim::Simulator;
use ops_core::testkit;
use ops_gcp::CloudStorage;
use ops_gcp::sim::{Fault, GcpSim};
use tokio::io::AsyncReadExt;

const BUCKET: &str = "acme-backups";

fn t0() -> DateTime<Utc> {
    "2026-11-23T09:00:00Z".parse().unwrap()
}

async fn sim() -> (GcpSim, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::starting_at(t0()));
    (GcpSim::builder().clock(clock.clone()).start().await, clock)
}

/// 256 KiB chunks, so a few MiB take many.
fn store(sim: &GcpSim) -> CloudStorage {
    CloudStorage::new(sim.client().unwrap(), BUCKET, "backup/")
        .unwrap()
        .with_chunk_size(256 * 1024)
        .unwrap()
}

fn bytes(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

#[tokio::test]
async fn cloud_storage_passes_the_backup_store_suite() {
    let (sim, _) = sim().await;
    sim.put_object(BUCKET, "data/app.db", &bytes(5 * 1024 * 1024 + 3));
    let fixture = testkit::BackupFixture {
        create_source: Some(CreateBackup {
            source: "data/app.db".into(),
            name: None,
            labels: Default::default(),
        }),
        restore_target: Some(RestoreTarget::Other("restore-check/app.db".into())),
        ..testkit::BackupFixture::new("suite")
    };
    testkit::backup_store(&store(&sim), &fixture).await;
}

#[tokio::test]
async fn an_upload_cut_mid_stream_resumes_and_the_object_matches() {
    let (sim, clock) = sim().await;
    let data = bytes(3 * 1024 * 1024 + 100);
    sim.cut_next_upload_after(1024 * 1024 + 5000);
    let info = store(&sim)
        .put_artifact(
            &PutArtifact {
                id: "dump.bin".into(),
                source: None,
                labels: Default::default(),
            },
            Box::pin(std::io::Cursor::new(data.clone())),
        )
        .await
        .unwrap();
    assert_eq!(info.checksum, Some(Checksum::of(&data)));
    assert_eq!(
        sim.object_data(BUCKET, "backup/dump.bin").unwrap(),
        data,
        "every byte, once"
    );
    let statuses = sim
        .requests()
        .iter()
        .filter(|r| r.starts_with("PUT"))
        .count();
    assert!(
        statuses > 13,
        "12 full chunks, the cut one, a status query and the rest: {statuses}"
    );
    assert!(!clock.sleeps().is_empty(), "a pause before resuming");
}

#[tokio::test]
async fn a_refused_chunk_is_sent_again_from_where_the_session_stands() {
    let (sim, _) = sim().await;
    let data = bytes(1024 * 1024 + 7);
    // A chunk answered with a 503: the client asks the session how far it got, then goes on.
    sim.inject(
        Some("PUT"),
        "/upload/storage/v1/b/acme-backups/o",
        1,
        Fault::Status {
            status: 503,
            retry_after: Some(1),
        },
    );
    let info = store(&sim)
        .put_artifact(
            &PutArtifact {
                id: "x.bin".into(),
                source: None,
                labels: Default::default(),
            },
            Box::pin(std::io::Cursor::new(data.clone())),
        )
        .await
        .unwrap();
    assert_eq!(info.size_bytes, Some(data.len() as u64));
    assert_eq!(sim.object_data(BUCKET, "backup/x.bin").unwrap(), data);
}

#[tokio::test]
async fn a_corrupted_download_is_detected_and_never_restored_from() {
    let (sim, _) = sim().await;
    let store = store(&sim);
    let data = bytes(600_000);
    store
        .put_artifact(
            &PutArtifact {
                id: "db.bin".into(),
                source: None,
                labels: Default::default(),
            },
            Box::pin(std::io::Cursor::new(data)),
        )
        .await
        .unwrap();
    sim.corrupt_object(BUCKET, "backup/db.bin");
    let mut reader = store.get_artifact("db.bin").await.unwrap();
    let mut out = Vec::new();
    let err = reader.read_to_end(&mut out).await.unwrap_err();
    let err = ops_core::error::from_io("test", "read", err);
    assert!(
        matches!(err.kind(), ErrorKind::ChecksumMismatch { .. }),
        "{err}"
    );
}

#[tokio::test]
async fn backup_then_restore_keeps_a_pre_restore_copy() {
    let (sim, clock) = sim().await;
    let v1 = b"SQLite format 3\0 version one".to_vec();
    sim.put_object(BUCKET, "data/app.db", &v1);
    let store = store(&sim);
    let backup = store
        .create(&CreateBackup {
            source: "data/app.db".into(),
            name: None,
            labels: Default::default(),
        })
        .await
        .unwrap();
    assert_eq!(backup.id, "app-20261123-090000.db");
    assert_eq!(backup.source.as_deref(), Some("data/app.db"));
    assert_eq!(backup.checksum, Some(Checksum::of(&v1)));

    clock.advance(Duration::from_secs(3600));
    sim.put_object(
        BUCKET,
        "data/app.db",
        b"SQLite format 3\0 version two, broken",
    );
    let out = store
        .restore(&backup.id, &RestoreTarget::Original)
        .await
        .unwrap();
    assert_eq!(out.target, "gs://acme-backups/data/app.db");
    assert_eq!(sim.object_data(BUCKET, "data/app.db").unwrap(), v1);
    let aside = sim
        .object_data(BUCKET, "backup/pre-restore-app-20261123-100000.db")
        .unwrap();
    assert_eq!(
        aside, b"SQLite format 3\0 version two, broken",
        "the replaced version is kept"
    );
}

#[tokio::test]
async fn large_copies_loop_over_rewrite_tokens() {
    let (sim, _) = sim().await;
    let data = bytes(9 * 1024 * 1024);
    sim.put_object(BUCKET, "data/big.db", &data);
    let info = store(&sim)
        .create(&CreateBackup {
            source: "data/big.db".into(),
            name: Some("big.db".into()),
            labels: Default::default(),
        })
        .await
        .unwrap();
    assert_eq!(info.size_bytes, Some(data.len() as u64));
    let rewrites = sim
        .requests()
        .iter()
        .filter(|r| r.contains("/rewriteTo/"))
        .count();
    assert_eq!(rewrites, 3, "4 MiB per call: three calls for 9 MiB");
}

/// The upload's waits follow the client's retry policy: an outage's `Retry-After` is waited
/// out; a rate limit asking for longer than the policy's `max_retry_after` ends the upload at
/// once with the wait in the error, instead of sleeping for an hour.
#[tokio::test]
async fn upload_waits_follow_the_retry_policy() {
    let (sim, clock) = sim().await;
    let data = bytes(1024 * 1024 + 7);
    let put = |id: &str| PutArtifact {
        id: id.into(),
        source: None,
        labels: Default::default(),
    };
    sim.inject(
        Some("PUT"),
        "/upload/storage/v1/b/acme-backups/o",
        1,
        Fault::Status {
            status: 503,
            retry_after: Some(7),
        },
    );
    store(&sim)
        .put_artifact(&put("a.bin"), Box::pin(std::io::Cursor::new(data.clone())))
        .await
        .unwrap();
    assert!(
        clock.sleeps().contains(&Duration::from_secs(7)),
        "{:?}",
        clock.sleeps()
    );
    let before = clock.sleeps().len();
    sim.inject(
        Some("PUT"),
        "/upload/storage/v1/b/acme-backups/o",
        1,
        Fault::Status {
            status: 429,
            retry_after: Some(3600),
        },
    );
    let err = store(&sim)
        .put_artifact(&put("b.bin"), Box::pin(std::io::Cursor::new(data)))
        .await
        .unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::RateLimited { .. }), "{err}");
    assert!(
        clock.sleeps()[before..]
            .iter()
            .all(|s| *s < Duration::from_secs(3600)),
        "{:?}",
        clock.sleeps()
    );
    assert!(
        sim.object_data(BUCKET, "backup/b.bin").is_none(),
        "nothing half-written lists"
    );
}

#[tokio::test]
async fn a_compressed_artifact_restores_decompressed_and_leaves_no_scratch_object() {
    use ops_core::codec::{Codec, encode};
    let (sim, _) = sim().await;
    let store = store(&sim);
    let plain = b"SQLite format 3\0"
        .iter()
        .copied()
        .chain(bytes(3 * 1024 * 1024))
        .collect::<Vec<u8>>();
    let put = |id: &str, labels| PutArtifact {
        id: id.into(),
        source: Some("data/app.db".into()),
        labels,
    };
    let encoded = encode(
        Box::pin(std::io::Cursor::new(plain.clone())),
        Codec::DEFAULT,
        1,
    )
    .await
    .unwrap();
    assert_eq!(encoded.codec, Codec::DEFAULT);
    let labels = encoded.codec.labels();
    let info = store
        .put_artifact(&put("app.db.zst", labels.clone()), encoded.reader)
        .await
        .unwrap();
    assert!(info.size_bytes.unwrap() < plain.len() as u64 / 4);
    let out = store
        .restore(&info.id, &RestoreTarget::Other("restored/app.db".into()))
        .await
        .unwrap();
    assert_eq!(out.bytes, Some(plain.len() as u64));
    assert_eq!(sim.object_data(BUCKET, "restored/app.db").unwrap(), plain);
    let left: Vec<String> = sim
        .object_names(BUCKET)
        .into_iter()
        .filter(|n| n.contains(".restore-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");

    // Damaged before it was stored (its checksum matches): refused, the target untouched.
    let mut stored = Vec::new();
    store
        .get_artifact(&info.id)
        .await
        .unwrap()
        .read_to_end(&mut stored)
        .await
        .unwrap();
    let half = stored.len() / 2;
    stored[half] ^= 0x5a;
    let rotten = store
        .put_artifact(
            &put("rotten.zst", labels),
            Box::pin(std::io::Cursor::new(stored)),
        )
        .await
        .unwrap();
    let err = store
        .restore(&rotten.id, &RestoreTarget::Other("restored/app.db".into()))
        .await
        .unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::VerificationFailed { .. }),
        "{err}"
    );
    assert_eq!(sim.object_data(BUCKET, "restored/app.db").unwrap(), plain);
    let left: Vec<String> = sim
        .object_names(BUCKET)
        .into_iter()
        .filter(|n| n.contains(".restore-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}
