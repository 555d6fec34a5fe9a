//! [`RunReport`]: what a run did, rebuilt from its journal events alone, rendered as Markdown,
//! JSON or a compact terminal summary.

mod markdown;

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::engine::{ErrorRecord, EventKind, JournalEvent, Mode, PlannedAction, RunOutcome};
use crate::{Error, ErrorKind, Result};

/// Where a step ended up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    /// The run never got to it.
    NotReached,
    /// Started and not finished (in flight when the run stopped, or awaiting approval).
    Running,
    /// Done (for a gate: approved).
    Succeeded,
    /// Failed (for a gate: denied).
    Failed,
    /// Recorded in a dry run, not run.
    Planned,
    /// Not run.
    Skipped,
    /// Stopped by cancellation.
    Cancelled,
    /// Done, then undone by its compensation.
    Compensated,
    /// Done, and its compensation failed: its effect remains.
    CompensationFailed,
}

impl std::fmt::Display for StepStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            StepStatus::NotReached => "not reached",
            StepStatus::Running => "running",
            StepStatus::Succeeded => "succeeded",
            StepStatus::Failed => "failed",
            StepStatus::Planned => "planned",
            StepStatus::Skipped => "skipped",
            StepStatus::Cancelled => "cancelled",
            StepStatus::Compensated => "compensated",
            StepStatus::CompensationFailed => "compensation failed",
        })
    }
}

impl StepStatus {
    /// A short mark for terminal lists: `ok`, `FAIL`, `plan`, `undone`, `stop`, `..`, `-`.
    pub fn mark(self) -> &'static str {
        match self {
            StepStatus::Succeeded => "ok",
            StepStatus::Failed | StepStatus::CompensationFailed => "FAIL",
            StepStatus::Planned => "plan",
            StepStatus::Compensated => "undone",
            StepStatus::Cancelled => "stop",
            StepStatus::Running => "..",
            StepStatus::Skipped | StepStatus::NotReached => "-",
        }
    }
}

/// One step or gate in a report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepReport {
    /// Its name.
    pub name: String,
    /// Where it ended up.
    pub status: StepStatus,
    /// Attempts made (over every resumption of the run).
    pub attempts: u32,
    /// Time of its last finished attempt series.
    #[serde(with = "crate::config::duration::secs::option")]
    pub duration: Option<Duration>,
    /// Why it failed, if it did.
    pub error: Option<ErrorRecord>,
}

/// A gate's decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalRecord {
    /// The gate.
    pub gate: String,
    /// Approved or not.
    pub approved: bool,
    /// Who decided (`timeout` when nobody did).
    pub by: String,
    /// Their comment or reason.
    pub note: Option<String>,
    /// When.
    pub at: DateTime<Utc>,
}

/// A compensation that ran.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompensationRecord {
    /// The step undone.
    pub step: String,
    /// The compensating call.
    pub call: String,
    /// Why it failed, if it did.
    pub error: Option<ErrorRecord>,
}

/// Evidence a step attached.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvidenceRecord {
    /// The step.
    pub step: String,
    /// What it is.
    pub key: String,
    /// The evidence.
    pub value: serde_json::Value,
}

/// What a run did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    /// The run.
    pub run_id: String,
    /// Its runbook.
    pub runbook: String,
    /// Its target.
    pub target: String,
    /// Execute or dry run.
    pub mode: Mode,
    /// How it ended; `None` when it has not (it is running, or its process died).
    pub outcome: Option<RunOutcome>,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it ended.
    pub finished_at: Option<DateTime<Utc>>,
    /// How many times it was resumed.
    pub resumptions: u32,
    /// Steps and gates, in runbook order.
    pub steps: Vec<StepReport>,
    /// Mutations a dry run would make, in order.
    pub planned: Vec<PlannedAction>,
    /// Gate decisions.
    pub approvals: Vec<ApprovalRecord>,
    /// Change control's decisions on the run (windows, freezes, the stopped line), in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub change_control: Vec<crate::engine::change::ChangeDecision>,
    /// Compensations, in the order they ran.
    pub compensations: Vec<CompensationRecord>,
    /// Evidence attached by steps.
    pub evidence: Vec<EvidenceRecord>,
    /// Each succeeded step's output (secret-named fields masked), by step name.
    #[serde(default)]
    pub outputs: std::collections::BTreeMap<String, serde_json::Value>,
    /// The error that ended the run.
    pub error: Option<ErrorRecord>,
}

impl RunReport {
    /// Rebuilds a run's report from its journal events (in append order).
    pub fn from_events(events: &[JournalEvent]) -> Result<Self> {
        let (first, mode, names) = events
            .iter()
            .find_map(|e| match &e.kind {
                EventKind::RunStarted { mode, steps, .. } => Some((e, *mode, steps.clone())),
                _ => None,
            })
            .ok_or_else(|| {
                Error::new(
                    "engine",
                    "report",
                    ErrorKind::Decode {
                        detail: "no run_started event".into(),
                    },
                )
            })?;
        let mut r = RunReport {
            run_id: first.run_id.clone(),
            runbook: first.runbook.clone(),
            target: first.target.clone(),
            mode,
            outcome: None,
            started_at: first.at,
            finished_at: None,
            resumptions: 0,
            steps: names
                .iter()
                .map(|n| StepReport {
                    name: n.clone(),
                    status: StepStatus::NotReached,
                    attempts: 0,
                    duration: None,
                    error: None,
                })
                .collect(),
            planned: Vec::new(),
            approvals: Vec::new(),
            change_control: Vec::new(),
            compensations: Vec::new(),
            evidence: Vec::new(),
            outputs: Default::default(),
            error: None,
        };
        let run_id = r.run_id.clone();
        let index: HashMap<String, usize> =
            names.into_iter().enumerate().map(|(i, n)| (n, i)).collect();
        for e in events.iter().filter(|e| e.run_id == run_id) {
            r.apply(&index, e);
        }
        Ok(r)
    }

    fn apply(&mut self, index: &HashMap<String, usize>, e: &JournalEvent) {
        // Rebuilding a long run's report must stay linear in its events: steps by index.
        fn at<'s>(
            steps: &'s mut [StepReport],
            index: &HashMap<String, usize>,
            name: &str,
        ) -> Option<&'s mut StepReport> {
            index.get(name).map(|&i| &mut steps[i])
        }
        match &e.kind {
            EventKind::RunStarted { resumed, .. } => {
                if *resumed {
                    self.resumptions += 1;
                    self.outcome = None;
                    self.finished_at = None;
                    self.error = None;
                }
            }
            EventKind::StepStarted { step, .. } => {
                if let Some(s) = at(&mut self.steps, index, step) {
                    s.status = StepStatus::Running;
                    s.attempts += 1;
                }
            }
            EventKind::StepRetried { .. } => {}
            EventKind::StepSucceeded {
                step,
                duration,
                output,
                ..
            } => {
                self.outputs.insert(step.clone(), output.clone());
                if let Some(s) = at(&mut self.steps, index, step) {
                    s.status = StepStatus::Succeeded;
                    s.duration = Some(*duration);
                    s.error = None;
                }
            }
            EventKind::StepFailed {
                step,
                duration,
                error,
                ..
            } => {
                if let Some(s) = at(&mut self.steps, index, step) {
                    s.status = StepStatus::Failed;
                    s.duration = Some(*duration);
                    s.error = Some(error.clone());
                }
            }
            EventKind::StepPlanned { action } => {
                if let Some(s) = at(&mut self.steps, index, &action.step) {
                    s.status = StepStatus::Planned;
                }
                self.planned.push(action.clone());
            }
            EventKind::StepSkipped { step, .. } => {
                if let Some(s) = at(&mut self.steps, index, step)
                    && s.status != StepStatus::Succeeded
                {
                    s.status = StepStatus::Skipped;
                }
            }
            EventKind::StepCancelled { step } => {
                if let Some(s) = at(&mut self.steps, index, step) {
                    s.status = StepStatus::Cancelled;
                }
            }
            EventKind::CompensationSucceeded { step, call } => {
                if let Some(s) = at(&mut self.steps, index, step) {
                    s.status = StepStatus::Compensated;
                }
                self.compensations.push(CompensationRecord {
                    step: step.clone(),
                    call: call.clone(),
                    error: None,
                });
            }
            EventKind::CompensationFailed { step, call, error } => {
                if let Some(s) = at(&mut self.steps, index, step) {
                    s.status = StepStatus::CompensationFailed;
                }
                self.compensations.push(CompensationRecord {
                    step: step.clone(),
                    call: call.clone(),
                    error: Some(error.clone()),
                });
            }
            EventKind::ApprovalRequested { gate, .. } => {
                if let Some(s) = at(&mut self.steps, index, gate) {
                    s.status = StepStatus::Running;
                }
            }
            EventKind::ApprovalGranted { gate, by, comment } => {
                if let Some(s) = at(&mut self.steps, index, gate) {
                    s.status = StepStatus::Succeeded;
                }
                self.approvals.push(ApprovalRecord {
                    gate: gate.clone(),
                    approved: true,
                    by: by.clone(),
                    note: comment.clone(),
                    at: e.at,
                });
            }
            EventKind::ApprovalDenied { gate, by, reason } => {
                if let Some(s) = at(&mut self.steps, index, gate) {
                    s.status = StepStatus::Failed;
                }
                self.approvals.push(ApprovalRecord {
                    gate: gate.clone(),
                    approved: false,
                    by: by.clone(),
                    note: Some(reason.clone()),
                    at: e.at,
                });
            }
            EventKind::Evidence { step, key, value } => {
                self.evidence.push(EvidenceRecord {
                    step: step.clone(),
                    key: key.clone(),
                    value: value.clone(),
                });
            }
            // Shown with the evidence: what lock, which lease, and why it went.
            EventKind::LockLost { key, fence, reason } => {
                self.evidence.push(EvidenceRecord {
                    step: "(run lock)".into(),
                    key: "lock lost".into(),
                    value: serde_json::json!({ "key": key, "fence": fence, "reason": reason }),
                });
            }
            EventKind::ChangeDecided { decision } => self.change_control.push(decision.clone()),
            EventKind::RunPaused | EventKind::RunResumed | EventKind::ChangeControlSet { .. } => {}
            EventKind::RunFinished { outcome, error } => {
                self.outcome = Some(*outcome);
                self.finished_at = Some(e.at);
                self.error = error.clone();
            }
        }
    }

    /// A succeeded step's output, decoded (`None` when it has none or another shape).
    pub fn output<T: serde::de::DeserializeOwned>(&self, step: &str) -> Option<T> {
        self.outputs
            .get(step)
            .and_then(|v| serde_json::from_value(v.clone()).ok())
    }

    /// Whether the run succeeded (or, for a dry run, planned completely).
    pub fn is_success(&self) -> bool {
        matches!(
            self.outcome,
            Some(RunOutcome::Succeeded | RunOutcome::Planned)
        )
    }

    /// `Ok(self)` when the run succeeded; otherwise an error naming how it ended.
    pub fn into_result(self) -> Result<Self> {
        if self.is_success() {
            return Ok(self);
        }
        let how = self
            .outcome
            .map_or("did not finish".to_string(), |o| o.to_string());
        let why = self
            .error
            .as_ref()
            .map(|e| format!(": {}", e.message))
            .unwrap_or_default();
        let kind = match self.outcome {
            Some(RunOutcome::Cancelled) => ErrorKind::Cancelled,
            _ => ErrorKind::Provider {
                status: 0,
                code: Some(format!("run_{how}").replace(' ', "_")),
                body_excerpt: format!("run {} {how}{why}", self.run_id),
            },
        };
        Err(Error::new("engine", "run", kind))
    }

    /// Pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a report always serializes")
    }

    /// Markdown for people (incident records, PR comments).
    pub fn to_markdown(&self) -> String {
        markdown::render(self)
    }

    /// A few lines for a terminal.
    pub fn summary(&self) -> String {
        let outcome = self
            .outcome
            .map_or("unfinished".to_string(), |o| o.to_string());
        let mut out = format!(
            "{} on {} [{}]: {}\n",
            self.runbook, self.target, self.run_id, outcome
        );
        for s in &self.steps {
            let mark = s.status.mark();
            out.push_str(&format!("  {mark:<6} {}", s.name));
            if let Some(e) = &s.error {
                out.push_str(&format!(" — {}", e.message));
            }
            out.push('\n');
        }
        if let Some(e) = &self.error {
            out.push_str(&format!("  error: {}\n", e.message));
        }
        out
    }
}
