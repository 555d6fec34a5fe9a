//! The engine's vocabulary: modes, step kinds, planned actions, outcomes, error records.

use serde::{Deserialize, Serialize};

use crate::Error;

/// Whether a run acts or only plans.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Run every step.
    Execute,
    /// Run reads; record mutations as planned actions without running them.
    DryRun,
}

/// What kind of procedure a runbook is, carried in its runs' journal so that reviews count
/// runs by what they did, not by runbook names.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// Puts a new release into service (deploy and verify, a progressive rollout).
    Deploy,
    /// Puts an earlier release back (by hand, automatically, or in an emergency).
    Rollback,
    /// Takes a backup.
    Backup,
    /// Restores from a backup.
    Restore,
    /// Looks without changing anything (health checks, audits, reviews, alert evaluation).
    Check,
    /// Keeps things in shape (secret rotation, right-sizing, database maintenance).
    Maintenance,
    /// Responds to an incident (emergency shutdown).
    Incident,
    /// None of these.
    #[default]
    Other,
}

/// What a step does to the world.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum StepKind {
    /// Only looks: runs in dry runs, re-runs freely on resume.
    Read,
    /// Changes something: planned in dry runs; on resume after a crash mid-step it re-runs
    /// only when `idempotent`, otherwise the operator is asked.
    Mutate {
        /// Running it twice has the effect of running it once.
        idempotent: bool,
    },
}

impl StepKind {
    /// Whether the step changes something.
    pub fn mutates(&self) -> bool {
        matches!(self, StepKind::Mutate { .. })
    }
}

/// A call a step makes (or, in a dry run, would make), with its arguments (secrets masked).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedAction {
    /// The step.
    pub step: String,
    /// The call, e.g. `Deployer::set_traffic`.
    pub call: String,
    /// Its arguments.
    pub args: serde_json::Value,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunOutcome {
    /// Every step succeeded.
    Succeeded,
    /// A step failed (compensations ran).
    Failed,
    /// Cancelled by the caller (compensations ran).
    Cancelled,
    /// A dry run finished: the plan is complete.
    Planned,
}

impl std::fmt::Display for RunOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RunOutcome::Succeeded => "succeeded",
            RunOutcome::Failed => "failed",
            RunOutcome::Cancelled => "cancelled",
            RunOutcome::Planned => "planned",
        })
    }
}

/// An [`Error`] as recorded in journals and reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorRecord {
    /// [`crate::ErrorKind::name`].
    pub kind: String,
    /// The error's text (already free of secrets, as every [`Error`] is).
    pub message: String,
    /// Whether it was retryable.
    pub retryable: bool,
}

impl From<&Error> for ErrorRecord {
    fn from(e: &Error) -> Self {
        Self {
            kind: e.kind().name().to_string(),
            message: e.to_string(),
            retryable: e.is_retryable(),
        }
    }
}
