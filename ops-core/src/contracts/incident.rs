//! An incident as data: its priority, timeline and postmortem. Shared by the incident
//! response runbook and by providers that write about incidents (notification templates,
//! status pages), so neither reaches into the other.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Incident priority, most urgent first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Priority {
    /// Everything is down.
    P0,
    /// A major function is down.
    P1,
    /// Degraded.
    P2,
    /// Minor.
    P3,
}

/// One line of the timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimelineEntry {
    /// When.
    pub at: DateTime<Utc>,
    /// What happened.
    pub text: String,
}

/// An incident, as data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Incident {
    /// Its id (`INC-YYYYMMDD-HHMM`), the dedup key of every notification about it.
    pub id: String,
    /// One line.
    pub title: String,
    /// Its priority.
    pub priority: Priority,
    /// What is affected, for the postmortem.
    pub impact: String,
    /// When it was declared.
    pub declared_at: DateTime<Utc>,
    /// Who acknowledged it, and when.
    pub acknowledged: Option<(String, DateTime<Utc>)>,
    /// When it was resolved, and how.
    pub resolved: Option<(DateTime<Utc>, String)>,
    /// The highest escalation level notified so far (0 = the first).
    pub escalated_to: usize,
    /// The levels told so far, by name, in the order they were told (empty in records written
    /// before the escalation matrix: levels `0..=escalated_to`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notified: Vec<String>,
    /// Deliveries that failed, as `level: error` (a status page that was down when the
    /// incident was declared, say); each is in the timeline too.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed_deliveries: Vec<String>,
    /// When the last status update went out.
    pub last_update: DateTime<Utc>,
    /// What happened, in order.
    pub timeline: Vec<TimelineEntry>,
    /// The root cause, once known.
    pub root_cause: Option<String>,
    /// Follow-up actions.
    pub follow_ups: Vec<String>,
    /// When the postmortem is due (set at resolution from the priority's policy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postmortem_due: Option<DateTime<Utc>>,
    /// When the retrospective is due.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retrospective_due: Option<DateTime<Utc>>,
}

impl Incident {
    /// The dedup key of every notification about it.
    pub(crate) fn key(&self) -> String {
        format!("incident/{}", self.id)
    }

    /// Adds a timeline line.
    pub(crate) fn log(&mut self, at: DateTime<Utc>, text: impl Into<String>) {
        self.timeline.push(TimelineEntry {
            at,
            text: text.into(),
        });
    }

    /// The postmortem: summary, timeline table, impact, root cause, resolution, follow-ups.
    pub fn postmortem(&self) -> String {
        let cell = |s: &str| s.replace('|', "\\|").replace('\n', " ");
        let mut md = format!(
            "# Postmortem: {} ({:?})\n\n## Summary\n\n- **Incident:** {}\n- **Declared:** {}\n",
            self.title,
            self.priority,
            self.id,
            self.declared_at.to_rfc3339()
        );
        if let Some((by, at)) = &self.acknowledged {
            md.push_str(&format!(
                "- **Acknowledged:** {} by {by} ({} min after declaration)\n",
                at.to_rfc3339(),
                (*at - self.declared_at).num_minutes()
            ));
        }
        if let Some((at, _)) = &self.resolved {
            md.push_str(&format!(
                "- **Resolved:** {} (duration {} min)\n",
                at.to_rfc3339(),
                (*at - self.declared_at).num_minutes()
            ));
        }
        if let Some(at) = self.postmortem_due {
            md.push_str(&format!("- **Postmortem due:** {}\n", at.to_rfc3339()));
        }
        if let Some(at) = self.retrospective_due {
            md.push_str(&format!("- **Retrospective due:** {}\n", at.to_rfc3339()));
        }
        md.push_str("\n## Timeline\n\n| Time (UTC) | Event |\n|---|---|\n");
        for e in &self.timeline {
            md.push_str(&format!(
                "| {} | {} |\n",
                e.at.format("%Y-%m-%d %H:%M"),
                cell(&e.text)
            ));
        }
        md.push_str(&format!(
            "\n## Impact\n\n{}\n",
            if self.impact.is_empty() {
                "(to be written)"
            } else {
                &self.impact
            }
        ));
        md.push_str(&format!(
            "\n## Root cause\n\n{}\n",
            self.root_cause.as_deref().unwrap_or("(to be written)")
        ));
        md.push_str(&format!(
            "\n## Resolution\n\n{}\n",
            self.resolved
                .as_ref()
                .map_or("(unresolved)", |(_, r)| r.as_str())
        ));
        md.push_str("\n## Follow-up actions\n\n");
        if self.follow_ups.is_empty() {
            md.push_str("- [ ] (to be agreed)\n");
        }
        for f in &self.follow_ups {
            md.push_str(&format!("- [ ] {f}\n"));
        }
        md
    }
}
