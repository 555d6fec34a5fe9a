//! Incident response: declare, keep a timeline, post updates on a cadence, escalate by the
//! escalation matrix, resolve, and write the postmortem by its deadline.
//!
//! Replaces the seeds' incident procedure: severity P0–P3 with response times (P0 5 min, P1
//! 15 min, P2 4 h, P3 24 h), the escalation matrix (levels told at once, after a time without
//! an acknowledgement or without a resolution, or when a metric such as cost crosses a line;
//! see [`escalation`]), status updates every 15 / 30 / 120 minutes, and the postmortem with its
//! deadline.
//!
//! An incident is long-lived and driven by events from outside (someone acknowledges), so it is
//! not a list of steps: [`Incident`] (a contract type) is plain data (serde: save it and load it across
//! restarts), [`IncidentResponse`] acts on it, reading time from its clock.

pub mod escalation;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

pub use escalation::{EscalationRule, Trigger};

use serde::{Deserialize, Serialize};

use super::RunbookConfig;
use super::config::{MAX_WAIT, at_most, human_duration, invalid, positive};
use crate::clock::{SharedClock, system_clock};
pub use crate::contracts::{Incident, Priority, TimelineEntry};
use crate::contracts::{MetricsSource, Notification, NotificationEvent, Notifier, Severity};
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
    /// The postmortem is due this long after the resolution (seeds 001 and 004: 24 h).
    #[serde(
        default,
        with = "human_duration::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub postmortem_within: Option<Duration>,
    /// The retrospective meeting is due this long after the resolution (seed 004: 48 h for P1).
    #[serde(
        default,
        with = "human_duration::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub retrospective_within: Option<Duration>,
}

/// Settings of incident response.
///
/// ```toml
/// [priorities.P0]
/// response_time = "5m"
/// update_every = "15m"
/// severity = "critical"
/// postmortem_within = "24h"
///
/// [[escalation]]
/// level = "leadership"
/// priorities = ["P0"]
/// when = "declared"
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IncidentConfig {
    /// Per priority (defaults: P0 5 min / 15 min, P1 15 min / 30 min, P2 4 h / 2 h, P3 24 h /
    /// none). Priorities a config leaves out keep their defaults.
    #[serde(deserialize_with = "over_defaults")]
    pub priorities: BTreeMap<Priority, PriorityPolicy>,
    /// The escalation matrix. Empty (the default): level `i` is told when nobody acknowledges
    /// within `i` response times.
    pub escalation: Vec<EscalationRule>,
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
            postmortem_within: None,
            retrospective_within: None,
        };
        Self {
            priorities: BTreeMap::from([
                (Priority::P0, p(m(5), m(15), Severity::Critical)),
                (Priority::P1, p(m(15), m(30), Severity::Error)),
                (Priority::P2, p(m(240), m(120), Severity::Warning)),
                (Priority::P3, p(m(24 * 60), m(0), Severity::Info)),
            ]),
            escalation: Vec::new(),
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
            for (name, d) in [
                ("postmortem_within", policy.postmortem_within),
                ("retrospective_within", policy.retrospective_within),
            ] {
                if let Some(d) = d {
                    let field = format!("priorities.{p:?}.{name}");
                    positive(&field, d)?;
                    at_most(&field, d, MAX_WAIT)?;
                }
            }
        }
        for (i, rule) in self.escalation.iter().enumerate() {
            rule.validate(&format!("escalation[{i}]"))?;
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
    metrics: Option<Arc<dyn MetricsSource>>,
    clock: SharedClock,
    dry_run: bool,
}

impl IncidentResponse {
    /// A response with no escalation levels yet.
    pub fn new(config: IncidentConfig) -> Self {
        Self {
            config,
            levels: Vec::new(),
            metrics: None,
            clock: system_clock(),
            dry_run: false,
        }
    }

    /// Where metric triggers of the escalation matrix read (cost, error rate).
    pub fn metrics(mut self, metrics: Arc<dyn MetricsSource>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Checks the config against the levels given: every rule names a level, metric rules
    /// have a source.
    fn check(&self) -> Result<()> {
        self.config.validate()?;
        if self.levels.is_empty() {
            return Err(invalid("levels", "give at least one escalation level"));
        }
        for (i, rule) in self.config.escalation.iter().enumerate() {
            if self.level_index(&rule.level).is_none() {
                let names: Vec<&str> = self.levels.iter().map(|(n, _)| n.as_str()).collect();
                return Err(invalid(
                    &format!("escalation[{i}].level"),
                    format!(
                        "no level named {:?}; levels are {}",
                        rule.level,
                        names.join(", ")
                    ),
                ));
            }
            if matches!(rule.when, Trigger::Metric { .. }) && self.metrics.is_none() {
                return Err(invalid(
                    &format!("escalation[{i}]"),
                    "a metric trigger needs IncidentResponse::metrics",
                ));
            }
        }
        Ok(())
    }

    fn level_index(&self, name: &str) -> Option<usize> {
        self.levels.iter().position(|(n, _)| n == name)
    }

    /// The rules in force: the configured matrix, or the response-time ladder.
    fn rules(&self, policy: &PriorityPolicy) -> Vec<EscalationRule> {
        if self.config.escalation.is_empty() {
            let names: Vec<String> = self.levels.iter().map(|(n, _)| n.clone()).collect();
            escalation::default_ladder(&names, policy.response_time)
        } else {
            self.config.escalation.clone()
        }
    }

    /// The levels told so far (an incident saved before the matrix counts its ladder).
    fn told(&self, inc: &Incident) -> Vec<usize> {
        if inc.notified.is_empty() {
            return (0..=inc.escalated_to.min(self.levels.len().saturating_sub(1))).collect();
        }
        inc.notified
            .iter()
            .filter_map(|n| self.level_index(n))
            .collect()
    }

    /// Records that `level` was told.
    fn mark_told(&self, inc: &mut Incident, level: usize) {
        if inc.notified.is_empty() {
            // Carry an older record's ladder over before adding to it.
            inc.notified = self
                .told(inc)
                .iter()
                .map(|i| self.levels[*i].0.clone())
                .collect();
        }
        let name = &self.levels[level].0;
        if !inc.notified.contains(name) {
            inc.notified.push(name.clone());
        }
        inc.escalated_to = inc.escalated_to.max(level);
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
        levels: &[usize],
        note: &Notification,
    ) -> Result<()> {
        if self.dry_run {
            let to: Vec<&str> = levels
                .iter()
                .filter_map(|i| self.levels.get(*i))
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
        for (name, n) in levels.iter().filter_map(|i| self.levels.get(*i)) {
            if let Err(e) = n.send(note).await {
                tracing::error!(incident = %inc.id, level = %name, error = %e, "could not notify");
                let line = format!("{name}: {e}");
                inc.log(self.clock.now(), format!("Could not notify {line}"));
                inc.failed_deliveries.push(line);
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }

    /// Declares an incident and notifies the first escalation level (and every level the
    /// matrix tells at declaration). `Err` only for an invalid title or configuration: a level
    /// that cannot be told does not undeclare the incident; it is recorded in
    /// [`Incident::failed_deliveries`] and the timeline.
    pub async fn declare(&self, title: &str, priority: Priority, impact: &str) -> Result<Incident> {
        self.check()?;
        if title.trim().is_empty() {
            return Err(invalid("title", "must not be empty"));
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
            notified: Vec::new(),
            failed_deliveries: Vec::new(),
            last_update: now,
            timeline: Vec::new(),
            root_cause: None,
            follow_ups: Vec::new(),
            postmortem_due: None,
            retrospective_due: None,
        };
        let policy = self.policy(priority)?.clone();
        // The first level, and every level the matrix tells at once for this priority.
        let mut first = vec![0];
        for rule in self.rules(&policy) {
            if rule.applies_to(priority)
                && rule.when == Trigger::Declared
                && let Some(i) = self.level_index(&rule.level)
                && !first.contains(&i)
            {
                first.push(i);
            }
        }
        let names: Vec<&str> = first.iter().map(|i| self.levels[*i].0.as_str()).collect();
        inc.log(
            now,
            format!(
                "Declared {priority:?}: {title}; notified {}",
                names.join(", ")
            ),
        );
        for i in &first {
            self.mark_told(&mut inc, *i);
        }
        let note = Notification::new(policy.severity, format!("[{priority:?}] {title}"))
            .body(impact)
            .field("incident", &inc.id)
            .dedup_key(inc.key());
        // The incident is declared whether or not every level could be told: people act on
        // it. A failed delivery is in `failed_deliveries` and the timeline.
        let _ = self.notify(&mut inc, &first, &note).await;
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
        let told = self.told(inc);
        self.notify(inc, &told, &note).await
    }

    /// Escalates by the matrix (each level at most once), and posts the cadence update when
    /// one is due. Call it periodically, or use [`IncidentResponse::watch`]. Returns what it
    /// did.
    pub async fn tick(&self, inc: &mut Incident) -> Result<Vec<String>> {
        let mut did = Vec::new();
        if inc.resolved.is_some() {
            return Ok(did);
        }
        self.check()?;
        let now = self.clock.now();
        let policy = self.policy(inc.priority)?.clone();
        for rule in self.rules(&policy) {
            let Some(level) = self.level_index(&rule.level) else {
                continue;
            };
            if !rule.applies_to(inc.priority) || self.told(inc).contains(&level) {
                continue;
            }
            let Some(why) = rule.fires(inc, now, self.metrics.as_deref()).await? else {
                continue;
            };
            let name = rule.level.clone();
            inc.log(now, format!("Escalated to {name}: {why}"));
            self.mark_told(inc, level);
            let note = Notification::new(
                policy.severity,
                format!("[{:?}] {} — ESCALATED: {why}", inc.priority, inc.title),
            )
            .body(&inc.impact)
            .dedup_key(inc.key());
            self.notify(inc, &[level], &note).await?;
            did.push(format!("escalated to {name}"));
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

    /// Resolves the incident, sets the postmortem and retrospective deadlines of its priority,
    /// and tells every level notified.
    pub async fn resolve(&self, inc: &mut Incident, resolution: &str) -> Result<()> {
        let now = self.clock.now();
        let policy = self.policy(inc.priority)?.clone();
        let due = |within: Option<Duration>| {
            within
                .and_then(|d| chrono::Duration::from_std(d).ok())
                .and_then(|d| now.checked_add_signed(d))
        };
        inc.resolved = Some((now, resolution.to_string()));
        inc.postmortem_due = due(policy.postmortem_within);
        inc.retrospective_due = due(policy.retrospective_within);
        inc.log(now, format!("Resolved: {resolution}"));
        let mut body = resolution.to_string();
        for (what, at) in [
            ("Postmortem", inc.postmortem_due),
            ("Retrospective", inc.retrospective_due),
        ] {
            if let Some(at) = at {
                let line = format!("{what} due by {}", at.format("%Y-%m-%d %H:%M UTC"));
                inc.log(now, line.clone());
                body.push_str(&format!("\n{line}"));
            }
        }
        let note = Notification::new(
            Severity::Info,
            format!("[{:?}] {}: resolved", inc.priority, inc.title),
        )
        .body(body)
        .event(NotificationEvent::Resolve)
        .dedup_key(inc.key());
        let told = self.told(inc);
        self.notify(inc, &told, &note).await
    }
}
