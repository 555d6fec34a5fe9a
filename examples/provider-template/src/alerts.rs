//! Pager alerts behind the [`Notifier`] contract.

use async_trait::async_trait;
use ops_core::Result;
use ops_core::contracts::{Notification, NotificationEvent, Notifier, Receipt, Severity};
use ops_core::http::JsonRequest;
use ops_core::retry::Idempotency;
use reqwest::Method;
use serde::Deserialize;
use serde_json::json;

use crate::client::PagerClient;

/// Sends notifications as Pager alerts.
#[derive(Debug, Clone)]
pub struct Alerts {
    name: String,
    client: PagerClient,
}

impl Alerts {
    /// Alerts through `client`, named `name` in receipts and reports.
    pub fn new(name: impl Into<String>, client: PagerClient) -> Self {
        Self {
            name: name.into(),
            client,
        }
    }
}

#[derive(Deserialize)]
struct Answer {
    id: String,
}

#[async_trait]
impl Notifier for Alerts {
    fn name(&self) -> &str {
        &self.name
    }

    async fn send(&self, n: &Notification) -> Result<Receipt> {
        // Bad input is refused before anything is sent.
        n.validate()?;
        let body = json!({
            "action": match n.event { NotificationEvent::Resolve => "resolve", _ => "trigger" },
            "dedup_key": n.dedup_key,
            "summary": n.title,
            "severity": match n.severity {
                Severity::Critical => "critical",
                Severity::Error => "error",
                Severity::Warning => "warning",
                Severity::Info => "info",
            },
        });
        let mut request =
            JsonRequest::new("send", Method::POST, self.client.url("v1/alerts")?).json(&body)?;
        // With a dedup key Pager updates the open alert, so a retry cannot page twice: say so,
        // and a POST that timed out may be sent again. Without one it is not retried.
        if n.dedup_key.is_some() {
            request = request.idempotency(Idempotency::Idempotent);
        }
        let answer: Answer = self.client.call(request).await?;
        Ok(Receipt {
            notifier: self.name.clone(),
            id: Some(answer.id),
            dedup_key: n.dedup_key.clone(),
        })
    }
}
