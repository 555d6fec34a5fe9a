//! Approval gates: the run waits until an [`Approver`] decides.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::Result;

/// What an approver is asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalRequest {
    /// The run.
    pub run_id: String,
    /// Its runbook.
    pub runbook: String,
    /// Its target.
    pub target: String,
    /// The gate (or `rerun:STEP` when a resumed run asks whether to repeat an in-flight
    /// mutation).
    pub gate: String,
    /// The question.
    pub prompt: String,
}

/// An approver's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "decision")]
pub enum ApprovalDecision {
    /// Go on.
    Approved {
        /// Who approved.
        by: String,
        /// Their comment.
        comment: Option<String>,
    },
    /// Stop (the run fails and compensates).
    Denied {
        /// Who denied.
        by: String,
        /// Why.
        reason: String,
    },
}

/// Decides approval gates. The runner bounds the wait with its approval timeout; a gate nobody
/// answers in time is denied.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait Approver: Send + Sync {
    /// Decides one request.
    async fn decide(&self, request: &ApprovalRequest) -> Result<ApprovalDecision>;
}

/// Approves everything, as `by` (rehearsals, automation that has approved up front).
#[derive(Debug, Clone)]
pub struct AutoApprove {
    /// Recorded as the approver.
    pub by: String,
}

impl Default for AutoApprove {
    fn default() -> Self {
        Self {
            by: "auto-approve".into(),
        }
    }
}

#[async_trait]
impl Approver for AutoApprove {
    async fn decide(&self, _: &ApprovalRequest) -> Result<ApprovalDecision> {
        Ok(ApprovalDecision::Approved {
            by: self.by.clone(),
            comment: None,
        })
    }
}

/// Denies everything with a reason (the runner's default: a runbook with gates needs an
/// approver chosen on purpose).
#[derive(Debug, Clone)]
pub struct DenyAll {
    /// Recorded as the reason.
    pub reason: String,
}

impl Default for DenyAll {
    fn default() -> Self {
        Self {
            reason: "no approver is configured".into(),
        }
    }
}

#[async_trait]
impl Approver for DenyAll {
    async fn decide(&self, _: &ApprovalRequest) -> Result<ApprovalDecision> {
        Ok(ApprovalDecision::Denied {
            by: "deny-all".into(),
            reason: self.reason.clone(),
        })
    }
}
