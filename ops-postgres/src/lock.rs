//! [`PgRunLock`]: run locks as PostgreSQL advisory locks, so runners on several machines never
//! run the same runbook on the same target at once.
//!
//! Each lease holds its own session with `pg_advisory_lock(hashtextextended(key))`: if the
//! process dies, the session ends and PostgreSQL releases the lock — no stale lock to clean
//! up. A row in `ops_run_locks` says who holds it (for the conflict message); a row left by a
//! dead holder is reported as `recovered_from` by the next one.
//!
//! A lock can also vanish under a live holder: its session is terminated
//! (`pg_terminate_backend`), the server restarts or fails over, a pooler or a network cut drops
//! it. The holder watches its session: the connection's end is seen at once, and a keepalive
//! round trip (with TCP keepalives on) every [`PgRunLock::with_keepalive`] interval catches a
//! silent network cut. Either fires the lease's [`ops_core::engine::LeaseLoss`], and the runner
//! cancels the run before its next mutation. Every acquisition takes the next fencing token of
//! its key from `ops_run_fences`, which the runner records with each mutating step.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
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
/// How often a holder checks its lock's session, by default.
pub const DEFAULT_KEEPALIVE: Duration = Duration::from_secs(2);

/// One held lock: its lease, its session, and the task watching that session.
struct Held {
    lease: LockLease,
    client: Arc<tokio_postgres::Client>,
    watcher: tokio::task::JoinHandle<()>,
}

/// Advisory-lock run locks in one database.
pub struct PgRunLock {
    db: Postgres,
    clock: SharedClock,
    keepalive: Duration,
    held: Mutex<HashMap<String, Held>>,
}

impl Drop for PgRunLock {
    fn drop(&mut self) {
        for held in self.held.lock().unwrap_or_else(|e| e.into_inner()).values() {
            held.watcher.abort();
        }
    }
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
        migrate(
            &db,
            "CREATE TABLE IF NOT EXISTS ops_run_fences (key text PRIMARY KEY, fence bigint NOT NULL);",
        )
        .await?;
        Ok(Self {
            db,
            clock: system_clock(),
            keepalive: DEFAULT_KEEPALIVE,
            held: Mutex::new(HashMap::new()),
        })
    }

    /// Checks each held lock's session this often (default 2 s; at least 100 ms): a lock lost
    /// without its connection closing is noticed within about this long.
    pub fn with_keepalive(mut self, every: Duration) -> Self {
        self.keepalive = every.max(Duration::from_millis(100));
        self
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
        let (client, ended) = self.db.dedicated_watched(Some(self.keepalive)).await?;
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
        let fence: i64 = client
            .query_one(
                "INSERT INTO ops_run_fences (key, fence) VALUES ($1, 1)
                 ON CONFLICT (key) DO UPDATE SET fence = ops_run_fences.fence + 1
                 RETURNING fence",
                &[&key],
            )
            .await
            .map_err(|e| pg_error("lock_acquire", &e))?
            .get(0);
        let mut lease = LockLease::new(key, holder.clone());
        lease.recovered_from = recovered_from;
        lease.fence = u64::try_from(fence).ok();
        let client = Arc::new(client);
        let watcher = tokio::spawn(watch_session(
            Arc::downgrade(&client),
            ended,
            lease.lost.clone(),
            self.clock.clone(),
            self.keepalive,
        ));
        self.held.lock().unwrap_or_else(|e| e.into_inner()).insert(
            key.to_string(),
            Held {
                lease: lease.clone(),
                client,
                watcher,
            },
        );
        Ok(lease)
    }

    async fn release(&self, lease: &LockLease) -> Result<()> {
        let entry = {
            let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
            match held.get(&lease.key) {
                Some(h) if h.lease.holder.run_id == lease.holder.run_id => held.remove(&lease.key),
                _ => None,
            }
        };
        let Some(Held {
            client, watcher, ..
        }) = entry
        else {
            return Err(Error::new(
                "postgres",
                "lock_release",
                ErrorKind::NotFound {
                    resource: format!("a held lock {} for run {}", lease.key, lease.holder.run_id),
                },
            ));
        };
        // Given back on purpose: no longer a loss to report.
        watcher.abort();
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

/// Watches a lock's session until it ends or stops answering, then fires `lost`. It holds the
/// client weakly: dropping the lock (or the process ending) still closes the session.
async fn watch_session(
    client: std::sync::Weak<tokio_postgres::Client>,
    ended: tokio::sync::oneshot::Receiver<String>,
    lost: ops_core::engine::LeaseLoss,
    clock: SharedClock,
    every: Duration,
) {
    tokio::pin!(ended);
    loop {
        tokio::select! {
            why = &mut ended => {
                let why = why.unwrap_or_else(|_| "the connection was dropped".into());
                lost.signal(format!("the lock's session ended: {why}"));
                return;
            }
            () = clock.sleep(every) => {
                let Some(client) = client.upgrade() else {
                    return;
                };
                // The server's answer is waited for in real time: a rehearsal's fast clock
                // must not call a busy server lost.
                let answered =
                    ops_core::clock::peer_timeout(every, client.simple_query("SELECT 1")).await;
                match answered {
                    Some(Ok(_)) => {}
                    Some(Err(e)) => {
                        lost.signal(format!("the lock's session failed its keepalive: {e}"));
                        return;
                    }
                    None => {
                        lost.signal(format!("the lock's session did not answer within {every:?}"));
                        return;
                    }
                }
            }
        }
    }
}
