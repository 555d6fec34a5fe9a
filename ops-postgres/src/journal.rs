//! [`PgJournal`]: the run journal in a table, shared by runners on several machines.

use async_trait::async_trait;
use ops_core::Result;
use ops_core::engine::{Journal, JournalEvent, JournalFilter};

use crate::connect::Postgres;
use crate::error::pg_error;

/// The journal in `ops_journal` (created on first use; an index on run id).
///
/// Same behaviour as the embedded journals: one row per event, a run's events in the order
/// appended, filters by run, runbook, target and time.
#[derive(Debug, Clone)]
pub struct PgJournal {
    db: Postgres,
}

/// Creates the tables once per database, even with several runners starting at once.
pub(crate) async fn migrate(db: &Postgres, ddl: &str) -> Result<()> {
    let mut client = db.client().await?;
    let tx = client
        .transaction()
        .await
        .map_err(|e| pg_error("migrate", &e))?;
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended('ops-migrate', 0))",
        &[],
    )
    .await
    .map_err(|e| pg_error("migrate", &e))?;
    tx.batch_execute(ddl)
        .await
        .map_err(|e| pg_error("migrate", &e))?;
    tx.commit().await.map_err(|e| pg_error("migrate", &e))
}

impl PgJournal {
    /// The journal in `db`, creating its table if needed.
    pub async fn new(db: Postgres) -> Result<Self> {
        migrate(
            &db,
            "CREATE TABLE IF NOT EXISTS ops_journal (
                 id bigserial PRIMARY KEY,
                 run_id text NOT NULL,
                 runbook text NOT NULL,
                 target text NOT NULL,
                 seq bigint NOT NULL,
                 at timestamptz NOT NULL,
                 event jsonb NOT NULL);
             CREATE INDEX IF NOT EXISTS ops_journal_run ON ops_journal (run_id, id);
             CREATE INDEX IF NOT EXISTS ops_journal_at ON ops_journal (at);",
        )
        .await?;
        Ok(Self { db })
    }
}

#[async_trait]
impl Journal for PgJournal {
    async fn append(&self, event: &JournalEvent) -> Result<()> {
        let json = serde_json::to_value(event).map_err(|e| {
            ops_core::Error::invalid_input("postgres", "journal", "event", e.to_string())
        })?;
        let client = self.db.client().await?;
        client
            .execute(
                "INSERT INTO ops_journal (run_id, runbook, target, seq, at, event) VALUES ($1, $2, $3, $4, $5, $6)",
                &[&event.run_id, &event.runbook, &event.target, &(event.seq as i64), &event.at, &json],
            )
            .await
            .map_err(|e| pg_error("journal_append", &e))?;
        Ok(())
    }

    async fn events(&self, filter: &JournalFilter) -> Result<Vec<JournalEvent>> {
        let client = self.db.client().await?;
        // The columns narrow the search (timestamptz keeps microseconds); the exact filter
        // runs on the events themselves.
        let rows = client
            .query(
                "SELECT event FROM ops_journal
                 WHERE ($1::text IS NULL OR run_id = $1)
                   AND ($2::text IS NULL OR runbook = $2)
                   AND ($3::text IS NULL OR target = $3)
                   AND ($4::timestamptz IS NULL OR at >= date_trunc('microseconds', $4::timestamptz))
                 ORDER BY id",
                &[&filter.run_id, &filter.runbook, &filter.target, &filter.since],
            )
            .await
            .map_err(|e| pg_error("journal_events", &e))?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let v: serde_json::Value = row.get(0);
            let e: JournalEvent = serde_json::from_value(v).map_err(|e| {
                ops_core::Error::new(
                    "postgres",
                    "journal_events",
                    ops_core::ErrorKind::Decode {
                        detail: format!("a journal row is not an event: {e}"),
                    },
                )
            })?;
            if filter.matches(&e) {
                out.push(e);
            }
        }
        Ok(out)
    }
}
