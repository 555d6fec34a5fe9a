//! Incident response: declare, keep a timeline, post updates on a cadence, escalate when
//! nobody acknowledges in time, resolve, and write the postmortem.
//!
//! Replaces the seeds' incident procedure: severity P0–P3 with response times (P0 5 min, P1
//! 15 min, P2 4 h, P3 24 h), the escalation path (on-call → team lead → head of engineering),
//! status updates every 15 / 30 / 120 minutes, and the postmortem template.
//!
//! An incident is long-lived and driven by events from outside (someone acknowledges), so it is
//! not a list of steps: [`Incident`] (a contract type) is plain data (serde: save it and load it across
//! restarts), [`IncidentResponse`] acts on it, reading time from its clock.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::RunbookConfig;
use super::config::{MAX_WAIT, at_most, human_duration, invalid, positive};
use crate::clock::{SharedClock, system_clock};
pub use crate::contracts::{Incident, Priority, TimelineEntry};
use crate::contracts::{Notification, NotificationEvent, Notifier, Severity};
use crate::{Error, Result};

/// What a priority demands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriorityPolicy {
    /// Escalate to the next level when nobody acknowledges within this.
    #[serde(with = "human_duration")]
    pub response_time: Duration,
    /// Post a status update this often while open (0: no cadence).
    #[serde(with = "human_duration")]
    pub update_every: Duration,
    /// Notification severity.
    pub severity: Severity,
}

/// Settings of incident response.
///
/// ```toml
/// [priorities.P0]
/// response_time = "5m"
/// update_every = "15m"
/// severity = "critical"
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IncidentConfig {
    /// Per priority (defaults: P0 5 min / 15 min, P1 15 min / 30 min, P2 4 h / 2 h, P3 24 h /
    /// none). Priorities a config leaves out keep their defaults.
    #[serde(deserialize_with = "over_defaults")]
    pub priorities: BTreeMap<Priority, PriorityPolicy>,
}

fn over_defaults<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<BTreeMap<Priority, PriorityPolicy>, D::Error> {
    let mut all = IncidentConfig::default().priorities;
    all.extend(BTreeMap::<Priority, PriorityPolicy>::deserialize(d)?);
    Ok(all)
}

impl Default for IncidentConfig {
    fn default() -> Self {
        let m = |n: u64| Duration::from_secs(n * 60);
        let p = |r, u, severity| PriorityPolicy {
            response_time: r,
            update_every: u,
            severity,
        };
        Self {
            priorities: BTreeMap::from([
                (Priority::P0, p(m(5), m(15), Severity::Critical)),
                (Priority::P1, p(m(15), m(30), Severity::Error)),
                (Priority::P2, p(m(240), m(120), Severity::Warning)),
                (Priority::P3, p(m(24 * 60), m(0), Severity::Info)),
            ]),
        }
    }
}

impl RunbookConfig for IncidentConfig {
    fn validate(&self) -> Result<()> {
        for p in [Priority::P0, Priority::P1, Priority::P2, Priority::P3] {
            let policy = self
                .priorities
                .get(&p)
                .ok_or_else(|| invalid(&format!("priorities.{p:?}"), "missing"))?;
            positive(
                &format!("priorities.{p:?}.response_time"),
                policy.response_time,
            )?;
            at_most(
                &format!("priorities.{p:?}.update_every"),
                policy.update_every,
                MAX_WAIT,
            )?;
        }
        Ok(())
    }
}

/// Declares, updates, escalates and resolves incidents through the escalation levels'
/// notifiers.
///
/// The one runbook that is not a [`Procedure`](super::Procedure) on the engine, on purpose: an
/// incident is not a list of steps run once to an end but a record that people and time move
/// (declared, acknowledged by someone, escalated when nobody answers, updated, resolved), over
/// hours and across processes. The engine's journal, resume and dry-run plan have nothing to
/// hold on to there. What it does instead: every message is sent under the incident's dedup
/// key, so a restarted responder re-sends rather than duplicates; a dry run (`dry_run`) sends
/// nothing and says what it would; the [`Incident`] itself (serde) is the durable state a
/// caller stores between calls; and the procedures run during an incident (rollback,
/// emergency shutdown) are engine runbooks with journals of their own.
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() -> ops_core::Result<()> {
/// use std::sync::Arc;
/// use ops_core::adapters::LogNotifier;
/// use ops_core::runbooks::{IncidentConfig, IncidentResponse, Priority};
/// let response = IncidentResponse::new(IncidentConfig::default())
///     .level("on-call", Arc::new(LogNotifier::new("on-call")))
///     .level("team-lead", Arc::new(LogNotifier::new("team-lead")));
/// let mut inc = response.declare("Checkout fails", Priority::P1, "Customers cannot pay").await?;
/// response.acknowledge(&mut inc, "dana");
/// response.resolve(&mut inc, "Rolled back api to api-00041").await?;
/// assert!(inc.postmortem().contains("## Timeline"));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct IncidentResponse {
    config: IncidentConfig,
    levels: Vec<(String, Arc<dyn Notifier>)>,
    clock: SharedClock,
    dry_run: bool,
}

impl IncidentResponse {
    /// A response with no escalation levels yet.
    pub fn new(config: IncidentConfig) -> Self {
        Self {
            config,
            levels: Vec::new(),
            clock: system_clock(),
            dry_run: false,
        }
    }

    /// Rehearses: every notification is recorded in the timeline as what would be sent, and
    /// none is sent.
    pub fn dry_run(mut self) -> Self {
        self.dry_run = true;
        self
    }

    /// Adds the next escalation level.
    pub fn level(mut self, name: impl Into<String>, notifier: Arc<dyn Notifier>) -> Self {
        self.levels.push((name.into(), notifier));
        self
    }

    /// Uses `clock`.
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    fn policy(&self, p: Priority) -> Result<&PriorityPolicy> {
        self.config
            .priorities
            .get(&p)
            .ok_or_else(|| invalid(&format!("priorities.{p:?}"), "missing"))
    }

    /// Sends `note` to the levels in `levels`. Every level is tried (one channel down must not
    /// hide the others); the first failure is returned, the rest are logged.
    async fn notify(
        &self,
        inc: &mut Incident,
        levels: std::ops::RangeInclusive<usize>,
        note: &Notification,
    ) -> Result<()> {
        if self.dry_run {
            let to: Vec<&str> = self
                .levels
                .iter()
                .take(levels.end() + 1)
                .skip(*levels.start())
                .map(|(n, _)| n.as_str())
                .collect();
            let line = format!(
                "(dry run) would send {:?} \"{}\" to {}",
                note.event,
                note.title,
                to.join(", ")
            );
            inc.log(self.clock.now(), line);
            return Ok(());
        }
        let mut first: Option<Error> = None;
        for (name, n) in self
            .levels
            .iter()
            .take(levels.end() + 1)
            .skip(*levels.start())
        {
            if let Err(e) = n.send(note).await {
                tracing::error!(incident = %inc.id, level = %name, error = %e, "could not notify");
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }

    /// Declares an incident and notifies the first escalation level.
    pub async fn declare(&self, title: &str, priority: Priority, impact: &str) -> Result<Incident> {
        self.config.validate()?;
        if title.trim().is_empty() {
            return Err(invalid("title", "must not be empty"));
        }
        if self.levels.is_empty() {
            return Err(invalid("levels", "give at least one escalation level"));
        }
        let now = self.clock.now();
        let mut inc = Incident {
            id: format!("INC-{}", now.format("%Y%m%d-%H%M")),
            title: title.to_string(),
            priority,
            impact: impact.to_string(),
            declared_at: now,
            acknowledged: None,
            resolved: None,
            escalated_to: 0,
            last_update: now,
            timeline: Vec::new(),
            root_cause: None,
            follow_ups: Vec::new(),
        };
        inc.log(
            now,
            format!(
                "Declared {priority:?}: {title}; notified {}",
                self.levels[0].0
            ),
        );
        let policy = self.policy(priority)?;
        let note = Notification::new(policy.severity, format!("[{priority:?}] {title}"))
            .body(impact)
            .field("incident", &inc.id)
            .dedup_key(inc.key());
        self.notify(&mut inc, 0..=0, &note).await?;
        Ok(inc)
    }

    /// Records an acknowledgement: escalation stops.
    pub fn acknowledge(&self, inc: &mut Incident, by: &str) {
        let now = self.clock.now();
        if inc.acknowledged.is_none() {
            inc.acknowledged = Some((by.to_string(), now));
            inc.log(now, format!("Acknowledged by {by}"));
        }
    }

    /// Posts a status update to every level notified so far.
    pub async fn update(&self, inc: &mut Incident, text: &str) -> Result<()> {
        let now = self.clock.now();
        inc.log(now, format!("Update: {text}"));
        inc.last_update = now;
        let note = Notification::new(
            self.policy(inc.priority)?.severity,
            format!("[{:?}] {}: update", inc.priority, inc.title),
        )
        .body(text)
        .event(NotificationEvent::Update)
        .dedup_key(inc.key());
        self.notify(inc, 0..=inc.escalated_to, &note).await
    }

    /// Escalates when unacknowledged past the response time (one level per response time), and
    /// posts the cadence update when one is due. Call it periodically, or use
    /// [`IncidentResponse::watch`]. Returns what it did.
    pub async fn tick(&self, inc: &mut Incident) -> Result<Vec<String>> {
        let mut did = Vec::new();
        if inc.resolved.is_some() {
            return Ok(did);
        }
        let now = self.clock.now();
        let policy = self.policy(inc.priority)?.clone();
        let response =
            chrono::Duration::from_std(policy.response_time).unwrap_or(chrono::Duration::MAX);
        if inc.acknowledged.is_none() {
            let due_level = ((now - inc.declared_at).num_milliseconds()
                / response.num_milliseconds().max(1)) as usize;
            while inc.escalated_to < due_level.min(self.levels.len() - 1) {
                inc.escalated_to += 1;
                let name = self.levels[inc.escalated_to].0.clone();
                inc.log(
                    now,
                    format!(
                        "Not acknowledged within {}: escalated to {name}",
                        human_duration::format(policy.response_time)
                    ),
                );
                let note = Notification::new(
                    policy.severity,
                    format!(
                        "[{:?}] {} — ESCALATED, unacknowledged",
                        inc.priority, inc.title
                    ),
                )
                .body(&inc.impact)
                .dedup_key(inc.key());
                let level = inc.escalated_to;
                self.notify(inc, level..=level, &note).await?;
                did.push(format!("escalated to {name}"));
            }
        }
        if !policy.update_every.is_zero()
            && now - inc.last_update
                >= chrono::Duration::from_std(policy.update_every).unwrap_or(chrono::Duration::MAX)
        {
            let last = inc
                .timeline
                .last()
                .map(|e| e.text.clone())
                .unwrap_or_default();
            self.update(inc, &format!("still open; last: {last}"))
                .await?;
            did.push("cadence update".into());
        }
        Ok(did)
    }

    /// Ticks every minute until the incident in `shared` is resolved.
    pub async fn watch(&self, shared: &tokio::sync::Mutex<Incident>) -> Result<()> {
        loop {
            {
                let mut inc = shared.lock().await;
                if inc.resolved.is_some() {
                    return Ok(());
                }
                self.tick(&mut inc).await?;
            }
            self.clock.sleep(Duration::from_secs(60)).await;
        }
    }

    /// Resolves the incident and tells every level notified.
    pub async fn resolve(&self, inc: &mut Incident, resolution: &str) -> Result<()> {
        let now = self.clock.now();
        inc.resolved = Some((now, resolution.to_string()));
        inc.log(now, format!("Resolved: {resolution}"));
        let note = Notification::new(
            Severity::Info,
            format!("[{:?}] {}: resolved", inc.priority, inc.title),
        )
        .body(resolution)
        .event(NotificationEvent::Resolve)
        .dedup_key(inc.key());
        self.notify(inc, 0..=inc.escalated_to, &note).await
    }
}
