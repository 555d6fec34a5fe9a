//! [`PgOccurrenceStore`]: scheduler replicas on several machines agree, through two tables, on
//! who runs each occurrence. Every write is one conditional statement, so the database's row
//! locking decides races: one `INSERT … ON CONFLICT DO NOTHING` wins a claim, one `UPDATE …
//! WHERE replica = … AND lease_until = …` wins a takeover.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ops_core::schedule::{OccurrenceRecord, OccurrenceStatus, OccurrenceStore};
use ops_core::{Error, ErrorKind, Result};
use tokio_postgres::Row;

use crate::connect::Postgres;
use crate::error::pg_error;
use crate::journal::migrate;

/// The occurrence store in `ops_occurrences` and `ops_schedule_watermarks` (created on first
/// use). Times are the schedulers' own (their injected clocks), never the server's `now()`:
/// leases mean the same on every replica and in simulated time.
#[derive(Debug, Clone)]
pub struct PgOccurrenceStore {
    db: Postgres,
}

const COLUMNS: &str = "schedule, occurrence, status, replica, run_id, lease_until, takeovers, cancel_requested, detail";

impl PgOccurrenceStore {
    /// The store in `db`, creating its tables if needed.
    pub async fn new(db: Postgres) -> Result<Self> {
        migrate(
            &db,
            "CREATE TABLE IF NOT EXISTS ops_occurrences (
                 schedule text NOT NULL,
                 occurrence timestamptz NOT NULL,
                 status text NOT NULL,
                 replica text,
                 run_id text,
                 lease_until timestamptz,
                 takeovers integer NOT NULL DEFAULT 0,
                 cancel_requested boolean NOT NULL DEFAULT false,
                 detail text,
                 PRIMARY KEY (schedule, occurrence));
             CREATE INDEX IF NOT EXISTS ops_occurrences_leases
                 ON ops_occurrences (lease_until) WHERE status = 'running';
             CREATE TABLE IF NOT EXISTS ops_schedule_watermarks (
                 schedule text PRIMARY KEY,
                 through timestamptz NOT NULL);",
        )
        .await?;
        Ok(Self { db })
    }

    async fn query(
        &self,
        operation: &'static str,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<Row>> {
        let client = self.db.client().await?;
        client
            .query(sql, params)
            .await
            .map_err(|e| pg_error(operation, &e))
    }

    async fn execute(
        &self,
        operation: &'static str,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<u64> {
        let client = self.db.client().await?;
        client
            .execute(sql, params)
            .await
            .map_err(|e| pg_error(operation, &e))
    }
}

fn status_name(s: OccurrenceStatus) -> &'static str {
    match s {
        OccurrenceStatus::Running => "running",
        OccurrenceStatus::Succeeded => "succeeded",
        OccurrenceStatus::Failed => "failed",
        OccurrenceStatus::Missed => "missed",
        OccurrenceStatus::Skipped => "skipped",
    }
}

fn record(row: &Row) -> Result<OccurrenceRecord> {
    let decode =
        |detail: String| Error::new("postgres", "occurrences", ErrorKind::Decode { detail });
    let status: String = row.try_get(2).map_err(|e| decode(e.to_string()))?;
    let status = match status.as_str() {
        "running" => OccurrenceStatus::Running,
        "succeeded" => OccurrenceStatus::Succeeded,
        "failed" => OccurrenceStatus::Failed,
        "missed" => OccurrenceStatus::Missed,
        "skipped" => OccurrenceStatus::Skipped,
        other => return Err(decode(format!("unknown occurrence status {other:?}"))),
    };
    let get = |e: tokio_postgres::Error| decode(e.to_string());
    let takeovers: i32 = row.try_get(6).map_err(get)?;
    Ok(OccurrenceRecord {
        schedule: row.try_get(0).map_err(get)?,
        occurrence: row.try_get(1).map_err(get)?,
        status,
        replica: row.try_get(3).map_err(get)?,
        run_id: row.try_get(4).map_err(get)?,
        lease_until: row.try_get(5).map_err(get)?,
        takeovers: u32::try_from(takeovers).unwrap_or(0),
        cancel_requested: row.try_get(7).map_err(get)?,
        detail: row.try_get(8).map_err(get)?,
    })
}

fn records(rows: &[Row]) -> Result<Vec<OccurrenceRecord>> {
    rows.iter().map(record).collect()
}

#[async_trait]
impl OccurrenceStore for PgOccurrenceStore {
    async fn claim(&self, r: &OccurrenceRecord) -> Result<bool> {
        let takeovers = i32::try_from(r.takeovers).unwrap_or(i32::MAX);
        let n = self
            .execute(
                "occurrence_claim",
                &format!(
                    "INSERT INTO ops_occurrences ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                     ON CONFLICT (schedule, occurrence) DO NOTHING"
                ),
                &[
                    &r.schedule,
                    &r.occurrence,
                    &status_name(r.status),
                    &r.replica,
                    &r.run_id,
                    &r.lease_until,
                    &takeovers,
                    &r.cancel_requested,
                    &r.detail,
                ],
            )
            .await?;
        Ok(n == 1)
    }

    async fn renew(
        &self,
        schedule: &str,
        occurrence: DateTime<Utc>,
        replica: &str,
        lease_until: DateTime<Utc>,
    ) -> Result<Option<OccurrenceRecord>> {
        let rows = self
            .query(
                "occurrence_renew",
                &format!(
                    "UPDATE ops_occurrences SET lease_until = $4
                     WHERE schedule = $1 AND occurrence = $2 AND status = 'running' AND replica = $3
                     RETURNING {COLUMNS}"
                ),
                &[&schedule, &occurrence, &replica, &lease_until],
            )
            .await?;
        rows.first().map(record).transpose()
    }

    async fn started(
        &self,
        schedule: &str,
        occurrence: DateTime<Utc>,
        replica: &str,
        run_id: &str,
    ) -> Result<bool> {
        let n = self
            .execute(
                "occurrence_started",
                "UPDATE ops_occurrences SET run_id = $4
                 WHERE schedule = $1 AND occurrence = $2 AND status = 'running' AND replica = $3",
                &[&schedule, &occurrence, &replica, &run_id],
            )
            .await?;
        Ok(n == 1)
    }

    async fn finish(
        &self,
        schedule: &str,
        occurrence: DateTime<Utc>,
        replica: &str,
        status: OccurrenceStatus,
        detail: Option<String>,
    ) -> Result<bool> {
        let n = self
            .execute(
                "occurrence_finish",
                "UPDATE ops_occurrences SET status = $4, detail = $5, lease_until = NULL
                 WHERE schedule = $1 AND occurrence = $2 AND status = 'running' AND replica = $3",
                &[
                    &schedule,
                    &occurrence,
                    &replica,
                    &status_name(status),
                    &detail,
                ],
            )
            .await?;
        Ok(n == 1)
    }

    async fn expired(&self, now: DateTime<Utc>) -> Result<Vec<OccurrenceRecord>> {
        let rows = self
            .query(
                "occurrence_expired",
                &format!(
                    "SELECT {COLUMNS} FROM ops_occurrences
                     WHERE status = 'running' AND lease_until < $1 ORDER BY occurrence"
                ),
                &[&now],
            )
            .await?;
        records(&rows)
    }

    async fn take_over(
        &self,
        expired: &OccurrenceRecord,
        replica: &str,
        lease_until: DateTime<Utc>,
    ) -> Result<bool> {
        let n = self
            .execute(
                "occurrence_take_over",
                "UPDATE ops_occurrences
                 SET replica = $3, lease_until = $4, takeovers = takeovers + 1
                 WHERE schedule = $1 AND occurrence = $2 AND status = 'running'
                   AND replica IS NOT DISTINCT FROM $5 AND lease_until IS NOT DISTINCT FROM $6",
                &[
                    &expired.schedule,
                    &expired.occurrence,
                    &replica,
                    &lease_until,
                    &expired.replica,
                    &expired.lease_until,
                ],
            )
            .await?;
        Ok(n == 1)
    }

    async fn request_cancel(&self, schedule: &str, occurrence: DateTime<Utc>) -> Result<bool> {
        let n = self
            .execute(
                "occurrence_cancel",
                "UPDATE ops_occurrences SET cancel_requested = true
                 WHERE schedule = $1 AND occurrence = $2 AND status = 'running'",
                &[&schedule, &occurrence],
            )
            .await?;
        Ok(n == 1)
    }

    async fn running(&self, schedule: &str) -> Result<Vec<OccurrenceRecord>> {
        let rows = self
            .query(
                "occurrence_running",
                &format!(
                    "SELECT {COLUMNS} FROM ops_occurrences
                     WHERE schedule = $1 AND status = 'running' ORDER BY occurrence"
                ),
                &[&schedule],
            )
            .await?;
        records(&rows)
    }

    async fn watermark(&self, schedule: &str) -> Result<Option<DateTime<Utc>>> {
        let rows = self
            .query(
                "watermark",
                "SELECT through FROM ops_schedule_watermarks WHERE schedule = $1",
                &[&schedule],
            )
            .await?;
        rows.first()
            .map(|r| {
                r.try_get(0).map_err(|e| {
                    Error::new(
                        "postgres",
                        "watermark",
                        ErrorKind::Decode {
                            detail: e.to_string(),
                        },
                    )
                })
            })
            .transpose()
    }

    async fn advance(&self, schedule: &str, through: DateTime<Utc>) -> Result<()> {
        self.execute(
            "watermark_advance",
            "INSERT INTO ops_schedule_watermarks (schedule, through) VALUES ($1, $2)
             ON CONFLICT (schedule) DO UPDATE
             SET through = GREATEST(ops_schedule_watermarks.through, EXCLUDED.through)",
            &[&schedule, &through],
        )
        .await?;
        Ok(())
    }

    async fn records(
        &self,
        schedule: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<OccurrenceRecord>> {
        let rows = self
            .query(
                "occurrence_records",
                &format!(
                    "SELECT {COLUMNS} FROM ops_occurrences
                     WHERE schedule = $1 AND occurrence BETWEEN $2 AND $3 ORDER BY occurrence"
                ),
                &[&schedule, &from, &to],
            )
            .await?;
        records(&rows)
    }
}
