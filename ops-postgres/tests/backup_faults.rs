//! Backups of a database that is being written, hostile database names, corrupt dumps and
//! killed restore tests, against a real server.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use ops_core::ErrorKind;
use ops_core::adapters::FsBackupStore;
use ops_core::codec::Codec;
use ops_core::contracts::{BackupStore, CreateBackup, PutArtifact, RestoreTarget};
use ops_core::engine::{FileRunLock, LockWait, Mode, RunOutcome, Runner, StepStatus};
use ops_core::runbooks::Finished;
use ops_core::runbooks::Procedure;
use ops_core::runbooks::{
    BackupAndVerify, BackupSource, BackupVerifyConfig, Restore, RestoreConfig,
};
use ops_postgres::cluster::{TestCluster, client_bin_dir};
use ops_postgres::counts::ROW_COUNTS_LABEL;
use ops_postgres::scratch::{SCRATCH_PREFIX, reap};
use ops_postgres::{PgBackupStore, PgTools, Postgres, row_counts};

fn tools() -> PgTools {
    PgTools::new(client_bin_dir().expect("pg_dump and pg_restore: install postgresql-client"))
        .unwrap()
}

async fn seeded(cluster: &TestCluster, name: &str) -> Postgres {
    let db = cluster.database(name).await.unwrap();
    db.client()
        .await
        .unwrap()
        .batch_execute(
            "CREATE TABLE events (id bigserial PRIMARY KEY, payload text NOT NULL);
             INSERT INTO events (payload) SELECT repeat('x', 200) FROM generate_series(1, 20000);
             CREATE TABLE accounts (id int PRIMARY KEY, balance bigint NOT NULL);
             INSERT INTO accounts SELECT g, 0 FROM generate_series(1, 1000) g;",
        )
        .await
        .unwrap();
    db
}

/// Inserts and updates as fast as one connection can until stopped; counts its inserts.
fn write_traffic(
    db: Postgres,
    stop: Arc<AtomicBool>,
    inserted: Arc<AtomicU64>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let client = db.client().await.unwrap();
        // Bounded: at most 200 000 statements, whatever happens to the flag.
        for i in 0..200_000u64 {
            if stop.load(Ordering::SeqCst) {
                break;
            }
            client
                .batch_execute(&format!(
                    "INSERT INTO events (payload) VALUES ('w{i}');
                     UPDATE accounts SET balance = balance + 1 WHERE id = {};",
                    i % 1000 + 1
                ))
                .await
                .unwrap();
            inserted.fetch_add(1, Ordering::SeqCst);
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_under_write_traffic_verifies_against_its_own_snapshot() {
    let cluster = TestCluster::start().unwrap_or_else(|e| panic!("{e}"));
    let db = seeded(&cluster, "busy").await;
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(FsBackupStore::open(dir.path()).await.unwrap());

    let (stop, inserted) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicU64::new(0)),
    );
    let writer = write_traffic(db.clone(), stop.clone(), inserted.clone());
    // Readiness, not a sleep: the traffic is flowing before the backup starts.
    while inserted.load(Ordering::SeqCst) < 50 {
        tokio::task::yield_now().await;
    }
    let before = inserted.load(Ordering::SeqCst);
    // The runbook's backup step is PgBackupStore::create; its verification, the same store
    // as a RestoreTest.
    let pg_store = Arc::new(PgBackupStore::new(db.clone(), tools(), store.clone()));
    let run = BackupAndVerify::new(
        "busy",
        pg_store.clone(),
        BackupSource::Create(CreateBackup {
            source: "postgres:busy".into(),
            name: None,
            labels: BTreeMap::new(),
        }),
        BackupVerifyConfig::default(),
    )
    .restore_test(pg_store.clone());
    let Finished {
        report,
        summary: info,
    } = run.run(&Runner::new(), Mode::Execute).await.unwrap();
    let during = inserted.load(Ordering::SeqCst) - before;
    stop.store(true, Ordering::SeqCst);
    writer.await.unwrap();
    assert!(during > 0, "the database was written during the backup");
    assert_eq!(
        report.outcome,
        Some(RunOutcome::Succeeded),
        "{}",
        report.to_markdown()
    );
    let info = info.unwrap();
    assert!(
        info.labels.contains_key(ROW_COUNTS_LABEL),
        "{:?}",
        info.labels
    );
    let verdict: String = report.output("restore-test").unwrap();
    assert!(
        verdict.contains("as counted in the dump's snapshot"),
        "{verdict}"
    );

    // Verification never looks at the live database: emptying a table afterwards changes
    // nothing about the backup's verdict.
    db.client()
        .await
        .unwrap()
        .batch_execute("TRUNCATE events")
        .await
        .unwrap();
    pg_store.verify(&info.id).await.unwrap();

    // A backup whose restore does not hold what was counted fails, naming the table.
    let sidecar = dir.path().join(format!("{}.meta.json", info.id));
    let mut meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&sidecar).unwrap()).unwrap();
    let mut counts: BTreeMap<String, i64> =
        serde_json::from_str(meta["labels"][ROW_COUNTS_LABEL].as_str().unwrap()).unwrap();
    *counts.get_mut("public.accounts").unwrap() += 1;
    meta["labels"][ROW_COUNTS_LABEL] =
        serde_json::Value::String(serde_json::to_string(&counts).unwrap());
    std::fs::write(&sidecar, serde_json::to_vec(&meta).unwrap()).unwrap();
    let err = pg_store.verify(&info.id).await.unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::VerificationFailed { .. }),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("public.accounts: recorded 1001, restored 1000"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_database_names_never_reach_the_tools_as_connection_strings() {
    let cluster = TestCluster::start().unwrap_or_else(|e| panic!("{e}"));
    let admin = cluster.database_pool("postgres").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let inner = Arc::new(FsBackupStore::open(dir.path()).await.unwrap());
    let store = PgBackupStore::new(admin.clone(), tools(), inner);
    // Read by libpq as a conninfo, the first would send pg_dump to port 1 (another server);
    // the second has a quote and a backslash to escape.
    for name in ["host=127.0.0.1 port=1 dbname=x", "o'brien \\ co"] {
        let db = cluster.database(name).await.unwrap();
        db.client()
            .await
            .unwrap()
            .batch_execute("CREATE TABLE marker (v text); INSERT INTO marker VALUES ('right one');")
            .await
            .unwrap();
        let info = store
            .create(&CreateBackup {
                source: format!("postgres:{name}"),
                name: Some("hostile".into()),
                labels: BTreeMap::new(),
            })
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let copy = cluster.database("hostile_copy").await.unwrap();
        store
            .restore(&info.id, &RestoreTarget::Other("hostile_copy".into()))
            .await
            .unwrap();
        let v: String = copy
            .client()
            .await
            .unwrap()
            .query_one("SELECT v FROM marker", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(v, "right one", "{name}");
        admin
            .client()
            .await
            .unwrap()
            .batch_execute("DROP DATABASE hostile_copy WITH (FORCE)")
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_dump_is_named_corrupt_with_pg_restores_own_reason() {
    let cluster = TestCluster::start().unwrap_or_else(|e| panic!("{e}"));
    let db = seeded(&cluster, "rot").await;
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(FsBackupStore::open(dir.path()).await.unwrap());
    // pg_dump's own compression, as before zstd: the damage is inside its archive.
    let backups = PgBackupStore::new(db, tools(), store.clone())
        .with_codec(Codec::Raw)
        .unwrap();
    backups
        .backup("rot", Some("good.dump".into()), BTreeMap::new())
        .await
        .unwrap();
    // Damaged before it was stored (a bad disk on the way): its checksum matches its bytes,
    // so only pg_restore can tell.
    let mut bytes = std::fs::read(dir.path().join("good.dump")).unwrap();
    let at = bytes.len() * 2 / 3;
    for b in &mut bytes[at..at + 64] {
        *b ^= 0x5a;
    }
    let req = PutArtifact {
        id: "rotten.dump".into(),
        source: Some("postgres:rot".into()),
        labels: BTreeMap::new(),
    };
    store
        .put_artifact(&req, Box::pin(std::io::Cursor::new(bytes)))
        .await
        .unwrap();
    cluster.database("rot_restore").await.unwrap();
    let err = backups
        .restore_into("rotten.dump", "rot_restore", false)
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err.kind(), ErrorKind::VerificationFailed { .. }),
        "{text}"
    );
    assert!(text.contains("corrupt backup rotten.dump"), "{text}");
    assert!(
        text.contains("pg_restore"),
        "pg_restore's own reason: {text}"
    );
    assert!(!text.contains("Broken pipe"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zstd_dumps_are_smaller_restore_whole_and_a_damaged_frame_is_a_corrupt_backup() {
    let cluster = TestCluster::start().unwrap_or_else(|e| panic!("{e}"));
    let db = seeded(&cluster, "zs").await;
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(FsBackupStore::open(dir.path()).await.unwrap());
    let zstd = PgBackupStore::new(db.clone(), tools(), store.clone());
    let zlib = PgBackupStore::new(db, tools(), store.clone())
        .with_codec(Codec::Raw)
        .unwrap();
    let small = zstd
        .backup("zs", Some("zstd.dump".into()), BTreeMap::new())
        .await
        .unwrap();
    let old = zlib
        .backup("zs", Some("zlib.dump".into()), BTreeMap::new())
        .await
        .unwrap();
    assert_eq!(small.labels.get("codec").map(String::as_str), Some("zstd"));
    assert!(
        small.size_bytes.unwrap() < old.size_bytes.unwrap(),
        "zstd {:?} < pg_dump -Fc {:?}",
        small.size_bytes,
        old.size_bytes
    );
    // Both restore, the zstd one through the decompressing stage.
    for (id, target) in [("zstd.dump", "zs_a"), ("zlib.dump", "zs_b")] {
        cluster.database(target).await.unwrap();
        zstd.restore_into(id, target, false).await.unwrap();
        let copy = cluster.database_pool(target).unwrap();
        assert_eq!(
            row_counts(&copy).await.unwrap().get("public.events"),
            Some(&20_000),
            "{id}"
        );
    }
    // A dump written before compression existed: no codec label at all.
    let mut bytes = Vec::new();
    tokio::io::AsyncReadExt::read_to_end(
        &mut store.get_artifact("zlib.dump").await.unwrap(),
        &mut bytes,
    )
    .await
    .unwrap();
    let legacy = PutArtifact {
        id: "legacy.dump".into(),
        source: Some("postgres:zs".into()),
        labels: BTreeMap::new(),
    };
    store
        .put_artifact(&legacy, Box::pin(std::io::Cursor::new(bytes)))
        .await
        .unwrap();
    cluster.database("zs_c").await.unwrap();
    zstd.restore_into("legacy.dump", "zs_c", false)
        .await
        .unwrap();

    // A zstd dump damaged before it was stored (its store checksum matches): the frame check
    // names it corrupt, and the target is untouched.
    let mut bytes = Vec::new();
    tokio::io::AsyncReadExt::read_to_end(
        &mut store.get_artifact("zstd.dump").await.unwrap(),
        &mut bytes,
    )
    .await
    .unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x5a;
    let rotten = PutArtifact {
        id: "rotten-zstd.dump".into(),
        source: Some("postgres:zs".into()),
        labels: small.labels.clone(),
    };
    store
        .put_artifact(&rotten, Box::pin(std::io::Cursor::new(bytes)))
        .await
        .unwrap();
    let target = cluster.database("zs_d").await.unwrap();
    let err = zstd
        .restore_into("rotten-zstd.dump", "zs_d", false)
        .await
        .unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::VerificationFailed { .. }),
        "{err}"
    );
    assert!(
        err.to_string().contains("corrupt backup rotten-zstd.dump"),
        "{err}"
    );
    assert!(
        row_counts(&target).await.unwrap().is_empty(),
        "nothing was committed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_checks_the_whole_backup_before_touching_anything() {
    let cluster = TestCluster::start().unwrap_or_else(|e| panic!("{e}"));
    let db = seeded(&cluster, "victim").await;
    let dir = tempfile::tempdir().unwrap();
    let inner = Arc::new(FsBackupStore::open(dir.path().join("store")).await.unwrap());
    let store = Arc::new(PgBackupStore::new(
        cluster.database_pool("postgres").unwrap(),
        tools(),
        inner.clone(),
    ));
    let source = CreateBackup {
        source: "postgres:victim".into(),
        name: None,
        labels: BTreeMap::new(),
    };
    let good = store.create(&source).await.unwrap();
    let file = dir.path().join("store").join(&good.id);
    let mut bytes = std::fs::read(&file).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&file, bytes).unwrap();
    let before = inner.list(&Default::default()).await.unwrap().len();

    // A target named like a database URL is a valid lock key too.
    let locks = Arc::new(FileRunLock::open(dir.path().join("locks")).await.unwrap());
    let runner = Runner::new().with_lock(locks, LockWait::Fail);
    let report = Restore::new(
        store.clone(),
        good.id.clone(),
        RestoreTarget::Original,
        source,
        RestoreConfig::default(),
    )
    .run(&runner, Mode::Execute)
    .await
    .unwrap();
    assert_eq!(
        report.outcome,
        Some(RunOutcome::Failed),
        "{}",
        report.to_markdown()
    );
    let status = |s: &str| report.steps.iter().find(|x| x.name == s).map(|x| x.status);
    assert_eq!(status("check-backup"), Some(StepStatus::Failed));
    assert_eq!(status("pre-restore-backup"), Some(StepStatus::NotReached));
    assert_eq!(
        inner.list(&Default::default()).await.unwrap().len(),
        before,
        "no safety copy was taken of a database a corrupt backup would never replace"
    );
    assert_eq!(row_counts(&db).await.unwrap()["public.events"], 20000);
    assert!(
        inner
            .describe(&good.id)
            .await
            .unwrap()
            .verification
            .is_failed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scratch_databases_of_killed_restore_tests_are_dropped_but_never_a_live_one() {
    let cluster = TestCluster::start().unwrap_or_else(|e| panic!("{e}"));
    let db = seeded(&cluster, "src").await;
    let admin = cluster.database_pool("postgres").unwrap();
    let sql = |s: String| {
        let admin = admin.clone();
        async move {
            admin
                .client()
                .await
                .unwrap()
                .batch_execute(&s)
                .await
                .unwrap()
        }
    };
    let comment = "ops scratch database for a restore test of src";
    // Left by a test killed with -9: nobody holds its lock.
    let dead = format!("{SCRATCH_PREFIX}deadbeef");
    sql(format!("CREATE DATABASE {dead}")).await;
    sql(format!("COMMENT ON DATABASE {dead} IS '{comment}'")).await;
    // A test still running elsewhere: its session holds the lock.
    let live = format!("{SCRATCH_PREFIX}0000beef");
    sql(format!("CREATE DATABASE {live}")).await;
    sql(format!("COMMENT ON DATABASE {live} IS '{comment}'")).await;
    let holder = db.dedicated().await.unwrap();
    holder
        .execute(
            "SELECT pg_advisory_lock(hashtextextended($1, 0))",
            &[&format!("ops-scratch:{live}")],
        )
        .await
        .unwrap();
    // Another source's scratch database, and a database that only looks like one.
    let other = format!("{SCRATCH_PREFIX}0ther000");
    sql(format!("CREATE DATABASE {other}")).await;
    sql(format!(
        "COMMENT ON DATABASE {other} IS 'ops scratch database for a restore test of elsewhere'"
    ))
    .await;
    let lookalike = format!("{SCRATCH_PREFIX}users");
    sql(format!("CREATE DATABASE {lookalike}")).await;

    let dropped = reap(&db, "src").await.unwrap();
    assert_eq!(dropped, vec![dead.clone()]);
    let names: Vec<String> = admin
        .client()
        .await
        .unwrap()
        .query("SELECT datname FROM pg_database", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(!names.contains(&dead));
    for kept in [&live, &other, &lookalike] {
        assert!(names.contains(kept), "{kept} kept");
    }
    // And a verification reaps before it starts, then leaves nothing of its own.
    drop(holder);
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(FsBackupStore::open(dir.path()).await.unwrap());
    let backups = PgBackupStore::new(db, tools(), store.clone());
    backups
        .backup("src", Some("src.dump".into()), BTreeMap::new())
        .await
        .unwrap();
    backups.verify("src.dump").await.unwrap();
    let left: i64 = admin
        .client()
        .await
        .unwrap()
        .query_one(
            "SELECT count(*) FROM pg_database WHERE shobj_description(oid, 'pg_database') = $1",
            &[&comment],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        left, 0,
        "the live one's session ended, so it went too; the test left none"
    );
}
