//! [`LogNotifier`]: notifications as `tracing` events.

use async_trait::async_trait;

use crate::Result;
use crate::contracts::{Notification, Notifier, Receipt, Severity};

/// Writes each notification as a `tracing` event (error level for error and critical, warn for
/// warning, info otherwise), target `ops::notify`. The fallback channel and the one rehearsals
/// use.
#[derive(Debug, Clone)]
pub struct LogNotifier {
    name: String,
}

impl LogNotifier {
    /// A notifier called `name`.
    pub fn new(name: impl Into<String>) -> Self {
        Self { name: name.into() }
    }
}

impl Default for LogNotifier {
    fn default() -> Self {
        Self::new("log")
    }
}

#[async_trait]
impl Notifier for LogNotifier {
    fn name(&self) -> &str {
        &self.name
    }

    async fn send(&self, n: &Notification) -> Result<Receipt> {
        n.validate()?;
        let fields = n
            .fields
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ");
        let key = n.dedup_key.as_deref().unwrap_or("");
        macro_rules! emit {
            ($level:ident) => {
                tracing::$level!(
                    target: "ops::notify",
                    notifier = %self.name,
                    severity = %n.severity,
                    event = ?n.event,
                    dedup_key = key,
                    fields = %fields,
                    body = %n.body_markdown,
                    "{}",
                    n.title
                )
            };
        }
        match n.severity {
            Severity::Critical | Severity::Error => emit!(error),
            Severity::Warning => emit!(warn),
            Severity::Info => emit!(info),
        }
        Ok(Receipt {
            notifier: self.name.clone(),
            id: None,
            dedup_key: n.dedup_key.clone(),
        })
    }
}
