//! [`WebhookNotifier`]: notifications as a JSON POST to a URL.

use std::fmt;

use async_trait::async_trait;
use serde::Serialize;

use crate::contracts::{Link, Notification, NotificationEvent, Notifier, Receipt, Severity};
use crate::http::{HttpClient, HttpConfig, SendOptions, decode_json};
use crate::{Error, Result};

const PROVIDER: &str = "webhook";

/// POSTs each notification as JSON to a URL:
///
/// ```json
/// {"source":"ops","severity":"critical","event":"trigger","title":"…","body_markdown":"…",
///  "fields":[{"key":"service","value":"api"}],"links":[{"label":"…","url":"…"}],
///  "dedup_key":"…","sent_at":"2026-01-01T00:00:00Z"}
/// ```
///
/// Every send carries a fresh `Idempotency-Key`, so a send the receiver may have seen is
/// retried safely (receivers dedupe on it) and one it surely did not see is retried too. The URL
/// is treated as a secret (webhook URLs embed tokens): it never appears in `Debug`, errors or
/// logs. A JSON response with an `id` becomes the receipt's id.
#[derive(Clone)]
pub struct WebhookNotifier {
    name: String,
    url: url::Url,
    http: HttpClient,
}

impl WebhookNotifier {
    /// A notifier posting to `url` (http or https).
    pub fn new(name: impl Into<String>, url: &str) -> Result<Self> {
        let invalid = |reason: &str| Error::invalid_input(PROVIDER, "new", "url", reason);
        // The parse error would quote the URL: report only what is wrong.
        let url = url::Url::parse(url).map_err(|e| invalid(&format!("not a URL ({e})")))?;
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            return Err(invalid("must be an http or https URL with a host"));
        }
        Ok(Self {
            name: name.into(),
            url,
            http: HttpClient::new(PROVIDER, &HttpConfig::default())?,
        })
    }

    /// Uses `http` (its retry policy, timeouts and clock).
    pub fn with_http(mut self, http: HttpClient) -> Self {
        self.http = http;
        self
    }
}

impl fmt::Debug for WebhookNotifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookNotifier")
            .field("name", &self.name)
            .field("host", &self.url.host_str().unwrap_or(""))
            .field("url", &"[REDACTED]")
            .finish()
    }
}

#[derive(Serialize)]
struct Payload<'a> {
    source: &'static str,
    severity: Severity,
    event: NotificationEvent,
    title: &'a str,
    body_markdown: &'a str,
    fields: Vec<Field<'a>>,
    links: &'a [Link],
    dedup_key: Option<&'a str>,
    sent_at: chrono::DateTime<chrono::Utc>,
}

#[derive(Serialize)]
struct Field<'a> {
    key: &'a str,
    value: &'a str,
}

#[async_trait]
impl Notifier for WebhookNotifier {
    fn name(&self) -> &str {
        &self.name
    }

    async fn send(&self, n: &Notification) -> Result<Receipt> {
        n.validate()?;
        let payload = Payload {
            source: "ops",
            severity: n.severity,
            event: n.event,
            title: &n.title,
            body_markdown: &n.body_markdown,
            fields: n
                .fields
                .iter()
                .map(|(k, v)| Field { key: k, value: v })
                .collect(),
            links: &n.links,
            dedup_key: n.dedup_key.as_deref(),
            sent_at: self.http.clock().now(),
        };
        let key = format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));
        let req = self
            .http
            .post(self.url.clone())
            .header("idempotency-key", key)
            .json(&payload);
        let options = SendOptions {
            resource: Some(format!("webhook {}", self.name)),
            ..SendOptions::default()
        };
        let (_, _, body) = self.http.send_bytes("send", req, &options).await?;
        let id = decode_json::<serde_json::Value>(PROVIDER, "send", &body)
            .ok()
            .and_then(|v| {
                v.get("id").and_then(|id| {
                    id.as_str()
                        .map(str::to_string)
                        .or_else(|| id.as_u64().map(|n| n.to_string()))
                })
            });
        Ok(Receipt {
            notifier: self.name.clone(),
            id,
            dedup_key: n.dedup_key.clone(),
        })
    }
}
