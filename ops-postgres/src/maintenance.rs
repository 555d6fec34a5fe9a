//! [`PgMaintenance`]: the seeds' monthly database maintenance as a runbook — sizes, retention
//! deletes in bounded batches, `VACUUM ANALYZE`, the slowest statements, and idle connections
//! terminated. Like every runbook it can be dry-run: the counts are read, nothing is deleted,
//! vacuumed or terminated.

use std::time::Duration;

use ops_core::config::{RunbookConfig, human_duration};
use ops_core::engine::{Action, RunReport, Runbook, Step};
use ops_core::{Error, Result};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::connect::Postgres;
use crate::error::pg_error;
use crate::retention::{RetentionRule, count_old, delete_old, ident};

/// What the maintenance does.
///
/// ```toml
/// vacuum = ["orders", "events"]
/// slow_statements = 10
/// slow_statements_by = "mean"
/// terminate_idle_after = "1h"
/// idle_since = "query_start"
/// [[retention]]
/// table = "notifications"
/// column = "created_at"
/// older_than = "90d"
/// only = [{ column = "status", op = "eq", value = "completed" }]
/// [[retention]]
/// table = "audit_log"
/// column = "at"
/// older_than = "180d"
/// batch = 2000
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MaintenanceConfig {
    /// Retention deletes.
    pub retention: Vec<RetentionRule>,
    /// Tables to `VACUUM ANALYZE`.
    pub vacuum: Vec<String>,
    /// How many of the slowest statements to report (from `pg_stat_statements`), 1 to 1000.
    pub slow_statements: i64,
    /// Which statements are the slowest (default total time; seed 000 sorts by mean).
    pub slow_statements_by: SlowestBy,
    /// Idle connections older than this are terminated (never this runbook's own).
    #[serde(default, with = "human_duration::option")]
    pub terminate_idle_after: Option<Duration>,
    /// What "older" measures for an idle connection (default: idle since).
    pub idle_since: IdleSince,
}

/// The order of [`SlowStatements`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SlowestBy {
    /// Total execution time: what costs the database most.
    #[default]
    Total,
    /// Mean execution time: what each caller waits longest for.
    Mean,
    /// The single longest execution.
    Max,
}

impl SlowestBy {
    fn column(self) -> &'static str {
        match self {
            SlowestBy::Total => "total_exec_time",
            SlowestBy::Mean => "mean_exec_time",
            SlowestBy::Max => "max_exec_time",
        }
    }
}

/// When an idle connection's age starts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdleSince {
    /// From when it went idle (`state_change`): a pool's connection that just finished a long
    /// query is not taken for a forgotten one.
    #[default]
    StateChange,
    /// From when its last query started (`query_start`), as seed 001 writes it.
    QueryStart,
}

impl Default for MaintenanceConfig {
    fn default() -> Self {
        Self {
            retention: Vec::new(),
            vacuum: Vec::new(),
            slow_statements: 10,
            slow_statements_by: SlowestBy::Total,
            terminate_idle_after: None,
            idle_since: IdleSince::StateChange,
        }
    }
}

impl RunbookConfig for MaintenanceConfig {
    fn validate(&self) -> Result<()> {
        for (i, r) in self.retention.iter().enumerate() {
            r.validate(&format!("retention[{i}]"))?;
        }
        if !(1..=1000).contains(&self.slow_statements) {
            return Err(Error::invalid_input(
                "postgres",
                "maintenance",
                "slow_statements",
                "1 to 1000",
            ));
        }
        for t in &self.vacuum {
            ident(t).map_err(|_| {
                Error::invalid_input(
                    "postgres",
                    "maintenance",
                    "vacuum",
                    format!("{t:?} is not a table name"),
                )
            })?;
        }
        Ok(())
    }
}

/// Sizes of the database and its largest tables.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sizes {
    /// The database, in bytes.
    pub database_bytes: i64,
    /// The ten largest tables with indexes and TOAST, in bytes.
    pub tables: Vec<(String, i64)>,
}

/// One statement from `pg_stat_statements`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlowStatement {
    /// The normalised query.
    pub query: String,
    /// Times called.
    pub calls: i64,
    /// Mean time, ms.
    pub mean_ms: f64,
    /// Total time, ms.
    pub total_ms: f64,
    /// The longest single execution, ms.
    #[serde(default)]
    pub max_ms: f64,
}

/// The slowest statements, or why there are none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum SlowStatements {
    /// Read from the extension.
    Found {
        /// Slowest first, by the configured [`SlowestBy`].
        statements: Vec<SlowStatement>,
    },
    /// The extension is not installed in this database.
    Unavailable {
        /// What to do about it.
        advice: String,
    },
}

/// The maintenance of one database.
#[derive(Debug, Clone)]
pub struct PgMaintenance {
    db: Postgres,
    config: MaintenanceConfig,
}

impl PgMaintenance {
    /// Maintenance of `db` as `config` says.
    pub fn new(db: Postgres, config: MaintenanceConfig) -> Self {
        Self { db, config }
    }

    fn build(&self) -> Result<Runbook> {
        self.config.validate()?;
        let dbname = self
            .db
            .config()
            .settings()
            .get_dbname()
            .unwrap_or("postgres")
            .to_string();
        let db = self.db.clone();
        let mut rb = Runbook::new("postgres-maintenance", &dbname)
            .with_category(ops_core::engine::Category::Maintenance)
            .step(Step::read("sizes", move |_| {
                let db = db.clone();
                Ok(Action::new("postgres sizes", json!({}), async move {
                    sizes(&db).await
                }))
            }));
        for rule in self.config.retention.clone() {
            let (db, r) = (self.db.clone(), rule.clone());
            rb = rb.step(Step::read(format!("count-{}", rule.table), move |_| {
                let (db, r) = (db.clone(), r.clone());
                Ok(Action::new(
                    "count old rows",
                    json!({"table": r.table, "older_than": human_duration::format(r.older_than)}),
                    async move { count_old(&db, &r).await },
                ))
            }));
            let (db, r) = (self.db.clone(), rule.clone());
            rb = rb.step(
                Step::mutate(format!("retain-{}", rule.table), move |_| {
                    let (db, r) = (db.clone(), r.clone());
                    Ok(Action::new(
                        "delete old rows in batches",
                        json!({"table": r.table, "column": r.column, "batch": r.batch}),
                        async move { delete_old(&db, &r).await },
                    ))
                })
                // Deleting what is already gone deletes nothing more: safe to repeat.
                .idempotent(),
            );
        }
        if !self.config.vacuum.is_empty() {
            let (db, tables) = (self.db.clone(), self.config.vacuum.clone());
            rb = rb.step(
                Step::mutate("vacuum-analyze", move |_| {
                    let (db, tables) = (db.clone(), tables.clone());
                    Ok(Action::new(
                        "VACUUM ANALYZE",
                        json!({"tables": tables}),
                        async move {
                            let client = db.client().await?;
                            for t in &tables {
                                client
                                    .batch_execute(&format!("VACUUM (ANALYZE) {}", ident(t)?))
                                    .await
                                    .map_err(|e| pg_error("vacuum", &e))?;
                            }
                            Ok(tables.len())
                        },
                    ))
                })
                .idempotent(),
            );
        }
        let (db, n) = (self.db.clone(), self.config.slow_statements);
        let by = self.config.slow_statements_by;
        rb = rb.step(Step::read("slow-statements", move |_| {
            let db = db.clone();
            Ok(Action::new(
                "pg_stat_statements",
                json!({"top": n, "by": by}),
                async move { slow_statements(&db, n, by).await },
            ))
        }));
        if let Some(after) = self.config.terminate_idle_after {
            let (db, since) = (self.db.clone(), self.config.idle_since);
            rb = rb.step(
                Step::mutate("terminate-idle", move |_| {
                    let db = db.clone();
                    let column = match since {
                        IdleSince::StateChange => "state_change",
                        IdleSince::QueryStart => "query_start",
                    };
                    Ok(Action::new(
                        "pg_terminate_backend",
                        json!({"idle_longer_than": human_duration::format(after), "since": column}),
                        async move {
                            let client = db.client().await?;
                            let sql = format!(
                                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
                                 WHERE state = 'idle' AND backend_type = 'client backend'
                                   AND datname = current_database() AND pid <> pg_backend_pid()
                                   AND now() - {column} > make_interval(secs => $1)"
                            );
                            let row = client
                                .query_one(&sql, &[&after.as_secs_f64()])
                                .await
                                .map_err(|e| pg_error("terminate_idle", &e))?;
                            Ok(row.get::<_, i64>(0))
                        },
                    ))
                })
                .idempotent(),
            );
        }
        Ok(rb)
    }
}

impl ops_core::runbooks::Procedure for PgMaintenance {
    type Summary = ();

    fn runbook(&self) -> Result<Runbook> {
        self.build()
    }

    fn summary(&self, _: &RunReport) -> Option<()> {
        Some(())
    }
}

async fn sizes(db: &Postgres) -> Result<Sizes> {
    let client = db.client().await?;
    let database_bytes: i64 = client
        .query_one("SELECT pg_database_size(current_database())", &[])
        .await
        .map_err(|e| pg_error("sizes", &e))?
        .get(0);
    let rows = client
        .query(
            "SELECT n.nspname || '.' || c.relname, pg_total_relation_size(c.oid)
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
             ORDER BY 2 DESC LIMIT 10",
            &[],
        )
        .await
        .map_err(|e| pg_error("sizes", &e))?;
    Ok(Sizes {
        database_bytes,
        tables: rows.iter().map(|r| (r.get(0), r.get(1))).collect(),
    })
}

async fn slow_statements(db: &Postgres, n: i64, by: SlowestBy) -> Result<SlowStatements> {
    let client = db.client().await?;
    let installed: bool = client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements')",
            &[],
        )
        .await
        .map_err(|e| pg_error("slow_statements", &e))?
        .get(0);
    if !installed {
        return Ok(SlowStatements::Unavailable {
            advice: "pg_stat_statements is not installed: add it to shared_preload_libraries, restart, then CREATE EXTENSION pg_stat_statements".into(),
        });
    }
    let sql = format!(
        "SELECT query, calls, mean_exec_time, total_exec_time, max_exec_time FROM pg_stat_statements ORDER BY {} DESC LIMIT $1",
        by.column()
    );
    let rows = client
        .query(&sql, &[&n])
        .await
        .map_err(|e| pg_error("slow_statements", &e))?;
    Ok(SlowStatements::Found {
        statements: rows
            .iter()
            .map(|r| SlowStatement {
                query: r.get(0),
                calls: r.get(1),
                mean_ms: r.get(2),
                total_ms: r.get(3),
                max_ms: r.get(4),
            })
            .collect(),
    })
}

impl ops_core::presets::PresetSection for MaintenanceConfig {
    const SECTION: &'static str = "providers.postgres.maintenance";

    fn from_preset(preset: &ops_core::presets::Preset) -> Result<Self> {
        preset.provider("postgres.maintenance")
    }
}
