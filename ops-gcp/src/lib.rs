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
//!
//! Layout, the same in every provider crate: [`client`] (configuration, the authenticated
//! client, the one error mapping, long-running operations), one module per service, and `sim`
//! (feature `sim`): a stateful fake of these APIs on loopback.
//!
//! A canary rollout of a bad image against the simulator: the new revision takes 1 % of the
//! traffic, fails 30 % of its requests, and the rollout puts all traffic back on the stable
//! revision by itself. Against Google, only the client changes
//! (`GcpClient::new(GcpConfig::new(project, region), Arc::new(auth::application_default().await?))`).
//!
//! ```
//! # #[cfg(feature = "sim")]
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> ops_core::Result<()> {
//! use std::sync::Arc;
//! use ops_core::clock::ManualClock;
//! use ops_core::contracts::Deployer;
//! use ops_core::engine::{Mode, RunOutcome, Runner, StepStatus};
//! use ops_core::runbooks::{Rollout, RolloutConfig};
//! use ops_gcp::sim::{Behaviour, GcpSim};
//! use ops_gcp::{CloudMonitoring, CloudRun};
//!
//! // Simulated time: the 15-minute bakes pass at once.
//! let clock = Arc::new(ManualClock::starting_at("2026-11-23T09:00:00Z".parse().unwrap()));
//! let sim = GcpSim::builder().clock(clock.clone()).start().await;
//! sim.create_service("api", "europe-docker.pkg.dev/acme/app/api:1.0");
//! sim.set_behaviour("europe-docker.pkg.dev/acme/app/api:1.1", Behaviour::failing(0.3));
//!
//! let run = Arc::new(CloudRun::new(sim.client()?, "api")?);
//! let metrics = Arc::new(CloudMonitoring::new(sim.client()?, "api")?);
//! let stable = run.current().await?.primary_release().map(str::to_owned);
//!
//! let rollout = Rollout::new(
//!     "europe-docker.pkg.dev/acme/app/api:1.1",
//!     run.clone(),
//!     metrics,
//!     RolloutConfig::default(), // 1 % → 5 % → 25 % → 100 %, abort above 5 % errors
//! );
//! let report = rollout.run(&Runner::new().with_clock(clock), Mode::Execute).await?;
//!
//! assert_eq!(report.outcome, Some(RunOutcome::Failed));
//! let analysis = report.steps.iter().find(|s| s.name == "analyze-1").unwrap();
//! assert_eq!(analysis.status, StepStatus::Failed, "the 1 % stage saw the errors");
//! assert_eq!(run.current().await?.primary_release().map(str::to_owned), stable);
//! println!("{}", report.to_markdown());
//! # Ok(()) }
//! # #[cfg(not(feature = "sim"))]
//! # fn main() {}
//! ```

pub mod audit;
pub mod auth;
pub mod client;
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
