//! Cloud SQL right-sizing on the simulator: the utilisation read from Cloud Monitoring, a
//! smaller tier suggested for an idle database, the change approved, made inside the
//! maintenance window and verified; refused outside it; nothing asked when the tier fits.

mod support;

use std::sync::Arc;
use std::time::Duration;

use ops_core::calendar::Window;
use ops_core::clock::ManualClock;
use ops_core::engine::{AutoApprove, DenyAll, Mode, RunOutcome, Runner};
use ops_core::runbooks::Procedure;
use ops_gcp::CloudSql;
use ops_gcp::sim::GcpSim;
use ops_gcp::sql::sizing::{RightSizeSql, SqlSizingConfig};

/// Monday 2026-11-23, 09:00 UTC; `main-db` at the given utilisation.
async fn setup(cpu: f64, memory: f64) -> (GcpSim, Arc<ManualClock>, CloudSql) {
    let (sim, clock, sql) = support::sql_sim(Duration::from_secs(240), 1).await;
    sim.set_sql_usage("main-db", cpu, memory);
    (sim, clock, sql)
}

fn sunday_night() -> Window {
    Window::new(
        "database-maintenance",
        "0 2 * * SUN",
        "UTC",
        Duration::from_secs(7200),
    )
    .unwrap()
}

#[tokio::test]
async fn an_idle_database_moves_to_a_smaller_tier_and_comes_back() {
    let (sim, clock, sql) = setup(0.12, 0.2).await;
    let drill = RightSizeSql::new(sql, SqlSizingConfig::default(), vec![]);
    let runner = Runner::new()
        .with_clock(clock.clone())
        .with_approver(Arc::new(AutoApprove::default()));

    let plan = drill.run(&runner, Mode::DryRun).await.unwrap();
    assert_eq!(
        plan.report.outcome,
        Some(RunOutcome::Planned),
        "{}",
        plan.report.to_markdown()
    );
    let s = plan.summary.unwrap();
    assert_eq!(s.current, "db-custom-2-7680", "{s:?}");
    assert_eq!(s.suggested.as_deref(), Some("db-custom-1-3840"), "{s:?}");
    assert_eq!(s.utilisation.cpu_peak, Some(0.12));
    assert_eq!(
        sim.sql_tier("main-db").unwrap().0,
        "db-custom-2-7680",
        "a dry run changes nothing"
    );

    let done = drill.run(&runner, Mode::Execute).await.unwrap();
    assert_eq!(
        done.report.outcome,
        Some(RunOutcome::Succeeded),
        "{}",
        done.report.to_markdown()
    );
    assert_eq!(
        sim.sql_tier("main-db").unwrap(),
        ("db-custom-1-3840".to_string(), "RUNNABLE".to_string())
    );
    assert_eq!(
        done.report.output::<String>("verify").as_deref(),
        Some("running on db-custom-1-3840")
    );
}

#[tokio::test]
async fn outside_the_maintenance_window_nothing_changes() {
    let (sim, clock, sql) = setup(0.12, 0.2).await;
    let done = RightSizeSql::new(sql, SqlSizingConfig::default(), vec![sunday_night()])
        .run(
            &Runner::new()
                .with_clock(clock.clone())
                .with_approver(Arc::new(AutoApprove::default())),
            Mode::Execute,
        )
        .await
        .unwrap();
    let md = done.report.to_markdown();
    assert_ne!(done.report.outcome, Some(RunOutcome::Succeeded), "{md}");
    assert!(md.contains("no maintenance window is open"), "{md}");
    assert_eq!(sim.sql_tier("main-db").unwrap().0, "db-custom-2-7680");
}

#[tokio::test]
async fn a_fitting_tier_asks_nobody_and_a_refused_change_changes_nothing() {
    let (sim, clock, sql) = setup(0.5, 0.4).await;
    let denying = Runner::new()
        .with_clock(clock.clone())
        .with_approver(Arc::new(DenyAll::default()));
    let done = RightSizeSql::new(sql.clone(), SqlSizingConfig::default(), vec![])
        .run(&denying, Mode::Execute)
        .await
        .unwrap();
    assert_eq!(
        done.report.outcome,
        Some(RunOutcome::Succeeded),
        "no gate was asked: {}",
        done.report.to_markdown()
    );
    assert!(done.summary.unwrap().suggested.is_none());

    sim.set_sql_usage("main-db", 0.1, 0.1);
    let done = RightSizeSql::new(sql, SqlSizingConfig::default(), vec![])
        .run(&denying, Mode::Execute)
        .await
        .unwrap();
    assert_ne!(done.report.outcome, Some(RunOutcome::Succeeded));
    assert_eq!(
        sim.sql_tier("main-db").unwrap().0,
        "db-custom-2-7680",
        "refused: unchanged"
    );
}
