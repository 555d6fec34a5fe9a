//! PagerDuty Events API v2 (`POST /v2/enqueue`): trigger, acknowledge and resolve by dedup key.
//!
//! PagerDuty has no "update" action: an update is a repeated trigger with the same dedup key,
//! which PagerDuty adds to the open alert. Because of that dedup key, a trigger can be retried
//! safely; an event without a key gets the one PagerDuty assigns (in the receipt). The routing
//! key is a secret: never in errors, logs or `Debug`.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use ops_core::clock::SharedClock;
use ops_core::config::Env;
use ops_core::contracts::{Notification, NotificationEvent, Notifier, Receipt, Severity};
use ops_core::http::{HttpClient, HttpConfig, SendOptions, decode_json};
use ops_core::redact::redact_text;
use ops_core::retry::Idempotency;
use ops_core::{Error, ErrorKind, Result};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Value, json};
use url::Url;

/// `{"status":"invalid event","message":"Event object is invalid","errors":[…]}` → invalid
/// input with PagerDuty's reasons; 429 and 5xx go to the shared mapping.
fn parse_error(status: StatusCode, _: &HeaderMap, body: &[u8]) -> Option<ErrorKind> {
    #[derive(Deserialize)]
    struct Answer {
        #[serde(default)]
        message: String,
        #[serde(default)]
        errors: Vec<String>,
    }
    if status != StatusCode::BAD_REQUEST {
        return None;
    }
    let a: Answer = serde_json::from_slice(body).ok()?;
    Some(ErrorKind::InvalidInput {
        field: "event".into(),
        reason: redact_text(&format!("{}: {}", a.message, a.errors.join("; "))),
    })
}

fn default_pagerduty_name() -> String {
    "pagerduty".into()
}

fn default_events_url() -> Url {
    Url::parse("https://events.pagerduty.com/v2/enqueue").expect("a valid URL")
}

/// One integration's settings.
///
/// ```
/// use ops_core::config::Env;
/// use ops_notify::pagerduty::PagerDutyConfig;
/// let vars = |k: &str| match k {
///     "PAGERDUTY_ROUTING_KEY" => Some("0123456789abcdef0123456789abcdef".to_string()),
///     "PAGERDUTY_SOURCE" => Some("checkout".to_string()),
///     _ => None,
/// };
/// let c = PagerDutyConfig::from_vars(Env::new("pagerduty", &vars)).unwrap();
/// assert_eq!(c.source, "checkout");
/// assert!(!format!("{c:?}").contains("0123456789abcdef"));
/// ```
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PagerDutyConfig {
    /// The channel's name in receipts and reports (default `pagerduty`).
    #[serde(default = "default_pagerduty_name")]
    pub name: String,
    /// The integration's routing key (32 characters, a secret).
    pub routing_key: SecretString,
    /// The affected system, named in every alert.
    pub source: String,
    /// The Events API v2 URL (`https://events.pagerduty.com/v2/enqueue`).
    #[serde(default = "default_events_url")]
    pub events_url: Url,
    /// Timeouts and retries.
    #[serde(default)]
    pub http: HttpConfig,
}

impl fmt::Debug for PagerDutyConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PagerDutyConfig")
            .field("name", &self.name)
            .field("routing_key", &"[redacted]")
            .field("source", &self.source)
            .field("events_url", &self.events_url.as_str())
            .finish_non_exhaustive()
    }
}

impl PagerDutyConfig {
    /// The integration with `routing_key`, naming `source` in its alerts.
    pub fn new(
        name: impl Into<String>,
        routing_key: impl Into<String>,
        source: impl Into<String>,
    ) -> Self {
        Self {
            name: name.into(),
            routing_key: SecretString::from(routing_key.into()),
            source: source.into(),
            events_url: default_events_url(),
            http: HttpConfig::default(),
        }
    }

    /// `PAGERDUTY_ROUTING_KEY` and `PAGERDUTY_SOURCE` from the environment.
    pub fn from_env() -> Result<Self> {
        Self::from_vars(Env::from_env("pagerduty"))
    }

    /// [`Self::from_env`] over any variable lookup.
    pub fn from_vars(env: Env<'_>) -> Result<Self> {
        Ok(Self::new(
            default_pagerduty_name(),
            env.required(
                "PAGERDUTY_ROUTING_KEY",
                "the service integration's routing key",
            )?,
            env.required("PAGERDUTY_SOURCE", "the affected system's name")?,
        ))
    }
}

/// One PagerDuty service integration (its routing key).
#[derive(Clone)]
pub struct PagerDuty {
    routing_key: Arc<SecretString>,
    url: Url,
    source: String,
    http: HttpClient,
    name: String,
}

impl fmt::Debug for PagerDuty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PagerDuty")
            .field("name", &self.name)
            .field("routing_key", &"[redacted]")
            .finish()
    }
}

impl PagerDuty {
    /// Events for the integration `config` describes. A routing key that is not 32
    /// characters is refused here.
    pub fn new(config: PagerDutyConfig) -> Result<Self> {
        if config.routing_key.expose_secret().trim().len() != 32 {
            return Err(Error::invalid_input(
                "pagerduty",
                "config",
                "routing_key",
                "must be the 32-character integration key",
            ));
        }
        Ok(Self {
            routing_key: Arc::new(config.routing_key),
            url: config.events_url,
            source: config.source,
            http: HttpClient::new("pagerduty", &config.http)?
                .with_error_parser(Arc::new(parse_error)),
            name: config.name,
        })
    }

    /// The same notifier on `clock` (retry waits, event timestamps).
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.http = self.http.with_clock(clock);
        self
    }

    /// The same notifier against `base` (a simulator: `…/v2/enqueue` is appended), on `http`.
    pub fn with_base(mut self, base: &str, http: HttpClient) -> Result<Self> {
        self.url = Url::parse(&format!("{}/v2/enqueue", base.trim_end_matches('/')))
            .map_err(|e| Error::invalid_input("pagerduty", "config", "base_url", e.to_string()))?;
        self.http = http
            .with_provider("pagerduty")
            .with_error_parser(Arc::new(parse_error));
        Ok(self)
    }

    /// The event body for `n`.
    pub fn event(&self, n: &Notification, now: chrono::DateTime<chrono::Utc>) -> Value {
        let action = match n.event {
            NotificationEvent::Trigger | NotificationEvent::Update => "trigger",
            NotificationEvent::Acknowledge => "acknowledge",
            NotificationEvent::Resolve => "resolve",
        };
        let mut e = json!({ "routing_key": self.routing_key.expose_secret(), "event_action": action, "client": "ops" });
        if let Some(k) = &n.dedup_key {
            e["dedup_key"] = json!(k);
        }
        if action == "trigger" {
            let severity = match n.severity {
                Severity::Critical => "critical",
                Severity::Error => "error",
                Severity::Warning => "warning",
                Severity::Info => "info",
            };
            let summary: String = n.title.chars().take(1024).collect();
            let mut details = serde_json::Map::new();
            for (k, v) in &n.fields {
                details.insert(k.clone(), json!(v));
            }
            if !n.body_markdown.is_empty() {
                details.insert("details".into(), json!(n.body_markdown));
            }
            e["payload"] = json!({
                "summary": summary, "source": self.source, "severity": severity,
                "timestamp": now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                "custom_details": details,
            });
            if !n.links.is_empty() {
                e["links"] = json!(
                    n.links
                        .iter()
                        .map(|l| json!({"href": l.url, "text": l.label}))
                        .collect::<Vec<_>>()
                );
            }
        }
        e
    }
}

/// The longest `dedup_key` the Events API v2 accepts.
pub const MAX_DEDUP_KEY: usize = 255;

#[async_trait]
impl Notifier for PagerDuty {
    fn name(&self) -> &str {
        &self.name
    }

    async fn send(&self, n: &Notification) -> Result<Receipt> {
        n.validate()?;
        // The Events API refuses a longer key; refused here, nothing is sent.
        if let Some(k) = &n.dedup_key
            && k.chars().count() > MAX_DEDUP_KEY
        {
            return Err(Error::invalid_input(
                "pagerduty",
                "enqueue",
                "dedup_key",
                format!(
                    "{} characters; PagerDuty accepts at most {MAX_DEDUP_KEY}",
                    k.chars().count()
                ),
            ));
        }
        let body = self.event(n, self.http.clock().now());
        let req = self.http.post(self.url.clone()).json(&body);
        let options = SendOptions {
            // With a dedup key, a repeat is merged by PagerDuty: safe to retry.
            idempotency: n.dedup_key.as_ref().map(|_| Idempotency::Idempotent),
            resource: Some("pagerduty events".into()),
            ..SendOptions::default()
        };
        let (_, _, bytes) = self.http.send_bytes("enqueue", req, &options).await?;
        #[derive(Deserialize)]
        struct Accepted {
            #[serde(default)]
            dedup_key: Option<String>,
        }
        let a: Accepted = decode_json("pagerduty", "enqueue", &bytes)?;
        Ok(Receipt {
            notifier: self.name.clone(),
            id: a.dedup_key.clone(),
            dedup_key: a.dedup_key.or_else(|| n.dedup_key.clone()),
        })
    }
}
