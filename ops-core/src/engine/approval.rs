//! Approval gates: the run waits until an [`Approver`] decides.

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::Result;
use crate::config::{RunbookConfig, human_duration, invalid};

/// The most approvers a gate may require.
pub const MAX_APPROVERS: u32 = 16;

/// What a gate's answer at the timeout is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnTimeout {
    /// Nobody (or too few) approved in time: denied (the default).
    #[default]
    Deny,
    /// Nobody objected in time: approved, recorded as approved by `timeout` ("proceed unless
    /// stopped", for gates that only give people a chance to intervene).
    Approve,
}

/// Who must approve a gate, and what happens when they do not answer.
///
/// ```toml
/// approvers = 2            # distinct people (1 to 16)
/// forbid_requester = true  # four-eyes: whoever started the run may not approve it
/// timeout = "30m"          # default: the runner's approval timeout
/// on_timeout = "deny"      # or "approve"
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApprovalPolicy {
    /// How many distinct people must approve.
    pub approvers: u32,
    /// Whether the run's requester is barred from approving it (four-eyes).
    pub forbid_requester: bool,
    /// How long the gate waits for all of them; `None`: the runner's approval timeout.
    #[serde(with = "human_duration::option")]
    pub timeout: Option<Duration>,
    /// The answer when the timeout passes first.
    pub on_timeout: OnTimeout,
}

impl Default for ApprovalPolicy {
    fn default() -> Self {
        Self {
            approvers: 1,
            forbid_requester: false,
            timeout: None,
            on_timeout: OnTimeout::Deny,
        }
    }
}

impl ApprovalPolicy {
    /// Four eyes: one approver who is not the requester.
    pub fn four_eyes() -> Self {
        Self {
            forbid_requester: true,
            ..Self::default()
        }
    }

    /// `n` distinct approvers.
    pub fn approvers(n: u32) -> Self {
        Self {
            approvers: n,
            ..Self::default()
        }
    }
}

impl RunbookConfig for ApprovalPolicy {
    fn validate(&self) -> Result<()> {
        if self.approvers == 0 || self.approvers > MAX_APPROVERS {
            return Err(invalid("approvers", format!("from 1 to {MAX_APPROVERS}")));
        }
        if let Some(t) = self.timeout {
            crate::config::positive("timeout", t)?;
        }
        Ok(())
    }
}

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
    /// Who started the run, when the runner was told
    /// ([`crate::engine::Runner::requested_by`]).
    #[serde(default)]
    pub requested_by: Option<String>,
    /// How many distinct approvals the gate needs in all.
    #[serde(default = "one")]
    pub needed: u32,
    /// Who has approved so far.
    #[serde(default)]
    pub approved_by: Vec<String>,
    /// Who may not answer this request: those who already approved, and the requester under
    /// four-eyes. An approver must ask someone else; an answer from one of them denies the
    /// gate.
    #[serde(default)]
    pub ineligible: Vec<String>,
}

fn one() -> u32 {
    1
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

/// Decides approval gates. The runner bounds the wait with the gate's timeout and applies its
/// [`ApprovalPolicy`]: for a gate needing several approvers it asks again after each approval,
/// and each call returns one person's decision (never one of [`ApprovalRequest::ineligible`]).
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

/// Approves as the first of `people` who may still answer the request, and denies when none
/// may (rehearsals of gates that need several people or four eyes).
#[derive(Debug, Clone)]
pub struct AutoApproveAs {
    /// The people it answers for, in order.
    pub people: Vec<String>,
}

#[async_trait]
impl Approver for AutoApproveAs {
    async fn decide(&self, request: &ApprovalRequest) -> Result<ApprovalDecision> {
        Ok(
            match self.people.iter().find(|p| !request.ineligible.contains(p)) {
                Some(p) => ApprovalDecision::Approved {
                    by: p.clone(),
                    comment: None,
                },
                None => ApprovalDecision::Denied {
                    by: "auto-approve".into(),
                    reason: format!("none of {:?} may approve", self.people),
                },
            },
        )
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
