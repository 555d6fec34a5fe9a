//! The run journal: an append-only record of every run, from which a run's report can be
//! rebuilt and an interrupted run resumed.

mod event;
mod file;

use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use event::{EventKind, JournalEvent};
pub use file::{FileJournal, FsyncPolicy};

use crate::Result;

/// Which events [`Journal::events`] returns.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalFilter {
    /// Only this run.
    pub run_id: Option<String>,
    /// Only this runbook.
    pub runbook: Option<String>,
    /// Only this target.
    pub target: Option<String>,
    /// Only events at or after this time.
    pub since: Option<DateTime<Utc>>,
}

impl JournalFilter {
    /// Only the events of `run_id`.
    pub fn run(run_id: impl Into<String>) -> Self {
        Self {
            run_id: Some(run_id.into()),
            ..Self::default()
        }
    }

    /// Whether `e` passes.
    pub fn matches(&self, e: &JournalEvent) -> bool {
        self.run_id.as_deref().is_none_or(|r| e.run_id == r)
            && self.runbook.as_deref().is_none_or(|r| e.runbook == r)
            && self.target.as_deref().is_none_or(|t| e.target == t)
            && self.since.is_none_or(|s| e.at >= s)
    }
}

/// Where runs are recorded. Appends must be durable to the degree the implementation
/// promises before `append` returns; reads return events in append order.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait Journal: Send + Sync {
    /// Records one event.
    async fn append(&self, event: &JournalEvent) -> Result<()>;
    /// The recorded events matching `filter`, in append order.
    async fn events(&self, filter: &JournalFilter) -> Result<Vec<JournalEvent>>;
}

/// A journal in memory (tests, dry runs, and rehearsals that keep no record).
#[derive(Debug, Default)]
pub struct MemoryJournal {
    events: Mutex<Vec<JournalEvent>>,
}

impl MemoryJournal {
    /// An empty journal.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl Journal for MemoryJournal {
    async fn append(&self, event: &JournalEvent) -> Result<()> {
        self.events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(event.clone());
        Ok(())
    }

    async fn events(&self, filter: &JournalFilter) -> Result<Vec<JournalEvent>> {
        let events = self.events.lock().unwrap_or_else(|p| p.into_inner());
        Ok(events
            .iter()
            .filter(|e| filter.matches(e))
            .cloned()
            .collect())
    }
}

/// A journal that keeps nothing: a run still returns its report, but cannot be resumed or
/// reported later. For benchmarks and throwaway rehearsals.
#[derive(Debug, Default, Clone, Copy)]
pub struct NullJournal;

#[async_trait]
impl Journal for NullJournal {
    async fn append(&self, _: &JournalEvent) -> Result<()> {
        Ok(())
    }

    async fn events(&self, _: &JournalFilter) -> Result<Vec<JournalEvent>> {
        Ok(Vec::new())
    }
}

/// One run, as its journal events tell it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunSummary {
    /// The run.
    pub run_id: String,
    /// Its runbook.
    pub runbook: String,
    /// Its target.
    pub target: String,
    /// When it first started.
    pub started_at: DateTime<Utc>,
    /// How it ended; `None` while it runs, after a crash, or while a resumption is under way.
    pub outcome: Option<crate::engine::RunOutcome>,
    /// What kind of procedure it is; `None` for runs journaled before runs carried it.
    pub category: Option<crate::engine::Category>,
}

/// The runs in `events` (in append order), in the order they started.
///
/// ```
/// use ops_core::engine::{run_summaries, EventKind, JournalEvent, Mode, RunOutcome};
/// let e = |seq, kind| JournalEvent { seq, run_id: "r1".into(), runbook: "deploy".into(),
///     target: "api".into(), at: chrono::DateTime::UNIX_EPOCH, kind };
/// let events = [
///     e(0, EventKind::RunStarted { mode: Mode::Execute, steps: vec![], resumed: false, category: None }),
///     e(1, EventKind::RunFinished { outcome: RunOutcome::Succeeded, error: None }),
/// ];
/// assert_eq!(run_summaries(&events)[0].outcome, Some(RunOutcome::Succeeded));
/// ```
pub fn run_summaries(events: &[JournalEvent]) -> Vec<RunSummary> {
    let mut runs: Vec<RunSummary> = Vec::new();
    let mut index: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    // Change-control switches share the journal but are not a run.
    for e in events
        .iter()
        .filter(|e| e.run_id != crate::engine::change::CHANGE_CONTROL_RUN)
    {
        let i = *index.entry(e.run_id.as_str()).or_insert_with(|| {
            runs.push(RunSummary {
                run_id: e.run_id.clone(),
                runbook: e.runbook.clone(),
                target: e.target.clone(),
                started_at: e.at,
                outcome: None,
                category: None,
            });
            runs.len() - 1
        });
        match &e.kind {
            EventKind::RunFinished { outcome, .. } => runs[i].outcome = Some(*outcome),
            EventKind::RunStarted {
                resumed, category, ..
            } => {
                if *resumed {
                    runs[i].outcome = None;
                }
                runs[i].category = category.or(runs[i].category);
            }
            _ => {}
        }
    }
    runs
}
