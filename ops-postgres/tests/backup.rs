//! Streamed logical backups against a real server: dump into a store, verify by restoring into
//! a scratch database, restore into another database, refuse a non-empty target, and never keep
//! a failed dump.

use std::collections::BTreeMap;

use ops_core::ErrorKind;
use ops_core::adapters::FsBackupStore;
use ops_core::contracts::{BackupFilter, BackupStore};
use ops_core::runbooks::Procedure;
use ops_postgres::cluster::{TestCluster, client_bin_dir};
use ops_postgres::{PgBackupStore, PgTools, Postgres, row_counts};
use std::sync::Arc;

async fn seeded(cluster: &TestCluster, name: &str) -> Postgres {
    let db = cluster.database(name).await.unwrap();
    db.client()
        .await
        .unwrap()
        .batch_execute(
            "CREATE TABLE orders (id bigserial PRIMARY KEY, total numeric NOT NULL, at timestamptz NOT NULL DEFAULT now());
             INSERT INTO orders (total) SELECT g * 1.5 FROM generate_series(1, 5000) g;
             CREATE SCHEMA billing;
             CREATE TABLE billing.\"Invoices\" (id int PRIMARY KEY, note text);
             INSERT INTO billing.\"Invoices\" SELECT g, 'n' || g FROM generate_series(1, 321) g;",
        )
        .await
        .unwrap();
    db
}

fn tools() -> PgTools {
    PgTools::new(client_bin_dir().expect("pg_dump and pg_restore: install postgresql-client"))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dump_streams_into_the_store_verifies_and_restores() {
    let cluster = TestCluster::start().unwrap_or_else(|e| panic!("{e}"));
    let db = seeded(&cluster, "shop").await;
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(FsBackupStore::open(dir.path()).await.unwrap());
    let backups = PgBackupStore::new(db.clone(), tools(), store.clone());
    // What dry-run plans say the backup will be.
    assert_eq!(
        backups.created_as().as_deref(),
        Some("zstd-3 (pg_dump -Fc -Z0, then zstd)")
    );

    let info = backups
        .backup("shop", Some("shop-1.dump".into()), BTreeMap::new())
        .await
        .unwrap();
    assert!(info.size_bytes.unwrap() > 1000 && info.checksum.is_some());
    assert_eq!(info.source.as_deref(), Some("postgres:shop"));

    let verdict = backups.verify("shop-1.dump").await.unwrap();
    assert!(verdict.contains("2 tables, 5321 rows"), "{verdict}");
    let admin = cluster.database_pool("postgres").unwrap();
    let scratch: i64 = admin
        .client()
        .await
        .unwrap()
        .query_one(
            "SELECT count(*) FROM pg_database WHERE datname LIKE 'ops_verify_%'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(scratch, 0, "the scratch database is dropped");

    let copy = cluster.database("shop_copy").await.unwrap();
    backups
        .restore_into("shop-1.dump", "shop_copy", false)
        .await
        .unwrap();
    assert_eq!(
        row_counts(&copy).await.unwrap(),
        row_counts(&db).await.unwrap()
    );
    let err = backups
        .restore_into("shop-1.dump", "shop_copy", false)
        .await
        .unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::Conflict { .. }),
        "a non-empty target is refused: {err}"
    );
    backups
        .restore_into("shop-1.dump", "shop_copy", true)
        .await
        .unwrap();
    assert_eq!(
        row_counts(&copy).await.unwrap()["public.orders"],
        5000,
        "clean replaces, not doubles"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_dump_is_never_a_backup() {
    let cluster = TestCluster::start().unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(FsBackupStore::open(dir.path()).await.unwrap());
    // A database that does not exist: pg_dump fails.
    let server = Postgres::new(cluster.config("postgres").unwrap()).unwrap();
    let err = PgBackupStore::new(server, tools(), store.clone())
        .backup("no_such_db", Some("bad.dump".into()), BTreeMap::new())
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("no_such_db"),
        "the dump's stderr is in the error: {err}"
    );
    assert!(
        store
            .list(&BackupFilter::default())
            .await
            .unwrap()
            .is_empty(),
        "nothing was kept"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupted_backup_is_refused_before_the_target_is_touched() {
    let cluster = TestCluster::start().unwrap_or_else(|e| panic!("{e}"));
    let db = seeded(&cluster, "shop2").await;
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(FsBackupStore::open(dir.path()).await.unwrap());
    let backups = PgBackupStore::new(db, tools(), store.clone());
    backups
        .backup("shop2", Some("s.dump".into()), BTreeMap::new())
        .await
        .unwrap();
    // Flip a byte in the middle of the stored dump (bit rot on the backup disk).
    let file = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| p.file_name().is_some_and(|n| n == "s.dump"))
        .expect("the artifact file");
    let mut bytes = std::fs::read(&file).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&file, bytes).unwrap();
    let target = cluster.database("shop2_restore").await.unwrap();
    let err = backups
        .restore_into("s.dump", "shop2_restore", false)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err.kind(),
            ErrorKind::ChecksumMismatch { .. } | ErrorKind::VerificationFailed { .. }
        ),
        "{err}"
    );
    let counts = row_counts(&target).await.unwrap();
    assert!(
        counts.is_empty(),
        "nothing of a corrupted backup is committed: {counts:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_restore_runbook_takes_a_pre_restore_backup_on_postgres() {
    use ops_core::contracts::{CreateBackup, RestoreTarget};
    use ops_core::engine::{Mode, RunOutcome, Runner};
    use ops_core::runbooks::{Restore, RestoreConfig};
    use std::sync::Arc;

    let cluster = TestCluster::start().unwrap_or_else(|e| panic!("{e}"));
    let db = seeded(&cluster, "live").await;
    let dir = tempfile::tempdir().unwrap();
    let inner = Arc::new(FsBackupStore::open(dir.path()).await.unwrap());
    let store = Arc::new(ops_postgres::PgBackupStore::new(
        cluster.database_pool("postgres").unwrap(),
        tools(),
        inner.clone(),
    ));
    let good = store
        .create(&CreateBackup {
            source: "live".into(),
            name: Some("live-good".into()),
            labels: BTreeMap::new(),
        })
        .await
        .unwrap();
    assert!(
        good.id.starts_with("live-good-") && good.id.ends_with(".dump"),
        "the name is a stem: {}",
        good.id
    );

    // A bad migration later.
    db.client()
        .await
        .unwrap()
        .batch_execute("DELETE FROM orders WHERE id % 2 = 0")
        .await
        .unwrap();
    assert_eq!(row_counts(&db).await.unwrap()["public.orders"], 2500);

    let current = CreateBackup {
        source: "live".into(),
        name: None,
        labels: BTreeMap::new(),
    };
    let report = Restore::new(
        store.clone(),
        good.id.clone(),
        RestoreTarget::Original,
        current,
        RestoreConfig::default(),
    )
    .run(&Runner::new(), Mode::Execute)
    .await
    .unwrap();
    assert_eq!(
        report.outcome,
        Some(RunOutcome::Succeeded),
        "{}",
        report.to_markdown()
    );
    assert_eq!(
        row_counts(&db).await.unwrap()["public.orders"],
        5000,
        "the good backup is back"
    );
    let safety: ops_core::contracts::BackupInfo = report.output("pre-restore-backup").unwrap();
    let kept = inner
        .describe(&safety.id)
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", safety.id));
    assert!(
        kept.size_bytes.unwrap() > 0,
        "the state before the restore was kept"
    );
    // And it holds the bad state: restoring it elsewhere shows the deleted rows missing.
    let check = cluster.database("live_check").await.unwrap();
    store
        .restore(&safety.id, &RestoreTarget::Other("live_check".into()))
        .await
        .unwrap();
    assert_eq!(row_counts(&check).await.unwrap()["public.orders"], 2500);

    // A second restore of the same database (within the same second, even) takes a safety
    // copy of its own instead of failing on the first one's name.
    let again = Restore::new(
        store.clone(),
        good.id.clone(),
        RestoreTarget::Original,
        CreateBackup {
            source: "live".into(),
            name: None,
            labels: BTreeMap::new(),
        },
        RestoreConfig::default(),
    )
    .run(&Runner::new(), Mode::Execute)
    .await
    .unwrap();
    assert_eq!(
        again.outcome,
        Some(RunOutcome::Succeeded),
        "{}",
        again.to_markdown()
    );
    let second: ops_core::contracts::BackupInfo = again.output("pre-restore-backup").unwrap();
    assert_ne!(second.id, safety.id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_backup_store_passes_the_backup_store_suite() {
    use ops_core::contracts::{CreateBackup, RestoreTarget};
    use std::sync::Arc;
    let cluster = TestCluster::start().unwrap_or_else(|e| panic!("{e}"));
    seeded(&cluster, "suite_src").await;
    cluster.database("suite_restore").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let inner = Arc::new(FsBackupStore::open(dir.path()).await.unwrap());
    let store = ops_postgres::PgBackupStore::new(
        cluster.database_pool("postgres").unwrap(),
        tools(),
        inner,
    );
    let fixture = ops_core::testkit::BackupFixture {
        create_source: Some(CreateBackup {
            source: "suite_src".into(),
            name: None,
            labels: BTreeMap::new(),
        }),
        restore_target: Some(RestoreTarget::Other("suite_restore".into())),
        ..ops_core::testkit::BackupFixture::new("suite")
    };
    ops_core::testkit::backup_store(&store, &fixture).await;
}
