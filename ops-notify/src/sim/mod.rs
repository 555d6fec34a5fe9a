//! Fakes of the notification services on loopback, with fault injection:
//!
//! - [`SlackSim`]: an incoming webhook (`POST /services/…`) and the Web API methods used here
//!   (`chat.postMessage`, `chat.update`, `conversations.history` with metadata), answering
//!   failures the way Slack does (HTTP 200 with `"ok": false` for API errors);
//! - [`PagerDutySim`]: `POST /v2/enqueue`, keeping alerts by dedup key and their status;
//! - [`SmtpSim`]: a minimal SMTP server that stores what it receives;
//! - [`StatuspageSim`]: Statuspage's incidents (created, updated, unresolved, scheduled) and
//!   its components' status.

mod pagerduty;
mod slack;
mod smtp;
mod statuspage;

pub use ops_core::sim::{Fault, Simulator};
pub use pagerduty::{PagerDutySim, SimAlert};
pub use slack::{SimMessage, SlackSim};
pub use smtp::{SimMail, SmtpSim};
pub use statuspage::{SimIncident, StatuspageSim};

/// The bot token [`SlackSim`] accepts.
pub fn slack_token() -> &'static str {
    slack::BOT_TOKEN
}

/// The channel id [`SlackSim`] has.
pub fn slack_channel() -> &'static str {
    slack::CHANNEL
}

/// The routing key [`PagerDutySim`] accepts.
pub fn pagerduty_key() -> &'static str {
    pagerduty::ROUTING_KEY
}

/// The API key [`StatuspageSim`] accepts.
pub fn statuspage_key() -> &'static str {
    statuspage::API_KEY
}

/// The page id [`StatuspageSim`] has.
pub fn statuspage_page() -> &'static str {
    statuspage::PAGE_ID
}

/// The components of [`StatuspageSim`]'s page.
pub fn statuspage_components() -> [&'static str; 2] {
    statuspage::COMPONENTS
}
