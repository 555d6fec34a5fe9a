//! [`NotifyRouter`]: severity → channels (the seeds' escalation matrix as configuration), a
//! concurrent fan-out where one channel down never hides the others, and escalation to the
//! next level when an incident is not acknowledged in time.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use ops_core::clock::{SharedClock, system_clock};
use ops_core::config::{RunbookConfig, human_duration};
use ops_core::contracts::{
    Notification, NotificationEvent, Notifier, OnCallSource, Receipt, Severity,
};
use ops_core::{Error, ErrorKind, Result};
use serde::{Deserialize, Serialize};

/// Routes and escalation.
///
/// ```toml
/// escalate_from = "error"          # severities that escalate when not acknowledged
/// [routes]
/// critical = ["pagerduty", "slack-incidents", "email-oncall"]
/// error = ["slack-alerts"]
/// warning = ["slack-alerts"]
/// info = ["slack-deployments"]
///
/// [[escalation]]                   # not acknowledged 15 minutes after the trigger
/// after = "15m"
/// channels = ["@on-call"]          # whoever is on call then (NotifyRouter::with_on_call)
/// [[escalation]]
/// after = "30m"
/// channels = ["@on-call-secondary", "email-management"]
///
/// [contacts]                       # each person's channel, for @on-call
/// alice = "sms-alice"
/// bob = "sms-bob"
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RouterConfig {
    /// Channels per severity (`critical`, `error`, `warning`, `info`).
    pub routes: BTreeMap<Severity, Vec<String>>,
    /// Levels notified, in order, while an incident stays unacknowledged.
    pub escalation: Vec<EscalationLevel>,
    /// The least severity that escalates.
    pub escalate_from: Severity,
    /// Each person's channel, for the channels `@on-call` and `@on-call-secondary`.
    pub contacts: BTreeMap<String, String>,
}

/// In a route or escalation level: whoever is on call when it is sent.
pub const ON_CALL: &str = "@on-call";
/// In a route or escalation level: the on-call person's backup.
pub const ON_CALL_SECONDARY: &str = "@on-call-secondary";

impl Default for RouterConfig {
    fn default() -> Self {
        Self {
            routes: BTreeMap::new(),
            escalation: Vec::new(),
            escalate_from: Severity::Error,
            contacts: BTreeMap::new(),
        }
    }
}

/// One escalation level.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EscalationLevel {
    /// Time since the trigger after which this level is notified.
    #[serde(with = "human_duration")]
    pub after: Duration,
    /// The channels it notifies.
    pub channels: Vec<String>,
}

impl RunbookConfig for RouterConfig {
    fn validate(&self) -> Result<()> {
        let invalid =
            |field: &str, reason: &str| Error::invalid_input("notify", "router", field, reason);
        if self.routes.values().all(Vec::is_empty) {
            return Err(invalid(
                "routes",
                "route at least one severity to a channel",
            ));
        }
        let mut last = Duration::ZERO;
        for (i, l) in self.escalation.iter().enumerate() {
            if l.after > ops_core::config::MAX_WAIT {
                return Err(invalid(
                    &format!("escalation[{i}].after"),
                    "must be at most 366 days",
                ));
            }
            if l.after <= last {
                return Err(invalid(
                    &format!("escalation[{i}].after"),
                    "must be later than the level before",
                ));
            }
            if l.channels.is_empty() {
                return Err(invalid(
                    &format!("escalation[{i}].channels"),
                    "must name a channel",
                ));
            }
            last = l.after;
        }
        let named = self
            .routes
            .values()
            .flatten()
            .chain(self.escalation.iter().flat_map(|l| &l.channels));
        for name in named {
            if name.starts_with('@') && name != ON_CALL && name != ON_CALL_SECONDARY {
                return Err(invalid(
                    "channels",
                    "the only @ channels are @on-call and @on-call-secondary",
                ));
            }
        }
        Ok(())
    }
}

/// One channel's outcome.
#[derive(Debug)]
pub struct Delivery {
    /// The channel's name.
    pub channel: String,
    /// Its receipt, or why it failed.
    pub outcome: Result<Receipt>,
}

/// What a fan-out did, channel by channel.
#[derive(Debug, Default)]
pub struct RouteReport {
    /// One entry per channel.
    pub deliveries: Vec<Delivery>,
}

impl RouteReport {
    /// A receipt from `notifier` naming the channels that took `n` (and those that failed),
    /// or the first error when none did.
    pub fn receipt(self, notifier: &str, n: &Notification) -> Result<Receipt> {
        let delivered = self.delivered();
        if delivered.is_empty() {
            let first = self.deliveries.into_iter().find_map(|d| d.outcome.err());
            return Err(first.unwrap_or_else(|| {
                Error::new(
                    "notify",
                    "route",
                    ErrorKind::Unavailable { retry_after: None },
                )
            }));
        }
        let failed: Vec<String> = self
            .failed()
            .iter()
            .map(|(c, e)| format!("{c}: {}", e.kind().name()))
            .collect();
        let mut summary = format!("delivered to {}", delivered.join(", "));
        if !failed.is_empty() {
            summary.push_str(&format!("; failed: {}", failed.join(", ")));
        }
        Ok(Receipt {
            notifier: notifier.to_string(),
            id: Some(summary),
            dedup_key: n.dedup_key.clone(),
        })
    }

    /// Channels that took the notification.
    pub fn delivered(&self) -> Vec<&str> {
        self.deliveries
            .iter()
            .filter(|d| d.outcome.is_ok())
            .map(|d| d.channel.as_str())
            .collect()
    }

    /// Channels that failed, with why.
    pub fn failed(&self) -> Vec<(&str, &Error)> {
        self.deliveries
            .iter()
            .filter_map(|d| d.outcome.as_ref().err().map(|e| (d.channel.as_str(), e)))
            .collect()
    }
}

#[derive(Default)]
struct Incident {
    channels: Vec<String>,
    acknowledged: bool,
    escalation: Option<tokio::task::JoinHandle<()>>,
}

/// Routes notifications to named channels.
#[derive(Clone)]
pub struct NotifyRouter {
    config: Arc<RouterConfig>,
    channels: Arc<BTreeMap<String, Arc<dyn Notifier>>>,
    clock: SharedClock,
    incidents: Arc<Mutex<HashMap<String, Incident>>>,
    name: String,
    on_call: Option<Arc<dyn OnCallSource>>,
}

impl std::fmt::Debug for NotifyRouter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotifyRouter")
            .field("config", &self.config)
            .field("channels", &self.channels.keys().collect::<Vec<_>>())
            .finish()
    }
}

async fn fan_out(
    channels: &BTreeMap<String, Arc<dyn Notifier>>,
    names: &[String],
    n: &Notification,
) -> RouteReport {
    let sends = names.iter().map(|name| {
        let channel = channels.get(name).cloned();
        let name = name.clone();
        async move {
            let outcome = match channel {
                Some(c) => c.send(n).await,
                None => Err(Error::invalid_input(
                    "notify",
                    "route",
                    "channel",
                    format!("no channel named {name}"),
                )),
            };
            if let Err(e) = &outcome {
                tracing::warn!(channel = %name, error = %e, "a notification channel failed");
            }
            Delivery {
                channel: name,
                outcome,
            }
        }
    });
    RouteReport {
        deliveries: futures_util::future::join_all(sends).await,
    }
}

impl NotifyRouter {
    /// A router over `channels` (by name). Every channel the config names must exist.
    pub fn new(
        config: RouterConfig,
        channels: BTreeMap<String, Arc<dyn Notifier>>,
    ) -> Result<Self> {
        config.validate()?;
        let named = config
            .routes
            .values()
            .flatten()
            .chain(config.escalation.iter().flat_map(|l| &l.channels))
            .filter(|n| !n.starts_with('@'))
            .chain(config.contacts.values());
        for name in named {
            if !channels.contains_key(name) {
                return Err(Error::invalid_input(
                    "notify",
                    "router",
                    "channels",
                    format!("the config names {name}, which is not given"),
                ));
            }
        }
        Ok(Self {
            config: Arc::new(config),
            channels: Arc::new(channels),
            clock: system_clock(),
            incidents: Arc::new(Mutex::new(HashMap::new())),
            name: "router".into(),
            on_call: None,
        })
    }

    /// Resolves `@on-call` and `@on-call-secondary` through `source` (a
    /// [`ops_core::calendar::Rotation`], or a paging service's schedule) and the config's
    /// contacts, at the moment each notification goes out.
    pub fn with_on_call(mut self, source: Arc<dyn OnCallSource>) -> Self {
        self.on_call = Some(source);
        self
    }

    /// Sends `n` to `names`, `@on-call` and `@on-call-secondary` resolved now; a name that
    /// cannot be resolved is a failed delivery in the report, never skipped silently.
    pub(crate) async fn deliver(&self, names: &[String], n: &Notification) -> RouteReport {
        let mut concrete: Vec<String> = Vec::new();
        let mut failed = Vec::new();
        let mut note = n.clone();
        if names.iter().any(|c| c.starts_with('@')) {
            let shift = match &self.on_call {
                Some(source) => source.on_call(self.clock.now()).await,
                None => Err(Error::invalid_input(
                    "notify",
                    "route",
                    "on_call",
                    "the routes name @on-call but the router has no on-call source (with_on_call)",
                )),
            };
            if let Ok(s) = &shift {
                note = note.field("on_call", s.primary.clone());
            }
            for name in names.iter().filter(|c| c.starts_with('@')) {
                let person = match &shift {
                    Ok(s) if name == ON_CALL => Ok(Some(s.primary.clone())),
                    Ok(s) => Ok(s.secondary.clone()),
                    Err(e) => Err(e.clone()),
                };
                let channel = person.and_then(|p| match p {
                    None => Err(Error::invalid_input(
                        "notify",
                        "route",
                        "on_call",
                        format!("{name}: the rotation has nobody for it"),
                    )),
                    Some(p) => self.config.contacts.get(&p).cloned().ok_or_else(|| {
                        Error::invalid_input(
                            "notify",
                            "route",
                            "contacts",
                            format!("{name} is {p}, who has no channel in contacts"),
                        )
                    }),
                });
                match channel {
                    Ok(c) if !concrete.contains(&c) => concrete.push(c),
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(channel = %name, error = %e, "could not resolve an on-call channel");
                        failed.push(Delivery {
                            channel: name.clone(),
                            outcome: Err(e),
                        });
                    }
                }
            }
        }
        for name in names.iter().filter(|c| !c.starts_with('@')) {
            if !concrete.contains(name) {
                concrete.push(name.clone());
            }
        }
        let mut report = fan_out(&self.channels, &concrete, &note).await;
        report.deliveries.extend(failed);
        report
    }

    /// Its configuration.
    pub fn config(&self) -> &RouterConfig {
        &self.config
    }

    /// The clock its timers wait on.
    pub(crate) fn clock(&self) -> SharedClock {
        self.clock.clone()
    }

    /// Whether `name` is one of its channels (or `@on-call` / `@on-call-secondary`).
    pub(crate) fn has_channel(&self, name: &str) -> bool {
        self.channels.contains_key(name) || name == ON_CALL || name == ON_CALL_SECONDARY
    }

    /// The same channels, clock and on-call source under `config`, with incidents of its own.
    pub(crate) fn with_config(&self, config: RouterConfig) -> Self {
        Self {
            config: Arc::new(config),
            incidents: Arc::new(Mutex::new(HashMap::new())),
            ..self.clone()
        }
    }

    /// The same router waiting on `clock` (escalation timers).
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Incident>> {
        self.incidents.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sends to every channel for this notification, concurrently, and says how each did.
    /// Updates, acknowledgements and resolutions of a known incident go where its trigger (and
    /// any escalation) went.
    pub async fn send_all(&self, n: &Notification) -> Result<RouteReport> {
        n.validate()?;
        let known = n
            .dedup_key
            .as_ref()
            .and_then(|k| self.lock().get(k).map(|i| i.channels.clone()));
        let targets = match (n.event, known) {
            (NotificationEvent::Trigger, _) | (_, None) => self
                .config
                .routes
                .get(&n.severity)
                .cloned()
                .unwrap_or_default(),
            (_, Some(channels)) => channels,
        };
        if targets.is_empty() {
            return Err(Error::invalid_input(
                "notify",
                "route",
                "severity",
                format!("no channel is routed for {}", n.severity),
            ));
        }
        let report = self.deliver(&targets, n).await;
        if let Some(key) = n.dedup_key.clone() {
            match n.event {
                NotificationEvent::Trigger => {
                    // Later updates go to the channels this went to, @on-call as resolved now.
                    let sent = report
                        .deliveries
                        .iter()
                        .map(|d| d.channel.clone())
                        .filter(|c| !c.starts_with('@'))
                        .collect();
                    self.opened(key, sent, n)
                }
                NotificationEvent::Acknowledge | NotificationEvent::Resolve => {
                    self.acknowledge(&key)
                }
                NotificationEvent::Update => {}
            }
        }
        Ok(report)
    }

    /// Stops escalation of the incident `dedup_key` (someone has it).
    pub fn acknowledge(&self, dedup_key: &str) {
        if let Some(i) = self.lock().get_mut(dedup_key) {
            i.acknowledged = true;
            if let Some(h) = i.escalation.take() {
                h.abort();
            }
        }
    }

    fn opened(&self, key: String, channels: Vec<String>, n: &Notification) {
        let escalates =
            n.severity >= self.config.escalate_from && !self.config.escalation.is_empty();
        let mut incidents = self.lock();
        let incident = incidents.entry(key.clone()).or_default();
        for c in channels {
            if !incident.channels.contains(&c) {
                incident.channels.push(c);
            }
        }
        if !escalates || incident.escalation.is_some() || incident.acknowledged {
            return;
        }
        let router = self.clone();
        let n = n.clone();
        incident.escalation = Some(tokio::spawn(async move { router.escalate(key, n).await }));
    }

    async fn escalate(&self, key: String, n: Notification) {
        let mut waited = Duration::ZERO;
        for (level, l) in self.config.escalation.iter().enumerate() {
            self.clock.sleep(l.after - waited).await;
            waited = l.after;
            if self.lock().get(&key).is_none_or(|i| i.acknowledged) {
                return;
            }
            let note = Notification {
                title: format!(
                    "[not acknowledged after {}] {}",
                    ops_core::config::human_duration::format(l.after),
                    n.title
                ),
                ..n.clone()
            };
            tracing::warn!(dedup_key = %key, level = level + 1, "escalating an unacknowledged incident");
            let report = self.deliver(&l.channels, &note).await;
            if let Some(i) = self.lock().get_mut(&key) {
                for c in report.delivered() {
                    if !i.channels.iter().any(|x| x == c) {
                        i.channels.push(c.to_string());
                    }
                }
            }
        }
    }
}

#[async_trait]
impl Notifier for NotifyRouter {
    fn name(&self) -> &str {
        &self.name
    }

    /// Succeeds when at least one channel took the notification (the receipt says which);
    /// fails with the first error when none did.
    async fn send(&self, n: &Notification) -> Result<Receipt> {
        self.send_all(n).await?.receipt(&self.name, n)
    }
}
