//! Where schedulers agree on who runs what: one record per occurrence, claimed atomically, so
//! however many replicas tick, each occurrence is run (or journaled as missed) exactly once.
//! A running occurrence holds a lease its replica renews; a replica that dies stops renewing,
//! and another takes the occurrence over when the lease has run out.

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

/// The shared record of occurrences. Implementations: [`super::MemoryOccurrenceStore`] (one
/// process), [`super::FileOccurrenceStore`] (processes on one machine, the embedded default)
/// and PostgreSQL in `ops-postgres` (replicas on several machines).
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
