//! The provider template that `docs/provider-guide.md` walks through: a [`Notifier`] for Pager,
//! a made-up alerting API, in the shape every provider crate of `ops` has. Copy this crate to
//! start a provider; CI builds it and runs it through the testkit, so what the guide shows
//! compiles and passes.
//!
//! | file | holds |
//! |---|---|
//! | `client.rs` | [`PagerConfig`] (serde, [`PagerConfig::from_env`]), [`PagerClient`] over the shared HTTP client, and the one [`parse_error`] |
//! | `alerts.rs` | [`Alerts`]: the contract, `impl Notifier` |
//! | `sim.rs` | [`sim::PagerSim`] (feature `sim`): the API's behaviour on loopback |
//!
//! Pager's API, as this template assumes it: `POST /v1/alerts` with a bearer token and
//! `{"action": "trigger" | "resolve", "dedup_key", "summary", "severity"}` answers `202
//! {"id": "al_1"}`; errors are `{"error": {"code", "message"}}`; a repeated trigger with the
//! same dedup key updates the open alert, so a trigger with a key is safe to retry.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> ops_core::Result<()> {
//! # #[cfg(feature = "sim")] {
//! use ops_core::contracts::{Notification, Notifier, Severity};
//! use ops_provider_template::{Alerts, PagerClient, PagerConfig, sim::PagerSim};
//!
//! let sim = PagerSim::start().await;
//! let config = PagerConfig::new(ops_provider_template::sim::TOKEN).base_url(&sim.uri())?;
//! let alerts = Alerts::new("pager", PagerClient::new(config)?);
//! let down = Notification::new(Severity::Critical, "checkout is down").dedup_key("incident/7");
//! alerts.send(&down).await?;
//! assert_eq!(sim.alerts()[0].status, "triggered");
//! # }
//! # Ok(()) }
//! ```
//!
//! [`Notifier`]: ops_core::contracts::Notifier

mod alerts;
mod client;
#[cfg(feature = "sim")]
pub mod sim;

pub use alerts::Alerts;
pub use client::{PagerClient, PagerConfig, parse_error};
