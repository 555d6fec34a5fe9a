//! [`PgRunLock`]: run locks as PostgreSQL advisory locks, so runners on several machines never
//! run the same runbook on the same target at once.
//!
//! Each lease holds its own session with `pg_advisory_lock(hashtextextended(key))`: if the
//! process dies, the session ends and PostgreSQL releases the lock — no stale lock to clean
//! up. A row in `ops_run_locks` says who holds it (for the conflict message); a row left by a
//! dead holder is reported as `recovered_from` by the next one.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use ops_core::clock::{SharedClock, system_clock};
use ops_core::engine::{LockHolder, LockLease, LockWait, RunLock, lock_conflict};
use ops_core::{Error, ErrorKind, Result};

use crate::connect::Postgres;
use crate::error::pg_error;
use crate::journal::migrate;

/// How often a waiter tries again.
const POLL: Duration = Duration::from_millis(50);

/// Advisory-lock run locks in one database.
pub struct PgRunLock {
    db: Postgres,
    clock: SharedClock,
    held: Mutex<HashMap<String, (LockLease, tokio_postgres::Client)>>,
}

impl std::fmt::Debug for PgRunLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgRunLock")
            .field("db", &self.db)
            .finish_non_exhaustive()
    }
}

impl PgRunLock {
    /// Locks in `db`, creating the holder table if needed.
    pub async fn new(db: Postgres) -> Result<Self> {
        migrate(&db, "CREATE TABLE IF NOT EXISTS ops_run_locks (key text PRIMARY KEY, holder jsonb NOT NULL, since timestamptz NOT NULL);").await?;
        Ok(Self {
            db,
            clock: system_clock(),
            held: Mutex::new(HashMap::new()),
        })
    }

    /// The same locks waiting on `clock`.
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    async fn holder_of(client: &tokio_postgres::Client, key: &str) -> Result<Option<LockHolder>> {
        let row = client
            .query_opt("SELECT holder FROM ops_run_locks WHERE key = $1", &[&key])
            .await
            .map_err(|e| pg_error("lock_holder", &e))?;
        Ok(row.and_then(|r| serde_json::from_value(r.get::<_, serde_json::Value>(0)).ok()))
    }
}

#[async_trait]
impl RunLock for PgRunLock {
    async fn acquire(&self, key: &str, holder: &LockHolder, wait: LockWait) -> Result<LockLease> {
        ops_core::contracts::validate_name("postgres", "lock", "key", key)?;
        let client = self.db.dedicated().await?;
        let started = self.clock.instant();
        loop {
            let got: bool = client
                .query_one(
                    "SELECT pg_try_advisory_lock(hashtextextended($1, 0))",
                    &[&key],
                )
                .await
                .map_err(|e| pg_error("lock_acquire", &e))?
                .get(0);
            if got {
                break;
            }
            let waited = self.clock.instant().saturating_duration_since(started);
            match wait {
                LockWait::Wait(limit) if waited < limit => {
                    self.clock.sleep(POLL.min(limit - waited)).await
                }
                LockWait::Wait(_) => {
                    return Err(lock_conflict(
                        "postgres",
                        key,
                        Self::holder_of(&client, key).await?.as_ref(),
                        Some(waited),
                    ));
                }
                LockWait::Fail => {
                    return Err(lock_conflict(
                        "postgres",
                        key,
                        Self::holder_of(&client, key).await?.as_ref(),
                        None,
                    ));
                }
            }
        }
        // We hold the lock: a row still here was left by a holder whose session died.
        let recovered_from = Self::holder_of(&client, key).await?;
        if let Some(dead) = &recovered_from {
            tracing::warn!(key, run = %dead.run_id, host = %dead.host, "took over a lock whose holder died");
        }
        let json = serde_json::to_value(holder)
            .map_err(|e| Error::invalid_input("postgres", "lock", "holder", e.to_string()))?;
        client
            .execute(
                "INSERT INTO ops_run_locks (key, holder, since) VALUES ($1, $2, $3)
                 ON CONFLICT (key) DO UPDATE SET holder = EXCLUDED.holder, since = EXCLUDED.since",
                &[&key, &json, &holder.since],
            )
            .await
            .map_err(|e| pg_error("lock_acquire", &e))?;
        let lease = LockLease {
            key: key.to_string(),
            holder: holder.clone(),
            recovered_from,
        };
        self.held
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key.to_string(), (lease.clone(), client));
        Ok(lease)
    }

    async fn release(&self, lease: &LockLease) -> Result<()> {
        let entry = {
            let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
            match held.get(&lease.key) {
                Some((l, _)) if l.holder.run_id == lease.holder.run_id => held.remove(&lease.key),
                _ => None,
            }
        };
        let Some((_, client)) = entry else {
            return Err(Error::new(
                "postgres",
                "lock_release",
                ErrorKind::NotFound {
                    resource: format!("a held lock {} for run {}", lease.key, lease.holder.run_id),
                },
            ));
        };
        client
            .execute("DELETE FROM ops_run_locks WHERE key = $1", &[&lease.key])
            .await
            .map_err(|e| pg_error("lock_release", &e))?;
        client
            .query_one(
                "SELECT pg_advisory_unlock(hashtextextended($1, 0))",
                &[&lease.key],
            )
            .await
            .map_err(|e| pg_error("lock_release", &e))?;
        Ok(())
    }
}
