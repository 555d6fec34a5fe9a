//! # ops-core
//!
//! The contracts, error type, HTTP plumbing and cloud-free adapters of `ops`, a library that
//! turns operations runbooks (health checks, deploys with rollback, canaries, backups, secret
//! rotation, emergency shutdown, incidents) into typed, tested code.
//!
//! Layers, each using only those above it in this list:
//! - [`error`], [`clock`], [`checksum`], [`redact`]: the error type, injected time, artifact
//!   checksums, secret masking.
//! - [`contracts`]: the traits runbooks talk to ([`contracts::Deployer`],
//!   [`contracts::BackupStore`], [`contracts::HealthProbe`], [`contracts::SecretStore`],
//!   [`contracts::Notifier`], [`contracts::LogSource`], [`contracts::MetricsSource`]).
//! - [`config`]: loading and validating configs (TOML, durations written for people, bounds).
//! - [`retry`]: backoff with jitter, a total time cap, `Retry-After` honoured.
//! - [`http`]: one reqwest client set-up, status → [`ErrorKind`] mapping, retried sends, the
//!   provider kit (one JSON call with credentials, pagination, lenient field decoders).
//! - [`poll`]: waiting on the injected clock for something to finish, up to a deadline.
//! - [`adapters`]: implementations that need no cloud (HTTP and TCP probes, a filesystem backup
//!   store, environment and file secrets, log and webhook notifiers).
//! - [`engine`]: runbooks, steps, the runner (dry runs, retries, sagas, approvals, journal,
//!   lock, resume, reports).
//! - [`runbooks`]: the seed procedures (daily health check, deploy and verify, rollouts, …)
//!   as typed, configurable engine runbooks.
//! - `testkit` (feature `testkit`): conformance suites every implementation must pass.
//!
//! With the `mock` feature, every contract has a mockall mock (`contracts::MockDeployer`, ...).

pub mod adapters;
pub mod checksum;
pub mod clock;
pub mod config;
pub mod contracts;
pub mod engine;
pub mod error;
pub mod http;
pub mod poll;
pub mod redact;
pub mod retry;
pub mod runbooks;
pub mod sim;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use config::duration::secs as serde_duration;
pub use error::{Error, ErrorKind, Result};
