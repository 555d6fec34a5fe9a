//! Google Cloud provider for `ops`, with Application Default Credentials ([`auth`]):
//!
//! | service | type | contract |
//! |---|---|---|
//! | Cloud Run Admin v2 | [`CloudRun`] | `Deployer`, `HealthProbe` |
//! | Cloud Logging v2 | [`CloudLogging`] | `LogSource` |
//! | Cloud Monitoring v3 | [`CloudMonitoring`] | `MetricsSource` |
//! | Cloud Storage JSON v1 | [`CloudStorage`] | `BackupStore` (objects) |
//! | Cloud SQL Admin v1 | [`CloudSql`] | `BackupStore` (managed backups) |
//! | Secret Manager v1 | [`SecretManager`] | `SecretStore` |
//! | Resource Manager v3, IAM v1 | [`ProjectAudit`] | `SecurityAuditor` |
//! | IAM v1 keys | [`keys::ServiceAccountKeys`], [`keys::rotate::RotateServiceAccountKey`] | — (a runbook) |
//! | BigQuery v2 (billing export), Cloud Billing Budget v1 | [`billing::BillingExport`] | `CostSource` |
//!
//! Runbooks of the seeds' Google Cloud chores: [`run::prune::PruneRevisions`],
//! [`storage::cleanup::CleanupObjects`], [`sql::drill::RestoreDrill`] and
//! [`sql::drill::BackupPolicyCheck`], [`sql::sizing::RightSizeSql`],
//! [`keys::rotate::RotateServiceAccountKey`].
//!
//! Layout, the same in every provider crate: [`client`] (configuration, the authenticated
//! client, the one error mapping, long-running operations), one module per service, and `sim`
//! (feature `sim`): a stateful fake of these APIs on loopback.
//!
//! A deploy and a traffic split against the simulator. Against Google, only the client
//! changes (`GcpClient::new(GcpConfig::new(project, region), Arc::new(auth::application_default().await?))`).
//! The runbooks of `ops-core` take these types as their contracts: `tests/rollout_on_sim.rs`
//! runs a whole canary rollout of a bad image on them.
//!
//! ```
//! # #[cfg(feature = "sim")]
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> ops_core::Result<()> {
//! use ops_core::contracts::{DeployRequest, Deployer, TrafficSplit};
//! use ops_gcp::CloudRun;
//! use ops_gcp::sim::GcpSim;
//!
//! let sim = GcpSim::builder().start().await;
//! sim.create_service("api", "europe-docker.pkg.dev/acme/app/api:1.0");
//! let run = CloudRun::new(sim.client()?, "api")?;
//! let stable = run.current().await?.primary_release().unwrap().to_owned();
//!
//! let canary = run.deploy(&DeployRequest::new("europe-docker.pkg.dev/acme/app/api:1.1")).await?;
//! run.set_traffic(&TrafficSplit::new([(canary.id.clone(), 1), (stable.clone(), 99)])?).await?;
//! let state = run.current().await?;
//! assert_eq!(state.primary_release(), Some(stable.as_str()));
//! assert!(state.traffic.iter().any(|t| t.release == canary.id && t.percent == 1));
//! # Ok(()) }
//! # #[cfg(not(feature = "sim"))]
//! # fn main() {}
//! ```

pub mod audit;
pub mod auth;
pub mod billing;
pub mod client;
pub mod keys;
pub mod logging;
pub mod monitoring;
pub mod run;
pub mod secrets;
#[cfg(feature = "sim")]
pub mod sim;
pub mod sql;
pub mod storage;

pub use audit::ProjectAudit;
pub use client::{Endpoints, GcpClient, GcpConfig};

pub use logging::CloudLogging;
pub use monitoring::CloudMonitoring;
pub use run::CloudRun;
pub use secrets::SecretManager;
pub use sql::CloudSql;
pub use storage::{CloudStorage, CloudStorageConfig};
