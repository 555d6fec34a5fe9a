//! Atlassian Statuspage (REST API v1): an incident on the public status page per dedup key —
//! created on trigger, updated on update and acknowledge, resolved on resolve, its components'
//! status following — and scheduled maintenance announced ahead (seed 001's status page).
//!
//! The page is public: route to it only what customers should read (the router's routes, or
//! templates written for customers). The API key is a secret: never in errors, logs or `Debug`.
//! An incident carries its dedup key in its `metadata` (`{"ops": {"dedup_key": …}}`), so a
//! trigger repeated after a restart updates the open incident instead of opening a second.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ops_core::clock::SharedClock;
use ops_core::config::Env;
use ops_core::contracts::{Notification, NotificationEvent, Notifier, Receipt, Severity};
use ops_core::http::{HttpClient, HttpConfig, SendOptions, decode_json};
use ops_core::redact::redact_text;
use ops_core::retry::Idempotency;
use ops_core::{Error, ErrorKind, Result};
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use url::Url;

const PROVIDER: &str = "statuspage";
/// The longest incident name kept (Statuspage shows it as a headline).
pub const MAX_NAME: usize = 255;
/// The most unresolved incidents looked through for a dedup key.
const MAX_UNRESOLVED: usize = 100;

/// Statuspage answers 420 (and 429) when the 1 request/second limit is passed; `{"error": …}`
/// or `{"message": …}` bodies name the reason of a 400/422.
fn parse_error(status: StatusCode, _: &HeaderMap, body: &[u8]) -> Option<ErrorKind> {
    if status.as_u16() == 420 {
        return Some(ErrorKind::RateLimited { retry_after: None });
    }
    if status != StatusCode::BAD_REQUEST && status != StatusCode::UNPROCESSABLE_ENTITY {
        return None;
    }
    #[derive(Deserialize)]
    struct Answer {
        #[serde(default)]
        error: Option<Value>,
        #[serde(default)]
        message: Option<String>,
    }
    let a: Answer = serde_json::from_slice(body).ok()?;
    let reason = match (a.error, a.message) {
        (Some(Value::String(s)), _) => s,
        (Some(Value::Array(v)), _) => v
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join("; "),
        (_, Some(m)) => m,
        _ => return None,
    };
    Some(ErrorKind::InvalidInput {
        field: "incident".into(),
        reason: redact_text(&reason),
    })
}

fn default_name() -> String {
    PROVIDER.into()
}

fn default_api() -> Url {
    Url::parse("https://api.statuspage.io/v1/").expect("a valid URL")
}

fn yes() -> bool {
    true
}

/// One status page's settings.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatuspageConfig {
    /// The channel's name in receipts and reports (default `statuspage`).
    #[serde(default = "default_name")]
    pub name: String,
    /// An API key of the page's organisation (a secret).
    pub api_key: SecretString,
    /// The page's id.
    pub page_id: String,
    /// The components an incident affects (their status follows the incident's severity).
    #[serde(default)]
    pub component_ids: Vec<String>,
    /// Whether subscribers are told (default true).
    #[serde(default = "yes")]
    pub deliver_notifications: bool,
    /// The API's base URL (`https://api.statuspage.io/v1/`).
    #[serde(default = "default_api")]
    pub api_url: Url,
    /// Timeouts and retries.
    #[serde(default)]
    pub http: HttpConfig,
}

impl fmt::Debug for StatuspageConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StatuspageConfig")
            .field("name", &self.name)
            .field("api_key", &"[redacted]")
            .field("page_id", &self.page_id)
            .field("component_ids", &self.component_ids)
            .finish_non_exhaustive()
    }
}

impl StatuspageConfig {
    /// The page `page_id`, with `api_key`.
    pub fn new(api_key: impl Into<String>, page_id: impl Into<String>) -> Self {
        Self {
            name: default_name(),
            api_key: SecretString::from(api_key.into()),
            page_id: page_id.into(),
            component_ids: Vec::new(),
            deliver_notifications: true,
            api_url: default_api(),
            http: HttpConfig::default(),
        }
    }

    /// Incidents affect these components.
    pub fn components(mut self, ids: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.component_ids = ids.into_iter().map(Into::into).collect();
        self
    }

    /// `STATUSPAGE_API_KEY`, `STATUSPAGE_PAGE_ID` and (comma-separated, optional)
    /// `STATUSPAGE_COMPONENT_IDS` from the environment.
    pub fn from_env() -> Result<Self> {
        Self::from_vars(Env::from_env(PROVIDER))
    }

    /// [`Self::from_env`] over any variable lookup.
    pub fn from_vars(env: Env<'_>) -> Result<Self> {
        let components = env.optional("STATUSPAGE_COMPONENT_IDS").unwrap_or_default();
        Ok(Self::new(
            env.required(
                "STATUSPAGE_API_KEY",
                "an API key of the page's organisation",
            )?,
            env.required("STATUSPAGE_PAGE_ID", "the status page's id")?,
        )
        .components(
            components
                .split(',')
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(str::to_string)
                .collect::<Vec<_>>(),
        ))
    }
}

/// A maintenance to announce on the page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Maintenance {
    /// Its headline (`Database upgrade`).
    pub name: String,
    /// What customers should know.
    pub body: String,
    /// When it starts.
    pub starts: DateTime<Utc>,
    /// When it ends.
    pub ends: DateTime<Utc>,
    /// Remind subscribers an hour before.
    pub remind: bool,
}

/// An incident as Statuspage returns it (the parts read).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct StatusIncident {
    /// Its id (the description does not promise one; an incident without it cannot be
    /// updated and is never matched).
    #[serde(default)]
    pub id: String,
    /// Its name.
    #[serde(default)]
    pub name: String,
    /// `investigating`, `identified`, `monitoring`, `resolved`, `scheduled`, `in_progress`,
    /// `verifying`, `completed`, or one added later.
    #[serde(default)]
    pub status: String,
    /// The public short link.
    #[serde(default)]
    pub shortlink: Option<String>,
    /// What was attached at creation.
    #[serde(default)]
    pub metadata: Option<Value>,
}

impl StatusIncident {
    fn dedup_key(&self) -> Option<&str> {
        self.metadata
            .as_ref()?
            .get("ops")?
            .get("dedup_key")?
            .as_str()
    }
}

/// The incident status a notification names in a `status` field (`investigating`,
/// `identified`, `monitoring`), if any.
fn named_status(n: &Notification) -> Option<&'static str> {
    let named = n.fields.iter().find(|(k, _)| k == "status")?.1.as_str();
    ["investigating", "identified", "monitoring"]
        .into_iter()
        .find(|s| *s == named)
}

/// The status a new incident opens with: the named one, else investigating.
fn opening_status(n: &Notification) -> &'static str {
    named_status(n).unwrap_or("investigating")
}

/// The status an open incident moves to: resolve resolves; a named status is taken; an
/// acknowledgement moves investigating on to identified; anything else keeps the stage the
/// incident reached (a repeated trigger never moves it back).
fn next_status(n: &Notification, current: &str) -> String {
    match (n.event, named_status(n)) {
        (NotificationEvent::Resolve, _) => "resolved".into(),
        (_, Some(s)) => s.into(),
        (NotificationEvent::Acknowledge, None) if current == "investigating" => "identified".into(),
        _ if current.is_empty() => "identified".into(),
        _ => current.to_string(),
    }
}

/// The impact and component status a severity shows as.
fn impact_of(s: Severity) -> (&'static str, &'static str) {
    match s {
        Severity::Critical => ("critical", "major_outage"),
        Severity::Error => ("major", "partial_outage"),
        Severity::Warning => ("minor", "degraded_performance"),
        Severity::Info => ("none", "operational"),
    }
}

/// One status page.
#[derive(Clone)]
pub struct Statuspage {
    name: String,
    api_key: Arc<SecretString>,
    page_id: String,
    components: Vec<String>,
    deliver: bool,
    api: Url,
    http: HttpClient,
}

impl fmt::Debug for Statuspage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Statuspage")
            .field("name", &self.name)
            .field("page_id", &self.page_id)
            .field("api_key", &"[redacted]")
            .finish()
    }
}

impl Statuspage {
    /// The page `config` describes; an empty key or page id is refused here.
    pub fn new(config: StatuspageConfig) -> Result<Self> {
        if config.api_key.expose_secret().trim().is_empty() {
            return Err(Error::invalid_input(
                PROVIDER, "config", "api_key", "is empty",
            ));
        }
        // The id goes into the request path: letters and digits only, as Statuspage's are.
        if config.page_id.is_empty()
            || config.page_id.len() > 64
            || !config.page_id.chars().all(|c| c.is_ascii_alphanumeric())
        {
            return Err(Error::invalid_input(
                PROVIDER,
                "config",
                "page_id",
                "must be the page's id: 1 to 64 letters and digits",
            ));
        }
        Ok(Self {
            name: config.name,
            api_key: Arc::new(config.api_key),
            page_id: config.page_id,
            components: config.component_ids,
            deliver: config.deliver_notifications,
            api: config.api_url,
            http: HttpClient::new(PROVIDER, &config.http)?.with_error_parser(Arc::new(parse_error)),
        })
    }

    /// The same page on `clock` (retry waits).
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.http = self.http.with_clock(clock);
        self
    }

    /// The same page against `base` (a simulator: `…/v1/` is appended), on `http`.
    pub fn with_base(mut self, base: &str, http: HttpClient) -> Result<Self> {
        self.api = Url::parse(&format!("{}/v1/", base.trim_end_matches('/')))
            .map_err(|e| Error::invalid_input(PROVIDER, "config", "api_url", e.to_string()))?;
        self.http = http
            .with_provider(PROVIDER)
            .with_error_parser(Arc::new(parse_error));
        Ok(self)
    }

    fn url(&self, rest: &str) -> Result<Url> {
        self.api
            .join(&format!("pages/{}/{rest}", self.page_id))
            .map_err(|e| Error::invalid_input(PROVIDER, "url", "path", e.to_string()))
    }

    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        operation: &'static str,
        method: Method,
        url: Url,
        body: Option<&Value>,
        idempotency: Idempotency,
    ) -> Result<T> {
        let mut auth = HeaderValue::from_str(&format!("OAuth {}", self.api_key.expose_secret()))
            .map_err(|_| {
                Error::invalid_input(
                    PROVIDER,
                    operation,
                    "api_key",
                    "holds a byte a header cannot carry",
                )
            })?;
        auth.set_sensitive(true);
        let mut req = self.http.request(method, url).header(AUTHORIZATION, auth);
        if let Some(b) = body {
            req = req.json(b);
        }
        let options = SendOptions {
            idempotency: Some(idempotency),
            resource: Some(format!("status page {}", self.page_id)),
            ..SendOptions::default()
        };
        let (_, _, bytes) = self.http.send_bytes(operation, req, &options).await?;
        decode_json(PROVIDER, operation, &bytes)
    }

    /// The open incident filed under `key`, if any.
    pub async fn find(&self, key: &str) -> Result<Option<StatusIncident>> {
        let mut url = self.url("incidents/unresolved")?;
        url.query_pairs_mut()
            .append_pair("per_page", &MAX_UNRESOLVED.to_string());
        let open: Vec<StatusIncident> = self
            .call(
                "list_unresolved_incidents",
                Method::GET,
                url,
                None,
                Idempotency::Idempotent,
            )
            .await?;
        Ok(open
            .into_iter()
            .find(|i| !i.id.is_empty() && i.dedup_key() == Some(key)))
    }

    fn components_at(&self, status: &str) -> Value {
        Value::Object(
            self.components
                .iter()
                .map(|c| (c.clone(), json!(status)))
                .collect(),
        )
    }

    /// The body of a new incident for `n`.
    pub fn new_incident(&self, n: &Notification) -> Value {
        let (impact, component_status) = impact_of(n.severity);
        let name: String = n.title.chars().take(MAX_NAME).collect();
        let mut incident = json!({
            "name": name,
            "status": opening_status(n),
            "impact_override": impact,
            "body": body_of(n),
            "deliver_notifications": self.deliver,
        });
        if !self.components.is_empty() {
            incident["component_ids"] = json!(self.components);
            incident["components"] = self.components_at(component_status);
        }
        if let Some(k) = &n.dedup_key {
            incident["metadata"] = json!({"ops": {"dedup_key": k}});
        }
        json!({ "incident": incident })
    }

    /// The body of an update of the open incident `current` for `n`.
    pub fn incident_update(&self, n: &Notification, current: &StatusIncident) -> Value {
        let status = next_status(n, &current.status);
        let component_status = if status == "resolved" {
            "operational"
        } else {
            impact_of(n.severity).1
        };
        let mut incident = json!({
            "status": status,
            "body": body_of(n),
            "deliver_notifications": self.deliver,
        });
        if !self.components.is_empty() {
            incident["component_ids"] = json!(self.components);
            incident["components"] = self.components_at(component_status);
        }
        json!({ "incident": incident })
    }

    /// Announces a maintenance: a scheduled incident that moves to in progress at its start
    /// and to completed at its end by itself, components under maintenance meanwhile. Sent
    /// once (a POST); a repeat would announce it twice.
    pub async fn announce_maintenance(&self, m: &Maintenance) -> Result<StatusIncident> {
        if m.ends <= m.starts {
            return Err(Error::invalid_input(
                PROVIDER,
                "announce_maintenance",
                "ends",
                "must be after starts",
            ));
        }
        let name: String = m.name.chars().take(MAX_NAME).collect();
        let mut incident = json!({
            "name": name,
            "status": "scheduled",
            "impact_override": "maintenance",
            "body": m.body,
            "scheduled_for": m.starts.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "scheduled_until": m.ends.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "scheduled_remind_prior": m.remind,
            "scheduled_auto_in_progress": true,
            "scheduled_auto_completed": true,
            "auto_transition_to_maintenance_state": true,
            "auto_transition_to_operational_state": true,
            "deliver_notifications": self.deliver,
        });
        if !self.components.is_empty() {
            incident["component_ids"] = json!(self.components);
        }
        self.call(
            "create_incident",
            Method::POST,
            self.url("incidents")?,
            Some(&json!({ "incident": incident })),
            Idempotency::NotIdempotent,
        )
        .await
    }
}

fn body_of(n: &Notification) -> String {
    if n.body_markdown.trim().is_empty() {
        n.title.clone()
    } else {
        n.body_markdown.clone()
    }
}

#[async_trait]
impl Notifier for Statuspage {
    fn name(&self) -> &str {
        &self.name
    }

    async fn send(&self, n: &Notification) -> Result<Receipt> {
        n.validate()?;
        let existing = match &n.dedup_key {
            Some(k) => self.find(k).await?,
            None => None,
        };
        let incident: StatusIncident = match (existing, n.event) {
            (Some(open), _) => {
                let url = self.url(&format!("incidents/{}", open.id))?;
                // A PATCH to a state: the same incident whether sent once or twice.
                self.call(
                    "update_incident",
                    Method::PATCH,
                    url,
                    Some(&self.incident_update(n, &open)),
                    Idempotency::Idempotent,
                )
                .await?
            }
            (None, NotificationEvent::Trigger) => {
                // A POST opens an incident: sent once, never retried after it may have landed.
                self.call(
                    "create_incident",
                    Method::POST,
                    self.url("incidents")?,
                    Some(&self.new_incident(n)),
                    Idempotency::NotIdempotent,
                )
                .await?
            }
            (None, _) => {
                return Err(Error::new(
                    PROVIDER,
                    "send",
                    ErrorKind::NotFound {
                        resource: format!(
                            "an open incident for {:?} on status page {}",
                            n.dedup_key.as_deref().unwrap_or(""),
                            self.page_id
                        ),
                    },
                ));
            }
        };
        Ok(Receipt {
            notifier: self.name.clone(),
            id: Some(incident.id).filter(|id| !id.is_empty()),
            dedup_key: n.dedup_key.clone(),
        })
    }
}
