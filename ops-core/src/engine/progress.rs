//! Progress events for callers to render (progress bars, logs).

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::engine::{RunOutcome, StepStatus};

/// Something a run did, as it happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "progress", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ProgressEvent {
    /// The run began.
    RunStarted {
        /// The run.
        run_id: String,
        /// The runbook.
        runbook: String,
        /// Steps and gates in all.
        total: usize,
    },
    /// A step or gate began.
    StepStarted {
        /// Its position (0-based, as in the runbook's names).
        index: usize,
        /// Its name.
        step: String,
    },
    /// A step's attempt failed; it will be retried.
    StepRetrying {
        /// The step.
        step: String,
        /// The attempt that failed.
        attempt: u32,
        /// The wait before the next.
        wait: Duration,
    },
    /// A step or gate ended.
    StepFinished {
        /// Its position.
        index: usize,
        /// Its name.
        step: String,
        /// How.
        status: StepStatus,
    },
    /// A gate is waiting for its approver.
    AwaitingApproval {
        /// The gate.
        gate: String,
    },
    /// A completed step is being undone.
    Compensating {
        /// The step.
        step: String,
    },
    /// The run paused at a step boundary.
    Paused,
    /// The run resumed.
    Resumed,
    /// The run ended.
    RunFinished {
        /// How.
        outcome: RunOutcome,
    },
}

/// Receives progress events. Must not block: it is called from the run.
pub trait ProgressSink: Send + Sync {
    /// One event.
    fn emit(&self, event: ProgressEvent);
}

impl ProgressSink for mpsc::UnboundedSender<ProgressEvent> {
    fn emit(&self, event: ProgressEvent) {
        // A receiver that went away only stops the display, never the run.
        let _ = self.send(event);
    }
}

/// A sink and the stream of its events.
pub fn progress_channel() -> (
    Arc<dyn ProgressSink>,
    mpsc::UnboundedReceiver<ProgressEvent>,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    (Arc::new(tx), rx)
}
