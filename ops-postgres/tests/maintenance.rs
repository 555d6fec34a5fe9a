//! The maintenance runbook against a real server: a dry run counts and changes nothing, a run
//! deletes in batches, vacuums, reports the missing extension plainly, and terminates idle
//! connections but never its own.

use std::time::Duration;

use ops_core::engine::{Mode, RunOutcome, Runner};
use ops_core::runbooks::Procedure;
use ops_core::runbooks::RunbookConfig;
use ops_postgres::cluster::TestCluster;
use ops_postgres::{MaintenanceConfig, PgMaintenance, SlowStatements};

const CONFIG: &str = r#"
vacuum = ["events"]
slow_statements = 5
terminate_idle_after = "0s"
[[retention]]
table = "events"
column = "created_at"
older_than = "90d"
batch = 700
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_counts_then_the_run_deletes_in_batches() {
    let cluster = TestCluster::start().unwrap_or_else(|e| panic!("{e}"));
    let db = cluster.database("ops_maint").await.unwrap();
    db.client()
        .await
        .unwrap()
        .batch_execute(
            "CREATE TABLE events (id bigserial PRIMARY KEY, created_at timestamptz NOT NULL, body text);
             INSERT INTO events (created_at, body) SELECT now() - interval '200 days', 'old ' || g FROM generate_series(1, 2500) g;
             INSERT INTO events (created_at, body) SELECT now() - interval '10 days', 'new ' || g FROM generate_series(1, 400) g;",
        )
        .await
        .unwrap();
    let config = MaintenanceConfig::from_toml(CONFIG).unwrap();
    let maintenance = PgMaintenance::new(db.clone(), config);

    let plan = maintenance.run(&Runner::new(), Mode::DryRun).await.unwrap();
    assert_eq!(
        plan.output::<i64>("count-events"),
        Some(2500),
        "a dry run counts what would go"
    );
    let left: i64 = db
        .client()
        .await
        .unwrap()
        .query_one("SELECT count(*) FROM events", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 2900, "and deletes nothing");

    // An idle session of someone else's, which the run terminates.
    let idle = db.dedicated().await.unwrap();
    idle.batch_execute("SELECT 1").await.unwrap();
    ops_core::clock::Clock::sleep(&ops_core::clock::SystemClock, Duration::from_millis(50)).await;

    let report = maintenance
        .run(&Runner::new(), Mode::Execute)
        .await
        .unwrap();
    assert_eq!(
        report.outcome,
        Some(RunOutcome::Succeeded),
        "{}",
        report.to_markdown()
    );
    assert_eq!(report.output::<i64>("retain-events"), Some(2500));
    let left: i64 = db
        .client()
        .await
        .unwrap()
        .query_one("SELECT count(*) FROM events", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 400);
    assert!(
        matches!(report.output::<SlowStatements>("slow-statements"), Some(SlowStatements::Unavailable { advice }) if advice.contains("CREATE EXTENSION"))
    );
    assert!(report.output::<i64>("terminate-idle").unwrap() >= 1);
    assert!(
        idle.batch_execute("SELECT 1").await.is_err(),
        "the idle session was terminated"
    );
    let sizes: ops_postgres::Sizes = report.output("sizes").unwrap();
    assert!(sizes.database_bytes > 0 && sizes.tables[0].0 == "public.events");
}

#[test]
fn bad_configs_name_the_field() {
    let err = MaintenanceConfig::from_toml(
        "[[retention]]\ntable = \"a;drop\\\"\"\ncolumn = \"c\"\nolder_than = \"1d\"",
    )
    .unwrap_err();
    assert!(err.to_string().contains("retention[0].table"), "{err}");
    let err = MaintenanceConfig::from_toml(
        "[[retention]]\ntable = \"t\"\ncolumn = \"c\"\nolder_than = \"1d\"\nbatch = 0",
    )
    .unwrap_err();
    assert!(err.to_string().contains("retention[0].batch"), "{err}");
}

/// Random TOML around a working config: a valid maintenance config or `InvalidInput`, never a
/// panic.
#[test]
fn the_maintenance_config_loader_survives_random_toml() {
    let base = MaintenanceConfig::from_toml(CONFIG).unwrap();
    ops_core::testkit::config_loader_from(&base, 300);
}
