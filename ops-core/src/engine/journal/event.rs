//! Journal events: everything a run did, in order, enough to rebuild its report.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::engine::{Category, ErrorRecord, Mode, PlannedAction, RunOutcome, StepKind};

/// One journal line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JournalEvent {
    /// Position within its run, from 0.
    pub seq: u64,
    /// The run.
    pub run_id: String,
    /// The runbook's name.
    pub runbook: String,
    /// The target (service, database) the run acts on.
    pub target: String,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// What happened.
    #[serde(flatten)]
    pub kind: EventKind,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum EventKind {
    /// A run began (or was resumed).
    RunStarted {
        /// Execute or dry run.
        mode: Mode,
        /// The runbook's steps and gates, in order.
        steps: Vec<String>,
        /// Whether this continues an earlier run with the same id.
        resumed: bool,
        /// What kind of procedure it is; `None` in journals written before runs carried it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        category: Option<Category>,
    },
    /// A step's attempt began.
    StepStarted {
        /// The step.
        step: String,
        /// The attempt (1-based).
        attempt: u32,
        /// Read or mutate.
        #[serde(flatten)]
        kind: StepKind,
        /// The run lock's fencing token when a mutation started under a lock that keeps one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        fence: Option<u64>,
    },
    /// The run lock was lost mid-run (its session died, a keepalive failed): the run was
    /// cancelled before its next mutation, and completed steps were not undone, since another
    /// run may already hold the target.
    LockLost {
        /// The lock's key (the target).
        key: String,
        /// The lost lease's fencing token, if the lock keeps one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        fence: Option<u64>,
        /// Why the lock says it was lost.
        reason: String,
    },
    /// An attempt failed and will be retried.
    StepRetried {
        /// The step.
        step: String,
        /// The attempt that failed.
        attempt: u32,
        /// The wait before the next.
        #[serde(with = "crate::serde_duration")]
        wait: Duration,
        /// Why it failed.
        error: ErrorRecord,
    },
    /// A step succeeded.
    StepSucceeded {
        /// The step.
        step: String,
        /// Attempts it took.
        attempts: u32,
        /// Time from first attempt to success.
        #[serde(with = "crate::serde_duration")]
        duration: Duration,
        /// Its output (secrets masked), restored on resume.
        output: serde_json::Value,
    },
    /// A step failed for good.
    StepFailed {
        /// The step.
        step: String,
        /// Attempts made.
        attempts: u32,
        /// Time spent.
        #[serde(with = "crate::serde_duration")]
        duration: Duration,
        /// Why.
        error: ErrorRecord,
    },
    /// A dry run recorded a mutation instead of running it.
    StepPlanned {
        /// What would be called.
        action: PlannedAction,
    },
    /// A step was not run (already done in the run being resumed, or not reached).
    StepSkipped {
        /// The step.
        step: String,
        /// Why.
        reason: String,
    },
    /// A step was stopped by cancellation.
    StepCancelled {
        /// The step.
        step: String,
    },
    /// A completed step's compensation ran.
    CompensationSucceeded {
        /// The step compensated.
        step: String,
        /// The compensating call.
        call: String,
    },
    /// A completed step's compensation failed (the step's effect remains).
    CompensationFailed {
        /// The step compensated.
        step: String,
        /// The compensating call.
        call: String,
        /// Why it failed.
        error: ErrorRecord,
    },
    /// A gate asked for approval.
    ApprovalRequested {
        /// The gate.
        gate: String,
        /// What the approver was asked.
        prompt: String,
    },
    /// A gate was approved.
    ApprovalGranted {
        /// The gate.
        gate: String,
        /// Who approved.
        by: String,
        /// Their comment.
        comment: Option<String>,
    },
    /// A gate was denied (or its approval timed out).
    ApprovalDenied {
        /// The gate.
        gate: String,
        /// Who denied (`timeout` when nobody answered).
        by: String,
        /// Why.
        reason: String,
    },
    /// A step attached evidence (captured logs, a state snapshot) to the report.
    Evidence {
        /// The step.
        step: String,
        /// What it is.
        key: String,
        /// The evidence (secrets masked).
        value: serde_json::Value,
    },
    /// Change control decided whether the run may go on (journaled in the run, before any
    /// step).
    ChangeDecided {
        /// The decision.
        decision: crate::engine::change::ChangeDecision,
    },
    /// A change-control switch was set (journaled under
    /// [`crate::engine::change::CHANGE_CONTROL_RUN`]).
    ChangeControlSet {
        /// What was set.
        switch: crate::engine::change::ChangeSwitch,
        /// Who set it.
        by: String,
        /// Why.
        reason: String,
    },
    /// The run was paused at a step boundary.
    RunPaused,
    /// The run was resumed after a pause.
    RunResumed,
    /// The run ended.
    RunFinished {
        /// How.
        outcome: RunOutcome,
        /// The error that ended it, if any.
        error: Option<ErrorRecord>,
    },
}

impl EventKind {
    /// The step (or gate) the event is about, if any.
    pub fn step(&self) -> Option<&str> {
        match self {
            EventKind::StepStarted { step, .. }
            | EventKind::StepRetried { step, .. }
            | EventKind::StepSucceeded { step, .. }
            | EventKind::StepFailed { step, .. }
            | EventKind::StepSkipped { step, .. }
            | EventKind::StepCancelled { step }
            | EventKind::CompensationSucceeded { step, .. }
            | EventKind::CompensationFailed { step, .. }
            | EventKind::Evidence { step, .. } => Some(step),
            EventKind::StepPlanned { action } => Some(&action.step),
            EventKind::ApprovalRequested { gate, .. }
            | EventKind::ApprovalGranted { gate, .. }
            | EventKind::ApprovalDenied { gate, .. } => Some(gate),
            EventKind::RunStarted { .. }
            | EventKind::LockLost { .. }
            | EventKind::ChangeDecided { .. }
            | EventKind::ChangeControlSet { .. }
            | EventKind::RunPaused
            | EventKind::RunResumed
            | EventKind::RunFinished { .. } => None,
        }
    }
}
