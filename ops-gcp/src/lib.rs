//! Google Cloud provider for `ops`: Cloud Run ([`CloudRun`], a `Deployer` and `HealthProbe`),
//! Cloud Logging ([`CloudLogging`], a `LogSource`) and Cloud Monitoring ([`CloudMonitoring`],
//! a `MetricsSource`), with Application Default Credentials ([`auth`]).
//!
//! Layout, the same in every provider crate: [`client`] (configuration, the authenticated
//! client, the one error mapping, long-running operations), one module per service, and `sim`
//! (feature `sim`): a stateful fake of these APIs on loopback.

pub mod auth;
pub mod client;
pub mod logging;
pub mod monitoring;
pub mod run;
#[cfg(feature = "sim")]
pub mod sim;

pub use client::{Endpoints, GcpClient, GcpConfig};

pub use logging::CloudLogging;
pub use monitoring::CloudMonitoring;
pub use run::CloudRun;
