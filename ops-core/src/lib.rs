//! # ops-core
//!
//! The contracts, error type, HTTP plumbing and cloud-free adapters of `ops`, a library that
//! turns operations runbooks (health checks, deploys with rollback, canaries, backups, secret
//! rotation, emergency shutdown, incidents) into typed, tested code.
//!
//! Layers, each using only those above it in this list (checked by `tests/layers.rs`):
//! - [`error`], [`clock`], [`checksum`], [`redact`], [`money`]: the error type, injected time,
//!   artifact checksums, secret masking, exact amounts of money.
//! - [`config`]: loading and validating configs (TOML, durations written for people, bounds).
//! - [`contracts`]: the traits runbooks talk to ([`contracts::Deployer`],
//!   [`contracts::BackupStore`], [`contracts::HealthProbe`], [`contracts::SecretStore`],
//!   [`contracts::Notifier`], [`contracts::LogSource`], [`contracts::MetricsSource`]) and the
//!   data they share (an [`contracts::Incident`], a [`contracts::RestoreTest`]).
//! - [`codec`]: backup artifacts compressed with zstd in the stream, decompressed and checked
//!   on the way out.
//! - [`judge`]: the canary judge, sequential tests over request, error and latency counts
//!   (pure arithmetic).
//! - [`retry`]: backoff with jitter, a total time cap, `Retry-After` honoured.
//! - [`http`], [`poll`], [`sim`]: one reqwest client set-up, status → [`ErrorKind`] mapping,
//!   retried sends and the provider kit (one JSON call with credentials, pagination, lenient
//!   field decoders); waiting on the injected clock for something to finish; what provider
//!   simulators share.
//! - [`adapters`], [`engine`]: implementations that need no cloud (HTTP and TCP probes, a
//!   filesystem backup store, environment and file secrets, log and webhook notifiers); runbooks
//!   of steps and their runner (dry runs, retries, sagas, approvals, journal, lock, resume,
//!   reports).
//! - [`runbooks`]: the seed procedures (daily health check, deploy and verify, rollouts, …)
//!   as typed, configurable engine runbooks; [`schedule`]: when they run, and the scheduler.
//! - [`memory`] and `testkit` (feature `testkit`): in-memory doubles of the contracts a runbook
//!   decides with, for tests and rehearsals; conformance suites every implementation must pass.
//!
//! With the `mock` feature, every contract has a mockall mock (`contracts::MockDeployer`, ...).

pub mod adapters;
pub mod calendar;
pub mod checksum;
pub mod clock;
pub mod codec;
pub mod config;
pub mod contracts;
pub mod engine;
pub mod error;
pub mod http;
pub mod judge;
pub mod log_line;
pub mod memory;
pub mod money;
pub mod poll;
pub mod presets;
pub mod quantity;
pub mod redact;
pub mod retry;
pub mod runbooks;
pub mod schedule;
pub mod sim;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use config::duration::secs as serde_duration;
pub use error::{Error, ErrorKind, Result};
