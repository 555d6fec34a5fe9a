use std::sync::Arc;

use tokio::io::AsyncReadExt;

use super::*;
use crate::clock::ManualClock;
use crate::contracts::{BackupFilter, CreateBackup, PutArtifact, RestoreTarget};
use crate::testkit::{self, BackupFixture};

async fn store(dir: &Path) -> FsBackupStore {
    FsBackupStore::open(dir).await.unwrap()
}

fn put(id: &str) -> PutArtifact {
    PutArtifact {
        id: id.into(),
        source: None,
        labels: Default::default(),
    }
}

fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn passes_the_backup_store_suite() {
    let dir = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let source = work.path().join("app.db");
    std::fs::write(&source, b"SQLite format 3\0 pretend").unwrap();
    let s = store(&dir.path().join("backups")).await;
    let fixture = BackupFixture {
        id_prefix: "suite".into(),
        create_source: Some(CreateBackup {
            source: source.display().to_string(),
            name: None,
            labels: Default::default(),
        }),
        restore_target: Some(RestoreTarget::Other(
            work.path().join("restored.db").display().to_string(),
        )),
    };
    testkit::backup_store(&s, &fixture).await;
    assert_eq!(
        std::fs::read(work.path().join("restored.db")).unwrap(),
        b"SQLite format 3\0 pretend"
    );
    let leftovers: Vec<String> = entries(&dir.path().join("backups"))
        .into_iter()
        .filter(|n| n.starts_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "no temp files left: {leftovers:?}");
}

#[tokio::test]
async fn create_names_backups_like_the_seed_and_restores_to_the_original() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("app.db");
    std::fs::write(&db, b"version 1").unwrap();
    let clock = Arc::new(ManualClock::starting_at(
        "2026-03-04T05:06:07Z".parse().unwrap(),
    ));
    let s = store(&dir.path().join("b")).await.with_clock(clock);
    let info = s
        .create(&CreateBackup {
            source: db.display().to_string(),
            name: Some("app".into()),
            labels: Default::default(),
        })
        .await
        .unwrap();
    assert_eq!(info.id, "app-20260304-050607");
    std::fs::write(&db, b"version 2, broken").unwrap();
    let out = s.restore(&info.id, &RestoreTarget::Original).await.unwrap();
    assert_eq!(out.bytes, Some(9));
    assert_eq!(std::fs::read(&db).unwrap(), b"version 1");
    // Same second again: never overwrites.
    let again = s
        .create(&CreateBackup {
            source: db.display().to_string(),
            name: Some("app".into()),
            labels: Default::default(),
        })
        .await;
    assert!(matches!(
        again.unwrap_err().kind(),
        ErrorKind::AlreadyExists { .. }
    ));
}

#[tokio::test]
async fn corruption_is_detected_and_never_restored() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path()).await;
    let data: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
    s.put_artifact(&put("db.bak"), Box::pin(std::io::Cursor::new(data.clone())))
        .await
        .unwrap();
    let mut bytes = std::fs::read(dir.path().join("db.bak")).unwrap();
    bytes[100_000] ^= 0xff;
    std::fs::write(dir.path().join("db.bak"), &bytes).unwrap();

    let mut r = s.get_artifact("db.bak").await.unwrap();
    let err = r.read_to_end(&mut Vec::new()).await.unwrap_err();
    let err = crate::error::from_io("t", "t", err);
    assert!(
        matches!(err.kind(), ErrorKind::ChecksumMismatch { .. }),
        "{err}"
    );

    let target_dir = tempfile::tempdir().unwrap();
    let target = target_dir.path().join("live.db");
    std::fs::write(&target, b"live data").unwrap();
    let err = s
        .restore(
            "db.bak",
            &RestoreTarget::Other(target.display().to_string()),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::ChecksumMismatch { .. }),
        "{err}"
    );
    assert_eq!(
        std::fs::read(&target).unwrap(),
        b"live data",
        "the target is untouched"
    );
    assert_eq!(
        entries(target_dir.path()),
        vec!["live.db"],
        "no partial restore left behind"
    );
}

#[tokio::test]
async fn a_truncated_data_file_is_not_a_complete_backup() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path()).await;
    s.put_artifact(&put("a"), Box::pin(&b"0123456789"[..]))
        .await
        .unwrap();
    std::fs::write(dir.path().join("a"), b"01234").unwrap();
    assert!(matches!(
        s.describe("a").await.unwrap_err().kind(),
        ErrorKind::ChecksumMismatch { .. }
    ));
    assert!(s.list(&BackupFilter::default()).await.unwrap().is_empty());
}

#[tokio::test]
async fn crash_leftovers_never_list_and_do_not_block_a_new_put() {
    let dir = tempfile::tempdir().unwrap();
    // What a crash can leave: a temp file, a data file without sidecar, a torn sidecar.
    std::fs::write(dir.path().join(".tmp-x-0000000000000001"), b"half").unwrap();
    std::fs::write(dir.path().join("orphan"), b"no sidecar").unwrap();
    // Left by a crash long ago (a fresh one could be a write in progress).
    let long_ago = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
    std::fs::File::options()
        .write(true)
        .open(dir.path().join("orphan"))
        .unwrap()
        .set_modified(long_ago)
        .unwrap();
    std::fs::write(dir.path().join("torn"), b"data").unwrap();
    std::fs::write(
        dir.path().join("torn.meta.json"),
        b"{\"format_version\":1,\"id\":\"to",
    )
    .unwrap();
    let s = store(dir.path()).await;
    assert!(s.list(&BackupFilter::default()).await.unwrap().is_empty());
    assert!(matches!(
        s.describe("torn").await.unwrap_err().kind(),
        ErrorKind::Decode { .. }
    ));
    let info = s
        .put_artifact(&put("orphan"), Box::pin(&b"fresh"[..]))
        .await
        .unwrap();
    assert_eq!(info.size_bytes, Some(5));
    assert_eq!(s.list(&BackupFilter::default()).await.unwrap().len(), 1);
}

#[tokio::test]
async fn bad_ids_are_rejected_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path()).await;
    for id in [
        "",
        "../escape",
        "a/b",
        ".hidden",
        "x.meta.json",
        "sp ace",
        &"x".repeat(201),
    ] {
        let err = s
            .put_artifact(&put(id), Box::pin(&b"x"[..]))
            .await
            .unwrap_err();
        assert!(
            matches!(err.kind(), ErrorKind::InvalidInput { .. }),
            "{id}: {err}"
        );
    }
    assert!(entries(dir.path()).is_empty());
}

#[tokio::test]
async fn unusable_roots_are_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let err = FsBackupStore::open(&file).await.unwrap_err();
    assert!(
        matches!(
            err.kind(),
            ErrorKind::InvalidInput { .. } | ErrorKind::Io { .. }
        ),
        "{err}"
    );
    let err = FsBackupStore::open(file.join("below")).await.unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Io { .. }), "{err}");
    assert!(
        err.to_string().contains("a-file"),
        "the error names the path: {err}"
    );
}

#[tokio::test]
async fn restore_to_original_needs_a_recorded_source() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path()).await;
    s.put_artifact(&put("nosrc"), Box::pin(&b"x"[..]))
        .await
        .unwrap();
    let err = s
        .restore("nosrc", &RestoreTarget::Original)
        .await
        .unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::InvalidInput { .. }),
        "{err}"
    );
}

#[tokio::test]
async fn a_put_never_removes_the_data_of_another_put_in_progress() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path()).await;
    // Another writer has linked its data and not yet its sidecar.
    std::fs::write(dir.path().join("db.bak"), b"the other writer's bytes").unwrap();
    let err = s
        .put_artifact(&put("db.bak"), Box::pin(&b"mine"[..]))
        .await
        .unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Conflict { .. }), "{err}");
    assert_eq!(
        std::fs::read(dir.path().join("db.bak")).unwrap(),
        b"the other writer's bytes",
        "left alone"
    );
    let leftovers: Vec<String> = entries(dir.path())
        .into_iter()
        .filter(|n| n.starts_with(".tmp"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "our temp file is cleaned up: {leftovers:?}"
    );
}

#[tokio::test]
async fn temp_files_of_killed_writes_are_swept_but_never_a_live_one() {
    let dir = tempfile::tempdir().unwrap();
    let long_ago = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
    let old_temp = |name: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, vec![7u8; 4096]).unwrap();
        let f = std::fs::File::options().write(true).open(&path).unwrap();
        f.set_modified(long_ago).unwrap();
        f
    };
    // Two writes killed long ago, and one that is old but still held by a live writer (a slow
    // source that has not written for a while).
    drop(old_temp(".tmp-a.db-0000000000000001"));
    drop(old_temp(".tmp-b.db-0000000000000002"));
    let live = old_temp(".tmp-c.db-0000000000000003");
    live.lock().unwrap();
    // And a fresh one, which may be another process's write between open and lock.
    std::fs::write(dir.path().join(".tmp-d.db-0000000000000004"), b"new").unwrap();

    let s = store(dir.path()).await;
    assert_eq!(
        entries(dir.path()),
        [".tmp-c.db-0000000000000003", ".tmp-d.db-0000000000000004"],
        "opening the store swept the two leftovers"
    );

    // Before a put as well: a writer killed after the store was opened.
    drop(old_temp(".tmp-e.db-0000000000000005"));
    s.put_artifact(&put("f.db"), Box::pin(&b"data"[..]))
        .await
        .unwrap();
    assert!(!entries(dir.path()).contains(&".tmp-e.db-0000000000000005".to_string()));
    assert!(entries(dir.path()).contains(&".tmp-c.db-0000000000000003".to_string()));

    // Once the live writer is gone, its file goes at the next sweep.
    drop(live);
    assert_eq!(s.sweep_temp_files("test").await.unwrap(), 1);
    assert_eq!(
        entries(dir.path()),
        [".tmp-d.db-0000000000000004", "f.db", "f.db.meta.json"]
    );
}
