//! The Cloud SQL restore drill of seeds 000 and 001 (monthly or quarterly): check the backup
//! configuration (automated backups on, the window, point-in-time recovery, retention), then
//! restore the latest backup — or, with `--point-in-time 2h`, the database as it was two hours
//! ago — into a throwaway instance, count the rows of the named tables, and delete the
//! instance, also when the drill fails.
//!
//! ```sh
//! cargo run -p ops-examples --example cloud_sql_drill                          # rehearsal
//! cargo run -p ops-examples --example cloud_sql_drill -- --point-in-time 2h
//! cargo run -p ops-examples --example cloud_sql_drill -- --fault pitr-off --point-in-time 2h
//! DRILL_DATABASE_URL='postgres://drill:…@{host}:5432/app' cargo run -p ops-examples \
//!     --example cloud_sql_drill -- --live --project P --instance main-db \
//!     --table public.orders=1000 --table public.users=1
//! ```
//!
//! The rows are counted over SQL in the scratch instance (`{host}` is its address); in a
//! rehearsal a throwaway PostgreSQL seeded like the source stands in for it.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use clap::{Parser, ValueEnum};
use ops_core::contracts::{HealthProbe, HealthStatus};
use ops_core::runbooks::Procedure;
use ops_examples::providers::{gcp_client, gcp_sim};
use ops_examples::{Common, Failure, GcpArgs, Session};
use ops_gcp::CloudSql;
use ops_gcp::client::OperationPolling;
use ops_gcp::sql::drill::{
    BackupPolicy, BackupPolicyCheck, DrillConfig, DrillReport, DrillSource, RestoreDrill,
    RowCounter,
};
use ops_gcp::sql::instances::SqlInstance;
use ops_postgres::{PgConfig, Postgres};

/// restore the latest Cloud SQL backup into a scratch instance, count rows, delete it
#[derive(Parser)]
#[command(name = "cloud_sql_drill")]
struct Flags {
    #[command(flatten)]
    common: Common,
    #[command(flatten)]
    gcp: GcpArgs,
    /// the Cloud SQL instance
    #[arg(long, env = "OPS_SQL_INSTANCE", default_value = "main-db")]
    instance: String,
    /// a table to count and its fewest rows, SCHEMA.TABLE=MIN (repeatable) [rehearsal:
    /// public.orders=1000, public.users=1]
    #[arg(long, value_name = "SCHEMA.TABLE=MIN")]
    table: Vec<String>,
    /// restore the database as it was this long ago (point-in-time recovery) instead of the
    /// latest backup
    #[arg(long, value_parser = ops_examples::args::duration)]
    point_in_time: Option<Duration>,
    /// the daily backup window's expected start, HH:MM UTC [default: not checked]
    #[arg(long)]
    start_time: Option<String>,
    /// inject a named failure into the rehearsal
    #[arg(long, value_enum, value_name = "NAME")]
    fault: Option<Fault>,
}

/// The failures a rehearsal can inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Fault {
    /// point-in-time recovery was switched off: the configuration check says so, and a
    /// point-in-time drill is refused without leaving an instance behind
    #[value(name = "pitr-off")]
    PitrOff,
}

/// Counts rows over SQL: `DRILL_DATABASE_URL` with `{host}` replaced by the scratch instance's
/// address, or (rehearsal) the throwaway database standing in for it.
enum Counter {
    Url(String),
    Local(Postgres),
}

#[async_trait]
impl RowCounter for Counter {
    async fn row_counts(&self, instance: &SqlInstance) -> ops_core::Result<BTreeMap<String, i64>> {
        match self {
            Counter::Local(db) => ops_postgres::row_counts(db).await,
            Counter::Url(template) => {
                let host = instance.address().ok_or_else(|| {
                    ops_core::Error::invalid_input(
                        "drill",
                        "row_counts",
                        "instance",
                        format!("{} has no address to connect to", instance.name),
                    )
                })?;
                let config = PgConfig::new(template.replace("{host}", host))?;
                ops_postgres::row_counts(&Postgres::new(config)?).await
            }
        }
    }
}

fn tables(flags: &Flags, rehearsal: bool) -> Result<BTreeMap<String, i64>, Failure> {
    let given: Vec<String> = if flags.table.is_empty() && rehearsal {
        vec!["public.orders=1000".into(), "public.users=1".into()]
    } else {
        flags.table.clone()
    };
    let mut out = BTreeMap::new();
    for t in given {
        let (name, min) = t
            .split_once('=')
            .ok_or_else(|| Failure::usage(format!("--table {t}: give SCHEMA.TABLE=MIN")))?;
        let min: i64 = min
            .parse()
            .map_err(|_| Failure::usage(format!("--table {t}: {min:?} is not a row count")))?;
        out.insert(name.to_string(), min);
    }
    if out.is_empty() {
        return Err(Failure::usage("name the tables to count with --table"));
    }
    Ok(out)
}

#[tokio::main]
async fn main() -> ExitCode {
    ops_examples::run(example).await
}

async fn example(mut session: Session, flags: Flags) -> Result<ExitCode, Failure> {
    let tables = tables(&flags, session.rehearsal())?;
    let sim = gcp_sim(&session, &flags.gcp).await;
    let mut _cluster = None;
    let counter = if let Some(sim) = &sim {
        sim.create_sql_instance(&flags.instance, 7);
        if flags.fault == Some(Fault::PitrOff) {
            sim.set_sql_backup_setting(
                &flags.instance,
                "pointInTimeRecoveryEnabled",
                serde_json::json!(false),
            );
        }
        // The database the restored instance serves: seeded like the source.
        let cluster =
            tokio::task::spawn_blocking(ops_postgres::cluster::TestCluster::start).await??;
        let db = cluster.database("restored").await?;
        db.client()
            .await?
            .batch_execute(
                "CREATE TABLE orders(id int); INSERT INTO orders SELECT generate_series(1, 2500);
                 CREATE TABLE users(id int); INSERT INTO users SELECT generate_series(1, 40);",
            )
            .await
            .map_err(|e| Failure::failed(format!("seeding the rehearsal database: {e}")))?;
        _cluster = Some(cluster);
        Counter::Local(db)
    } else {
        Counter::Url(session.credential(
            "DRILL_DATABASE_URL",
            "postgres://USER:PASSWORD@{host}:5432/DB, {host} being the scratch instance's address",
        )?)
    };
    let client = gcp_client(&session, &flags.gcp, sim.as_ref()).await?;
    let sql = CloudSql::new(client, &flags.instance)?.with_operations(
        OperationPolling {
            initial: Duration::from_secs(10),
            max: Duration::from_secs(30),
        },
        Duration::from_secs(3600),
    );

    // The daily check of the backup configuration.
    let policy = BackupPolicy {
        start_time: flags.start_time.clone(),
        ..BackupPolicy::default()
    };
    let config_check = BackupPolicyCheck::new(sql.clone(), policy)?
        .with_clock(session.clock())
        .check()
        .await?;
    eprintln!(
        "backup configuration of {}: {}",
        flags.instance, config_check.status
    );
    for c in &config_check.checks {
        eprintln!("  {:<10} {:<28} {}", c.status.to_string(), c.name, c.detail);
    }

    let source = match flags.point_in_time {
        Some(ago) => DrillSource::PointInTime { ago },
        None => DrillSource::LatestBackup,
    };
    let drill = RestoreDrill::new(sql, DrillConfig { source, tables }, Arc::new(counter));
    let report = session.run(&drill.runbook()?).await;
    let found: Option<DrillReport> = report.as_ref().and_then(|r| drill.summary(r));
    if let Some(d) = &found {
        eprintln!("\ndrill: restored {} into {}", d.restored, d.instance);
        for (table, rows) in &d.counts {
            eprintln!("  {table:<24} {rows} rows");
        }
    }

    if let Some(sim) = &sim
        && !flags.common.dry_run
    {
        session.check(
            "no scratch instance is left behind",
            sim.sql_instances() == [flags.instance.clone()],
        );
        if flags.fault == Some(Fault::PitrOff) {
            session.check(
                "the configuration check reports point-in-time recovery off",
                config_check.status == HealthStatus::Unhealthy,
            );
        } else {
            session.check(
                "the configuration is as the policy asks",
                config_check.status == HealthStatus::Healthy,
            );
            session.check(
                "every table was counted",
                found.is_some_and(|d| d.counts.len() == 2),
            );
        }
    }
    Ok(session.finish().await)
}
