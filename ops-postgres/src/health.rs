//! [`PgHealth`]: the seeds' `pg_isready` and `SELECT count(*) FROM pg_stat_activity`, as one
//! probe: round trip, version, connections against `max_connections`, long-running queries,
//! sessions idle in a transaction, and replication lag on a replica.

use std::time::Duration;

use async_trait::async_trait;
use ops_core::Result;
use ops_core::clock::{SharedClock, system_clock};
use ops_core::contracts::{CheckResult, HealthProbe, HealthReport, HealthStatus};

use crate::connect::Postgres;

/// Thresholds of the probe.
#[derive(Debug, Clone, PartialEq)]
pub struct PgHealthConfig {
    /// Connections / `max_connections` at which the probe warns (0.80).
    pub connections_warn: f64,
    /// … and fails (0.95).
    pub connections_critical: f64,
    /// A query running longer than this is reported (5 minutes).
    pub long_query: Duration,
    /// A session idle in a transaction longer than this is reported (1 minute).
    pub idle_in_transaction: Duration,
    /// Replica lag that warns (30 s) and fails (5 minutes).
    pub lag_warn: Duration,
    /// Replica lag that fails.
    pub lag_critical: Duration,
}

impl Default for PgHealthConfig {
    fn default() -> Self {
        Self {
            connections_warn: 0.80,
            connections_critical: 0.95,
            long_query: Duration::from_secs(300),
            idle_in_transaction: Duration::from_secs(60),
            lag_warn: Duration::from_secs(30),
            lag_critical: Duration::from_secs(300),
        }
    }
}

/// A health probe of one database.
#[derive(Debug, Clone)]
pub struct PgHealth {
    db: Postgres,
    config: PgHealthConfig,
    clock: SharedClock,
    name: String,
}

impl PgHealth {
    /// Probes `db` with `config`.
    pub fn new(db: Postgres, config: PgHealthConfig) -> Self {
        let name = format!(
            "postgres:{}",
            db.config().settings().get_dbname().unwrap_or("postgres")
        );
        Self {
            db,
            config,
            clock: system_clock(),
            name,
        }
    }

    /// The same probe on `clock`.
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    async fn checks(
        &self,
    ) -> std::result::Result<Vec<(&'static str, HealthStatus, String, Duration)>, String> {
        let started = self.clock.instant();
        let client = self.db.client().await.map_err(|e| e.to_string())?;
        let row = client
            .query_one(
                "SELECT version(), current_setting('max_connections')::int, pg_is_in_recovery()",
                &[],
            )
            .await
            .map_err(|e| e.to_string())?;
        let rtt = self.clock.instant().saturating_duration_since(started);
        let version: String = row.get(0);
        let max: i32 = row.get(1);
        let replica: bool = row.get(2);
        let mut out = vec![(
            "connect",
            HealthStatus::Healthy,
            format!("answered in {} ms", rtt.as_millis()),
            rtt,
        )];
        out.push((
            "version",
            HealthStatus::Healthy,
            version.split(" on ").next().unwrap_or(&version).to_string(),
            Duration::ZERO,
        ));

        let q = |sql: &'static str| sql;
        let r = client
            .query_one(
                q("SELECT count(*),
                        count(*) FILTER (WHERE state = 'active' AND pid <> pg_backend_pid() AND now() - query_start > make_interval(secs => $1)),
                        count(*) FILTER (WHERE state LIKE 'idle in transaction%' AND now() - state_change > make_interval(secs => $2))
                   FROM pg_stat_activity WHERE backend_type = 'client backend'"),
                &[&self.config.long_query.as_secs_f64(), &self.config.idle_in_transaction.as_secs_f64()],
            )
            .await
            .map_err(|e| e.to_string())?;
        let (used, long, idle): (i64, i64, i64) = (r.get(0), r.get(1), r.get(2));
        let ratio = used as f64 / f64::from(max.max(1));
        let status = if ratio >= self.config.connections_critical {
            HealthStatus::Unhealthy
        } else if ratio >= self.config.connections_warn {
            HealthStatus::Degraded
        } else {
            HealthStatus::Healthy
        };
        out.push((
            "connections",
            status,
            format!("{used} of {max} ({:.0} %)", ratio * 100.0),
            Duration::ZERO,
        ));
        let s = |n: i64| {
            if n > 0 {
                HealthStatus::Degraded
            } else {
                HealthStatus::Healthy
            }
        };
        out.push((
            "long-running",
            s(long),
            format!(
                "{long} queries running longer than {} s",
                self.config.long_query.as_secs()
            ),
            Duration::ZERO,
        ));
        out.push((
            "idle-in-transaction",
            s(idle),
            format!(
                "{idle} sessions idle in a transaction longer than {} s",
                self.config.idle_in_transaction.as_secs()
            ),
            Duration::ZERO,
        ));
        if replica {
            let lag: Option<f64> = client
                .query_one(
                    "SELECT extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8",
                    &[],
                )
                .await
                .map_err(|e| e.to_string())?
                .get(0);
            let lag = Duration::from_secs_f64(lag.unwrap_or(0.0).max(0.0));
            let status = if lag >= self.config.lag_critical {
                HealthStatus::Unhealthy
            } else if lag >= self.config.lag_warn {
                HealthStatus::Degraded
            } else {
                HealthStatus::Healthy
            };
            out.push((
                "replication-lag",
                status,
                format!("replica {} s behind", lag.as_secs()),
                Duration::ZERO,
            ));
        }
        Ok(out)
    }
}

#[async_trait]
impl HealthProbe for PgHealth {
    fn name(&self) -> &str {
        &self.name
    }

    /// An unreachable server is an unhealthy report (with why), not an error.
    async fn check(&self) -> Result<HealthReport> {
        let now = self.clock.now();
        let started = self.clock.instant();
        let checks = match self.checks().await {
            Ok(c) => c,
            Err(why) => vec![(
                "connect",
                HealthStatus::Unhealthy,
                why,
                self.clock.instant().saturating_duration_since(started),
            )],
        };
        let checks = checks
            .into_iter()
            .map(|(name, status, detail, latency)| CheckResult {
                name: name.into(),
                status,
                detail,
                latency,
                observed_at: now,
            })
            .collect();
        Ok(HealthReport::from_checks(self.name.clone(), now, checks))
    }
}
