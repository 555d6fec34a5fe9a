//! Announcing scheduled maintenance ahead of time (the seeds: two weeks, one week and one hour
//! before): each lead time is a job of its own on the maintenance job's schedule moved earlier,
//! so replicas send each announcement once, and one the scheduler could not send in time is
//! recorded as missed like any other occurrence.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::scheduler::Job;
use crate::Result;
use crate::config::human_duration;
use crate::contracts::{Notification, Notifier, Severity};
use crate::engine::{Action, Runbook, Step};

/// The seeds' lead times: two weeks, one week, one hour.
pub const SEED_LEAD_TIMES: [Duration; 3] = [
    Duration::from_secs(14 * 86_400),
    Duration::from_secs(7 * 86_400),
    Duration::from_secs(3600),
];

impl Job {
    /// A job announcing each occurrence of this one `lead` ahead through `notifier`, named
    /// `JOB.announce-LEAD` (`db-maintenance.announce-14d`). It runs as this job does (a
    /// dry-run job's announcements are planned, not sent), and freezes do not hold it:
    /// announcing changes nothing.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use ops_core::adapters::LogNotifier;
    /// use ops_core::engine::{Action, Runbook, Step};
    /// use ops_core::schedule::{Job, Schedule};
    /// let maintenance = Job::new("db-maintenance", Schedule::cron("0 2 * * SUN#1", "UTC")?, || {
    ///     Ok(Runbook::new("vacuum", "db").step(Step::mutate("vacuum", |_| {
    ///         Ok(Action::new("vacuum", serde_json::Value::Null, async { Ok(()) }))
    ///     })))
    /// })?;
    /// let week_ahead = maintenance.announcement(std::time::Duration::from_secs(7 * 86_400), Arc::new(LogNotifier::default()))?;
    /// assert_eq!(week_ahead.name(), "db-maintenance.announce-7d");
    /// # Ok::<(), ops_core::Error>(())
    /// ```
    pub fn announcement(&self, lead: Duration, notifier: Arc<dyn Notifier>) -> Result<Job> {
        let schedule = self.schedule().earlier_by(lead)?;
        let lead_text = human_duration::format(lead);
        let name = format!("{}.announce-{lead_text}", self.name());
        let (announced, target) = (self.schedule().clone(), self.name().to_string());
        let job = Job::for_occurrence(&name, schedule, move |occurrence| {
            let at = chrono::Duration::from_std(lead)
                .ok()
                .and_then(|l| occurrence.checked_add_signed(l))
                .unwrap_or(occurrence);
            let starts = announced.start_of(&target, at);
            let note = Notification::new(
                Severity::Info,
                format!(
                    "Scheduled maintenance: {target} on {} (in {lead_text})",
                    starts.format("%A %Y-%m-%d %H:%M UTC")
                ),
            )
            .field("maintenance", target.clone())
            .field("starts_at", starts.to_rfc3339())
            .dedup_key(format!(
                "announce/{target}/{}/{lead_text}",
                starts.format("%Y%m%dT%H%M%SZ")
            ));
            let notifier = notifier.clone();
            let args = json!({ "maintenance": target, "starts_at": starts, "lead": lead_text });
            Ok(Runbook::new("announce-maintenance", &target)
                // Announcing changes nothing: freezes and a stopped line do not hold it.
                .emergency(true)
                .step(
                    Step::mutate("announce", move |_| {
                        let (notifier, note) = (notifier.clone(), note.clone());
                        Ok(Action::new("Notifier::send", args.clone(), async move {
                            notifier.send(&note).await.map(|r| r.notifier)
                        }))
                    })
                    // Sent again after a crash mid-send rather than not at all; the dedup
                    // key lets a paging service fold the two.
                    .idempotent(),
                ))
        })?;
        Ok(match self.mode() {
            crate::engine::Mode::DryRun => job.dry_run(),
            crate::engine::Mode::Execute => job,
        })
    }

    /// One announcement job per lead time in `leads` (for example [`SEED_LEAD_TIMES`]).
    pub fn announcements(
        &self,
        leads: &[Duration],
        notifier: Arc<dyn Notifier>,
    ) -> Result<Vec<Job>> {
        leads
            .iter()
            .map(|l| self.announcement(*l, notifier.clone()))
            .collect()
    }
}
