//! Notifications a team already uses: Slack ([`SlackWebhook`], [`SlackApi`] with threads),
//! PagerDuty Events v2 ([`PagerDuty`]), a public status page on Atlassian Statuspage
//! ([`Statuspage`]), email over SMTP ([`EmailNotifier`]), a router with
//! the escalation matrix as configuration ([`NotifyRouter`]), the seeds' message
//! [`templates`], and simulators (feature `sim`).
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> ops_core::Result<()> {
//! use std::collections::BTreeMap;
//! use std::sync::Arc;
//! use ops_core::adapters::LogNotifier;
//! use ops_core::contracts::{Notification, Notifier, Severity};
//! use ops_core::config::RunbookConfig;
//! use ops_notify::{NotifyRouter, RouterConfig};
//!
//! let config = RouterConfig::from_toml(r#"
//!     [routes]
//!     critical = ["oncall", "chat"]
//!     warning = ["chat"]
//! "#)?;
//! let mut channels: BTreeMap<String, Arc<dyn Notifier>> = BTreeMap::new();
//! channels.insert("oncall".into(), Arc::new(LogNotifier::new("oncall")));
//! channels.insert("chat".into(), Arc::new(LogNotifier::new("chat")));
//! let router = NotifyRouter::new(config, channels)?;
//! let report = router.send_all(&Notification::new(Severity::Critical, "checkout is down")).await?;
//! assert_eq!(report.delivered(), vec!["oncall", "chat"]);
//! # Ok(()) }
//! ```

pub mod email;
pub mod incident;
pub mod pagerduty;
pub mod router;
#[cfg(feature = "sim")]
pub mod sim;
pub mod slack;
pub mod statuspage;
pub mod templates;

pub use email::{EmailConfig, EmailNotifier};
pub use pagerduty::{PagerDuty, PagerDutyConfig};
pub use router::{Delivery, EscalationLevel, NotifyRouter, RouteReport, RouterConfig};
pub use slack::{SlackApi, SlackApiConfig, SlackWebhook, SlackWebhookConfig};
pub use statuspage::{Maintenance, Statuspage, StatuspageConfig};
