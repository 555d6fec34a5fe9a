//! Monthly PostgreSQL maintenance: database and table sizes, retention deletes in bounded
//! batches (short transactions, no long locks), `VACUUM ANALYZE`, the slowest statements from
//! `pg_stat_statements`, and idle connections terminated. `--dry-run` reads the counts and
//! changes nothing.
//!
//! ```sh
//! cargo run -p ops-examples --example database_maintenance                    # rehearsal
//! cargo run -p ops-examples --example database_maintenance -- --dry-run
//! DATABASE_URL=postgres://… cargo run -p ops-examples --example database_maintenance -- \
//!     --live --config maintenance.toml
//! ```
//!
//! `maintenance.toml` says what to keep and what to vacuum:
//!
//! ```toml
//! vacuum = ["notifications", "task_metrics"]
//! slow_statements_by = "mean"            # seed 000 sorts by mean time
//! terminate_idle_after = "1h"
//! idle_since = "query_start"             # seed 001's rule; the default is "state_change"
//! [[retention]]                          # seed 000: only completed notifications go
//! table = "notifications"
//! column = "created_at"
//! older_than = "90d"
//! only = [{ column = "status", op = "eq", value = "completed" }]
//! [[retention]]
//! table = "task_metrics"
//! column = "start_time"
//! older_than = "180d"
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

use ops_core::runbooks::Procedure;
use ops_core::runbooks::RunbookConfig;
use ops_examples::providers::postgres;
use ops_examples::{Common, Failure, Session};
use ops_postgres::{MaintenanceConfig, PgMaintenance, Postgres, Sizes};

/// retention deletes in batches, VACUUM ANALYZE, slow statements, idle connections
#[derive(Parser)]
#[command(name = "database_maintenance")]
struct Flags {
    #[command(flatten)]
    common: Common,
    /// the retention rules and tables to vacuum, TOML (a rehearsal has its own)
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

/// The rehearsal's rules (a live run takes them from `--config`).
const REHEARSAL_CONFIG: &str = r#"
vacuum = ["events"]
terminate_idle_after = "1h"
[[retention]]
table = "events"
column = "created_at"
older_than = "90d"
batch = 5000
"#;

async fn count_events(db: &Postgres) -> ops_core::Result<i64> {
    let client = db.client().await?;
    let row = client
        .query_one("SELECT count(*) FROM events", &[])
        .await
        .map_err(|e| ops_postgres::error::pg_error("count", &e))?;
    Ok(row.get(0))
}

#[tokio::main]
async fn main() -> ExitCode {
    ops_examples::run(example).await
}

async fn example(mut session: Session, flags: Flags) -> Result<ExitCode, Failure> {
    let config: MaintenanceConfig = match &flags.config {
        Some(file) => session.config(Some(file))?,
        None if session.rehearsal() => MaintenanceConfig::from_toml(REHEARSAL_CONFIG)?,
        None => {
            return Err(Failure::usage(
                "--live needs --config FILE: the retention rules and tables to vacuum",
            ));
        }
    };
    let (db, _cluster) = postgres(&session, "app").await?;
    if session.rehearsal() {
        // A year of events, one every 15 minutes: about three quarters are past 90 days.
        let client = db.client().await?;
        client
            .batch_execute(
                "CREATE TABLE events(id bigserial PRIMARY KEY, created_at timestamptz NOT NULL, body text);
                 INSERT INTO events(created_at, body)
                   SELECT now() - i * interval '15 minutes', md5(i::text)
                   FROM generate_series(0, 35039) i;",
            )
            .await?;
    }
    let before = if session.rehearsal() {
        count_events(&db).await?
    } else {
        0
    };

    let maintenance = PgMaintenance::new(db.clone(), config);
    let runbook = maintenance.runbook()?;
    let report = session.run(&runbook).await;

    if let Some(report) = &report
        && let Some(sizes) = report.output::<Sizes>("sizes")
        && !flags.common.json
    {
        println!("## Sizes\n\n| table | bytes |\n|---|---:|");
        println!("| (database) | {} |", sizes.database_bytes);
        for (table, bytes) in &sizes.tables {
            println!("| {table} | {bytes} |");
        }
    }
    if session.rehearsal() && report.is_some() {
        let after = count_events(&db).await?;
        if flags.common.dry_run {
            session.check("a dry run deletes nothing", after == before);
        } else {
            // 90 days of events at four an hour, plus the one at the boundary.
            session.check(
                &format!("only the last 90 days are kept ({before} → {after})"),
                (8640..=8641).contains(&after),
            );
        }
    }
    Ok(session.finish().await)
}
