//! The Cloud SQL restore drill and backup-configuration check of seeds 000 and 001, on the
//! simulator, with a real PostgreSQL standing in for the restored instance's database: the
//! rows are counted by SQL, not taken from the simulator.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ops_core::clock::ManualClock;
use ops_core::contracts::HealthStatus;
use ops_core::engine::{Mode, RunOutcome, Runner};
use ops_core::runbooks::Procedure;
use ops_core::testkit;
use ops_gcp::CloudSql;
use ops_gcp::sim::GcpSim;
use ops_gcp::sql::drill::{
    BackupPolicy, BackupPolicyCheck, DrillConfig, DrillSource, RestoreDrill, RowCounter,
};
use ops_gcp::sql::instances::{SCRATCH_MARK, ScratchInstance, SqlInstance};
use ops_postgres::Postgres;
use ops_postgres::cluster::TestCluster;

/// Counts the rows of the database the restored instance would serve: a real cluster seeded
/// with the source's tables. It records which instance it was asked about.
struct LocalDatabase {
    db: Postgres,
    asked: std::sync::Mutex<Vec<SqlInstance>>,
}

#[async_trait]
impl RowCounter for LocalDatabase {
    async fn row_counts(&self, instance: &SqlInstance) -> ops_core::Result<BTreeMap<String, i64>> {
        self.asked.lock().unwrap().push(instance.clone());
        ops_postgres::row_counts(&self.db).await
    }
}

async fn fixture() -> (
    GcpSim,
    Arc<ManualClock>,
    CloudSql,
    TestCluster,
    Arc<LocalDatabase>,
) {
    let (sim, clock, sql) = support::sql_sim(Duration::from_secs(90), 3).await;
    let cluster = tokio::task::spawn_blocking(TestCluster::start)
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("{e}"));
    let db = cluster.database("restored").await.unwrap();
    db.client()
        .await
        .unwrap()
        .batch_execute(
            "CREATE TABLE orders(id int); INSERT INTO orders SELECT generate_series(1, 2500);
             CREATE TABLE users(id int); INSERT INTO users SELECT generate_series(1, 40);",
        )
        .await
        .unwrap();
    let counter = Arc::new(LocalDatabase {
        db,
        asked: Default::default(),
    });
    (sim, clock, sql, cluster, counter)
}

fn tables(min_orders: i64) -> BTreeMap<String, i64> {
    [
        ("public.orders".to_string(), min_orders),
        ("public.users".to_string(), 1),
    ]
    .into()
}

#[tokio::test]
async fn the_latest_backup_is_restored_counted_and_the_scratch_instance_deleted() {
    let (sim, clock, sql, _cluster, counter) = fixture().await;
    let drill = RestoreDrill::new(
        sql.clone(),
        DrillConfig {
            tables: tables(1000),
            ..DrillConfig::default()
        },
        counter.clone(),
    );
    let runner = Runner::new().with_clock(clock.clone());

    let plan = drill.run(&runner, Mode::DryRun).await.unwrap();
    assert_eq!(
        sim.sql_instances(),
        ["main-db"],
        "a dry run creates nothing"
    );
    assert!(plan.report.to_markdown().contains("create-scratch"));

    let done = drill.run(&runner, Mode::Execute).await.unwrap();
    assert_eq!(
        done.report.outcome,
        Some(RunOutcome::Succeeded),
        "{}",
        done.report.to_markdown()
    );
    let report = done.summary.unwrap();
    assert_eq!(report.counts["public.orders"], 2500);
    assert!(report.restored.starts_with("backup run "), "{report:?}");
    assert!(
        report
            .instance
            .starts_with(&format!("main-db{SCRATCH_MARK}"))
    );
    let asked = counter.asked.lock().unwrap().clone();
    assert_eq!(asked.len(), 1);
    assert_eq!(
        asked[0].name, report.instance,
        "the rows were counted on the scratch instance"
    );
    assert_eq!(asked[0].state.as_deref(), Some("RUNNABLE"));
    assert!(asked[0].address().is_some());
    assert_eq!(
        sim.sql_instances(),
        ["main-db"],
        "the scratch instance is gone"
    );
    let newest = sim.sql_restored_from(&report.instance);
    assert!(newest.is_none(), "deleted with its restore");
}

#[tokio::test]
async fn too_few_rows_fail_the_drill_and_the_scratch_instance_is_still_deleted() {
    let (sim, clock, sql, _cluster, counter) = fixture().await;
    let drill = RestoreDrill::new(
        sql,
        DrillConfig {
            tables: [
                ("public.orders".to_string(), 1_000_000),
                ("public.absent".to_string(), 0),
            ]
            .into(),
            ..DrillConfig::default()
        },
        counter,
    );
    let done = drill
        .run(&Runner::new().with_clock(clock.clone()), Mode::Execute)
        .await
        .unwrap();
    let md = done.report.to_markdown();
    assert_ne!(done.report.outcome, Some(RunOutcome::Succeeded), "{md}");
    assert!(
        md.contains("public.orders has 2500 rows, expected at least 1000000"),
        "{md}"
    );
    assert!(
        md.contains("public.absent is missing from the restore"),
        "{md}"
    );
    assert_eq!(
        sim.sql_instances(),
        ["main-db"],
        "compensation deleted the scratch instance"
    );
}

#[tokio::test]
async fn a_point_in_time_drill_clones_within_the_window_and_refuses_outside_it() {
    let (sim, clock, sql, _cluster, counter) = fixture().await;
    let runner = Runner::new().with_clock(clock.clone());
    let drill = RestoreDrill::new(
        sql.clone(),
        DrillConfig {
            source: DrillSource::PointInTime {
                ago: Duration::from_secs(2 * 3600),
            },
            tables: tables(1),
        },
        counter.clone(),
    );
    let done = drill.run(&runner, Mode::Execute).await.unwrap();
    assert_eq!(
        done.report.outcome,
        Some(RunOutcome::Succeeded),
        "{}",
        done.report.to_markdown()
    );
    let report = done.summary.unwrap();
    assert!(
        report
            .restored
            .starts_with("point in time 2026-11-23T07:00:00"),
        "{report:?}"
    );

    // Point-in-time recovery switched off: the clone is refused, nothing is left behind.
    sim.set_sql_backup_setting(
        "main-db",
        "pointInTimeRecoveryEnabled",
        serde_json::json!(false),
    );
    let done = drill.run(&runner, Mode::Execute).await.unwrap();
    let md = done.report.to_markdown();
    assert_ne!(done.report.outcome, Some(RunOutcome::Succeeded), "{md}");
    assert!(md.contains("not enabled"), "{md}");
    assert_eq!(sim.sql_instances(), ["main-db"]);

    // Beyond the 7 days of logs the instance keeps.
    sim.set_sql_backup_setting(
        "main-db",
        "pointInTimeRecoveryEnabled",
        serde_json::json!(true),
    );
    let scratch = ScratchInstance::name_for("main-db", "2026-11-23T09:00:00Z".parse().unwrap());
    let err = sql
        .clone_at(&scratch, "2026-11-01T00:00:00Z".parse().unwrap())
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("point-in-time recovery window"),
        "{err}"
    );
}

#[tokio::test]
async fn only_scratch_instances_are_ever_deleted() {
    let (sim, _clock, sql, _cluster, _counter) = fixture().await;
    for name in ["main-db", "main-dbx-drill-1", "other-drill-1"] {
        let err = sql
            .delete_scratch(&ScratchInstance { name: name.into() })
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("not a drill's scratch instance"),
            "{name}: {err}"
        );
    }
    assert!(ScratchInstance::adopt("main-db", "main-db-drill-202611230900").is_some());
    assert!(ScratchInstance::adopt("main-db", "main-db").is_none());
    assert_eq!(sim.sql_instances(), ["main-db"]);
}

#[tokio::test]
async fn the_backup_configuration_is_checked_against_the_policy() {
    let (sim, clock, sql, _cluster, _counter) = fixture().await;
    let policy = BackupPolicy {
        start_time: Some("03:00".into()),
        ..BackupPolicy::default()
    };
    let check = BackupPolicyCheck::new(sql.clone(), policy.clone())
        .unwrap()
        .with_clock(clock.clone());
    testkit::health_probe(&check, HealthStatus::Healthy).await;

    sim.set_sql_backup_setting(
        "main-db",
        "transactionLogRetentionDays",
        serde_json::json!(3),
    );
    let report = testkit::health_probe(&check, HealthStatus::Degraded).await;
    assert!(
        report
            .checks
            .iter()
            .any(|c| c.detail == "3 days of transaction logs, at least 7 expected")
    );

    sim.set_sql_backup_setting("main-db", "enabled", serde_json::json!(false));
    sim.set_sql_backup_setting("main-db", "startTime", serde_json::json!("05:00"));
    let report = testkit::health_probe(&check, HealthStatus::Unhealthy).await;
    let details: Vec<&str> = report.checks.iter().map(|c| c.detail.as_str()).collect();
    assert!(
        details.contains(&"automated backups are OFF"),
        "{details:?}"
    );
    assert!(
        details.contains(&"starts at 05:00 UTC, expected 03:00"),
        "{details:?}"
    );

    let bad = BackupPolicy {
        start_time: Some("3am".into()),
        ..policy
    };
    assert!(BackupPolicyCheck::new(sql, bad).is_err());
}

#[tokio::test]
async fn a_drill_to_a_timestamp_clones_that_moment_and_refuses_the_future() {
    let (_sim, clock, sql, _cluster, counter) = fixture().await;
    let runner = Runner::new().with_clock(clock.clone());
    let before_migration = "2026-11-22T17:45:00Z".parse().unwrap();
    let drill = RestoreDrill::new(
        sql.clone(),
        DrillConfig {
            source: DrillSource::PointInTimeAt {
                at: before_migration,
            },
            tables: tables(1),
        },
        counter.clone(),
    );
    let done = drill.run(&runner, Mode::Execute).await.unwrap();
    assert_eq!(
        done.report.outcome,
        Some(RunOutcome::Succeeded),
        "{}",
        done.report.to_markdown()
    );
    let report = done.summary.unwrap();
    assert!(
        report
            .restored
            .starts_with("point in time 2026-11-22T17:45:00"),
        "{report:?}"
    );

    let future = RestoreDrill::new(
        sql,
        DrillConfig {
            source: DrillSource::PointInTimeAt {
                at: "2027-01-01T00:00:00Z".parse().unwrap(),
            },
            tables: tables(1),
        },
        counter,
    );
    let done = future.run(&runner, Mode::Execute).await.unwrap();
    assert!(done.report.to_markdown().contains("is in the future"));
}
