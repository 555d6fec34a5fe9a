//! [`Notifier`]: tell people (chat, paging, email, issues) what happened.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// How urgent a notification is, ordered from least to most.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// For the record.
    Info,
    /// Someone should look soon.
    Warning,
    /// Something is broken.
    Error,
    /// Page someone now.
    Critical,
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
            Severity::Critical => "critical",
        })
    }
}

/// What a notification does to the incident named by its dedup key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationEvent {
    /// Opens (or re-opens) an incident, or is a one-off message without a dedup key.
    #[default]
    Trigger,
    /// Adds to the incident.
    Update,
    /// Someone is on it.
    Acknowledge,
    /// It is over.
    Resolve,
}

/// A labelled link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    /// The text.
    pub label: String,
    /// The URL.
    pub url: String,
}

/// A message to send.
///
/// ```
/// use ops_core::contracts::{Notification, Severity};
/// let n = Notification::new(Severity::Error, "Deploy of api failed")
///     .body("Rolled back to `rev-41`.")
///     .field("service", "api")
///     .dedup_key("deploy/api/rev-42");
/// n.validate().unwrap();
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    /// Urgency.
    pub severity: Severity,
    /// What it does to the incident.
    #[serde(default)]
    pub event: NotificationEvent,
    /// One line.
    pub title: String,
    /// Markdown body.
    #[serde(default)]
    pub body_markdown: String,
    /// Key/value facts, in order.
    #[serde(default)]
    pub fields: Vec<(String, String)>,
    /// Links (dashboards, logs, runbook).
    #[serde(default)]
    pub links: Vec<Link>,
    /// Ties updates and the resolution to the incident that was triggered with the same key.
    pub dedup_key: Option<String>,
}

impl Notification {
    /// A trigger with `severity` and `title`.
    pub fn new(severity: Severity, title: impl Into<String>) -> Self {
        Self {
            severity,
            event: NotificationEvent::Trigger,
            title: title.into(),
            body_markdown: String::new(),
            fields: Vec::new(),
            links: Vec::new(),
            dedup_key: None,
        }
    }
    /// Sets the Markdown body.
    pub fn body(mut self, markdown: impl Into<String>) -> Self {
        self.body_markdown = markdown.into();
        self
    }
    /// Adds a field.
    pub fn field(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.fields.push((key.into(), value.into()));
        self
    }
    /// Adds a link.
    pub fn link(mut self, label: impl Into<String>, url: impl Into<String>) -> Self {
        self.links.push(Link {
            label: label.into(),
            url: url.into(),
        });
        self
    }
    /// Sets the dedup key.
    pub fn dedup_key(mut self, key: impl Into<String>) -> Self {
        self.dedup_key = Some(key.into());
        self
    }
    /// Sets the event.
    pub fn event(mut self, event: NotificationEvent) -> Self {
        self.event = event;
        self
    }
    /// Rejects an empty title, and an update / acknowledge / resolve without a dedup key.
    pub fn validate(&self) -> Result<()> {
        if self.title.trim().is_empty() {
            return Err(Error::invalid_input(
                "ops-core",
                "notify",
                "title",
                "must not be empty",
            ));
        }
        if self.event != NotificationEvent::Trigger
            && self
                .dedup_key
                .as_deref()
                .is_none_or(|k| k.trim().is_empty())
        {
            return Err(Error::invalid_input(
                "ops-core",
                "notify",
                "dedup_key",
                "an update, acknowledge or resolve needs the incident's dedup key",
            ));
        }
        Ok(())
    }
}

/// Proof of delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// The notifier that delivered it.
    pub notifier: String,
    /// The provider's id of the message / incident / issue, where it returns one.
    pub id: Option<String>,
    /// The dedup key it was filed under.
    pub dedup_key: Option<String>,
}

/// Delivers notifications to one channel.
///
/// `# Behavior` names the cases of the testkit's notifier suite (`testkit::notifier_cases`).
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait Notifier: Send + Sync {
    /// The channel's name, for reports.
    fn name(&self) -> &str;
    /// Sends one notification; `InvalidInput` when [`Notification::validate`] fails.
    ///
    /// # Behavior
    /// - A trigger, an update and a resolution under one dedup key are delivered, each receipt
    ///   naming the notifier (`an_incident_triggers_updates_and_resolves_under_its_key`).
    /// - An invalid notification is `InvalidInput` and nothing is sent
    ///   (`invalid_notifications_are_refused_before_sending`).
    async fn send(&self, notification: &Notification) -> Result<Receipt>;
}
