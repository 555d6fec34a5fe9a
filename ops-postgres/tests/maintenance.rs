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
    // Around seed 000's rules too, so retention conditions are mutated.
    let seed_000: MaintenanceConfig = ops_core::presets::Preset::load("code-developer")
        .unwrap()
        .get()
        .unwrap();
    assert!(!seed_000.retention[0].only.is_empty());
    ops_core::testkit::config_loader_from(&seed_000, 300);
}

async fn count(db: &ops_postgres::Postgres, sql: &str) -> i64 {
    db.client()
        .await
        .unwrap()
        .query_one(sql, &[])
        .await
        .unwrap()
        .get(0)
}

/// Seed 000: "DELETE FROM notifications WHERE created_at < NOW() - INTERVAL '90 days' AND
/// status = 'completed'". Pending rows stay, whatever their age; values are bound, so text
/// written as SQL is only text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_deletes_only_the_rows_its_conditions_match() {
    let cluster = TestCluster::start().unwrap_or_else(|e| panic!("{e}"));
    let db = cluster.database("ops_retain_only").await.unwrap();
    db.client()
        .await
        .unwrap()
        .batch_execute(
            "CREATE TYPE note_status AS ENUM ('pending', 'completed', 'failed');
             CREATE TABLE notifications (id serial PRIMARY KEY, created_at timestamptz NOT NULL,
               status note_status NOT NULL, attempts int NOT NULL, archived boolean, owner text);
             INSERT INTO notifications (created_at, status, attempts, archived, owner)
               SELECT now() - interval '120 days', (ARRAY['pending','completed','failed']::note_status[])[1 + g % 3],
                      g % 5, CASE WHEN g % 2 = 0 THEN true END, 'team-' || (g % 4)
               FROM generate_series(1, 600) g;
             INSERT INTO notifications (created_at, status, attempts, archived, owner)
               SELECT now() - interval '10 days', 'completed', 0, true, 'team-0' FROM generate_series(1, 50);",
        )
        .await
        .unwrap();
    let completed = "SELECT count(*) FROM notifications WHERE status = 'completed' AND created_at < now() - interval '90 days'";
    assert_eq!(count(&db, completed).await, 200);
    let config = MaintenanceConfig::from_toml(
        r#"
[[retention]]
table = "notifications"
column = "created_at"
older_than = "90d"
batch = 64
only = [{ column = "status", op = "eq", value = "completed" }]
"#,
    )
    .unwrap();
    let maintenance = PgMaintenance::new(db.clone(), config);
    let plan = maintenance.run(&Runner::new(), Mode::DryRun).await.unwrap();
    assert_eq!(plan.output::<i64>("count-notifications"), Some(200));
    let report = maintenance
        .run(&Runner::new(), Mode::Execute)
        .await
        .unwrap();
    assert!(report.is_success(), "{}", report.to_markdown());
    assert_eq!(report.output::<i64>("retain-notifications"), Some(200));
    assert_eq!(count(&db, completed).await, 0);
    assert_eq!(
        count(&db, "SELECT count(*) FROM notifications").await,
        450,
        "400 old pending or failed rows and the 50 recent completed ones stay"
    );

    // Integers, booleans, lists and null tests, all bound.
    let config = MaintenanceConfig::from_toml(
        r#"
[[retention]]
table = "notifications"
column = "created_at"
older_than = "90d"
only = [
  { column = "attempts", op = "ge", value = 3 },
  { column = "owner", op = "in", value = ["team-1", "team-2"] },
  { column = "archived", op = "is_null" },
  { column = "status", op = "ne", value = "pending" },
]
"#,
    )
    .unwrap();
    let expected = count(
        &db,
        "SELECT count(*) FROM notifications WHERE created_at < now() - interval '90 days'
           AND attempts >= 3 AND owner IN ('team-1', 'team-2') AND archived IS NULL AND status <> 'pending'",
    )
    .await;
    assert!(expected > 0);
    let report = PgMaintenance::new(db.clone(), config)
        .run(&Runner::new(), Mode::Execute)
        .await
        .unwrap();
    assert_eq!(report.output::<i64>("retain-notifications"), Some(expected));

    // A value that is SQL stays a value: nothing matches it and the table survives.
    let config = MaintenanceConfig::from_toml(
        r#"
[[retention]]
table = "notifications"
column = "created_at"
older_than = "1s"
only = [{ column = "owner", op = "eq", value = "x' OR '1'='1'; DROP TABLE notifications; --" }]
"#,
    )
    .unwrap();
    let report = PgMaintenance::new(db.clone(), config)
        .run(&Runner::new(), Mode::Execute)
        .await
        .unwrap();
    assert_eq!(report.output::<i64>("retain-notifications"), Some(0));
    assert!(count(&db, "SELECT count(*) FROM notifications").await > 0);
}

#[test]
fn retention_conditions_are_checked_before_anything_runs() {
    let rule = |only: &str| {
        format!(
            "[[retention]]\ntable = \"t\"\ncolumn = \"c\"\nolder_than = \"1d\"\nonly = [{only}]"
        )
    };
    for (only, field, says) in [
        (
            r#"{ column = "a.b", op = "eq", value = 1 }"#,
            "retention[0].only[0].column",
            "column",
        ),
        (
            r#"{ column = "s", op = "eq" }"#,
            "retention[0].only[0].value",
            "needs a value",
        ),
        (
            r#"{ column = "s", op = "is_null", value = 1 }"#,
            "retention[0].only[0].value",
            "no value",
        ),
        (
            r#"{ column = "s", op = "in", value = "x" }"#,
            "retention[0].only[0].value",
            "list",
        ),
        (
            r#"{ column = "s", op = "in", value = [] }"#,
            "retention[0].only[0].value",
            "1 to 1000",
        ),
        (
            r#"{ column = "s", op = "in", value = [1, "x"] }"#,
            "retention[0].only[0].value",
            "one kind",
        ),
        (
            r#"{ column = "s", op = "eq", value = [1] }"#,
            "retention[0].only[0].value",
            "`in` only",
        ),
    ] {
        let e = MaintenanceConfig::from_toml(&rule(only)).unwrap_err();
        assert!(e.to_string().contains(field), "{only}: {e}");
        assert!(e.to_string().contains(says), "{only}: {e}");
    }
    let e = MaintenanceConfig::from_toml(&rule(r#"{ column = "s", op = "like", value = "x" }"#))
        .unwrap_err();
    assert!(
        matches!(e.kind(), ops_core::ErrorKind::InvalidInput { .. }),
        "{e}"
    );
}

/// Seed 000 sorts the slow statements by mean time; seed 001 kills connections whose last query
/// started over an hour ago, where the default rule counts from when they went idle.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowest_statements_by_mean_and_idle_connections_by_query_start() {
    let cluster = TestCluster::start().unwrap_or_else(|e| panic!("{e}"));
    let db = cluster.database("ops_slow_idle").await.unwrap();
    let client = db.client().await.unwrap();
    client
        .batch_execute("CREATE EXTENSION pg_stat_statements; SELECT pg_stat_statements_reset();")
        .await
        .expect("the test cluster preloads pg_stat_statements (postgresql-15 ships it)");
    // Many cheap calls (most total time) against one slow call (highest mean).
    for _ in 0..400 {
        client
            .batch_execute("SELECT count(*) FROM generate_series(1, 2000)")
            .await
            .unwrap();
    }
    client.batch_execute("SELECT pg_sleep(0.3)").await.unwrap();
    let slowest = |by: &str| {
        let db = db.clone();
        let toml = format!("slow_statements = 1\nslow_statements_by = \"{by}\"");
        async move {
            let report = PgMaintenance::new(db, MaintenanceConfig::from_toml(&toml).unwrap())
                .run(&Runner::new(), Mode::Execute)
                .await
                .unwrap();
            match report.output::<SlowStatements>("slow-statements").unwrap() {
                SlowStatements::Found { statements } => statements[0].clone(),
                other => panic!("{other:?}"),
            }
        }
    };
    let by_mean = slowest("mean").await;
    assert!(by_mean.query.contains("pg_sleep"), "{by_mean:?}");
    assert!(by_mean.max_ms >= 300.0 && by_mean.calls == 1, "{by_mean:?}");
    let by_calls_total = slowest("total").await;
    assert!(
        by_calls_total.total_ms >= by_mean.total_ms,
        "{by_calls_total:?}"
    );

    // A session whose last query ran 1.5 s and ended just now: idle for an instant, but its
    // query started 1.5 s ago.
    let session = db.dedicated().await.unwrap();
    session.batch_execute("SELECT pg_sleep(1.5)").await.unwrap();
    let terminate = |since: &str| {
        let db = db.clone();
        let toml = format!("terminate_idle_after = \"1s\"\nidle_since = \"{since}\"");
        async move {
            PgMaintenance::new(db, MaintenanceConfig::from_toml(&toml).unwrap())
                .run(&Runner::new(), Mode::Execute)
                .await
                .unwrap()
                .output::<i64>("terminate-idle")
                .unwrap()
        }
    };
    // Other idle connections of the test's pool may go too; the session must not.
    terminate("state_change").await;
    session
        .batch_execute("SELECT 1")
        .await
        .expect("idle for less than a second: still connected");
    session.batch_execute("SELECT pg_sleep(1.5)").await.unwrap();
    assert!(terminate("query_start").await >= 1);
    assert!(
        session.batch_execute("SELECT 1").await.is_err(),
        "terminated"
    );
}

/// The seed presets' PostgreSQL sections load as this crate's config.
#[test]
fn the_seed_presets_maintenance_sections_load() {
    use ops_core::presets::Preset;
    use ops_postgres::{ConditionOp, ConditionValue, IdleSince, SlowestBy};
    let code_developer: MaintenanceConfig = Preset::load("code-developer")
        .unwrap()
        .provider("postgres.maintenance")
        .unwrap();
    assert_eq!(code_developer.slow_statements_by, SlowestBy::Mean);
    let notifications = &code_developer.retention[0];
    assert_eq!(
        (
            notifications.table.as_str(),
            notifications.older_than.as_secs()
        ),
        ("notifications", 90 * 86_400)
    );
    assert_eq!(notifications.only[0].op, ConditionOp::Eq);
    assert_eq!(
        notifications.only[0].value,
        Some(ConditionValue::Text("completed".into()))
    );
    let marketplace: MaintenanceConfig = Preset::load("agent-marketplace")
        .unwrap()
        .provider("postgres.maintenance")
        .unwrap();
    assert_eq!(marketplace.idle_since, IdleSince::QueryStart);
    let none: MaintenanceConfig = Preset::load("loopcloser")
        .unwrap()
        .provider("postgres.maintenance")
        .unwrap();
    assert_eq!(none, MaintenanceConfig::default());
}
