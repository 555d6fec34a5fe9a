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

/// Rows of `table` older than `older_than` (by `column`) are deleted, `batch` at a time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionRule {
    /// The table (`schema.table` or `table`).
    pub table: String,
    /// Its timestamp column.
    pub column: String,
    /// Age beyond which rows go.
    #[serde(with = "human_duration")]
    pub older_than: Duration,
    /// Rows per delete (short transactions, no long lock).
    #[serde(default = "default_batch")]
    pub batch: i64,
}

fn default_batch() -> i64 {
    5000
}

/// What the maintenance does.
///
/// ```toml
/// vacuum = ["orders", "events"]
/// slow_statements = 10
/// terminate_idle_after = "1h"
/// [[retention]]
/// table = "events"
/// column = "created_at"
/// older_than = "90d"
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
    /// How many of the slowest statements to report (from `pg_stat_statements`).
    pub slow_statements: i64,
    /// Idle connections older than this are terminated (never this runbook's own).
    #[serde(default, with = "human_duration::option")]
    pub terminate_idle_after: Option<Duration>,
}

impl Default for MaintenanceConfig {
    fn default() -> Self {
        Self {
            retention: Vec::new(),
            vacuum: Vec::new(),
            slow_statements: 10,
            terminate_idle_after: None,
        }
    }
}

/// A quoted identifier, `schema.table` split at the dot.
fn ident(name: &str) -> Result<String> {
    let parts: Vec<&str> = name.split('.').collect();
    if parts.is_empty()
        || parts.len() > 2
        || parts
            .iter()
            .any(|p| p.is_empty() || p.contains('"') || p.contains('\0'))
    {
        return Err(Error::invalid_input(
            "postgres",
            "maintenance",
            "table",
            format!("{name:?} is not a table name"),
        ));
    }
    Ok(parts
        .iter()
        .map(|p| format!("\"{p}\""))
        .collect::<Vec<_>>()
        .join("."))
}

impl RunbookConfig for MaintenanceConfig {
    fn validate(&self) -> Result<()> {
        for (i, r) in self.retention.iter().enumerate() {
            ident(&r.table).map_err(|_| {
                Error::invalid_input(
                    "postgres",
                    "maintenance",
                    format!("retention[{i}].table"),
                    "not a table name",
                )
            })?;
            ident(&r.column).map_err(|_| {
                Error::invalid_input(
                    "postgres",
                    "maintenance",
                    format!("retention[{i}].column"),
                    "not a column name",
                )
            })?;
            if r.batch < 1 || r.batch > 100_000 {
                return Err(Error::invalid_input(
                    "postgres",
                    "maintenance",
                    format!("retention[{i}].batch"),
                    "1 to 100000",
                ));
            }
            if r.older_than.is_zero() {
                return Err(Error::invalid_input(
                    "postgres",
                    "maintenance",
                    format!("retention[{i}].older_than"),
                    "must be positive",
                ));
            }
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
}

/// The slowest statements, or why there are none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum SlowStatements {
    /// Read from the extension.
    Found {
        /// Slowest first (by total time).
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
        rb = rb.step(Step::read("slow-statements", move |_| {
            let db = db.clone();
            Ok(Action::new(
                "pg_stat_statements",
                json!({"top": n}),
                async move { slow_statements(&db, n).await },
            ))
        }));
        if let Some(after) = self.config.terminate_idle_after {
            let db = self.db.clone();
            rb = rb.step(
                Step::mutate("terminate-idle", move |_| {
                    let db = db.clone();
                    Ok(Action::new(
                        "pg_terminate_backend",
                        json!({"idle_longer_than": human_duration::format(after)}),
                        async move {
                            let client = db.client().await?;
                            let row = client
                                .query_one(
                                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
                                 WHERE state = 'idle' AND backend_type = 'client backend'
                                   AND datname = current_database() AND pid <> pg_backend_pid()
                                   AND now() - state_change > make_interval(secs => $1)",
                                    &[&after.as_secs_f64()],
                                )
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

async fn count_old(db: &Postgres, r: &RetentionRule) -> Result<i64> {
    let client = db.client().await?;
    let sql = format!(
        "SELECT count(*) FROM {} WHERE {} < now() - make_interval(secs => $1)",
        ident(&r.table)?,
        ident(&r.column)?
    );
    Ok(client
        .query_one(&sql, &[&r.older_than.as_secs_f64()])
        .await
        .map_err(|e| pg_error("count_old", &e))?
        .get(0))
}

/// Deletes in batches of `r.batch` rows, each its own short transaction, until none are left.
async fn delete_old(db: &Postgres, r: &RetentionRule) -> Result<i64> {
    let client = db.client().await?;
    let sql = format!(
        "DELETE FROM {t} WHERE ctid IN (SELECT ctid FROM {t} WHERE {c} < now() - make_interval(secs => $1) LIMIT $2)",
        t = ident(&r.table)?,
        c = ident(&r.column)?
    );
    let mut total = 0i64;
    loop {
        let n = client
            .execute(&sql, &[&r.older_than.as_secs_f64(), &r.batch])
            .await
            .map_err(|e| pg_error("delete_old", &e))? as i64;
        total += n;
        if n < r.batch {
            tracing::info!(table = %r.table, deleted = total, "retention done");
            return Ok(total);
        }
    }
}

async fn slow_statements(db: &Postgres, n: i64) -> Result<SlowStatements> {
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
    let rows = client
        .query("SELECT query, calls, mean_exec_time, total_exec_time FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT $1", &[&n])
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
            })
            .collect(),
    })
}
