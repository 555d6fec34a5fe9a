//! Where schedulers agree on who runs what: one record per occurrence, claimed atomically, so
//! however many replicas tick, each occurrence is run (or journaled as missed) exactly once.
//! A running occurrence holds a lease its replica renews; a replica that dies stops renewing,
//! and another takes the occurrence over when the lease has run out.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::Result;

/// Where an occurrence stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OccurrenceStatus {
    /// A replica holds it and runs it (while its lease lasts).
    Running,
    /// Its run succeeded.
    Succeeded,
    /// Its run failed, was cancelled, or could not start.
    Failed,
    /// It never ran: its deadline passed while no scheduler ran, and catch-up left it.
    Missed,
    /// It never ran: the previous run was still going (`overlap = "skip"`).
    Skipped,
}

impl OccurrenceStatus {
    /// Whether it is decided for good.
    pub fn is_final(self) -> bool {
        self != OccurrenceStatus::Running
    }
}

/// One occurrence of one schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OccurrenceRecord {
    /// The schedule (the job's name).
    pub schedule: String,
    /// The occurrence's time (before jitter).
    pub occurrence: DateTime<Utc>,
    /// Where it stands.
    pub status: OccurrenceStatus,
    /// The replica that holds or held it.
    pub replica: Option<String>,
    /// Its run in the journal, when one was started.
    pub run_id: Option<String>,
    /// Until when the holder's claim lasts (while running).
    pub lease_until: Option<DateTime<Utc>>,
    /// How many times another replica took it over.
    pub takeovers: u32,
    /// A replica asked the holder to cancel it (`overlap = "cancel-running"`).
    pub cancel_requested: bool,
    /// Why it ended as it did (an error, why it was missed or skipped).
    pub detail: Option<String>,
}

impl OccurrenceRecord {
    /// A record of `occurrence` of `schedule` with `status`, nothing else set.
    pub fn new(schedule: &str, occurrence: DateTime<Utc>, status: OccurrenceStatus) -> Self {
        Self {
            schedule: schedule.to_string(),
            occurrence,
            status,
            replica: None,
            run_id: None,
            lease_until: None,
            takeovers: 0,
            cancel_requested: false,
            detail: None,
        }
    }
}

/// The shared record of occurrences. Implementations: [`MemoryOccurrenceStore`] (one
/// process), and PostgreSQL in `ops-postgres` (replicas on several machines).
///
/// Every write is conditional, so a replica acting on stale knowledge changes nothing.
#[async_trait]
pub trait OccurrenceStore: Send + Sync {
    /// Inserts `record` unless its occurrence already has one: `true` when this call
    /// inserted it (the caller now owns the decision), `false` when another did first.
    async fn claim(&self, record: &OccurrenceRecord) -> Result<bool>;

    /// Extends the lease of a running occurrence held by `replica`: `Ok(Some(record))` with
    /// the record after the renewal (which may carry a cancel request), `Ok(None)` when
    /// `replica` no longer holds it (taken over) or it is no longer running.
    async fn renew(
        &self,
        schedule: &str,
        occurrence: DateTime<Utc>,
        replica: &str,
        lease_until: DateTime<Utc>,
    ) -> Result<Option<OccurrenceRecord>>;

    /// Sets the run id of a running occurrence held by `replica`; `false` if not held.
    async fn started(
        &self,
        schedule: &str,
        occurrence: DateTime<Utc>,
        replica: &str,
        run_id: &str,
    ) -> Result<bool>;

    /// Ends a running occurrence held by `replica` with a final `status`; `false` when
    /// `replica` no longer holds it (its run's end is then not its to record).
    async fn finish(
        &self,
        schedule: &str,
        occurrence: DateTime<Utc>,
        replica: &str,
        status: OccurrenceStatus,
        detail: Option<String>,
    ) -> Result<bool>;

    /// Running occurrences whose lease ended before `now`: their replica stopped renewing.
    async fn expired(&self, now: DateTime<Utc>) -> Result<Vec<OccurrenceRecord>>;

    /// Moves an expired running occurrence to `replica` with a new lease, only if it is
    /// still held by `from` with the same lease (so of two replicas trying, one wins).
    async fn take_over(
        &self,
        expired: &OccurrenceRecord,
        replica: &str,
        lease_until: DateTime<Utc>,
    ) -> Result<bool>;

    /// Asks the holder of a running occurrence to cancel it; `false` if it is not running.
    async fn request_cancel(&self, schedule: &str, occurrence: DateTime<Utc>) -> Result<bool>;

    /// The running occurrences of `schedule`.
    async fn running(&self, schedule: &str) -> Result<Vec<OccurrenceRecord>>;

    /// Every occurrence of `schedule` is decided up to this instant (`None`: never ticked).
    async fn watermark(&self, schedule: &str) -> Result<Option<DateTime<Utc>>>;

    /// Moves the watermark forward to `through` (never back).
    async fn advance(&self, schedule: &str, through: DateTime<Utc>) -> Result<()>;

    /// The records of `schedule` with occurrences in `[from, to]`, oldest first.
    async fn records(
        &self,
        schedule: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<OccurrenceRecord>>;
}

/// Occurrences in this process's memory: several schedulers of one process agree through it
/// (tests, rehearsals, a single replica that may forget on restart).
#[derive(Debug, Default)]
pub struct MemoryOccurrenceStore {
    state: Mutex<MemoryState>,
}

#[derive(Debug, Default)]
struct MemoryState {
    records: BTreeMap<(String, DateTime<Utc>), OccurrenceRecord>,
    watermarks: BTreeMap<String, DateTime<Utc>>,
}

impl MemoryOccurrenceStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn with<T>(&self, f: impl FnOnce(&mut MemoryState) -> T) -> T {
        // A panic elsewhere while holding the lock leaves the maps consistent (every change is
        // one insert or field write), so a poisoned lock is still usable.
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut state)
    }

    fn held<T>(
        &self,
        schedule: &str,
        occurrence: DateTime<Utc>,
        replica: &str,
        f: impl FnOnce(&mut OccurrenceRecord) -> T,
    ) -> Option<T> {
        self.with(|s| {
            let r = s.records.get_mut(&(schedule.to_string(), occurrence))?;
            (r.status == OccurrenceStatus::Running && r.replica.as_deref() == Some(replica))
                .then(|| f(r))
        })
    }
}

#[async_trait]
impl OccurrenceStore for MemoryOccurrenceStore {
    async fn claim(&self, record: &OccurrenceRecord) -> Result<bool> {
        Ok(self.with(|s| {
            let key = (record.schedule.clone(), record.occurrence);
            if s.records.contains_key(&key) {
                return false;
            }
            s.records.insert(key, record.clone());
            true
        }))
    }

    async fn renew(
        &self,
        schedule: &str,
        occurrence: DateTime<Utc>,
        replica: &str,
        lease_until: DateTime<Utc>,
    ) -> Result<Option<OccurrenceRecord>> {
        Ok(self.held(schedule, occurrence, replica, |r| {
            r.lease_until = Some(lease_until);
            r.clone()
        }))
    }

    async fn started(
        &self,
        schedule: &str,
        occurrence: DateTime<Utc>,
        replica: &str,
        run_id: &str,
    ) -> Result<bool> {
        Ok(self
            .held(schedule, occurrence, replica, |r| {
                r.run_id = Some(run_id.to_string());
            })
            .is_some())
    }

    async fn finish(
        &self,
        schedule: &str,
        occurrence: DateTime<Utc>,
        replica: &str,
        status: OccurrenceStatus,
        detail: Option<String>,
    ) -> Result<bool> {
        Ok(self
            .held(schedule, occurrence, replica, |r| {
                r.status = status;
                r.lease_until = None;
                r.detail = detail;
            })
            .is_some())
    }

    async fn expired(&self, now: DateTime<Utc>) -> Result<Vec<OccurrenceRecord>> {
        Ok(self.with(|s| {
            s.records
                .values()
                .filter(|r| {
                    r.status == OccurrenceStatus::Running && r.lease_until.is_some_and(|l| l < now)
                })
                .cloned()
                .collect()
        }))
    }

    async fn take_over(
        &self,
        expired: &OccurrenceRecord,
        replica: &str,
        lease_until: DateTime<Utc>,
    ) -> Result<bool> {
        Ok(self.with(|s| {
            let key = (expired.schedule.clone(), expired.occurrence);
            match s.records.get_mut(&key) {
                Some(r)
                    if r.status == OccurrenceStatus::Running
                        && r.replica == expired.replica
                        && r.lease_until == expired.lease_until =>
                {
                    r.replica = Some(replica.to_string());
                    r.lease_until = Some(lease_until);
                    r.takeovers = r.takeovers.saturating_add(1);
                    true
                }
                _ => false,
            }
        }))
    }

    async fn request_cancel(&self, schedule: &str, occurrence: DateTime<Utc>) -> Result<bool> {
        Ok(self.with(
            |s| match s.records.get_mut(&(schedule.to_string(), occurrence)) {
                Some(r) if r.status == OccurrenceStatus::Running => {
                    r.cancel_requested = true;
                    true
                }
                _ => false,
            },
        ))
    }

    async fn running(&self, schedule: &str) -> Result<Vec<OccurrenceRecord>> {
        Ok(self.with(|s| {
            s.records
                .values()
                .filter(|r| r.schedule == schedule && r.status == OccurrenceStatus::Running)
                .cloned()
                .collect()
        }))
    }

    async fn watermark(&self, schedule: &str) -> Result<Option<DateTime<Utc>>> {
        Ok(self.with(|s| s.watermarks.get(schedule).copied()))
    }

    async fn advance(&self, schedule: &str, through: DateTime<Utc>) -> Result<()> {
        self.with(|s| {
            let w = s.watermarks.entry(schedule.to_string()).or_insert(through);
            *w = (*w).max(through);
        });
        Ok(())
    }

    async fn records(
        &self,
        schedule: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<OccurrenceRecord>> {
        if from > to {
            return Ok(Vec::new());
        }
        Ok(self.with(|s| {
            s.records
                .range((schedule.to_string(), from)..=(schedule.to_string(), to))
                .map(|(_, r)| r.clone())
                .collect()
        }))
    }
}
