//! Reading a run's journal to see where to pick it up.

use std::collections::{HashMap, HashSet};

use crate::engine::{EventKind, JournalEvent, Mode, RunOutcome, Runbook};
use crate::{Error, ErrorKind, Result};

/// Where a run starts from.
#[derive(Debug, Clone, Default)]
pub(super) struct Resumption {
    /// Whether this continues an earlier run.
    pub resumed: bool,
    /// Steps and gates already done (not to repeat).
    pub done: HashSet<String>,
    /// Steps that were started and never finished (the process died mid-step).
    pub in_flight: HashSet<String>,
    /// Outputs of the done steps, as journaled.
    pub outputs: HashMap<String, serde_json::Value>,
}

impl Resumption {
    pub fn fresh() -> Self {
        Self::default()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Last {
    Started,
    Succeeded,
    Ended,
}

pub(super) fn analyse(
    runbook: &Runbook,
    run_id: &str,
    history: &[JournalEvent],
) -> Result<Resumption> {
    let invalid = |reason: String| Error::invalid_input("engine", "resume", "run_id", reason);
    let (mode, recorded) = history
        .iter()
        .find_map(|e| match &e.kind {
            EventKind::RunStarted { mode, steps, .. } => Some((*mode, steps.clone())),
            _ => None,
        })
        .ok_or_else(|| {
            Error::new(
                "engine",
                "resume",
                ErrorKind::NotFound {
                    resource: format!("run {run_id}"),
                },
            )
        })?;
    let first = &history[0];
    if first.runbook != runbook.name || first.target != runbook.target {
        return Err(invalid(format!(
            "run {run_id} is of runbook {} on {}, not {} on {}",
            first.runbook, first.target, runbook.name, runbook.target
        )));
    }
    if mode == Mode::DryRun {
        return Err(invalid(format!(
            "run {run_id} was a dry run: start a new run instead"
        )));
    }
    if recorded != runbook.names() {
        return Err(invalid(format!(
            "the runbook's steps changed since run {run_id} started: start a new run"
        )));
    }
    let finished = history.iter().rev().find_map(|e| match &e.kind {
        EventKind::RunFinished { outcome, .. } => Some(*outcome),
        EventKind::RunStarted { .. } => Some(RunOutcome::Planned), // a later start: not finished since
        _ => None,
    });
    if finished == Some(RunOutcome::Succeeded) {
        return Err(invalid(format!("run {run_id} already succeeded")));
    }

    let mut last: HashMap<&str, Last> = HashMap::new();
    let mut outputs = HashMap::new();
    for e in history {
        match &e.kind {
            EventKind::StepStarted { step, .. } => {
                last.insert(step, Last::Started);
            }
            EventKind::StepSucceeded { step, output, .. } => {
                last.insert(step, Last::Succeeded);
                outputs.insert(step.clone(), output.clone());
            }
            // Approved gates stay approved.
            EventKind::ApprovalGranted { gate, .. } => {
                last.insert(gate, Last::Succeeded);
            }
            EventKind::StepFailed { step, .. } | EventKind::StepCancelled { step } => {
                last.insert(step, Last::Ended);
            }
            EventKind::ApprovalDenied { gate, .. } => {
                last.insert(gate, Last::Ended);
            }
            // Undone: it must run again. (A failed compensation leaves the effect: still done.)
            EventKind::CompensationSucceeded { step, .. } => {
                last.insert(step, Last::Ended);
                outputs.remove(step);
            }
            _ => {}
        }
    }
    let pick = |want: Last| {
        last.iter()
            .filter(|(_, l)| **l == want)
            .map(|(s, _)| s.to_string())
            .collect::<HashSet<_>>()
    };
    let done = pick(Last::Succeeded);
    outputs.retain(|k, _| done.contains(k));
    Ok(Resumption {
        resumed: true,
        done,
        in_flight: pick(Last::Started),
        outputs,
    })
}
