//! Approval gates: asking the approver, gates with conditions, and re-running in-flight
//! mutations on resume only with a yes.

use super::{Exec, Stop, pending};
use crate::engine::runner::resume::Resumption;
use crate::engine::{
    ApprovalDecision, ApprovalPolicy, ApprovalRequest, EventKind, Gate, Item, OnTimeout,
    PlannedAction, ProgressEvent, StepStatus,
};
use crate::{Error, ErrorKind, Result};

impl Exec<'_> {
    /// Asks until the policy is met: `needed` distinct eligible approvals, any denial ends it,
    /// and the timeout (over all the answers) gives the policy's default.
    async fn ask(
        &self,
        gate: &str,
        prompt: &str,
        policy: &ApprovalPolicy,
    ) -> std::result::Result<std::result::Result<(), Error>, Stop> {
        self.record(EventKind::ApprovalRequested {
            gate: gate.to_string(),
            prompt: prompt.to_string(),
        })
        .await
        .map_err(Stop::Fatal)?;
        self.emit(|| ProgressEvent::AwaitingApproval {
            gate: gate.to_string(),
        });
        let clock = self.runner.clock.as_ref();
        let requester = self.runner.requested_by.clone();
        let limit = policy.timeout.unwrap_or(self.runner.approval_timeout);
        let deadline = clock.instant().checked_add(limit);
        let mut approved: Vec<String> = Vec::new();
        loop {
            let mut ineligible = approved.clone();
            if policy.forbid_requester
                && let Some(r) = &requester
            {
                ineligible.push(r.clone());
            }
            let request = ApprovalRequest {
                run_id: self.state.run_id.clone(),
                runbook: self.state.runbook.clone(),
                target: self.state.target.clone(),
                gate: gate.to_string(),
                prompt: prompt.to_string(),
                requested_by: requester.clone(),
                needed: policy.approvers,
                approved_by: approved.clone(),
                ineligible: ineligible.clone(),
            };
            let left = deadline.map_or(limit, |d| d.saturating_duration_since(clock.instant()));
            let decision = tokio::select! {
                biased;
                _ = self.state.cancel.cancelled() => return Err(Stop::Cancelled),
                d = crate::clock::timeout(clock, left, self.runner.approver.decide(&request)) => d,
            };
            let denied = |by: String, reason: String, error: Error| {
                let event = EventKind::ApprovalDenied {
                    gate: gate.to_string(),
                    by,
                    reason,
                };
                (event, Err(error))
            };
            let conflict =
                |detail: String| Error::new("engine", "approval", ErrorKind::Conflict { detail });
            let (event, result) = match decision {
                Some(Ok(ApprovalDecision::Approved { by, comment })) => {
                    let same = |p: &String| p.trim().eq_ignore_ascii_case(by.trim());
                    let why_not = if by.trim().is_empty() {
                        Some("an approval must name who gave it".to_string())
                    } else if policy.forbid_requester && requester.as_ref().is_some_and(same) {
                        Some(format!(
                            "four eyes: {by} requested this run and may not approve it"
                        ))
                    } else if approved.iter().any(same) {
                        Some(format!(
                            "{by} has already approved; {} distinct approvers are needed",
                            policy.approvers
                        ))
                    } else {
                        None
                    };
                    match why_not {
                        Some(reason) => {
                            let error = conflict(format!("{gate} denied: {reason}"));
                            denied(by, reason, error)
                        }
                        None => {
                            self.record(EventKind::ApprovalGranted {
                                gate: gate.to_string(),
                                by: by.clone(),
                                comment,
                            })
                            .await
                            .map_err(Stop::Fatal)?;
                            approved.push(by);
                            if approved.len() >= policy.approvers as usize {
                                return Ok(Ok(()));
                            }
                            continue;
                        }
                    }
                }
                Some(Ok(ApprovalDecision::Denied { by, reason })) => {
                    let error = conflict(format!("{gate} denied by {by}: {reason}"));
                    denied(by, reason, error)
                }
                Some(Err(e)) => (
                    EventKind::ApprovalDenied {
                        gate: gate.to_string(),
                        by: "approver".into(),
                        reason: e.to_string(),
                    },
                    Err(e),
                ),
                None => {
                    let so_far = format!("{} of {} approved", approved.len(), policy.approvers);
                    match policy.on_timeout {
                        OnTimeout::Approve => (
                            EventKind::ApprovalGranted {
                                gate: gate.to_string(),
                                by: "timeout".into(),
                                comment: Some(format!(
                                    "approved by default: no objection within {limit:?} ({so_far})"
                                )),
                            },
                            Ok(()),
                        ),
                        OnTimeout::Deny => denied(
                            "timeout".into(),
                            format!("no decision within {limit:?} ({so_far})"),
                            Error::new("engine", "approval", ErrorKind::Timeout { after: limit }),
                        ),
                    }
                }
            };
            self.record(event).await.map_err(Stop::Fatal)?;
            return Ok(result);
        }
    }

    pub(super) async fn gate(&self, gate: &Gate) -> std::result::Result<(), Stop> {
        self.emit(|| ProgressEvent::StepStarted {
            index: self.index[&gate.name],
            step: gate.name.clone(),
        });
        if let Some(condition) = &gate.condition {
            match condition(&self.ctx(&gate.name, 1)) {
                Ok(true) => {}
                Ok(false) => {
                    self.record(EventKind::StepSkipped {
                        step: gate.name.clone(),
                        reason: "condition not met".into(),
                    })
                    .await
                    .map_err(Stop::Fatal)?;
                    self.finished(&gate.name, StepStatus::Skipped);
                    return Ok(());
                }
                // A dry run cannot know a condition on a planned step's output: plan the gate.
                Err(e) if self.dry() && pending(&e) => {}
                Err(e) => {
                    self.record(EventKind::ApprovalDenied {
                        gate: gate.name.clone(),
                        by: "engine".into(),
                        reason: e.to_string(),
                    })
                    .await
                    .map_err(Stop::Fatal)?;
                    self.finished(&gate.name, StepStatus::Failed);
                    return Err(Stop::Failed(e));
                }
            }
        }
        if self.dry() {
            let action = PlannedAction {
                step: gate.name.clone(),
                call: "approval".into(),
                args: serde_json::json!({ "prompt": gate.prompt }),
            };
            self.record(EventKind::StepPlanned { action })
                .await
                .map_err(Stop::Fatal)?;
            self.finished(&gate.name, StepStatus::Planned);
            return Ok(());
        }
        let policy = gate.policy.as_ref().unwrap_or(&self.runner.approval_policy);
        match self.ask(&gate.name, &gate.prompt, policy).await {
            Ok(Ok(())) => {
                self.finished(&gate.name, StepStatus::Succeeded);
                Ok(())
            }
            Ok(Err(e)) => {
                self.finished(&gate.name, StepStatus::Failed);
                Err(Stop::Failed(e))
            }
            Err(Stop::Cancelled) => {
                self.record(EventKind::StepCancelled {
                    step: gate.name.clone(),
                })
                .await
                .map_err(Stop::Fatal)?;
                self.finished(&gate.name, StepStatus::Cancelled);
                Err(Stop::Cancelled)
            }
            Err(other) => Err(other),
        }
    }

    /// On resume: a non-idempotent mutation that was in flight when the run stopped may or may
    /// not have taken effect. Re-running it needs the approver's yes (gate `rerun:STEP`).
    pub(super) async fn confirm_in_flight(&self, r: &Resumption) -> Result<Option<Error>> {
        let steps = self.runbook.items.iter().flat_map(|i| match i {
            Item::Step(s) => std::slice::from_ref(s),
            Item::Parallel(s) => s.as_slice(),
            Item::Gate(_) => &[],
        });
        for step in steps.filter(|s| r.in_flight.contains(&s.name)) {
            if step.kind != (crate::engine::StepKind::Mutate { idempotent: false }) {
                continue; // reads and idempotent mutations simply run again
            }
            let prompt = format!(
                "Step {} was in flight when run {} stopped; it may or may not have taken effect. Run it again?",
                step.name, self.state.run_id
            );
            match self
                .ask(
                    &format!("rerun:{}", step.name),
                    &prompt,
                    &self.runner.approval_policy,
                )
                .await
            {
                Ok(Ok(())) => {}
                Ok(Err(_)) | Err(Stop::Cancelled) => {
                    return Ok(Some(Error::new(
                        "engine",
                        "resume",
                        ErrorKind::Conflict {
                            detail: format!(
                                "re-running in-flight step {} was not approved: check its effect and finish by hand",
                                step.name
                            ),
                        },
                    )));
                }
                Err(Stop::Fatal(e)) | Err(Stop::Failed(e)) => return Err(e),
            }
        }
        Ok(None)
    }
}
