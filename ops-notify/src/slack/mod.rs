//! Slack: an incoming webhook ([`SlackWebhook`]), and the Web API ([`SlackApi`]) where an
//! incident's messages stay in one thread keyed by the dedup key.
//!
//! Slack answers some failures with HTTP 200 and `"ok": false`: those are errors here, typed by
//! Slack's error code (`channel_not_found` → not found, `invalid_auth` → unauthorized,
//! `ratelimited` → rate limited, …). HTTP 429 with `Retry-After` is honoured by the shared retry
//! policy. Webhook URLs and tokens are secrets: never in errors, logs or `Debug`.

pub mod blocks;
mod config;

pub use config::{SlackApiConfig, SlackWebhookConfig};

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use ops_core::clock::SharedClock;
use ops_core::contracts::{Notification, NotificationEvent, Notifier, Receipt};
use ops_core::http::{Authorizer, HttpClient, JsonRequest, SendOptions};
use ops_core::{Error, ErrorKind, Result};
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Value, json};
use url::Url;

/// The metadata event type that marks this crate's incident messages.
pub const EVENT_TYPE: &str = "ops_incident";

/// Webhook answers are plain-text codes (`invalid_payload`, `no_service`, …).
fn parse_webhook_error(status: StatusCode, _: &HeaderMap, body: &[u8]) -> Option<ErrorKind> {
    let code = String::from_utf8_lossy(body).trim().to_string();
    let code = (code.len() <= 64 && code.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
        .then_some(code)?;
    Some(match (status.as_u16(), code.as_str()) {
        (429, _) => return None,
        (400, _) => ErrorKind::InvalidInput {
            field: "payload".into(),
            reason: code,
        },
        (403, _) => ErrorKind::Forbidden { detail: code },
        (404, _) | (410, _) => ErrorKind::NotFound {
            resource: format!("slack webhook ({code})"),
        },
        (s, _) => ErrorKind::Provider {
            status: s,
            code: Some(code),
            body_excerpt: String::new(),
        },
    })
}

/// The error for an `"ok": false` answer.
pub fn api_error(operation: &'static str, code: &str) -> Error {
    let kind = match code {
        "ratelimited" | "rate_limited" => ErrorKind::RateLimited { retry_after: None },
        "invalid_auth" | "not_authed" | "token_revoked" | "token_expired" | "account_inactive" => {
            ErrorKind::Unauthorized
        }
        "missing_scope" | "not_in_channel" | "restricted_action" | "ekm_access_denied" => {
            ErrorKind::Forbidden {
                detail: format!("slack: {code}"),
            }
        }
        "channel_not_found" | "thread_not_found" | "message_not_found" => ErrorKind::NotFound {
            resource: format!("slack: {code}"),
        },
        "invalid_blocks"
        | "invalid_blocks_format"
        | "msg_too_long"
        | "no_text"
        | "too_many_attachments"
        | "invalid_metadata_format" => ErrorKind::InvalidInput {
            field: "message".into(),
            reason: code.to_string(),
        },
        "is_archived" | "cant_update_message" | "edit_window_closed" => ErrorKind::Conflict {
            detail: code.to_string(),
        },
        "internal_error" | "fatal_error" | "service_unavailable" => {
            ErrorKind::Unavailable { retry_after: None }
        }
        other => ErrorKind::Provider {
            status: 200,
            code: Some(other.to_string()),
            body_excerpt: String::new(),
        },
    };
    Error::new("slack", operation, kind)
}

/// An incoming webhook: one message per notification (webhooks cannot thread).
#[derive(Clone)]
pub struct SlackWebhook {
    url: Arc<SecretString>,
    http: HttpClient,
    name: String,
}

impl fmt::Debug for SlackWebhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlackWebhook")
            .field("name", &self.name)
            .field("url", &"[redacted]")
            .finish()
    }
}

impl SlackWebhook {
    /// The webhook `config` names. A URL that does not parse is refused here (without echoing
    /// it: it is a secret).
    pub fn new(config: SlackWebhookConfig) -> Result<Self> {
        Url::parse(config.url.expose_secret())
            .map_err(|_| Error::invalid_input("slack", "webhook", "url", "not a URL"))?;
        Ok(Self {
            url: Arc::new(config.url),
            http: HttpClient::new("slack", &config.http)?
                .with_error_parser(Arc::new(parse_webhook_error)),
            name: config.name,
        })
    }

    /// The same webhook on `clock` (retry waits).
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.http = self.http.with_clock(clock);
        self
    }

    /// The same webhook on `http` (clock, retries).
    pub fn with_http(mut self, http: HttpClient) -> Self {
        self.http = http
            .with_provider("slack")
            .with_error_parser(Arc::new(parse_webhook_error));
        self
    }
}

#[async_trait]
impl Notifier for SlackWebhook {
    fn name(&self) -> &str {
        &self.name
    }

    async fn send(&self, n: &Notification) -> Result<Receipt> {
        n.validate()?;
        let body = json!({ "text": blocks::text(n), "blocks": blocks::blocks(n) });
        let req = self.http.post(self.url.expose_secret()).json(&body);
        let options = SendOptions {
            resource: Some("slack webhook".into()),
            ..SendOptions::default()
        };
        self.http.send_bytes("post_webhook", req, &options).await?;
        Ok(Receipt {
            notifier: self.name.clone(),
            id: None,
            dedup_key: n.dedup_key.clone(),
        })
    }
}

#[derive(Debug, Deserialize)]
struct ApiAnswer {
    ok: bool,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    ts: Option<String>,
    #[serde(default)]
    messages: Vec<Value>,
    #[serde(default)]
    response_metadata: Option<ResponseMetadata>,
}

#[derive(Debug, Deserialize)]
struct ResponseMetadata {
    #[serde(default)]
    next_cursor: Option<String>,
}

/// How many pages of `conversations.history` (200 messages each) a thread lookup reads at
/// most: an incident's first message is found among the channel's last 5,000 messages.
pub const MAX_HISTORY_PAGES: usize = 25;

/// The Web API in one channel: a trigger starts a thread, updates go into it, acknowledge and
/// resolve also edit the first message. The thread for a dedup key is found again after a
/// restart through the message metadata (`conversations.history`).
#[derive(Clone)]
pub struct SlackApi {
    auth: Authorizer,
    channel: String,
    base: Url,
    http: HttpClient,
    threads: Arc<Mutex<HashMap<String, String>>>,
    name: String,
}

impl fmt::Debug for SlackApi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlackApi")
            .field("name", &self.name)
            .field("channel", &self.channel)
            .field("token", &"[redacted]")
            .finish()
    }
}

impl SlackApi {
    /// The client `config` describes: its bot token posting to its channel.
    pub fn new(config: SlackApiConfig) -> Result<Self> {
        ops_core::contracts::validate_name("slack", "api", "channel", &config.channel)?;
        let client = Self {
            auth: Authorizer::bearer(config.token.expose_secret()),
            channel: config.channel,
            // Normalised (trailing `/`) by `with_base` below.
            base: config.base_url.clone(),
            http: HttpClient::new("slack", &config.http)?,
            threads: Arc::new(Mutex::new(HashMap::new())),
            name: config.name,
        };
        let http = client.http.clone();
        client.with_base(config.base_url.as_str(), http)
    }

    /// The same client on `clock` (retry waits).
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.http = self.http.with_clock(clock);
        self
    }

    /// The same client against `base` (a simulator), on `http`.
    pub fn with_base(mut self, base: &str, http: HttpClient) -> Result<Self> {
        let mut url = Url::parse(base)
            .map_err(|e| Error::invalid_input("slack", "api", "base_url", e.to_string()))?;
        if !url.path().ends_with('/') {
            let p = format!("{}/", url.path());
            url.set_path(&p);
        }
        self.base = url;
        self.http = http.with_provider("slack");
        Ok(self)
    }

    async fn api(
        &self,
        operation: &'static str,
        method: &str,
        http_method: Method,
        body: Option<Value>,
        query: &[(&str, &str)],
    ) -> Result<ApiAnswer> {
        let mut url = self
            .base
            .join(method)
            .map_err(|e| Error::invalid_input("slack", operation, "method", e.to_string()))?;
        url.query_pairs_mut().extend_pairs(query);
        let request = JsonRequest::new(operation, http_method, url)
            .json_opt(body.as_ref())?
            .header(
                CONTENT_TYPE,
                HeaderValue::from_static("application/json; charset=utf-8"),
            )
            .resource(format!("slack {method}"));
        let answer: ApiAnswer = self.http.call_json(&self.auth, request).await?;
        if !answer.ok {
            return Err(api_error(
                operation,
                answer.error.as_deref().unwrap_or("unknown_error"),
            ));
        }
        Ok(answer)
    }

    fn message(&self, n: &Notification) -> Value {
        let mut m = json!({ "channel": self.channel, "text": blocks::text(n), "blocks": blocks::blocks(n) });
        if let Some(k) = &n.dedup_key {
            m["metadata"] = json!({"event_type": EVENT_TYPE, "event_payload": {"dedup_key": k, "severity": n.severity.to_string(), "title": n.title}});
        }
        m
    }

    /// The first message of the incident `key`, from memory or the channel's history.
    async fn thread(&self, key: &str) -> Result<Option<String>> {
        if let Some(ts) = self
            .threads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .cloned()
        {
            return Ok(Some(ts));
        }
        let mut cursor: Option<String> = None;
        let mut found = None;
        for _ in 0..MAX_HISTORY_PAGES {
            let mut query = vec![
                ("channel", self.channel.as_str()),
                ("include_all_metadata", "true"),
                ("limit", "200"),
            ];
            if let Some(c) = &cursor {
                query.push(("cursor", c.as_str()));
            }
            let answer = self
                .api(
                    "find_thread",
                    "conversations.history",
                    Method::GET,
                    None,
                    &query,
                )
                .await?;
            found = answer.messages.iter().find_map(|m| {
                let meta = m.get("metadata")?;
                (meta.get("event_type")? == EVENT_TYPE
                    && meta.pointer("/event_payload/dedup_key")?.as_str()? == key)
                    .then(|| m.get("ts")?.as_str().map(str::to_owned))?
            });
            cursor = answer
                .response_metadata
                .and_then(|m| m.next_cursor)
                .filter(|c| !c.is_empty());
            if found.is_some() || cursor.is_none() {
                break;
            }
        }
        if let Some(ts) = &found {
            self.threads
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(key.to_string(), ts.clone());
        }
        Ok(found)
    }
}

#[async_trait]
impl Notifier for SlackApi {
    fn name(&self) -> &str {
        &self.name
    }

    async fn send(&self, n: &Notification) -> Result<Receipt> {
        n.validate()?;
        let parent = match &n.dedup_key {
            Some(k) => self.thread(k).await?,
            None => None,
        };
        let mut message = self.message(n);
        let ts = match parent {
            None => {
                if n.event != NotificationEvent::Trigger {
                    tracing::warn!(dedup_key = ?n.dedup_key, "no Slack thread for this incident; starting one");
                }
                let a = self
                    .api(
                        "post_message",
                        "chat.postMessage",
                        Method::POST,
                        Some(message),
                        &[],
                    )
                    .await?;
                let ts = a.ts.ok_or_else(|| {
                    Error::new(
                        "slack",
                        "post_message",
                        ErrorKind::Decode {
                            detail: "no ts".into(),
                        },
                    )
                })?;
                if let Some(k) = &n.dedup_key {
                    self.threads
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(k.clone(), ts.clone());
                }
                ts
            }
            Some(parent) => {
                message["thread_ts"] = json!(parent);
                let a = self
                    .api(
                        "post_reply",
                        "chat.postMessage",
                        Method::POST,
                        Some(message),
                        &[],
                    )
                    .await?;
                if matches!(
                    n.event,
                    NotificationEvent::Acknowledge | NotificationEvent::Resolve
                ) {
                    // The first message shows the incident's state at a glance.
                    let mut edit = self.message(n);
                    edit["ts"] = json!(parent);
                    self.api(
                        "update_message",
                        "chat.update",
                        Method::POST,
                        Some(edit),
                        &[],
                    )
                    .await?;
                }
                a.ts.unwrap_or(parent)
            }
        };
        Ok(Receipt {
            notifier: self.name.clone(),
            id: Some(format!("{}/{ts}", self.channel)),
            dedup_key: n.dedup_key.clone(),
        })
    }
}
