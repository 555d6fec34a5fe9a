//! The ops-core journal and run-lock suites against a real PostgreSQL, as for the embedded
//! FileJournal and FileRunLock; plus what only a database gives: a dead holder's lock is freed.

use ops_core::clock::{Clock, SystemClock};
use ops_core::engine::{JournalFilter, LockHolder, LockWait, RunLock};
use ops_core::testkit;
use ops_postgres::cluster::TestCluster;
use ops_postgres::{PgJournal, PgRunLock};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_journal_passes_the_suite_and_is_shared() {
    let cluster = TestCluster::start().unwrap_or_else(|e| panic!("{e}"));
    let db = cluster.database("ops_journal_suite").await.unwrap();
    let journal = PgJournal::new(db.clone()).await.unwrap();
    testkit::journal(&journal, "pg").await;
    // A second runner (another pool, as on another machine) sees the same history.
    let other = PgJournal::new(cluster.database_pool("ops_journal_suite").unwrap())
        .await
        .unwrap();
    let seen = ops_core::engine::Journal::events(&other, &JournalFilter::run("pg-order-run-a"))
        .await
        .unwrap();
    assert_eq!(seen.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lock_passes_the_suite_and_a_dead_holder_lets_go() {
    let cluster = TestCluster::start().unwrap_or_else(|e| panic!("{e}"));
    let db = cluster.database("ops_lock_suite").await.unwrap();
    let lock = PgRunLock::new(db.clone()).await.unwrap();
    testkit::run_lock(&lock, "rollout/api").await;

    // A runner takes the lock and dies without releasing it (its sessions close).
    let doomed = PgRunLock::new(db.clone()).await.unwrap();
    let holder = LockHolder::this_process("run-doomed", "rollout", SystemClock.now());
    doomed
        .acquire("rollout/web", &holder, LockWait::Fail)
        .await
        .unwrap();
    let other = PgRunLock::new(cluster.database_pool("ops_lock_suite").unwrap())
        .await
        .unwrap();
    let next = LockHolder::this_process("run-next", "rollout", SystemClock.now());
    let err = other
        .acquire("rollout/web", &next, LockWait::Fail)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("run-doomed"), "{err}");
    drop(doomed);
    let lease = other
        .acquire(
            "rollout/web",
            &next,
            LockWait::Wait(std::time::Duration::from_secs(10)),
        )
        .await
        .unwrap();
    assert_eq!(
        lease.recovered_from.map(|h| h.run_id),
        Some("run-doomed".to_string())
    );
}
