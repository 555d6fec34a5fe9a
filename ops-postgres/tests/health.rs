//! The health probe against a real server: healthy, connections near the limit, sessions idle
//! in a transaction, and a server that is not there.

use std::time::Duration;

use ops_core::contracts::{HealthProbe, HealthStatus};
use ops_core::testkit;
use ops_postgres::cluster::TestCluster;
use ops_postgres::{PgConfig, PgHealth, PgHealthConfig, Postgres};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthy_then_degraded_by_an_idle_transaction_and_crowded_connections() {
    let cluster = TestCluster::start().unwrap_or_else(|e| panic!("{e}"));
    let db = cluster.database("ops_health").await.unwrap();
    let report = testkit::health_probe(
        &PgHealth::new(db.clone(), PgHealthConfig::default()),
        HealthStatus::Healthy,
    )
    .await;
    assert!(
        report
            .checks
            .iter()
            .any(|c| c.name == "version" && c.detail.starts_with("PostgreSQL 1")),
        "{:?}",
        report.checks
    );

    let idle = db.dedicated().await.unwrap();
    idle.batch_execute("BEGIN; SELECT 1").await.unwrap();
    let strict = PgHealthConfig {
        idle_in_transaction: Duration::ZERO,
        connections_warn: 0.01,
        ..Default::default()
    };
    let report = PgHealth::new(db.clone(), strict).check().await.unwrap();
    let status = |n: &str| report.checks.iter().find(|c| c.name == n).unwrap().status;
    assert_eq!(
        status("idle-in-transaction"),
        HealthStatus::Degraded,
        "{:?}",
        report.checks
    );
    assert_eq!(status("connections"), HealthStatus::Degraded);
    assert_eq!(report.status, HealthStatus::Degraded);
}

#[tokio::test]
async fn a_server_that_is_not_there_is_unhealthy_not_an_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let db = Postgres::new(
        PgConfig::new(format!(
            "postgres://ops:secret-pw@127.0.0.1:{port}/x?sslmode=disable&connect_timeout=2"
        ))
        .unwrap(),
    )
    .unwrap();
    let report = PgHealth::new(db, PgHealthConfig::default())
        .check()
        .await
        .unwrap();
    assert_eq!(report.status, HealthStatus::Unhealthy);
    assert!(!format!("{report:?}").contains("secret-pw"));
}
