//! Vercel provider for `ops`: deployments ([`VercelDeployer`], a `Deployer`), promote and
//! instant rollback, project environment variables ([`VercelEnv`], a `SecretStore`), a
//! production health probe ([`VercelHealth`]), and a simulator (feature `sim`).
//!
//! Every call carries the bearer token and, when configured, the team scope (`teamId`).
//! Vercel's error bodies (`{"error":{"code","message"}}`) become typed errors with the code
//! kept; `429` and the `x-ratelimit-reset` header are honoured by the shared retry policy.
//!
//! Deploy → verify → roll back, against the simulator (against Vercel, only the client
//! changes: `VercelClient::new(VercelConfig::from_env()?)`):
//!
//! ```
//! # #[cfg(feature = "sim")]
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> ops_core::Result<()> {
//! use std::time::Duration;
//! use ops_core::contracts::{Deployer, DeployRequest, HealthProbe, HealthStatus, InitialTraffic, TrafficSplit};
//! use ops_vercel::VercelHealth;
//! use ops_vercel::sim::VercelSim;
//!
//! let sim = VercelSim::builder().build_time(Duration::from_millis(40)).start().await;
//! let site = sim.deployer(Duration::from_millis(10))?;
//! let stable = site.current().await?.primary_release().unwrap().to_string();
//!
//! // Deploy the branch to production and wait for its build.
//! let release = site
//!     .deploy(&DeployRequest { traffic: InitialTraffic::All, ..DeployRequest::new("release-42") })
//!     .await?;
//! assert_eq!(site.current().await?.primary_release(), Some(release.id.as_str()));
//!
//! // Verify: production READY and the site answering (the simulator serves it at `/`).
//! let probe = VercelHealth::new(site.clone(), Some(sim.uri()));
//! let report = probe.check().await?;
//! assert_eq!(report.status, HealthStatus::Healthy, "{:?}", report.checks);
//!
//! // Instant rollback to the deployment that served before.
//! site.set_traffic(&TrafficSplit::all_to(stable.as_str())?).await?;
//! assert_eq!(site.current().await?.primary_release(), Some(stable.as_str()));
//! # Ok(()) }
//! # #[cfg(not(feature = "sim"))]
//! # fn main() {}
//! ```
//!
//! Layout, as in every provider crate: [`client`] (configuration, the one error mapping),
//! one module per API area, and `sim`.

pub mod client;
pub mod deployer;
pub mod env;
pub mod health;
pub mod logs;
pub mod model;
#[cfg(feature = "sim")]
pub mod sim;

pub use client::{VercelClient, VercelConfig};
pub use deployer::{GitRepo, VercelDeployer};
pub use env::VercelEnv;
pub use health::VercelHealth;
pub use logs::{VercelLogs, VercelLogsConfig, VercelRequests};
