//! The Cloud SQL drills of seeds 000 and 001: restore the latest backup (or the database as it
//! was at a point in time) into a throwaway instance, count the rows of named tables, delete
//! the instance — and check every day that the backup configuration is what it should be.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ops_core::clock::{SharedClock, system_clock};
use ops_core::config::{RunbookConfig, human_duration};
use ops_core::contracts::{
    BackupFilter, BackupStore, CheckResult, HealthProbe, HealthReport, HealthStatus,
    latest_verified,
};
use ops_core::engine::{Action, Category, Output, RunReport, Runbook, Step};
use ops_core::runbooks::Procedure;
use ops_core::{Error, ErrorKind, Result};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::CloudSql;
use super::instances::{ScratchInstance, SqlInstance};

/// What the backup configuration must be.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupPolicy {
    /// The daily backup window's start (`HH:MM` UTC), when it matters.
    #[serde(default)]
    pub start_time: Option<String>,
    /// Point-in-time recovery on (default true).
    #[serde(default = "yes")]
    pub point_in_time_recovery: bool,
    /// At least this many automated backups kept (default 7).
    #[serde(default = "seven")]
    pub min_retained_backups: u32,
    /// At least this many days of transaction logs (default 7).
    #[serde(default = "seven")]
    pub min_log_retention_days: u32,
}

fn yes() -> bool {
    true
}

fn seven() -> u32 {
    7
}

impl Default for BackupPolicy {
    fn default() -> Self {
        Self {
            start_time: None,
            point_in_time_recovery: true,
            min_retained_backups: 7,
            min_log_retention_days: 7,
        }
    }
}

impl RunbookConfig for BackupPolicy {
    fn validate(&self) -> Result<()> {
        if let Some(t) = &self.start_time
            && chrono::NaiveTime::parse_from_str(t, "%H:%M").is_err()
        {
            return Err(Error::invalid_input(
                "runbook-config",
                "load",
                "start_time",
                format!("{t:?} is not HH:MM"),
            ));
        }
        Ok(())
    }
}

/// Checks an instance's backup configuration against a [`BackupPolicy`]: one check per rule,
/// unhealthy when backups are off, PITR is off or the window moved; degraded when fewer
/// backups or days of logs are kept than the policy asks.
#[derive(Debug, Clone)]
pub struct BackupPolicyCheck {
    sql: CloudSql,
    policy: BackupPolicy,
    clock: SharedClock,
}

impl BackupPolicyCheck {
    /// Checks `sql`'s instance against `policy`.
    pub fn new(sql: CloudSql, policy: BackupPolicy) -> Result<Self> {
        policy.validate()?;
        Ok(Self {
            sql,
            policy,
            clock: system_clock(),
        })
    }

    /// Uses this clock for timestamps.
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }
}

#[async_trait]
impl HealthProbe for BackupPolicyCheck {
    fn name(&self) -> &str {
        self.sql.name()
    }

    async fn check(&self) -> Result<HealthReport> {
        let observed_at = self.clock.now();
        let start = self.clock.instant();
        let c = self.sql.backup_configuration().await?;
        let latency = self.clock.instant().saturating_duration_since(start);
        let p = &self.policy;
        let mut checks = Vec::new();
        let mut check = |name: &str, ok: bool, bad: HealthStatus, detail: String| {
            checks.push(CheckResult {
                name: format!("backup {name}"),
                status: if ok { HealthStatus::Healthy } else { bad },
                detail,
                latency,
                observed_at,
            });
        };
        check(
            "enabled",
            c.enabled,
            HealthStatus::Unhealthy,
            if c.enabled {
                "automated backups run".into()
            } else {
                "automated backups are OFF".into()
            },
        );
        if let Some(want) = &p.start_time {
            let at = c.start_time.clone().unwrap_or_default();
            check(
                "window",
                at == *want,
                HealthStatus::Unhealthy,
                format!(
                    "starts at {} UTC, expected {want}",
                    if at.is_empty() { "(none)" } else { &at }
                ),
            );
        }
        if p.point_in_time_recovery {
            check(
                "point-in-time recovery",
                c.point_in_time_recovery_enabled,
                HealthStatus::Unhealthy,
                if c.point_in_time_recovery_enabled {
                    "on".into()
                } else {
                    "OFF: only whole backups can be restored".into()
                },
            );
        }
        let kept = c
            .backup_retention_settings
            .as_ref()
            .and_then(|r| r.retained_backups)
            .unwrap_or(0);
        check(
            "retention",
            kept >= p.min_retained_backups,
            HealthStatus::Degraded,
            format!(
                "{kept} backups kept, at least {} expected",
                p.min_retained_backups
            ),
        );
        if p.point_in_time_recovery {
            let days = c.transaction_log_retention_days.unwrap_or(0);
            check(
                "log retention",
                days >= p.min_log_retention_days,
                HealthStatus::Degraded,
                format!(
                    "{days} days of transaction logs, at least {} expected",
                    p.min_log_retention_days
                ),
            );
        }
        Ok(HealthReport::from_checks(
            self.sql.name().to_string(),
            observed_at,
            checks,
        ))
    }
}

/// Counts the rows of a restored database: how a drill looks inside the scratch instance
/// (connect to [`SqlInstance::address`] with the drill's credentials; `ops_postgres::row_counts`
/// gives `schema.table` counts). Kept out of this crate so it needs no database driver.
#[async_trait]
pub trait RowCounter: Send + Sync {
    /// Exact row counts by `schema.table` of the database on `instance`.
    async fn row_counts(&self, instance: &SqlInstance) -> Result<BTreeMap<String, i64>>;
}

/// What a drill restores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "from")]
pub enum DrillSource {
    /// The newest successful backup run.
    LatestBackup,
    /// The database as it was this long ago (point-in-time recovery).
    PointInTime {
        /// How long ago.
        #[serde(with = "human_duration")]
        ago: Duration,
    },
    /// The database as it was at this moment (point-in-time recovery to a timestamp: just
    /// before a bad migration, say).
    PointInTimeAt {
        /// The moment.
        at: DateTime<Utc>,
    },
}

/// A drill's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DrillConfig {
    /// What to restore (default the latest backup).
    #[serde(default = "latest")]
    pub source: DrillSource,
    /// The tables to count (`schema.table`) and the fewest rows each must hold. A table the
    /// restore lacks fails the drill.
    pub tables: BTreeMap<String, i64>,
}

fn latest() -> DrillSource {
    DrillSource::LatestBackup
}

impl Default for DrillConfig {
    fn default() -> Self {
        Self {
            source: latest(),
            tables: BTreeMap::new(),
        }
    }
}

impl RunbookConfig for DrillConfig {
    fn validate(&self) -> Result<()> {
        let invalid = |field: &str, reason: &str| {
            Error::invalid_input("runbook-config", "load", field, reason)
        };
        if self.tables.is_empty() {
            return Err(invalid("tables", "name at least one table to count"));
        }
        if self.tables.values().any(|n| *n < 0) {
            return Err(invalid("tables", "row minimums are not negative"));
        }
        if let DrillSource::PointInTime { ago } = self.source
            && (ago.is_zero() || ago > Duration::from_secs(35 * 86_400))
        {
            return Err(invalid(
                "source.ago",
                "must be positive and within 35 days (Cloud SQL keeps at most 35 days of logs)",
            ));
        }
        Ok(())
    }
}

/// What a drill found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrillReport {
    /// The backup run restored, or the point in time.
    pub restored: String,
    /// The scratch instance (deleted at the end).
    pub instance: String,
    /// The counted tables and their rows.
    pub counts: BTreeMap<String, i64>,
}

/// The restore drill as a runbook: pick what to restore, create the scratch instance (or
/// clone to the point in time), restore, count the rows, delete the scratch instance. A
/// failure at any step deletes the scratch instance (compensation), so a drill never leaves
/// a billed instance behind; a dry run plans the instance it would create.
pub struct RestoreDrill {
    sql: CloudSql,
    config: DrillConfig,
    counter: Arc<dyn RowCounter>,
}

impl RestoreDrill {
    /// A drill of `sql`'s instance, looking inside with `counter`.
    pub fn new(sql: CloudSql, config: DrillConfig, counter: Arc<dyn RowCounter>) -> Self {
        Self {
            sql,
            config,
            counter,
        }
    }

    fn build(&self) -> Result<Runbook> {
        self.config.validate()?;
        let source = self.sql.instance.clone();
        let mut rb = Runbook::new("restore-drill", &source).with_category(Category::Restore);
        let (sql, config) = (self.sql.clone(), self.config.clone());
        let plan: Output<(String, Option<String>, Option<DateTime<Utc>>)> =
            rb.add_step(Step::read("choose", move |ctx| {
                let (sql, config, now) = (sql.clone(), config.clone(), ctx.clock().now());
                Ok(Action::new(
                    "BackupStore::list",
                    json!({"source": config.source}),
                    async move {
                        let scratch = ScratchInstance::name_for(&sql.instance, now).name;
                        match config.source {
                            DrillSource::LatestBackup => {
                                let b = latest_verified(&sql, &BackupFilter::default()).await;
                                // Cloud SQL records no verification: its newest complete run.
                                let b = match b {
                                    Ok(b) => b,
                                    Err(_) => sql
                                        .list(&BackupFilter {
                                            limit: Some(1),
                                            ..Default::default()
                                        })
                                        .await?
                                        .into_iter()
                                        .next()
                                        .ok_or_else(|| {
                                            Error::new(
                                                "gcp",
                                                "restore_drill",
                                                ErrorKind::NotFound {
                                                    resource: format!(
                                                        "a successful backup run of {}",
                                                        sql.instance
                                                    ),
                                                },
                                            )
                                        })?,
                                };
                                Ok((scratch, Some(b.id), None))
                            }
                            DrillSource::PointInTime { ago } => {
                                let at = now - chrono::Duration::from_std(ago).unwrap_or_default();
                                Ok((scratch, None, Some(at)))
                            }
                            DrillSource::PointInTimeAt { at } if at > now => {
                                Err(Error::invalid_input(
                                    "gcp",
                                    "restore_drill",
                                    "source.at",
                                    format!("{at} is in the future"),
                                ))
                            }
                            DrillSource::PointInTimeAt { at } => Ok((scratch, None, Some(at))),
                        }
                    },
                ))
            }));
        let (sql, sql_undo, plan_undo) = (self.sql.clone(), self.sql.clone(), plan.clone());
        let plan2 = plan.clone();
        rb = rb.step(
            Step::mutate("create-scratch", move |ctx| {
                let (scratch, backup, at) = ctx.get(&plan2)?;
                let sql = sql.clone();
                let scratch = ScratchInstance { name: scratch };
                Ok(Action::new(
                    if at.is_some() {
                        "POST instances/{source}/clone"
                    } else {
                        "POST instances"
                    },
                    json!({"instance": scratch.name, "backup": backup, "point_in_time": at}),
                    async move {
                        let made = match at {
                            Some(at) => sql.clone_at(&scratch, at).await?,
                            None => sql.create_scratch(&scratch).await?,
                        };
                        Ok(made.name)
                    },
                ))
            })
            .compensate(move |ctx| {
                let (scratch, _, _) = ctx.get(&plan_undo)?;
                Ok(delete_scratch(sql_undo.clone(), scratch))
            }),
        );
        let (sql, plan3) = (self.sql.clone(), plan.clone());
        rb = rb.step(Step::mutate("restore", move |ctx| {
            let (scratch, backup, _) = ctx.get(&plan3)?;
            let sql = sql.clone();
            Ok(Action::new(
                "POST instances/{scratch}/restoreBackup",
                json!({"instance": scratch, "backup": backup}),
                async move {
                    // A point-in-time clone holds the data already.
                    if let Some(id) = backup {
                        sql.restore(&id, &ops_core::contracts::RestoreTarget::Other(scratch))
                            .await?;
                    }
                    Ok(())
                },
            ))
        }));
        let (sql, plan4, counter, tables) = (
            self.sql.clone(),
            plan.clone(),
            self.counter.clone(),
            self.config.tables.clone(),
        );
        // It reads, but only what the mutations before it made: a mutation for the engine, so
        // a dry run plans it rather than looking for an instance it did not create.
        rb = rb.step(
            Step::mutate("count-rows", move |ctx| {
                let (scratch, backup, at) = ctx.get(&plan4)?;
                let (sql, counter, tables) = (sql.clone(), counter.clone(), tables.clone());
                Ok(Action::new(
                    "RowCounter::row_counts",
                    json!({"instance": scratch, "tables": tables}),
                    async move {
                        let instance = sql.instance_info(Some(&scratch)).await?;
                        let all = counter.row_counts(&instance).await?;
                        let mut counts = BTreeMap::new();
                        let mut short = Vec::new();
                        for (table, min) in &tables {
                            match all.get(table) {
                                Some(n) if n >= min => {
                                    counts.insert(table.clone(), *n);
                                }
                                Some(n) => {
                                    counts.insert(table.clone(), *n);
                                    short.push(format!(
                                        "{table} has {n} rows, expected at least {min}"
                                    ));
                                }
                                None => short.push(format!("{table} is missing from the restore")),
                            }
                        }
                        if !short.is_empty() {
                            return Err(Error::new(
                                "gcp",
                                "restore_drill",
                                ErrorKind::VerificationFailed {
                                    check: "row_counts".into(),
                                    detail: short.join("; "),
                                },
                            ));
                        }
                        let restored = match (backup, at) {
                            (Some(id), _) => format!("backup run {id}"),
                            (None, Some(at)) => format!("point in time {}", at.to_rfc3339()),
                            _ => String::new(),
                        };
                        Ok(DrillReport {
                            restored,
                            instance: scratch,
                            counts,
                        })
                    },
                ))
            })
            .idempotent(),
        );
        let (sql, plan5) = (self.sql.clone(), plan);
        rb = rb.step(
            Step::mutate("delete-scratch", move |ctx| {
                let (scratch, _, _) = ctx.get(&plan5)?;
                Ok(delete_scratch(sql.clone(), scratch))
            })
            .idempotent(),
        );
        Ok(rb)
    }
}

/// Deleting the scratch instance: the drill's last step, and what undoes its creation.
fn delete_scratch(sql: CloudSql, scratch: String) -> Action {
    Action::new(
        "DELETE instances/{scratch}",
        json!({"instance": scratch}),
        async move {
            sql.delete_scratch(&ScratchInstance { name: scratch })
                .await?;
            Ok(())
        },
    )
}

impl Procedure for RestoreDrill {
    type Summary = DrillReport;

    fn runbook(&self) -> Result<Runbook> {
        self.build()
    }

    fn summary(&self, report: &RunReport) -> Option<DrillReport> {
        report.output("count-rows")
    }
}
