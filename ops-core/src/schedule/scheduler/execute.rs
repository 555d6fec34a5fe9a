//! Running one occurrence: its run started or resumed from the journal, and resumed again
//! when it lost its run lock or its journal mid-way.

use chrono::{DateTime, Utc};

use super::{Job, MAX_LOCK_RESUMES, Scheduler, TAKEOVER_MARGIN, Takeover, run_id};
use crate::engine::{RunControl, RunOutcome, RunReport, Runbook};
use crate::schedule::store::OccurrenceStatus;
use crate::{ErrorKind, Result};

impl Scheduler {
    /// Starts the occurrence's run, or resumes it when the journal has it unfinished, or
    /// reads its end when it finished before its replica could record it.
    pub(super) async fn execute(
        &self,
        job: &Job,
        occurrence: DateTime<Utc>,
        control: &RunControl,
    ) -> (OccurrenceStatus, Option<String>) {
        let run_id = run_id(&job.name, occurrence);
        let store = &self.inner.store;
        if let Err(e) = store
            .started(&job.name, occurrence, &self.inner.config.replica, &run_id)
            .await
        {
            return (OccurrenceStatus::Failed, Some(e.to_string()));
        }
        let runbook = match (job.runbook)(occurrence) {
            Ok(rb) => rb,
            Err(e) => return (OccurrenceStatus::Failed, Some(e.to_string())),
        };
        let runner = &self.inner.runner;
        // Each attempt has a control of its own: a lost lock cancels the attempt, not the
        // occurrence (the heartbeat's cancel, through `control`, reaches every attempt).
        let mut report = self
            .run_or_resume(&runbook, job, &run_id, &control.child())
            .await;
        // A run whose lock vanished (its session terminated, a failover) stopped before its
        // next mutation, and one whose journal went away stopped claiming anything: each goes
        // on from the journal (under a new lock and fence), a few times at most.
        let mut again = 0;
        while again < MAX_LOCK_RESUMES && !control.is_cancelled() {
            let lost_lock = matches!(&report, Ok(r) if r.outcome == Some(RunOutcome::Cancelled)
                && r.evidence.iter().any(|e| e.key == "lock lost"));
            let unreachable = matches!(&report, Err(e) if e.is_retryable());
            if job.takeover != Takeover::Resume || !(lost_lock || unreachable) {
                break;
            }
            again += 1;
            tracing::warn!(job = %job.name, run = %run_id, again, "the run lost its lock or journal; resuming it");
            report = if lost_lock {
                runner.resume(&runbook, &run_id, control).await
            } else {
                self.clock()
                    .sleep(self.inner.config.lease / TAKEOVER_MARGIN)
                    .await;
                self.run_or_resume(&runbook, job, &run_id, control).await
            };
        }
        match report {
            Ok(r) => match r.outcome {
                Some(RunOutcome::Succeeded | RunOutcome::Planned) => {
                    (OccurrenceStatus::Succeeded, None)
                }
                _ => (
                    OccurrenceStatus::Failed,
                    Some(
                        r.error
                            .map_or_else(|| format!("run {run_id} did not succeed"), |e| e.message),
                    ),
                ),
            },
            Err(e) => (OccurrenceStatus::Failed, Some(e.to_string())),
        }
    }

    /// Starts the occurrence's run, or resumes it when the journal has it unfinished, or
    /// returns its report when it has finished.
    async fn run_or_resume(
        &self,
        runbook: &Runbook,
        job: &Job,
        run_id: &str,
        control: &RunControl,
    ) -> Result<RunReport> {
        let runner = &self.inner.runner;
        match runner
            .run_with(runbook, job.mode, control, Some(run_id.to_string()))
            .await
        {
            Err(e) if matches!(e.kind(), ErrorKind::AlreadyExists { .. }) => {
                match runner.report(run_id).await {
                    Ok(r) if r.outcome.is_some() => Ok(r),
                    Ok(_) => runner.resume(runbook, run_id, control).await,
                    Err(e) => Err(e),
                }
            }
            other => other,
        }
    }
}
