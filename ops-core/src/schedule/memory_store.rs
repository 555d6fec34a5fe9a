//! Occurrences in memory: the conditional writes every store makes, on plain maps. The memory
//! store keeps them in this process; the file store loads and saves them under a file lock.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::store::{OccurrenceRecord, OccurrenceStatus, OccurrenceStore};
use crate::Result;

/// Records and watermarks, with the store operations on them. Each write returns whether it
/// changed anything (the file store saves only then).
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct OccurrenceState {
    records: BTreeMap<(String, DateTime<Utc>), OccurrenceRecord>,
    watermarks: BTreeMap<String, DateTime<Utc>>,
}

/// The state as saved: JSON maps cannot have pair keys.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct SavedState {
    records: Vec<OccurrenceRecord>,
    watermarks: BTreeMap<String, DateTime<Utc>>,
}

impl From<SavedState> for OccurrenceState {
    fn from(s: SavedState) -> Self {
        Self {
            records: s
                .records
                .into_iter()
                .map(|r| ((r.schedule.clone(), r.occurrence), r))
                .collect(),
            watermarks: s.watermarks,
        }
    }
}

impl From<&OccurrenceState> for SavedState {
    fn from(s: &OccurrenceState) -> Self {
        Self {
            records: s.records.values().cloned().collect(),
            watermarks: s.watermarks.clone(),
        }
    }
}

impl OccurrenceState {
    fn held(
        &mut self,
        schedule: &str,
        occurrence: DateTime<Utc>,
        replica: &str,
    ) -> Option<&mut OccurrenceRecord> {
        let r = self.records.get_mut(&(schedule.to_string(), occurrence))?;
        (r.status == OccurrenceStatus::Running && r.replica.as_deref() == Some(replica))
            .then_some(r)
    }

    pub(crate) fn claim(&mut self, record: &OccurrenceRecord) -> bool {
        let key = (record.schedule.clone(), record.occurrence);
        if self.records.contains_key(&key) {
            return false;
        }
        self.records.insert(key, record.clone());
        true
    }

    pub(crate) fn renew(
        &mut self,
        schedule: &str,
        occurrence: DateTime<Utc>,
        replica: &str,
        lease_until: DateTime<Utc>,
    ) -> Option<OccurrenceRecord> {
        let r = self.held(schedule, occurrence, replica)?;
        r.lease_until = Some(lease_until);
        Some(r.clone())
    }

    pub(crate) fn started(
        &mut self,
        schedule: &str,
        occurrence: DateTime<Utc>,
        replica: &str,
        run_id: &str,
    ) -> bool {
        self.held(schedule, occurrence, replica)
            .map(|r| r.run_id = Some(run_id.to_string()))
            .is_some()
    }

    pub(crate) fn finish(
        &mut self,
        schedule: &str,
        occurrence: DateTime<Utc>,
        replica: &str,
        status: OccurrenceStatus,
        detail: Option<String>,
    ) -> bool {
        self.held(schedule, occurrence, replica)
            .map(|r| {
                r.status = status;
                r.lease_until = None;
                r.detail = detail;
            })
            .is_some()
    }

    pub(crate) fn expired(&self, now: DateTime<Utc>) -> Vec<OccurrenceRecord> {
        self.records
            .values()
            .filter(|r| {
                r.status == OccurrenceStatus::Running && r.lease_until.is_some_and(|l| l < now)
            })
            .cloned()
            .collect()
    }

    pub(crate) fn take_over(
        &mut self,
        expired: &OccurrenceRecord,
        replica: &str,
        lease_until: DateTime<Utc>,
    ) -> bool {
        let key = (expired.schedule.clone(), expired.occurrence);
        match self.records.get_mut(&key) {
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
    }

    pub(crate) fn request_cancel(&mut self, schedule: &str, occurrence: DateTime<Utc>) -> bool {
        match self.records.get_mut(&(schedule.to_string(), occurrence)) {
            Some(r) if r.status == OccurrenceStatus::Running && !r.cancel_requested => {
                r.cancel_requested = true;
                true
            }
            Some(r) => r.status == OccurrenceStatus::Running,
            None => false,
        }
    }

    pub(crate) fn running(&self, schedule: &str) -> Vec<OccurrenceRecord> {
        self.records
            .values()
            .filter(|r| r.schedule == schedule && r.status == OccurrenceStatus::Running)
            .cloned()
            .collect()
    }

    pub(crate) fn watermark(&self, schedule: &str) -> Option<DateTime<Utc>> {
        self.watermarks.get(schedule).copied()
    }

    pub(crate) fn advance(&mut self, schedule: &str, through: DateTime<Utc>) -> bool {
        match self.watermarks.get_mut(schedule) {
            Some(w) if *w >= through => false,
            Some(w) => {
                *w = through;
                true
            }
            None => {
                self.watermarks.insert(schedule.to_string(), through);
                true
            }
        }
    }

    pub(crate) fn records(
        &self,
        schedule: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Vec<OccurrenceRecord> {
        if from > to {
            return Vec::new();
        }
        self.records
            .range((schedule.to_string(), from)..=(schedule.to_string(), to))
            .map(|(_, r)| r.clone())
            .collect()
    }

    /// The latest watermark of any schedule.
    pub(crate) fn newest_watermark(&self) -> Option<DateTime<Utc>> {
        self.watermarks.values().max().copied()
    }

    /// Drops final records of occurrences before `before` (watermarks keep them decided).
    pub(crate) fn prune(&mut self, before: DateTime<Utc>) -> bool {
        let n = self.records.len();
        self.records
            .retain(|_, r| !(r.status.is_final() && r.occurrence < before));
        self.records.len() != n
    }
}

/// Occurrences in this process's memory: several schedulers of one process agree through it
/// (tests, rehearsals, a single replica that may forget on restart).
#[derive(Debug, Default)]
pub struct MemoryOccurrenceStore {
    state: Mutex<OccurrenceState>,
}

impl MemoryOccurrenceStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn with<T>(&self, f: impl FnOnce(&mut OccurrenceState) -> T) -> Result<T> {
        // A panic elsewhere while holding the lock leaves the maps consistent (every change is
        // one insert or field write), so a poisoned lock is still usable.
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        Ok(f(&mut state))
    }
}

#[async_trait]
impl OccurrenceStore for MemoryOccurrenceStore {
    async fn claim(&self, record: &OccurrenceRecord) -> Result<bool> {
        self.with(|s| s.claim(record))
    }

    async fn renew(
        &self,
        schedule: &str,
        occurrence: DateTime<Utc>,
        replica: &str,
        lease_until: DateTime<Utc>,
    ) -> Result<Option<OccurrenceRecord>> {
        self.with(|s| s.renew(schedule, occurrence, replica, lease_until))
    }

    async fn started(
        &self,
        schedule: &str,
        occurrence: DateTime<Utc>,
        replica: &str,
        run_id: &str,
    ) -> Result<bool> {
        self.with(|s| s.started(schedule, occurrence, replica, run_id))
    }

    async fn finish(
        &self,
        schedule: &str,
        occurrence: DateTime<Utc>,
        replica: &str,
        status: OccurrenceStatus,
        detail: Option<String>,
    ) -> Result<bool> {
        self.with(|s| s.finish(schedule, occurrence, replica, status, detail))
    }

    async fn expired(&self, now: DateTime<Utc>) -> Result<Vec<OccurrenceRecord>> {
        self.with(|s| s.expired(now))
    }

    async fn take_over(
        &self,
        expired: &OccurrenceRecord,
        replica: &str,
        lease_until: DateTime<Utc>,
    ) -> Result<bool> {
        self.with(|s| s.take_over(expired, replica, lease_until))
    }

    async fn request_cancel(&self, schedule: &str, occurrence: DateTime<Utc>) -> Result<bool> {
        self.with(|s| s.request_cancel(schedule, occurrence))
    }

    async fn running(&self, schedule: &str) -> Result<Vec<OccurrenceRecord>> {
        self.with(|s| s.running(schedule))
    }

    async fn watermark(&self, schedule: &str) -> Result<Option<DateTime<Utc>>> {
        self.with(|s| s.watermark(schedule))
    }

    async fn advance(&self, schedule: &str, through: DateTime<Utc>) -> Result<()> {
        self.with(|s| {
            s.advance(schedule, through);
        })
    }

    async fn records(
        &self,
        schedule: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<OccurrenceRecord>> {
        self.with(|s| s.records(schedule, from, to))
    }
}
